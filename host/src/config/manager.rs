//! `[manager]`: the operator port and console (README.md, "Console and manager port").

use serde::Deserialize;
use smart_default::SmartDefault;

use super::check::{is_loopback, non_empty, positive};

/// `[manager]`.
#[derive(Debug, Clone, Deserialize, SmartDefault)]
#[serde(deny_unknown_fields, default)]
pub struct Manager {
    /// Address to bind; a non-loopback address requires `token`.
    #[default("127.0.0.1".into())]
    pub host: String,
    /// Port to bind.
    #[default(20001)]
    pub port: u16,
    /// Shared secret manager clients must present; `None` means none is asked for.
    pub token: Option<String>,
    /// The largest command, WebSocket frame or HTTP body, in bytes (README.md, "HTTP API").
    #[default(1024 * 1024)]
    pub max_message_bytes: usize,
}

impl Manager {
    pub(super) fn validate(&self) -> Result<(), String> {
        non_empty("manager.host", &self.host)?;
        match &self.token {
            Some(token) => non_empty("manager.token", token)?,
            None if !is_loopback(&self.host) => {
                return Err(format!(
                    "manager.host {:?} is not a loopback address, so manager.token must be set",
                    self.host
                ))
            }
            None => {}
        }
        positive("manager.max_message_bytes", self.max_message_bytes)
    }
}
