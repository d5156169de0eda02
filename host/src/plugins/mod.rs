//! The plugin table: which version of each module is current.
//!
//! Each loaded version is a [`Generation`] held in an `Arc`. A message pins the
//! current generation of its module for the length of its call, so a swap never
//! disturbs a call in flight: new messages go to the new version, calls already
//! running finish on the old one, and the old one is retired when its last call
//! returns (Erlang's two-version rule). The table itself is an `ArcSwap`, so
//! routing reads it without a lock.
//!
//! - [`loader`]: opens and checks a library (the only `unsafe`).
//! - [`bridge`]: the only code that calls into a module.
//! - [`outlet`]: where the host API (`mswoole_core::services`) sends frames,
//!   closes, sleeps, timers and log lines.
//! - [`timers`]: modules' timers, each a task that says when a tick is due; the table
//!   fires it on the module's current version ([`Plugins::serve_timers`]).
//! - [`watcher`]: rescans when a library in the directory is rebuilt.

pub mod bridge;
pub mod generation;
pub mod loader;
pub mod outlet;
pub mod timers;
pub mod watcher;

use std::{
    collections::{BTreeMap, HashMap},
    fs,
    path::{Path, PathBuf},
    sync::{
        atomic::{AtomicU64, Ordering},
        Arc, Mutex, MutexGuard,
    },
    time::{Duration, SystemTime, UNIX_EPOCH},
};

use arc_swap::ArcSwap;
use async_trait::async_trait;
use mswoole_core::{
    close::CloseHooks,
    engine::{
        loading,
        scheduler::{CallFuture, Dispatch},
    },
    io::ModuleIo,
    services::Services,
    spec::Target,
};
use mswoole_plugin_api::ffi::ModuleBox;
use serde_json::{json, Value};
use tokio::sync::mpsc;

pub use self::generation::{keep_libraries_mapped, Generation};

use self::{
    bridge::Hook,
    generation::Loaded,
    outlet::HostOutlet,
    timers::{Tick, Timers},
};
use crate::{
    config::Config,
    error::CallError,
    fanout::delivery::Delivery,
    registry::Registry,
    router::{module_name, Route},
    telemetry::metrics,
};

/// The first plugin-api minor version that hands modules their names as declared.
const NAMES_AS_DECLARED_SINCE: u32 = 1;

/// A library that was refused.
#[derive(Debug, Clone)]
pub struct Refusal {
    /// The file.
    pub file: PathBuf,
    /// One line: why.
    pub reason: String,
    /// When.
    pub at: SystemTime,
}

/// What identifies a version of a file on disk.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Stamp {
    /// Size.
    len: u64,
    /// Content change time.
    modified: Option<SystemTime>,
    /// A file put in place by rename or hard link (as cargo does) is another inode,
    /// even when a copy kept size and mtime.
    inode: (u64, u64),
    /// Inode change time, in nanoseconds.
    changed: (i64, i64),
}

pub(super) fn stamp(path: &Path) -> Option<Stamp> {
    use std::os::unix::fs::MetadataExt as _;
    let meta = fs::metadata(path).ok()?;
    Some(Stamp {
        len: meta.len(),
        modified: meta.modified().ok(),
        inode: (meta.dev(), meta.ino()),
        changed: (meta.ctime(), meta.ctime_nsec()),
    })
}

/// Whether a directory entry is a plugin candidate (`lib*.so`).
pub fn is_plugin_file(path: &Path) -> bool {
    let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
    name.starts_with("lib") && name.ends_with(".so") && path.is_file()
}

