//! What both transports of the manager port share: the handles a command acts on, the
//! token check, the time a client gets, and draining a refused client.

use std::{
    sync::Arc,
    time::{Duration, Instant},
};

use subtle::ConstantTimeEq;
use tokio::{io::AsyncReadExt, net::TcpStream};

use crate::{
    config::Config,
    edge::auth::TokenKeys,
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
    /// The token keys `reload` re-reads.
    pub tokens: Arc<TokenKeys>,
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
pub const COMMAND_TIMEOUT: Duration = Duration::from_secs(10);

/// How long a refused client's unread bytes are read and dropped, at most, so that it
/// sees the answer rather than a reset (a socket closed with unread input resets).
const DRAIN: Duration = Duration::from_secs(10);

/// Whether `given` is `manager.token` (constant time); `true` when no token is set.
pub fn token_matches(manager: &Manager, given: Option<&str>) -> bool {
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
pub async fn drain(socket: &mut TcpStream) {
    let started = tokio::time::Instant::now();
    let mut chunk = vec![0u8; 64 * 1024];
    while started.elapsed() < DRAIN {
        match tokio::time::timeout(Duration::from_secs(1), socket.read(&mut chunk)).await {
            Ok(Ok(read)) if read > 0 => continue,
            _ => return,
        }
    }
}
