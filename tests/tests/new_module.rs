//! `mswoole new-module`: the crate it writes builds and passes its own test with
//! no edits, and the host serves the plugin it builds (docs/MODULES.md, "Start a
//! module"). Two real cargo builds: slow, but this is what a new author runs.

use std::{path::Path, process::Command};

use mswoole_tests::{json, paths, TestHost, VECTOR_WECHAT_USER};

/// Runs cargo in `dir` with its own target directory (never the lock of the build
/// running these tests); panics with cargo's output when it fails.
fn cargo(dir: &Path, args: &[&str]) {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let output = Command::new(cargo)
        .args(args)
        .current_dir(dir)
        .env("CARGO_TARGET_DIR", paths::target_dir().join("new-module"))
        .output()
        .expect("cargo runs");
    assert!(
        output.status.success(),
        "cargo {args:?} in {} failed:\n{}",
        dir.display(),
        String::from_utf8_lossy(&output.stderr)
    );
}

#[tokio::test]
async fn a_new_module_builds_passes_its_test_and_is_served() {
    let root = std::env::temp_dir().join(format!("mswoole-new-module-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&root);
    let crate_dir = root.join("hello");
    let made = Command::new(paths::mswoole_bin())
        .args(["new-module", "Hello", "--path"])
        .arg(&crate_dir)
        .current_dir(paths::workspace_root())
        .output()
        .expect("mswoole runs");
    assert!(
        made.status.success(),
        "new-module failed: {}",
        String::from_utf8_lossy(&made.stderr)
    );
    for file in ["Cargo.toml", "src/lib.rs", ".gitignore", "README.md"] {
        assert!(crate_dir.join(file).is_file(), "{file} was not written");
    }
    let readme = std::fs::read_to_string(crate_dir.join("README.md")).expect("README");
    assert!(
        readme.contains("cargo build --release")
            && readme.contains("cp target/release/libmswoole_hello.so")
    );

    cargo(&crate_dir, &["build", "--release"]);
    cargo(&crate_dir, &["test"]);

    let plugin = paths::target_dir().join("new-module/release/libmswoole_hello.so");
    let host = TestHost::builder()
        .plugin_copy("libmswoole_hello.so", &plugin)
        .start()
        .await;
    let mut client = host
        .connect(&format!("/live?auth={VECTOR_WECHAT_USER}"))
        .await;
    let reply = client.call(&json!({"method": "hello.index.hello"})).await;
    assert_eq!(
        reply.text,
        r#"{"status":200,"event":"hello","info":"hello"}"#
    );
    let _ = std::fs::remove_dir_all(&root);
}

#[test]
fn an_existing_directory_or_a_bad_name_is_refused() {
    let root = std::env::temp_dir().join(format!("mswoole-new-module-bad-{}", std::process::id()));
    std::fs::create_dir_all(root.join("busy")).expect("dir");
    std::fs::write(root.join("busy/keep.txt"), "mine").expect("file");
    for (name, dir) in [("Hello", "busy"), ("my-module", "fresh")] {
        let out = Command::new(paths::mswoole_bin())
            .args(["new-module", name, "--path"])
            .arg(root.join(dir))
            .output()
            .expect("mswoole runs");
        assert!(!out.status.success(), "{name} in {dir} was accepted");
        assert!(!String::from_utf8_lossy(&out.stderr).trim().is_empty());
    }
    assert_eq!(
        std::fs::read_to_string(root.join("busy/keep.txt"))
            .ok()
            .as_deref(),
        Some("mine")
    );
    let _ = std::fs::remove_dir_all(&root);
}
