//! One client connection, from the upgrade to the end of its close sequence.
//!
//! Two tasks per connection: this one reads frames and runs the client's calls
//! one at a time, in arrival order; a writer task drains the outbound queue into
//! the socket. Reading goes on while a call runs, so `2` is answered at once and
//! any frame resets the idle timer, but at most [`MAX_PENDING`] messages wait
//! before reading pauses: a client cannot make the host buffer without bound.
//! Whatever ends the connection, the close sequence of DESIGN §2 runs.

use std::{collections::VecDeque, future::Future, pin::Pin, sync::Arc, time::Duration};

use futures_util::{
    stream::{SplitSink, SplitStream},
    FutureExt, SinkExt, StreamExt,
};
use mswoole_plugin_api::ffi::Call;
use serde_json::{Map, Value};
use tokio::{net::TcpStream, time::Instant};
use tokio_tungstenite::{
    tungstenite::{
        error::CapacityError,
        protocol::{frame::coding::CloseCode, CloseFrame},
        Error as WsError, Message, Utf8Bytes,
    },
    WebSocketStream,
};
use tokio_util::sync::CancellationToken;

use crate::{
    clients::{ClientHandle, STALL},
    envelope::Envelope,
    error::CallError,
    identity::Identity,
    message::{self, Inbound},
    outbound::{self, Drain, Outbound},
    plugins::bridge::{self, Hook},
    registry::{close_keys_key, controllers_key},
    router::{self, module_name},
    shared::Shared,
};

/// The acknowledgement every valid message gets first (MSwoole's text), prebuilt.
const ACK: &str = r#"{"status":200,"event":"receiveMessage","info":"服务端已收到您的请求内容"}"#;

/// Messages that may wait behind the call in progress before reading pauses.
const MAX_PENDING: usize = 32;
/// How long the close frame may take to leave.
const CLOSE_GRACE: Duration = Duration::from_secs(2);

type Socket = WebSocketStream<TcpStream>;
type CallOutcome = Result<Option<Envelope>, CallError>;
type CallFuture = Pin<Box<dyn Future<Output = CallOutcome> + Send>>;

/// Why a connection ends, and what the client is told.
#[derive(Debug, Clone, PartialEq, Eq)]
enum End {
    /// The client closed or went away: nothing more to send.
    ClientGone,
    /// Idle for `heartbeat.idle_s`: 1000 `idle timeout`.
    Idle,
    /// A frame over `limits.max_message_bytes`: 1009.
    TooBig,
    /// Bad input: a 400 envelope (already sent), then this code.
    BadInput(u16),
    /// Invalid UTF-8 in a text frame: 1007.
    BadUtf8,
    /// The host is stopping: 1001.
    Shutdown,
    /// A module or the manager closed it: 1000.
    Kicked,
    /// The client stopped reading: 1008 (it will not read the frame either).
    Stalled,
}

impl End {
    fn close_frame(&self) -> Option<CloseFrame> {
        let (code, reason) = match self {
            End::ClientGone => return None,
            End::Idle => (1000, "idle timeout"),
            End::TooBig => (1009, "message too big"),
            End::BadInput(code) => (*code, "bad request"),
            End::BadUtf8 => (1007, "invalid utf-8"),
            End::Shutdown => (1001, "server stopping"),
            End::Kicked => (1000, "closed by server"),
            End::Stalled => (1008, "not reading"),
        };
        Some(CloseFrame {
            code: CloseCode::from(code),
            reason: reason.into(),
        })
    }
}

fn text(envelope: &Envelope) -> Message {
    Message::Text(Utf8Bytes::from(envelope.to_json()))
}

/// One connection's reading side and its state.
struct Handler {
    shared: Arc<Shared>,
    identity: Arc<Identity>,
    outbound: Outbound,
    /// Messages waiting for the call in progress, as `(method, body)`.
    pending: VecDeque<(String, Map<String, Value>)>,
    /// Bad input seen: answer once the messages before it are answered.
    bad_input: Option<u16>,
}

