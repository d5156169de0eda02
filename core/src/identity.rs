//! Who a connection is: its id and its decoded token.
//!
//! An fd is `<node_id>/<boot>/<counter>`: unique across the deployment (node ids
//! differ), never reused after a restart (the boot time in microseconds moves on),
//! and it tells which node holds the connection. MSwoole reused Swoole's small
//! integer fds, so a stale room entry could reach a stranger; this cannot.

use std::{
    sync::atomic::{AtomicU64, Ordering},
    time::{SystemTime, UNIX_EPOCH},
};

use serde_json::{Map, Value};

/// Hands out fds for this node.
#[derive(Debug)]
pub struct FdIds {
    /// `<node_id>/<boot>/`.
    prefix: String,
    /// The next counter value.
    next: AtomicU64,
}

impl FdIds {
    /// Ids for `node_id`, from this boot on.
    pub fn new(node_id: &str) -> Self {
        let boot = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_micros())
            .unwrap_or(0);
        FdIds {
            prefix: format!("{node_id}/{boot:x}/"),
            next: AtomicU64::new(1),
        }
    }

    /// A new fd.
    pub fn next(&self) -> String {
        let n = self.next.fetch_add(1, Ordering::Relaxed);
        format!("{}{n}", self.prefix)
    }
}

/// The node part of an fd.
pub fn node_of(fd: &str) -> Option<&str> {
    let mut parts = fd.rsplitn(3, '/');
    let (_counter, _boot, node) = (parts.next()?, parts.next()?, parts.next()?);
    Some(node)
}

/// A connection's identity, fixed at the handshake.
#[derive(Debug, Clone)]
pub struct Identity {
    /// The connection id.
    pub fd: String,
    /// The decoded token as JSON text, what the registry records (anonymous:
    /// `{"id":fd,"type":"anonymous","code":"","nickname":""}`). Text, not a map: a
    /// connection holds it for its whole life, and text is a third of the memory.
    pub info: String,
    /// The uid of a `wechatUser` (string form of `id`); `None` for other types.
    pub uid: Option<String>,
    /// When the token stops being valid (unix seconds): a JWT's `exp`; `None` for MSwoole
    /// tokens and anonymous clients. Neither in `info` nor in `auth`: modules see the same
    /// identity whichever token the client brought.
    pub exp: Option<u64>,
    /// `"auth":{..},"fd":"..","code":".."` as JSON, built once: what every message of
    /// this connection gets appended, with `auth`'s strings as they are and escaped.
    injection: Injection,
}

/// The JSON members the host appends to every message, prebuilt.
#[derive(Debug, Clone)]
struct Injection {
    /// With `auth`'s strings as they are.
    plain: String,
    /// With `auth`'s strings HTML-escaped.
    escaped: String,
}

impl Injection {
    fn new(fd: &str, code: &str, auth: &Value) -> Self {
        let members = |auth: &Value| {
            let mut tail = Map::new();
            tail.insert("auth".into(), auth.clone());
            tail.insert("fd".into(), Value::from(fd));
            tail.insert("code".into(), Value::from(code));
            let object = Value::Object(tail).to_string();
            object[1..object.len() - 1].to_string()
        };
        let mut escaped = auth.clone();
        crate::message::escape_strings(&mut escaped);
        Injection {
            plain: members(auth),
            escaped: members(&escaped),
        }
    }
}

/// The string form of a JSON value used as an id (`1` → `"1"`, `"w-7"` → `"w-7"`).
fn id_string(value: &Value) -> String {
    match value {
        Value::String(text) => text.clone(),
        other => other.to_string(),
    }
}

impl Identity {
    /// The identity of a connection with a checked token.
    pub fn from_claims(fd: String, claims: Map<String, Value>) -> Self {
        let code = claims.get("code").map(id_string).unwrap_or_default();
        let uid = match claims.get("type") {
            Some(Value::String(kind)) if kind == "wechatUser" => claims.get("id").map(id_string),
            _ => None,
        };
        let info = serde_json::to_string(&claims).unwrap_or_else(|_| "{}".into());
        let mut auth = claims;
        auth.shift_remove("ctime");
        Identity {
            injection: Injection::new(&fd, &code, &Value::Object(auth)),
            fd,
            info,
            uid,
            exp: None,
        }
    }

