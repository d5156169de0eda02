//! One client connection: the socket driver of the per-connection engine.
//!
//! What a connection answers, in which order, and why it ends are the engine's
//! (`mswoole_core::engine`, which the module test kit drives too); this task does the
//! I/O around it, one task per connection as mini-redis has one `Handler` per socket.
//! It reads frames and hands them to the engine, writes what the engine says to write,
//! polls the call in flight, and writes what other tasks queued for it ([`Inbox`]).
//! Replies are written without a flush each; the task flushes once before it waits
//! again, so a batch of requests costs one write. Reading goes on while a call waits,
//! so `2` is answered at once and any frame resets the idle timer; the engine pauses
//! reading while too many messages wait. While the socket does not drain, the task waits
//! on it and reads nothing (back-pressure on this connection only), up to
//! `limits.slow_consumer_s`, or until a close request arrives (a slow consumer's queue
//! asks for one when it goes past `limits.outbound_bytes`).
//!
//! A frame that breaks RFC 6455 fails the connection with the close code
//! [`frame_error`] gives it (1002, 1007, 1009). Every close code is sent best effort:
//! when the socket cannot take the close frame within [`CLOSE_GRACE`] (a slow consumer
//! that stopped reading), the connection ends with a TCP reset instead, so the client
//! can tell it apart from an orderly end (README, "Bad input"). Then the task reports
//! how it ended to the session owner ([`crate::session`]), which decides what becomes
//! of the connection.

pub mod frame_error;

use std::{borrow::Cow, future::Future, sync::Arc, time::Duration};

use futures_util::{SinkExt, StreamExt};
use tokio::{net::TcpStream, time::Instant};
use tokio_tungstenite::{
    tungstenite::{
        protocol::{frame::coding::CloseCode, CloseFrame, WebSocketConfig},
        Error as WsError, Message, Utf8Bytes,
    },
    WebSocketStream,
};
use tracing::Level;

use crate::{
    config::Config,
    engine::{
        end::End,
        rate::MessageRate,
        scheduler::{Observe, Scheduler, Step},
    },
    error::CallError,
    fanout::outbound::{Inbox, Mail},
    identity::Identity,
    plugins::Plugins,
    router::Route,
    runtime::shutdown::Shutdown,
    session::{Opened, Report, Session, Sessions},
    telemetry::{log_limit, metrics},
};

/// How long the close frame may take to leave before the connection is reset instead.
const CLOSE_GRACE: Duration = Duration::from_secs(2);

/// Read buffer per connection. tungstenite's default (128 KiB, zero-filled before
/// every read) would cost more than everything else a connection holds.
const READ_BUFFER: usize = 4 * 1024;

type Socket = WebSocketStream<TcpStream>;

/// What every connection is held to, from the config.
#[derive(Debug, Clone)]
pub struct Settings {
    /// `protocol.ack`.
    pub ack: bool,
    /// `protocol.escape_html`.
    pub escape: bool,
    /// `heartbeat.idle_s`.
    pub idle: Duration,
    /// `limits.slow_consumer_s`.
    pub stall: Duration,
    /// `limits.max_message_bytes`.
    pub max_message_bytes: usize,
    /// `limits.messages_per_s`.
    pub messages_per_s: u32,
    /// `limits.messages_burst`.
    pub messages_burst: u32,
    /// `limits.rate_close_after_s`.
    pub rate_close_after_s: u64,
}

impl From<&Config> for Settings {
    fn from(config: &Config) -> Self {
        let limits = &config.limits;
        Settings {
            ack: config.protocol.ack,
            escape: config.protocol.escape_html,
            idle: Duration::from_secs(config.heartbeat.idle_s),
            stall: Duration::from_secs(limits.slow_consumer_s),
            max_message_bytes: limits.max_message_bytes,
            messages_per_s: limits.messages_per_s,
            messages_burst: limits.messages_burst,
            rate_close_after_s: limits.rate_close_after_s,
        }
    }
}

impl Settings {
    /// tungstenite settings for client connections.
    pub fn websocket(&self) -> WebSocketConfig {
        let max = self.max_message_bytes;
        WebSocketConfig::default()
            .read_buffer_size(READ_BUFFER)
            .max_message_size(Some(max))
            .max_frame_size(Some(max))
    }

