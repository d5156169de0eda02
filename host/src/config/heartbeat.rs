//! `[heartbeat]`: dropping silent clients.

use serde::Deserialize;
use smart_default::SmartDefault;

use super::check::positive;

/// `[heartbeat]`.
#[derive(Debug, Clone, Deserialize, SmartDefault)]
#[serde(deny_unknown_fields, default)]
pub struct Heartbeat {
    /// Seconds without any frame from a client before it is closed (1000, `idle timeout`).
    #[default(60)]
    pub idle_s: u64,
}

impl Heartbeat {
    pub(super) fn validate(&self) -> Result<(), String> {
        positive("heartbeat.idle_s", self.idle_s)
    }
}
