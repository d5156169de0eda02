//! The host API a module calls, on top of a registry and an [`Outlet`].
//!
//! One implementation of [`HostApi`] serves the host and the module test kit: the
//! key rules (`WEBSOCKET_*` belongs to the host), the envelope checks and the
//! registry semantics are the same in both. What differs is only where frames,
//! closes, sleeps and log lines go, which is the [`Outlet`]: the host's connections
//! on every node, or the kit's simulated ones. Each callback returns a future the
//! module awaits; with the memory registry it is ready on its first poll.
//!
//! This handle holds the registry and the outlet, never the plugin table, so
//! modules and the host never keep each other alive in a cycle.

use std::{future::Future, sync::Arc};

use abi_stable::{
    sabi_trait::TD_Opaque,
    std_types::{RArc, ROption, RResult, RString, RVec, Tuple2},
};
use async_ffi::FutureExt as _;
use async_trait::async_trait;
use mswoole_plugin_api::{
    ffi::{Envelope as FfiEnvelope, HostApi, HostApiBox, HostApi_TO, HostFuture, IoFuture},
    HostError, IoError, IoErrorKind, LogLevel, PLUGIN_API_VERSION,
};
use serde_json::Value;

use crate::{
    boundary::render,
    io::{HttpCall, IoFailure, IoKind, ModuleIo},
    registry::{close_keys_key, controllers_key, is_host_key, Registry, RegistryError},
};

pub use crate::future::BoxFuture;

/// Where a module's frames, closes, sleeps and log lines go.
#[async_trait]
pub trait Outlet: Send + Sync {
    /// Sends a frame to each fd, on whatever node holds it; returns how many it reached.
    async fn to_fds(&self, fds: &[String], text: String) -> Result<u64, RegistryError>;
    /// Closes a connection with 1000 (its close sequence runs); `true` if it was found.
    async fn close(&self, fd: &str) -> Result<bool, RegistryError>;
    /// Completes after `millis` milliseconds.
    fn sleep(&self, millis: u64) -> BoxFuture<()>;
    /// Writes a module's log line.
    fn log(&self, module: &str, level: LogLevel, message: &str);
    /// Sets (or replaces) `module`'s timer `name`; the reason when it is refused.
    fn set_timer(&self, module: &str, timer: Timer) -> Result<(), String>;
    /// Cancels `module`'s timer `name`; `true` if there was one.
    fn cancel_timer(&self, module: &str, name: &str) -> bool;
}

/// The shortest interval of a repeating timer.
pub const MIN_TIMER_INTERVAL_MS: u64 = 10;

/// A timer a module asked for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Timer {
    /// Its name, unique per module.
    pub name: String,
    /// Milliseconds until it fires, and between firings when it repeats.
    pub millis: u64,
    /// Whether it fires every `millis` or once.
    pub repeat: bool,
    /// What `on_timer` receives, as JSON text.
    pub payload: String,
}

impl Timer {
    /// Checks what a module asked for: a name, JSON, and a repeat no shorter than the minimum.
    fn new(name: RString, millis: u64, payload: RString, repeat: bool) -> Result<Self, HostError> {
        if name.is_empty() {
            return Err(HostError::Refused("a timer needs a name".into()));
        }
        if repeat && millis < MIN_TIMER_INTERVAL_MS {
            return Err(HostError::Refused(
                format!("timer {name}: every {millis} ms is below the minimum of {MIN_TIMER_INTERVAL_MS} ms").into(),
            ));
        }
        if serde_json::from_str::<serde_json::Value>(&payload).is_err() {
            return Err(HostError::Refused(
                format!("timer {name}: payload is not JSON").into(),
            ));
        }
        Ok(Timer {
            name: name.into_string(),
            millis,
            repeat,
            payload: payload.into_string(),
        })
    }
}

/// What one module's host handle can reach.
#[derive(Clone)]
pub struct Services {
    /// The registry (memory or Redis).
    pub registry: Arc<dyn Registry>,
    /// Frames, closes, sleeps and logs.
    pub outlet: Arc<dyn Outlet>,
    /// Databases and HTTP.
    pub io: Arc<dyn ModuleIo>,
    /// The module's name, for log lines.
    pub module: Arc<str>,
}

