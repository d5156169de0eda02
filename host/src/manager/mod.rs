//! The manager port: how the console, operators' scripts and backends drive a running
//! host, and where Prometheus scrapes it.
//!
//! One port speaks two transports (README.md, "Console and manager port" and "HTTP
//! API"): a WebSocket taking one JSON command per connection, as in MSwoole ([`ws`]),
//! and plain HTTP — `POST /api/<command>` and `GET /metrics` ([`http`]). Both parse
//! and run commands through [`command`], so a command means the same on either.
//!
//! Each connection's request head is read here once and decides the transport. A
//! request with an `Origin` header is refused on both (a web page must not reach the
//! manager, even on a loopback address); with `manager.token` set, every request
//! carries it, compared in constant time.

pub mod client;
pub mod command;
mod http;
pub mod status;
mod ws;

use std::{
    sync::Arc,
    time::{Duration, Instant},
};

use subtle::ConstantTimeEq;
use tokio::{
    io::AsyncReadExt,
    net::{TcpListener, TcpStream},
};

pub use command::reload;

use crate::{
    config::Config,
    edge::handshake::{self, HeadError},
    fanout::{delivery::Delivery, locations::Locations},
    plugins::Plugins,
    registry::Registry,
    runtime::shutdown::Shutdown,
    session::Sessions,
    telemetry::metrics::Metrics,
};

/// What the manager port uses: the parts its commands act on, and nothing more.
pub struct Manager {
    /// `[manager]` and `limits.max_message_bytes`.
    pub config: Arc<Config>,
    /// Rescanned by `reload`, listed by `status`.
    pub plugins: Arc<Plugins>,
    /// Where `push` finds a uid and `broadcast` a set.
    pub registry: Arc<dyn Registry>,
    /// Frames to connections on any node.
    pub delivery: Arc<Delivery>,
    /// Connections a socket serves (`status`, `/metrics`).
    pub sessions: Arc<Sessions>,
    /// Frames dropped (`status`).
    pub locations: Arc<Locations>,
    /// `stop`.
    pub shutdown: Shutdown,
    /// `/metrics`.
    pub metrics: Metrics,
    /// When the host started.
    pub started: Instant,
    /// `limits.max_connections`, resolved.
    pub max_connections: usize,
}

/// How long a manager client has to send its command.
const COMMAND_TIMEOUT: Duration = Duration::from_secs(10);

/// How long a refused client's unread bytes are read and dropped, at most, so that it
/// sees the answer rather than a reset (a socket closed with unread input resets).
const DRAIN: Duration = Duration::from_secs(10);

/// Accepts manager connections until the listeners close.
pub async fn serve(manager: Arc<Manager>, listener: TcpListener) {
    loop {
        let accepted = tokio::select! {
            _ = manager.shutdown.listeners_closed() => return,
            accepted = listener.accept() => accepted,
        };
        match accepted {
            Ok((socket, _)) => {
                tokio::spawn(session(manager.clone(), socket));
            }
            Err(error) => {
                tracing::error!("manager accept failed: {error}");
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    }
}

/// One manager connection: its head decides the transport.
async fn session(manager: Arc<Manager>, mut socket: TcpStream) {
    let head = tokio::time::timeout(COMMAND_TIMEOUT, handshake::read_head(&mut socket)).await;
    let (head, rest) = match head {
        Err(_) | Ok(Err(HeadError::Io(_))) => return,
        Ok(Err(HeadError::Malformed)) => {
            let _ = handshake::respond(&mut socket, 400, &[], "text/plain", "bad request\n").await;
            return;
        }
        Ok(Ok(parsed)) => parsed,
    };
    if head.header("origin").is_some() {
        let body = "the manager port does not accept browser requests\n";
        let _ = handshake::respond(&mut socket, 403, &[], "text/plain", body).await;
        return;
    }
    if head.is_upgrade() {
        ws::session(&manager, socket, head, rest).await;
    } else {
        http::request(&manager, socket, head, rest).await;
    }
}

/// Whether `given` is `manager.token` (constant time); `true` when no token is set.
fn token_matches(manager: &Manager, given: Option<&str>) -> bool {
    match &manager.config.manager.token {
        None => true,
        Some(expected) => {
            let given = given.unwrap_or("");
            bool::from(given.as_bytes().ct_eq(expected.as_bytes()))
        }
    }
}

/// Reads and drops what a refused client still sends, until it stops for a second,
/// closes, or [`DRAIN`] passes.
async fn drain(socket: &mut TcpStream) {
    let started = tokio::time::Instant::now();
    let mut chunk = vec![0u8; 64 * 1024];
    while started.elapsed() < DRAIN {
        match tokio::time::timeout(Duration::from_secs(1), socket.read(&mut chunk)).await {
            Ok(Ok(read)) if read > 0 => continue,
            _ => return,
        }
    }
}
