//! `[outside]`: the client-facing WebSocket listener.

use std::net::IpAddr;

use serde::Deserialize;
use smart_default::SmartDefault;

use super::check::non_empty;

/// `[outside]`.
#[derive(Debug, Clone, Deserialize, SmartDefault)]
#[serde(deny_unknown_fields, default)]
pub struct Outside {
    /// Address to bind (an IP or a host name).
    #[default("127.0.0.1".into())]
    pub host: String,
    /// Port to bind; 0 lets the OS pick one.
    #[default(20000)]
    pub port: u16,
    /// Peers whose `X-Real-IP` header is believed.
    pub trusted_proxies: Vec<IpAddr>,
}

impl Outside {
    pub(super) fn validate(&self) -> Result<(), String> {
        non_empty("outside.host", &self.host)
    }
}
