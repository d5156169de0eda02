//! Where the built files are: `$CARGO_TARGET_DIR` or `<workspace>/target`, `debug/`.
//!
//! `cargo test` builds this crate, not the host and the plugins the suite starts: after
//! an edit, the suite would test whatever binary the last `cargo build` left. So every
//! built file is checked against the sources it is built from, and a test refuses to
//! run against one that is older than them (tests/run.sh builds first).

use std::{
    path::{Path, PathBuf},
    sync::OnceLock,
    time::SystemTime,
};

/// The advice every "file missing" panic gives.
const BUILD_FIRST: &str = "run `cargo build --workspace` first (tests/run.sh does)";

/// The workspace root (the parent of this crate).
pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("the tests crate sits inside the workspace")
        .to_path_buf()
}

/// The cargo target directory: `$CARGO_TARGET_DIR` (relative to the workspace) or `<workspace>/target`.
pub fn target_dir() -> PathBuf {
    match std::env::var_os("CARGO_TARGET_DIR") {
        Some(dir) if !dir.is_empty() => workspace_root().join(dir),
        _ => workspace_root().join("target"),
    }
}

/// The workspace directories whose sources go into the host binary.
const HOST_SOURCES: [&str; 4] = ["host", "core", "io", "plugin-api"];

/// A file of the debug build, which must exist and be newer than every file of its
/// `sources` (directories of the workspace). The workspace's `Cargo.toml` and
/// `Cargo.lock` are not compared: cargo rewrites or merges touch them without a
/// change that relinks every library (`cargo package` does), and a dependency that
/// did change is rebuilt by `cargo build` anyway.
fn built(name: &str, sources: &[&str]) -> PathBuf {
    let path = target_dir().join("debug").join(name);
    fresh(&path, sources, BUILD_FIRST);
    path
}

/// Asserts that the built file `path` exists and is newer than every file of its
/// `sources`; `advice` says how to build it.
fn fresh(path: &Path, sources: &[&str], advice: &str) {
    assert!(path.is_file(), "{} is missing: {advice}", path.display());
    let built_at = modified(path).unwrap_or(SystemTime::UNIX_EPOCH);
    let root = workspace_root();
    let newest = sources
        .iter()
        .filter_map(|dir| newest_source(&root.join(dir)))
        .max();
    if let Some((at, source)) = newest {
        assert!(
            at <= built_at,
            "{} is older than {}: the suite would test a stale build; {advice}",
            path.display(),
            source.display()
        );
    }
}

/// When `path` was last modified.
fn modified(path: &Path) -> Option<SystemTime> {
    path.metadata().and_then(|m| m.modified()).ok()
}

/// The newest source under `dir` (skipping `target`): `.rs`, `Cargo.toml`, and the
/// `.html`/`.js` files the host embeds (its demo pages), with its time.
fn newest_source(dir: &Path) -> Option<(SystemTime, PathBuf)> {
    let mut newest: Option<(SystemTime, PathBuf)> = None;
    let mut pending = vec![dir.to_path_buf()];
    while let Some(dir) = pending.pop() {
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            let name = entry.file_name();
            if path.is_dir() {
                if name != "target" {
                    pending.push(path);
                }
            } else if path
                .extension()
                .is_some_and(|ext| ext == "rs" || ext == "html" || ext == "js")
                || name == "Cargo.toml"
            {
                if let Some(at) = modified(&path) {
                    if newest.as_ref().is_none_or(|(time, _)| at > *time) {
                        newest = Some((at, path));
                    }
                }
            }
        }
    }
    newest
}

/// The `mswoole` binary, checked once per test process.
pub fn mswoole_bin() -> PathBuf {
    static CHECKED: OnceLock<PathBuf> = OnceLock::new();
    CHECKED
        .get_or_init(|| built("mswoole", &HOST_SOURCES))
        .clone()
}

/// The Index plugin, `libmswoole_index.so`, checked once per test process.
pub fn index_plugin() -> PathBuf {
    static CHECKED: OnceLock<PathBuf> = OnceLock::new();
    CHECKED
        .get_or_init(|| built("libmswoole_index.so", &["plugins/index", "plugin-api"]))
        .clone()
}

/// The Live plugin, `libmswoole_live.so`, checked once per test process.
pub fn live_plugin() -> PathBuf {
    static CHECKED: OnceLock<PathBuf> = OnceLock::new();
    CHECKED
        .get_or_init(|| built("libmswoole_live.so", &["plugins/live", "plugin-api"]))
        .clone()
}

/// The Vote module, `libmswoole_vote.so`, built the way an outside author builds it:
/// `cargo build --release --manifest-path examples/vote/Cargo.toml` into its own
/// `examples/vote/target/release/` (tests/run.sh does). Checked once per test process,
/// like the workspace's plugins, against its sources and plugin-api's.
pub fn vote_plugin() -> PathBuf {
    static CHECKED: OnceLock<PathBuf> = OnceLock::new();
    CHECKED
        .get_or_init(|| {
            let path = workspace_root().join("examples/vote/target/release/libmswoole_vote.so");
            fresh(
                &path,
                &["examples/vote", "plugin-api"],
                "run `cargo build --release --manifest-path examples/vote/Cargo.toml` first \
                 (tests/run.sh does)",
            );
            path
        })
        .clone()
}

/// The plugin built against an incompatible plugin-api (`tests/fixtures/abi-mismatch`).
pub fn abi_mismatch_fixture() -> PathBuf {
    let path = target_dir().join("fixtures/debug/libabi_mismatch_fixture.so");
    assert!(
        path.is_file(),
        "{} is missing: build it with `cargo build --manifest-path tests/fixtures/abi-mismatch/Cargo.toml \
         --target-dir target/fixtures` (tests/run.sh does)",
        path.display()
    );
    path
}

/// A fixture library built by tests/run.sh into `target/fixtures/`, e.g.
/// `debug/liblegacy_fixture.so` or `variants/libswap_v1.so`.
pub fn fixture(relative: &str) -> PathBuf {
    let path = target_dir().join("fixtures").join(relative);
    assert!(
        path.is_file(),
        "{} is missing: tests/run.sh builds the fixtures",
        path.display()
    );
    path
}