/// Runs a connection until it ends, then its close sequence.
pub async fn run(shared: Arc<Shared>, socket: Socket, identity: Identity) {
    let identity = Arc::new(identity);
    let (outbound, drain) = outbound::queue(shared.config.limits.outbound_queue);
    let close = CancellationToken::new();
    let stalled = CancellationToken::new();
    if let Err(error) = shared.registry.register(&identity).await {
        tracing::warn!(fd = %identity.fd, "connection not recorded in the registry: {error}");
    }
    shared.clients.insert(ClientHandle {
        outbound: outbound.clone(),
        close: close.clone(),
        identity: identity.clone(),
    });

    let (sink, stream) = socket.split();
    let writer = tokio::spawn(write(sink, drain, stalled.clone()));
    let mut handler = Handler {
        shared: shared.clone(),
        identity: identity.clone(),
        outbound,
        pending: VecDeque::new(),
        bad_input: None,
    };
    let end = handler.read(stream, &close, &stalled).await;
    tracing::debug!(fd = %identity.fd, ?end, "connection ends");

    shared.clients.remove(&identity.fd);
    if let Some(frame) = end.close_frame().filter(|_| end != End::Stalled) {
        let _ = tokio::time::timeout(
            CLOSE_GRACE,
            handler.outbound.send_own(Message::Close(Some(frame))),
        )
        .await;
    }
    drop(handler);
    if tokio::time::timeout(CLOSE_GRACE, writer).await.is_err() {
        tracing::debug!(fd = %identity.fd, "writer did not finish in time");
    }
    close_sequence(&shared, &identity).await;
}

impl Handler {
    /// Reads frames and runs calls until the connection ends.
    async fn read(
        &mut self,
        mut stream: SplitStream<Socket>,
        close: &CancellationToken,
        stalled: &CancellationToken,
    ) -> End {
        let idle = Duration::from_secs(self.shared.config.heartbeat.idle_s);
        // Pinned once: building these futures anew on every turn of the loop costs a
        // waiter registration each, on every message.
        let shutdown = self.shared.shutdown.clone();
        let (stopping, kicked, stuck) =
            (shutdown.stopping(), close.cancelled(), stalled.cancelled());
        tokio::pin!(stopping, kicked, stuck);
        // The timer is moved only when it fires early; a frame just moves `deadline`.
        let mut deadline = Instant::now() + idle;
        let idle_timer = tokio::time::sleep_until(deadline);
        tokio::pin!(idle_timer);
        let mut in_flight: Option<CallFuture> = None;
        loop {
            while in_flight.is_none() {
                if let Some((method, body)) = self.pending.pop_front() {
                    let mut call = self.start(method, body).await;
                    // Most calls need nothing from the host: done on the first poll, answered at once.
                    match (&mut call).now_or_never() {
                        Some(outcome) => self.answer(outcome).await,
                        None => in_flight = Some(call),
                    }
                } else if let Some(code) = self.bad_input {
                    let _ = self
                        .outbound
                        .send_own(text(&CallError::BadRequest.envelope()))
                        .await;
                    return End::BadInput(code);
                } else {
                    break;
                }
            }
            let reading = self.bad_input.is_none() && self.pending.len() < MAX_PENDING;
            tokio::select! {
                biased;
                _ = &mut stopping => return End::Shutdown,
                _ = &mut kicked => return End::Kicked,
                _ = &mut stuck => return End::Stalled,
                outcome = finish(&mut in_flight), if in_flight.is_some() => {
                    in_flight = None;
                    self.answer(outcome).await;
                }
                frame = stream.next(), if reading => {
                    deadline = Instant::now() + idle;
                    if let Some(end) = self.on_frame(frame).await {
                        return end;
                    }
                }
                _ = &mut idle_timer => {
                    if Instant::now() >= deadline {
                        return End::Idle;
                    }
                    idle_timer.as_mut().reset(deadline);
                }
            }
        }
    }

    /// Handles one frame; `Some` when it ends the connection.
    async fn on_frame(&mut self, frame: Option<Result<Message, WsError>>) -> Option<End> {
        match frame {
            None => Some(End::ClientGone),
            Some(Err(WsError::Capacity(CapacityError::MessageTooLong { .. }))) => Some(End::TooBig),
            Some(Err(WsError::Utf8(_))) => Some(End::BadUtf8),
            Some(Err(error)) => {
                tracing::debug!(fd = %self.identity.fd, "read error: {error}");
                Some(End::ClientGone)
            }
            Some(Ok(Message::Text(text))) => {
                match message::parse(text.as_str()) {
                    Ok(Inbound::Ping) => {
                        let _ = self
                            .outbound
                            .send_own(Message::Text(Utf8Bytes::from_static("3")))
                            .await;
                    }
                    Ok(Inbound::Message { method, body }) => self.pending.push_back((method, body)),
                    Err(_) => self.bad_input = Some(1007),
                }
                None
            }
            Some(Ok(Message::Binary(_))) => {
                self.bad_input = Some(1003);
                None
            }
            // Pings are answered by tungstenite; a Close is answered by it too, and the
            // stream ends on the next read.
            Some(Ok(
                Message::Ping(_) | Message::Pong(_) | Message::Close(_) | Message::Frame(_),
            )) => None,
        }
    }