    fn engine(&self) -> Scheduler<MessageRate> {
        let rate = MessageRate::new(
            self.messages_per_s,
            self.messages_burst,
            self.rate_close_after_s,
        );
        Scheduler::new(self.ack, self.escape, rate)
    }
}

/// What a connection task uses, and nothing more.
#[derive(Clone)]
pub struct Context {
    /// What every connection is held to.
    pub settings: Arc<Settings>,
    /// The modules its messages go to.
    pub plugins: Arc<Plugins>,
    /// The owner of its life, told how it ended.
    pub sessions: Arc<Sessions>,
    /// Whether the host is stopping.
    pub shutdown: Shutdown,
}

/// The socket side of one connection.
struct Handler {
    /// The WebSocket, read and written by this task only.
    socket: Socket,
    /// Frames other tasks queued for this connection.
    inbox: Inbox,
    /// Its resumable session: every envelope written is stamped with a seq and kept.
    /// Boxed: a connection without one pays a pointer, not the session.
    session: Option<Box<Session>>,
    /// Frames written since the last flush.
    unflushed: bool,
    /// Writing found that the connection must end: nothing more is written.
    ending: Option<End>,
    /// The code of the client's close frame, which tungstenite echoes (for
    /// `mswoole_closes_total`, README.md "Metrics").
    echoed: Option<u16>,
    /// `limits.slow_consumer_s`.
    stall: Duration,
}

/// Runs a connection until it ends, then reports how it ended to the session owner.
/// `greeting` is written first, as it is: a session's control envelope and the frames
/// it missed.
pub async fn run(context: &Context, socket: Socket, opened: Opened, greeting: Vec<Utf8Bytes>) {
    let Opened {
        identity,
        outbound,
        inbox,
        session,
    } = opened;
    let settings = &context.settings;
    let mut handler = Handler {
        socket,
        inbox,
        session,
        unflushed: false,
        ending: None,
        echoed: None,
        stall: settings.stall,
    };
    let mut engine = settings.engine();
    for frame in greeting {
        handler.write_raw(Message::Text(frame)).await;
    }
    let mut observe = HostObserve { fd: &identity.fd };
    // A stop that began before this connection was in the table did not reach it.
    let end = match context.shutdown.is_stopping() {
        true => End::Shutdown,
        false => {
            handler
                .serve(&mut engine, context, &identity, &mut observe)
                .await
        }
    };
    tracing::debug!(fd = %identity.fd, ?end, "connection ends");
    let code_sent = handler.close(end, &identity.fd).await;
    metrics::closed(code_sent);
    let report = Report {
        identity: identity.clone(),
        end,
        echoed: handler.echoed,
        session: handler.session,
        call: engine.take_call(),
        outbound,
        inbox: handler.inbox,
    };
    context.sessions.report(report, &mut observe).await;
}

