//! Reading server envelopes cheaply, and the frames the load generator sends.
//!
//! The host writes envelopes with keys in a fixed order (`status`, `event`, `info`,
//! `param`; docs/PROTOCOL.md "Envelopes"), so the event name can be found with a substring search instead of
//! a full JSON parse: at 100k frames per second the client's own CPU is what limits
//! the measurement, and this keeps it small.

/// The event of the ack the host sends before routing each message.
pub const ACK: &str = "receiveMessage";
/// The event `index.index.index` answers with.
pub const SUCCESS: &str = "success";
/// The request of `rr`, `rate` and `swap`.
pub const REQUEST: &str = r#"{"method":"index.index.index"}"#;
/// The application-level ping and its answer.
pub const PING: &str = "2";
/// The answer to [`PING`].
pub const PONG: &str = "3";
/// The event every room member gets for a wall message.
pub const WALL_SAY_BROADCAST: &str = "wallSayBroadcast";

/// The value of the envelope's `event` key, if it has one.
pub fn event(text: &str) -> Option<&str> {
    const KEY: &str = "\"event\":\"";
    let start = text.find(KEY)? + KEY.len();
    let len = text[start..].find('"')?;
    Some(&text[start..start + len])
}

/// The envelope's `status`, if it has one.
pub fn status(text: &str) -> Option<i64> {
    const KEY: &str = "\"status\":";
    let start = text.find(KEY)? + KEY.len();
    let digits: String = text[start..]
        .chars()
        .take_while(|c| c.is_ascii_digit() || *c == '-')
        .collect();
    digits.parse().ok()
}

/// What a text frame from the server is, relative to the event a request waits for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// The `receiveMessage` ack (or a `3`): not the answer, keep waiting.
    Ack,
    /// The awaited event.
    Expected,
    /// Anything else: an error answer (404, 500, ...) or an unexpected frame.
    Other,
}

/// Classifies `text` against the awaited event `expected`.
pub fn classify(text: &str, expected: &str) -> Kind {
    match event(text) {
        Some(e) if e == expected => Kind::Expected,
        // A resumable session's greeting comes before any answer.
        Some(ACK | "sessionStart") => Kind::Ack,
        None if text == PONG => Kind::Ack,
        _ => Kind::Other,
    }
}

/// A short, printable description of an unexpected frame (for error messages).
pub fn describe(text: &str) -> String {
    match (status(text), event(text)) {
        (Some(status), Some(event)) => format!("{status} {event}"),
        _ => text.chars().take(120).collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_status_and_event() {
        let ack = r#"{"status":200,"event":"receiveMessage","info":"服务端已收到您的请求内容"}"#;
        assert_eq!(event(ack), Some(ACK));
        assert_eq!(status(ack), Some(200));
        assert_eq!(classify(ack, SUCCESS), Kind::Ack);
        let ok = r#"{"status":200,"event":"success","info":"执行完成"}"#;
        assert_eq!(classify(ok, SUCCESS), Kind::Expected);
        let missing = r#"{"status":404,"event":"controllerNotFound","info":"x"}"#;
        assert_eq!(classify(missing, SUCCESS), Kind::Other);
        assert_eq!(describe(missing), "404 controllerNotFound");
        assert_eq!(classify("3", SUCCESS), Kind::Ack);
        assert_eq!(classify("garbage", SUCCESS), Kind::Other);
    }
}
