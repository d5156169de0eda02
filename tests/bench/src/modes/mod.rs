//! The load generator's modes, one module each, and what they share: which server to
//! talk to and with which tokens.

pub mod fanout;
pub mod idle;
pub mod panics;
pub mod rate;
pub mod requests;
pub mod resume;
pub mod rr;
pub mod slow;
pub mod soak;
pub mod sql;
pub mod swap;

use std::time::Duration;

use clap::Args;

use crate::{
    client::Endpoint,
    token::{Claims, Codec, DEFAULT_KEY},
};

/// The server under test and how to authenticate to it.
#[derive(Debug, Clone, Args)]
pub struct TargetArgs {
    /// Server URL (`ws://HOST:PORT/PATH`; `?auth=TOKEN` is appended).
    #[arg(long, default_value = "ws://127.0.0.1:20000/")]
    pub url: Endpoint,
    /// Token key (the server's `auth.key`).
    #[arg(long, default_value = DEFAULT_KEY)]
    pub key: String,
    /// Room code written into the tokens.
    #[arg(long, default_value = "bench")]
    pub code: String,
    /// Handshakes in flight at once while connecting.
    #[arg(long, default_value_t = 256)]
    pub concurrency: usize,
    /// Ask for resumable sessions (`resume=1`): every envelope then carries a seq.
    #[arg(long)]
    pub resume: bool,
}

impl TargetArgs {
    /// Default settings for `url` (used by `suite` and `smoke`).
    pub fn new(url: Endpoint) -> Self {
        TargetArgs {
            url,
            key: DEFAULT_KEY.into(),
            code: "bench".into(),
            concurrency: 256,
            resume: false,
        }
    }

    /// A phone-user token for connection number `i` (user id `i + 1`).
    pub fn user_token(&self, codec: &Codec, i: usize) -> String {
        let token = codec.mint(&Claims::user(i as u64 + 1, &self.code));
        match self.resume {
            true => format!("{token}&resume=1"),
            false => token,
        }
    }
}

/// Seconds (possibly fractional) from the command line as a `Duration`; negative or
/// non-finite values count as zero.
pub fn seconds(s: f64) -> Duration {
    Duration::try_from_secs_f64(s).unwrap_or_default()
}

/// Parses a number of seconds for clap, refusing negative or non-finite values.
pub fn parse_seconds(text: &str) -> Result<f64, String> {
    let value: f64 = text.parse().map_err(|e| format!("{text:?}: {e}"))?;
    if value.is_finite() && value >= 0.0 {
        Ok(value)
    } else {
        Err(format!(
            "{text:?}: must be a non-negative number of seconds"
        ))
    }
}
