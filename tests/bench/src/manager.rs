//! A minimal client of the host's manager port (docs/PROTOCOL.md, "Manager commands"): one command per connection.

use futures_util::{SinkExt, StreamExt};
use serde_json::Value;
use tokio_tungstenite::{connect_async, tungstenite::Message};

/// How long a manager command may take.
const TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

/// Sends `{"method": method}` to the manager at `url` and returns its envelope.
pub async fn command(url: &str, method: &str) -> Result<Value, String> {
    let exchange = async {
        let (mut ws, _) = connect_async(url)
            .await
            .map_err(|e| format!("manager {url}: {e}"))?;
        let body = serde_json::json!({ "method": method }).to_string();
        ws.send(Message::text(body))
            .await
            .map_err(|e| format!("manager {url}: {e}"))?;
        while let Some(frame) = ws.next().await {
            if let Message::Text(text) = frame.map_err(|e| format!("manager {url}: {e}"))? {
                return serde_json::from_str(&text)
                    .map_err(|e| format!("manager {url}: answer is not JSON: {e}"));
            }
        }
        Err(format!("manager {url}: closed without an answer"))
    };
    tokio::time::timeout(TIMEOUT, exchange)
        .await
        .map_err(|_| format!("manager {url}: no answer within {TIMEOUT:?}"))?
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
    let status = command(url, "status").await?;
    let param = &status["param"];
    let index_generation = param["plugins"]
        .as_array()
        .and_then(|plugins| {
            plugins.iter().find(|p| {
                p["name"]
                    .as_str()
                    .is_some_and(|n| n.eq_ignore_ascii_case("index"))
            })
        })
        .and_then(|p| p["generation"].as_u64());
    let refusals = param["refusals"]
        .as_array()
        .map(|list| {
            list.iter()
                .map(|r| {
                    format!(
                        "{}: {}",
                        r["file"].as_str().unwrap_or("?"),
                        r["reason"].as_str().unwrap_or("?")
                    )
                })
                .collect()
        })
        .unwrap_or_default();
    Ok(PluginStatus {
        index_generation,
        refusals,
    })
}
