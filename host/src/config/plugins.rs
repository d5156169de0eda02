//! `[plugins]`: module plugins and hot swap.

use std::path::PathBuf;

use serde::Deserialize;
use smart_default::SmartDefault;

use super::check::non_empty;

/// `[plugins]`.
#[derive(Debug, Clone, Deserialize, SmartDefault)]
#[serde(deny_unknown_fields, default)]
pub struct Plugins {
    /// Directory of plugin files; `None` = the directory holding the running `mswoole` executable.
    pub dir: Option<PathBuf>,
    /// Watch the directory and swap rebuilt plugins in.
    #[default(true)]
    pub watch: bool,
}

impl Plugins {
    pub(super) fn validate(&self) -> Result<(), String> {
        match &self.dir {
            Some(dir) => non_empty("plugins.dir", &dir.to_string_lossy()),
            None => Ok(()),
        }
    }
}
