//! README.md "Writing a module" and "Hot swap": plugins are contained (panics, timeouts), bad files are refused and
//! named, and the modules that loaded go on serving.

use std::time::{Duration, Instant};

use mswoole_tests::{json, paths, TestHost, Value, SUCCESS};

/// Sends `index.index.index` and expects the exact success reply.
async fn assert_index_serves(client: &mut mswoole_tests::Client) {
    let reply = client.call(&json!({"method": "index.index.index"})).await;
    assert_eq!(reply.text, SUCCESS);
}

/// `mswoole status --json` of a running host, parsed.
fn status_json(host: &TestHost) -> Value {
    let output = host.console("status", &["--json"]);
    output.assert_success();
    serde_json::from_str(&output.stdout)
        .unwrap_or_else(|error| panic!("status --json is not JSON ({error}): {}", output.stdout))
}

/// The `refusals` entry of `status` whose file ends with `name`.
fn refusal<'a>(status: &'a Value, name: &str) -> Option<&'a Value> {
    status["refusals"]
        .as_array()
        .unwrap_or_else(|| panic!("status without a refusals array: {status}"))
        .iter()
        .find(|entry| {
            entry["file"]
                .as_str()
                .is_some_and(|file| file.ends_with(name))
        })
}

/// The names of the loaded modules in `status`.
fn module_names(status: &Value) -> Vec<String> {
    status["plugins"]
        .as_array()
        .unwrap_or_else(|| panic!("status without a plugins array: {status}"))
        .iter()
        .map(|plugin| plugin["name"].as_str().unwrap_or_default().to_string())
        .collect()
}

#[tokio::test]
async fn a_panicking_action_is_500_and_the_connection_lives_on() {
    let host = TestHost::start("").await;
    let mut client = host.connect_user().await;
    let reply = client.call(&json!({"method": "index.debug.panic"})).await;
    reply.assert_is(500, "controllerError");
    assert!(
        !reply.text.contains("panic") && !reply.text.contains("index.debug"),
        "internal detail reached the client: {reply:?}"
    );
    assert_index_serves(&mut client).await;
    // The detail goes to the log.
    host.wait_for_log_file_line("with the panic message", |line| {
        line.contains("index.debug.panic was asked to panic")
    })
    .await;
}

#[tokio::test]
async fn a_call_over_call_timeout_ms_is_500_and_the_connection_lives_on() {
    let host = TestHost::start("[limits]\ncall_timeout_ms = 300").await;
    let mut client = host.connect_user().await;
    let started = Instant::now();
    let reply = client
        .call(&json!({"method": "index.debug.sleep", "ms": 3000}))
        .await;
    reply.assert_is(500, "controllerError");
    let waited = started.elapsed();
    assert!(
        waited >= Duration::from_millis(250) && waited < Duration::from_secs(2),
        "answered after {waited:?}"
    );
    assert_index_serves(&mut client).await;
    // The overrun call never answers a second time.
    client.expect_silence(Duration::from_millis(3200)).await;
}

#[tokio::test]
async fn a_call_within_call_timeout_ms_is_answered() {
    let host = TestHost::start("[limits]\ncall_timeout_ms = 1000").await;
    let mut client = host.connect_user().await;
    let reply = client
        .call(&json!({"method": "index.debug.sleep", "ms": 50}))
        .await;
    reply.assert_is(200, "slept");
    assert_eq!(reply.param(), Some(&json!(50)));
}

#[tokio::test]
async fn module_config_reaches_the_module() {
    let host = TestHost::start("[modules.Index]\ndebug_actions = false").await;
    let mut client = host.connect_user().await;
    let reply = client
        .call(&json!({"method": "index.debug.sleep", "ms": 5}))
        .await;
    // Off, the module does not serve the Debug controller at all (configured_info).
    reply.assert_is(404, "controllerNotFound");
}

#[tokio::test]
async fn junk_in_the_plugins_dir_is_refused_by_name_and_index_still_serves() {
    let host = TestHost::builder()
        .plugin_file("libjunk.so", "this is not a shared library\n")
        .plugin_file("README.txt", "notes about the plugins\n")
        .start()
        .await;
    let mut client = host.connect_user().await;
    assert_index_serves(&mut client).await;
    host.wait_for_line("naming libjunk.so at ERROR", |line| {
        line.contains("ERROR") && line.contains("libjunk.so")
    })
    .await;
    // Only lib*.so files are considered.
    let output = host.output();
    assert!(
        !output
            .lines()
            .any(|line| line.contains("README.txt") && line.contains("ERROR")),
        "README.txt was treated as a plugin:\n{output}"
    );

    let status = status_json(&host);
    let junk = refusal(&status, "libjunk.so")
        .unwrap_or_else(|| panic!("libjunk.so not in refusals: {status}"));
    assert!(
        junk["reason"]
            .as_str()
            .is_some_and(|reason| !reason.is_empty()),
        "{junk}"
    );
    assert!(refusal(&status, "README.txt").is_none(), "{status}");
    let mut names = module_names(&status);
    names.sort();
    assert_eq!(names, ["Index", "Live"]);
}

