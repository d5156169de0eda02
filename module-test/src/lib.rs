//! Unit tests for mswoole modules, against the host's own behaviour.
//!
//! A module's tests should fail where the host would behave differently, so this
//! kit is not a fake: it is built on `mswoole-core`, the crate the host itself runs
//! on. A message goes through the same preparation (`fd`, `code` and `auth`
//! injected, strings HTML-escaped), the same case-insensitive routing that hands the
//! module its names as declared, the module's real export wrapper (a panic becomes
//! 500 `controllerError`), the same error → envelope mapping, the same memory
//! registry (key rules, `WEBSOCKET_*` refused, counter overflow is an error, keys
//! expire) and the same close sequence. What the kit adds is a simulated world:
//! connections without sockets, a manual clock (`sleep`, expiry and
//! `limits.call_timeout_ms` follow it), and registry outages on demand.
//!
//! ```
//! use mswoole_module_test::{serde_json::json, TestHost};
//! # use mswoole_plugin_api::{BoxFuture, Envelope, Host, Module, ModuleInfo, Outcome, Request};
//! # struct Hello;
//! # impl Module for Hello {
//! #     fn info() -> ModuleInfo { ModuleInfo::new("Hello", "1.0.0").controller("Index", &["hello"]) }
//! #     fn new(_: Host, _: mswoole_plugin_api::serde_json::Value) -> Result<Self, String> { Ok(Hello) }
//! #     fn call(&self, _: Request) -> BoxFuture<Outcome> {
//! #         Box::pin(async { Ok(Some(Envelope::ok("hello", "hello"))) })
//! #     }
//! # }
//! let host = TestHost::new();
//! host.load::<Hello>(json!({})).expect("loads");
//! let phone = host.connect(json!({"id": 1, "type": "wechatUser", "code": "demo"}));
//! let frames = phone.send(json!({"method": "hello.index.hello"}));
//! assert_eq!(frames[0]["event"], "receiveMessage"); // the ack, as the host sends it
//! assert_eq!(frames[1], json!({"status": 200, "event": "hello", "info": "hello"}));
//! ```

mod conn;
mod io;
mod outlet;
mod world;

use std::{
    collections::BTreeMap,
    marker::PhantomData,
    sync::{Arc, Mutex},
    task::Poll,
    time::Duration,
};

use mswoole_core::{
    clock::ManualClock,
    engine::{
        end::CloseRequest,
        loading::{self, Source},
    },
    identity::{FdIds, Identity},
    io::ModuleIo,
    registry::{memory::MemoryRegistry, RegistryError},
    services::Services,
    spec::ModuleSpec,
};
use mswoole_plugin_api::{
    export,
    ffi::{HostApiBox, ModuleBox},
    LogLevel, Module,
};
use serde_json::{Map, Value};

pub use conn::Conn;
pub use mswoole_core::{
    block_on,
    io::{Executed, IoFailure, IoKind},
    registry::{close_keys_key, controllers_key, Registry},
};
pub use serde_json;

use outlet::KitOutlet;
use world::{poll_once, ConnState, Inner, Loaded, State};

pub use world::{LogLine, Options};

/// A registry outage to simulate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Failure {
    /// The registry cannot be reached: modules get `HostError::Unavailable` (503).
    Unavailable,
    /// The registry refuses writes: modules get `HostError::Storage` (501).
    Storage,
}

/// A simulated host: modules, connections, a registry and a clock. Cheap to clone.
#[derive(Clone)]
pub struct TestHost {
    inner: Arc<Inner>,
}

impl Default for TestHost {
    fn default() -> Self {
        Self::new()
    }
}

impl TestHost {
    /// A host with the default settings, its clock at zero.
    pub fn new() -> Self {
        Self::with_options(Options::default())
    }

    /// A host with these settings. Panics when a database URL in them cannot be used.
    pub fn with_options(options: Options) -> Self {
        let clock = ManualClock::new();
        let registry = Arc::new(MemoryRegistry::with_clock(Arc::new(clock.clone())));
        let in_flight = Arc::new(io::InFlight::default());
        let io = io::KitIo::open(
            &options.databases,
            options.http_max_response_bytes,
            in_flight.clone(),
        )
        .unwrap_or_else(|e| panic!("mswoole-module-test: {e}"));
        TestHost {
            inner: Arc::new(Inner {
                state: Mutex::new(State::new(&options)),
                options,
                clock,
                registry,
                ids: FdIds::new("test"),
                io: Arc::new(io),
                in_flight,
            }),
        }
    }

    /// Loads a module as the host loads a plugin: its declaration is checked and
    /// normalised, it is constructed with `config` (its `[modules.<Name>]` table)
    /// through its export wrapper, then `on_start` runs. Errors are the host's refusal
    /// reasons (the same sequence: `mswoole_core::engine::loading`).
    pub fn load<M: Module>(&self, config: Value) -> Result<(), String> {
        let source = TypeSource::<M>(PhantomData);
        let spec = loading::declared(&source)?;
        self.prepare(&source, spec, &config, None)
    }

