//! The `config/app.toml` contract (the shipped file documents every key): every section and
//! key optional with a working default; unknown keys and bad values stop start-up with a
//! one-line message naming the key.

use std::collections::BTreeMap;
use std::fmt;
use std::net::IpAddr;
use std::path::{Path, PathBuf};

use serde::Deserialize;
use serde_json::Value;

use crate::edge::auth::{Cipher, DEFAULT_KEY};

/// `[outside]`: the client-facing WebSocket listener.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Outside {
    /// Address to bind (an IP or a host name).
    pub host: String,
    /// Port to bind; 0 lets the OS pick one.
    pub port: u16,
    /// Peers whose `X-Real-IP` header is believed.
    pub trusted_proxies: Vec<IpAddr>,
}

impl Default for Outside {
    fn default() -> Self {
        Outside {
            host: "127.0.0.1".into(),
            port: 20000,
            trusted_proxies: Vec::new(),
        }
    }
}

/// `[manager]`: the operator port and console.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Manager {
    /// Address to bind; a non-loopback address requires `token`.
    pub host: String,
    /// Port to bind.
    pub port: u16,
    /// Shared secret manager clients must present; `None` means none is asked for.
    pub token: Option<String>,
    /// The largest command, WebSocket frame or HTTP body, in bytes (README.md, "HTTP API").
    pub max_message_bytes: usize,
}

impl Default for Manager {
    fn default() -> Self {
        Manager {
            host: "127.0.0.1".into(),
            port: 20001,
            token: None,
            max_message_bytes: 1024 * 1024,
        }
    }
}

/// `[heartbeat]`: dropping silent clients.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Heartbeat {
    /// Seconds without any frame from a client before it is closed (1000, `idle timeout`).
    pub idle_s: u64,
}

impl Default for Heartbeat {
    fn default() -> Self {
        Heartbeat { idle_s: 60 }
    }
}

/// `[auth]`: the handshake token (docs/PROTOCOL.md, "Tokens").
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Auth {
    /// Whether a token is required; without one a client gets the anonymous identity.
    pub required: bool,
    /// Cipher key, padded with `0` (or cut) to the cipher's key size.
    pub key: String,
    /// `3des-ecb` (MSwoole) or `des-cbc`.
    pub cipher: Cipher,
    /// IV for `des-cbc`; `None` uses the key's first 8 bytes.
    pub iv: Option<String>,
    /// Maximum token age in seconds from its `ctime`; 0 = no limit.
    pub max_age_s: u64,
}

impl Default for Auth {
    fn default() -> Self {
        Auth {
            required: true,
            key: DEFAULT_KEY.into(),
            cipher: Cipher::TripleDesEcb,
            iv: None,
            max_age_s: 0,
        }
    }
}

/// `[protocol]`: MSwoole compatibility switches.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Protocol {
    /// Send the `receiveMessage` ack before routing each message.
    pub ack: bool,
    /// HTML-escape every string value of an incoming message before routing.
    pub escape_html: bool,
}

impl Default for Protocol {
    fn default() -> Self {
        Protocol {
            ack: true,
            escape_html: true,
        }
    }
}

/// `[limits]`: resource bounds.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Limits {
    /// Largest accepted client frame in bytes; bigger ones close with 1009.
    pub max_message_bytes: usize,
    /// Most concurrent clients; 0 = open-file limit minus 64, decided at start.
    pub max_connections: usize,
    /// Frames others may queue for one client; more are dropped.
    pub outbound_queue: usize,
    /// Bytes others may queue for one client (until flushed); more close it as a slow consumer.
    pub outbound_bytes: usize,
    /// Seconds a client has to complete its HTTP request.
    pub handshake_timeout_s: u64,
    /// Milliseconds a module call may take before it is answered with 500.
    pub call_timeout_ms: u64,
    /// Timers one module may have armed at once.
    pub timers_per_module: usize,
    /// Largest answer body a module's HTTP request may receive; a larger one is a `TooLarge` error.
    pub http_max_response_bytes: usize,
    /// Messages one connection may send per second on average; 0 = no limit.
    pub messages_per_s: u32,
    /// Messages one connection may send at once above that rate (the bucket's size).
    pub messages_burst: u32,
    /// Seconds a connection may stay over its rate (answered 429) before it is closed
    /// with 1008; 0 = never closed for it.
    pub rate_close_after_s: u64,
    /// Connections one client address may hold at once; 0 = no limit.
    pub connections_per_ip: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_message_bytes: 65536,
            max_connections: 0,
            outbound_queue: 1024,
            outbound_bytes: 1 << 20,
            handshake_timeout_s: 10,
            call_timeout_ms: 5000,
            timers_per_module: 1000,
            http_max_response_bytes: 1024 * 1024,
            messages_per_s: 100,
            messages_burst: 200,
            rate_close_after_s: 10,
            connections_per_ip: 0,
        }
    }
}

/// Where the fd registry lives.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Backend {
    /// In this process: a single node, nothing to install.
    #[default]
    Memory,
    /// In Redis: shared by several nodes.
    Redis,
}

/// `[registry]`: the fd registry (README.md, "Several hosts behind one Redis").
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Registry {
    /// `memory` or `redis`.
    pub backend: Backend,
    /// Redis URL, used when `backend = "redis"`.
    pub url: String,
    /// Prefix of every Redis key.
    pub prefix: String,
    /// This node's id in fd ids; `None` = `<hostname>:<outside port>`.
    pub node_id: Option<String>,
    /// Seconds a node's marker lives in Redis without a refresh before other nodes prune it.
    pub node_ttl_s: u64,
}

