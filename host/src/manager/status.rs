//! What `status` answers, as a type: the manager builds it, the console prints it, and
//! ws-bench reads it (README.md, "Console and manager port").

use std::{collections::BTreeMap, time::SystemTime};

use serde::{Deserialize, Serialize};

use crate::{
    plugins::{Generation, Refusal},
    runtime::process,
};

/// The host's state, as `status` answers it (its envelope's `param`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Status {
    /// The host's process id.
    pub pid: u32,
    /// The host's version.
    pub version: String,
    /// Clients a socket serves on this node.
    pub connections: u64,
    /// Connections the registry holds for every node; `None` when it is away.
    pub registered: Option<u64>,
    /// `limits.max_connections`, resolved.
    pub max_connections: u64,
    /// Frames dropped because a client stopped reading.
    pub dropped_frames: u64,
    /// Seconds since the host started.
    pub uptime_s: u64,
    /// Resident memory, KiB.
    pub memory_kb: u64,
    /// This node's id.
    pub node: String,
    /// The live nodes sharing the registry, or why they are unknown.
    pub nodes: Nodes,
    /// The directory plugins load from.
    pub plugin_dir: String,
    /// Every loaded module.
    pub plugins: Vec<PluginStatus>,
    /// Every refused library, newest reason per file.
    pub refusals: Vec<RefusalStatus>,
}

/// The nodes sharing the registry.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Nodes {
    /// Their ids (this node's alone with the memory registry).
    Known(Vec<String>),
    /// The registry could not say.
    Unknown {
        /// Why.
        error: String,
    },
}

/// One loaded module.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PluginStatus {
    /// Its name.
    pub name: String,
    /// Its version.
    pub version: String,
    /// The plugin-api it was built against.
    pub plugin_api: String,
    /// 1 for the first version loaded, +1 for each swap.
    pub generation: u64,
    /// The file it was loaded from.
    pub file: String,
    /// The private copy that is mapped.
    pub copy: String,
    /// When it was loaded, unix seconds.
    pub loaded_at: u64,
    /// The last time a new build of its file was refused, if it was.
    pub last_refusal: Option<LastRefusal>,
    /// Its controllers and their actions.
    pub controllers: BTreeMap<String, Vec<String>>,
}

/// Why and when a file was last refused.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LastRefusal {
    /// One line: why.
    pub reason: String,
    /// When, unix seconds.
    pub at: u64,
}

/// A refused library.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RefusalStatus {
    /// The file.
    pub file: String,
    /// One line: why.
    pub reason: String,
    /// When, unix seconds.
    pub at: u64,
}

fn unix(time: SystemTime) -> u64 {
    time.duration_since(SystemTime::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

impl RefusalStatus {
    /// A refusal as `status` shows it.
    pub fn of(refusal: &Refusal) -> Self {
        RefusalStatus {
            file: refusal.file.display().to_string(),
            reason: refusal.reason.clone(),
            at: unix(refusal.at),
        }
    }
}

impl PluginStatus {
    /// A loaded version as `status` shows it, with the last refusal of its file.
    pub fn of(generation: &Generation, refusals: &[Refusal]) -> Self {
        let last_refusal = refusals
            .iter()
            .find(|refusal| refusal.file == generation.file)
            .map(|refusal| LastRefusal {
                reason: refusal.reason.clone(),
                at: unix(refusal.at),
            });
        let controllers = generation
            .spec
            .actions()
            .into_iter()
            .map(|(controller, actions)| {
                let actions = actions.into_iter().map(String::from).collect();
                (controller.to_string(), actions)
            })
            .collect();
        PluginStatus {
            name: generation.spec.name.clone(),
            version: generation.spec.version.clone(),
            plugin_api: generation.api.to_string(),
            generation: generation.number,
            file: generation.file.display().to_string(),
            copy: generation.copy().display().to_string(),
            loaded_at: unix(generation.loaded_at),
            last_refusal,
            controllers,
        }
    }
}

impl Status {
    /// The process's own figures (pid, version, memory); the rest is the caller's.
    pub fn process() -> (u32, String, u64) {
        (
            std::process::id(),
            env!("CARGO_PKG_VERSION").to_string(),
            process::resident_kib(),
        )
    }

    /// The module called `name` (case-insensitive), if it is loaded.
    pub fn plugin(&self, name: &str) -> Option<&PluginStatus> {
        self.plugins
            .iter()
            .find(|plugin| plugin.name.eq_ignore_ascii_case(name))
    }

    /// What `mswoole status` prints.
    pub fn render(&self) -> String {
        use std::fmt::Write as _;
        let mut out = String::new();
        let nodes = serde_json::to_string(&self.nodes).unwrap_or_default();
        let registered = self
            .registered
            .map_or_else(|| "null".to_string(), |n| n.to_string());
        let _ = writeln!(out, "pid          {}", self.pid);
        let _ = writeln!(out, "node         {}", self.node);
        let _ = writeln!(out, "nodes        {nodes}");
        let _ = writeln!(
            out,
            "connections  {} (max {})",
            self.connections, self.max_connections
        );
        // `registered`: connections the registry holds for every node (null when it is away).
        let _ = writeln!(out, "registered   {registered}");
        let _ = writeln!(out, "dropped      {} frames", self.dropped_frames);
        let _ = writeln!(out, "memory       {} KiB", self.memory_kb);
        let _ = writeln!(out, "uptime       {} s", self.uptime_s);
        let _ = writeln!(out, "plugin dir   {}", self.plugin_dir);
        for plugin in &self.plugins {
            let _ = writeln!(
                out,
                "plugin       {} {} generation {} loaded_at {} file {}",
                plugin.name,
                plugin.version,
                plugin.generation,
                utc(plugin.loaded_at),
                plugin.file
            );
            if let Some(refusal) = &plugin.last_refusal {
                let _ = writeln!(out, "  last refusal: {}", refusal.reason);
            }
        }
        for refusal in &self.refusals {
            let _ = writeln!(out, "refused      {}: {}", refusal.file, refusal.reason);
        }
        out
    }
}

/// Unix seconds as `2026-12-02T03:04:05Z`; the number itself if it is out of range.
fn utc(unix: u64) -> String {
    use time::format_description::well_known::Rfc3339;
    i64::try_from(unix)
        .ok()
        .and_then(|secs| time::OffsetDateTime::from_unix_timestamp(secs).ok())
        .and_then(|at| at.format(&Rfc3339).ok())
        .unwrap_or_else(|| unix.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loaded_at_reads_as_utc() {
        assert_eq!(utc(0), "1970-01-01T00:00:00Z");
        assert_eq!(utc(1_764_115_200), "2025-11-26T00:00:00Z");
        assert_eq!(utc(u64::MAX), u64::MAX.to_string());
    }

    #[test]
    fn status_reads_back_as_sent() {
        let status = Status {
            pid: 7,
            version: "0.1.0".into(),
            connections: 2,
            registered: None,
            max_connections: 16,
            dropped_frames: 0,
            uptime_s: 3,
            memory_kb: 1024,
            node: "a".into(),
            nodes: Nodes::Unknown {
                error: "registry unavailable".into(),
            },
            plugin_dir: "/p".into(),
            plugins: Vec::new(),
            refusals: Vec::new(),
        };
        let json = serde_json::to_value(&status).expect("serializes");
        assert_eq!(
            json["nodes"],
            serde_json::json!({"error": "registry unavailable"})
        );
        assert_eq!(json["registered"], serde_json::Value::Null);
        let back: Status = serde_json::from_value(json).expect("reads back");
        assert_eq!(back, status);
        assert!(status.render().contains("connections  2 (max 16)"));
    }
}
