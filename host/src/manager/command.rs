//! The manager's commands, typed: parsed once from either transport, executed by one
//! function each, answered with one [`Answer`].
//!
//! The WebSocket form (`{"method":"push",...}`, what the console sends) and the HTTP
//! form (`POST /api/push` with the same body) used to be separate untyped copies that
//! drifted; now [`Command::parse`] is the only reader of a command body and
//! [`Command::execute`] the only place a command acts (README.md, "Console and
//! manager port" and "HTTP API").
//!
//! Frames the manager sends clients (`say`, `push`, `broadcast`) are held to
//! `limits.max_message_bytes`, what a client may send itself, and go through
//! [`Delivery`](crate::fanout::delivery::Delivery) like modules' frames, so they reach
//! connections on every node.

use std::time::Duration;

use serde_json::{json, Map, Value};
use tokio_tungstenite::tungstenite::Utf8Bytes;

use super::{
    access::Manager,
    status::{Nodes, PluginStatus, RefusalStatus, Status},
};
use crate::{
    envelope::Envelope,
    fanout::delivery::Reach,
    plugins::bridge::Hook,
    registry::{is_host_key, RegistryError},
};

/// Whom a `push` goes to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Recipient {
    /// One connection, on whatever node holds it.
    Fd(String),
    /// The connection a phone user's uid maps to, if any.
    Uid(String),
}

/// One manager command.
#[derive(Debug, Clone, PartialEq)]
pub enum Command {
    /// Rescan the plugin directory, then `onReload`.
    Reload,
    /// Stop the host once the answer is sent (WebSocket only: README.md, "HTTP API").
    Stop,
    /// What `mswoole status` shows.
    Status,
    /// `serverBroadcast` to every client on every node; the frame, rendered.
    Say(Utf8Bytes),
    /// An envelope to one connection.
    Push(Recipient, Utf8Bytes),
    /// An envelope to every member of a set (its name as modules give it).
    Broadcast(String, Utf8Bytes),
}

/// A command's answer: the envelope both transports send, and the HTTP status it goes with.
#[derive(Debug, Clone, PartialEq)]
pub struct Answer {
    /// The HTTP status: 200 for every answer of a command that ran, the refusal's
    /// status otherwise (400 for bad input, 401, 403, 404, 405).
    pub http: u16,
    /// The envelope.
    pub envelope: Envelope,
    /// Stop the host once this answer is sent.
    pub then_stop: bool,
}

impl Answer {
    fn ran(envelope: Envelope) -> Answer {
        Answer {
            http: 200,
            envelope,
            then_stop: false,
        }
    }

    /// A refusal before any command ran; its HTTP status is the envelope's.
    pub fn refused(envelope: Envelope) -> Answer {
        Answer {
            http: envelope.status,
            envelope,
            then_stop: false,
        }
    }

    /// 400 `badRequest`: not a JSON object, or a binary frame.
    pub fn bad_request() -> Answer {
        Answer::refused(Envelope::new(400, "badRequest", "请求格式错误"))
    }

    /// 400 `tooLarge`: over `manager.max_message_bytes`, or a frame for clients over
    /// `limits.max_message_bytes`.
    pub fn too_large(limit: usize) -> Answer {
        Answer::refused(Envelope::new(
            400,
            "tooLarge",
            &format!("请求过大 (limit {limit} bytes)"),
        ))
    }

    /// The envelope's JSON.
    pub fn to_json(&self) -> String {
        self.envelope.to_json()
    }
}

fn ok(method: &str, param: Value) -> Answer {
    Answer::ran(Envelope::new(200, &format!("{method}Success"), "执行完成").with_param(&param))
}

fn bad_parameter(name: &str) -> Answer {
    Answer::ran(Envelope::new(
        401,
        "badParameter",
        &format!("参数错误: {name}"),
    ))
}

fn unavailable(method: &str, error: RegistryError) -> Answer {
    tracing::warn!("manager {method}: {error}");
    Answer::ran(Envelope::new(503, "unavailable", "服务暂不可用"))
}

/// The answer of `say`, `push` and `broadcast`: how far the frame went.
fn reached(method: &str, reach: Result<Reach, RegistryError>) -> Answer {
    match reach {
        Ok(reach) => ok(method, json!({"local": reach.local, "nodes": reach.nodes})),
        Err(error) => unavailable(method, error),
    }
}

/// Reads a command body: a JSON object, or 400 `badRequest`. Both transports read
/// theirs here (the HTTP API first maps an empty body to `{}`).
pub fn object(text: &[u8]) -> Result<Map<String, Value>, Answer> {
    match serde_json::from_slice::<Value>(text) {
        Ok(Value::Object(body)) => Ok(body),
        _ => Err(Answer::bad_request()),
    }
}