impl Default for Registry {
    fn default() -> Self {
        Registry {
            backend: Backend::Memory,
            url: "redis://127.0.0.1:6379/".into(),
            prefix: "mswoole:".into(),
            node_id: None,
            node_ttl_s: 10,
        }
    }
}

/// `[plugins]`: module plugins and hot swap.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Plugins {
    /// Directory of plugin files; `None` = the directory holding the running `mswoole` executable.
    pub dir: Option<PathBuf>,
    /// Watch the directory and swap rebuilt plugins in.
    pub watch: bool,
}

impl Default for Plugins {
    fn default() -> Self {
        Plugins {
            dir: None,
            watch: true,
        }
    }
}

/// `[runtime]`: process-level settings.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Runtime {
    /// Logs, pid file and private plugin copies.
    pub dir: PathBuf,
    /// Worker threads; 0 = one per core, 1 = the current-thread runtime.
    pub workers: usize,
}

impl Default for Runtime {
    fn default() -> Self {
        Runtime {
            dir: PathBuf::from("runtime"),
            workers: 0,
        }
    }
}

/// When the log file starts a new file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Rotate {
    /// A new file every UTC day, `mswoole.YYYY-MM-DD.log`; `mswoole.log` links to it.
    #[default]
    Daily,
    /// One file, `mswoole.log`, for an outside tool (logrotate) to rotate.
    Never,
}

/// `[log]`: logging.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Log {
    /// A tracing `EnvFilter` directive, e.g. `info` or `mswoole=debug,info`.
    pub level: String,
    /// `daily` or `never`.
    pub rotate: Rotate,
    /// Daily files kept, today's included; older ones are deleted.
    pub keep: usize,
    /// Let plugins print a backtrace when they panic (symbolising a debug build's
    /// backtrace costs ~100 MB that stays); off by default (docs/MODULES.md, "Panics").
    pub plugin_backtraces: bool,
}

impl Default for Log {
    fn default() -> Self {
        Log {
            level: "info".into(),
            rotate: Rotate::Daily,
            keep: 7,
            plugin_backtraces: false,
        }
    }
}

/// The level words a `log.level` directive may use.
const LEVELS: [&str; 6] = ["off", "error", "warn", "info", "debug", "trace"];

/// Checks `log.level`: every comma-separated directive is a level word or `target=level`.
///
/// tracing's own parser takes any bare word as a target name, so `inof` would be a
/// filter that matches nothing and the host would log nothing at all.
fn log_level(level: &str) -> Result<(), String> {
    non_empty("log.level", level)?;
    for directive in level.split(',').map(str::trim) {
        let word = directive
            .rsplit_once('=')
            .map_or(directive, |(_, word)| word);
        if !LEVELS
            .iter()
            .any(|known| known.eq_ignore_ascii_case(word.trim()))
        {
            return Err(format!(
                "log.level {level:?}: {directive:?} is not a level ({}) nor target=level",
                LEVELS.join(", ")
            ));
        }
    }
    tracing_subscriber::EnvFilter::try_new(level)
        .map(drop)
        .map_err(|e| format!("log.level {level:?} is not a valid filter: {e}"))
}

pub use mswoole_io::DatabasesConfig;

/// The database every deployment has, unless the config defines it itself.
pub const DEFAULT_DATABASE: &str = "default";

/// Environment variables `MSWOOLE_DATABASES_<UPPERCASED NAME>_URL` override or define a database's URL.
const DATABASE_ENV_PREFIX: &str = "MSWOOLE_DATABASES_";
/// See [`DATABASE_ENV_PREFIX`].
const DATABASE_ENV_SUFFIX: &str = "_URL";

/// Characters allowed in a database name (it must be spelled in an environment variable name).
fn database_name_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_'
}

/// `[shutdown]`: how a stop drains its clients (README.md, "Stopping").
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Shutdown {
    /// Seconds over which a stop spreads its clients' 1012 closes, so they do not all reconnect
    /// to the other nodes in the same second; 0 closes them all at once.
    pub drain_s: u64,
}

impl Default for Shutdown {
    fn default() -> Self {
        Shutdown { drain_s: 10 }
    }
}

/// `[recovery]`: resumable sessions (README.md, "Resumable sessions").
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Recovery {
    /// Whether a client may ask for a resumable session (`resume=` in the handshake).
    pub enabled: bool,
    /// Seconds a dropped session waits for its client before its close sequence runs.
    pub window_s: u64,
    /// Seconds the frames written to a resumable connection are kept for a replay.
    pub replay_s: u64,
    /// Most frames kept per session, written or waiting for a detached client.
    pub max_frames: usize,
    /// Most bytes kept per session, written or waiting for a detached client.
    pub max_bytes: usize,
}

impl Default for Recovery {
    fn default() -> Self {
        Recovery {
            enabled: true,
            window_s: 120,
            replay_s: 60,
            max_frames: 256,
            max_bytes: 256 * 1024,
        }
    }
}

/// `[demo]`: the demo pages (README.md, "Demo"). Off by default and in the shipped file:
/// when on, anyone who reaches the outside port can mint tokens.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Demo {
    /// Serve `/demo/wall`, `/demo/phone` and the token endpoint `/demo/token`.
    pub enabled: bool,
}

/// The file as written, before paths are resolved and values checked.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
struct File {
    outside: Outside,
    manager: Manager,
    heartbeat: Heartbeat,
    auth: Auth,
    protocol: Protocol,
    limits: Limits,
    registry: Registry,
    plugins: Plugins,
    runtime: Runtime,
    log: Log,
    databases: DatabasesConfig,
    demo: Demo,
    shutdown: Shutdown,
    recovery: Recovery,
    modules: BTreeMap<String, toml::Table>,
}

