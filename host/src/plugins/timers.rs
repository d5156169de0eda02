//! Modules' timers: `on_timer(name, payload)` after a delay or every interval
//! (docs/MODULES.md, "Timers").
//!
//! A timer belongs to its module by name, not to a connection or a loaded version: its
//! task only tells when a tick is due ([`Tick`]), and the plugin table calls the module's
//! *current* version, so after a hot swap the new version's `on_timer` gets the ticks and
//! none is lost or doubled by the swap. The rules (replace by name, the per-module limit,
//! a tick skipped while the previous `on_timer` of that name runs, nothing after the stop)
//! are `mswoole_core::engine::timers`, which the module test kit follows too. Timers run
//! while the host drains and are stopped just before `onShutdown`.

use std::{
    sync::{Arc, Mutex, MutexGuard},
    time::Duration,
};

use mswoole_core::{engine::timers::TimerTable, services::Timer};
use tokio::{sync::mpsc, task::AbortHandle, time::MissedTickBehavior};

/// A timer's tick is due: the plugin table fires it if the rules allow.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tick {
    /// The module it belongs to.
    pub module: String,
    /// Its name.
    pub name: String,
    /// The arming it belongs to.
    pub id: u64,
}

/// Every module's timers, each a task that sends its ticks.
pub struct Timers {
    /// The armed timers and their tasks.
    table: Mutex<TimerTable<AbortHandle>>,
    /// Where due ticks go (the plugin table).
    ticks: mpsc::UnboundedSender<Tick>,
}

impl Timers {
    /// No timers yet, at most `limit` per module; due ticks go to `ticks`.
    pub fn new(limit: usize, ticks: mpsc::UnboundedSender<Tick>) -> Arc<Self> {
        Arc::new(Timers {
            table: Mutex::new(TimerTable::new(limit)),
            ticks,
        })
    }

    fn table(&self) -> MutexGuard<'_, TimerTable<AbortHandle>> {
        self.table
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Arms (or re-arms) `module`'s timer.
    pub fn set(&self, module: &str, timer: Timer) -> Result<(), String> {
        let runtime = tokio::runtime::Handle::try_current()
            .map_err(|_| "timers can only be set from within the host".to_string())?;
        let (millis, repeat) = (timer.millis, timer.repeat);
        let (module_name, name) = (module.to_string(), timer.name.clone());
        let ticks = self.ticks.clone();
        let replaced = self.table().arm(module, timer, |id| {
            let tick = Tick {
                module: module_name,
                name,
                id,
            };
            runtime
                .spawn(run(ticks, tick, Duration::from_millis(millis), repeat))
                .abort_handle()
        })?;
        if let Some(old) = replaced {
            old.abort();
        }
        Ok(())
    }

    /// Cancels `module`'s timer `name`; `true` if it was armed.
    pub fn cancel(&self, module: &str, name: &str) -> bool {
        let removed = self.table().cancel(module, name);
        removed.map(|task| task.abort()).is_some()
    }

    /// Stops every timer for good (just before `onShutdown`).
    pub fn stop(&self) {
        for task in self.table().stop() {
            task.abort();
        }
    }

    /// A tick arrived: the timer to fire, if the rules let it (see [`TimerTable::begin`]).
    pub fn begin(&self, tick: &Tick) -> Option<Timer> {
        self.table().begin(&tick.module, &tick.name, tick.id)
    }

    /// The `on_timer` of `tick` returned.
    pub fn finish(&self, tick: &Tick) {
        self.table().finish(&tick.module, &tick.name, tick.id);
    }
}

/// One timer's task: sends its tick after `period`, and for a repeating timer every
/// `period` after that.
async fn run(ticks: mpsc::UnboundedSender<Tick>, tick: Tick, period: Duration, repeat: bool) {
    if !repeat {
        tokio::time::sleep(period).await;
        let _ = ticks.send(tick);
        return;
    }
    let mut interval = tokio::time::interval_at(tokio::time::Instant::now() + period, period);
    // A tick missed while the host was busy is skipped, not made up in a burst.
    interval.set_missed_tick_behavior(MissedTickBehavior::Skip);
    loop {
        interval.tick().await;
        if ticks.send(tick.clone()).is_err() {
            return;
        }
    }
}
