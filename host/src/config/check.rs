//! The small checks every section's validation uses; each names the key it refuses.

use std::net::IpAddr;

/// Fails with `key must be greater than 0` when `value` is 0.
pub fn positive(key: &str, value: impl TryInto<u64>) -> Result<(), String> {
    match value.try_into().unwrap_or(u64::MAX) {
        0 => Err(format!("{key} must be greater than 0")),
        _ => Ok(()),
    }
}

/// Fails with `key must not be empty` when `value` is blank.
pub fn non_empty(key: &str, value: &str) -> Result<(), String> {
    match value.trim().is_empty() {
        true => Err(format!("{key} must not be empty")),
        false => Ok(()),
    }
}

/// Whether `host` only listens on this machine ("localhost" included; names are assumed public).
pub fn is_loopback(host: &str) -> bool {
    let host = host.trim();
    if host.eq_ignore_ascii_case("localhost") {
        return true;
    }
    let bare = host
        .strip_prefix('[')
        .and_then(|h| h.strip_suffix(']'))
        .unwrap_or(host);
    bare.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback())
}
