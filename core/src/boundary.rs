//! What crosses into and out of a module, converted in one place.
//!
//! A module is handed a [`Call`] and answers with FFI values; everything it returns
//! is copied into host-owned types here, before the version that made it can be
//! unloaded (a plugin-made `RString` carries a vtable inside the plugin).

use abi_stable::std_types::{ROption, RResult, RString};
use mswoole_plugin_api::{
    ffi::{Call, Envelope as FfiEnvelope, ModuleBox},
    ModuleError,
};

use crate::{
    envelope::Envelope,
    error::CallError,
    spec::{ModuleSpec, Target},
};

/// The call a routed message becomes.
pub fn call(fd: &str, target: Target, message: String) -> Call {
    Call {
        fd: fd.into(),
        controller: target.controller.into(),
        action: target.action.into(),
        message: message.into(),
    }
}

/// A module's error, as the host reports it.
pub fn module_error(error: ModuleError) -> CallError {
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

/// Copies a module's envelope into host memory, checking that `param` is JSON.
pub fn render(envelope: FfiEnvelope) -> Result<Envelope, String> {
    let host = Envelope::new(envelope.status, &envelope.event, &envelope.info);
    match envelope.param.into_option() {
        None => Ok(host),
        Some(param) => host
            .with_param_text(&param)
            .map_err(|_| "envelope param is not JSON".to_string()),
    }
}

/// A call's outcome as the module returned it, in host types.
pub fn outcome(
    outcome: RResult<ROption<FfiEnvelope>, ModuleError>,
) -> Result<Option<Envelope>, CallError> {
    match outcome.into_result() {
        Ok(reply) => reply
            .into_option()
            .map(render)
            .transpose()
            .map_err(CallError::Failed),
        Err(error) => Err(module_error(error)),
    }
}

/// Carries state from the old version of a module into the new one; an import
/// error refuses the new one. A failed export is logged and the new version starts
/// without state. The state is copied into a host-owned string first: the old
/// version may be unloaded while the new one still holds it.
pub fn hand_over(module: &str, old: &ModuleBox, new: &ModuleBox) -> Result<(), String> {
    let exported = match old.export_state().into_result() {
        Ok(state) => state
            .into_option()
            .map(|state| RString::from(state.as_str())),
        Err(error) => {
            let reason = module_error(error);
            tracing::warn!(
                module,
                "state export failed: {reason}; the new version starts without it"
            );
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

/// What a constructed module serves: its `configured_info` when it gives one (it
/// must keep its name), else what it declared before construction.
pub fn configured(spec: ModuleSpec, module: &ModuleBox) -> Result<ModuleSpec, String> {
    match module.configured_info().into_option() {
        None => Ok(spec),
        Some(info) => {
            let configured = ModuleSpec::from_info(&info, spec.names_as_declared)?;
            if configured.name != spec.name {
                return Err(format!(
                    "module {} calls itself {} once configured",
                    spec.name, configured.name
                ));
            }
            Ok(configured)
        }
    }
}
