//! The demo pages: a big screen and a phone, served by the host itself (README.md, "Demo").
//!
//! Why: someone trying the host should see a live wall work with nothing but a browser —
//! no backend to issue tokens, no web server for the pages. So with `[demo] enabled = true`
//! the outside port also answers `/demo/wall`, `/demo/phone`, the script both pages use
//! (`/demo/client.js`), and `/demo/token`, which mints a token for whoever asks. That last
//! one is why the demo is off by default and in `config/app.toml`: on a real deployment it
//! would let anyone be anyone.
//!
//! How: the pages are static files under `demo/`, embedded with `include_str!` (no
//! external assets); tokens are made by the host's own [`TokenCodec`] with the configured
//! key and cipher, so the host accepts them like any backend's. [`reply`] is a pure
//! function of the request; `server` writes what it returns.

use std::sync::atomic::{AtomicU64, Ordering};

use serde_json::{json, Value};

use crate::{edge::auth::TokenCodec, edge::handshake::Head};

/// The big screen: moderation queue, approved messages, wall messages with recall, the poll.
const WALL: &str = include_str!("demo/wall.html");
/// The phone: join, say, see approved messages and the wall's, vote.
const PHONE: &str = include_str!("demo/phone.html");
/// Connect, send, on-event: the pages' one client, to be replaced by `/mswoole.js`.
const CLIENT: &str = include_str!("demo/client.js");

/// The longest room code and nickname the endpoint mints (characters).
const MAX_CODE: usize = 64;
/// See [`MAX_CODE`].
const MAX_NICKNAME: usize = 32;

/// Numbers the minted identities, so that two phones are two users (per process: the
/// pages mint a fresh token on every load, so ids of a previous run do not come back).
static NEXT_ID: AtomicU64 = AtomicU64::new(1);

/// An HTTP answer for `server` to write.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply {
    /// The status code.
    pub status: u16,
    /// The `Content-Type`.
    pub content_type: &'static str,
    /// The body.
    pub body: String,
}

impl Reply {
    fn ok(content_type: &'static str, body: impl Into<String>) -> Reply {
        Reply {
            status: 200,
            content_type,
            body: body.into(),
        }
    }

    fn json(status: u16, body: &Value) -> Reply {
        Reply {
            status,
            content_type: "application/json",
            body: body.to_string(),
        }
    }
}

/// The answer to a plain HTTP request under `/demo/`, or `None` when the path is not the
/// demo's (the caller answers 404 as for any other path). Call it only with the demo on.
pub fn reply(codec: &TokenCodec, head: &Head, now: u64) -> Option<Reply> {
    const HTML: &str = "text/html; charset=utf-8";
    if head.method != "GET" {
        return None;
    }
    match head.path.as_str() {
        "/demo/wall" => Some(Reply::ok(HTML, WALL)),
        "/demo/phone" => Some(Reply::ok(HTML, PHONE)),
        "/demo/client.js" => Some(Reply::ok("text/javascript; charset=utf-8", CLIENT)),
        "/demo/token" => Some(match mint(codec, head, now) {
            Ok(minted) => Reply::json(200, &minted),
            Err(error) => Reply::json(400, &json!({ "error": error })),
        }),
        _ => None,
    }
}

