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

    mod properties {
        //! The invariants the `message` fuzz target checks (docs/FUZZING.md), as
        //! properties in the stable suite.
        use proptest::prelude::*;
        use serde_json::{json, Map, Value};

        use super::super::*;
        use crate::identity::Identity;

        /// Text with the characters escaping is about, among others.
        fn text() -> impl Strategy<Value = String> {
            prop_oneof!["[<>&\"'a-z0-9 ;#]{0,12}", any::<String>()]
        }

        fn json_value() -> impl Strategy<Value = Value> {
            let leaf = prop_oneof![
                Just(Value::Null),
                any::<bool>().prop_map(Value::from),
                any::<i64>().prop_map(Value::from),
                any::<f64>().prop_map(|f| json!(f)),
                text().prop_map(Value::from),
            ];
            leaf.prop_recursive(4, 32, 6, |inner| {
                prop_oneof![
                    prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
                    prop::collection::vec((text(), inner), 0..6)
                        .prop_map(|members| Value::Object(members.into_iter().collect())),
                ]
            })
        }

        /// A client's object, sometimes with its own `fd`, `code` and `auth`.
        fn client_object() -> impl Strategy<Value = Map<String, Value>> {
            let key = prop_oneof![
                Just("fd".to_string()),
                Just("code".into()),
                Just("auth".into()),
                text()
            ];
            prop::collection::vec((key, json_value()), 0..8)
                .prop_map(|members| members.into_iter().collect())
        }

        const ENTITIES: [&str; 5] = ["&amp;", "&lt;", "&gt;", "&quot;", "&#039;"];

        fn escaped(value: &Value) -> bool {
            match value {
                Value::String(text) => {
                    !text.contains(['<', '>', '"', '\''])
                        && text
                            .match_indices('&')
                            .all(|(at, _)| ENTITIES.iter().any(|e| text[at..].starts_with(e)))
                }
                Value::Array(items) => items.iter().all(escaped),
                Value::Object(map) => map.values().all(escaped),
                Value::Null | Value::Bool(_) | Value::Number(_) => true,
            }
        }

        fn without_host_keys(map: &Map<String, Value>) -> Map<String, Value> {
            map.iter()
                .filter(|(k, _)| !matches!(k.as_str(), "fd" | "code" | "auth"))
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect()
        }

        fn identity(code: &str, nickname: &str) -> Identity {
            let Value::Object(claims) =
                json!({"id": 7, "type": "wechatUser", "code": code, "nickname": nickname})
            else {
                unreachable!("an object literal")
            };
            Identity::from_claims("node/1/7".into(), claims)
        }

        proptest! {
            #[test]
            fn prepared_messages_carry_the_hosts_members_and_escape_every_value(
                body in client_object(), code in text(), nickname in text(), escape: bool,
            ) {
                let identity = identity(&code, &nickname);
                let text = prepare(body.clone(), identity.injection(escape), escape);
                let Ok(Value::Object(out)) = serde_json::from_str::<Value>(&text) else {
                    panic!("prepare wrote no JSON object: {text}");
                };
                let keys: Vec<&str> = out.keys().map(String::as_str).collect();
                prop_assert_eq!(&keys[keys.len() - 3..], &["auth", "fd", "code"]);
                prop_assert_eq!(&out["fd"], "node/1/7");
                prop_assert_eq!(&out["code"], code.as_str());
                prop_assert_eq!(&out["auth"]["id"], 7);
                if escape {
                    prop_assert!(escaped(&Value::Object(without_host_keys(&out))), "{}", text);
                    prop_assert!(escaped(&out["auth"]), "{}", text);
                    prop_assert!(without_host_keys(&out).keys().eq(without_host_keys(&body).keys()));
                } else {
                    prop_assert_eq!(without_host_keys(&out), without_host_keys(&body));
                    prop_assert_eq!(&out["auth"]["nickname"], nickname.as_str());
                }
            }

            #[test]
            fn any_text_is_classified_without_a_panic(text in any::<String>()) {
                match parse(&text) {
                    Ok(Inbound::Ping) => prop_assert_eq!(text, "2"),
                    Ok(Inbound::Message { .. }) => {
                        prop_assert!(matches!(serde_json::from_str::<Value>(&text), Ok(Value::Object(_))));
                    }
                    Err(error) => prop_assert_eq!(error, CallError::BadRequest),
                }
            }

            #[test]
            fn only_objects_with_a_string_method_are_messages(value in json_value(), method in prop::option::of(text())) {
                let mut value = value;
                if let (Value::Object(map), Some(method)) = (&mut value, &method) {
                    map.insert("method".into(), Value::from(method.as_str()));
                }
                let text = value.to_string();
                match (&value, parse(&text)) {
                    (_, Ok(Inbound::Ping)) => prop_assert_eq!(text, "2"),
                    (Value::Object(map), Ok(Inbound::Message { method: got, body })) => {
                        prop_assert_eq!(&body, map);
                        let expected = map.get("method").and_then(Value::as_str).unwrap_or("");
                        prop_assert_eq!(got, expected);
                    }
                    (Value::Object(map), Err(error)) => {
                        prop_assert_eq!(error, CallError::BadRequest);
                        prop_assert!(!matches!(map.get("method"), None | Some(Value::Null | Value::String(_))));
                    }
                    (_, got) => prop_assert_eq!(got, Err(CallError::BadRequest)),
                }
            }
        }
    }
}