#[tokio::test]
async fn a_library_built_for_another_abi_is_refused_by_name_and_index_still_serves() {
    let fixture = paths::abi_mismatch_fixture();
    let host = TestHost::builder()
        .plugin_copy("libabi_mismatch_fixture.so", &fixture)
        .start()
        .await;
    let mut client = host.connect_user().await;
    assert_index_serves(&mut client).await;
    let line = host
        .wait_for_line("naming the fixture at ERROR", |line| {
            line.contains("ERROR") && line.contains("libabi_mismatch_fixture.so")
        })
        .await;
    let lower = line.to_lowercase();
    assert!(
        ["abi", "layout", "incompatible", "mismatch"]
            .iter()
            .any(|word| lower.contains(word)),
        "the refusal does not say what is wrong: {line}"
    );
    // Nothing of it is served.
    let reply = client
        .call(&json!({"method": "abimismatch.probe.probe"}))
        .await;
    reply.assert_is(404, "controllerNotFound");

    let status = status_json(&host);
    assert!(
        refusal(&status, "libabi_mismatch_fixture.so").is_some(),
        "fixture not in refusals: {status}"
    );
    assert!(
        !module_names(&status).contains(&"AbiMismatch".to_string()),
        "{status}"
    );
}

#[tokio::test]
async fn a_module_is_known_by_its_name_not_its_file_name() {
    let host = TestHost::builder()
        .no_default_plugins()
        .plugin_copy("librenamed.so", &paths::index_plugin())
        .start()
        .await;
    let mut client = host.connect_user().await;
    assert_index_serves(&mut client).await;
    let status = status_json(&host);
    assert_eq!(module_names(&status), ["Index"]);
    let file = status["plugins"][0]["file"].as_str().unwrap_or_default();
    assert!(
        file.contains("librenamed"),
        "status names the file {file:?}"
    );
    // Live is not loaded: its methods are unknown.
    client
        .call(&json!({"method": "live.user.join"}))
        .await
        .assert_is(404, "controllerNotFound");
}

#[tokio::test]
async fn a_second_library_declaring_the_same_module_is_refused() {
    let host = TestHost::builder()
        .plugin_copy("libindex_again.so", &paths::index_plugin())
        .start()
        .await;
    let mut client = host.connect_user().await;
    assert_index_serves(&mut client).await;
    let status = status_json(&host);
    let indexes = module_names(&status)
        .iter()
        .filter(|name| *name == "Index")
        .count();
    assert_eq!(indexes, 1, "{status}");
    let refused =
        refusal(&status, "libindex_again.so").or_else(|| refusal(&status, "libmswoole_index.so"));
    assert!(
        refused.is_some(),
        "neither copy of Index is in refusals: {status}"
    );
}

#[tokio::test]
async fn a_slow_call_does_not_hold_back_other_connections() {
    let host = TestHost::start("").await;
    let mut sleeper = host.connect_user().await;
    let mut other = host.connect_user().await;
    sleeper
        .send_json(&json!({"method": "index.debug.sleep", "ms": 1500}))
        .await;
    sleeper.expect_ack().await;
    let started = Instant::now();
    assert_index_serves(&mut other).await;
    assert!(
        started.elapsed() < Duration::from_millis(500),
        "waited {:?} for another connection's call",
        started.elapsed()
    );
    sleeper.expect_envelope(200, "slept").await;
}

/// A host serving one Swap variant from `libswap_fixture.so`, watch off (reloads swap it).
async fn swap_variant_host(variant: &str) -> TestHost {
    TestHost::builder()
        .config("[plugins]\nwatch = false")
        .plugin_copy(
            "libswap_fixture.so",
            &paths::fixture(&format!("variants/{variant}")),
        )
        .start()
        .await
}

/// Puts another variant in place of `libswap_fixture.so` and reloads.
fn swap_to(host: &TestHost, variant: &str) {
    let file = host.dir().plugins_dir().join("libswap_fixture.so");
    // Removed first, as cargo does: the mapped copy is never written over.
    std::fs::remove_file(&file).expect("the old file is removed");
    std::fs::copy(paths::fixture(&format!("variants/{variant}")), &file)
        .expect("the new variant is copied");
    host.console("reload", &[]).assert_success();
}