impl Command {
    /// Reads command `method` from its body. `max_frame` is `limits.max_message_bytes`:
    /// no frame larger than a client may send goes to clients.
    pub fn parse(
        method: &str,
        body: &Map<String, Value>,
        max_frame: usize,
    ) -> Result<Command, Answer> {
        let frame = |envelope: Envelope| {
            let text = envelope.to_json();
            match text.len() > max_frame {
                true => Err(Answer::too_large(max_frame)),
                false => Ok(Utf8Bytes::from(text)),
            }
        };
        match method {
            "reload" => Ok(Command::Reload),
            "stop" => Ok(Command::Stop),
            "status" => Ok(Command::Status),
            "say" => match body.get("say") {
                Some(say) => {
                    frame(Envelope::new(200, "serverBroadcast", "收到服务广播内容").with_param(say))
                        .map(Command::Say)
                }
                None => Err(bad_parameter("say")),
            },
            "push" => {
                let recipient = match (
                    body.get("fd").and_then(id_text),
                    body.get("uid").and_then(id_text),
                ) {
                    (Some(fd), _) => Recipient::Fd(fd),
                    (None, Some(uid)) => Recipient::Uid(uid),
                    (None, None) => return Err(bad_parameter("fd or uid")),
                };
                Ok(Command::Push(recipient, frame(carried(body)?)?))
            }
            "broadcast" => {
                let Some(key) = body
                    .get("key")
                    .and_then(Value::as_str)
                    .filter(|k| !k.is_empty() && !is_host_key(k))
                else {
                    return Err(bad_parameter("key"));
                };
                Ok(Command::Broadcast(key.to_string(), frame(carried(body)?)?))
            }
            _ => Err(Answer::refused(Envelope::new(
                400,
                "unknownCommand",
                "未知命令",
            ))),
        }
    }

    /// The command's name, as its answer's event says it.
    fn method(&self) -> &'static str {
        match self {
            Command::Reload => "reload",
            Command::Stop => "stop",
            Command::Status => "status",
            Command::Say(_) => "say",
            Command::Push(..) => "push",
            Command::Broadcast(..) => "broadcast",
        }
    }

    /// Runs the command.
    pub async fn execute(self, manager: &Manager) -> Answer {
        let method = self.method();
        match self {
            Command::Reload => ok(method, reload(manager).await),
            Command::Stop => Answer {
                then_stop: true,
                ..ok(method, json!({"pid": std::process::id()}))
            },
            Command::Status => ok(method, json!(status(manager).await)),
            Command::Say(frame) => reached(method, manager.delivery.to_all(&frame).await),
            Command::Push(recipient, frame) => {
                let fd = match recipient {
                    Recipient::Fd(fd) => fd,
                    Recipient::Uid(uid) => match manager.registry.uid_fd(&uid).await {
                        Ok(Some(fd)) => fd,
                        Ok(None) => return ok(method, json!({"local": 0, "nodes": 0})),
                        Err(error) => return unavailable(method, error),
                    },
                };
                reached(method, manager.delivery.to_fds(&[fd], &frame).await)
            }
            // Members on other nodes are reached through the registry's relay, as a
            // module's `send_to_set` reaches them (README.md, "Several hosts behind one Redis").
            // `members` is the set's size as the registry holds it, stale members
            // included: what a broadcast reaches cannot show a member left behind.
            Command::Broadcast(key, frame) => match manager.registry.set_members(&key).await {
                Ok(members) => match manager.delivery.to_fds(&members, &frame).await {
                    Ok(reach) => ok(
                        method,
                        json!({"local": reach.local, "nodes": reach.nodes, "members": members.len()}),
                    ),
                    Err(error) => unavailable(method, error),
                },
                Err(error) => unavailable(method, error),
            },
        }
    }
}

/// The envelope a `push` or `broadcast` carries, from its `status`, `event`, `info`, `param`.
fn carried(body: &Map<String, Value>) -> Result<Envelope, Answer> {
    let status = match body.get("status") {
        None => 200,
        Some(value) => value
            .as_u64()
            .and_then(|s| u16::try_from(s).ok())
            .ok_or_else(|| bad_parameter("status"))?,
    };
    let text = |name: &str| match body.get(name) {
        None => Ok(String::new()),
        Some(Value::String(text)) => Ok(text.clone()),
        Some(_) => Err(bad_parameter(name)),
    };
    let envelope = Envelope::new(status, &text("event")?, &text("info")?);
    Ok(match body.get("param") {
        Some(param) => envelope.with_param(param),
        None => envelope,
    })
}

