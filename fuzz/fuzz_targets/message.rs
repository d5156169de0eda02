//! Message preparation (core/src/message.rs, core/src/router.rs, core/src/spec.rs):
//! a client's text frame is classified, routed and prepared for a module as the host
//! does it. Properties: the host's `fd`, `code` and `auth` replace the client's; with
//! `escape_html` on, no string value the client sent or the token carried reaches the
//! module with a raw `<`, `>`, `"`, `'` or a bare `&`; with it off, the client's values
//! arrive unchanged; a route's names are `[A-Za-z0-9_]+`, and a method that does not
//! route is answered with a fixed envelope that never echoes it.
#![no_main]

use std::collections::HashMap;

use libfuzzer_sys::fuzz_target;
use mswoole_core::{
    error::CallError,
    identity::Identity,
    message::{self, Inbound},
    router::{self, is_name},
    spec::{ControllerSpec, ModuleSpec},
};
use serde_json::{Map, Value};

/// The input: a flags byte (bit 0: `escape_html`), then the client's text frame, the
/// token's `code` and its `nickname`, separated by NUL, so that seeds are readable
/// (`fuzz/corpus/message`).
struct Input<'a> {
    frame: &'a str,
    code: &'a str,
    nickname: &'a str,
    escape: bool,
}

impl<'a> Input<'a> {
    fn read(data: &'a [u8]) -> Option<Self> {
        let (&flags, rest) = data.split_first()?;
        let mut fields = std::str::from_utf8(rest).ok()?.split('\0');
        Some(Input {
            frame: fields.next().unwrap_or(""),
            code: fields.next().unwrap_or(""),
            nickname: fields.next().unwrap_or(""),
            escape: flags & 1 == 1,
        })
    }
}

/// The five entities `escape_html` writes.
const ENTITIES: [&str; 5] = ["&amp;", "&lt;", "&gt;", "&quot;", "&#039;"];

/// Whether `text` is fully escaped: no raw `< > " '`, and every `&` starts an entity.
fn escaped(text: &str) -> bool {
    !text.contains(['<', '>', '"', '\''])
        && text
            .match_indices('&')
            .all(|(at, _)| ENTITIES.iter().any(|e| text[at..].starts_with(e)))
}

/// Every string value in `value` (keys are left alone, as MSwoole did) is escaped.
fn all_escaped(value: &Value) -> bool {
    match value {
        Value::String(text) => escaped(text),
        Value::Array(items) => items.iter().all(all_escaped),
        Value::Object(map) => map.values().all(all_escaped),
        Value::Null | Value::Bool(_) | Value::Number(_) => true,
    }
}

/// A module `Index` with controller `Fallback` that takes any action (`onMessage`).
fn spec() -> ModuleSpec {
    let mut controllers = HashMap::new();
    controllers.insert(
        "Fallback".to_string(),
        ControllerSpec {
            declared: "Fallback".into(),
            actions: HashMap::new(),
            on_message: true,
        },
    );
    ModuleSpec {
        name: "Index".into(),
        version: "1".into(),
        controllers,
        names_as_declared: true,
    }
}

fuzz_target!(|data: &[u8]| {
    let Some(input) = Input::read(data) else {
        return;
    };
    let (method, body) = match message::parse(input.frame) {
        Ok(Inbound::Message { method, body }) => (method, body),
        Ok(Inbound::Ping) => return assert_eq!(input.frame, "2"),
        Err(error) => return assert_eq!(error, CallError::BadRequest),
    };

    // Routing: names are names; anything else is the fixed 404, never an echo.
    match router::route(&method) {
        Ok(route) => {
            for name in [&route.module, &route.controller, &route.action] {
                assert!(is_name(name), "routed to {name:?} from {method:?}");
            }
            if let Ok(target) = spec().target(&route) {
                assert!(is_name(&target.controller) && is_name(&target.action));
            }
        }
        Err(error) => {
            assert_eq!(error, CallError::ControllerNotFound);
            assert_eq!(
                error.envelope().to_json(),
                r#"{"status":404,"event":"controllerNotFound","info":"控制器不存在"}"#,
                "the 404 for {method:?} is not the fixed one"
            );
        }
    }

    // Preparation.
    let mut claims = Map::new();
    claims.insert("id".into(), Value::from(7));
    claims.insert("type".into(), Value::from("wechatUser"));
    claims.insert("code".into(), Value::from(input.code));
    claims.insert("nickname".into(), Value::from(input.nickname));
    let identity = Identity::from_claims("node/1/7".into(), claims);
    let prepared = message::prepare(body.clone(), identity.injection(input.escape), input.escape);
    let Ok(Value::Object(out)) = serde_json::from_str::<Value>(&prepared) else {
        panic!("prepare wrote no JSON object: {prepared}");
    };
    // The host's members, last, once each.
    let keys: Vec<&str> = out.keys().map(String::as_str).collect();
    assert_eq!(keys[keys.len() - 3..], ["auth", "fd", "code"], "{prepared}");
    assert_eq!(out["fd"], "node/1/7");
    assert_eq!(
        out["code"], input.code,
        "the code is a registry key, never escaped"
    );
    assert_eq!(out["auth"]["id"], 7);
    let client = |map: &Map<String, Value>| -> Map<String, Value> {
        map.iter()
            .filter(|(k, _)| !matches!(k.as_str(), "fd" | "code" | "auth"))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect()
    };
    if input.escape {
        assert!(all_escaped(&Value::Object(client(&out))), "{prepared}");
        assert!(all_escaped(&out["auth"]), "{prepared}");
        // Nothing else changed: the client's keys, in order.
        assert!(client(&out).keys().eq(client(&body).keys()));
    } else {
        assert_eq!(
            client(&out),
            client(&body),
            "values changed with escape_html off"
        );
        assert_eq!(out["auth"]["nickname"], input.nickname);
    }
});