    /// Swaps in a new version of an already loaded module, as a hot swap does: the
    /// old version's exported state is imported into the new one (a failed import
    /// refuses it and the old version keeps serving).
    pub fn swap<M: Module>(&self, config: Value) -> Result<(), String> {
        let source = TypeSource::<M>(PhantomData);
        let spec = loading::declared(&source)?;
        let old = self
            .inner
            .module(&spec.name)
            .ok_or_else(|| format!("module {} is not loaded", spec.name))?;
        self.prepare(&source, spec, &config, Some(&old.module))
    }

    /// Constructs, configures, hands state over and starts a version, then installs it.
    /// `on_start` must finish without the clock moving.
    fn prepare<M: Module>(
        &self,
        source: &TypeSource<M>,
        spec: ModuleSpec,
        config: &Value,
        previous: Option<&ModuleBox>,
    ) -> Result<(), String> {
        let name = spec.name.clone();
        let services = Services {
            registry: self.inner.registry.clone(),
            outlet: Arc::new(KitOutlet::new(&self.inner)),
            io: self.inner.io.clone(),
            module: spec.name.as_str().into(),
        };
        let inner = self.inner.clone();
        let start = move |module: &ModuleBox| outlet::deadline(&inner, module.on_start());
        let mut preparing = std::pin::pin!(loading::prepare(
            source, spec, services, config, previous, start
        ));
        let prepared = loop {
            if let Poll::Ready(outcome) = poll_once(&mut preparing) {
                break outcome?;
            }
            if !conn::run_once(&self.inner) && !self.inner.in_flight.wait() {
                return Err(format!(
                    "on_start of {name} waits for time to pass: the kit runs it with the clock stopped"
                ));
            }
        };
        self.install(prepared.spec, prepared.module);
        Ok(())
    }

    fn install(&self, spec: ModuleSpec, module: ModuleBox) {
        let name = spec.name.clone();
        let loaded = Arc::new(Loaded { spec, module });
        let old = self.inner.state().modules.insert(name, loaded);
        // A retired version is dropped outside the lock: its destructor may log.
        drop(old);
    }

    /// A connection with this decoded token (a JSON object: `id`, `type`, `code`,
    /// `nickname`, ...), recorded in the registry as the host records it.
    pub fn connect(&self, claims: Value) -> Conn {
        let Value::Object(claims) = claims else {
            panic!("a token's claims are a JSON object, not {claims}");
        };
        self.open(Identity::from_claims(self.inner.ids.next(), claims))
    }

    /// A connection with a chosen fd (real fds are opaque `node/boot/n` strings;
    /// a readable one makes a test's assertions easier to read). Panics if in use.
    pub fn connect_as(&self, fd: &str, claims: Value) -> Conn {
        let Value::Object(claims) = claims else {
            panic!("a token's claims are a JSON object, not {claims}");
        };
        assert!(
            !self.inner.state().conns.contains_key(fd),
            "fd {fd} is already in use"
        );
        self.open(Identity::from_claims(fd.into(), claims))
    }

    /// A connection without a token, as the host admits one when `auth.required = false`.
    pub fn connect_anonymous(&self) -> Conn {
        self.open(Identity::anonymous(self.inner.ids.next()))
    }

    fn open(&self, identity: Identity) -> Conn {
        if let Err(error) = block_on(self.inner.registry.register(&identity)) {
            self.inner.log(
                LogLevel::Warn,
                "",
                format!("connection not recorded in the registry: {error}"),
            );
        }
        let fd = identity.fd.clone();
        self.inner
            .state()
            .conns
            .insert(fd.clone(), ConnState::new(&self.inner, identity));
        Conn::new(self.inner.clone(), fd)
    }

    /// Runs everything that can run without time passing.
    pub fn run(&self) {
        conn::run(&self.inner);
    }

    /// Moves the clock forward, stopping at every sleep and deadline on the way so
    /// that things happen in the order they would.
    pub fn advance(&self, by: Duration) {
        let target = self.inner.now().saturating_add(by);
        self.run();
        loop {
            let now = self.inner.now();
            let next = {
                let mut state = self.inner.state();
                let next = state
                    .wakeups
                    .range(now + Duration::from_nanos(1)..=target)
                    .next()
                    .copied();
                state.wakeups.retain(|at| *at > next.unwrap_or(target));
                next
            };
            let step = next.unwrap_or(target);
            self.inner.clock.advance(step.saturating_sub(now));
            self.run();
            if step >= target {
                return;
            }
        }
    }

    /// Moves the clock forward by `millis` milliseconds (see [`TestHost::advance`]).
    pub fn advance_ms(&self, millis: u64) {
        self.advance(Duration::from_millis(millis));
    }

