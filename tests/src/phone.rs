//! A resumable client as a test speaks it (README.md, "Resumable sessions"): it checks
//! that every envelope carries the next seq as its last key; and the manager calls that
//! tell where a session's frames go.

use std::time::Duration;

use crate::{eventually::eventually, json, Client, Frame, TestHost, Value};

/// A resumable client: checks that every envelope carries the next seq as its last key.
pub struct Phone {
    /// Its socket.
    pub client: Client,
    /// Its session id.
    pub session: String,
    /// The highest seq received.
    pub last: u64,
}

/// The envelope's keys in order.
pub fn keys(value: &Value) -> Vec<String> {
    value
        .as_object()
        .map(|object| object.keys().cloned().collect())
        .unwrap_or_default()
}

pub fn parse(text: &str) -> Value {
    serde_json::from_str(text).unwrap_or_else(|error| panic!("not JSON ({error}): {text}"))
}

/// Opens a resumable session with `token`; the first frame is `sessionStart`.
pub async fn start(host: &TestHost, token: &str) -> Phone {
    let mut client = host.connect(&format!("/live?auth={token}&resume=1")).await;
    let first = parse(&client.rx.recv_text().await);
    assert_eq!(first["event"], "sessionStart", "{first}");
    assert_eq!(first["status"], 200, "{first}");
    assert_eq!(first["param"]["seq"], 0, "{first}");
    assert_eq!(
        keys(&first),
        ["status", "event", "info", "param"],
        "{first}"
    );
    let session = first["param"]["session"]
        .as_str()
        .unwrap_or_else(|| panic!("no session id: {first}"))
        .to_string();
    assert!(
        session.len() >= 32,
        "a session id carries at least 128 bits: {session}"
    );
    Phone {
        client,
        session,
        last: 0,
    }
}

/// Resumes `session` with `token` and `last`; returns the client and its first envelope.
pub async fn resume(host: &TestHost, token: &str, session: &str, last: &str) -> (Client, Value) {
    let mut client = host
        .connect(&format!("/live?auth={token}&resume={session}&last={last}"))
        .await;
    let first = parse(&client.rx.recv_text().await);
    assert!(
        first.get("seq").is_none(),
        "a control envelope has no seq: {first}"
    );
    (client, first)
}

impl Phone {
    /// The next envelope: its seq is the next one and its last key; returned without it.
    pub async fn next(&mut self) -> Value {
        let text = self.client.rx.recv_text().await;
        let mut value = parse(&text);
        let keys = keys(&value);
        assert_eq!(
            keys.last().map(String::as_str),
            Some("seq"),
            "seq is the last key: {text}"
        );
        assert_eq!(value["seq"], self.last + 1, "seqs count up by one: {text}");
        self.last += 1;
        if let Some(object) = value.as_object_mut() {
            object.shift_remove("seq");
        }
        value
    }

    /// Sends a message; returns the reply after the ack.
    pub async fn call(&mut self, message: Value) -> Value {
        self.client.send_json(&message).await;
        let ack = self.next().await;
        assert_eq!(ack["event"], "receiveMessage", "{ack}");
        self.next().await
    }
}

/// Resumes a dropped phone's session; the first envelope must be `sessionResumed`.
/// Returns the resumed phone and its `missed` count.
pub async fn resume_phone(
    host: &TestHost,
    token: &str,
    session: String,
    last: u64,
) -> (Phone, u64) {
    let (client, first) = resume(host, token, &session, &last.to_string()).await;
    assert_eq!(first["event"], "sessionResumed", "{first}");
    assert_eq!(first["param"]["session"], session.as_str(), "{first}");
    let missed = first["param"]["missed"]
        .as_u64()
        .unwrap_or_else(|| panic!("no missed count: {first}"));
    (
        Phone {
            client,
            session,
            last,
        },
        missed,
    )
}

/// Connections the host counts as connected (detached sessions left out).
pub async fn connections(host: &TestHost) -> u64 {
    let status = host.manager(&json!({"method": "status"})).await;
    status.expect_param()["connections"]
        .as_u64()
        .unwrap_or_default()
}

/// Waits until the host counts `count` connected clients.
pub async fn wait_connections(host: &TestHost, count: u64) {
    let what = format!("the host counting {count} connections");
    eventually(&what, Duration::from_secs(5), || async {
        connections(host).await == count
    })
    .await;
}

/// Pushes `{status:200, event, info:"", param}` to `fd`; returns how many local connections it reached.
pub async fn push(host: &TestHost, fd: &str, event: &str, param: Value) -> u64 {
    let reply = host
        .manager(&json!({"method": "push", "fd": fd, "event": event, "info": "", "param": param}))
        .await;
    reply.assert_is(200, "pushSuccess");
    reply.expect_param()["local"].as_u64().unwrap_or_default()
}

/// How many local members of `key` a manager broadcast reaches.
pub async fn broadcast_reach(host: &TestHost, key: &str) -> u64 {
    let reply = host
        .manager(&json!({"method": "broadcast", "key": key, "event": "probe", "info": ""}))
        .await;
    reply.assert_is(200, "broadcastSuccess");
    reply.expect_param()["local"].as_u64().unwrap_or_default()
}

pub async fn fd_of(phone: &mut Phone) -> String {
    let reply = phone.call(json!({"method": "index.index.echo"})).await;
    reply["param"]["fd"]
        .as_str()
        .unwrap_or_else(|| panic!("echo shows no fd: {reply}"))
        .to_string()
}

/// Two resumes of one session raced: one won (`sessionResumed`), the other is `busy` or
/// was taken over by the winner.
pub fn assert_one_resume_won(first_a: &Value, first_b: &Value) {
    let resumed = |first: &Value| first["event"] == "sessionResumed";
    assert!(
        resumed(first_a) || resumed(first_b),
        "one resume wins: {first_a} / {first_b}"
    );
    for first in [first_a, first_b] {
        assert!(
            resumed(first) || first["info"] == "busy",
            "the other is busy or was taken over: {first}"
        );
    }
}

/// How many of `clients` receive the next frame, a push of `event`, within 500 ms each.
pub async fn holders(clients: [&mut Client; 2], event: &str) -> usize {
    let mut holders = 0;
    for client in clients {
        if let Some(Frame::Text(text)) = client.rx.recv_within(Duration::from_millis(500)).await {
            assert_eq!(parse(&text)["event"], event, "{text}");
            holders += 1;
        }
    }
    holders
}
