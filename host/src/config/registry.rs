//! `[registry]`: the fd registry (README.md, "Several hosts behind one Redis").

use serde::Deserialize;
use smart_default::SmartDefault;

use super::check::non_empty;

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

/// `[registry]`.
#[derive(Debug, Clone, Deserialize, SmartDefault)]
#[serde(deny_unknown_fields, default)]
pub struct Registry {
    /// `memory` or `redis`.
    pub backend: Backend,
    /// Redis URL, used when `backend = "redis"`.
    #[default("redis://127.0.0.1:6379/".into())]
    pub url: String,
    /// Prefix of every Redis key.
    #[default("mswoole:".into())]
    pub prefix: String,
    /// This node's id in fd ids; `None` = `<hostname>:<outside port>`.
    pub node_id: Option<String>,
    /// Seconds a node's marker lives in Redis without a refresh before other nodes prune it.
    #[default(10)]
    pub node_ttl_s: u64,
}

/// Characters allowed in a node id (they end up in fd ids and Redis keys).
pub fn node_id_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | ':' | '-')
}

impl Registry {
    pub(super) fn validate(&self) -> Result<(), String> {
        if self.node_ttl_s < 3 {
            return Err(
                "registry.node_ttl_s must be at least 3 (the marker is refreshed every 2 s)".into(),
            );
        }
        if self.backend == Backend::Redis {
            non_empty("registry.url", &self.url)?;
        }
        match &self.node_id {
            Some(id) if id.is_empty() || !id.chars().all(node_id_char) => Err(format!(
                "registry.node_id {id:?} must be non-empty and use only letters, digits and . _ : -"
            )),
            _ => Ok(()),
        }
    }

    /// `node_id`, or `<hostname>:<port>` with characters outside `[A-Za-z0-9._:-]` replaced by `-`.
    pub fn node_id(&self, outside_port: u16) -> String {
        if let Some(id) = &self.node_id {
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
