//! What a client that asks for a resumable session is told (README.md, "Resumable
//! sessions"): session ids, the control envelopes `sessionStart`, `sessionResumed` and
//! `sessionNotResumed` with their reasons, and who may resume a session.

use serde_json::{json, Value};
use tokio_tungstenite::tungstenite::Utf8Bytes;

use crate::{envelope::Envelope, identity::Identity};

/// Why a resume was refused: the `info` of `sessionNotResumed` and the metric's label.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NotResumed {
    /// No such session (never was, or it ended).
    Unknown,
    /// Its window passed before the resume.
    Expired,
    /// Another identity than the session's.
    Identity,
    /// Frames the client needs are gone.
    Overflow,
    /// `last` above the highest seq, or not a number.
    Invalid,
    /// Another resume of the same session is under way.
    Busy,
}

impl NotResumed {
    /// The reason a label names (what another node sent).
    pub fn from_label(label: &str) -> Option<Self> {
        [
            NotResumed::Unknown,
            NotResumed::Expired,
            NotResumed::Identity,
            NotResumed::Overflow,
            NotResumed::Invalid,
            NotResumed::Busy,
        ]
        .into_iter()
        .find(|reason| reason.label() == label)
    }

    /// The word clients and the metric see.
    pub fn label(self) -> &'static str {
        match self {
            NotResumed::Unknown => "unknown",
            NotResumed::Expired => "expired",
            NotResumed::Identity => "identity",
            NotResumed::Overflow => "overflow",
            NotResumed::Invalid => "invalid",
            NotResumed::Busy => "busy",
        }
    }
}

/// A new session id: 128 random bits from the OS, as 32 hex digits.
pub fn new_id() -> Result<String, String> {
    let mut bits = [0u8; 16];
    getrandom::fill(&mut bits)
        .map_err(|error| format!("no random bits for a session id: {error}"))?;
    Ok(bits.iter().map(|byte| format!("{byte:02x}")).collect())
}

/// `sessionStart` (`resumed` = None), `sessionResumed` or `sessionNotResumed`: control
/// envelopes, never stamped, never replayed.
pub fn control(event: &str, info: &str, param: Value) -> Utf8Bytes {
    Utf8Bytes::from(Envelope::new(200, event, info).with_param(&param).to_json())
}

/// The first frame of a new session.
pub fn started(id: &str) -> Utf8Bytes {
    control(
        "sessionStart",
        "session started",
        json!({"session": id, "seq": 0}),
    )
}

/// The first frame of a resumed session.
pub fn resumed(id: &str, missed: usize) -> Utf8Bytes {
    control(
        "sessionResumed",
        "session resumed",
        json!({"session": id, "missed": missed}),
    )
}

/// The first frame of a client whose resume was refused, with its fresh session.
pub fn not_resumed(reason: NotResumed, id: &str) -> Utf8Bytes {
    control(
        "sessionNotResumed",
        reason.label(),
        json!({"session": id, "seq": 0}),
    )
}

/// Whether a resume comes from the session's owner: the string forms of `id`, `type` and
/// `code` are equal (clients without a token, when `auth.required = false`, have none to
/// compare: the session id is all they hold).
pub fn same_owner(session: &Identity, claimant: &Identity) -> bool {
    let parse = |identity: &Identity| serde_json::from_str::<Value>(&identity.info).ok();
    let (Some(a), Some(b)) = (parse(session), parse(claimant)) else {
        return false;
    };
    let field = |value: &Value, name: &str| match value.get(name) {
        Some(Value::String(text)) => Some(text.clone()),
        Some(Value::Null) | None => None,
        Some(other) => Some(other.to_string()),
    };
    if field(&a, "type").as_deref() == Some("anonymous") {
        return field(&b, "type").as_deref() == Some("anonymous");
    }
    ["id", "type", "code"]
        .iter()
        .all(|name| field(&a, name) == field(&b, name))
}

/// The `last` of a resume: the highest seq the client has, a non-negative integer.
/// Anything else (`abc`, `-1`, `1e3`, nothing) is `None`, which the resume answers
/// `invalid` — and, as for a `last` above the highest seq, the session ends.
pub fn parse_last(last: Option<&str>) -> Option<u64> {
    let last = last?;
    match last.bytes().all(|b| b.is_ascii_digit()) {
        true => last.parse().ok(),
        false => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_128_bits_and_differ() {
        let (a, b) = (new_id().expect("an id"), new_id().expect("an id"));
        assert_eq!(a.len(), 32);
        assert!(a.chars().all(|c| c.is_ascii_hexdigit()));
        assert_ne!(a, b);
    }

    #[test]
    fn the_owner_is_the_same_id_type_and_code() {
        let person = |info: &str| Identity::from_record("f".into(), info).expect("an identity");
        let user = person(r#"{"id":1,"type":"wechatUser","code":"demo","nickname":"a","ctime":1}"#);
        let later =
            person(r#"{"id":"1","type":"wechatUser","code":"demo","nickname":"b","ctime":2}"#);
        let other = person(r#"{"id":2,"type":"wechatUser","code":"demo"}"#);
        let room = person(r#"{"id":1,"type":"wechatUser","code":"other"}"#);
        assert!(same_owner(&user, &later));
        assert!(!same_owner(&user, &other));
        assert!(!same_owner(&user, &room));
        let anonymous = Identity::anonymous("n/1/1".into());
        assert!(same_owner(&anonymous, &Identity::anonymous("n/1/2".into())));
        assert!(!same_owner(&anonymous, &user));
    }

    #[test]
    fn last_is_a_non_negative_integer_or_nothing() {
        assert_eq!(parse_last(Some("0")), Some(0));
        assert_eq!(parse_last(Some("42")), Some(42));
        for bad in [
            "abc",
            "-1",
            "1e3",
            "",
            " 1",
            "+1",
            "1.0",
            "99999999999999999999999",
        ] {
            assert_eq!(parse_last(Some(bad)), None, "{bad:?}");
        }
        assert_eq!(parse_last(None), None);
    }
}
