//! The only place that calls across the ABI into a module.
//!
//! Every value a module returns is copied into host-owned types here, while the
//! call still pins the module's generation: a plugin-made `RString` carries a
//! vtable inside the plugin. Panics are caught on the plugin's side (see
//! `plugin-api`'s `export`); a panic that still surfaces here is caught again.

use std::{
    collections::HashMap, future::Future, panic::AssertUnwindSafe, pin::Pin, sync::Arc, task::Poll,
    time::Duration,
};

use abi_stable::{
    sabi_trait::TD_Opaque,
    std_types::{RArc, RString},
};
use futures_util::FutureExt as _;
use mswoole_plugin_api::{
    ffi::{Call, HostApi_TO, ModuleBox, PluginModRef},
    ModuleError,
};
use serde_json::Value;

use super::{host_api::render, host_api::HostServices, Generation};
use crate::{
    envelope::Envelope,
    error::CallError,
    router::{action_name, module_name, LIFECYCLE_HOOKS},
};

/// A controller as the host routes to it.
#[derive(Debug, Clone, Default)]
pub struct ControllerSpec {
    /// Routable actions, lower-cased.
    pub actions: Vec<String>,
    /// Unknown actions go to the module instead of 405.
    pub on_message: bool,
}

/// What a library declared, in host memory and normalised.
#[derive(Debug, Clone)]
pub struct ModuleSpec {
    /// Module name, `Ucfirst`.
    pub name: String,
    /// The module's version.
    pub version: String,
    /// Controllers by `Ucfirst` name.
    pub controllers: HashMap<String, ControllerSpec>,
}

fn module_error(error: ModuleError) -> CallError {
    match error {
        ModuleError::Refused {
            status,
            event,
            info,
        } => CallError::Refused {
            status,
            event: event.into_string(),
            info: info.into_string(),
        },
        ModuleError::Unavailable(detail) => CallError::Unavailable(detail.into_string()),
        ModuleError::Storage(detail) => CallError::Storage(detail.into_string()),
        ModuleError::Failed(detail) => CallError::Failed(detail.into_string()),
        ModuleError::Panicked(detail) => CallError::Panicked(detail.into_string()),
    }
}

/// Reads and normalises what a library declares about itself.
pub fn describe(root: PluginModRef) -> Result<ModuleSpec, String> {
    let info = Result::from((root.describe())()).map_err(|e| format!("describe failed: {e}"))?;
    let name = module_name(&info.name);
    if name.is_empty() {
        return Err("the module declares an empty name".into());
    }
    let mut controllers = HashMap::new();
    for controller in info.controllers.iter() {
        let actions: Vec<String> = controller.actions.iter().map(|a| action_name(a)).collect();
        if let Some(hook) = actions
            .iter()
            .find(|a| LIFECYCLE_HOOKS.contains(&a.as_str()))
        {
            return Err(format!(
                "controller {} declares lifecycle hook {hook} as an action",
                controller.name
            ));
        }
        let spec = ControllerSpec {
            actions,
            on_message: controller.on_message,
        };
        if controllers
            .insert(module_name(&controller.name), spec)
            .is_some()
        {
            return Err(format!("controller {} is declared twice", controller.name));
        }
    }
    Ok(ModuleSpec {
        name,
        version: info.version.into_string(),
        controllers,
    })
}

/// Builds the module with its host handle and config table.
pub fn construct(
    root: PluginModRef,
    services: HostServices,
    config: &Value,
) -> Result<ModuleBox, String> {
    let host = HostApi_TO::from_ptr(RArc::new(services), TD_Opaque);
    Result::from((root.new())(host, config.to_string().into())).map_err(|e| e.into_string())
}

/// Carries state from the old version into the new one; an import error refuses the new one.
///
/// The state is copied into a host-owned string first: the old version may be
/// unloaded while the new one still holds it.
pub fn hand_over(old: &Generation, new: &ModuleBox) -> Result<(), String> {
    let exported = match old.module().export_state().into_result() {
        Ok(state) => state
            .into_option()
            .map(|state| RString::from(state.as_str())),
        Err(error) => {
            let reason = module_error(error);
            tracing::warn!(module = %old.spec.name, "state export failed: {reason}; the new version starts without it");
            None
        }
    };
    match exported {
        Some(state) => new
            .import_state(state)
            .into_result()
            .map_err(|error| format!("state import failed: {}", module_error(error))),
        None => Ok(()),
    }
}

/// Calls an action; the reply is copied into host memory before the generation is released.
pub async fn call(
    generation: Arc<Generation>,
    call: Call,
    timeout: Duration,
) -> Result<Option<Envelope>, CallError> {
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
    match outcome.into_result() {
        Ok(reply) => reply
            .into_option()
            .map(render)
            .transpose()
            .map_err(CallError::Failed),
        Err(error) => Err(module_error(error)),
    }
}

/// Which lifecycle hook to run.
#[derive(Debug, Clone, Copy)]
pub enum Hook<'a> {
    /// `onClose(controller, info)`.
    Close(&'a str, &'a Value),
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
        Hook::Reload => module.on_reload(),
        Hook::Shutdown => module.on_shutdown(),
    };
    match tokio::time::timeout(timeout, AssertUnwindSafe(future).catch_unwind()).await {
        Err(_) => Err(CallError::Timeout(timeout.as_millis() as u64)),
        Ok(Err(_)) => Err(CallError::Panicked("the module's future panicked".into())),
        Ok(Ok(outcome)) => outcome.into_result().map_err(module_error),
    }
}
