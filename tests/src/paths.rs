//! Where the built files are: `$CARGO_TARGET_DIR` or `<workspace>/target`, `debug/`.

use std::path::{Path, PathBuf};

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

/// A file of the debug build, which must exist.
fn built(name: &str) -> PathBuf {
    let path = target_dir().join("debug").join(name);
    assert!(
        path.is_file(),
        "{} is missing: {BUILD_FIRST}",
        path.display()
    );
    path
}

/// The `mswoole` binary.
pub fn mswoole_bin() -> PathBuf {
    built("mswoole")
}

/// The Index plugin, `libmswoole_index.so`.
pub fn index_plugin() -> PathBuf {
    built("libmswoole_index.so")
}

/// The Live plugin, `libmswoole_live.so`.
pub fn live_plugin() -> PathBuf {
    built("libmswoole_live.so")
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