#[tokio::test]
async fn a_panicking_destructor_of_a_retired_version_is_contained_and_logged() {
    let host = swap_variant_host("libswap_drop_panic.so").await;
    let mut client = host.connect_user().await;
    let reply = client.call(&json!({"method": "swap.index.version"})).await;
    assert_eq!(reply.expect_param()["variant"], 10);
    swap_to(&host, "libswap_v1.so");
    host.wait_for_log_file_line("the destructor's panic", |line| {
        line.contains("destructor panicked") && line.contains("Swap")
    })
    .await;
    host.wait_for_line("the old version retired", |line| {
        line.contains("retired") && line.contains("generation=1")
    })
    .await;
    let reply = client.call(&json!({"method": "swap.index.version"})).await;
    assert_eq!(reply.expect_param()["variant"], 1, "the new version serves");
    assert_index_serves(&mut client).await;
}

#[tokio::test]
async fn panics_in_every_hook_are_contained_and_logged() {
    let mut host = swap_variant_host("libswap_hooks_panic.so").await;
    // onClose.
    let mut watched = host.connect_user().await;
    watched
        .call(&json!({"method": "swap.index.watch"}))
        .await
        .assert_is(200, "watching");
    watched.close(1000).await;
    host.wait_for_log_file_line("onClose's panic", |line| {
        line.contains("onClose failed") && line.contains("panics in onClose")
    })
    .await;
    // onReload (the file did not change: nothing is swapped).
    host.console("reload", &[]).assert_success();
    host.wait_for_log_file_line("onReload's panic", |line| {
        line.contains("panics in onReload")
    })
    .await;
    // export_state of the old version while a new one is swapped in: the new one starts without state.
    swap_to(&host, "libswap_v2.so");
    host.wait_for_log_file_line("export_state's panic", |line| {
        line.contains("state export failed") && line.contains("panics in export_state")
    })
    .await;
    let mut client = host.connect_user().await;
    let reply = client.call(&json!({"method": "swap.index.version"})).await;
    assert_eq!(reply.expect_param()["variant"], 2);
    // import_state of a new version that panics: refused, the serving version goes on.
    swap_to(&host, "libswap_hooks_panic.so");
    host.wait_for_log_file_line("import_state's panic", |line| {
        line.contains("plugin refused") && line.contains("panics in import_state")
    })
    .await;
    let reply = client.call(&json!({"method": "swap.index.version"})).await;
    assert_eq!(reply.expect_param()["variant"], 2);
    drop(client);
    // onShutdown: the host still stops cleanly.
    let fresh = swap_variant_host("libswap_hooks_panic.so").await;
    fresh.console("stop", &[]).assert_success();
    fresh
        .wait_for_log_file_line("onShutdown's panic", |line| {
            line.contains("panics in onShutdown")
        })
        .await;
    host.console("stop", &[]).assert_success();
    assert!(host.wait_exit(Duration::from_secs(10)).await.success());
}

#[tokio::test]
async fn a_call_over_call_timeout_ms_is_logged_with_its_module_controller_and_action() {
    let host = TestHost::start("[limits]\ncall_timeout_ms = 200").await;
    let mut client = host.connect_user().await;
    client
        .call(&json!({"method": "index.debug.sleep", "ms": 1000}))
        .await
        .assert_is(500, "controllerError");
    let line = host
        .wait_for_log_file_line("the timeout", |line| {
            line.contains("did not answer within 200 ms")
        })
        .await;
    for part in ["module=Index", "controller=Debug", "action=sleep"] {
        assert!(line.contains(part), "{part} missing from: {line}");
    }
}

#[tokio::test]
async fn a_controller_switched_off_by_config_is_neither_listed_nor_served() {
    let host = TestHost::start("[modules.Index]\ndebug_actions = false").await;
    let status = status_json(&host);
    let index = status["plugins"]
        .as_array()
        .and_then(|plugins| plugins.iter().find(|p| p["name"] == "Index"))
        .unwrap_or_else(|| panic!("Index is not loaded: {status}"));
    assert!(index["controllers"].get("Debug").is_none(), "{index}");
    assert!(index["controllers"].get("Index").is_some(), "{index}");
    let mut client = host.connect_user().await;
    client
        .call(&json!({"method": "index.debug.panic"}))
        .await
        .assert_is(404, "controllerNotFound");
    // The suite's default config switches them on: there they are listed.
    let on = TestHost::start("").await;
    assert!(status_json(&on)
        .to_string()
        .contains(r#""Debug":["panic","sleep"]"#));
}
