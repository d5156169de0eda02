//! The stop sequence (README.md, "Stopping"), in its order: new upgrades get 503 and
//! `/healthz` says `draining` (the listener and the pages read the stop signal), the drain
//! closes the clients with 1012 spread over `shutdown.drain_s`, their tasks report and their
//! close sequences run, detached sessions are offered to other nodes and the rest end,
//! timers stop, every module gets `onShutdown`, the node's registry records go, and the
//! listeners close.

use std::{sync::Arc, time::Duration};

use tokio_util::task::TaskTracker;

use super::drain;
use crate::{
    cluster::handover::Handover,
    fanout::locations::Locations,
    plugins::{bridge::Hook, timers::Timers, Plugins},
    registry::Registry,
    runtime::{readiness, shutdown::Shutdown},
    session::Sessions,
};

/// How long connections get to run their close sequence once the drain closed them.
const STOP_GRACE: Duration = Duration::from_secs(10);

/// What the stop sequence acts on.
pub struct Stop {
    /// The stop signals.
    pub shutdown: Shutdown,
    /// `shutdown.drain_s`.
    pub drain: Duration,
    /// `limits.call_timeout_ms`, for `onShutdown`.
    pub hook_timeout: Duration,
    /// Every socket's task.
    pub connections: TaskTracker,
    /// This node's connections.
    pub sessions: Arc<Sessions>,
    /// Where the drain's close requests go.
    pub locations: Arc<Locations>,
    /// Hands detached sessions to other nodes.
    pub handover: Arc<Handover>,
    /// Modules' timers.
    pub timers: Arc<Timers>,
    /// The modules.
    pub plugins: Arc<Plugins>,
    /// This node's records.
    pub registry: Arc<dyn Registry>,
}

impl Stop {
    /// Runs the stop sequence (the stop signal has come).
    pub async fn run(self) {
        readiness::stopping();
        let drain_s = self.drain.as_secs();
        tracing::info!(
            clients = self.sessions.connections(),
            drain_s,
            "stopping: draining clients"
        );
        drain::run(&self.sessions, &self.locations, self.drain, &self.shutdown).await;
        self.connections.close();
        if tokio::time::timeout(STOP_GRACE, self.connections.wait())
            .await
            .is_err()
        {
            tracing::warn!("some connections did not finish their close sequence in time");
        }
        // The drain detached the resumable sessions: other nodes may adopt them (on Redis);
        // nothing resumes the rest here any more.
        let moved = self.handover.hand_over_detached().await;
        if moved > 0 {
            tracing::info!(
                sessions = moved,
                "detached sessions handed over to other nodes"
            );
        }
        let ended = self.sessions.end_detached().await;
        if ended > 0 {
            tracing::info!(sessions = ended, "detached sessions ended");
        }
        // Timers run while clients drain and end just before onShutdown.
        self.timers.stop();
        self.plugins
            .hook_all(Hook::Shutdown, self.hook_timeout)
            .await;
        crate::plugins::keep_libraries_mapped();
        if let Err(error) = self.registry.leave().await {
            tracing::warn!("registry: could not remove this node's records: {error}");
        }
        self.shutdown.close_listeners();
    }
}
