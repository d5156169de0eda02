//! The stable ABI between the mswoole host and its modules.
//!
//! Three crates, as in abi_stable's examples: this one is the *interface* (types and
//! traits only, no I/O, no runtime), each `plugins/*` crate is an *implementation*
//! built as a `cdylib`, and the `mswoole` host is the *user* that loads them.
//!
//! - [`ffi`]: what crosses the boundary. The root module [`ffi::PluginMod`] and the two
//!   trait objects ([`ffi::HostApi`] for host callbacks, [`ffi::ModuleObj`] for the
//!   module) are prefix types: they grow by adding fields *below* the one marked
//!   `#[sabi(last_prefix_field)]`, and old plugins keep loading.
//! - [`author`]: what a module author writes against: the [`Module`] trait, [`Host`]
//!   with `async` methods, [`Request`], [`Envelope`] and [`ModuleError`].
//! - [`export`]: [`export_module!`] turns a `Module` into the library's root module and
//!   catches panics at every entry point (a panic crossing the boundary kills the host).
//!
//! A module's unit tests run against the host's own behaviour with the
//! `mswoole-module-test` crate (see `docs/MODULES.md`, "Testing").
//!
//! Rules an author keeps: no `#[global_allocator]`, no `panic = "abort"`, no threads
//! or thread-locals with destructors, and futures await only what [`Host`] hands out.
//! Values from the host are copied into plain Rust types before they are kept.

pub mod author;
pub mod export;
// abi_stable's derives and `#[sabi_trait]` expand to `unsafe` blocks; none is written by hand.
#[allow(unsafe_code, non_local_definitions)]
pub mod ffi;

pub use abi_stable;
pub use async_ffi;
pub use author::{
    BoxFuture, DatabaseInfo, Dialect, Executed, Host, HttpRequest, HttpResponse, Module, Outcome,
    Request, Row,
};
pub use ffi::{
    ControllerInfo, Envelope, HostError, IoError, IoErrorKind, LogLevel, ModuleError, ModuleInfo,
};
pub use serde_json;

/// The plugin-api major version; a library built for another one is refused.
pub const PLUGIN_API_VERSION: u32 = 1;

/// This plugin-api's full version. A plugin records the version it was built
/// against; the host refuses one newer than its own (`docs/MODULES.md`, "ABI evolution").
pub const PLUGIN_API_RELEASE: &str = env!("CARGO_PKG_VERSION");

impl ModuleInfo {
    /// A module with no controllers yet; `version` is usually `env!("CARGO_PKG_VERSION")`.
    pub fn new(name: &str, version: &str) -> Self {
        ModuleInfo {
            name: name.into(),
            version: version.into(),
            controllers: Default::default(),
        }
    }

    /// Adds a controller serving `actions`.
    pub fn controller(mut self, name: &str, actions: &[&str]) -> Self {
        self.controllers.push(ControllerInfo {
            name: name.into(),
            actions: actions.iter().map(|action| (*action).into()).collect(),
            on_message: false,
        });
        self
    }

    /// Adds a controller whose unknown actions reach the module (`onMessage`) instead of 405.
    pub fn controller_with_fallback(mut self, name: &str, actions: &[&str]) -> Self {
        self = self.controller(name, actions);
        if let Some(last) = self.controllers.last_mut() {
            last.on_message = true;
        }
        self
    }
}
