//! `[databases.<name>]` as the host's config reads it: one database's URL, pool and deadline.

use std::{collections::BTreeMap, fmt};

use serde::Deserialize;

/// `[databases.<name>]`: one SQL database modules reach through the host (docs/DATABASES.md).
#[derive(Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DatabaseConfig {
    /// `mysql://USER:PASS@HOST:PORT/DB`, `postgres://…`, `sqlite://REL` (relative to the config
    /// file's directory) or `sqlite:///ABS`; empty while not given (only `default` has a default).
    pub url: String,
    /// Most connections the pool opens.
    pub max_connections: u32,
    /// Milliseconds one call (pool wait included) may take before it fails with `Timeout`.
    pub timeout_ms: u64,
    /// A table prefix modules may read; the host applies it nowhere.
    pub prefix: String,
}

impl Default for DatabaseConfig {
    fn default() -> Self {
        DatabaseConfig {
            url: String::new(),
            max_connections: 10,
            timeout_ms: 3000,
            prefix: String::new(),
        }
    }
}

/// Written by hand so that a `{:?}` of the config never shows a password.
impl fmt::Debug for DatabaseConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Database")
            .field("url", &super::redact(&self.url))
            .field("max_connections", &self.max_connections)
            .field("timeout_ms", &self.timeout_ms)
            .field("prefix", &self.prefix)
            .finish()
    }
}

/// Every configured database by name: what [`Databases::open`] takes.
pub type DatabasesConfig = BTreeMap<String, DatabaseConfig>;
