//! `[log]`: what the host logs and how its files rotate.

use serde::Deserialize;
use smart_default::SmartDefault;

use super::check::{non_empty, positive};

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

/// `[log]`.
#[derive(Debug, Clone, Deserialize, SmartDefault)]
#[serde(deny_unknown_fields, default)]
pub struct Log {
    /// A tracing `EnvFilter` directive, e.g. `info` or `mswoole=debug,info`.
    #[default("info".into())]
    pub level: String,
    /// `daily` or `never`.
    pub rotate: Rotate,
    /// Daily files kept, today's included; older ones are deleted.
    #[default(7)]
    pub keep: usize,
    /// Let plugins print a backtrace when they panic (symbolising a debug build's
    /// backtrace costs ~100 MB that stays); off by default (docs/MODULES.md, "Panics").
    pub plugin_backtraces: bool,
}

/// The level words a `log.level` directive may use.
const LEVELS: [&str; 6] = ["off", "error", "warn", "info", "debug", "trace"];

impl Log {
    pub(super) fn validate(&self) -> Result<(), String> {
        level(&self.level)?;
        positive("log.keep", self.keep)
    }
}

/// Checks `log.level`: every comma-separated directive is a level word or `target=level`.
///
/// tracing's own parser takes any bare word as a target name, so `inof` would be a
/// filter that matches nothing and the host would log nothing at all.
fn level(level: &str) -> Result<(), String> {
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