/// The whole validated configuration, paths resolved.
#[derive(Debug, Clone)]
pub struct Config {
    /// Client listener.
    pub outside: Outside,
    /// Manager listener.
    pub manager: Manager,
    /// Idle timeout.
    pub heartbeat: Heartbeat,
    /// Handshake tokens.
    pub auth: Auth,
    /// Compatibility switches.
    pub protocol: Protocol,
    /// Resource bounds.
    pub limits: Limits,
    /// fd registry backend.
    pub registry: Registry,
    /// Plugin directory and watcher.
    pub plugins: Plugins,
    /// Runtime directory and threads.
    pub runtime: Runtime,
    /// Log filter.
    pub log: Log,
    /// SQL databases by name, `default` always among them, environment overrides applied.
    pub databases: DatabasesConfig,
    /// The directory relative paths resolve against (the config file's).
    pub dir: PathBuf,
    /// The demo pages.
    pub demo: Demo,
    /// The stop's drain.
    pub shutdown: Shutdown,
    /// Resumable sessions.
    pub recovery: Recovery,
    /// `[modules.<Name>]` tables handed to each module.
    pub modules: BTreeMap<String, toml::Table>,
}

/// A config that cannot be used: one line, starting with the file path when known, naming the key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError(String);

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for ConfigError {}

/// The process environment, read once per config load.
fn process_env() -> Vec<(String, String)> {
    std::env::vars_os()
        .filter_map(|(k, v)| Some((k.into_string().ok()?, v.into_string().ok()?)))
        .collect()
}

/// Characters allowed in a node id (they end up in fd ids and Redis keys).
fn node_id_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | ':' | '-')
}

