//! `[runtime]`: the process's directory and threads.

use std::path::PathBuf;

use serde::Deserialize;
use smart_default::SmartDefault;

/// `[runtime]`.
#[derive(Debug, Clone, Deserialize, SmartDefault)]
#[serde(deny_unknown_fields, default)]
pub struct Runtime {
    /// Logs, pid file and private plugin copies.
    #[default(PathBuf::from("runtime"))]
    pub dir: PathBuf,
    /// Worker threads; 0 = one per core, 1 = the current-thread runtime.
    pub workers: usize,
}