fn id_text(value: &Value) -> Option<String> {
    match value {
        Value::String(text) if !text.is_empty() => Some(text.clone()),
        Value::Number(number) => Some(number.to_string()),
        _ => None,
    }
}

/// Re-reads the config file's token keys (`[auth]`, `[auth.jwt]`) for new handshakes,
/// rescans the plugin directory, then runs `onReload` on every module.
pub async fn reload(manager: &Manager) -> Value {
    let keys = match &manager.config.file {
        None => json!({"reloaded": false, "reason": "started without a config file"}),
        Some(file) => match manager.tokens.reload(file) {
            Ok(()) => {
                tracing::info!(file = %file.display(), "reload: token keys re-read");
                json!({"reloaded": true, "file": file.display().to_string()})
            }
            Err(error) => {
                tracing::error!("reload: token keys kept: {error}");
                json!({"reloaded": false, "error": error})
            }
        },
    };
    let plugins = &manager.plugins;
    let loaded = plugins.scan().await;
    let timeout = Duration::from_millis(manager.config.limits.call_timeout_ms);
    plugins.hook_all(Hook::Reload, timeout).await;
    tracing::info!(loaded, "reload: plugins rescanned, onReload sent");
    let refusals: Vec<RefusalStatus> = plugins.refusals().iter().map(RefusalStatus::of).collect();
    json!({"loaded": loaded, "refusals": refusals, "keys": keys})
}

