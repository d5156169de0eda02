//! `[demo]`: the demo pages (README.md, "Demo"). Off by default and in the shipped file:
//! when on, anyone who reaches the outside port can mint tokens.

use serde::Deserialize;

/// `[demo]`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Demo {
    /// Serve `/demo/wall`, `/demo/phone` and the token endpoint `/demo/token`.
    pub enabled: bool,
}
