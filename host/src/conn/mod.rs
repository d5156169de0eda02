//! One client connection, from the upgrade to the end of its close sequence.
//!
//! One task per connection, as mini-redis has one `Handler` per socket: it reads
//! frames, runs the client's calls one at a time in arrival order, writes their
//! replies, and writes what other tasks queued for it ([`Inbox`]). Replies are
//! written without a flush each; the task flushes once before it waits again, so a
//! batch of requests costs one write. Reading goes on while a call waits on the
//! host, so `2` is answered at once and any frame resets the idle timer, but at most
//! [`MAX_PENDING`] messages wait before reading pauses; and while the socket does
//! not drain, the task waits on it and reads nothing (back-pressure on this
//! connection only), up to `limits.slow_consumer_s`, or until a close request arrives (a slow
//! consumer's queue asks for one when it goes past `limits.outbound_bytes`).
//!
//! A frame that breaks RFC 6455 fails the connection with the close code
//! [`frame_error`] gives it (1002, 1007, 1009). Every close code is sent best effort:
//! when the socket cannot take the close frame within [`CLOSE_GRACE`] (a slow consumer
//! that stopped reading), the connection ends with a TCP reset instead, so the client
//! can tell it apart from an orderly end (README, "Bad input"). Whatever ends the
//! connection, the close sequence runs ([`crate::session::closer`]).
//!
//! Each message is counted against `limits.messages_per_s` as it arrives
//! ([`MessageRate`]): one over the rate waits in line like the others and is answered
//! 429 in its turn; a client over it for `limits.rate_close_after_s` is closed with 1008.

pub mod frame_error;

use std::{collections::VecDeque, future::Future, pin::Pin, sync::Arc, time::Duration};

use futures_util::{FutureExt, SinkExt, StreamExt};
use serde_json::{Map, Value};
use tokio::{net::TcpStream, time::Instant};
use tokio_tungstenite::{
    tungstenite::{
        protocol::{frame::coding::CloseCode, CloseFrame},
        Error as WsError, Message, Utf8Bytes,
    },
    WebSocketStream,
};
use tracing::Level;

use mswoole_core::engine::rate::{MessageRate, Verdict};

use crate::{
    app::shared::Shared,
    conn::frame_error::ReadFailure,
    envelope::Envelope,
    error::CallError,
    fanout::clients::ClientHandle,
    fanout::outbound::{self, CloseRequest, Inbox, Mail, Outbound},
    identity::Identity,
    message::{self, Inbound},
    plugins::bridge,
    router,
    session::replay::Session,
    session::Parked,
    telemetry::log_limit,
    telemetry::metrics,
};

/// The acknowledgement every valid message gets first (MSwoole's text), prebuilt.
const ACK: &str = r#"{"status":200,"event":"receiveMessage","info":"服务端已收到您的请求内容"}"#;

/// Messages that may wait behind the call in progress before reading pauses.
const MAX_PENDING: usize = 32;
/// How long the close frame may take to leave before the connection is reset instead.
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
    /// Reading failed: a broken frame (1002), text that is not UTF-8 (1007), a frame over
    /// `limits.max_message_bytes` (1009), or the client went away.
    ReadFailed(ReadFailure),
    /// Bad input: a 400 envelope (already sent), then this code.
    BadInput(u16),
    /// The host is stopping (its drain reached this client): 1012 `service restart`.
    Shutdown,
    /// A module or the manager closed it: 1000.
    Kicked,
    /// The client's queue went past `limits.outbound_bytes`, or its socket took nothing
    /// for `limits.slow_consumer_s`: 1008 `slow consumer`.
    SlowConsumer,
    /// Over `limits.messages_per_s` for `limits.rate_close_after_s`: 1008 `rate limit`.
    RateLimited,
    /// A resume of its session took it over (the socket looked open but was not): the
    /// socket goes without a word, the session lives on.
    TakenOver,
}

