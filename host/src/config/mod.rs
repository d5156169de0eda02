//! The `config/app.toml` contract (the shipped file documents every key): every section and
//! key optional with a working default; unknown keys and bad values stop start-up with a
//! one-line message naming the key.
//!
//! One file per section: each holds its struct, the defaults on its fields and the checks
//! serde cannot express, so a key is read, defaulted and validated in one place. This file
//! reads the text, resolves what depends on where the file is (relative paths, the
//! `default` database) or on the environment, reads the files keys name (the JWT public
//! key), and names the key of any error.

mod auth;
mod check;
mod databases;
mod demo;
mod heartbeat;
mod jwt;
mod limits;
mod log;
mod manager;
mod outside;
mod plugins;
mod protocol;
mod recovery;
mod registry;
mod runtime;
mod shutdown;
#[cfg(test)]
mod tests;
mod until;

use std::{
    collections::BTreeMap,
    fmt,
    path::{Path, PathBuf},
};

use serde::Deserialize;
use serde_json::Value;

pub use self::{
    auth::{Auth, Cipher, DEFAULT_KEY},
    databases::{DatabasesConfig, DEFAULT_DATABASE},
    demo::Demo,
    heartbeat::Heartbeat,
    jwt::{Jwt, RsaPublicKey},
    limits::Limits,
    log::{Log, Rotate},
    manager::Manager,
    outside::Outside,
    plugins::Plugins,
    protocol::Protocol,
    recovery::Recovery,
    registry::{Backend, Registry},
    runtime::Runtime,
    shutdown::Shutdown,
    until::Until,
};

/// The whole validated configuration, paths resolved.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// `[outside]`: the client listener.
    pub outside: Outside,
    /// `[manager]`: the manager listener.
    pub manager: Manager,
    /// `[heartbeat]`: the idle timeout.
    pub heartbeat: Heartbeat,
    /// `[auth]`: handshake tokens.
    pub auth: Auth,
    /// `[protocol]`: compatibility switches.
    pub protocol: Protocol,
    /// `[limits]`: resource bounds.
    pub limits: Limits,
    /// `[registry]`: the fd registry backend.
    pub registry: Registry,
    /// `[plugins]`: the plugin directory and its watcher.
    pub plugins: Plugins,
    /// `[runtime]`: the runtime directory and threads.
    pub runtime: Runtime,
    /// `[log]`: the log filter and files.
    pub log: Log,
    /// `[databases.<name>]`: SQL databases by name, `default` always among them,
    /// environment overrides applied.
    pub databases: DatabasesConfig,
    /// `[demo]`: the demo pages.
    pub demo: Demo,
    /// `[shutdown]`: the stop's drain.
    pub shutdown: Shutdown,
    /// `[recovery]`: resumable sessions.
    pub recovery: Recovery,
    /// `[modules.<Name>]` tables handed to each module.
    pub modules: BTreeMap<String, toml::Table>,
    /// The directory relative paths resolve against (the config file's).
    #[serde(skip)]
    pub dir: PathBuf,
    /// The file this config was read from (absolute); `None` for the embedded defaults.
    /// A reload re-reads it for the token keys.
    #[serde(skip)]
    pub file: Option<PathBuf>,
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
        let mut config = Self::build(&text, &base)
            .map_err(|e| ConfigError(format!("{}: {e}", path.display())))?;
        config.file = Some(std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf()));
        Ok(config)
    }

    /// Parses config text; relative paths resolve against `base` (the fuzz target's entry:
    /// docs/FUZZING.md).
    pub fn parse(text: &str, base: &Path) -> Result<Config, ConfigError> {
        Self::build(text, base).map_err(ConfigError)
    }

    /// The embedded defaults, relative paths resolved against `base`.
    pub fn defaults(base: &Path) -> Config {
        Config::default().resolve(base, &process_env())
    }

    /// Parse, resolve, validate; errors without the file name.
    fn build(text: &str, base: &Path) -> Result<Config, String> {
        Self::build_with_env(text, base, &process_env())
    }

    /// [`Config::build`] with the environment given, so tests need not change the process's.
    fn build_with_env(text: &str, base: &Path, env: &[(String, String)]) -> Result<Config, String> {
        let config: Config = serde_path_to_error::deserialize(toml::Deserializer::new(text))
            .map_err(|e| describe(text, &e))?;
        let mut config = config.resolve(base, env);
        config.validate()?;
        config.auth.jwt.read_public_key()?;
        Ok(config)
    }

    /// Makes relative paths absolute against `base`, applies the `MSWOOLE_DATABASES_<NAME>_URL`
    /// variables found in `env` and adds the default database.
    fn resolve(mut self, base: &Path, env: &[(String, String)]) -> Config {
        self.plugins.dir = self.plugins.dir.map(|dir| base.join(dir));
        self.runtime.dir = base.join(&self.runtime.dir);
        self.auth.jwt.rs256_public_key_file = self
            .auth
            .jwt
            .rs256_public_key_file
            .map(|file| base.join(file));
        databases::resolve(&mut self.databases, env, &self.runtime.dir);
        self.dir = base.to_path_buf();
        self
    }

    /// Every section's checks; the first failure, naming its key.
    fn validate(&self) -> Result<(), String> {
        self.registry.validate()?;
        self.outside.validate()?;
        self.manager.validate()?;
        self.heartbeat.validate()?;
        self.recovery.validate()?;
        self.auth.validate()?;
        self.limits.validate()?;
        self.plugins.validate()?;
        self.log.validate()?;
        databases::validate(&self.databases, &self.dir)?;
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

    /// `registry.node_id`, or `<hostname>:<port>` (README.md, "Several hosts behind one Redis").
    pub fn node_id(&self, outside_port: u16) -> String {
        self.registry.node_id(outside_port)
    }
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
