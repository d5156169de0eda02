//! Where a module's frames, closes, sleeps and log lines go in the kit: the
//! simulated connections, the manual clock and the kit's log.

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
    error::CallError,
    registry::RegistryError,
    services::{BoxFuture, Outlet, Timer},
};
use mswoole_plugin_api::{LogLevel, ModuleError};

use crate::Inner;

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
                conn.kicked = true;
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
        {
            let mut state = inner.state();
            let key = (module.to_string(), timer.name.clone());
            let limit = inner.options.timers_per_module;
            if !state.timers.contains_key(&key)
                && state
                    .timers
                    .keys()
                    .filter(|(owner, _)| owner == module)
                    .count()
                    >= limit
            {
                return Err(format!(
                    "module {module} has {limit} timers, the limit (limits.timers_per_module)"
                ));
            }
            state.timers.insert(
                key,
                Armed {
                    timer,
                    due,
                    running: false,
                },
            );
        }
        inner.wake_at(due);
        Ok(())
    }

    fn cancel_timer(&self, module: &str, name: &str) -> bool {
        let Some(inner) = self.inner.upgrade() else {
            return false;
        };
        let removed = inner
            .state()
            .timers
            .remove(&(module.to_string(), name.to_string()));
        removed.is_some()
    }
}

/// A module's timer in the kit, on the manual clock.
pub(crate) struct Armed {
    pub(crate) timer: Timer,
    /// When it fires next.
    pub(crate) due: Duration,
    /// Its `on_timer` is still running: a tick due now is skipped, as in the host.
    pub(crate) running: bool,
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
