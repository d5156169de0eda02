//! Turns a [`Module`] into the root module a library exports.
//!
//! A panic that unwinds across the boundary ends the host's process, and the host's
//! `catch_unwind` cannot stop it. So every entry point here catches panics on the
//! plugin's side, in the call itself and in every poll of the future it returns, and
//! hands the host a [`ModuleError::Panicked`] instead. The module's destructor, run
//! when a retired version is unloaded, is guarded too: its panic is logged through
//! the host and goes no further.

use std::{
    any::Any,
    future::{poll_fn, Future},
    panic::{catch_unwind, AssertUnwindSafe},
    pin::pin,
    task::Poll,
};

use abi_stable::std_types::{ROption, RResult, RString};
use async_ffi::FutureExt as _;

use crate::{
    author::{Host, Module, Request},
    ffi::{
        Call, CallFuture, HookFuture, HostApiBox, LogLevel, ModuleBox, ModuleError, ModuleInfo,
        ModuleObj, ModuleObj_TO, PluginMod,
    },
    PLUGIN_API_VERSION,
};

/// The text of a panic payload.
fn panic_message(payload: Box<dyn Any + Send>) -> String {
    match payload.downcast::<String>() {
        Ok(text) => *text,
        Err(payload) => match payload.downcast::<&'static str>() {
            Ok(text) => (*text).to_string(),
            Err(_) => "panic with a non-text payload".to_string(),
        },
    }
}

/// Runs `f`, turning a panic into [`ModuleError::Panicked`].
fn guard<T>(f: impl FnOnce() -> Result<T, ModuleError>) -> Result<T, ModuleError> {
    catch_unwind(AssertUnwindSafe(f))
        .unwrap_or_else(|payload| Err(ModuleError::Panicked(panic_message(payload).into())))
}

/// Boxes a future for the host, turning a panic in any poll into [`ModuleError::Panicked`].
fn guard_future<T, F>(
    make: impl FnOnce() -> Result<F, ModuleError>,
) -> async_ffi::FfiFuture<RResult<T, ModuleError>>
where
    T: Send + 'static,
    F: Future<Output = Result<T, ModuleError>> + Send + 'static,
{
    let future = match catch_unwind(AssertUnwindSafe(make)) {
        Ok(Ok(future)) => future,
        Ok(Err(error)) => return std::future::ready(RResult::RErr(error)).into_ffi(),
        Err(payload) => {
            let error = ModuleError::Panicked(panic_message(payload).into());
            return std::future::ready(RResult::RErr(error)).into_ffi();
        }
    };
    async move {
        let mut future = pin!(future);
        let outcome =
            poll_fn(
                |cx| match catch_unwind(AssertUnwindSafe(|| future.as_mut().poll(cx))) {
                    Ok(Poll::Pending) => Poll::Pending,
                    Ok(Poll::Ready(outcome)) => Poll::Ready(outcome),
                    Err(payload) => {
                        Poll::Ready(Err(ModuleError::Panicked(panic_message(payload).into())))
                    }
                },
            )
            .await;
        outcome.into()
    }
    .into_ffi()
}

/// A [`Module`] seen through the FFI trait the host calls.
struct Exported<M: Module> {
    /// The module; `None` only while it is dropped.
    module: Option<M>,
    /// To report a panicking destructor.
    host: Host,
}

impl<M: Module> Exported<M> {
    fn module(&self) -> Result<&M, ModuleError> {
        self.module
            .as_ref()
            .ok_or_else(|| ModuleError::failed("the module is being dropped"))
    }
}

impl<M: Module> Drop for Exported<M> {
    /// A panic must not unwind out of a destructor the host runs across the boundary.
    fn drop(&mut self) {
        let module = self.module.take();
        if let Err(payload) = catch_unwind(AssertUnwindSafe(move || drop(module))) {
            let message = panic_message(payload);
            self.host.log(
                LogLevel::Error,
                &format!("the module's destructor panicked: {message}"),
            );
        }
    }
}

