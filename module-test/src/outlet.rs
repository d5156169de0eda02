//! Where a module's frames, closes, sleeps, timers and log lines go in the kit: the
//! simulated connections, the manual clock and the kit's log. Timers follow the host's
//! rules (`mswoole_core::engine::timers`) on the manual clock.

use std::{
    future::Future,
    pin::Pin,
    sync::{Arc, Weak},
    task::{Context, Poll},
    time::Duration,
};

use abi_stable::std_types::RResult;
use async_trait::async_trait;
use mswoole_core::{
    boundary::module_error,
    engine::end::CloseRequest,
    error::CallError,
    registry::RegistryError,
    services::{BoxFuture, Outlet, Timer},
};
use mswoole_plugin_api::{LogLevel, ModuleError};

use crate::world::Inner;

/// The kit's [`Outlet`]. It holds the host weakly: the host holds the module,
/// which holds this.
pub(crate) struct KitOutlet {
    inner: Weak<Inner>,
}

impl KitOutlet {
    pub(crate) fn new(inner: &Arc<Inner>) -> Self {
        KitOutlet {
            inner: Arc::downgrade(inner),
        }
    }
}

#[async_trait]
impl Outlet for KitOutlet {
    async fn to_fds(&self, fds: &[String], text: String) -> Result<u64, RegistryError> {
        let Some(inner) = self.inner.upgrade() else {
            return Ok(0);
        };
        let mut state = inner.state();
        let mut reached = 0;
        for fd in fds {
            if let Some(conn) = state.conns.get_mut(fd).filter(|c| c.is_open()) {
                conn.mail.push(text.clone());
                reached += 1;
            }
        }
        Ok(reached)
    }

    async fn close(&self, fd: &str) -> Result<bool, RegistryError> {
        let Some(inner) = self.inner.upgrade() else {
            return Ok(false);
        };
        let mut state = inner.state();
        Ok(match state.conns.get_mut(fd).filter(|c| c.is_open()) {
            Some(conn) => {
                conn.closing = conn.closing.max(Some(CloseRequest::Kick));
                true
            }
            None => false,
        })
    }

    fn sleep(&self, millis: u64) -> BoxFuture<()> {
        let Some(inner) = self.inner.upgrade() else {
            return Box::pin(std::future::ready(()));
        };
        let due = inner.now().saturating_add(Duration::from_millis(millis));
        inner.wake_at(due);
        Box::pin(Sleep {
            inner: self.inner.clone(),
            due,
        })
    }

    fn log(&self, module: &str, level: LogLevel, message: &str) {
        if let Some(inner) = self.inner.upgrade() {
            inner.log(level, module, message.into());
        }
    }

    fn set_timer(&self, module: &str, timer: Timer) -> Result<(), String> {
        let Some(inner) = self.inner.upgrade() else {
            return Err("the test host is gone".into());
        };
        let due = inner
            .now()
            .saturating_add(Duration::from_millis(timer.millis));
        inner.state().timers.arm(module, timer, |_| due)?;
        inner.wake_at(due);
        Ok(())
    }

    fn cancel_timer(&self, module: &str, name: &str) -> bool {
        let Some(inner) = self.inner.upgrade() else {
            return false;
        };
        let removed = inner.state().timers.cancel(module, name);
        removed.is_some()
    }
}

/// Starts `on_timer` for every timer that is due, as the host's timer tasks do: on the
/// module's current version, a repeating one re-armed, by the rules of
/// [`TimerTable`](mswoole_core::engine::timers::TimerTable) (a tick skipped while the
/// previous `on_timer` of that name still runs, a one-shot forgotten once it fired).
pub(crate) fn fire_timers(inner: &Arc<Inner>) -> bool {
    let now = inner.now();
    let due: Vec<(String, Timer, u64)> = {
        let mut state = inner.state();
        let mut ticks = Vec::new();
        for ((module, name), armed) in state.timers.iter_mut() {
            if armed.handle > now {
                continue;
            }
            let period = Duration::from_millis(armed.timer.millis.max(1));
            while armed.handle <= now {
                armed.handle += period;
            }
            ticks.push((module.clone(), name.clone(), armed.id));
        }
        let mut due = Vec::new();
        for (module, name, id) in ticks {
            if let Some(timer) = state.timers.begin(&module, &name, id) {
                due.push((module, timer, id));
            }
        }
        let next: Vec<Duration> = state.timers.iter().map(|(_, armed)| armed.handle).collect();
        state.wakeups.extend(next);
        due
    };
    let fired = !due.is_empty();
    for (module, timer, id) in due {
        let Some(loaded) = inner.module(&module) else {
            continue;
        };
        let hook = deadline(
            inner,
            loaded
                .module
                .on_timer(timer.name.as_str().into(), timer.payload.as_str().into()),
        );
        let weak = Arc::downgrade(inner);
        let task = async move {
            let outcome = hook.await;
            drop(loaded);
            let Some(inner) = weak.upgrade() else {
                return;
            };
            if let Err(error) = outcome {
                inner.log(
                    LogLevel::Error,
                    &module,
                    format!("onTimer {} failed: {error}", timer.name),
                );
            }
            inner.state().timers.finish(&module, &timer.name, id);
        };
        inner.state().tasks.push(Box::pin(task));
    }
    fired
}

/// Completes when the kit's clock reaches `due`.
struct Sleep {
    inner: Weak<Inner>,
    due: Duration,
}

impl Future for Sleep {
    type Output = ();

    fn poll(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<()> {
        match self.inner.upgrade() {
            Some(inner) if inner.now() < self.due => Poll::Pending,
            _ => Poll::Ready(()),
        }
    }
}

/// A module future bounded by `limits.call_timeout_ms` on the kit's clock.
pub(crate) struct Deadline<F> {
    future: F,
    inner: Weak<Inner>,
    due: Duration,
    millis: u64,
}

/// Bounds a hook's future as the host does.
pub(crate) fn deadline<F>(inner: &Arc<Inner>, future: F) -> Deadline<F> {
    let millis = inner.options.call_timeout_ms;
    let due = inner.now().saturating_add(Duration::from_millis(millis));
    inner.wake_at(due);
    Deadline {
        future,
        inner: Arc::downgrade(inner),
        due,
        millis,
    }
}

impl<F, T> Future for Deadline<F>
where
    F: Future<Output = RResult<T, ModuleError>> + Unpin,
{
    type Output = Result<T, CallError>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        if let Poll::Ready(outcome) = Pin::new(&mut self.future).poll(cx) {
            return Poll::Ready(outcome.into_result().map_err(module_error));
        }
        match self.inner.upgrade() {
            Some(inner) if inner.now() < self.due => Poll::Pending,
            _ => Poll::Ready(Err(CallError::Timeout(self.millis))),
        }
    }
}
