//! The rules of modules' timers (docs/MODULES.md, "Timers"), without a clock.
//!
//! A timer belongs to its module by name: setting a name again replaces it, at most
//! `limits.timers_per_module` are armed per module, a tick that falls due while the
//! previous `on_timer` of that name still runs is skipped, a one-shot timer is forgotten
//! once it fired (unless it was set again meanwhile), and nothing is armed or fires once
//! the host is stopping. The host keeps a tokio task per timer and the module test kit a
//! due time on its manual clock; both keep their timers in a [`TimerTable`], so the
//! rules are the same.

use std::collections::BTreeMap;

use crate::services::Timer;

/// One armed timer and the driver's handle of it (the host's task, the kit's due time).
#[derive(Debug)]
pub struct Armed<H> {
    /// Tells this arming apart from a later one of the same name.
    pub id: u64,
    /// What the module asked for.
    pub timer: Timer,
    /// Its `on_timer` is running: a tick due now is skipped.
    pub running: bool,
    /// The driver's handle.
    pub handle: H,
}

/// Every module's timers.
#[derive(Debug)]
pub struct TimerTable<H> {
    /// Armed timers by (module, name).
    armed: BTreeMap<(String, String), Armed<H>>,
    /// `limits.timers_per_module`.
    limit: usize,
    /// Set when the host stops: nothing is armed or fires after it.
    stopped: bool,
    /// The next arming id.
    next_id: u64,
}

impl<H> TimerTable<H> {
    /// No timers; at most `limit` per module.
    pub fn new(limit: usize) -> Self {
        TimerTable {
            armed: BTreeMap::new(),
            limit,
            stopped: false,
            next_id: 1,
        }
    }

    /// Arms `module`'s timer (replacing one of the same name, whose handle is returned for
    /// the driver to stop); `handle` makes the driver's handle from the arming id. Refused
    /// while the host stops and past the limit.
    pub fn arm(
        &mut self,
        module: &str,
        timer: Timer,
        handle: impl FnOnce(u64) -> H,
    ) -> Result<Option<H>, String> {
        if self.stopped {
            return Err("the host is stopping: no new timers".into());
        }
        let key = (module.to_string(), timer.name.clone());
        if !self.armed.contains_key(&key)
            && self
                .armed
                .keys()
                .filter(|(owner, _)| owner == module)
                .count()
                >= self.limit
        {
            return Err(format!(
                "module {module} has {} timers, the limit (limits.timers_per_module)",
                self.limit
            ));
        }
        let id = self.next_id;
        self.next_id += 1;
        let armed = Armed {
            id,
            timer,
            running: false,
            handle: handle(id),
        };
        Ok(self.armed.insert(key, armed).map(|old| old.handle))
    }

    /// Disarms `module`'s timer `name`; its handle, if it was armed.
    pub fn cancel(&mut self, module: &str, name: &str) -> Option<H> {
        self.armed
            .remove(&(module.to_string(), name.to_string()))
            .map(|armed| armed.handle)
    }

    /// The host is stopping: every timer goes, and none may be armed again.
    pub fn stop(&mut self) -> Vec<H> {
        self.stopped = true;
        std::mem::take(&mut self.armed)
            .into_values()
            .map(|armed| armed.handle)
            .collect()
    }

    /// A tick of arming `id` of `module`'s timer `name` is due: the timer to fire, or
    /// `None` when it must not (stopped, disarmed or armed again since, or its previous
    /// `on_timer` still runs). A one-shot timer is forgotten here; a repeating one is
    /// marked running until [`TimerTable::finish`].
    pub fn begin(&mut self, module: &str, name: &str, id: u64) -> Option<Timer> {
        if self.stopped {
            return None;
        }
        let key = (module.to_string(), name.to_string());
        let armed = self.armed.get_mut(&key).filter(|armed| armed.id == id)?;
        if armed.running {
            return None;
        }
        if !armed.timer.repeat {
            return self.armed.remove(&key).map(|armed| armed.timer);
        }
        armed.running = true;
        Some(armed.timer.clone())
    }

    /// The `on_timer` of arming `id` returned: its next tick may fire.
    pub fn finish(&mut self, module: &str, name: &str, id: u64) {
        let key = (module.to_string(), name.to_string());
        if let Some(armed) = self.armed.get_mut(&key).filter(|armed| armed.id == id) {
            armed.running = false;
        }
    }

    /// Every armed timer, by (module, name).
    pub fn iter(&self) -> impl Iterator<Item = (&(String, String), &Armed<H>)> {
        self.armed.iter()
    }

    /// Every armed timer, to move their due times (the kit).
    pub fn iter_mut(&mut self) -> impl Iterator<Item = (&(String, String), &mut Armed<H>)> {
        self.armed.iter_mut()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn timer(name: &str, repeat: bool) -> Timer {
        Timer {
            name: name.into(),
            millis: 100,
            repeat,
            payload: "null".into(),
        }
    }

    #[test]
    fn setting_a_name_again_replaces_it_and_the_limit_counts_names() {
        let mut table = TimerTable::new(2);
        assert_eq!(table.arm("M", timer("a", true), |id| id), Ok(None));
        assert_eq!(table.arm("M", timer("b", true), |id| id), Ok(None));
        assert_eq!(
            table.arm("M", timer("a", false), |id| id),
            Ok(Some(1)),
            "replaced"
        );
        let refused = table.arm("M", timer("c", true), |id| id);
        assert!(refused.is_err_and(|e| e.contains("limits.timers_per_module")));
        assert_eq!(
            table.arm("Other", timer("c", true), |id| id),
            Ok(None),
            "per module"
        );
        assert_eq!(table.cancel("M", "b"), Some(2));
        assert_eq!(table.arm("M", timer("c", true), |id| id), Ok(None));
    }

    #[test]
    fn a_tick_while_the_last_one_runs_is_skipped() {
        let mut table = TimerTable::new(10);
        table.arm("M", timer("t", true), |_| ()).expect("armed");
        assert!(table.begin("M", "t", 1).is_some());
        assert!(table.begin("M", "t", 1).is_none(), "still running");
        table.finish("M", "t", 1);
        assert!(table.begin("M", "t", 1).is_some());
    }

    #[test]
    fn a_one_shot_fires_once_unless_set_again() {
        let mut table = TimerTable::new(10);
        table.arm("M", timer("once", false), |_| ()).expect("armed");
        assert!(table.begin("M", "once", 1).is_some());
        assert!(
            table.begin("M", "once", 1).is_none(),
            "forgotten after it fired"
        );
        table.arm("M", timer("once", false), |_| ()).expect("armed");
        assert!(
            table.begin("M", "once", 1).is_none(),
            "an old arming does not fire"
        );
        assert!(table.begin("M", "once", 2).is_some());
    }

    #[test]
    fn nothing_fires_or_is_armed_once_stopping() {
        let mut table = TimerTable::new(10);
        table.arm("M", timer("t", true), |id| id).expect("armed");
        assert_eq!(table.stop(), [1]);
        assert!(table.begin("M", "t", 1).is_none());
        assert!(table.arm("M", timer("t", true), |id| id).is_err());
    }
}
