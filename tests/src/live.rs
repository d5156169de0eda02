//! The Live protocol as a test client speaks it, shared by the memory and Redis suites.

use crate::{Client, Envelope, TestHost, Token, Value};

/// Connects with a freshly minted token.
pub async fn connect(host: &TestHost, id: &str, kind: &str, code: &str, nickname: &str) -> Client {
    let token = Token::new(id, kind, code, nickname).mint();
    host.connect(&format!("/live?auth={token}")).await
}

/// Connects as a big screen of room `code` and joins its wall set (`wallJoinSuccess`).
pub async fn wall_in(host: &TestHost, id: &str, code: &str, nickname: &str) -> Client {
    let mut wall = connect(host, id, "wall", code, nickname).await;
    wall.ok("live.wall.join", serde_json::json!({}), "wallJoinSuccess")
        .await;
    wall
}

/// Connects as a phone user of room `code` and joins its user set (`userJoinSuccess`).
pub async fn user_in(host: &TestHost, id: &str, code: &str, nickname: &str) -> Client {
    let mut user = connect(host, id, "wechatUser", code, nickname).await;
    user.ok("live.user.join", serde_json::json!({}), "userJoinSuccess")
        .await;
    user
}

/// The Live protocol as a test client speaks it.
// Test clients are awaited where they are used, never sent across threads.
#[allow(async_fn_in_trait)]
pub trait Speaks {
    /// Sends `{"method": method, ...fields}`, skips the ack, returns the reply.
    async fn act(&mut self, method: &str, fields: Value) -> Envelope;

    /// Acts and asserts a 200 reply with `event`; returns its `param` (`null` if none).
    async fn ok(&mut self, method: &str, fields: Value, event: &str) -> Value {
        let reply = self.act(method, fields).await;
        reply.assert_is(200, event);
        reply.param().cloned().unwrap_or(Value::Null)
    }

    /// Acts and asserts the refusal `status` `event`, without `param`.
    async fn refused(&mut self, method: &str, fields: Value, status: u64, event: &str) {
        let reply = self.act(method, fields).await;
        reply.assert_is(status, event);
        assert_eq!(reply.param(), None, "a refusal has no param: {reply:?}");
    }

    /// Receives a 200 push with `event`; returns its `param`.
    async fn hears(&mut self, event: &str) -> Value;
}

impl Speaks for Client {
    async fn act(&mut self, method: &str, fields: Value) -> Envelope {
        let mut message = match fields {
            Value::Object(map) => map,
            other => panic!("a message is a JSON object, not {other}"),
        };
        message.insert("method".into(), method.into());
        let reply = self.call(&Value::Object(message)).await;
        reply.assert_key_order();
        reply
    }

    async fn hears(&mut self, event: &str) -> Value {
        let pushed = self.expect_envelope(200, event).await;
        pushed.assert_key_order();
        pushed.expect_param().clone()
    }
}

/// The message ids of a history, in the order shown.
pub fn ids(history: &Value) -> Vec<i64> {
    history
        .as_array()
        .unwrap_or_else(|| panic!("a history is an array: {history}"))
        .iter()
        .map(|message| message["id"].as_i64().expect("an integer id"))
        .collect()
}

/// The keys of a message, in order.
pub fn keys(message: &Value) -> Vec<&str> {
    message
        .as_object()
        .unwrap_or_else(|| panic!("a message is an object: {message}"))
        .keys()
        .map(String::as_str)
        .collect()
}

/// A message id.
pub fn id(param: &Value) -> i64 {
    param
        .as_i64()
        .unwrap_or_else(|| panic!("an integer id: {param}"))
}