impl Services {
    /// The handle a module's constructor receives.
    pub fn into_handle(self) -> HostApiBox {
        HostApi_TO::from_ptr(RArc::new(self), TD_Opaque)
    }
}

impl From<RegistryError> for HostError {
    fn from(error: RegistryError) -> Self {
        match error {
            RegistryError::Unavailable(detail) => {
                HostError::Unavailable(format!("registry: {detail}").into())
            }
            RegistryError::Storage(detail) => {
                HostError::Storage(format!("registry: {detail}").into())
            }
        }
    }
}

/// A key a module may use.
fn module_key(key: RString) -> Result<String, HostError> {
    if key.is_empty() {
        return Err(HostError::Refused("empty key".into()));
    }
    if is_host_key(&key) {
        return Err(HostError::Refused(
            format!("key {key} belongs to the host").into(),
        ));
    }
    Ok(key.into_string())
}

/// A module's envelope as frame text; a `param` that is not JSON is refused.
fn frame(envelope: FfiEnvelope) -> Result<String, HostError> {
    let envelope = render(envelope).map_err(|reason| HostError::Refused(reason.into()))?;
    Ok(envelope.to_json())
}

fn strings(values: Vec<String>) -> RVec<RString> {
    values.into_iter().map(RString::from).collect()
}

impl Services {
    /// Runs a registry operation on a module key as a host future.
    fn keyed<T, F>(
        &self,
        key: RString,
        op: impl FnOnce(Arc<dyn Registry>, String) -> F,
    ) -> HostFuture<T>
    where
        T: Send + 'static,
        F: Future<Output = Result<T, HostError>> + Send + 'static,
    {
        match module_key(key) {
            Ok(key) => op(self.registry.clone(), key).map_result(),
            Err(error) => std::future::ready(RResult::RErr(error)).into_ffi(),
        }
    }

    /// Runs an operation on the registry as a host future.
    fn registry<T, F>(&self, op: impl FnOnce(Arc<dyn Registry>) -> F) -> HostFuture<T>
    where
        T: Send + 'static,
        F: Future<Output = Result<T, RegistryError>> + Send + 'static,
    {
        let future = op(self.registry.clone());
        async move { Ok(future.await?) }.map_result()
    }
}

impl HostApi for Services {
    fn api_version(&self) -> u32 {
        PLUGIN_API_VERSION
    }

    fn send(&self, fd: RString, envelope: FfiEnvelope) -> HostFuture<bool> {
        let outlet = self.outlet.clone();
        async move {
            let text = frame(envelope)?;
            Ok(outlet.to_fds(&[fd.into_string()], text).await? > 0)
        }
        .map_result()
    }

    fn send_to_set(&self, key: RString, envelope: FfiEnvelope) -> HostFuture<u64> {
        let outlet = self.outlet.clone();
        let text = frame(envelope);
        self.keyed(key, move |registry, key| async move {
            let text = text?;
            let members = registry.set_members(&key).await?;
            Ok(outlet.to_fds(&members, text).await?)
        })
    }

    fn close(&self, fd: RString) -> HostFuture<bool> {
        let outlet = self.outlet.clone();
        async move { Ok(outlet.close(&fd).await?) }.map_result()
    }

    fn identity(&self, fd: RString) -> HostFuture<ROption<RString>> {
        self.registry(|r| async move { Ok(r.identity(&fd).await?.map(RString::from).into()) })
    }

    fn uid_fd(&self, uid: RString) -> HostFuture<ROption<RString>> {
        self.registry(|r| async move { Ok(r.uid_fd(&uid).await?.map(RString::from).into()) })
    }

    fn set_add(&self, key: RString, member: RString) -> HostFuture<bool> {
        self.keyed(
            key,
            |r, key| async move { Ok(r.set_add(&key, &member).await?) },
        )
    }

    fn set_remove(&self, key: RString, member: RString) -> HostFuture<bool> {
        self.keyed(key, |r, key| async move {
            Ok(r.set_remove(&key, &member).await?)
        })
    }

    fn set_members(&self, key: RString) -> HostFuture<RVec<RString>> {
        self.keyed(key, |r, key| async move {
            Ok(strings(r.set_members(&key).await?))
        })
    }