/// The plugin table and everything needed to load into it.
pub struct Plugins {
    /// Current generation per module name.
    current: ArcSwap<HashMap<String, Arc<Generation>>>,
    /// The watched directory.
    dir: PathBuf,
    /// Where private copies go.
    copies: PathBuf,
    /// The stamp of each file when it was last looked at, so an unchanged file is not reloaded.
    seen: Mutex<HashMap<PathBuf, Stamp>>,
    /// Last refusal per file.
    refusals: Mutex<BTreeMap<PathBuf, Refusal>>,
    /// Serializes scans (start-up, reload, watcher).
    scanning: tokio::sync::Mutex<()>,
    /// Unique number for each private copy.
    serial: AtomicU64,
    /// What modules' host handles reach.
    registry: Arc<dyn Registry>,
    /// Frame delivery, for host handles.
    delivery: Arc<Delivery>,
    /// `[modules.*]` tables by module name.
    config: Arc<Config>,
    /// Modules' timers, for host handles.
    timers: Arc<Timers>,
    /// Databases and HTTP, for host handles.
    io: Arc<dyn ModuleIo>,
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

fn unix(time: SystemTime) -> u64 {
    time.duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

impl Plugins {
    /// An empty table loading from `dir`, with private copies in `copies`.
    pub fn new(
        dir: PathBuf,
        copies: PathBuf,
        registry: Arc<dyn Registry>,
        delivery: Arc<Delivery>,
        config: Arc<Config>,
        timers: Arc<Timers>,
        io: Arc<dyn ModuleIo>,
    ) -> Self {
        loader::clear_copies(&copies);
        Plugins {
            current: ArcSwap::from_pointee(HashMap::new()),
            dir,
            copies,
            seen: Mutex::default(),
            refusals: Mutex::default(),
            scanning: tokio::sync::Mutex::new(()),
            serial: AtomicU64::new(0),
            registry,
            delivery,
            config,
            timers,
            io,
        }
    }

    /// The directory plugins are loaded from.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The current generation of a module.
    pub fn module(&self, name: &str) -> Option<Arc<Generation>> {
        self.current.load().get(name).cloned()
    }

    /// Every current generation.
    pub fn all(&self) -> Vec<Arc<Generation>> {
        let mut all: Vec<_> = self.current.load().values().cloned().collect();
        all.sort_by(|a, b| a.spec.name.cmp(&b.spec.name));
        all
    }

    /// Finds the generation serving a route and the names its module gets.
    pub fn resolve(&self, route: &Route) -> Result<(Arc<Generation>, Target), CallError> {
        let generation = self
            .module(&route.module)
            .ok_or(CallError::ControllerNotFound)?;
        let target = generation.spec.target(route)?;
        Ok((generation, target))
    }

    /// Looks at every `lib*.so` in the directory and loads what is new or changed.
    ///
    /// Returns how many modules were loaded or swapped. A deleted file does not
    /// unload its module: the version in memory keeps serving.
    pub async fn scan(&self) -> usize {
        let _scanning = self.scanning.lock().await;
        let entries = match fs::read_dir(&self.dir) {
            Ok(entries) => entries,
            Err(error) => {
                tracing::error!(dir = %self.dir.display(), "cannot read the plugin directory: {error}");
                return 0;
            }
        };
        let mut files: Vec<PathBuf> = entries
            .flatten()
            .map(|e| e.path())
            .filter(|p| is_plugin_file(p))
            .collect();
        files.sort();
        let mut loaded = 0;
        for file in files {
            let Some(now) = stamp(&file) else { continue };
            if lock(&self.seen).get(&file) == Some(&now) {
                continue;
            }
            lock(&self.seen).insert(file.clone(), now);
            match self.load(&file).await {
                Ok(()) => loaded += 1,
                Err(reason) => self.refuse(&file, reason),
            }
        }
        loaded
    }

    fn refuse(&self, file: &Path, reason: String) {
        tracing::error!(file = %file.display(), "plugin refused: {reason}");
        crate::telemetry::metrics::plugin_refused();
        let refusal = Refusal {
            file: file.to_path_buf(),
            reason,
            at: SystemTime::now(),
        };
        lock(&self.refusals).insert(file.to_path_buf(), refusal);
    }

    /// Loads one file and makes it current for its module, by the load sequence every
    /// module follows (`mswoole_core::engine::loading`).
    async fn load(&self, file: &Path) -> Result<(), String> {
        let serial = self.serial.fetch_add(1, Ordering::Relaxed);
        let (owned_file, copies) = (file.to_path_buf(), self.copies.clone());
        let (root, library, api) =
            tokio::task::spawn_blocking(move || loader::load(&owned_file, &copies, serial))
                .await
                .map_err(|e| format!("loader task failed: {e}"))?
                .map_err(|e| {
                    if e.detail != e.reason {
                        tracing::debug!(file = %file.display(), "full loader report: {}", e.detail);
                    }
                    e.reason
                })?;
        let source = bridge::LibrarySource {
            root,
            names_as_declared: api.minor >= NAMES_AS_DECLARED_SINCE,
        };
        let spec = loading::declared(&source)?;
        let previous = self.module(&spec.name);
        if let Some(previous) = &previous {
            if previous.file != file {
                return Err(format!(
                    "module {} is already served by {}",
                    spec.name,
                    previous.file.display()
                ));
            }
        }
        let services = Services {
            registry: self.registry.clone(),
            outlet: Arc::new(HostOutlet {
                delivery: self.delivery.clone(),
                timers: self.timers.clone(),
            }),
            io: self.io.clone(),
            module: spec.name.as_str().into(),
        };
        let config = self.config.module_config(&spec.name);
        let timeout = self.call_timeout();
        // on_start before it serves: an error refuses it, and dropping it unloads it.
        let start = |module: &ModuleBox| bridge::bounded(module.on_start(), timeout);
        let previous_module = previous.as_ref().map(|previous| previous.module());
        let prepared =
            loading::prepare(&source, spec, services, &config, previous_module, start).await?;
        let generation = Arc::new(Generation {
            loaded: Some(Loaded {
                module: prepared.module,
                library,
            }),
            number: previous.as_ref().map_or(1, |p| p.number + 1),
            spec: prepared.spec,
            file: file.to_path_buf(),
            loaded_at: SystemTime::now(),
            api,
        });
        let mut table = HashMap::clone(&self.current.load());
        table.insert(generation.spec.name.clone(), generation.clone());
        self.current.store(Arc::new(table));
        lock(&self.refusals).remove(file);
        match previous {
            Some(_) => metrics::plugin_swapped(&generation.spec.name),
            None => metrics::module_loaded(&generation.spec.name),
        }
        tracing::info!(
            module = %generation.spec.name,
            version = %generation.spec.version,
            plugin_api = %generation.api,
            generation = generation.number,
            file = %file.display(),
            "plugin loaded"
        );
        Ok(())
    }

    /// `limits.call_timeout_ms`: what bounds every call and hook.
    fn call_timeout(&self) -> Duration {
        Duration::from_millis(self.config.limits.call_timeout_ms)
    }

    /// Fires the ticks of modules' timers on each module's current version, by the rules
    /// of the timer table (README.md, docs/MODULES.md "Timers"), until the host stops.
    pub async fn serve_timers(
        self: Arc<Self>,
        timers: Arc<Timers>,
        mut ticks: mpsc::UnboundedReceiver<Tick>,
    ) {
        while let Some(tick) = ticks.recv().await {
            let Some(timer) = timers.begin(&tick) else {
                continue;
            };
            let Some(generation) = self.module(&tick.module) else {
                tracing::warn!(module = %tick.module, timer = %tick.name, "timer fired for a module that is not loaded");
                timers.finish(&tick);
                continue;
            };
            let (timers, timeout) = (timers.clone(), self.call_timeout());
            tokio::spawn(async move {
                let hook = Hook::Timer(&timer.name, &timer.payload);
                if let Err(error) = bridge::hook(generation, hook, timeout).await {
                    tracing::error!(module = %tick.module, timer = %timer.name, "onTimer failed: {error}");
                }
                timers.finish(&tick);
            });
        }
    }

    /// Runs a lifecycle hook on every current module, logging failures.
    pub async fn hook_all(&self, hook: Hook<'_>, timeout: Duration) {
        for generation in self.all() {
            let name = generation.spec.name.clone();
            if let Err(error) = bridge::hook(generation, hook, timeout).await {
                tracing::error!(module = %name, "{hook:?} failed: {error}");
            }
        }
    }

    /// The refusals, newest information per file.
    pub fn refusals(&self) -> Vec<Refusal> {
        lock(&self.refusals).values().cloned().collect()
    }

    /// `status` of every module and refusal, as JSON.
    pub fn status(&self) -> (Value, Value) {
        let refusals = self.refusals();
        let last_refusal = |file: &Path| {
            refusals
                .iter()
                .find(|r| r.file == file)
                .map(|r| json!({"reason": r.reason, "at": unix(r.at)}))
        };
        let modules: Vec<Value> = self
            .all()
            .iter()
            .map(|g| {
                json!({
                    "name": g.spec.name,
                    "version": g.spec.version,
                    "plugin_api": g.api.to_string(),
                    "generation": g.number,
                    "file": g.file.display().to_string(),
                    "copy": g.copy().display().to_string(),
                    "loaded_at": unix(g.loaded_at),
                    "last_refusal": last_refusal(&g.file),
                    "controllers": g.spec.actions(),
                })
            })
            .collect();
        let refusals: Vec<Value> = refusals
            .iter()
            .map(|r| json!({"file": r.file.display().to_string(), "reason": r.reason, "at": unix(r.at)}))
            .collect();
        (Value::Array(modules), Value::Array(refusals))
    }
}

/// How a connection's engine reaches the modules: the current version of the route's
/// module, pinned for the length of the call, timed into `mswoole_module_call_seconds`.
impl Dispatch for Plugins {
    type Target = (Arc<Generation>, Target);

    fn resolve(&self, route: &Route) -> Result<Self::Target, CallError> {
        Plugins::resolve(self, route)
    }

    fn call(&self, (generation, target): Self::Target, fd: &str, message: String) -> CallFuture {
        let module = generation.spec.name.clone();
        let call = bridge::call(generation, fd, target, message, self.call_timeout());
        Box::pin(async move {
            let started = std::time::Instant::now();
            let outcome = call.await;
            metrics::module_call(&module, started.elapsed());
            outcome
        })
    }
}

/// `onClose` for the close sequence: the registered `Module.Controller` reaches the
/// current version of that module, bounded by `limits.call_timeout_ms`.
#[async_trait]
impl CloseHooks for Plugins {
    async fn on_close(&self, registered: &str, info: &Value) -> Result<bool, CallError> {
        let (module, controller) = registered.split_once('.').unwrap_or(("", registered));
        let Some(generation) = self.module(&module_name(module)) else {
            return Ok(false);
        };
        let controller = generation.spec.close_controller(controller);
        let timeout = self.call_timeout();
        bridge::hook(generation, Hook::Close(&controller, info), timeout).await?;
        Ok(true)
    }
}
