//! `[limits]`: what one client, one module or the whole host may take.

use serde::Deserialize;
use smart_default::SmartDefault;

use super::check::positive;

/// `[limits]`.
#[derive(Debug, Clone, Deserialize, SmartDefault)]
#[serde(deny_unknown_fields, default)]
pub struct Limits {
    /// Largest accepted client frame in bytes; bigger ones close with 1009.
    #[default(65536)]
    pub max_message_bytes: usize,
    /// Most concurrent clients; 0 = open-file limit minus 64, decided at start.
    pub max_connections: usize,
    /// Frames others may queue for one client; more are dropped.
    #[default(1024)]
    pub outbound_queue: usize,
    /// Bytes others may queue for one client (until flushed); more close it as a slow consumer.
    #[default(1 << 20)]
    pub outbound_bytes: usize,
    /// Seconds a client's socket may take nothing while the host has bytes for it before it
    /// is closed as a slow consumer (1008).
    #[default(10)]
    pub slow_consumer_s: u64,
    /// Seconds a client has to complete its HTTP request.
    #[default(10)]
    pub handshake_timeout_s: u64,
    /// Milliseconds a module call may take before it is answered with 500.
    #[default(5000)]
    pub call_timeout_ms: u64,
    /// Timers one module may have armed at once.
    #[default(1000)]
    pub timers_per_module: usize,
    /// Largest answer body a module's HTTP request may receive; a larger one is a `TooLarge` error.
    #[default(1024 * 1024)]
    pub http_max_response_bytes: usize,
    /// Messages one connection may send per second on average; 0 = no limit.
    #[default(100)]
    pub messages_per_s: u32,
    /// Messages one connection may send at once above that rate (the bucket's size).
    #[default(200)]
    pub messages_burst: u32,
    /// Seconds a connection may stay over its rate (answered 429) before it is closed
    /// with 1008; 0 = never closed for it.
    #[default(10)]
    pub rate_close_after_s: u64,
    /// Connections one client address may hold at once; 0 = no limit.
    pub connections_per_ip: usize,
}

impl Limits {
    pub(super) fn validate(&self) -> Result<(), String> {
        positive("limits.max_message_bytes", self.max_message_bytes)?;
        positive("limits.outbound_queue", self.outbound_queue)?;
        positive("limits.outbound_bytes", self.outbound_bytes)?;
        positive("limits.slow_consumer_s", self.slow_consumer_s)?;
        positive("limits.handshake_timeout_s", self.handshake_timeout_s)?;
        positive("limits.call_timeout_ms", self.call_timeout_ms)?;
        positive("limits.timers_per_module", self.timers_per_module)?;
        positive(
            "limits.http_max_response_bytes",
            self.http_max_response_bytes,
        )?;
        if self.messages_per_s > 0 {
            positive("limits.messages_burst", self.messages_burst)?;
        }
        Ok(())
    }
}
