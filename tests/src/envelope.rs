//! A server reply: `{"status","event","info","param"?}`, kept as the exact text and as JSON.

use std::fmt;

use serde_json::{Map, Value};

/// The acknowledgement every valid object gets first (docs/PROTOCOL.md, "Messages and routing"), byte for byte.
pub const ACK: &str =
    r#"{"status":200,"event":"receiveMessage","info":"服务端已收到您的请求内容"}"#;

/// One envelope as received.
#[derive(Clone, PartialEq)]
pub struct Envelope {
    /// The frame's text, exactly as sent (for key order and byte-exact checks).
    pub text: String,
    /// The parsed object (key order preserved).
    pub value: Map<String, Value>,
}

impl Envelope {
    /// Parses a text frame, failing the test if it is not a JSON object.
    pub fn parse(text: &str) -> Envelope {
        match serde_json::from_str::<Value>(text) {
            Ok(Value::Object(value)) => Envelope {
                text: text.to_string(),
                value,
            },
            _ => panic!("expected an envelope (a JSON object), got {text:?}"),
        }
    }

    /// `status`.
    pub fn status(&self) -> u64 {
        self.value
            .get("status")
            .and_then(Value::as_u64)
            .unwrap_or_else(|| panic!("envelope without an integer status: {}", self.text))
    }

    /// `event`.
    pub fn event(&self) -> &str {
        self.value
            .get("event")
            .and_then(Value::as_str)
            .unwrap_or_else(|| panic!("envelope without a string event: {}", self.text))
    }

    /// `info`.
    pub fn info(&self) -> &str {
        self.value
            .get("info")
            .and_then(Value::as_str)
            .unwrap_or_else(|| panic!("envelope without a string info: {}", self.text))
    }

    /// `param`, if present.
    pub fn param(&self) -> Option<&Value> {
        self.value.get("param")
    }

    /// `param`, which must be present.
    pub fn expect_param(&self) -> &Value {
        self.param()
            .unwrap_or_else(|| panic!("envelope without param: {}", self.text))
    }

    /// Asserts status and event; returns the envelope for further checks.
    #[track_caller]
    pub fn assert_is(&self, status: u64, event: &str) -> &Self {
        assert!(
            self.value.get("status").and_then(Value::as_u64) == Some(status)
                && self.value.get("event").and_then(Value::as_str) == Some(event),
            "expected status {status} event {event:?}, got {}",
            self.text
        );
        self
    }

    /// Asserts the keys are exactly `status`, `event`, `info` (and `param` if present), in that order.
    #[track_caller]
    pub fn assert_key_order(&self) -> &Self {
        let keys: Vec<&str> = self.value.keys().map(String::as_str).collect();
        let expected: &[&str] = if self.value.contains_key("param") {
            &["status", "event", "info", "param"]
        } else {
            &["status", "event", "info"]
        };
        assert_eq!(keys, expected, "envelope keys out of order: {}", self.text);
        self
    }
}

impl fmt::Debug for Envelope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

/// The success reply to `index.index.index`, byte for byte.
pub const SUCCESS: &str = r#"{"status":200,"event":"success","info":"执行完成"}"#;
