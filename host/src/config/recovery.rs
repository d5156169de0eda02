//! `[recovery]`: resumable sessions (README.md, "Resumable sessions").

use serde::Deserialize;
use smart_default::SmartDefault;

use super::check::positive;

/// `[recovery]`.
#[derive(Debug, Clone, Deserialize, SmartDefault)]
#[serde(deny_unknown_fields, default)]
pub struct Recovery {
    /// Whether a client may ask for a resumable session (`resume=` in the handshake).
    #[default(true)]
    pub enabled: bool,
    /// Seconds a dropped session waits for its client before its close sequence runs.
    #[default(120)]
    pub window_s: u64,
    /// Seconds the frames written to a resumable connection are kept for a replay.
    #[default(60)]
    pub replay_s: u64,
    /// Most frames kept per session, written or waiting for a detached client.
    #[default(256)]
    pub max_frames: usize,
    /// Most bytes kept per session, written or waiting for a detached client.
    #[default(256 * 1024)]
    pub max_bytes: usize,
}

impl Recovery {
    pub(super) fn validate(&self) -> Result<(), String> {
        positive("recovery.window_s", self.window_s)?;
        positive("recovery.max_frames", self.max_frames)?;
        positive("recovery.max_bytes", self.max_bytes)
    }
}
