//! Everything that crosses the library boundary, and nothing else.
//!
//! These types are checked by abi_stable's layout checker when the host loads a
//! library, so changing any of them is a breaking change of the ABI. Three types
//! can grow without breaking built plugins because they are prefix types: the root
//! module ([`PluginMod`]) and the vtables of the two trait objects ([`HostApi`],
//! [`ModuleObj`]). The rules, which `docs/MODULES.md` ("ABI evolution") explains
//! for authors and the test suite checks with plugins built from plugin-api 1.0:
//!
//! - New fields and methods go *below* the one marked `#[sabi(last_prefix_field)]`,
//!   never above it, and the plugin-api minor version is raised.
//! - A plugin built against an *older* plugin-api gives the host shorter vtables:
//!   the host reads [`PluginMod`]'s newer fields as `Option` (`missing_field(option)`),
//!   and every [`ModuleObj`] method added after 1.0 has a default body, which the
//!   host runs when the plugin's vtable lacks it.
//! - A plugin built against a *newer* plugin-api than the host offers is refused at
//!   load, with a message naming both versions, before anything in it runs. Methods
//!   added to [`HostApi`] after 1.0 still have default bodies that return
//!   [`HostError::Refused`], so even a host that skipped that check would answer an
//!   error, never panic.
//! - [`Envelope`], [`ModuleError`], [`HostError`], [`Call`], [`ModuleInfo`] and
//!   [`ControllerInfo`] are frozen: abi_stable refuses a changed struct or an
//!   exhaustive enum whose variants changed. New kinds of error get new types.

use abi_stable::{
    declare_root_module_statics,
    library::RootModule,
    package_version_strings, sabi_trait,
    sabi_types::VersionStrings,
    std_types::{RArc, RBox, ROption, RResult, RString, RVec, Tuple2},
    StableAbi,
};
use async_ffi::FfiFuture;

/// The status code type of an envelope.
#[cfg(not(feature = "abi-mismatch-fixture"))]
pub type Status = u16;
/// Deliberately wrong status type, used only to build the test suite's incompatible plugin.
#[cfg(feature = "abi-mismatch-fixture")]
pub type Status = u64;

/// A reply to a client: `{"status","event","info","param"}`.
#[repr(C)]
#[derive(StableAbi, Debug, Clone, PartialEq, Eq)]
pub struct Envelope {
    /// 200 ok, 4xx refusals, 5xx failures, 999 missing room code.
    pub status: Status,
    /// Machine-readable name of what happened, e.g. `success`.
    pub event: RString,
    /// Human-readable text.
    pub info: RString,
    /// `param` as JSON text; `RNone` leaves the key out of the envelope.
    pub param: ROption<RString>,
}

/// How a module call went wrong; the host turns each kind into an envelope in one place.
#[repr(u8)]
#[derive(StableAbi, Debug, Clone, PartialEq, Eq)]
pub enum ModuleError {
    /// A refusal the client is meant to see as it is (401 badParameter, 403, 404, 999 ...).
    Refused {
        /// Status of the envelope.
        status: Status,
        /// Event of the envelope.
        event: RString,
        /// Info of the envelope.
        info: RString,
    },
    /// The registry cannot be reached: 503 `unavailable`. The text goes to the log.
    Unavailable(RString),
    /// The registry refused a write: 501 `storageError`. The text goes to the log.
    Storage(RString),
    /// Any other failure: 500 `controllerError`. The text goes to the log, never to the client.
    Failed(RString),
    /// The module panicked: 500 `controllerError`. The panic message goes to the log.
    Panicked(RString),
}

/// Why a host callback failed.
#[repr(u8)]
#[derive(StableAbi, Debug, Clone, PartialEq, Eq)]
pub enum HostError {
    /// The registry cannot be reached right now.
    Unavailable(RString),
    /// The registry answered with an error.
    Storage(RString),
    /// The module asked for something it may not do (a key reserved for the host, a bad argument).
    Refused(RString),
}

