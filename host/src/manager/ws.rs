//! The manager's WebSocket form: one JSON command per connection, answered, then
//! closed, as MSwoole's manager did and the console (`host/src/cli/mod.rs`) still speaks.
//!
//! The command names itself (`method`) and, with `manager.token` set, carries the token
//! in a `token` field. A frame over `manager.max_message_bytes` is answered 400
//! `tooLarge` — tungstenite refuses it from its header, before reading it — and what
//! the client still sends is drained so the answer is not lost to a reset. A binary
//! frame is answered 400 `badRequest`. A frame that breaks RFC 6455 (unmasked, text that
//! is not UTF-8, a bad close code, ...) fails the connection with 1002 or 1007, as on the
//! outside port (`crate::conn::frame_error`).

use std::sync::Arc;

use futures_util::{SinkExt, StreamExt};
use serde_json::Value;
use tokio::net::TcpStream;
use tokio_tungstenite::{
    tungstenite::{
        error::CapacityError,
        protocol::{frame::coding::CloseCode, CloseFrame, Role, WebSocketConfig},
        Error as WsError, Message, Utf8Bytes,
    },
    WebSocketStream,
};

use super::access::{drain, token_matches, Manager, COMMAND_TIMEOUT};
use super::command::{self, Answer, Command};
use crate::{
    conn::frame_error::{self, ReadFailure},
    edge::handshake::Head,
    envelope::Envelope,
};

/// What the client's first data frame came to.
enum Received {
    /// A text frame.
    Text(Utf8Bytes),
    /// Refused before it was read as a command.
    Refused {
        answer: Answer,
        /// Bytes of the refused frame may still be on their way.
        drain: bool,
    },
    /// A frame that breaks RFC 6455: the connection fails with its close code, as on the
    /// outside port (1002 a broken frame, 1007 text that is not UTF-8).
    Failed(ReadFailure),
    /// The client closed first: tungstenite answers its close frame (1002 for a code that
    /// may not be sent), once flushed.
    Closed,
}

/// One WebSocket manager connection, from the upgrade request on.
pub async fn session(manager: &Arc<Manager>, mut socket: TcpStream, head: Head, rest: Vec<u8>) {
    match crate::edge::handshake::accept_upgrade(&mut socket, &head).await {
        Ok(true) => {}
        Ok(false) | Err(_) => return,
    }
    let max = manager.config.manager.max_message_bytes;
    let config = WebSocketConfig::default()
        .max_message_size(Some(max))
        .max_frame_size(Some(max));
    let mut ws =
        WebSocketStream::from_partially_read(socket, rest, Role::Server, Some(config)).await;
    let received = match tokio::time::timeout(COMMAND_TIMEOUT, first_frame(&mut ws, max)).await {
        Ok(Some(received)) => received,
        Ok(None) | Err(_) => return,
    };
    let (answer, then_drain) = match received {
        Received::Text(text) => (run(manager, text.as_str()).await, false),
        Received::Refused { answer, drain } => (answer, drain),
        Received::Closed => {
            let _ = ws.flush().await;
            return;
        }
        Received::Failed(failure) => {
            if let Some((code, reason)) = failure.close() {
                let frame = CloseFrame {
                    code: CloseCode::from(code.code()),
                    reason: reason.into(),
                };
                let _ = ws.send(Message::Close(Some(frame))).await;
            }
            return;
        }
    };
    let _ = ws
        .send(Message::Text(Utf8Bytes::from(answer.to_json())))
        .await;
    let _ = ws.close(None).await;
    if then_drain {
        drain(ws.get_mut()).await;
    }
    if answer.then_stop {
        manager.shutdown.stop();
    }
}

/// Waits for the first data frame; `None` when the client leaves without one.
async fn first_frame(ws: &mut WebSocketStream<TcpStream>, max: usize) -> Option<Received> {
    loop {
        return match ws.next().await? {
            Ok(Message::Text(text)) => Some(Received::Text(text)),
            Ok(Message::Binary(_)) => Some(Received::Refused {
                answer: Answer::bad_request(),
                drain: false,
            }),
            Ok(Message::Ping(_) | Message::Pong(_) | Message::Frame(_)) => continue,
            Ok(Message::Close(_)) => Some(Received::Closed),
            Err(WsError::Capacity(
                CapacityError::MessageTooLong { .. } | CapacityError::TooManyHeaders,
            )) => Some(Received::Refused {
                answer: Answer::too_large(max),
                drain: true,
            }),
            Err(error) => match frame_error::classify(&error) {
                ReadFailure::Gone => None,
                failure => Some(Received::Failed(failure)),
            },
        };
    }
}

/// Reads, checks and runs one command text.
async fn run(manager: &Manager, text: &str) -> Answer {
    let body = match command::object(text.as_bytes()) {
        Ok(body) => body,
        Err(refusal) => return refusal,
    };
    if !token_matches(manager, body.get("token").and_then(Value::as_str)) {
        return Answer::refused(Envelope::new(403, "forbidden", "token 错误"));
    }
    let method = body.get("method").and_then(Value::as_str).unwrap_or("");
    match Command::parse(method, &body, manager.config.limits.max_message_bytes) {
        Ok(command) => command.execute(manager).await,
        Err(refusal) => refusal,
    }
}