    fn hash_get(&self, key: RString, field: RString) -> HostFuture<ROption<RString>> {
        self.keyed(key, |r, key| async move {
            Ok(r.hash_get(&key, &field).await?.map(RString::from).into())
        })
    }

    fn hash_set(&self, key: RString, field: RString, value: RString) -> HostFuture<()> {
        self.keyed(key, |r, key| async move {
            Ok(r.hash_set(&key, &field, &value).await?)
        })
    }

    fn hash_delete(&self, key: RString, field: RString) -> HostFuture<bool> {
        self.keyed(key, |r, key| async move {
            Ok(r.hash_delete(&key, &field).await?)
        })
    }

    fn hash_get_all(&self, key: RString) -> HostFuture<RVec<Tuple2<RString, RString>>> {
        self.keyed(key, |r, key| async move {
            let pairs = r.hash_get_all(&key).await?;
            Ok(pairs
                .into_iter()
                .map(|(f, v)| Tuple2(f.into(), v.into()))
                .collect())
        })
    }

    fn incr(&self, key: RString, by: i64) -> HostFuture<i64> {
        self.keyed(
            key,
            move |r, key| async move { Ok(r.incr(&key, by).await?) },
        )
    }

    fn list_push(&self, key: RString, value: RString) -> HostFuture<u64> {
        self.keyed(
            key,
            |r, key| async move { Ok(r.list_push(&key, &value).await?) },
        )
    }

    fn list_range(&self, key: RString, start: i64, stop: i64) -> HostFuture<RVec<RString>> {
        self.keyed(key, move |r, key| async move {
            Ok(strings(r.list_range(&key, start, stop).await?))
        })
    }

    fn list_trim(&self, key: RString, start: i64, stop: i64) -> HostFuture<()> {
        self.keyed(key, move |r, key| async move {
            Ok(r.list_trim(&key, start, stop).await?)
        })
    }

    fn expire(&self, key: RString, seconds: u64) -> HostFuture<bool> {
        self.keyed(key, move |r, key| async move {
            Ok(r.expire(&key, seconds).await?)
        })
    }

    fn delete(&self, key: RString) -> HostFuture<bool> {
        self.keyed(key, |r, key| async move { Ok(r.delete(&key).await?) })
    }

    fn add_close_key(&self, fd: RString, key: RString) -> HostFuture<()> {
        self.keyed(key, move |r, key| async move {
            Ok(r.set_add(&close_keys_key(&fd), &key).await.map(drop)?)
        })
    }

    fn add_close_controller(&self, fd: RString, controller: RString) -> HostFuture<()> {
        self.registry(|r| async move {
            r.set_add(&controllers_key(&fd), &controller)
                .await
                .map(drop)
        })
    }

    fn sleep(&self, millis: u64) -> HostFuture<()> {
        let slept = self.outlet.sleep(millis);
        async move {
            slept.await;
            Ok(())
        }
        .map_result()
    }

    fn log(&self, level: LogLevel, message: RString) {
        self.outlet.log(&self.module, level, &message);
    }

    fn remove_close_key(&self, fd: RString, key: RString) -> HostFuture<()> {
        self.keyed(key, move |r, key| async move {
            Ok(r.set_remove(&close_keys_key(&fd), &key).await.map(drop)?)
        })
    }

    fn remove_close_controller(&self, fd: RString, controller: RString) -> HostFuture<()> {
        self.registry(|r| async move {
            r.set_remove(&controllers_key(&fd), &controller)
                .await
                .map(drop)
        })
    }

    fn timer_after(&self, name: RString, millis: u64, payload: RString) -> RResult<(), HostError> {
        self.set_timer(Timer::new(name, millis, payload, false))
    }

    fn timer_every(&self, name: RString, millis: u64, payload: RString) -> RResult<(), HostError> {
        self.set_timer(Timer::new(name, millis, payload, true))
    }

    fn timer_cancel(&self, name: RString) -> bool {
        self.outlet.cancel_timer(&self.module, &name)
    }

    fn database_info(&self, db: RString) -> RResult<RString, IoError> {
        self.io
            .database_info(&db)
            .map(|info| RString::from(info.to_json().to_string()))
            .map_err(ffi_error)
            .into()
    }

