//! `/mswoole.js`: the browser client the host serves (README.md, "Browser client").
//!
//! One dependency-free file, embedded in the binary, so a page needs nothing but the
//! host: `<script src="/mswoole.js">` defines the global `Mswoole`; `/mswoole.mjs` is the
//! same code with ES module exports (`import { Mswoole } from "/mswoole.mjs"`). It speaks
//! the protocol of docs/PROTOCOL.md: heartbeat, reconnect with backoff and full jitter,
//! and resumable sessions.

/// The classic script.
pub const SCRIPT: &str = include_str!("browser/mswoole.js");

/// The ES module: the script plus its exports.
pub const MODULE: &str = concat!(
    include_str!("browser/mswoole.js"),
    "\nconst Mswoole = globalThis.Mswoole;\nexport { Mswoole };\nexport default Mswoole;\n"
);

/// The script or module at `path`, with its content type.
pub fn file(path: &str) -> Option<&'static str> {
    match path {
        "/mswoole.js" => Some(SCRIPT),
        "/mswoole.mjs" => Some(MODULE),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_module_is_the_script_with_exports() {
        assert!(MODULE.starts_with(SCRIPT));
        assert!(MODULE.contains("export { Mswoole }"));
        assert!(
            !SCRIPT.contains("\nexport "),
            "a classic script cannot export"
        );
        assert!(!SCRIPT.contains("http://") && !SCRIPT.contains("https://"));
    }
}
