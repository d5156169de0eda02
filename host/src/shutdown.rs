//! Stop signals, in the two steps a graceful stop needs.
//!
//! `stopping` fires first: connections close with 1001 and run their close
//! sequence while the listener keeps answering (503 to new upgrades and to
//! `/healthz`). `closed` fires once every connection is done and modules had
//! `onShutdown`: then the listeners go away.

use tokio_util::sync::CancellationToken;

/// The host's stop signals. Cheap to clone.
#[derive(Debug, Clone, Default)]
pub struct Shutdown {
    /// The host is stopping: close clients, refuse new ones.
    stopping: CancellationToken,
    /// Clients are closed: stop listening.
    closed: CancellationToken,
}

impl Shutdown {
    /// Fresh signals.
    pub fn new() -> Self {
        Self::default()
    }

    /// Starts a stop (idempotent).
    pub fn stop(&self) {
        self.stopping.cancel();
    }

    /// Whether a stop has started.
    pub fn is_stopping(&self) -> bool {
        self.stopping.is_cancelled()
    }

    /// Completes when a stop starts.
    pub async fn stopping(&self) {
        self.stopping.cancelled().await
    }

    /// Marks every client closed: listeners may go.
    pub fn close_listeners(&self) {
        self.closed.cancel();
    }

    /// Completes when the listeners should go.
    pub async fn listeners_closed(&self) {
        self.closed.cancelled().await
    }
}
