//! The JSON envelope every frame to a client is: `{"status","event","info","param"}`.
//!
//! Keys always come in that order and `param` only when it is present and not
//! `null`, so the text is written by hand rather than through a map.

use serde_json::Value;

/// A host-owned envelope.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Envelope {
    /// Status code.
    pub status: u16,
    /// Event name.
    pub event: String,
    /// Human-readable text.
    pub info: String,
    /// `param` as validated JSON text; `None` leaves the key out.
    param: Option<String>,
}

/// `param` text a module sent that is not JSON.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InvalidParam;

impl Envelope {
    /// An envelope without `param`.
    pub fn new(status: u16, event: &str, info: &str) -> Self {
        Envelope {
            status,
            event: event.into(),
            info: info.into(),
            param: None,
        }
    }

    /// The same envelope with `param` (JSON `null` leaves it out).
    pub fn with_param(mut self, param: &Value) -> Self {
        self.param = (!param.is_null()).then(|| param.to_string());
        self
    }

    /// The same envelope with `param` given as JSON text, which is checked.
    pub fn with_param_text(mut self, text: &str) -> Result<Self, InvalidParam> {
        let value: Value = serde_json::from_str(text).map_err(|_| InvalidParam)?;
        self.param = (!value.is_null()).then(|| text.trim().to_string());
        Ok(self)
    }

    /// The frame text.
    pub fn to_json(&self) -> String {
        let mut text = String::with_capacity(64 + self.param.as_ref().map_or(0, String::len));
        text.push_str("{\"status\":");
        text.push_str(&self.status.to_string());
        text.push_str(",\"event\":");
        push_json_string(&mut text, &self.event);
        text.push_str(",\"info\":");
        push_json_string(&mut text, &self.info);
        if let Some(param) = &self.param {
            text.push_str(",\"param\":");
            text.push_str(param);
        }
        text.push('}');
        text
    }
}

/// Writes `value` as a JSON string (escaping only what JSON requires; UTF-8 stays as is).
fn push_json_string(out: &mut String, value: &str) {
    out.push('"');
    for c in value.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn keys_come_in_order_and_null_param_is_left_out() {
        let envelope = Envelope::new(200, "success", "执行完成");
        assert_eq!(
            envelope.to_json(),
            r#"{"status":200,"event":"success","info":"执行完成"}"#
        );
        assert_eq!(
            envelope.clone().with_param(&Value::Null).to_json(),
            envelope.to_json()
        );
    }

    #[test]
    fn falsy_params_are_data() {
        for (param, text) in [(json!(0), "0"), (json!(""), "\"\""), (json!([]), "[]")] {
            let envelope = Envelope::new(200, "e", "i").with_param(&param);
            assert_eq!(
                envelope.to_json(),
                format!(r#"{{"status":200,"event":"e","info":"i","param":{text}}}"#)
            );
        }
    }

    #[test]
    fn param_text_from_a_module_is_checked() {
        assert_eq!(
            Envelope::new(200, "e", "i").with_param_text("{bad"),
            Err(InvalidParam)
        );
        let ok = Envelope::new(200, "e", "i")
            .with_param_text(r#"{"a":"\"q\""}"#)
            .expect("valid JSON");
        assert_eq!(
            ok.to_json(),
            r#"{"status":200,"event":"e","info":"i","param":{"a":"\"q\""}}"#
        );
    }

    #[test]
    fn strings_are_escaped_as_serde_json_does() {
        let (event, info) = ("a\"b\\c\u{1}", "line\nbreak\t中");
        let expected = format!(
            r#"{{"status":400,"event":{},"info":{}}}"#,
            Value::from(event),
            Value::from(info)
        );
        assert_eq!(Envelope::new(400, event, info).to_json(), expected);
    }
}
