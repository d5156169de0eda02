//! The host's manager port as ws-bench reads it: the host's own manager client and its
//! typed `status` (`mswoole::manager`), so the console and ws-bench cannot drift apart.

use mswoole::manager::client::ManagerClient;
pub use mswoole::manager::status::Status;

/// The `status` of the manager at `url` (`ws://host:port/`).
pub async fn status(url: &str) -> Result<Status, String> {
    ManagerClient::new(url, None).status().await
}

/// What `status` says about plugins: the Index module's generation and every refusal.
#[derive(Debug, Clone, Default)]
pub struct PluginStatus {
    /// The Index module's current generation.
    pub index_generation: Option<u64>,
    /// `file: reason` of every refused plugin file.
    pub refusals: Vec<String>,
}

/// Reads the plugin part of the manager's `status`.
pub async fn plugin_status(url: &str) -> Result<PluginStatus, String> {
    let status = status(url).await?;
    Ok(PluginStatus {
        index_generation: status.plugin("index").map(|plugin| plugin.generation),
        refusals: status
            .refusals
            .iter()
            .map(|refusal| format!("{}: {}", refusal.file, refusal.reason))
            .collect(),
    })
}
