//! Whether a panicking plugin may print a backtrace: `[log] plugin_backtraces`.
//!
//! Why: each plugin carries its own copy of std, and that copy decides on its own,
//! from `RUST_BACKTRACE` / `RUST_LIB_BACKTRACE` in the process environment, whether
//! its panics print a backtrace. Symbolising one loads the plugin's debug info into
//! memory that is never given back, not even when the version is unloaded: one panic
//! in a debug build with `RUST_BACKTRACE=1` took the host from 8 MB to 112 MB, and
//! every swapped-in version that panicked would pay it again. The host's panic hook
//! does not see plugin panics, so the environment is the one lever. The panic message
//! itself is always logged (`call failed: module panicked: …`); see docs/MODULES.md,
//! "Panics".
//!
//! How: at start, before any thread exists, the host sets both variables to `0`
//! unless `plugin_backtraces = true`, in which case it leaves the operator's
//! environment as it is. The host's own backtraces (it never panics on input, but a
//! bug is a bug) keep following the environment it was started with: when that asked
//! for them, its panic hook prints one.

use std::backtrace::Backtrace;

/// The environment variables std reads to decide on backtraces.
const VARIABLES: [&str; 2] = ["RUST_BACKTRACE", "RUST_LIB_BACKTRACE"];

/// Applies the policy; call it first thing in `start`, while the process has one thread.
pub fn apply(plugin_backtraces: bool) {
    if plugin_backtraces {
        return;
    }
    let host_wanted = std::env::var("RUST_BACKTRACE").is_ok_and(|value| value != "0");
    for variable in VARIABLES {
        // Safe in edition 2021, and sound here: no other thread reads the environment yet.
        std::env::set_var(variable, "0");
    }
    if host_wanted {
        let default = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            default(info);
            eprintln!("host backtrace:\n{}", Backtrace::force_capture());
        }));
    }
}