/// What kind of I/O failure an [`IoError`] is (docs/DATABASES.md, "Error kinds").
///
/// Non-exhaustive across the boundary: it travels as [`IoErrorKind_NE`], so a later
/// plugin-api can add kinds without breaking built plugins; a kind this plugin does
/// not know reads as `None` from [`IoError::kind`]. Since 1.2.
#[repr(u8)]
#[derive(StableAbi, Debug, Clone, Copy, PartialEq, Eq)]
#[sabi(kind(WithNonExhaustive(size = [usize; 2], traits(Debug, Clone, PartialEq))))]
#[non_exhaustive]
pub enum IoErrorKind {
    /// No database of that name is configured.
    UnknownDatabase,
    /// The statement or its parameters are wrong (syntax, unknown table, a placeholder
    /// count that does not match, a parameter SQL cannot take), or the HTTP request is.
    BadStatement,
    /// A unique, foreign-key, not-null or check constraint refused the change.
    Constraint,
    /// The deadline passed; whether the statement took effect is unknown.
    Timeout,
    /// The server cannot be reached.
    Unreachable,
    /// The request or the answer is larger than allowed.
    TooLarge,
    /// The URL cannot be used.
    BadUrl,
}

/// Why a database or HTTP call failed: a kind to act on, a detail for the log. Since 1.2.
#[repr(C)]
#[derive(StableAbi, Debug, Clone, PartialEq)]
pub struct IoError {
    /// What went wrong.
    pub kind: IoErrorKind_NE,
    /// What the driver or the host said; for the log, never for a client.
    pub detail: RString,
}

impl IoError {
    /// An error of `kind` with `detail`.
    pub fn new(kind: IoErrorKind, detail: impl Into<RString>) -> Self {
        IoError {
            kind: IoErrorKind_NE::new(kind),
            detail: detail.into(),
        }
    }

    /// The kind, or `None` for a kind added by a plugin-api newer than this one.
    pub fn kind(&self) -> Option<IoErrorKind> {
        self.kind.as_enum().ok().copied()
    }

    /// Whether trying again later may succeed: the server is unreachable or the deadline passed.
    pub fn is_unavailable(&self) -> bool {
        matches!(
            self.kind(),
            Some(IoErrorKind::Unreachable | IoErrorKind::Timeout)
        )
    }
}

impl std::fmt::Display for IoError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.kind() {
            Some(kind) => write!(f, "{kind:?}: {}", self.detail),
            None => write!(f, "{:?}: {}", self.kind, self.detail),
        }
    }
}

/// One routed message, handed to the module that owns its controller.
#[repr(C)]
#[derive(StableAbi, Debug, Clone, PartialEq, Eq)]
pub struct Call {
    /// The connection the message came from.
    pub fd: RString,
    /// Controller name exactly as the module declared it (plugin-api 1.0 plugins get
    /// it normalised: `Ucfirst` of the lower-cased name).
    pub controller: RString,
    /// Action name exactly as declared (1.0 plugins: lower-cased). An `onMessage`
    /// fallback gets the action the client sent, lower-cased.
    pub action: RString,
    /// The message object as JSON text, after the host injected `fd`, `code`, `auth` and escaped strings.
    pub message: RString,
}

/// A controller a module serves.
#[repr(C)]
#[derive(StableAbi, Debug, Clone, PartialEq, Eq)]
pub struct ControllerInfo {
    /// Controller name, `[A-Za-z0-9_]+`; routing matches it case-insensitively.
    pub name: RString,
    /// Routable actions, `[A-Za-z0-9_]+`; matched case-insensitively; lifecycle hook
    /// names (`onClose`, `onReload`, `onShutdown`, `onMessage`) are refused.
    pub actions: RVec<RString>,
    /// Unknown actions of this controller are handed to the module instead of answering 405.
    pub on_message: bool,
}

/// What a library declares about itself before it is constructed.
#[repr(C)]
#[derive(StableAbi, Debug, Clone, PartialEq, Eq)]
pub struct ModuleInfo {
    /// Module name (`Index`, `Live`); identifies the module, whatever the file is called.
    pub name: RString,
    /// The module's own version, shown by `mswoole status`.
    pub version: RString,
    /// The controllers it serves.
    pub controllers: RVec<ControllerInfo>,
}

/// Log levels a module can write at.
#[repr(u8)]
#[derive(StableAbi, Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogLevel {
    /// Something an operator must look at.
    Error,
    /// Something unusual that the module handled.
    Warn,
    /// Normal operation.
    Info,
    /// Detail for debugging.
    Debug,
}