impl From<CloseRequest> for End {
    fn from(request: CloseRequest) -> Self {
        match request {
            CloseRequest::Kick => End::Kicked,
            CloseRequest::Shutdown => End::Shutdown,
            CloseRequest::SlowConsumer => End::SlowConsumer,
            CloseRequest::Takeover => End::TakenOver,
        }
    }
}

impl End {
    /// Whether this end detaches a resumable session instead of ending it (README.md,
    /// "Resumable sessions"): the socket went without a close frame from the client (a
    /// reset, an EOF; `echoed` is the code of one that came), it was idle, the drain
    /// closed it, or a resume took it over. A close frame from the client, a close by a
    /// module or the manager, bad input and the limits end the session.
    fn detaches(&self, echoed: Option<u16>) -> bool {
        match self {
            End::ClientGone => echoed.is_none(),
            End::ReadFailed(failure) => failure.close().is_none() && echoed.is_none(),
            End::Idle | End::Shutdown | End::TakenOver => true,
            End::BadInput(_) | End::Kicked | End::SlowConsumer | End::RateLimited => false,
        }
    }

    fn close_frame(&self) -> Option<CloseFrame> {
        let (code, reason) = match self {
            End::ClientGone | End::TakenOver => return None,
            End::ReadFailed(failure) => failure.close()?,
            End::Idle => (1000, "idle timeout"),
            End::BadInput(code) => (*code, "bad request"),
            End::Shutdown => (1012, "service restart"),
            End::Kicked => (1000, "closed by server"),
            End::SlowConsumer => (1008, "slow consumer"),
            End::RateLimited => (1008, "rate limit"),
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

/// One connection and its state.
struct Handler {
    shared: Arc<Shared>,
    identity: Arc<Identity>,
    /// The WebSocket, read and written by this task only.
    socket: Socket,
    /// Frames other tasks queued for this connection.
    inbox: Inbox,
    /// Its resumable session: every envelope written is stamped with a seq and kept.
    /// Boxed: a connection without one pays a pointer, not the session.
    session: Option<Box<Session>>,
    /// Messages waiting for the call in progress, as `(method, body)`; `None` for one
    /// over the rate, answered 429 in its turn.
    pending: VecDeque<Option<(String, Map<String, Value>)>>,
    /// `limits.messages_per_s`, counted as messages arrive.
    rate: MessageRate,
    /// Bad input seen: answer once the messages before it are answered.
    bad_input: Option<u16>,
    /// Frames written since the last flush.
    unflushed: bool,
    /// The route of the call being answered, for the log.
    calling: Option<router::Route>,
    /// Writing found that the connection must end: nothing more is written.
    ending: Option<End>,
    /// The code of the client's close frame, which tungstenite echoes (for
    /// `mswoole_closes_total`, README.md "Metrics").
    echoed: Option<u16>,
}

/// How a connection begins.
#[derive(Default)]
pub struct Opening {
    /// Its resumable session (`resume=` in the handshake), if it has one.
    pub session: Option<Box<Session>>,
    /// A resumed session's queue, already in the client table; `None`: a new connection.
    pub queue: Option<(Outbound, Inbox)>,
    /// Written first, as they are: a session's control envelope and the frames it missed.
    pub greeting: Vec<Utf8Bytes>,
}

/// Runs a connection until it ends, then its close sequence — or, for a resumable
/// session that dropped, parks the session (README.md, "Resumable sessions").
pub async fn run(shared: Arc<Shared>, socket: Socket, identity: Arc<Identity>, opening: Opening) {
    let limits = &shared.config.limits;
    let (outbound, inbox) = match opening.queue {
        Some(queue) => queue,
        None => {
            let (outbound, inbox) = outbound::queue(limits.outbound_queue, limits.outbound_bytes);
            if let Err(error) = shared.registry.register(&identity).await {
                let message = format!("connection not recorded in the registry: {error}");
                if log_limit::admit(
                    Level::WARN,
                    "connection not recorded in the registry",
                    &message,
                ) {
                    tracing::warn!(fd = %identity.fd, "{message}");
                }
            }
            shared.clients.insert(ClientHandle {
                outbound: outbound.clone(),
                identity: identity.clone(),
                attached: true,
            });
            (outbound, inbox)
        }
    };
    if let Some(session) = &opening.session {
        inbox.attach();
        shared
            .sessions
            .attach(&session.id, identity.clone(), outbound.clone());
    }

    let mut handler = Handler {
        shared: shared.clone(),
        identity: identity.clone(),
        socket,
        inbox,
        session: opening.session,
        pending: VecDeque::new(),
        rate: MessageRate::new(
            limits.messages_per_s,
            limits.messages_burst,
            limits.rate_close_after_s,
        ),
        bad_input: None,
        unflushed: false,
        calling: None,
        ending: None,
        echoed: None,
    };
    for frame in opening.greeting {
        handler.write_raw(Message::Text(frame)).await;
    }
    // A stop that began before this connection was in the table did not reach it.
    let mut in_flight = None;
    let end = match shared.shutdown.is_stopping() {
        true => End::Shutdown,
        false => handler.serve(&mut in_flight).await,
    };
    tracing::debug!(fd = %identity.fd, ?end, "connection ends");
    let detaches = handler.session.is_some() && end.detaches(handler.echoed);
    if let Some(call) = in_flight.filter(|_| detaches) {
        // The client asked before it dropped: its reply is stamped and kept for the resume
        // (README.md, "Resumable sessions"); nothing more goes to this socket.
        handler.ending = Some(end.clone());
        handler.answer(call.await).await;
    }
    if !detaches {
        shared.clients.remove(&identity.fd);
    }
    let mut code_sent = handler.echoed.filter(|_| end == End::ClientGone);
    if let Some(frame) = end.close_frame() {
        let code = u16::from(frame.code);
        let sent = tokio::time::timeout(
            CLOSE_GRACE,
            handler.socket.send(Message::Close(Some(frame))),
        )
        .await;
        if matches!(sent, Ok(Ok(()))) {
            code_sent = Some(code);
        } else {
            // The socket did not take the close frame (the client stopped reading): a
            // reset says so, where a FIN would pass for an orderly end.
            tracing::info!(fd = %identity.fd, ?end, "close frame not sent: connection reset");
            if let Err(error) = handler.socket.get_ref().set_zero_linger() {
                tracing::debug!(fd = %identity.fd, "cannot arrange a reset: {error}");
            }
        }
    } else if end != End::TakenOver {
        // Nothing to say, but tungstenite may still owe the client the answer to its own
        // close frame (a reply written after it arrived fails and ends the loop first).
        let _ = tokio::time::timeout(CLOSE_GRACE, handler.socket.flush()).await;
    }
    metrics::closed(code_sent);
    let Handler { inbox, session, .. } = handler;
    match session {
        Some(session) if detaches => {
            let handled = match end {
                End::Shutdown => Some(CloseRequest::Shutdown),
                End::TakenOver => Some(CloseRequest::Takeover),
                _ => None,
            };
            let parked = Parked {
                identity,
                replay: session.replay,
                outbound,
                inbox,
            };
            shared.sessions.park(&session.id, parked, handled);
        }
        session => {
            if let Some(session) = session {
                shared.sessions.forget(&session.id);
            }
            drop(inbox);
            shared.closer.end(&identity).await;
        }
    }
}

impl Handler {
    /// Reads frames, runs calls and writes until the connection ends; a call still
    /// running then is left in `in_flight`.
    async fn serve(&mut self, in_flight: &mut Option<CallFuture>) -> End {
        let idle = Duration::from_secs(self.shared.config.heartbeat.idle_s);
        // The timer is moved only when it fires early; a frame just moves `deadline`.
        let mut deadline = Instant::now() + idle;
        let idle_timer = tokio::time::sleep_until(deadline);
        tokio::pin!(idle_timer);
        loop {
            while in_flight.is_none() && self.ending.is_none() {
                if let Some(message) = self.pending.pop_front() {
                    let mut call = match message {
                        Some((method, body)) => self.start(method, body).await,
                        None => Box::pin(std::future::ready(Err(CallError::TooManyRequests))),
                    };
                    // Most calls need nothing from the host: done on the first poll, answered at once.
                    match (&mut call).now_or_never() {
                        Some(outcome) => self.answer(outcome).await,
                        None => *in_flight = Some(call),
                    }
                } else if let Some(code) = self.bad_input {
                    self.write(text(&CallError::BadRequest.envelope())).await;
                    return self.flush().await.unwrap_or(End::BadInput(code));
                } else {
                    break;
                }
            }
            if let Some(end) = self.flush().await {
                return end;
            }
            let reading = self.bad_input.is_none() && self.pending.len() < MAX_PENDING;
            tokio::select! {
                biased;
                outcome = finish(in_flight), if in_flight.is_some() => {
                    *in_flight = None;
                    self.answer(outcome).await;
                }
                mail = self.inbox.take() => match mail {
                    Mail::Frames(frames) => {
                        for frame in frames {
                            self.write(frame).await;
                        }
                    }
                    Mail::Close(request) => return End::from(request),
                },
                frame = self.socket.next(), if reading => {
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

    /// Writes a frame (see [`Handler::write_raw`]); on a resumable session an envelope
    /// is stamped with the next seq and kept for a replay first, even when it can no
    /// longer be written (the connection is ending): the resume replays it.
    async fn write(&mut self, frame: Message) {
        let frame = match (&mut self.session, frame) {
            (Some(session), Message::Text(text)) if text.as_str() != "3" => {
                Message::Text(session.replay.stamp(text.as_str()))
            }
            (_, frame) => frame,
        };
        self.write_raw(frame).await
    }

    /// Writes a frame into the socket's buffer; [`Handler::flush`] sends it. tungstenite
    /// writes to the socket once its buffer holds 128 KiB, and waits for it to drain
    /// before it takes the next frame: that wait is bounded like a flush.
    async fn write_raw(&mut self, frame: Message) {
        if self.ending.is_none() {
            self.unflushed = true;
            metrics::frame_sent();
            self.ending = {
                let stall = self.stall();
                bounded(self.socket.feed(frame), &self.inbox, stall).await
            }
            .err();
        }
    }

    /// How long the socket may take nothing before the client is a slow consumer.
    fn stall(&self) -> Duration {
        Duration::from_secs(self.shared.config.limits.slow_consumer_s)
    }

    /// Sends what was written; `Some` when the connection must end instead.
    async fn flush(&mut self) -> Option<End> {
        if self.ending.is_none() && self.unflushed {
            self.unflushed = false;
            let stall = self.stall();
            match bounded(self.socket.flush(), &self.inbox, stall).await {
                // What the task took from its queue is out of this process now.
                Ok(()) => self.inbox.flushed(),
                Err(end) => self.ending = Some(end),
            }
        }
        self.ending.clone()
    }

    /// Handles one frame; `Some` when it ends the connection.
    async fn on_frame(&mut self, frame: Option<Result<Message, WsError>>) -> Option<End> {
        match frame {
            None => Some(End::ClientGone),
            Some(Err(error)) => {
                let failure = frame_error::classify(&error);
                tracing::debug!(fd = %self.identity.fd, ?failure, "read error: {error}");
                Some(End::ReadFailed(failure))
            }
            Some(Ok(Message::Text(text))) => {
                match message::parse(text.as_str()) {
                    Ok(Inbound::Ping) => {
                        self.write(Message::Text(Utf8Bytes::from_static("3"))).await
                    }
                    Ok(Inbound::Message { method, body }) => match self.rate.check() {
                        Verdict::Pass => self.pending.push_back(Some((method, body))),
                        Verdict::Refuse => self.pending.push_back(None),
                        Verdict::Close => return Some(End::RateLimited),
                    },
                    Err(_) => self.bad_input = Some(1007),
                }
                None
            }
            Some(Ok(Message::Binary(_))) => {
                self.bad_input = Some(1003);
                None
            }
            // A Close is answered by tungstenite with the same code, and the stream ends
            // on the next read.
            Some(Ok(Message::Close(frame))) => {
                self.echoed = frame.map(|frame| u16::from(frame.code));
                None
            }
            // Pings are answered by tungstenite.
            Some(Ok(Message::Ping(_) | Message::Pong(_) | Message::Frame(_))) => None,
        }
    }

    /// Acknowledges a message and starts its call.
    async fn start(&mut self, method: String, body: Map<String, Value>) -> CallFuture {
        if self.shared.config.protocol.ack {
            self.write(Message::Text(Utf8Bytes::from_static(ACK))).await;
        }
        let config = &self.shared.config;
        let resolved = router::route(&method).and_then(|route| {
            let (generation, target) = self.shared.plugins.resolve(&route)?;
            Ok((route, generation, target))
        });
        match resolved {
            Err(error) => {
                self.calling = None;
                Box::pin(std::future::ready(Err(error)))
            }
            Ok((route, generation, target)) => {
                let module = route.module.clone();
                self.calling = Some(route);
                let escape = config.protocol.escape_html;
                let message = message::prepare(body, self.identity.injection(escape), escape);
                let timeout = Duration::from_millis(config.limits.call_timeout_ms);
                let call = bridge::call(generation, &self.identity.fd, target, message, timeout);
                Box::pin(async move {
                    let started = std::time::Instant::now();
                    let outcome = call.await;
                    metrics::module_call(&module, started.elapsed());
                    outcome
                })
            }
        }
    }

    /// Writes a call's reply, or the envelope of its error.
    async fn answer(&mut self, outcome: CallOutcome) {
        let envelope = match outcome {
            Ok(Some(envelope)) => envelope,
            Ok(None) => return metrics::message(None),
            Err(error) => {
                if error.is_internal() {
                    let route = self.calling.as_ref();
                    let name = |part: fn(&router::Route) -> &str| route.map_or("", part);
                    // One line per flood of the same failure in the same module (README,
                    // "Deploying"): keyed by module and kind, never by fd.
                    let key = format!("call failed {} {}", name(|r| &r.module), kind(&error));
                    let message = format!("call failed: {error}");
                    if log_limit::admit(Level::ERROR, &key, &message) {
                        tracing::error!(
                            fd = %self.identity.fd,
                            module = %name(|r| &r.module),
                            controller = %name(|r| &r.controller),
                            action = %name(|r| &r.action),
                            "{message}"
                        );
                    }
                }
                error.envelope()
            }
        };
        metrics::message(Some(envelope.status));
        self.write(text(&envelope)).await;
    }
}

/// Runs a write or a flush until it is done, the socket has taken nothing for `stall`
/// (a slow consumer), or another task asks the connection to close — whichever comes
/// first. A socket that can take the bytes wins over a close request already made, so
/// replies written before a module's `close` still go out.
async fn bounded(
    io: impl Future<Output = Result<(), WsError>>,
    inbox: &Inbox,
    stall: Duration,
) -> Result<(), End> {
    tokio::select! {
        biased;
        done = tokio::time::timeout(stall, io) => match done {
            Ok(Ok(())) => Ok(()),
            Ok(Err(_)) => Err(End::ClientGone),
            Err(_) => Err(End::SlowConsumer),
        },
        request = inbox.close_requested() => Err(End::from(request)),
    }
}

/// The kind of an internal error, for [`log_limit`] keys.
fn kind(error: &CallError) -> &'static str {
    match error {
        CallError::Unavailable(_) => "unavailable",
        CallError::Storage(_) => "storage",
        CallError::Failed(_) => "failed",
        CallError::Panicked(_) => "panicked",
        CallError::Timeout(_) => "timeout",
        _ => "other",
    }
}

/// Waits for the call in progress (the caller polls this only when there is one).
async fn finish(in_flight: &mut Option<CallFuture>) -> CallOutcome {
    match in_flight {
        Some(call) => call.await,
        None => std::future::pending().await,
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
