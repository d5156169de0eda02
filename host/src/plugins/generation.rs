//! One loaded version of a module: the constructed module and the library its code lives
//! in, held in an `Arc` so that a call pins the version it runs on, and unloaded when the
//! last call holding it returns (Erlang's two-version rule; README.md "Hot swap").

use std::{
    path::{Path, PathBuf},
    sync::atomic::{AtomicBool, Ordering},
    time::SystemTime,
};

use mswoole_core::spec::ModuleSpec;
use mswoole_plugin_api::ffi::ModuleBox;

use super::loader::{self, ApiVersion};

/// One loaded version of a module.
pub struct Generation {
    /// The module and its library; `None` only while the generation is dropped.
    pub(super) loaded: Option<Loaded>,
    /// What it declared.
    pub spec: ModuleSpec,
    /// 1 for the first version loaded, +1 for each swap.
    pub number: u64,
    /// The file it was loaded from.
    pub file: PathBuf,
    /// When it was loaded.
    pub loaded_at: SystemTime,
    /// The plugin-api version the library was built against.
    pub api: ApiVersion,
}

/// A constructed module and the library its code lives in.
pub(super) struct Loaded {
    /// Dropped first: its vtable is inside `library`.
    pub(super) module: ModuleBox,
    /// The mapped library.
    pub(super) library: loader::Library,
}

impl Generation {
    /// The constructed module.
    pub(super) fn module(&self) -> &ModuleBox {
        match &self.loaded {
            Some(loaded) => &loaded.module,
            None => unreachable!("a generation is only without its module while it is dropped"),
        }
    }

    /// The private copy that is mapped.
    pub fn copy(&self) -> &Path {
        self.loaded
            .as_ref()
            .map_or(Path::new(""), |loaded| loaded.library.copy())
    }
}

/// Set once the host has run `onShutdown`: libraries are no longer unloaded.
static EXITING: AtomicBool = AtomicBool::new(false);

/// From now on retired versions keep their libraries mapped until the process ends.
///
/// Why: after the server returns, the runtime drops the tasks it still holds, and a
/// value a plugin created (a future, an `RString`) carries its vtable inside that
/// plugin; dropped after `dlclose` it is a segfault at exit (seen once in a test run).
/// A process that is ending gains nothing from unmapping them.
pub fn keep_libraries_mapped() {
    EXITING.store(true, Ordering::Release);
}

impl Drop for Generation {
    /// Runs when the last call holding this version has returned: the module goes
    /// first, then the library is unloaded on a blocking thread, so the connection
    /// task that happened to drop the last reference does not wait on `dlclose`.
    fn drop(&mut self) {
        if let Some(Loaded { module, library }) = self.loaded.take() {
            // The module's destructor is plugin code: plugin-api ≥ 1.1 catches a panic
            // in it inside the plugin (and logs it); this catches what still surfaces.
            let dropped = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| drop(module)));
            if dropped.is_err() {
                tracing::error!(module = %self.spec.name, generation = self.number, "the module's destructor panicked");
            }
            if EXITING.load(Ordering::Acquire) {
                library.keep_mapped();
                tracing::info!(module = %self.spec.name, generation = self.number, "plugin version retired at exit");
                return;
            }
            match tokio::runtime::Handle::try_current() {
                Ok(runtime) => drop(runtime.spawn_blocking(move || drop(library))),
                Err(_) => drop(library),
            }
        }
        tracing::info!(
            module = %self.spec.name,
            generation = self.number,
            "plugin version retired and unloaded"
        );
    }
}

impl std::fmt::Debug for Generation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Generation")
            .field("spec", &self.spec)
            .field("number", &self.number)
            .finish()
    }
}