/// What every host callback returns: it may await the registry, so it is a future.
pub type HostFuture<T> = FfiFuture<RResult<T, HostError>>;

/// What a database or HTTP callback returns (JSON text on success). Since 1.2.
pub type IoFuture = FfiFuture<RResult<RString, IoError>>;

/// What a module call returns: a reply envelope, nothing, or an error.
pub type CallFuture = FfiFuture<RResult<ROption<Envelope>, ModuleError>>;

/// What a lifecycle hook returns.
pub type HookFuture = FfiFuture<RResult<(), ModuleError>>;

/// The host's services, handed to a module when it is constructed.
///
/// Keys are named by the module without `registry.prefix` (the host adds it);
/// keys starting with `WEBSOCKET_` belong to the host and are refused.
#[sabi_trait]
pub trait HostApi: Clone + Send + Sync + 'static {
    /// The plugin-api version the host implements.
    fn api_version(&self) -> u32;
    /// Sends an envelope to one connection, on whatever node it is; `true` if it was found.
    fn send(&self, fd: RString, envelope: Envelope) -> HostFuture<bool>;
    /// Sends an envelope to every connection in a set; returns how many were reached.
    fn send_to_set(&self, key: RString, envelope: Envelope) -> HostFuture<u64>;
    /// Closes a connection (close code 1000, its close sequence runs); `true` if it was found.
    fn close(&self, fd: RString) -> HostFuture<bool>;
    /// The decoded token of a connection, as a JSON object, if it is connected.
    fn identity(&self, fd: RString) -> HostFuture<ROption<RString>>;
    /// The connection of a `wechatUser` uid, if it is online.
    fn uid_fd(&self, uid: RString) -> HostFuture<ROption<RString>>;
    /// Adds a member to a set; `true` if it was not there.
    fn set_add(&self, key: RString, member: RString) -> HostFuture<bool>;
    /// Removes a member from a set; `true` if it was there.
    fn set_remove(&self, key: RString, member: RString) -> HostFuture<bool>;
    /// The members of a set, in no particular order.
    fn set_members(&self, key: RString) -> HostFuture<RVec<RString>>;
    /// One field of a hash.
    fn hash_get(&self, key: RString, field: RString) -> HostFuture<ROption<RString>>;
    /// Sets one field of a hash.
    fn hash_set(&self, key: RString, field: RString, value: RString) -> HostFuture<()>;
    /// Deletes one field of a hash; `true` if it was there.
    fn hash_delete(&self, key: RString, field: RString) -> HostFuture<bool>;
    /// Every field of a hash.
    fn hash_get_all(&self, key: RString) -> HostFuture<RVec<Tuple2<RString, RString>>>;
    /// Adds `by` to a counter (missing counts as 0) and returns the new value.
    fn incr(&self, key: RString, by: i64) -> HostFuture<i64>;
    /// Pushes a value at the head of a list (newest first); returns the new length.
    fn list_push(&self, key: RString, value: RString) -> HostFuture<u64>;
    /// Elements `start..=stop` of a list; negative indexes count from the end, as in Redis.
    fn list_range(&self, key: RString, start: i64, stop: i64) -> HostFuture<RVec<RString>>;
    /// Keeps only elements `start..=stop` of a list.
    fn list_trim(&self, key: RString, start: i64, stop: i64) -> HostFuture<()>;
    /// Removes a key after `seconds`; `true` if the key exists.
    fn expire(&self, key: RString, seconds: u64) -> HostFuture<bool>;
    /// Removes the key itself, whatever it holds; `true` if it existed.
    fn delete(&self, key: RString) -> HostFuture<bool>;
    /// When `fd` closes, remove it from the set `key`.
    fn add_close_key(&self, fd: RString, key: RString) -> HostFuture<()>;
    /// When `fd` closes, call `onClose` of this controller (`Module.Controller`).
    fn add_close_controller(&self, fd: RString, controller: RString) -> HostFuture<()>;
    /// Completes after `millis` milliseconds: the plugin has no timer of its own.
    fn sleep(&self, millis: u64) -> HostFuture<()>;
    /// Writes a line to the host's log, tagged with the module's name.
    ///
    /// The last method of plugin-api 1.0. New methods go below this one, each with a
    /// default body: a plugin built against 1.0 never sees them.
    #[sabi(last_prefix_field)]
    fn log(&self, level: LogLevel, message: RString);

    /// Undoes [`HostApi::add_close_key`]: `fd` no longer leaves `key` when it closes
    /// (MSwoole's `fdRemoveCloseKey`). Since 1.1.
    fn remove_close_key(&self, fd: RString, key: RString) -> HostFuture<()> {
        let _ = (fd, key);
        missing("remove_close_key", "1.1")
    }

    /// Undoes [`HostApi::add_close_controller`] (MSwoole's `fdRemoveController`). Since 1.1.
    fn remove_close_controller(&self, fd: RString, controller: RString) -> HostFuture<()> {
        let _ = (fd, controller);
        missing("remove_close_controller", "1.1")
    }

    /// Calls the module's [`ModuleObj::on_timer`] once, `millis` from now, with
    /// `payload` (JSON text). Timers belong to the module, by name: setting one
    /// again replaces it, and after a hot swap the new version receives it. Refused
    /// past `limits.timers_per_module`. Since 1.1.
    fn timer_after(&self, name: RString, millis: u64, payload: RString) -> RResult<(), HostError> {
        let _ = (name, millis, payload);
        RResult::RErr(missing_error("timer_after", "1.1"))
    }

    /// Like [`HostApi::timer_after`], every `millis` (at least 10); a tick that falls
    /// due while the previous `on_timer` of that name still runs is skipped. Since 1.1.
    fn timer_every(&self, name: RString, millis: u64, payload: RString) -> RResult<(), HostError> {
        let _ = (name, millis, payload);
        RResult::RErr(missing_error("timer_every", "1.1"))
    }

    /// Cancels a timer; `true` if there was one by that name. Since 1.1.
    fn timer_cancel(&self, name: RString) -> bool {
        let _ = name;
        false
    }

    /// `{"dialect": "mysql"|"postgres"|"sqlite", "prefix": …}` of a configured
    /// database, as JSON text. Since 1.2.
    fn database_info(&self, db: RString) -> RResult<RString, IoError> {
        let _ = db;
        RResult::RErr(missing_io_error("database_info"))
    }

    /// Runs a statement that returns rows: `params` is a JSON array bound to the `?`
    /// placeholders; the answer is a JSON array of objects keyed by column name. Since 1.2.
    fn query(&self, db: RString, sql: RString, params: RString) -> IoFuture {
        let _ = (db, sql, params);
        missing_io("query")
    }

    /// Runs a statement for its effect; the answer is
    /// `{"rows_affected": n, "last_insert_id": id|null}` as JSON text. Since 1.2.
    fn execute(&self, db: RString, sql: RString, params: RString) -> IoFuture {
        let _ = (db, sql, params);
        missing_io("execute")
    }

    /// Runs `(sql, params)` statements in one transaction, all or nothing; the answer is
    /// a JSON array with one `execute` outcome per statement. Since 1.2.
    fn transaction(&self, db: RString, statements: RVec<Tuple2<RString, RString>>) -> IoFuture {
        let _ = (db, statements);
        missing_io("transaction")
    }

    /// Makes an HTTP request described by `request` (JSON text: `method`, `url`,
    /// `headers` as `[name, value]` pairs, `body` or `body_base64`, `timeout_ms`); the
    /// answer is `{"status", "headers", "body", "body_base64"}` as JSON text. Since 1.2.
    fn http(&self, request: RString) -> IoFuture {
        let _ = request;
        missing_io("http")
    }
}

