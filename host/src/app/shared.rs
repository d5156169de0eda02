//! The state every task shares, built once at start-up.

use std::{sync::Arc, time::Instant};

use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;

use crate::{
    cluster::handover::Handover, config::Config, edge::auth::TokenKeys, fanout::clients::Clients,
    fanout::delivery::Delivery, identity::FdIds, plugins::Plugins, registry::Registry,
    runtime::shutdown::Shutdown, session::closer::Closer, session::Sessions,
};

/// Read buffer per connection. tungstenite's default (128 KiB, zero-filled before
/// every read) would cost more than everything else a connection holds.
const READ_BUFFER: usize = 4 * 1024;

/// Everything a connection, the manager and the plugin host handles need.
pub struct Shared {
    /// The validated configuration.
    pub config: Arc<Config>,
    /// This node's id.
    pub node_id: String,
    /// The keys handshake tokens are checked with; a reload swaps them.
    pub tokens: TokenKeys,
    /// The fd registry.
    pub registry: Arc<dyn Registry>,
    /// Local connections and their outbound queues.
    pub clients: Arc<Clients>,
    /// Frames to connections on any node.
    pub delivery: Arc<Delivery>,
    /// Ends connections: the close sequence.
    pub closer: Arc<Closer>,
    /// Resumable sessions of this node.
    pub sessions: Arc<Sessions>,
    /// Moves sessions between nodes.
    pub handover: Arc<Handover>,
    /// Loaded modules.
    pub plugins: Arc<Plugins>,
    /// Hands out fds.
    pub ids: FdIds,
    /// Stop signals.
    pub shutdown: Shutdown,
    /// When the host started.
    pub started: Instant,
    /// `limits.max_connections`, resolved.
    pub max_connections: usize,
}

impl Shared {
    /// tungstenite settings for client connections.
    pub fn websocket_config(&self) -> WebSocketConfig {
        let max = self.config.limits.max_message_bytes;
        WebSocketConfig::default()
            .read_buffer_size(READ_BUFFER)
            .max_message_size(Some(max))
            .max_frame_size(Some(max))
    }
}
