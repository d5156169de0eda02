//! What the host does to a client's message before a module sees it.
//!
//! The client's `fd`, `code` and `auth` are overwritten with what the host knows
//! (never trusted), then every string value is HTML-escaped as MSwoole did — except
//! `fd` and `code`, which are registry keys and must read the same here and in
//! `onClose` (MSwoole escaped the code in one and not the other, and left ghosts).

use serde_json::{Map, Value};

use crate::error::CallError;

/// A text frame, classified.
#[derive(Debug, PartialEq)]
pub enum Inbound {
    /// `2`: the application-level ping.
    Ping,
    /// A JSON object with an optional string `method`.
    Message {
        /// The `method` as sent (empty when absent).
        method: String,
        /// The object.
        body: Map<String, Value>,
    },
}

/// Classifies a text frame; anything but `2` or an object with a string `method` is bad input.
pub fn parse(text: &str) -> Result<Inbound, CallError> {
    if text == "2" {
        return Ok(Inbound::Ping);
    }
    let Ok(Value::Object(body)) = serde_json::from_str::<Value>(text) else {
        return Err(CallError::BadRequest);
    };
    let method = match body.get("method") {
        None | Some(Value::Null) => String::new(),
        Some(Value::String(method)) => method.clone(),
        Some(_) => return Err(CallError::BadRequest),
    };
    Ok(Inbound::Message { method, body })
}

/// The message a module gets, as JSON text: the client's object without its own
/// `fd`, `code` and `auth`, strings escaped when `escape` is set, then the host's
/// `auth`, `fd` and `code` appended (`injection`: prebuilt per connection by
/// `Identity::injection`, since they never change).
pub fn prepare(mut body: Map<String, Value>, injection: &str, escape: bool) -> String {
    for key in ["fd", "code", "auth"] {
        body.shift_remove(key);
    }
    if escape {
        body.values_mut().for_each(escape_strings);
    }
    // Serializing a map of JSON values cannot fail; serde_json's writer is faster than `Display`.
    let mut text = serde_json::to_string(&body).unwrap_or_else(|_| "{}".into());
    text.pop();
    if text.len() > 1 {
        text.push(',');
    }
    text.push_str(injection);
    text.push('}');
    text
}

/// HTML-escapes every string value, recursively; keys are left alone.
pub fn escape_strings(value: &mut Value) {
    match value {
        Value::String(text) => {
            if text.contains(['&', '<', '>', '"', '\'']) {
                *text = escape_html(text);
            }
        }
        Value::Array(items) => items.iter_mut().for_each(escape_strings),
        Value::Object(map) => map.values_mut().for_each(escape_strings),
        Value::Null | Value::Bool(_) | Value::Number(_) => {}
    }
}

/// PHP's `htmlspecialchars` with `ENT_QUOTES`.
fn escape_html(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 16);
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#039;"),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::identity::Identity;

    fn prepare(body: Map<String, Value>, identity: &Identity, escape: bool) -> String {
        super::prepare(body, identity.injection(escape), escape)
    }

    fn identity() -> Identity {
        let Value::Object(claims) =
            json!({"id": 1, "type": "wechatUser", "code": "a&b", "nickname": "<i>", "ctime": 9})
        else {
            unreachable!()
        };
        Identity::from_claims("node/1/7".into(), claims)
    }

    fn parsed(text: String) -> Value {
        serde_json::from_str(&text).expect("prepare writes JSON")
    }

    #[test]
    fn client_keys_keep_their_order_and_the_host_keys_come_last() {
        let text = prepare(body(json!({"b": 1, "fd": "x", "a": 2})), &identity(), false);
        assert!(
            text.starts_with(r#"{"b":1,"a":2,"auth":{"id":1,"#),
            "{text}"
        );
        assert!(
            text.ends_with(r#","fd":"node/1/7","code":"a&b"}"#),
            "{text}"
        );
        let empty = prepare(Map::new(), &identity(), false);
        assert!(empty.starts_with(r#"{"auth":"#), "{empty}");
    }

    fn body(value: Value) -> Map<String, Value> {
        match value {
            Value::Object(map) => map,
            _ => Map::new(),
        }
    }

    #[test]
    fn ping_objects_and_bad_input() {
        assert_eq!(parse("2"), Ok(Inbound::Ping));
        assert!(
            matches!(parse(r#"{"say":"x"}"#), Ok(Inbound::Message { method, .. }) if method.is_empty())
        );
        assert!(
            matches!(parse(r#"{"method":"a.b"}"#), Ok(Inbound::Message { method, .. }) if method == "a.b")
        );
        for bad in ["", "3", "[1]", "\"x\"", "{", r#"{"method":5}"#] {
            assert_eq!(parse(bad), Err(CallError::BadRequest), "{bad:?}");
        }
    }

    #[test]
    fn client_values_for_fd_code_auth_are_overwritten() {
        let message = parsed(prepare(
            body(json!({"fd": "evil", "code": "other", "auth": {"id": 0}})),
            &identity(),
            false,
        ));
        assert_eq!(message["fd"], "node/1/7");
        assert_eq!(message["code"], "a&b");
        assert_eq!(
            message["auth"],
            json!({"id": 1, "type": "wechatUser", "code": "a&b", "nickname": "<i>"})
        );
    }

    #[test]
    fn strings_are_escaped_recursively_except_fd_and_code() {
        let sent = json!({"say": "<b>&\"'", "list": ["<", {"k<": ">"}], "n": 5});
        let message = parsed(prepare(body(sent), &identity(), true));
        assert_eq!(message["say"], "&lt;b&gt;&amp;&quot;&#039;");
        assert_eq!(message["list"], json!(["&lt;", {"k<": "&gt;"}]));
        assert_eq!(message["n"], 5);
        assert_eq!(message["code"], "a&b");
        assert_eq!(message["auth"]["code"], "a&amp;b");
        assert_eq!(message["auth"]["nickname"], "&lt;i&gt;");
    }

    #[test]
    fn numbers_reach_the_module_as_the_client_sent_them() {
        // Found by the `message` fuzz target (docs/FUZZING.md): without serde_json's
        // `float_roundtrip`, this integer was read 1 ulp off and the module got
        // 2.9999999999999996e126 where the client sent 2 and 126 nines (3e126 rounded).
        let sent = format!(r#"{{"m":2{}}}"#, "9".repeat(126));
        let Ok(Inbound::Message { body, .. }) = parse(&sent) else {
            panic!("an object");
        };
        let message = parsed(prepare(body.clone(), &identity(), false));
        assert_eq!(message["m"], body["m"]);
        assert_eq!(message["m"].as_f64(), Some(3e126));
    }
}