/// The I/O error of a host method added in 1.2, on a host that predates it.
fn missing_io_error(method: &str) -> IoError {
    IoError::new(
        IoErrorKind::Unreachable,
        format!("this host does not offer {method} (plugin-api 1.2)"),
    )
}

/// What an I/O method added in 1.2 answers on a host that predates it.
fn missing_io(method: &str) -> IoFuture {
    use async_ffi::FutureExt as _;
    std::future::ready(RResult::RErr(missing_io_error(method))).into_ffi()
}

/// The error of a host method added after 1.0, on a host that predates it.
fn missing_error(method: &str, since: &str) -> HostError {
    HostError::Refused(format!("this host does not offer {method} (plugin-api {since})").into())
}

/// What a host method added after 1.0 answers on a host that predates it.
fn missing<T: Send + 'static>(method: &str, since: &str) -> HostFuture<T> {
    use async_ffi::FutureExt as _;
    std::future::ready(RResult::RErr(missing_error(method, since))).into_ffi()
}

/// The host handle as a module holds it: shared and clonable.
pub type HostApiBox = HostApi_TO<RArc<()>>;

/// A constructed module, as the host holds it.
#[sabi_trait]
pub trait ModuleObj: Send + Sync + 'static {
    /// Handles one routed message.
    fn call(&self, call: Call) -> CallFuture;
    /// `onClose` of `controller` for a closing connection; `info` is `{fd, code, auth}` as JSON.
    fn on_close(&self, controller: RString, info: RString) -> HookFuture;
    /// `onReload`: the operator asked for a reload.
    fn on_reload(&self) -> HookFuture;
    /// `onShutdown`: the host is stopping.
    fn on_shutdown(&self) -> HookFuture;
    /// State to carry into the next version of this module, if any.
    fn export_state(&self) -> RResult<ROption<RString>, ModuleError>;
    /// Takes state exported by the previous version; an error refuses the new version.
    ///
    /// The last method of plugin-api 1.0. New methods go below this one, each with a
    /// default body, which the host runs for a plugin built before it existed.
    #[sabi(last_prefix_field)]
    fn import_state(&self, state: RString) -> RResult<(), ModuleError>;

    /// Runs once a version is constructed (and has imported its predecessor's
    /// state), before it serves: where a module re-arms what it needs. An error
    /// refuses the version. Since 1.1.
    fn on_start(&self) -> HookFuture {
        use async_ffi::FutureExt as _;
        std::future::ready(RResult::ROk(())).into_ffi()
    }

    /// A timer the module set fired; `payload` is the JSON text it was set with. Since 1.1.
    fn on_timer(&self, name: RString, payload: RString) -> HookFuture {
        use async_ffi::FutureExt as _;
        let _ = (name, payload);
        std::future::ready(RResult::ROk(())).into_ffi()
    }

    /// What this constructed module serves, when its config changed what `describe`
    /// declared (e.g. controllers switched off); `RNone` keeps that. Same module
    /// name. Since 1.1.
    fn configured_info(&self) -> ROption<ModuleInfo> {
        ROption::RNone
    }
}