impl<M: Module> ModuleObj for Exported<M> {
    fn call(&self, call: Call) -> CallFuture {
        let module = self.module();
        guard_future(move || {
            let module = module?;
            let request = Request::new(
                call.fd.into_string(),
                call.controller.into_string(),
                call.action.into_string(),
                call.message.into_string(),
            );
            let reply = module.call(request);
            Ok(async move { reply.await.map(ROption::from) })
        })
    }

    fn on_close(&self, controller: RString, info: RString) -> HookFuture {
        let module = self.module();
        guard_future(move || {
            let info = serde_json::from_str(&info).unwrap_or_default();
            Ok(module?.on_close(&controller, info))
        })
    }

    fn on_reload(&self) -> HookFuture {
        let module = self.module();
        guard_future(move || Ok(module?.on_reload()))
    }

    fn on_shutdown(&self) -> HookFuture {
        let module = self.module();
        guard_future(move || Ok(module?.on_shutdown()))
    }

    fn on_start(&self) -> HookFuture {
        let module = self.module();
        guard_future(move || Ok(module?.on_start()))
    }

    fn on_timer(&self, name: RString, payload: RString) -> HookFuture {
        let module = self.module();
        guard_future(move || {
            let payload = serde_json::from_str(&payload).unwrap_or_default();
            Ok(module?.on_timer(&name, payload))
        })
    }

    fn configured_info(&self) -> ROption<ModuleInfo> {
        // A panic here keeps what `info()` declared; the host checks the result anyway.
        guard(|| Ok(self.module()?.configured_info()))
            .ok()
            .flatten()
            .into()
    }

    fn export_state(&self) -> RResult<ROption<RString>, ModuleError> {
        guard(|| self.module()?.export_state())
            .map(|state| state.map(RString::from).into())
            .into()
    }

    fn import_state(&self, state: RString) -> RResult<(), ModuleError> {
        guard(|| self.module()?.import_state(&state)).into()
    }
}

/// `describe` of the root module, for `M`.
pub extern "C" fn describe<M: Module>() -> RResult<ModuleInfo, RString> {
    catch_unwind(M::info)
        .map_err(|payload| RString::from(panic_message(payload)))
        .into()
}

/// `new` of the root module, for `M`.
pub extern "C" fn construct<M: Module>(
    host: HostApiBox,
    config: RString,
) -> RResult<ModuleBox, RString> {
    let host = Host::new(host);
    let built = catch_unwind(AssertUnwindSafe(|| {
        let config = serde_json::from_str(&config)
            .map_err(|error| format!("config is not JSON: {error}"))?;
        M::new(host.clone(), config)
    }));
    match built {
        Ok(Ok(module)) => RResult::ROk(ModuleObj_TO::from_value(
            Exported {
                module: Some(module),
                host,
            },
            abi_stable::sabi_trait::TD_Opaque,
        )),
        Ok(Err(reason)) => RResult::RErr(reason.into()),
        Err(payload) => {
            RResult::RErr(format!("constructor panicked: {}", panic_message(payload)).into())
        }
    }
}

/// The root module value for `M`; [`crate::export_module!`] stores it in a static.
pub const fn root_module<M: Module>() -> PluginMod {
    PluginMod {
        api_version: PLUGIN_API_VERSION,
        describe: describe::<M>,
        new: construct::<M>,
    }
}

/// Exports a [`Module`] as this library's root module.
///
/// ```ignore
/// mswoole_plugin_api::export_module!(MyModule);
/// ```
#[macro_export]
macro_rules! export_module {
    ($module:ty) => {
        /// The root module the host looks up when it loads this library.
        #[allow(unsafe_code)] // expanded by abi_stable's `export_root_module`, not written here
        #[$crate::abi_stable::export_root_module]
        pub fn mswoole_root_module() -> $crate::ffi::PluginModRef {
            const ROOT: &$crate::abi_stable::prefix_type::WithMetadata<$crate::ffi::PluginMod> =
                &$crate::abi_stable::prefix_type::WithMetadata::new($crate::export::root_module::<
                    $module,
                >());
            $crate::ffi::PluginModRef(ROOT.static_as_prefix())
        }
    };
}
