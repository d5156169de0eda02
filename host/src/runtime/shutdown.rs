//! Stop signals, in the steps a graceful stop needs.
//!
//! `stopping` fires first: the listener answers 503 to new upgrades and to
//! `/healthz` while the drain ([`crate::app::drain`]) closes clients with 1012, spread over
//! `shutdown.drain_s`. `hurried` fires on a second SIGTERM or SIGINT: the drain closes
//! the rest at once. `closed` fires once every connection is done and modules had
//! `onShutdown`: then the listeners go away.

use tokio_util::sync::CancellationToken;

/// The host's stop signals. Cheap to clone.
#[derive(Debug, Clone, Default)]
pub struct Shutdown {
    /// The host is stopping: drain clients, refuse new ones.
    stopping: CancellationToken,
    /// A second stop signal: skip the rest of the drain.
    hurried: CancellationToken,
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

    /// A stop signal: the first starts the stop, any later one skips the rest of the drain.
    pub fn stop_or_hurry(&self) {
        if self.is_stopping() {
            self.hurried.cancel();
        } else {
            self.stop();
        }
    }

    /// Whether a stop has started.
    pub fn is_stopping(&self) -> bool {
        self.stopping.is_cancelled()
    }

    /// Completes when a stop starts.
    pub async fn stopping(&self) {
        self.stopping.cancelled().await
    }

    /// Completes when a second stop signal asks to skip the rest of the drain.
    pub async fn hurried(&self) {
        self.hurried.cancelled().await
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_first_signal_stops_and_the_second_hurries() {
        let shutdown = Shutdown::new();
        shutdown.stop_or_hurry();
        assert!(shutdown.is_stopping());
        assert!(!shutdown.hurried.is_cancelled());
        shutdown.stop_or_hurry();
        assert!(shutdown.hurried.is_cancelled());
    }
}
