//! `[databases.<name>]`: the SQL databases modules reach through the host
//! (docs/DATABASES.md). `default` always exists: SQLite in `runtime.dir` unless the
//! file or the environment says otherwise.

use std::{collections::BTreeMap, path::Path};

use super::check::positive;

pub use mswoole_io::DatabasesConfig;

/// The database every deployment has, unless the config defines it itself.
pub const DEFAULT_DATABASE: &str = "default";

/// Environment variables `MSWOOLE_DATABASES_<UPPERCASED NAME>_URL` override or define a database's URL.
pub const ENV_PREFIX: &str = "MSWOOLE_DATABASES_";
/// See [`ENV_PREFIX`].
pub const ENV_SUFFIX: &str = "_URL";

/// Characters allowed in a database name (it must be spelled in an environment variable name).
fn name_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_'
}

/// Applies the `MSWOOLE_DATABASES_<NAME>_URL` variables found in `env`, then gives `default`
/// its SQLite file in `runtime_dir` when nothing named its URL.
pub(super) fn resolve(
    databases: &mut DatabasesConfig,
    env: &[(String, String)],
    runtime_dir: &Path,
) {
    for (key, value) in env {
        let Some(name) = key
            .strip_prefix(ENV_PREFIX)
            .and_then(|rest| rest.strip_suffix(ENV_SUFFIX))
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
        // sqlite:///ABS when runtime.dir is absolute, which it is once resolved against the file.
        default.url = format!("sqlite://{}", runtime_dir.join("mswoole.sqlite3").display());
    }
}

/// Names usable in an environment variable, a URL the host can open (relative SQLite paths
/// against `dir`), pools and deadlines above 0.
pub(super) fn validate(databases: &DatabasesConfig, dir: &Path) -> Result<(), String> {
    let mut seen: BTreeMap<String, &str> = BTreeMap::new();
    for (name, db) in databases {
        if !name.chars().all(name_char) {
            return Err(format!(
                "databases.{name}: a database name uses only letters, digits and _"
            ));
        }
        if let Some(other) = seen.insert(name.to_ascii_uppercase(), name) {
            return Err(format!(
                "databases.{name}: defined twice (names ignore case in {ENV_PREFIX}<NAME>{ENV_SUFFIX}; see databases.{other})"
            ));
        }
        if db.url.trim().is_empty() {
            return Err(format!(
                "databases.{name}.url is required (or set {ENV_PREFIX}{}{ENV_SUFFIX})",
                name.to_ascii_uppercase()
            ));
        }
        mswoole_io::databases::check_url(&db.url, dir)
            .map_err(|e| format!("databases.{name}.url: {e}"))?;
        positive(
            &format!("databases.{name}.max_connections"),
            db.max_connections,
        )?;
        positive(&format!("databases.{name}.timeout_ms"), db.timeout_ms)?;
    }
    Ok(())
}
