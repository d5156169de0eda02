//! What the simulated host holds: its settings, its loaded modules, its connections'
//! state, its tasks, its log, its clock. The kit's parts (the connection driver, the
//! outlet, the public [`crate::TestHost`]) all work on this; it uses none of them.

use std::{
    collections::{BTreeMap, BTreeSet, HashMap},
    future::Future,
    pin::Pin,
    sync::{Arc, Mutex, MutexGuard},
    task::{Context, Poll, Waker},
    time::Duration,
};

use mswoole_core::{
    clock::{Clock, ManualClock},
    engine::{end::CloseRequest, rate::MessageRate, scheduler::Scheduler, timers::TimerTable},
    identity::{FdIds, Identity},
    registry::memory::MemoryRegistry,
    spec::ModuleSpec,
};
use mswoole_plugin_api::{ffi::ModuleBox, LogLevel};

use crate::io;

/// The host settings that change what a client or a module sees.
#[derive(Debug, Clone)]
pub struct Options {
    /// `protocol.ack`: every valid message is acknowledged first (`receiveMessage`).
    pub ack: bool,
    /// `protocol.escape_html`: string values are HTML-escaped before a module sees them.
    pub escape_html: bool,
    /// `limits.call_timeout_ms`: a call or hook that takes longer answers 500.
    pub call_timeout_ms: u64,
    /// `limits.timers_per_module`: how many timers one module may have armed.
    pub timers_per_module: usize,
    /// `[databases.<name>] url` by name. `default` is a fresh SQLite file in a temporary
    /// directory unless given here; any URL the host takes works (docs/DATABASES.md).
    pub databases: BTreeMap<String, String>,
    /// `limits.http_max_response_bytes`: a longer HTTP answer is a `TooLarge` error.
    pub http_max_response_bytes: usize,
    /// `limits.messages_per_s`: messages one connection may send per second of the kit's
    /// clock (0 = no limit); more are answered 429 `tooManyRequests`.
    pub messages_per_s: u32,
    /// `limits.messages_burst`: messages one connection may send at once above that rate.
    pub messages_burst: u32,
    /// `limits.rate_close_after_s`: seconds over the rate before the connection is closed
    /// with 1008 (0 = never).
    pub rate_close_after_s: u64,
}

impl Default for Options {
    /// The host's defaults.
    fn default() -> Self {
        Options {
            ack: true,
            escape_html: true,
            call_timeout_ms: 5000,
            timers_per_module: 1000,
            databases: BTreeMap::new(),
            http_max_response_bytes: 1024 * 1024,
            messages_per_s: 100,
            messages_burst: 200,
            rate_close_after_s: 10,
        }
    }
}

/// A line the host would log: from a module (`Host::log`), or about it (a failed
/// call, a panic, a timeout).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogLine {
    /// Its level.
    pub level: LogLevel,
    /// The module it is about.
    pub module: String,
    /// The text.
    pub message: String,
}

/// One loaded module.
pub(crate) struct Loaded {
    /// What it declared, normalised.
    pub(crate) spec: ModuleSpec,
    /// The module behind its export wrapper.
    pub(crate) module: ModuleBox,
}

/// A future the kit drives: a close sequence or a hook.
pub(crate) type Task = Pin<Box<dyn Future<Output = ()> + Send>>;

/// Everything the simulated host holds.
pub(crate) struct State {
    /// Loaded modules by normalised name.
    pub(crate) modules: HashMap<String, Arc<Loaded>>,
    /// Connections by fd, open or ended.
    pub(crate) conns: BTreeMap<String, ConnState>,
    /// Close sequences and hooks still running.
    pub(crate) tasks: Vec<Task>,
    /// What the host would have logged.
    pub(crate) log: Vec<LogLine>,
    /// Times something waits for (sleeps, deadlines, timers): `advance` stops at each.
    pub(crate) wakeups: BTreeSet<Duration>,
    /// Armed timers, each with when it fires next.
    pub(crate) timers: TimerTable<Duration>,
}

impl State {
    pub(crate) fn new(options: &Options) -> Self {
        State {
            modules: HashMap::new(),
            conns: BTreeMap::new(),
            tasks: Vec::new(),
            log: Vec::new(),
            wakeups: BTreeSet::new(),
            timers: TimerTable::new(options.timers_per_module),
        }
    }
}

/// The shared inside of a [`TestHost`].
pub(crate) struct Inner {
    pub(crate) options: Options,
    pub(crate) clock: ManualClock,
    pub(crate) registry: Arc<MemoryRegistry>,
    pub(crate) ids: FdIds,
    pub(crate) state: Mutex<State>,
    /// Databases and HTTP, the host's code on the kit's runtime.
    pub(crate) io: Arc<io::KitIo>,
    /// The I/O calls running.
    pub(crate) in_flight: Arc<io::InFlight>,
}

impl Inner {
    /// The state; a panicking test cannot leave it half-written in a way that matters.
    pub(crate) fn state(&self) -> MutexGuard<'_, State> {
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    pub(crate) fn now(&self) -> Duration {
        self.clock.now()
    }

    pub(crate) fn log(&self, level: LogLevel, module: &str, message: String) {
        self.state().log.push(LogLine {
            level,
            module: module.into(),
            message,
        });
    }

    pub(crate) fn wake_at(&self, at: Duration) {
        self.state().wakeups.insert(at);
    }

    pub(crate) fn module(&self, name: &str) -> Option<Arc<Loaded>> {
        self.state().modules.get(name).cloned()
    }
}

/// A connection's engine, counting its message rate on the kit's clock.
pub(crate) type Engine = Scheduler<MessageRate<ManualClock>>;

/// One simulated connection.
pub(crate) struct ConnState {
    pub(crate) identity: Arc<Identity>,
    /// Its engine; out of the state while the kit steps it (a module may queue frames
    /// for this connection meanwhile), and gone once it ended.
    pub(crate) engine: Option<Box<Engine>>,
    /// Frames other connections (or the module) queued for this one.
    pub(crate) mail: Vec<String>,
    /// A close request, passed on at the engine's next wait.
    pub(crate) closing: Option<CloseRequest>,
    /// Frames written to the client and not yet taken by the test.
    pub(crate) received: Vec<String>,
    /// Ended: `Some(code)` the close code the host sent (`None` inside: none).
    pub(crate) ended: Option<Option<u16>>,
}

impl ConnState {
    pub(crate) fn new(inner: &Inner, identity: Identity) -> Self {
        let options = &inner.options;
        let rate = MessageRate::with_clock(
            options.messages_per_s,
            options.messages_burst,
            options.rate_close_after_s,
            inner.clock.clone(),
        );
        ConnState {
            identity: Arc::new(identity),
            engine: Some(Box::new(Scheduler::new(
                options.ack,
                options.escape_html,
                rate,
            ))),
            mail: Vec::new(),
            closing: None,
            received: Vec::new(),
            ended: None,
        }
    }

    pub(crate) fn is_open(&self) -> bool {
        self.ended.is_none()
    }
}

/// Polls a future once with a waker that does nothing: the kit re-polls whatever
/// is pending each time it runs, so it needs no wake-ups.
pub(crate) fn poll_once<F: Future + Unpin>(future: &mut F) -> Poll<F::Output> {
    let mut cx = Context::from_waker(Waker::noop());
    Pin::new(future).poll(&mut cx)
}