    fn query(&self, db: RString, sql: RString, params: RString) -> IoFuture {
        let io = self.io.clone();
        io_future(async move {
            let params = params_of(&params)?;
            let rows = io
                .query(db.into_string(), sql.into_string(), params)
                .await?;
            Ok(Value::Array(rows.into_iter().map(Value::Object).collect()))
        })
    }

    fn execute(&self, db: RString, sql: RString, params: RString) -> IoFuture {
        let io = self.io.clone();
        io_future(async move {
            let params = params_of(&params)?;
            let done = io
                .execute(db.into_string(), sql.into_string(), params)
                .await?;
            Ok(done.to_json())
        })
    }

    fn transaction(&self, db: RString, statements: RVec<Tuple2<RString, RString>>) -> IoFuture {
        let io = self.io.clone();
        io_future(async move {
            let mut list = Vec::with_capacity(statements.len());
            for (i, Tuple2(sql, params)) in statements.into_iter().enumerate() {
                let params = params_of(&params).map_err(|e| {
                    IoFailure::new(e.kind, format!("statement {}: {}", i + 1, e.detail))
                })?;
                list.push((sql.into_string(), params));
            }
            let done = io.transaction(db.into_string(), list).await?;
            Ok(Value::Array(done.iter().map(|d| d.to_json()).collect()))
        })
    }

    fn http(&self, request: RString) -> IoFuture {
        let io = self.io.clone();
        io_future(async move {
            let call = serde_json::from_str::<Value>(&request)
                .map_err(|e| e.to_string())
                .and_then(|value| HttpCall::from_json(&value))
                .map_err(|e| IoFailure::new(IoKind::BadStatement, format!("request: {e}")))?;
            Ok(io.http(call).await?.to_json())
        })
    }
}

/// Parameters as a module sent them: a JSON array, else `BadStatement`.
fn params_of(text: &str) -> Result<Vec<Value>, IoFailure> {
    match serde_json::from_str::<Value>(text) {
        Ok(Value::Array(params)) => Ok(params),
        _ => Err(IoFailure::new(
            IoKind::BadStatement,
            "parameters must be a JSON array",
        )),
    }
}

/// A failure as it crosses the ABI.
pub fn ffi_error(failure: IoFailure) -> IoError {
    let kind = match failure.kind {
        IoKind::UnknownDatabase => IoErrorKind::UnknownDatabase,
        IoKind::BadStatement => IoErrorKind::BadStatement,
        IoKind::Constraint => IoErrorKind::Constraint,
        IoKind::Timeout => IoErrorKind::Timeout,
        IoKind::Unreachable => IoErrorKind::Unreachable,
        IoKind::TooLarge => IoErrorKind::TooLarge,
        IoKind::BadUrl => IoErrorKind::BadUrl,
    };
    IoError::new(kind, failure.detail)
}

/// Turns an I/O `async` block into the future a module awaits: JSON text or an [`IoError`].
fn io_future<F>(work: F) -> IoFuture
where
    F: Future<Output = Result<Value, IoFailure>> + Send + 'static,
{
    async move {
        match work.await {
            Ok(value) => RResult::ROk(RString::from(value.to_string())),
            Err(failure) => RResult::RErr(ffi_error(failure)),
        }
    }
    .into_ffi()
}

impl Services {
    fn set_timer(&self, timer: Result<Timer, HostError>) -> RResult<(), HostError> {
        let set = timer.and_then(|timer| {
            self.outlet
                .set_timer(&self.module, timer)
                .map_err(|reason| HostError::Refused(reason.into()))
        });
        set.into()
    }
}

/// Turns an `async` block returning `Result` into a host future.
trait MapResult<T> {
    fn map_result(self) -> HostFuture<T>;
}

impl<T, F> MapResult<T> for F
where
    T: Send + 'static,
    F: Future<Output = Result<T, HostError>> + Send + 'static,
{
    fn map_result(self) -> HostFuture<T> {
        async move { RResult::from(self.await) }.into_ffi()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_keys_and_empty_keys_are_refused() {
        assert!(matches!(
            module_key("WEBSOCKET_FDINFO".into()),
            Err(HostError::Refused(_))
        ));
        assert!(matches!(module_key("".into()), Err(HostError::Refused(_))));
        assert_eq!(
            module_key("LIVE_USER_ROOM_demo".into()),
            Ok("LIVE_USER_ROOM_demo".into())
        );
    }
}