    /// The clock: time since the host started.
    pub fn now(&self) -> Duration {
        self.inner.now()
    }

    /// Makes every registry operation fail until [`TestHost::heal_registry`].
    pub fn fail_registry(&self, failure: Failure) {
        let error = match failure {
            Failure::Unavailable => RegistryError::Unavailable("simulated outage".into()),
            Failure::Storage => RegistryError::Storage("simulated storage error".into()),
        };
        self.inner.registry.set_failure(Some(error));
    }

    /// Ends a simulated registry outage.
    pub fn heal_registry(&self) {
        self.inner.registry.set_failure(None);
    }

    /// The registry, to arrange or inspect (its futures are ready at once: use [`block_on`]).
    pub fn registry(&self) -> &MemoryRegistry {
        &self.inner.registry
    }

    /// The members of a set, sorted (empty when the key is missing or the registry fails).
    pub fn members(&self, key: &str) -> Vec<String> {
        let mut members = block_on(self.inner.registry.set_members(key)).unwrap_or_default();
        members.sort();
        members
    }

    /// Every field of a hash, sorted by field.
    pub fn hash(&self, key: &str) -> BTreeMap<String, String> {
        block_on(self.inner.registry.hash_get_all(key))
            .unwrap_or_default()
            .into_iter()
            .collect()
    }

    /// A whole list, head first.
    pub fn list(&self, key: &str) -> Vec<String> {
        block_on(self.inner.registry.list_range(key, 0, -1)).unwrap_or_default()
    }

    /// Runs a query on one of the kit's databases, to arrange or inspect what a module
    /// keeps there (the same code as a module's [`Host::query`](mswoole_plugin_api::Host::query)).
    pub fn query(
        &self,
        db: &str,
        sql: &str,
        params: &[Value],
    ) -> Result<Vec<Map<String, Value>>, IoFailure> {
        let work = self.inner.io.query(db.into(), sql.into(), params.to_vec());
        self.inner.io.block_on(work)
    }

    /// Runs a statement on one of the kit's databases (see [`TestHost::query`]).
    pub fn execute(&self, db: &str, sql: &str, params: &[Value]) -> Result<Executed, IoFailure> {
        let work = self
            .inner
            .io
            .execute(db.into(), sql.into(), params.to_vec());
        self.inner.io.block_on(work)
    }

    /// Everything logged so far.
    pub fn log(&self) -> Vec<LogLine> {
        self.inner.state().log.clone()
    }

    /// `onReload` on every module, as `mswoole reload` does.
    pub fn reload(&self) {
        self.hook_all(|module| module.on_reload());
    }

    /// Stops as the host does: every open connection is closed with 1012 (`service
    /// restart`; its close sequence runs), timers end, then `onShutdown` runs on every
    /// module.
    pub fn shutdown(&self) {
        {
            let mut state = self.inner.state();
            for conn in state.conns.values_mut().filter(|conn| conn.is_open()) {
                conn.closing = conn.closing.max(Some(CloseRequest::Shutdown));
            }
        }
        self.run();
        self.inner.state().timers.stop();
        self.hook_all(|module| module.on_shutdown());
    }

    fn hook_all(&self, hook: impl Fn(&ModuleBox) -> mswoole_plugin_api::ffi::HookFuture) {
        let modules: Vec<Arc<Loaded>> = self.inner.state().modules.values().cloned().collect();
        for loaded in modules {
            let name = loaded.spec.name.clone();
            let future = outlet::deadline(&self.inner, hook(&loaded.module));
            let inner = Arc::downgrade(&self.inner);
            let task = async move {
                if let Err(error) = future.await {
                    if let Some(inner) = inner.upgrade() {
                        inner.log(LogLevel::Error, &name, format!("hook failed: {error}"));
                    }
                }
            };
            self.inner.state().tasks.push(Box::pin(task));
        }
        self.run();
    }
}

/// A module type, as the load sequence reads it (the host reads a library).
struct TypeSource<M>(PhantomData<fn() -> M>);

impl<M: Module> Source for TypeSource<M> {
    fn describe(&self) -> Result<ModuleSpec, String> {
        let info = Result::from(export::describe::<M>()).map_err(|e| e.into_string())?;
        ModuleSpec::from_info(&info, true)
    }

    fn construct(&self, host: HostApiBox, config: String) -> Result<ModuleBox, String> {
        Result::from(export::construct::<M>(host, config.into())).map_err(|e| e.into_string())
    }
}

/// The module guide's code blocks, compiled and run as this crate's doc-tests.
#[cfg(doctest)]
#[doc = include_str!("../../docs/MODULES.md")]
pub struct ModulesGuide;

/// The README's code blocks, compiled and run as this crate's doc-tests.
#[cfg(doctest)]
#[doc = include_str!("../../README.md")]
pub struct Readme;
