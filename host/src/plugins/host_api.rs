//! The host's side of [`HostApi`]: what a module may ask of the host.
//!
//! Each callback returns a future the module awaits; with the memory registry it
//! is ready on its first poll. Keys from modules are checked here: the
//! `WEBSOCKET_*` keys belong to the host. This handle holds the registry and the
//! connection table, never the plugin table, so modules and the host never keep
//! each other alive in a cycle.

use std::{sync::Arc, time::Duration};

use abi_stable::std_types::{ROption, RResult, RString, RVec, Tuple2};
use async_ffi::FutureExt as _;
use mswoole_plugin_api::{
    ffi::{Envelope as FfiEnvelope, HostApi, HostFuture},
    HostError, LogLevel, PLUGIN_API_VERSION,
};
use tokio_tungstenite::tungstenite::Utf8Bytes;

use crate::{
    delivery::Delivery,
    envelope::Envelope,
    registry::{close_keys_key, controllers_key, is_host_key, Registry, RegistryError},
};

/// What one module's handle can reach.
#[derive(Clone)]
pub struct HostServices {
    /// The registry (memory or Redis).
    pub registry: Arc<dyn Registry>,
    /// Frames to connections on any node.
    pub delivery: Arc<Delivery>,
    /// The module's name, for log lines.
    pub module: Arc<str>,
}

impl From<RegistryError> for HostError {
    fn from(error: RegistryError) -> Self {
        match error {
            RegistryError::Unavailable(detail) => HostError::Unavailable(detail.into()),
            RegistryError::Storage(detail) => HostError::Storage(detail.into()),
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

/// Copies a module's envelope into host memory and renders it, checking `param`.
pub fn render(envelope: FfiEnvelope) -> Result<Envelope, String> {
    let host = Envelope::new(envelope.status, &envelope.event, &envelope.info);
    match envelope.param.into_option() {
        None => Ok(host),
        Some(param) => host
            .with_param_text(&param)
            .map_err(|_| "envelope param is not JSON".to_string()),
    }
}

fn frame(envelope: FfiEnvelope) -> Result<Utf8Bytes, HostError> {
    let envelope = render(envelope).map_err(|reason| HostError::Refused(reason.into()))?;
    Ok(Utf8Bytes::from(envelope.to_json()))
}

fn strings(values: Vec<String>) -> RVec<RString> {
    values.into_iter().map(RString::from).collect()
}

impl HostServices {
    /// Runs a registry operation on a module key as a host future.
    fn keyed<T, F>(
        &self,
        key: RString,
        op: impl FnOnce(Arc<dyn Registry>, String) -> F,
    ) -> HostFuture<T>
    where
        T: Send + 'static,
        F: std::future::Future<Output = Result<T, HostError>> + Send + 'static,
    {
        let registry = self.registry.clone();
        match module_key(key) {
            Ok(key) => {
                let future = op(registry, key);
                async move { RResult::from(future.await) }.into_ffi()
            }
            Err(error) => std::future::ready(RResult::RErr(error)).into_ffi(),
        }
    }
}

impl HostApi for HostServices {
    fn api_version(&self) -> u32 {
        PLUGIN_API_VERSION
    }

    fn send(&self, fd: RString, envelope: FfiEnvelope) -> HostFuture<bool> {
        let delivery = self.delivery.clone();
        async move {
            let text = frame(envelope)?;
            let reach = delivery.to_fds(&[fd.into_string()], &text).await?;
            Ok(reach.local + reach.relayed > 0)
        }
        .map_result()
    }

    fn send_to_set(&self, key: RString, envelope: FfiEnvelope) -> HostFuture<u64> {
        let delivery = self.delivery.clone();
        let text = frame(envelope);
        self.keyed(key, move |_, key| async move {
            let reach = delivery.to_set(&key, &text?).await?;
            Ok(reach.local + reach.relayed)
        })
    }

    fn close(&self, fd: RString) -> HostFuture<bool> {
        let delivery = self.delivery.clone();
        async move { Ok(delivery.close(&fd).await?) }.map_result()
    }

    fn identity(&self, fd: RString) -> HostFuture<ROption<RString>> {
        let registry = self.registry.clone();
        async move {
            let found = registry.identity(&fd).await.map_err(HostError::from)?;
            Ok(found.map(RString::from).into())
        }
        .map_result()
    }

    fn uid_fd(&self, uid: RString) -> HostFuture<ROption<RString>> {
        let registry = self.registry.clone();
        async move {
            let found = registry.uid_fd(&uid).await.map_err(HostError::from)?;
            Ok(found.map(RString::from).into())
        }
        .map_result()
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
        let registry = self.registry.clone();
        async move {
            registry
                .set_add(&controllers_key(&fd), &controller)
                .await
                .map_err(HostError::from)?;
            Ok(())
        }
        .map_result()
    }

    fn sleep(&self, millis: u64) -> HostFuture<()> {
        async move {
            tokio::time::sleep(Duration::from_millis(millis)).await;
            RResult::ROk(())
        }
        .into_ffi()
    }

    fn log(&self, level: LogLevel, message: RString) {
        let module = &*self.module;
        match level {
            LogLevel::Error => tracing::error!(module, "{message}"),
            LogLevel::Warn => tracing::warn!(module, "{message}"),
            LogLevel::Info => tracing::info!(module, "{message}"),
            LogLevel::Debug => tracing::debug!(module, "{message}"),
        }
    }
}

/// Turns an `async` block returning `Result` into a host future.
trait MapResult<T> {
    fn map_result(self) -> HostFuture<T>;
}

impl<T, F> MapResult<T> for F
where
    T: Send + 'static,
    F: std::future::Future<Output = Result<T, HostError>> + Send + 'static,
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
