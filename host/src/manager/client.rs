//! A client of the manager port: one command per connection, as the console sends it and
//! as ws-bench reads a running host (README.md, "Console and manager port").

use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use serde_json::{Map, Value};
use tokio_tungstenite::tungstenite::Message;

use super::status::Status;

/// How long a command may take, connection included.
pub const TIMEOUT: Duration = Duration::from_secs(15);

/// A manager port at `address` (`host:port`), with its `manager.token` when one is set.
#[derive(Debug, Clone)]
pub struct ManagerClient {
    /// `host:port`.
    address: String,
    /// `manager.token`.
    token: Option<String>,
}

impl ManagerClient {
    /// The manager port at `address` (`host:port`, or a `ws://host:port/` URL).
    pub fn new(address: &str, token: Option<&str>) -> Self {
        let address = address
            .trim_start_matches("ws://")
            .trim_end_matches('/')
            .to_string();
        ManagerClient {
            address,
            token: token.map(String::from),
        }
    }

    /// Sends `command` (a JSON object with its `method`) and returns the answer's envelope
    /// when its status is 200; otherwise why not, in one line.
    pub async fn send(&self, mut command: Value) -> Result<Map<String, Value>, String> {
        if let (Some(token), Value::Object(map)) = (&self.token, &mut command) {
            map.insert("token".into(), Value::from(token.as_str()));
        }
        let address = &self.address;
        let exchange = async {
            let (mut ws, _) = tokio_tungstenite::connect_async(format!("ws://{address}/"))
                .await
                .map_err(|e| format!("the manager port {address} does not answer: {e}"))?;
            ws.send(Message::text(command.to_string()))
                .await
                .map_err(|e| format!("manager {address}: {e}"))?;
            loop {
                match ws.next().await {
                    Some(Ok(Message::Text(text))) => return Ok(text.to_string()),
                    Some(Ok(_)) => continue,
                    Some(Err(e)) => return Err(format!("manager {address}: {e}")),
                    None => return Err(format!("manager {address} closed without answering")),
                }
            }
        };
        let text = tokio::time::timeout(TIMEOUT, exchange)
            .await
            .map_err(|_| {
                format!(
                    "the manager port {address} did not answer within {}s",
                    TIMEOUT.as_secs()
                )
            })??;
        let Ok(Value::Object(reply)) = serde_json::from_str::<Value>(&text) else {
            return Err(format!(
                "manager {address} answered something that is not an envelope"
            ));
        };
        match reply.get("status").and_then(Value::as_u64) {
            Some(200) => Ok(reply),
            status => Err(format!(
                "manager refused: {} {} {}",
                status.map(|s| s.to_string()).unwrap_or_default(),
                reply.get("event").and_then(Value::as_str).unwrap_or(""),
                reply.get("info").and_then(Value::as_str).unwrap_or("")
            )),
        }
    }

    /// `{"method": method}`, its answer's `param`.
    pub async fn call(&self, method: &str) -> Result<Value, String> {
        let mut reply = self.send(serde_json::json!({ "method": method })).await?;
        Ok(reply.remove("param").unwrap_or(Value::Null))
    }

    /// `status`, read into its type.
    pub async fn status(&self) -> Result<Status, String> {
        let param = self.call("status").await?;
        serde_json::from_value(param)
            .map_err(|e| format!("manager {}: status unreadable: {e}", self.address))
    }
}