/// Whether `host` only listens on this machine ("localhost" included; names are assumed public).
fn is_loopback(host: &str) -> bool {
    let host = host.trim();
    if host.eq_ignore_ascii_case("localhost") {
        return true;
    }
    let bare = host
        .strip_prefix('[')
        .and_then(|h| h.strip_suffix(']'))
        .unwrap_or(host);
    bare.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

/// 1-based line and column of byte offset `at` in `text`.
fn position(text: &str, at: usize) -> (usize, usize) {
    let before = &text.as_bytes()[..at.min(text.len())];
    let line = before.iter().filter(|&&b| b == b'\n').count() + 1;
    let line_start = before
        .iter()
        .rposition(|&b| b == b'\n')
        .map_or(0, |i| i + 1);
    // Count characters, not bytes: skip UTF-8 continuation bytes.
    let column = before[line_start..]
        .iter()
        .filter(|&&b| b & 0xC0 != 0x80)
        .count()
        + 1;
    (line, column)
}

/// Turns a TOML/serde error into one line naming the key, e.g.
/// `outside.port: invalid type: string "x", expected u16 (line 2, column 8)`.
fn describe(text: &str, err: &serde_path_to_error::Error<toml::de::Error>) -> String {
    let inner = err.inner();
    let raw = inner
        .message()
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect::<Vec<_>>()
        .join("; ");
    let key = err.path().to_string();
    let message = match raw.strip_prefix("unknown field `") {
        Some(rest) => {
            let what = if key.contains('.') {
                "unknown key"
            } else {
                "unknown section"
            };
            match rest.split_once("`, ") {
                Some((_, expected)) => format!("{what}, {expected}"),
                None => what.to_string(),
            }
        }
        None => raw,
    };
    let mut out = if key == "." {
        message
    } else {
        format!("{key}: {message}")
    };
    if let Some(span) = inner.span() {
        let (line, column) = position(text, span.start);
        out.push_str(&format!(" (line {line}, column {column})"));
    }
    out
}

/// Fails with `key must be greater than 0` when `value` is 0.
fn positive(key: &str, value: u64) -> Result<(), String> {
    if value == 0 {
        Err(format!("{key} must be greater than 0"))
    } else {
        Ok(())
    }
}

/// Fails with `key must not be empty` when `value` is blank.
fn non_empty(key: &str, value: &str) -> Result<(), String> {
    if value.trim().is_empty() {
        Err(format!("{key} must not be empty"))
    } else {
        Ok(())
    }
}

/// `usize` → `u64` for the > 0 checks (lossless on every supported target).
fn wide(v: usize) -> u64 {
    u64::try_from(v).unwrap_or(u64::MAX)
}

/// TOML value → JSON; datetimes become strings and non-finite floats `null` (JSON has neither).
fn toml_to_json(value: &toml::Value) -> Value {
    match value {
        toml::Value::String(s) => Value::String(s.clone()),
        toml::Value::Integer(i) => Value::from(*i),
        toml::Value::Float(f) => {
            serde_json::Number::from_f64(*f).map_or(Value::Null, Value::Number)
        }
        toml::Value::Boolean(b) => Value::Bool(*b),
        toml::Value::Datetime(d) => Value::String(d.to_string()),
        toml::Value::Array(items) => Value::Array(items.iter().map(toml_to_json).collect()),
        toml::Value::Table(table) => table_to_json(table),
    }
}

/// TOML table → JSON object, keys in file order.
fn table_to_json(table: &toml::Table) -> Value {
    Value::Object(
        table
            .iter()
            .map(|(k, v)| (k.clone(), toml_to_json(v)))
            .collect(),
    )
}

impl Config {
    /// Reads and validates a config file; relative paths (plugins.dir, runtime.dir) resolve against the file's directory.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| ConfigError(format!("{}: cannot read: {e}", path.display())))?;
        let dir = path
            .parent()
            .filter(|p| !p.as_os_str().is_empty())
            .unwrap_or(Path::new("."));
        // Resolve against an absolute directory so paths stay right whatever the process does later.
        let base = std::path::absolute(dir).unwrap_or_else(|_| dir.to_path_buf());
        Self::build(&text, &base).map_err(|e| ConfigError(format!("{}: {e}", path.display())))
    }

    /// Parses config text; relative paths resolve against `base` (the fuzz target's entry:
    /// docs/FUZZING.md).
    pub fn parse(text: &str, base: &Path) -> Result<Config, ConfigError> {
        Self::build(text, base).map_err(ConfigError)
    }

    /// The embedded defaults, relative paths resolved against `base`.
    pub fn defaults(base: &Path) -> Config {
        Self::resolve(File::default(), base, &process_env())
    }

    /// Parse, resolve, validate; errors without the file name.
    fn build(text: &str, base: &Path) -> Result<Config, String> {
        Self::build_with_env(text, base, &process_env())
    }

    /// [`Config::build`] with the environment given, so tests need not change the process's.
    fn build_with_env(text: &str, base: &Path, env: &[(String, String)]) -> Result<Config, String> {
        let file: File = serde_path_to_error::deserialize(toml::Deserializer::new(text))
            .map_err(|e| describe(text, &e))?;
        let config = Self::resolve(file, base, env);
        config.validate()?;
        Ok(config)
    }

    /// Makes relative paths absolute against `base`, adds the default database and applies the
    /// `MSWOOLE_DATABASES_<NAME>_URL` variables found in `env`.
    fn resolve(file: File, base: &Path, env: &[(String, String)]) -> Config {
        let mut plugins = file.plugins;
        plugins.dir = plugins.dir.map(|d| base.join(d));
        let mut runtime = file.runtime;
        runtime.dir = base.join(&runtime.dir);
        let mut databases = file.databases;
        for (key, value) in env {
            let Some(name) = key
                .strip_prefix(DATABASE_ENV_PREFIX)
                .and_then(|rest| rest.strip_suffix(DATABASE_ENV_SUFFIX))
                .filter(|name| !name.is_empty())
            else {
                continue;
            };
            // The variable names the database upper-cased: override the one it names, else define it.
            let existing = databases
                .keys()
                .find(|known| known.to_ascii_uppercase() == name)
                .cloned();
            let entry = databases
                .entry(existing.unwrap_or_else(|| name.to_ascii_lowercase()))
                .or_default();
            entry.url = value.clone();
        }
        let default = databases.entry(DEFAULT_DATABASE.into()).or_default();
        if default.url.is_empty() {
            // sqlite:///ABS when runtime.dir is absolute, which it is after the join above when base is.
            default.url = format!("sqlite://{}", runtime.dir.join("mswoole.sqlite3").display());
        }
        Config {
            outside: file.outside,
            manager: file.manager,
            heartbeat: file.heartbeat,
            auth: file.auth,
            protocol: file.protocol,
            limits: file.limits,
            registry: file.registry,
            plugins,
            runtime,
            log: file.log,
            databases,
            dir: base.to_path_buf(),
            demo: file.demo,
            shutdown: file.shutdown,
            recovery: file.recovery,
            modules: file.modules,
        }
    }

    /// The checks serde cannot express; the message names the key.
    fn validate(&self) -> Result<(), String> {
        if self.registry.node_ttl_s < 3 {
            return Err(
                "registry.node_ttl_s must be at least 3 (the marker is refreshed every 2 s)".into(),
            );
        }
        non_empty("outside.host", &self.outside.host)?;
        non_empty("manager.host", &self.manager.host)?;
        if let Some(token) = &self.manager.token {
            non_empty("manager.token", token)?;
        } else if !is_loopback(&self.manager.host) {
            return Err(format!(
                "manager.host {:?} is not a loopback address, so manager.token must be set",
                self.manager.host
            ));
        }
        positive(
            "manager.max_message_bytes",
            wide(self.manager.max_message_bytes),
        )?;
        positive("heartbeat.idle_s", self.heartbeat.idle_s)?;
        positive("recovery.window_s", self.recovery.window_s)?;
        positive("recovery.max_frames", wide(self.recovery.max_frames))?;
        positive("recovery.max_bytes", wide(self.recovery.max_bytes))?;
        non_empty("auth.key", &self.auth.key)?;
        if let Some(iv) = &self.auth.iv {
            non_empty("auth.iv", iv)?;
        }
        let limits = &self.limits;
        positive("limits.max_message_bytes", wide(limits.max_message_bytes))?;
        positive("limits.outbound_queue", wide(limits.outbound_queue))?;
        positive("limits.outbound_bytes", wide(limits.outbound_bytes))?;
        positive("limits.handshake_timeout_s", limits.handshake_timeout_s)?;
        positive("limits.call_timeout_ms", limits.call_timeout_ms)?;
        positive("limits.timers_per_module", wide(limits.timers_per_module))?;
        positive(
            "limits.http_max_response_bytes",
            wide(limits.http_max_response_bytes),
        )?;
        if limits.messages_per_s > 0 {
            positive("limits.messages_burst", u64::from(limits.messages_burst))?;
        }
        if self.registry.backend == Backend::Redis {
            non_empty("registry.url", &self.registry.url)?;
        }
        if let Some(id) = &self.registry.node_id {
            if id.is_empty() || !id.chars().all(node_id_char) {
                return Err(format!(
                    "registry.node_id {id:?} must be non-empty and use only letters, digits and . _ : -"
                ));
            }
        }
        if let Some(dir) = &self.plugins.dir {
            non_empty("plugins.dir", &dir.to_string_lossy())?;
        }
        log_level(&self.log.level)?;
        positive("log.keep", wide(self.log.keep))?;
        self.validate_databases()?;
        let mut seen: BTreeMap<String, &str> = BTreeMap::new();
        for name in self.modules.keys() {
            if let Some(other) = seen.insert(name.to_ascii_lowercase(), name) {
                return Err(format!(
                    "modules.{name}: defined twice (module names ignore case; see modules.{other})"
                ));
            }
        }
        Ok(())
    }

    /// `[databases.<name>]`: names usable in an environment variable, a URL the host can open.
    fn validate_databases(&self) -> Result<(), String> {
        let mut seen: BTreeMap<String, &str> = BTreeMap::new();
        for (name, db) in &self.databases {
            if !name.chars().all(database_name_char) {
                return Err(format!(
                    "databases.{name}: a database name uses only letters, digits and _"
                ));
            }
            if let Some(other) = seen.insert(name.to_ascii_uppercase(), name) {
                return Err(format!(
                    "databases.{name}: defined twice (names ignore case in {DATABASE_ENV_PREFIX}<NAME>{DATABASE_ENV_SUFFIX}; see databases.{other})"
                ));
            }
            if db.url.trim().is_empty() {
                return Err(format!(
                    "databases.{name}.url is required (or set {DATABASE_ENV_PREFIX}{}{DATABASE_ENV_SUFFIX})",
                    name.to_ascii_uppercase()
                ));
            }
            mswoole_io::databases::check_url(&db.url, &self.dir)
                .map_err(|e| format!("databases.{name}.url: {e}"))?;
            positive(
                &format!("databases.{name}.max_connections"),
                u64::from(db.max_connections),
            )?;
            positive(&format!("databases.{name}.timeout_ms"), db.timeout_ms)?;
        }
        Ok(())
    }

    /// `[modules.<name>]` as JSON (an empty object when absent); the lookup is case-insensitive on the module name.
    pub fn module_config(&self, name: &str) -> Value {
        self.modules
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map_or_else(
                || Value::Object(serde_json::Map::new()),
                |(_, t)| table_to_json(t),
            )
    }

    /// `registry.node_id`, or `<hostname>:<port>` with characters outside `[A-Za-z0-9._:-]` replaced by `-`.
    pub fn node_id(&self, outside_port: u16) -> String {
        if let Some(id) = &self.registry.node_id {
            return id.clone();
        }
        let host = gethostname::gethostname().to_string_lossy().into_owned();
        let host = if host.is_empty() { "localhost" } else { &host };
        format!("{host}:{outside_port}")
            .chars()
            .map(|c| if node_id_char(c) { c } else { '-' })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn base() -> PathBuf {
        PathBuf::from("/srv/ms/config")
    }

    fn parse(text: &str) -> Result<Config, ConfigError> {
        Config::parse(text, &base())
    }

    fn err(text: &str) -> String {
        match parse(text) {
            Ok(c) => panic!("expected an error, got {c:?}"),
            Err(e) => e.to_string(),
        }
    }

    #[test]
    fn empty_text_gives_defaults() {
        let c = parse("").expect("empty config");
        assert_eq!(format!("{c:?}"), format!("{:?}", Config::defaults(&base())));
        assert_eq!(c.outside.host, "127.0.0.1");
        assert_eq!(c.outside.port, 20000);
        assert_eq!(c.manager.port, 20001);
        assert_eq!(c.heartbeat.idle_s, 60);
        assert!(c.auth.required);
        assert_eq!(c.auth.key, "kfw001-websocket");
        assert_eq!(c.auth.cipher, Cipher::TripleDesEcb);
        assert!(c.protocol.ack && c.protocol.escape_html);
        assert_eq!(c.limits.max_message_bytes, 65536);
        assert_eq!(c.limits.call_timeout_ms, 5000);
        assert_eq!(c.limits.http_max_response_bytes, 1_048_576);
        assert_eq!(
            (c.limits.messages_per_s, c.limits.messages_burst),
            (100, 200)
        );
        assert_eq!(c.limits.rate_close_after_s, 10);
        assert_eq!(c.limits.connections_per_ip, 0);
        assert!(!c.log.plugin_backtraces);
        assert_eq!(c.registry.backend, Backend::Memory);
        assert_eq!(c.registry.prefix, "mswoole:");
        assert_eq!(c.plugins.dir, None);
        assert!(c.plugins.watch);
        assert_eq!(c.runtime.dir, base().join("runtime"));
        assert_eq!(c.log.level, "info");
        assert_eq!((c.log.rotate, c.log.keep), (Rotate::Daily, 7));
        assert!(c.modules.is_empty());
        assert_eq!(c.shutdown.drain_s, 10);
        assert!(c.recovery.enabled);
        assert_eq!((c.recovery.window_s, c.recovery.replay_s), (120, 60));
        assert_eq!((c.recovery.max_frames, c.recovery.max_bytes), (256, 262144));
    }

    #[test]
    fn missing_keys_and_sections_keep_defaults() {
        let c = parse("[outside]\nport = 8080\n[auth]\ncipher = \"des-cbc\"\niv = \"abc\"\n")
            .expect("partial config");
        assert_eq!(c.outside.port, 8080);
        assert_eq!(c.outside.host, "127.0.0.1");
        assert_eq!(c.auth.cipher, Cipher::DesCbc);
        assert_eq!(c.auth.iv.as_deref(), Some("abc"));
        assert_eq!(c.auth.key, "kfw001-websocket");
        assert_eq!(c.limits.outbound_queue, 1024);
        assert_eq!(c.limits.outbound_bytes, 1 << 20);
        let c = parse("[registry]\nbackend = \"redis\"\n[outside]\ntrusted_proxies = [\"10.0.0.1\", \"::1\"]\n")
            .expect("redis");
        assert_eq!(c.registry.backend, Backend::Redis);
        assert_eq!(c.outside.trusted_proxies.len(), 2);
    }

    #[test]
    fn unknown_keys_and_sections_are_named() {
        let e = err("[outside]\nhots = \"0.0.0.0\"\n");
        assert!(e.starts_with("outside.hots: unknown key"), "{e}");
        assert!(e.contains("line 2"), "{e}");
        let e = err("[outsid]\nhost = \"x\"\n");
        assert!(e.starts_with("outsid: unknown section"), "{e}");
    }

    #[test]
    fn bad_values_are_named() {
        let e = err("[outside]\nport = \"x\"\n");
        assert!(e.starts_with("outside.port: invalid type"), "{e}");
        assert!(e.contains("(line 2, column 8)"), "{e}");
        assert!(err("[auth]\ncipher = \"rot13\"\n").starts_with("auth.cipher: unknown variant"));
        assert!(err("[registry]\nbackend = \"mongo\"\n").starts_with("registry.backend:"));
        assert!(err("[outside]\ntrusted_proxies = [\"1.2.3.4\", \"zz\"]\n")
            .starts_with("outside.trusted_proxies[1]:"));
        assert!(err("[manager]\nport = 70000\n").starts_with("manager.port:"));
        assert!(err("[outside\n").contains("line 1"));
        assert_eq!(
            err("[limits]\nmax_message_bytes = 0\n"),
            "limits.max_message_bytes must be greater than 0"
        );
        assert!(err("[heartbeat]\nidle_s = 0\n").starts_with("heartbeat.idle_s"));
        assert!(err("[limits]\ncall_timeout_ms = 0\n").starts_with("limits.call_timeout_ms"));
        assert!(err("[limits]\nhttp_max_response_bytes = 0\n")
            .starts_with("limits.http_max_response_bytes"));
        assert!(parse("[limits]\nmax_connections = 0\n").is_ok());
        assert!(err("[auth]\nkey = \"\"\n").starts_with("auth.key"));
        assert!(err("[outside]\nhost = \"\"\n").starts_with("outside.host"));
        assert!(err("[log]\nlevel = \" \"\n").starts_with("log.level"));
        assert!(err("[log]\nrotate = \"weekly\"\n").starts_with("log.rotate"));
        assert!(err("[log]\nkeep = 0\n").starts_with("log.keep"));
        assert!(err("[limits]\nmessages_burst = 0\n").starts_with("limits.messages_burst"));
    }

    #[test]
    fn log_level_takes_level_words_and_directives_only() {
        for level in [
            "info",
            "WARN",
            "off",
            "mswoole=debug,info",
            "mswoole::plugins=trace",
        ] {
            assert!(
                parse(&format!("[log]\nlevel = \"{level}\"\n")).is_ok(),
                "{level}"
            );
        }
        for level in ["inof", "info,verbose", "mswoole=loud", "mswoole"] {
            let e = err(&format!("[log]\nlevel = \"{level}\"\n"));
            assert!(e.starts_with("log.level"), "{level}: {e}");
        }
        let c = parse("[log]\nrotate = \"never\"\nkeep = 3\n").expect("log section");
        assert_eq!((c.log.rotate, c.log.keep), (Rotate::Never, 3));
    }

    #[test]
    fn relative_paths_resolve_against_base() {
        let c = parse("[plugins]\ndir = \"../target/debug\"\n[runtime]\ndir = \"/var/run/ms\"\n")
            .expect("paths");
        assert_eq!(c.plugins.dir, Some(base().join("../target/debug")));
        assert_eq!(c.runtime.dir, PathBuf::from("/var/run/ms"));
    }

    #[test]
    fn node_id_default_and_validation() {
        let c = parse("").expect("defaults");
        let id = c.node_id(20000);
        assert!(id.ends_with(":20000"), "{id}");
        assert!(id.chars().all(node_id_char), "{id}");
        let c = parse("[registry]\nnode_id = \"edge-1.eu:a_b\"\n").expect("node id");
        assert_eq!(c.node_id(20000), "edge-1.eu:a_b");
        assert!(err("[registry]\nnode_id = \"a b\"\n").starts_with("registry.node_id"));
        assert!(err("[registry]\nnode_id = \"\"\n").starts_with("registry.node_id"));
    }

    #[test]
    fn manager_host_needs_token_off_loopback() {
        for host in ["127.0.0.1", "::1", "[::1]", "localhost", "127.1.2.3"] {
            assert!(
                parse(&format!("[manager]\nhost = \"{host}\"\n")).is_ok(),
                "{host}"
            );
        }
        for host in ["0.0.0.0", "10.1.2.3", "::", "example.org"] {
            let e = err(&format!("[manager]\nhost = \"{host}\"\n"));
            assert!(e.starts_with("manager.host"), "{e}");
        }
        assert!(parse("[manager]\nhost = \"0.0.0.0\"\ntoken = \"s3cret\"\n").is_ok());
        assert!(err("[manager]\ntoken = \"\"\n").starts_with("manager.token"));
    }

    #[test]
    fn module_config_is_case_insensitive_json() {
        let c = parse(
            "[modules.Live]\nrooms = 3\nratio = 0.5\ntags = [\"a\", 1]\nwhen = 1979-05-27T07:32:00Z\n\
             [modules.Live.redis]\non = true\n",
        )
        .expect("modules");
        let want = json!({
            "rooms": 3, "ratio": 0.5, "tags": ["a", 1], "when": "1979-05-27T07:32:00Z",
            "redis": {"on": true}
        });
        assert_eq!(c.module_config("live"), want);
        assert_eq!(c.module_config("LIVE"), want);
        assert_eq!(c.module_config("Index"), json!({}));
        assert!(err("[modules.index]\n[modules.Index]\n").contains("defined twice"));
        assert!(err("[modules]\nIndex = 1\n").starts_with("modules.Index:"));
    }

    #[test]
    fn shipped_file_is_the_defaults() {
        let text = include_str!("../../../config/app.toml");
        let mut c = parse(text).expect("config/app.toml must parse");
        assert_eq!(c.module_config("index"), json!({"debug_actions": false}));
        assert!(
            !c.demo.enabled,
            "the demo mints tokens: never on in the shipped file"
        );
        c.modules.clear();
        assert_eq!(format!("{c:?}"), format!("{:?}", Config::defaults(&base())));
    }

    fn parse_env(text: &str, env: &[(&str, &str)]) -> Result<Config, String> {
        let env: Vec<(String, String)> = env
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        Config::build_with_env(text, &base(), &env)
    }

    #[test]
    fn databases_default_and_named() {
        let default_url = format!(
            "sqlite://{}",
            base().join("runtime/mswoole.sqlite3").display()
        );
        let c = parse_env("", &[]).expect("defaults");
        assert_eq!(c.databases.len(), 1);
        let db = &c.databases["default"];
        assert_eq!(db.url, default_url);
        assert_eq!(
            (db.max_connections, db.timeout_ms, db.prefix.as_str()),
            (10, 3000, "")
        );
        assert_eq!(c.dir, base());
        // Naming other databases keeps `default`; unset keys keep their defaults.
        let c = parse_env(
            "[runtime]\ndir = \"/var/ms\"\n[databases.main]\nurl = \"mysql://app:pw@db:3306/live\"\ntimeout_ms = 500\nprefix = \"kfw_\"\n",
            &[],
        )
        .expect("named");
        assert_eq!(
            c.databases["default"].url,
            "sqlite:///var/ms/mswoole.sqlite3"
        );
        let main = &c.databases["main"];
        assert_eq!(
            (main.timeout_ms, main.max_connections, main.prefix.as_str()),
            (500, 10, "kfw_")
        );
        // A `default` the file defines is kept as written.
        let c = parse_env("[databases.default]\nurl = \"postgres://u@h/d\"\n", &[])
            .expect("own default");
        assert_eq!(c.databases["default"].url, "postgres://u@h/d");
        // `{:?}` never shows a password.
        let shown = format!(
            "{:?}",
            parse_env("[databases.x]\nurl = \"mysql://a:hunter2@h/d\"\n", &[]).expect("x")
        );
        assert!(
            !shown.contains("hunter2") && shown.contains("mysql://a:***@h/d"),
            "{shown}"
        );
    }

    #[test]
    fn database_urls_come_from_the_environment() {
        let c = parse_env(
            "[databases.main]\nurl = \"mysql://a:b@h/d\"\n",
            &[
                ("MSWOOLE_DATABASES_MAIN_URL", "postgres://env@h/main"),
                ("MSWOOLE_DATABASES_EXTRA_URL", "sqlite://extra.db"),
                ("MSWOOLE_DATABASES_DEFAULT_URL", "sqlite:///tmp/d.db"),
                ("MSWOOLE_DATABASES__URL", "sqlite://ignored.db"),
                ("OTHER", "x"),
            ],
        )
        .expect("env");
        assert_eq!(c.databases["main"].url, "postgres://env@h/main");
        assert_eq!(c.databases["extra"].url, "sqlite://extra.db");
        assert_eq!(c.databases["default"].url, "sqlite:///tmp/d.db");
        assert_eq!(c.databases.len(), 3);
        // A bad URL from the environment is named like one from the file.
        let e = parse_env("", &[("MSWOOLE_DATABASES_DEFAULT_URL", "sqlite::memory:")])
            .expect_err("memory");
        assert!(
            e.starts_with("databases.default.url: sqlite::memory: is refused"),
            "{e}"
        );
    }

    #[test]
    fn database_errors_name_the_key() {
        let e =
            parse_env("[databases.main]\nurl = \"mongodb://u:pw@h/d\"\n", &[]).expect_err("scheme");
        assert!(
            e.starts_with("databases.main.url: ") && !e.contains("pw@"),
            "{e}"
        );
        let e =
            parse_env("[databases.main]\nurl = \"sqlite::memory:\"\n", &[]).expect_err("memory");
        assert!(
            e.starts_with("databases.main.url: sqlite::memory: is refused"),
            "{e}"
        );
        let e = parse_env("[databases.main]\nprefix = \"x\"\n", &[]).expect_err("no url");
        assert!(
            e.starts_with("databases.main.url is required (or set MSWOOLE_DATABASES_MAIN_URL)"),
            "{e}"
        );
        let e = parse_env(
            "[databases.main]\nurl = \"sqlite://a.db\"\nmax_conections = 3\n",
            &[],
        )
        .expect_err("key");
        assert!(
            e.starts_with("databases.main.max_conections: unknown key"),
            "{e}"
        );
        let e = parse_env(
            "[databases.main]\nurl = \"sqlite://a.db\"\ntimeout_ms = \"fast\"\n",
            &[],
        )
        .expect_err("type");
        assert!(
            e.starts_with("databases.main.timeout_ms: invalid type"),
            "{e}"
        );
        let e = parse_env(
            "[databases.main]\nurl = \"sqlite://a.db\"\nmax_connections = 0\n",
            &[],
        )
        .expect_err("zero");
        assert_eq!(e, "databases.main.max_connections must be greater than 0");
        let e = parse_env(
            "[databases.main]\nurl = \"sqlite://a.db\"\ntimeout_ms = 0\n",
            &[],
        )
        .expect_err("zero");
        assert_eq!(e, "databases.main.timeout_ms must be greater than 0");
        let e = parse_env("[databases.my-db]\nurl = \"sqlite://a.db\"\n", &[]).expect_err("name");
        assert!(
            e.starts_with("databases.my-db: a database name uses only"),
            "{e}"
        );
        let e = parse_env("[databases.Main]\nurl = \"sqlite://a.db\"\n[databases.main]\nurl = \"sqlite://b.db\"\n", &[])
            .expect_err("twice");
        assert!(e.contains("defined twice"), "{e}");
    }

    #[test]
    fn load_prefixes_the_path_and_resolves_against_the_file() {
        let dir = std::env::temp_dir().join(format!("mswoole-config-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        let file = dir.join("app.toml");
        std::fs::write(&file, include_str!("../../../config/app.toml")).expect("write");
        let c = Config::load(&file).expect("load");
        assert_eq!(c.runtime.dir, dir.join("runtime"));
        std::fs::write(&file, "[limits]\nouthound_queue = 1\n").expect("write");
        let e = Config::load(&file).expect_err("bad key").to_string();
        assert!(
            e.starts_with(&format!(
                "{}: limits.outhound_queue: unknown key",
                file.display()
            )),
            "{e}"
        );
        let e = Config::load(&dir.join("missing.toml"))
            .expect_err("missing")
            .to_string();
        assert!(e.contains("missing.toml: cannot read"), "{e}");
        std::fs::remove_dir_all(&dir).expect("cleanup");
    }

    mod properties {
        //! The invariants the `config` fuzz target checks (docs/FUZZING.md).
        use proptest::prelude::*;

        use super::super::*;

        /// Sections and keys the host knows, with values of any TOML type.
        fn toml_text() -> impl Strategy<Value = String> {
            let section = prop_oneof![
                Just("outside"),
                Just("manager"),
                Just("heartbeat"),
                Just("auth"),
                Just("protocol"),
                Just("limits"),
                Just("registry"),
                Just("plugins"),
                Just("runtime"),
                Just("log"),
                Just("demo"),
                Just("databases.main"),
                Just("modules.Index"),
                Just("nope"),
            ];
            let key = prop_oneof![
                Just("host"),
                Just("port"),
                Just("token"),
                Just("idle_s"),
                Just("key"),
                Just("cipher"),
                Just("iv"),
                Just("max_message_bytes"),
                Just("outbound_queue"),
                Just("outbound_bytes"),
                Just("messages_per_s"),
                Just("messages_burst"),
                Just("backend"),
                Just("url"),
                Just("node_id"),
                Just("node_ttl_s"),
                Just("dir"),
                Just("level"),
                Just("keep"),
                Just("escape_html"),
                Just("max_connections"),
                Just("timeout_ms"),
                Just("x"),
            ];
            let value = prop_oneof![
                any::<i64>().prop_map(|n| n.to_string()),
                (0u32..100).prop_map(|n| n.to_string()),
                any::<bool>().prop_map(|b| b.to_string()),
                "[ -~]{0,12}".prop_map(|s| format!("{s:?}")),
                Just("nan".to_string()),
                Just("1979-05-27T07:32:00Z".to_string()),
                Just("[1, \"a\"]".to_string()),
                Just("{ a = 1 }".to_string()),
            ];
            prop::collection::vec((section, prop::collection::vec((key, value), 0..5)), 0..6)
                .prop_map(|sections| {
                    let mut text = String::new();
                    for (section, members) in sections {
                        text.push_str(&format!("[{section}]\n"));
                        for (key, value) in members {
                            text.push_str(&format!("{key} = {value}\n"));
                        }
                    }
                    text
                })
        }

        fn check(text: &str) -> Result<(), TestCaseError> {
            match Config::parse(text, Path::new("/srv/mswoole")) {
                Err(error) => prop_assert!(!error.to_string().contains('\n'), "{}", error),
                Ok(config) => {
                    prop_assert!(config.registry.node_ttl_s >= 3);
                    prop_assert!(config.limits.max_message_bytes > 0);
                    prop_assert!(config.limits.outbound_bytes > 0);
                    prop_assert!(config.heartbeat.idle_s > 0);
                    prop_assert!(config.runtime.dir.is_absolute());
                    prop_assert!(config.plugins.dir.as_deref().is_none_or(Path::is_absolute));
                    prop_assert!(
                        config.manager.token.is_some() || is_loopback(&config.manager.host)
                    );
                    prop_assert!(config.databases.contains_key(DEFAULT_DATABASE));
                }
            }
            Ok(())
        }

        proptest! {
            #[test]
            fn any_text_is_a_config_or_a_one_line_error(text in any::<String>()) {
                check(&text)?;
            }

            #[test]
            fn any_toml_of_the_hosts_keys_is_a_valid_config_or_a_one_line_error(text in toml_text()) {
                check(&text)?;
            }
        }
    }
}
