//! `[shutdown]`: how a stop drains its clients (README.md, "Stopping").

use serde::Deserialize;
use smart_default::SmartDefault;

/// `[shutdown]`.
#[derive(Debug, Clone, Deserialize, SmartDefault)]
#[serde(deny_unknown_fields, default)]
pub struct Shutdown {
    /// Seconds over which a stop spreads its clients' 1012 closes, so they do not all reconnect
    /// to the other nodes in the same second; 0 closes them all at once.
    #[default(10)]
    pub drain_s: u64,
}
