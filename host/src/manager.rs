//! The manager port: one JSON command per WebSocket connection, answered, then closed.
//!
//! It is how the console (and operators' scripts) drive a running host, as in
//! MSwoole. A handshake with an `Origin` header is refused, so a web page cannot
//! reach it even on a loopback address; with `manager.token` set, every command
//! carries the token, compared in constant time.

use std::{sync::Arc, time::Duration};

use futures_util::{SinkExt, StreamExt};
use serde_json::{json, Map, Value};
use subtle::ConstantTimeEq;
use tokio::net::{TcpListener, TcpStream};
use tokio_tungstenite::tungstenite::{
    handshake::server::{ErrorResponse, Request, Response},
    http::StatusCode,
    Message, Utf8Bytes,
};

use crate::{
    delivery::Reach,
    envelope::Envelope,
    plugins::bridge::Hook,
    process,
    registry::{is_host_key, RegistryError},
    shared::Shared,
};

/// How long a manager client has to send its command.
const COMMAND_TIMEOUT: Duration = Duration::from_secs(10);

/// Accepts manager connections until the listeners close.
pub async fn serve(shared: Arc<Shared>, listener: TcpListener) {
    loop {
        let accepted = tokio::select! {
            _ = shared.shutdown.listeners_closed() => return,
            accepted = listener.accept() => accepted,
        };
        match accepted {
            Ok((socket, _)) => {
                tokio::spawn(session(shared.clone(), socket));
            }
            Err(error) => {
                tracing::error!("manager accept failed: {error}");
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    }
}

// The signature is tungstenite's callback type; the large error is its response type.
#[allow(clippy::result_large_err)]
fn refuse_origin(request: &Request, response: Response) -> Result<Response, ErrorResponse> {
    if request.headers().contains_key("origin") {
        let mut refusal = ErrorResponse::new(Some(
            "the manager port does not accept browser connections".into(),
        ));
        *refusal.status_mut() = StatusCode::FORBIDDEN;
        return Err(refusal);
    }
    Ok(response)
}

/// One manager connection: one command, one answer.
async fn session(shared: Arc<Shared>, socket: TcpStream) {
    let accepted = tokio::time::timeout(
        COMMAND_TIMEOUT,
        tokio_tungstenite::accept_hdr_async(socket, refuse_origin),
    )
    .await;
    let Ok(Ok(mut ws)) = accepted else { return };
    let command = match tokio::time::timeout(COMMAND_TIMEOUT, ws.next()).await {
        Ok(Some(Ok(Message::Text(text)))) => text,
        _ => return,
    };
    let (reply, then_stop) = execute(&shared, command.as_str()).await;
    let _ = ws
        .send(Message::Text(Utf8Bytes::from(reply.to_json())))
        .await;
    let _ = ws.close(None).await;
    if then_stop {
        shared.shutdown.stop();
    }
}

fn ok(method: &str, param: Value) -> Envelope {
    Envelope::new(200, &format!("{method}Success"), "执行完成").with_param(&param)
}

/// The answer of `say`, `push` and `broadcast`: how far the frame went.
fn reached(method: &str, reach: Result<Reach, RegistryError>) -> Envelope {
    match reach {
        Ok(reach) => ok(method, json!({"local": reach.local, "nodes": reach.nodes})),
        Err(error) => {
            tracing::warn!("{method}: {error}");
            Envelope::new(503, "unavailable", "服务暂不可用")
        }
    }
}

fn bad_parameter(name: &str) -> Envelope {
    Envelope::new(401, "badParameter", &format!("参数错误: {name}"))
}

/// Runs one command; the flag asks the caller to stop once the answer is sent.
async fn execute(shared: &Shared, text: &str) -> (Envelope, bool) {
    let Ok(Value::Object(command)) = serde_json::from_str::<Value>(text) else {
        return (Envelope::new(400, "badRequest", "请求格式错误"), false);
    };
    if let Some(expected) = &shared.config.manager.token {
        let given = command.get("token").and_then(Value::as_str).unwrap_or("");
        if !bool::from(given.as_bytes().ct_eq(expected.as_bytes())) {
            return (Envelope::new(403, "forbidden", "token 错误"), false);
        }
    }
    let method = command.get("method").and_then(Value::as_str).unwrap_or("");
    let reply = match method {
        "reload" => ok(method, reload(shared).await),
        "stop" => return (ok(method, json!({"pid": std::process::id()})), true),
        "status" => ok(method, status(shared).await),
        "say" => match command.get("say") {
            Some(say) => {
                let envelope =
                    Envelope::new(200, "serverBroadcast", "收到服务广播内容").with_param(say);
                let text = Utf8Bytes::from(envelope.to_json());
                reached(method, shared.delivery.to_all(&text).await)
            }
            None => bad_parameter("say"),
        },
        "push" => push(shared, &command).await,
        "broadcast" => broadcast(shared, &command).await,
        _ => Envelope::new(400, "unknownCommand", "未知命令"),
    };
    (reply, false)
}

/// The envelope a `push` or `broadcast` carries, from its `status`, `event`, `info`, `param`.
fn carried(command: &Map<String, Value>) -> Result<Envelope, Envelope> {
    let status = match command.get("status") {
        None => 200,
        Some(value) => value
            .as_u64()
            .and_then(|s| u16::try_from(s).ok())
            .ok_or_else(|| bad_parameter("status"))?,
    };
    let text = |name: &str| match command.get(name) {
        None => Ok(String::new()),
        Some(Value::String(text)) => Ok(text.clone()),
        Some(_) => Err(bad_parameter(name)),
    };
    let envelope = Envelope::new(status, &text("event")?, &text("info")?);
    Ok(match command.get("param") {
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

async fn push(shared: &Shared, command: &Map<String, Value>) -> Envelope {
    let envelope = match carried(command) {
        Ok(envelope) => envelope,
        Err(refusal) => return refusal,
    };
    let fd = match (
        command.get("fd").and_then(id_text),
        command.get("uid").and_then(id_text),
    ) {
        (Some(fd), _) => Some(fd),
        (None, Some(uid)) => match shared.registry.uid_fd(&uid).await {
            Ok(fd) => fd,
            Err(error) => return Envelope::new(503, "unavailable", &error.to_string()),
        },
        (None, None) => return bad_parameter("fd or uid"),
    };
    let text = Utf8Bytes::from(envelope.to_json());
    match fd {
        Some(fd) => reached("push", shared.delivery.to_fds(&[fd], &text).await),
        None => ok("push", json!({"local": 0, "nodes": 0})),
    }
}

async fn broadcast(shared: &Shared, command: &Map<String, Value>) -> Envelope {
    let Some(key) = command
        .get("key")
        .and_then(Value::as_str)
        .filter(|k| !k.is_empty() && !is_host_key(k))
    else {
        return bad_parameter("key");
    };
    let envelope = match carried(command) {
        Ok(envelope) => envelope,
        Err(refusal) => return refusal,
    };
    match shared.registry.set_members(key).await {
        Ok(members) => {
            let text = Utf8Bytes::from(envelope.to_json());
            let local = shared
                .clients
                .send_many(members.iter().map(String::as_str), &text);
            ok("broadcast", json!({"local": local, "nodes": 0}))
        }
        Err(error) => Envelope::new(503, "unavailable", &error.to_string()),
    }
}

/// Rescans the plugin directory, then runs `onReload` on every module.
pub async fn reload(shared: &Shared) -> Value {
    let loaded = shared.plugins.scan().await;
    let timeout = Duration::from_millis(shared.config.limits.call_timeout_ms);
    shared.plugins.hook_all(Hook::Reload, timeout).await;
    tracing::info!(loaded, "reload: plugins rescanned, onReload sent");
    let (_, refusals) = shared.plugins.status();
    json!({"loaded": loaded, "refusals": refusals})
}

/// What `mswoole status` shows.
pub async fn status(shared: &Shared) -> Value {
    let (plugins, refusals) = shared.plugins.status();
    let registered = shared.registry.connection_count().await.ok();
    let nodes = match shared.registry.nodes().await {
        Ok(nodes) if !nodes.is_empty() => json!(nodes),
        Ok(_) => json!([shared.node_id]),
        Err(error) => json!({"error": error.to_string()}),
    };
    json!({
        "pid": std::process::id(),
        "version": env!("CARGO_PKG_VERSION"),
        "connections": shared.clients.len(),
        "registered": registered,
        "max_connections": shared.max_connections,
        "dropped_frames": shared.clients.dropped(),
        "uptime_s": shared.started.elapsed().as_secs(),
        "memory_kb": process::resident_kib(),
        "node": shared.node_id,
        "nodes": nodes,
        "plugin_dir": shared.plugins.dir().display().to_string(),
        "plugins": plugins,
        "refusals": refusals,
    })
}
