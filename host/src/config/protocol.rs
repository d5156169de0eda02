//! `[protocol]`: MSwoole compatibility switches.

use serde::Deserialize;
use smart_default::SmartDefault;

/// `[protocol]`.
#[derive(Debug, Clone, Deserialize, SmartDefault)]
#[serde(deny_unknown_fields, default)]
pub struct Protocol {
    /// Send the `receiveMessage` ack before routing each message.
    #[default(true)]
    pub ack: bool,
    /// HTML-escape every string value of an incoming message before routing.
    #[default(true)]
    pub escape_html: bool,
}
