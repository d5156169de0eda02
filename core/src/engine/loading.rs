//! The sequence that makes a module version ready to serve, in the order the host
//! promises (docs/MODULES.md, "Hot swap"): read what it declares, construct it with its
//! host handle and config, let its configuration narrow what it serves, carry the state
//! of the version it replaces over, and run `on_start`. Any step's failure refuses the
//! new version with a reason naming the module; whatever served before goes on serving.
//!
//! The host loads from a library file and the module test kit from a Rust type: both are
//! a [`Source`], and both run [`declared`] then [`prepare`], so a module that a test loads
//! or swaps in the kit is refused exactly when the host would refuse it.

use std::future::Future;

use mswoole_plugin_api::ffi::{HostApiBox, ModuleBox};
use serde_json::Value;

use crate::{boundary, error::CallError, services::Services, spec::ModuleSpec};

/// Where a module version comes from: a loaded library, or a type in the kit.
pub trait Source {
    /// What it declares about itself, normalised (`ModuleSpec::from_info`).
    fn describe(&self) -> Result<ModuleSpec, String>;

    /// Builds it with its host handle and its `[modules.<Name>]` table as JSON text.
    fn construct(&self, host: HostApiBox, config: String) -> Result<ModuleBox, String>;
}

/// A version ready to serve.
pub struct Prepared {
    /// What it serves, once configured.
    pub spec: ModuleSpec,
    /// The constructed module.
    pub module: ModuleBox,
}

/// Step one: what the version declares. The caller decides whether it may replace what
/// serves its module now (the host refuses a second file declaring a loaded module).
pub fn declared(source: &impl Source) -> Result<ModuleSpec, String> {
    source
        .describe()
        .map_err(|reason| format!("describe failed: {reason}"))
}

/// The rest: construct with `services` and `config`, narrow to what its configuration
/// serves, import the state of `previous` (the version it replaces), then `on_start`
/// (`start` runs the hook, bounded as the driver bounds hooks).
pub async fn prepare<F>(
    source: &impl Source,
    spec: ModuleSpec,
    services: Services,
    config: &Value,
    previous: Option<&ModuleBox>,
    start: impl FnOnce(&ModuleBox) -> F,
) -> Result<Prepared, String>
where
    F: Future<Output = Result<(), CallError>>,
{
    let name = spec.name.clone();
    let module = source
        .construct(services.into_handle(), config.to_string())
        .map_err(|reason| format!("constructor of {name} failed: {reason}"))?;
    let spec = boundary::configured(spec, &module)?;
    if let Some(previous) = previous {
        boundary::hand_over(&name, previous, &module)?;
    }
    start(&module)
        .await
        .map_err(|error| format!("on_start of {name} failed: {error}"))?;
    Ok(Prepared { spec, module })
}
