//! The only place that calls across the ABI into a module.
//!
//! Every value a module returns is copied into host-owned types here (with
//! `mswoole_core::boundary`, which the module test kit uses too), while the call
//! still pins the module's generation: a plugin-made `RString` carries a vtable
//! inside the plugin. Panics are caught on the plugin's side (see `plugin-api`'s
//! `export`); a panic that still surfaces here is caught again.

use std::{
    future::Future, panic::AssertUnwindSafe, pin::Pin, sync::Arc, task::Poll, time::Duration,
};

use futures_util::FutureExt as _;
use mswoole_core::{
    boundary,
    engine::loading::Source,
    spec::{ModuleSpec, Target},
};
use mswoole_plugin_api::ffi::{HookFuture, HostApiBox, ModuleBox, PluginModRef};
use serde_json::Value;

use super::generation::Generation;
use crate::{envelope::Envelope, error::CallError};

/// A library's root module, as the load sequence (`mswoole_core::engine::loading`) reads
/// it; `names_as_declared` when it was built on a plugin-api that hands modules their
/// names as declared.
pub struct LibrarySource {
    /// The library's root module.
    pub root: PluginModRef,
    /// Whether the module gets its names as declared (plugin-api ≥ 1.1).
    pub names_as_declared: bool,
}

impl Source for LibrarySource {
    fn describe(&self) -> Result<ModuleSpec, String> {
        let info = Result::from((self.root.describe())()).map_err(|e| e.into_string())?;
        ModuleSpec::from_info(&info, self.names_as_declared)
    }

    fn construct(&self, host: HostApiBox, config: String) -> Result<ModuleBox, String> {
        Result::from((self.root.new())(host, config.into())).map_err(|e| e.into_string())
    }
}

/// Calls an action; the reply is copied into host memory before the generation is released.
///
/// The call is built here, before the future, so the future borrows nothing.
pub fn call(
    generation: Arc<Generation>,
    fd: &str,
    target: Target,
    message: String,
    timeout: Duration,
) -> impl Future<Output = Result<Option<Envelope>, CallError>> + Send + 'static {
    let call = boundary::call(fd, target, message);
    async move {
        let mut future = AssertUnwindSafe(generation.module().call(call)).catch_unwind();
        // A call that needs nothing from the host is done on its first poll: no timer for it.
        let first = std::future::poll_fn(|cx| Poll::Ready(Pin::new(&mut future).poll(cx))).await;
        let caught = match first {
            Poll::Ready(caught) => caught,
            Poll::Pending => match tokio::time::timeout(timeout, future).await {
                Err(_) => return Err(CallError::Timeout(timeout.as_millis() as u64)),
                Ok(caught) => caught,
            },
        };
        let Ok(outcome) = caught else {
            return Err(CallError::Panicked("the module's future panicked".into()));
        };
        boundary::outcome(outcome)
    }
}

/// Which lifecycle hook to run.
#[derive(Debug, Clone, Copy)]
pub enum Hook<'a> {
    /// `onClose(controller, info)`.
    Close(&'a str, &'a Value),
    /// `on_timer(name, payload)`: a timer the module set fired.
    Timer(&'a str, &'a str),
    /// `on_start`: a constructed version is about to serve.
    Start,
    /// `onReload`.
    Reload,
    /// `onShutdown`.
    Shutdown,
}

/// Runs a lifecycle hook, bounded by `timeout`.
pub async fn hook(
    generation: Arc<Generation>,
    hook: Hook<'_>,
    timeout: Duration,
) -> Result<(), CallError> {
    let module = generation.module();
    let future = match hook {
        Hook::Close(controller, info) => {
            module.on_close(controller.into(), info.to_string().into())
        }
        Hook::Timer(name, payload) => module.on_timer(name.into(), payload.into()),
        Hook::Start => module.on_start(),
        Hook::Reload => module.on_reload(),
        Hook::Shutdown => module.on_shutdown(),
    };
    bounded(future, timeout).await
}

/// A hook's future, bounded by `timeout`, with a panic that surfaces caught.
pub async fn bounded(future: HookFuture, timeout: Duration) -> Result<(), CallError> {
    match tokio::time::timeout(timeout, AssertUnwindSafe(future).catch_unwind()).await {
        Err(_) => Err(CallError::Timeout(timeout.as_millis() as u64)),
        Ok(Err(_)) => Err(CallError::Panicked("the module's future panicked".into())),
        Ok(Ok(outcome)) => outcome.into_result().map_err(boundary::module_error),
    }
}