/// A constructed module, boxed for the host.
pub type ModuleBox = ModuleObj_TO<RBox<()>>;

/// The one symbol a plugin library exports.
///
/// Fields added after 1.0 are read by the host as `Option` (`missing_field(option)`):
/// a plugin built against an older plugin-api does not have them.
#[repr(C)]
#[derive(StableAbi)]
#[sabi(kind(Prefix(prefix_ref = PluginModRef)))]
#[sabi(missing_field(option))]
pub struct PluginMod {
    /// The plugin-api major version the library was built for ([`crate::PLUGIN_API_VERSION`]).
    pub api_version: u32,
    /// The module's name, version and controllers.
    pub describe: extern "C" fn() -> RResult<ModuleInfo, RString>,
    /// Builds the module from the host handle and its `[modules.<name>]` table as JSON.
    ///
    /// The last field of plugin-api 1.0. New fields go below this one, and the
    /// plugin-api minor version is raised.
    #[sabi(last_prefix_field)]
    pub new: extern "C" fn(HostApiBox, RString) -> RResult<ModuleBox, RString>,
}

impl RootModule for PluginModRef {
    declare_root_module_statics! {PluginModRef}
    const BASE_NAME: &'static str = "mswoole_plugin";
    const NAME: &'static str = "mswoole_plugin";
    /// The plugin-api version the library was built against: the host reads it from
    /// the library's header to refuse a newer one and to decide how names are passed.
    #[cfg(not(feature = "version-ahead-fixture"))]
    const VERSION_STRINGS: VersionStrings = package_version_strings!();
    /// A plugin-api "from the future", used only to build the test suite's plugin
    /// that the host must refuse as newer than itself.
    #[cfg(feature = "version-ahead-fixture")]
    const VERSION_STRINGS: VersionStrings = VersionStrings::new("1.99.0");
}