impl Handler {
    /// Drives the engine: reads frames, runs calls and writes until the connection ends.
    async fn serve(
        &mut self,
        engine: &mut Scheduler<MessageRate>,
        context: &Context,
        identity: &Identity,
        observe: &mut HostObserve<'_>,
    ) -> End {
        let idle = context.settings.idle;
        let dispatch = &*context.plugins;
        // The timer is moved only when it fires early; a frame just moves `deadline`.
        let mut deadline = Instant::now() + idle;
        let idle_timer = tokio::time::sleep_until(deadline);
        tokio::pin!(idle_timer);
        loop {
            loop {
                match engine.step(identity, dispatch, observe) {
                    Step::Write(text) => self.write(Message::Text(utf8(text))).await,
                    Step::Wait => break,
                    Step::End(end) => return self.flush().await.unwrap_or(end),
                }
            }
            if let Some(end) = self.flush().await {
                return end;
            }
            let reading = engine.reading();
            tokio::select! {
                biased;
                _ = std::future::poll_fn(|cx| engine.poll_call(cx)), if engine.calling() => {}
                mail = self.inbox.take() => match mail {
                    Mail::Frames(frames) => {
                        for frame in frames {
                            self.write(frame).await;
                        }
                    }
                    Mail::Close(request) => engine.close(request),
                },
                frame = self.socket.next(), if reading => {
                    deadline = Instant::now() + idle;
                    if let Some(end) = self.on_frame(engine, frame, identity) {
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

    /// Hands one frame to the engine; `Some` when it ends the connection.
    fn on_frame(
        &mut self,
        engine: &mut Scheduler<MessageRate>,
        frame: Option<Result<Message, WsError>>,
        identity: &Identity,
    ) -> Option<End> {
        match frame {
            None => Some(End::ClientGone),
            Some(Err(error)) => {
                let failure = frame_error::classify(&error);
                tracing::debug!(fd = %identity.fd, ?failure, "read error: {error}");
                Some(End::ReadFailed(failure))
            }
            Some(Ok(Message::Text(text))) => engine.text(text.as_str()),
            Some(Ok(Message::Binary(_))) => {
                engine.binary();
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
            let stall = self.stall;
            self.ending = bounded(self.socket.feed(frame), &self.inbox, stall)
                .await
                .err();
        }
    }

    /// Sends what was written; `Some` when the connection must end instead.
    async fn flush(&mut self) -> Option<End> {
        if self.ending.is_none() && self.unflushed {
            self.unflushed = false;
            let stall = self.stall;
            match bounded(self.socket.flush(), &self.inbox, stall).await {
                // What the task took from its queue is out of this process now.
                Ok(()) => self.inbox.flushed(),
                Err(end) => self.ending = Some(end),
            }
        }
        self.ending
    }

    /// Tells the client how the connection ends, best effort; returns the close code it
    /// was sent (for `mswoole_closes_total`: the client's own, echoed, when it closed).
    async fn close(&mut self, end: End, fd: &str) -> Option<u16> {
        let mut code_sent = self.echoed.filter(|_| end == End::ClientGone);
        if let Some((code, reason)) = end.close() {
            let frame = CloseFrame {
                code: CloseCode::from(code.code()),
                reason: reason.into(),
            };
            let sent =
                tokio::time::timeout(CLOSE_GRACE, self.socket.send(Message::Close(Some(frame))))
                    .await;
            if matches!(sent, Ok(Ok(()))) {
                code_sent = Some(code.code());
            } else {
                // The socket did not take the close frame (the client stopped reading): a
                // reset says so, where a FIN would pass for an orderly end.
                tracing::info!(%fd, ?end, "close frame not sent: connection reset");
                if let Err(error) = self.socket.get_ref().set_zero_linger() {
                    tracing::debug!(%fd, "cannot arrange a reset: {error}");
                }
            }
        } else if end != End::TakenOver {
            // Nothing to say, but tungstenite may still owe the client the answer to its own
            // close frame (a reply written after it arrived fails and ends the loop first).
            let _ = tokio::time::timeout(CLOSE_GRACE, self.socket.flush()).await;
        }
        code_sent
    }
}

/// A frame the engine wrote, as tungstenite sends it (a static one is not copied).
fn utf8(text: Cow<'static, str>) -> Utf8Bytes {
    match text {
        Cow::Borrowed(text) => Utf8Bytes::from_static(text),
        Cow::Owned(text) => Utf8Bytes::from(text),
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

/// Where a connection's answers are recorded: `mswoole_messages_total`, and one log line
/// per flood of the same internal failure in the same module (README, "Deploying").
pub struct HostObserve<'a> {
    /// The connection's fd, for the log.
    pub fd: &'a str,
}

impl Observe for HostObserve<'_> {
    fn answered(
        &mut self,
        route: Option<&Route>,
        status: Option<u16>,
        failure: Option<&CallError>,
    ) {
        metrics::message(status);
        let Some(error) = failure else {
            return;
        };
        let name = |part: fn(&Route) -> &str| route.map_or("", part);
        // Keyed by module and kind, never by fd.
        let key = format!("call failed {} {}", name(|r| &r.module), kind(error));
        let message = format!("call failed: {error}");
        if log_limit::admit(Level::ERROR, &key, &message) {
            tracing::error!(
                fd = %self.fd,
                module = %name(|r| &r.module),
                controller = %name(|r| &r.controller),
                action = %name(|r| &r.action),
                "{message}"
            );
        }
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