    /// Acknowledges a message and starts its call.
    async fn start(&mut self, method: String, body: Map<String, Value>) -> CallFuture {
        let config = &self.shared.config;
        if config.protocol.ack {
            let _ = self
                .outbound
                .send_own(Message::Text(Utf8Bytes::from_static(ACK)))
                .await;
        }
        let resolved = router::route(&method).and_then(|route| {
            let (generation, _fallback) = self.shared.plugins.resolve(&route)?;
            Ok((route, generation))
        });
        match resolved {
            Err(error) => Box::pin(std::future::ready(Err(error))),
            Ok((route, generation)) => {
                let message = message::prepare(body, &self.identity, config.protocol.escape_html);
                let call = Call {
                    fd: self.identity.fd.as_str().into(),
                    controller: route.controller.into(),
                    action: route.action.into(),
                    message: message.to_string().into(),
                };
                let timeout = Duration::from_millis(config.limits.call_timeout_ms);
                Box::pin(bridge::call(generation, call, timeout))
            }
        }
    }

    /// Sends a call's reply, or the envelope of its error.
    async fn answer(&mut self, outcome: CallOutcome) {
        let envelope = match outcome {
            Ok(Some(envelope)) => envelope,
            Ok(None) => return,
            Err(error) => {
                if error.is_internal() {
                    tracing::error!(fd = %self.identity.fd, "call failed: {error}");
                }
                error.envelope()
            }
        };
        let _ = self.outbound.send_own(text(&envelope)).await;
    }
}

/// Waits for the call in progress (the caller polls this only when there is one).
async fn finish(in_flight: &mut Option<CallFuture>) -> CallOutcome {
    match in_flight {
        Some(call) => call.await,
        None => std::future::pending().await,
    }
}

/// Drains the outbound queue into the socket, batching what is queued into one flush.
///
/// Ends after a close frame, when every sender is gone, on a write error, or when
/// one flush takes longer than [`STALL`]: then `stalled` tells the reader.
async fn write(mut sink: SplitSink<Socket, Message>, drain: Drain, stalled: CancellationToken) {
    let Drain {
        frames: mut queue,
        drained,
    } = drain;
    while let Some(first) = queue.recv().await {
        let batch = async {
            let mut closing = matches!(first, Message::Close(_));
            sink.feed(first).await?;
            while !closing {
                let Ok(next) = queue.try_recv() else { break };
                closing = matches!(next, Message::Close(_));
                sink.feed(next).await?;
            }
            sink.flush().await.map(|()| closing)
        };
        match tokio::time::timeout(STALL, batch).await {
            Ok(Ok(false)) => drained.notify_waiters(),
            Ok(Ok(true)) | Ok(Err(_)) => return,
            Err(_) => {
                stalled.cancel();
                return;
            }
        }
    }
}

/// DESIGN §2's close sequence: `onClose` of every registered controller, leave every
/// close-key set, then delete the identity records.
async fn close_sequence(shared: &Shared, identity: &Identity) {
    let registry = &shared.registry;
    let fd = identity.fd.as_str();
    let timeout = Duration::from_millis(shared.config.limits.call_timeout_ms);
    let controllers = registry
        .set_members(&controllers_key(fd))
        .await
        .unwrap_or_else(|error| {
            tracing::warn!(fd, "cannot read controllers to notify: {error}");
            Vec::new()
        });
    if !controllers.is_empty() {
        let info = identity.close_info(shared.config.protocol.escape_html);
        for registered in controllers {
            let (module, controller) = registered
                .split_once('.')
                .unwrap_or(("", registered.as_str()));
            let Some(generation) = shared.plugins.module(&module_name(module)) else {
                tracing::warn!(fd, controller = %registered, "onClose: no such module loaded");
                continue;
            };
            let controller = module_name(controller);
            if let Err(error) =
                bridge::hook(generation, Hook::Close(&controller, &info), timeout).await
            {
                tracing::error!(fd, controller = %registered, "onClose failed: {error}");
            }
        }
    }
    match registry.set_members(&close_keys_key(fd)).await {
        Ok(keys) => {
            for key in keys {
                if let Err(error) = registry.set_remove(&key, fd).await {
                    tracing::warn!(fd, key, "cannot leave set: {error}");
                }
            }
        }
        Err(error) => tracing::warn!(fd, "cannot read close keys: {error}"),
    }
    if let Err(error) = registry.unregister(identity).await {
        tracing::warn!(fd, "cannot delete identity records: {error}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_prebuilt_ack_is_the_ack_envelope() {
        assert_eq!(
            ACK,
            Envelope::new(200, "receiveMessage", "服务端已收到您的请求内容").to_json()
        );
    }
}