    /// The same identity, valid until `exp` (unix seconds).
    pub fn expiring(self, exp: u64) -> Self {
        Identity {
            exp: Some(exp),
            ..self
        }
    }

    /// The identity the registry recorded for `fd` (its `info`), e.g. for a connection of
    /// another node; `None` when the record is not a JSON object.
    pub fn from_record(fd: String, info: &str) -> Option<Self> {
        match serde_json::from_str(info) {
            Ok(Value::Object(claims)) => Some(Self::from_claims(fd, claims)),
            _ => None,
        }
    }

    /// The token minus `ctime`: what the host injects as `auth`.
    #[cfg(test)]
    pub fn auth(&self) -> Value {
        let members: Value =
            serde_json::from_str(&format!("{{{}}}", self.injection.plain)).unwrap_or_default();
        members.get("auth").cloned().unwrap_or_default()
    }

    /// The members appended to every message of this connection (see [`crate::message::prepare`]).
    pub fn injection(&self, escaped: bool) -> &str {
        if escaped {
            &self.injection.escaped
        } else {
            &self.injection.plain
        }
    }

    /// The identity of a connection without a token, when auth is off.
    pub fn anonymous(fd: String) -> Self {
        let mut claims = Map::new();
        claims.insert("id".into(), Value::from(fd.as_str()));
        claims.insert("type".into(), "anonymous".into());
        claims.insert("code".into(), "".into());
        claims.insert("nickname".into(), "".into());
        Self::from_claims(fd, claims)
    }

    /// `{fd, code, auth}`: what `onClose` receives, shaped like a message.
    pub fn close_info(&self, escape: bool) -> Value {
        serde_json::from_str(&format!("{{{}}}", self.injection(escape))).unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn fds_are_unique_and_name_their_node() {
        let ids = FdIds::new("host-a:20000");
        let (a, b) = (ids.next(), ids.next());
        assert_ne!(a, b);
        assert_eq!(node_of(&a), Some("host-a:20000"));
        assert_ne!(
            FdIds::new("host-a:20000").next(),
            a,
            "a new boot never repeats an fd"
        );
    }

    #[test]
    fn wechat_users_have_a_uid_and_walls_do_not() {
        let Value::Object(user) =
            json!({"id": 1, "type": "wechatUser", "code": "demo", "ctime": 5})
        else {
            unreachable!()
        };
        let identity = Identity::from_claims("f".into(), user);
        assert_eq!(identity.uid.as_deref(), Some("1"));
        assert_eq!(
            identity.auth(),
            json!({"id": 1, "type": "wechatUser", "code": "demo"})
        );
        let Value::Object(wall) = json!({"id": "w-7", "type": "wall", "code": 42}) else {
            unreachable!()
        };
        let identity = Identity::from_claims("f".into(), wall);
        assert_eq!(identity.close_info(false)["code"], "42");
        assert_eq!(identity.uid, None);
    }

    #[test]
    fn a_recorded_identity_reads_back_the_same() {
        let Value::Object(user) =
            json!({"id": 1, "type": "wechatUser", "code": "demo", "ctime": 5})
        else {
            unreachable!()
        };
        let identity = Identity::from_claims("f".into(), user);
        let back = Identity::from_record("f".into(), &identity.info).expect("a JSON object");
        assert_eq!(back.info, identity.info);
        assert_eq!(back.uid.as_deref(), Some("1"));
        assert!(Identity::from_record("f".into(), "[1]").is_none());
    }

    #[test]
    fn anonymous_identity_uses_the_fd_as_id() {
        let identity = Identity::anonymous("n/1/2".into());
        assert_eq!(
            identity.auth(),
            json!({"id": "n/1/2", "type": "anonymous", "code": "", "nickname": ""})
        );
    }
}