/// What `mswoole status` shows.
pub async fn status(manager: &Manager) -> Status {
    let refusals = manager.plugins.refusals();
    let node = manager.locations.node().to_string();
    let nodes = match manager.registry.nodes().await {
        Ok(nodes) if !nodes.is_empty() => Nodes::Known(nodes),
        Ok(_) => Nodes::Known(vec![node.clone()]),
        Err(error) => Nodes::Unknown {
            error: error.to_string(),
        },
    };
    let (pid, version, memory_kb) = Status::process();
    Status {
        pid,
        version,
        connections: manager.sessions.connections() as u64,
        registered: manager.registry.connection_count().await.ok(),
        max_connections: manager.max_connections as u64,
        dropped_frames: manager.locations.dropped(),
        uptime_s: manager.started.elapsed().as_secs(),
        memory_kb,
        node,
        nodes,
        plugin_dir: manager.plugins.dir().display().to_string(),
        plugins: manager
            .plugins
            .all()
            .iter()
            .map(|generation| PluginStatus::of(generation, &refusals))
            .collect(),
        refusals: refusals.iter().map(RefusalStatus::of).collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn body(value: Value) -> Map<String, Value> {
        match value {
            Value::Object(map) => map,
            _ => Map::new(),
        }
    }

    #[test]
    fn push_takes_an_fd_before_a_uid_and_renders_the_frame_once() {
        let command = Command::parse(
            "push",
            &body(json!({"fd": "n/1/2", "uid": 7, "event": "e", "info": "i", "param": [1]})),
            1024,
        );
        assert_eq!(
            command,
            Ok(Command::Push(
                Recipient::Fd("n/1/2".into()),
                Utf8Bytes::from(r#"{"status":200,"event":"e","info":"i","param":[1]}"#)
            ))
        );
        let command = Command::parse("push", &body(json!({"uid": 7})), 1024);
        assert!(
            matches!(command, Ok(Command::Push(Recipient::Uid(ref uid), _)) if uid == "7"),
            "{command:?}"
        );
    }

    #[test]
    fn frames_for_clients_are_held_to_their_limit() {
        let say = |len: usize| body(json!({"say": "x".repeat(len)}));
        // The envelope around `say` takes 77 bytes.
        let framing = Envelope::new(200, "serverBroadcast", "收到服务广播内容")
            .with_param(&json!(""))
            .to_json()
            .len();
        assert!(Command::parse("say", &say(100 - framing), 100).is_ok());
        let refused = Command::parse("say", &say(101 - framing), 100);
        assert_eq!(refused, Err(Answer::too_large(100)));
        let push = body(json!({"fd": "f", "param": "x".repeat(200)}));
        assert_eq!(
            Command::parse("push", &push, 100),
            Err(Answer::too_large(100))
        );
    }

    #[test]
    fn bad_parameters_and_unknown_commands_are_refused() {
        let refused = |method: &str, value: Value| match Command::parse(method, &body(value), 1024)
        {
            Err(answer) => (answer.envelope.status, answer.envelope.event),
            Ok(command) => panic!("{method} accepted: {command:?}"),
        };
        assert_eq!(refused("say", json!({})), (401, "badParameter".into()));
        assert_eq!(
            refused("push", json!({"fd": ""})),
            (401, "badParameter".into())
        );
        assert_eq!(
            refused("push", json!({"fd": "f", "status": "x"})),
            (401, "badParameter".into())
        );
        assert_eq!(
            refused("broadcast", json!({"key": "WEBSOCKET_FD"})),
            (401, "badParameter".into())
        );
        assert_eq!(refused("dance", json!({})), (400, "unknownCommand".into()));
    }

    mod properties {
        //! The invariants the `command` fuzz target checks (docs/FUZZING.md).
        use proptest::prelude::*;

        use super::super::*;

        fn json_value() -> impl Strategy<Value = Value> {
            let leaf = prop_oneof![
                Just(Value::Null),
                any::<bool>().prop_map(Value::from),
                any::<i64>().prop_map(Value::from),
                any::<u64>().prop_map(Value::from),
                "[ -~]{0,12}".prop_map(Value::from),
                Just(Value::from("WEBSOCKET_FD")),
            ];
            leaf.prop_recursive(3, 16, 4, |inner| {
                prop_oneof![
                    prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
                    prop::collection::vec(("[a-z]{1,6}", inner), 0..4)
                        .prop_map(|members| Value::Object(members.into_iter().collect())),
                ]
            })
        }

        /// A command body: the keys commands read, with values of any type.
        fn command_body() -> impl Strategy<Value = Map<String, Value>> {
            let key = prop_oneof![
                Just("say"),
                Just("fd"),
                Just("uid"),
                Just("key"),
                Just("status"),
                Just("event"),
                Just("info"),
                Just("param"),
                Just("x"),
            ];
            prop::collection::vec((key.prop_map(String::from), json_value()), 0..6)
                .prop_map(|members| members.into_iter().collect())
        }

        fn is_envelope(frame: &str) -> bool {
            match serde_json::from_str::<Value>(frame) {
                Ok(Value::Object(map)) => map.keys().take(3).eq(["status", "event", "info"]),
                _ => false,
            }
        }

        proptest! {
            #[test]
            fn only_a_json_object_is_a_command_body(value in json_value(), junk in any::<String>()) {
                let text = value.to_string();
                match (&value, object(text.as_bytes())) {
                    (Value::Object(map), Ok(body)) => prop_assert_eq!(&body, map),
                    (Value::Object(_), Err(answer)) => prop_assert!(false, "refused an object: {:?}", answer),
                    (_, got) => prop_assert_eq!(got, Err(Answer::bad_request())),
                }
                if !matches!(serde_json::from_str::<Value>(&junk), Ok(Value::Object(_))) {
                    prop_assert_eq!(object(junk.as_bytes()), Err(Answer::bad_request()));
                }
            }

            #[test]
            fn broadcast_never_targets_the_hosts_own_keys(
                key in prop_oneof!["WEBSOCKET_[A-Z_]{0,8}", "[ -~]{0,12}"],
            ) {
                let body = Map::from_iter([("key".to_string(), Value::from(key.as_str()))]);
                let parsed = Command::parse("broadcast", &body, 1024);
                let allowed = !key.is_empty() && !key.starts_with("WEBSOCKET_");
                prop_assert_eq!(matches!(parsed, Ok(Command::Broadcast(..))), allowed, "{:?}", key);
            }

            #[test]
            fn commands_parse_without_a_panic_and_hold_frames_to_the_limit(
                method in prop_oneof![
                    Just("say"), Just("push"), Just("broadcast"), Just("status"), Just("nope"),
                ],
                body in command_body(),
                max_frame in 0usize..200,
            ) {
                match Command::parse(method, &body, max_frame) {
                    Ok(Command::Say(frame) | Command::Push(_, frame)) => {
                        prop_assert!(frame.len() <= max_frame);
                        prop_assert!(is_envelope(&frame), "{}", frame.as_str());
                    }
                    Ok(Command::Broadcast(key, frame)) => {
                        prop_assert!(frame.len() <= max_frame);
                        prop_assert!(is_envelope(&frame), "{}", frame.as_str());
                        prop_assert!(!key.is_empty() && !is_host_key(&key));
                    }
                    Ok(other) => prop_assert_eq!(other, Command::Status),
                    Err(answer) => {
                        prop_assert!(matches!(answer.envelope.status, 400 | 401), "{:?}", answer);
                        prop_assert!(is_envelope(&answer.to_json()));
                    }
                }
            }
        }
    }
}
