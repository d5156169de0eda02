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
use mswoole_core::{boundary, services::Services, spec::ModuleSpec, spec::Target};
use mswoole_plugin_api::ffi::{ModuleBox, PluginModRef};
use serde_json::Value;

use super::Generation;
use crate::{envelope::Envelope, error::CallError};

/// Reads and normalises what a library declares about itself; `names_as_declared`
/// when it was built on a plugin-api that hands modules their names as declared.
pub fn describe(root: PluginModRef, names_as_declared: bool) -> Result<ModuleSpec, String> {
    let info = Result::from((root.describe())()).map_err(|e| format!("describe failed: {e}"))?;
    ModuleSpec::from_info(&info, names_as_declared)
}

/// Builds the module with its host handle and config table.
pub fn construct(
    root: PluginModRef,
    services: Services,
    config: &Value,
) -> Result<ModuleBox, String> {
    Result::from((root.new())(
        services.into_handle(),
        config.to_string().into(),
    ))
    .map_err(|e| e.into_string())
}

/// Carries state from the old version into the new one; an import error refuses the new one.
pub fn hand_over(old: &Generation, new: &ModuleBox) -> Result<(), String> {
    boundary::hand_over(&old.spec.name, old.module(), new)
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
    match tokio::time::timeout(timeout, AssertUnwindSafe(future).catch_unwind()).await {
        Err(_) => Err(CallError::Timeout(timeout.as_millis() as u64)),
        Ok(Err(_)) => Err(CallError::Panicked("the module's future panicked".into())),
        Ok(Ok(outcome)) => outcome.into_result().map_err(boundary::module_error),
    }
}