/// `/demo/token?type=wall|wechatUser&code=…&nickname=…`: a token for a new identity,
/// with what it carries (`{token, id, type, code, nickname}`); the error names the
/// parameter.
fn mint(codec: &TokenCodec, head: &Head, now: u64) -> Result<Value, String> {
    let kind = head.query_param("type").unwrap_or_default();
    let prefix = match kind.as_str() {
        "wall" => "wall",
        "wechatUser" => "phone",
        _ => return Err("type must be wall or wechatUser".into()),
    };
    let code = head.query_param("code").unwrap_or_default();
    let code = code.trim();
    if code.is_empty() || code.chars().count() > MAX_CODE || code.chars().any(char::is_control) {
        return Err(format!(
            "code must be 1 to {MAX_CODE} characters, no control characters"
        ));
    }
    let nickname = head.query_param("nickname").unwrap_or_default();
    let nickname = nickname.trim();
    if nickname.chars().count() > MAX_NICKNAME || nickname.chars().any(char::is_control) {
        return Err(format!(
            "nickname must be at most {MAX_NICKNAME} characters, no control characters"
        ));
    }
    let id = format!("{prefix}-{}", NEXT_ID.fetch_add(1, Ordering::Relaxed));
    let claims = json!({"id": id, "type": kind, "code": code, "nickname": nickname, "ctime": now});
    Ok(json!({
        "token": codec.encode(&claims),
        "id": id,
        "type": kind,
        "code": code,
        "nickname": nickname,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::edge::auth::{Cipher, DEFAULT_KEY};

    fn get(target: &str) -> Head {
        let (path, query) = target.split_once('?').unwrap_or((target, ""));
        Head {
            method: "GET".into(),
            version: 1,
            path: path.into(),
            query: query.into(),
            headers: Vec::new(),
        }
    }

    fn codec() -> TokenCodec {
        TokenCodec::new(DEFAULT_KEY, Cipher::TripleDesEcb, None)
    }

    #[test]
    fn minted_tokens_decode_with_the_same_codec() {
        let reply = reply(
            &codec(),
            &get("/demo/token?type=wechatUser&code=demo&nickname=%E5%B0%8F%E6%98%8E"),
            1_764_115_200,
        )
        .expect("a demo path");
        assert_eq!(reply.status, 200, "{}", reply.body);
        let body: Value = serde_json::from_str(&reply.body).expect("JSON");
        let token = body["token"].as_str().expect("a token");
        let claims = codec().decode(token).expect("the host's codec takes it");
        assert_eq!(claims["type"], "wechatUser");
        assert_eq!(claims["code"], "demo");
        assert_eq!(claims["nickname"], "小明");
        assert_eq!(claims["ctime"], 1_764_115_200);
        assert_eq!(claims["id"], body["id"]);
        let other = reply_body("/demo/token?type=wechatUser&code=demo");
        assert_ne!(other["id"], body["id"], "two phones are two users");
    }

    fn reply_body(target: &str) -> Value {
        let reply = reply(&codec(), &get(target), 0).expect("a demo path");
        serde_json::from_str(&reply.body).expect("JSON")
    }

    #[test]
    fn bad_parameters_are_400_naming_the_parameter() {
        for (target, word) in [
            ("/demo/token?code=demo", "type"),
            ("/demo/token?type=admin&code=demo", "type"),
            ("/demo/token?type=wall", "code"),
            ("/demo/token?type=wall&code=%20", "code"),
            ("/demo/token?type=wall&code=a%0Ab", "code"),
            (
                &format!("/demo/token?type=wall&code={}", "x".repeat(65)),
                "code",
            ),
            (
                &format!("/demo/token?type=wall&code=d&nickname={}", "n".repeat(33)),
                "nickname",
            ),
        ] {
            let reply = reply(&codec(), &get(target), 0).expect("a demo path");
            assert_eq!(reply.status, 400, "{target}");
            let error = serde_json::from_str::<Value>(&reply.body).expect("JSON")["error"]
                .as_str()
                .map(str::to_owned)
                .unwrap_or_default();
            assert!(error.starts_with(word), "{target}: {error}");
        }
    }

    #[test]
    fn pages_are_served_and_other_paths_are_not_the_demo() {
        for (path, marker) in [
            ("/demo/wall", "live.wall.join"),
            ("/demo/phone", "live.user.say"),
            ("/demo/client.js", "new WebSocket"),
        ] {
            let reply = reply(&codec(), &get(path), 0).expect("a demo path");
            assert_eq!(reply.status, 200);
            assert!(reply.body.contains(marker), "{path}");
        }
        assert_eq!(reply(&codec(), &get("/demo/other"), 0), None);
        let mut post = get("/demo/wall");
        post.method = "POST".into();
        assert_eq!(reply(&codec(), &post, 0), None);
    }
}
