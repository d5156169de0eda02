//! Modules' timers: `on_timer(name, payload)` after a delay or every interval.
//!
//! A timer belongs to its module by name, not to a connection or a loaded
//! version: each one is a task that, when it fires, calls the module's *current*
//! version, so after a hot swap the new version's `on_timer` gets the ticks and
//! none is lost or doubled by the swap. Setting a name again replaces the timer;
//! a repeating timer's tick that falls due while the previous `on_timer` of that
//! name still runs is skipped; each call is bounded by `limits.call_timeout_ms`
//! and a failure or panic is logged while the timer goes on. Timers run while the
//! host drains and are stopped just before `onShutdown` (docs/MODULES.md, "Timers").

use std::{
    collections::HashMap,
    sync::{
        atomic::{AtomicBool, AtomicU64, Ordering},
        Arc, Mutex, MutexGuard, OnceLock, Weak,
    },
    time::Duration,
};

use mswoole_core::services::Timer;
use tokio::{task::AbortHandle, time::MissedTickBehavior};

use crate::plugins::{bridge::Hook, Plugins};

/// One armed timer.
struct Armed {
    /// Tells this arming apart from a later one of the same name.
    id: u64,
    /// Stops its task.
    task: AbortHandle,
}

/// Every module's timers.
pub struct Timers {
    /// Armed timers by (module, name).
    armed: Mutex<HashMap<(String, String), Armed>>,
    /// `limits.timers_per_module`.
    limit: usize,
    /// `limits.call_timeout_ms`, for each `on_timer`.
    timeout: Duration,
    /// Where fired timers go; weak, because the plugin table holds the modules that hold this.
    plugins: OnceLock<Weak<Plugins>>,
    /// Set at shutdown: no timer fires or is armed after it.
    stopped: AtomicBool,
    /// Hands out arming ids.
    next_id: AtomicU64,
}

impl Timers {
    /// No timers yet; at most `limit` per module, each call bounded by `timeout`.
    pub fn new(limit: usize, timeout: Duration) -> Arc<Self> {
        Arc::new(Timers {
            armed: Mutex::default(),
            limit,
            timeout,
            plugins: OnceLock::new(),
            stopped: AtomicBool::new(false),
            next_id: AtomicU64::new(1),
        })
    }

    /// Connects the plugin table fired timers are handed to.
    pub fn attach(&self, plugins: &Arc<Plugins>) {
        let _ = self.plugins.set(Arc::downgrade(plugins));
    }

    fn armed(&self) -> MutexGuard<'_, HashMap<(String, String), Armed>> {
        self.armed
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Arms (or re-arms) `module`'s timer.
    pub fn set(self: &Arc<Self>, module: &str, timer: Timer) -> Result<(), String> {
        if self.stopped.load(Ordering::SeqCst) {
            return Err("the host is stopping: no new timers".into());
        }
        let runtime = tokio::runtime::Handle::try_current()
            .map_err(|_| "timers can only be set from within the host".to_string())?;
        let key = (module.to_string(), timer.name.clone());
        let mut armed = self.armed();
        if !armed.contains_key(&key)
            && armed.keys().filter(|(owner, _)| owner == module).count() >= self.limit
        {
            return Err(format!(
                "module {module} has {} timers, the limit (limits.timers_per_module)",
                self.limit
            ));
        }
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let task = runtime.spawn(run(Arc::downgrade(self), module.to_string(), timer, id));
        if let Some(old) = armed.insert(
            key,
            Armed {
                id,
                task: task.abort_handle(),
            },
        ) {
            old.task.abort();
        }
        Ok(())
    }

    /// Cancels `module`'s timer `name`; `true` if it was armed.
    pub fn cancel(&self, module: &str, name: &str) -> bool {
        let removed = self.armed().remove(&(module.to_string(), name.to_string()));
        removed.map(|armed| armed.task.abort()).is_some()
    }

    /// Stops every timer for good (just before `onShutdown`).
    pub fn stop(&self) {
        self.stopped.store(true, Ordering::SeqCst);
        for (_, armed) in self.armed().drain() {
            armed.task.abort();
        }
    }

    /// Forgets a one-shot timer that fired, unless it was re-armed meanwhile.
    fn fired_once(&self, module: &str, name: &str, id: u64) {
        let mut armed = self.armed();
        let key = (module.to_string(), name.to_string());
        if armed.get(&key).is_some_and(|a| a.id == id) {
            armed.remove(&key);
        }
    }

    /// Calls `on_timer` on the module's current version; failures are logged.
    async fn fire(&self, module: &str, timer: &Timer) {
        if self.stopped.load(Ordering::SeqCst) {
            return;
        }
        let Some(plugins) = self.plugins.get().and_then(Weak::upgrade) else {
            return;
        };
        let Some(generation) = plugins.module(module) else {
            tracing::warn!(module, timer = %timer.name, "timer fired for a module that is not loaded");
            return;
        };
        drop(plugins);
        let hook = Hook::Timer(&timer.name, &timer.payload);
        if let Err(error) = crate::plugins::bridge::hook(generation, hook, self.timeout).await {
            tracing::error!(module, timer = %timer.name, "onTimer failed: {error}");
        }
    }
}

/// One timer's task: waits, fires, and for a repeating timer goes on.
async fn run(timers: Weak<Timers>, module: String, timer: Timer, id: u64) {
    let period = Duration::from_millis(timer.millis);
    if !timer.repeat {
        tokio::time::sleep(period).await;
        if let Some(timers) = timers.upgrade() {
            timers.fired_once(&module, &timer.name, id);
            timers.fire(&module, &timer).await;
        }
        return;
    }
    let mut ticks = tokio::time::interval_at(tokio::time::Instant::now() + period, period);
    // A tick missed while on_timer still ran is skipped, not made up in a burst.
    ticks.set_missed_tick_behavior(MissedTickBehavior::Skip);
    loop {
        ticks.tick().await;
        let Some(timers) = timers.upgrade() else {
            return;
        };
        timers.fire(&module, &timer).await;
    }
}
