//! README.md "Console and manager port": `mswoole start|status|reload|say|stop` as an operator runs them.

use std::time::Duration;

use mswoole_tests::{json, unused_port, TestHost, Value};

#[tokio::test]
async fn start_prints_the_ready_line_and_writes_its_runtime_files() {
    let host = TestHost::start("").await;
    let expected = format!(
        "mswoole ready outside={} manager={} pid={}",
        host.outside, host.manager, host.pid
    );
    assert!(
        host.output().lines().any(|line| line == expected),
        "no line exactly {expected:?} in:\n{}",
        host.output()
    );
    let pid = std::fs::read_to_string(host.dir().pid_file()).expect("runtime/mswoole.pid exists");
    assert_eq!(pid.trim(), host.pid.to_string());
    let manager =
        std::fs::read_to_string(host.dir().manager_file()).expect("runtime/mswoole.manager exists");
    assert_eq!(manager.trim_end_matches('\n'), host.manager.to_string());
    assert!(
        host.dir().log_file().is_file(),
        "runtime/mswoole.log is missing"
    );
}

#[tokio::test]
async fn status_shows_pid_and_plugins() {
    let host = TestHost::start("").await;
    let output = host.console("status", &[]);
    output.assert_success();
    assert!(
        output.stdout.contains(&host.pid.to_string()),
        "no pid in:\n{}",
        output.stdout
    );
    for word in ["Index", "Live", "1.0.0"] {
        assert!(
            output.stdout.contains(word),
            "no {word} in:\n{}",
            output.stdout
        );
    }
}

#[tokio::test]
async fn status_json_is_the_manager_status() {
    let host = TestHost::start("").await;
    let mut client = host.connect_user().await;
    client.fd().await;
    let output = host.console("status", &["--json"]);
    output.assert_success();
    let status: Value = serde_json::from_str(&output.stdout)
        .unwrap_or_else(|error| panic!("status --json is not JSON ({error}): {}", output.stdout));
    assert_eq!(status["pid"], json!(host.pid), "{status}");
    assert_eq!(status["connections"], json!(1), "{status}");
    assert!(status["nodes"].is_array(), "{status}");
    assert!(status["refusals"].is_array(), "{status}");
    let index = status["plugins"]
        .as_array()
        .and_then(|plugins| {
            plugins
                .iter()
                .find(|plugin| plugin["name"] == json!("Index"))
        })
        .unwrap_or_else(|| panic!("Index not listed: {status}"));
    assert_eq!(index["version"], json!("1.0.0"));
    assert!(index["generation"].is_u64(), "{index}");
}

#[tokio::test]
async fn reload_exits_0_and_clients_stay() {
    let host = TestHost::start("").await;
    let mut client = host.connect_user().await;
    host.console("reload", &[]).assert_success();
    client
        .call(&json!({"method": "index.index.index"}))
        .await
        .assert_is(200, "success");
}

#[tokio::test]
async fn say_reaches_the_clients() {
    let host = TestHost::start("").await;
    let mut client = host.connect_user().await;
    client.fd().await;
    host.console("say", &["hi"]).assert_success();
    assert_eq!(
        client.recv_text().await,
        r#"{"status":200,"event":"serverBroadcast","info":"收到服务广播内容","param":"hi"}"#
    );
}

#[tokio::test]
async fn stop_returns_after_the_host_exited() {
    let mut host = TestHost::start("").await;
    let mut client = host.connect_user().await;
    host.console("stop", &[]).assert_success();
    assert!(
        !host.dir().pid_file().exists(),
        "stop returned before the pid file was removed"
    );
    client.expect_close(1012).await;
    let status = host.wait_exit(Duration::from_secs(5)).await;
    assert_eq!(status.code(), Some(0), "exit status {status}");
}

#[tokio::test]
async fn console_commands_fail_with_one_line_when_no_host_answers() {
    // A manager port nobody listens on.
    let dir = TestHost::builder()
        .config(&format!("[manager]\nport = {}", unused_port()))
        .prepare();
    for (command, args) in [
        ("status", &[][..]),
        ("status", &["--json"][..]),
        ("reload", &[]),
        ("say", &["hi"]),
    ] {
        let output = dir.console(command, args);
        output.assert_failure_one_line();
    }
    // `manager.port = 0` and no runtime/mswoole.manager: no host was ever started here.
    let dir = TestHost::builder().prepare();
    for (command, args) in [("status", &[][..]), ("reload", &[]), ("say", &["hi"])] {
        let output = dir.console(command, args);
        output.assert_failure_one_line();
    }
}

#[test]
fn start_refuses_an_unknown_key_by_name() {
    let dir = TestHost::builder()
        .config("[outside]\nfrobnicate = 1")
        .prepare();
    let output = dir.start_expecting_exit().assert_failure();
    assert!(
        output.contains("frobnicate"),
        "the unknown key is not named:\n{output}"
    );

    let dir = TestHost::builder()
        .config("[nonsense]\nanything = 1")
        .prepare();
    let output = dir.start_expecting_exit().assert_failure();
    assert!(
        output.contains("nonsense"),
        "the unknown section is not named:\n{output}"
    );
}

#[test]
fn start_refuses_a_bad_value_by_name() {
    let dir = TestHost::builder()
        .config("[heartbeat]\nidle_s = \"soon\"")
        .prepare();
    let output = dir.start_expecting_exit().assert_failure();
    assert!(
        output.contains("idle_s"),
        "the bad key is not named:\n{output}"
    );
}

#[test]
fn start_on_a_port_in_use_says_so() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").expect("a port can be bound");
    let port = taken.local_addr().expect("a bound address").port();
    let dir = TestHost::builder()
        .config(&format!("[outside]\nhost = \"127.0.0.1\"\nport = {port}"))
        .prepare();
    let output = dir.start_expecting_exit().assert_failure();
    assert!(
        output.to_lowercase().contains("in use"),
        "does not say the port is in use:\n{output}"
    );
    assert!(
        output.contains(&port.to_string()),
        "does not name the port:\n{output}"
    );
    drop(taken);
}

/// Starts a host with a client, sends it `signal`, and checks it stops as `stop` does.
async fn assert_signal_stops(signal: &str) {
    let mut host = TestHost::start("").await;
    let mut client = host.connect_user().await;
    client.fd().await;
    host.signal(signal);
    client.expect_close(1012).await;
    let status = host.wait_exit(Duration::from_secs(10)).await;
    assert_eq!(
        status.code(),
        Some(0),
        "exit status after SIG{signal}: {status}"
    );
    assert!(
        !host.dir().pid_file().exists(),
        "the pid file is still there after SIG{signal}"
    );
}

#[tokio::test]
async fn sigterm_stops_like_stop() {
    assert_signal_stops("TERM").await;
}

#[tokio::test]
async fn sigint_stops_like_stop() {
    assert_signal_stops("INT").await;
}

#[tokio::test]
async fn sighup_reloads() {
    let host = TestHost::builder()
        .plugin_copy(
            "libswap_fixture.so",
            &mswoole_tests::paths::fixture("variants/libswap_v1.so"),
        )
        .start()
        .await;
    let mut client = host.connect_user().await;
    client.fd().await;
    let mark = host.output().len();
    host.signal("HUP");
    // The module's own line: its onReload ran (a line the host writes either way would not say so).
    host.wait_for_line_after(mark, "the module's onReload", |line| {
        line.contains("onReload v1")
    })
    .await;
    client
        .call(&json!({"method": "index.index.index"}))
        .await
        .assert_is(200, "success");
}

#[test]
fn a_public_manager_host_without_a_token_stops_start() {
    let dir = TestHost::builder()
        .config("[manager]\nhost = \"0.0.0.0\"")
        .prepare();
    let output = dir.start_expecting_exit().assert_failure();
    assert!(
        output.contains("manager.host"),
        "manager.host is not named:\n{output}"
    );
}

#[tokio::test]
async fn fds_are_never_reused_not_even_after_a_restart() {
    // The same outside port both times, so the node id is the same too.
    let port = unused_port();
    let host = TestHost::start(&format!("[outside]\nport = {port}")).await;
    let mut before = Vec::new();
    for _ in 0..3 {
        let mut client = host.connect_user().await;
        before.push(client.fd().await);
    }
    host.console("stop", &[]).assert_success();
    let host = host.into_dir().start().await;
    assert_eq!(host.outside.port(), port);
    let mut after = Vec::new();
    for _ in 0..3 {
        let mut client = host.connect_user().await;
        after.push(client.fd().await);
    }
    let mut all = before.clone();
    all.extend(after.iter().cloned());
    all.sort();
    all.dedup();
    assert_eq!(
        all.len(),
        6,
        "an fd was reused: before {before:?}, after {after:?}"
    );
}

/// The soft and hard `Max open files` of a process, from `/proc/<pid>/limits`.
fn open_file_limits(pid: u32) -> (String, String) {
    let limits = std::fs::read_to_string(format!("/proc/{pid}/limits"))
        .expect("/proc/<pid>/limits is readable");
    let line = limits
        .lines()
        .find(|line| line.starts_with("Max open files"))
        .expect("a Max open files line");
    let mut numbers = line.trim_start_matches("Max open files").split_whitespace();
    let soft = numbers.next().expect("a soft limit").to_string();
    let hard = numbers.next().expect("a hard limit").to_string();
    (soft, hard)
}

#[tokio::test]
async fn start_raises_the_open_file_limit_to_the_hard_limit_and_logs_it() {
    let host = TestHost::start("").await;
    let (soft, hard) = open_file_limits(host.pid);
    assert_eq!(soft, hard, "the soft open-file limit was not raised");
    let line = host
        .wait_for_line("about the open-file limit", |line| {
            line.to_lowercase().contains("limit") && line.contains(&hard)
        })
        .await;
    assert!(line.contains(&hard), "{line}");
}

#[tokio::test]
async fn stop_on_a_host_that_is_not_running_says_so_and_exits_0() {
    // Never started, on a fixed manager port and on port 0 (no runtime/mswoole.manager).
    let fixed = TestHost::builder()
        .config(&format!("[manager]\nport = {}", unused_port()))
        .prepare();
    for dir in [&fixed, &TestHost::builder().prepare()] {
        let output = dir.console("stop", &[]);
        output.assert_success();
        assert_eq!(output.stdout.trim(), "not running", "{output:#?}");
    }
    // Stopped already: the second stop is the same no-op (a unit file's ExecStop after
    // a `mswoole stop` by hand).
    let mut host = TestHost::start("").await;
    host.console("stop", &[]).assert_success();
    host.wait_exit(Duration::from_secs(10)).await;
    let output = host.console("stop", &[]);
    output.assert_success();
    assert_eq!(output.stdout.trim(), "not running", "{output:#?}");
}

#[tokio::test]
async fn stop_fails_when_the_pid_file_names_a_host_that_does_not_answer() {
    let host = TestHost::start("").await;
    // The manager address file points nowhere; the pid file still names the live host.
    std::fs::write(
        host.dir().manager_file(),
        format!("127.0.0.1:{}\n", unused_port()),
    )
    .expect("the manager file is rewritten");
    let reason = host
        .console("stop", &[])
        .assert_failure_one_line()
        .to_string();
    assert!(reason.contains(&host.pid.to_string()), "{reason}");
}

#[tokio::test]
async fn a_second_start_names_the_running_host() {
    let host = TestHost::start("").await;
    // Same config, same runtime directory; ports 0, so the ports do not collide.
    let output = host.dir().start_expecting_exit().assert_failure();
    assert!(
        output.contains(&format!("already running, pid {}", host.pid)),
        "{output}"
    );
    // The first host is untouched.
    let pid = std::fs::read_to_string(host.dir().pid_file()).expect("the pid file is kept");
    assert_eq!(pid.trim(), host.pid.to_string());
    let mut client = host.connect_user().await;
    client.fd().await;
}

#[tokio::test]
async fn a_stale_pid_file_does_not_stop_a_start() {
    let dir = TestHost::builder().prepare();
    // A pid that is not an mswoole: this test process.
    std::fs::write(dir.pid_file(), format!("{}\n", std::process::id())).expect("pid file");
    let host = dir.start().await;
    let pid = std::fs::read_to_string(host.dir().pid_file()).expect("the pid file");
    assert_eq!(pid.trim(), host.pid.to_string());
}

#[test]
fn start_refuses_an_unknown_log_level_by_name() {
    for level in ["inof", "mswoole=loud"] {
        let dir = TestHost::builder()
            .config(&format!("[log]\nlevel = \"{level}\""))
            .prepare();
        let output = dir.start_expecting_exit().assert_failure();
        assert!(
            output.contains("log.level") && output.contains(level),
            "{level} is not refused by name:\n{output}"
        );
    }
}

#[tokio::test]
async fn text_status_shows_load_time_in_utc_registered_and_dropped_frames() {
    let host = TestHost::start("").await;
    let mut client = host.connect_user().await;
    client.fd().await;
    let json = host.console("status", &["--json"]);
    let status: Value = serde_json::from_str(&json.stdout).expect("status --json is JSON");
    let output = host.console("status", &[]);
    output.assert_success();
    let text = &output.stdout;
    let line = |name: &str| {
        text.lines()
            .find(|line| line.starts_with(name))
            .unwrap_or_else(|| panic!("no {name} line in:\n{text}"))
            .to_string()
    };
    assert_eq!(
        line("registered"),
        format!("registered   {}", status["registered"]),
        "{text}"
    );
    assert_eq!(status["registered"], json!(1), "{status}");
    assert_eq!(
        line("dropped"),
        format!("dropped      {} frames", status["dropped_frames"]),
        "{text}"
    );
    // loaded_at is unix seconds in JSON and a UTC time in text: YYYY-MM-DDTHH:MM:SSZ.
    let plugin = line("plugin       Index");
    let loaded = plugin
        .split_whitespace()
        .skip_while(|word| *word != "loaded_at")
        .nth(1)
        .unwrap_or_else(|| panic!("no loaded_at in {plugin:?}"));
    let shape = loaded
        .chars()
        .map(|c| if c.is_ascii_digit() { '9' } else { c })
        .collect::<String>();
    assert_eq!(shape, "9999-99-99T99:99:99Z", "{plugin}");
    let unix = status["plugins"]
        .as_array()
        .and_then(|plugins| plugins.iter().find(|p| p["name"] == json!("Index")))
        .and_then(|index| index["loaded_at"].as_u64())
        .expect("Index's loaded_at in JSON");
    let now = u64::try_from(mswoole_tests::now()).expect("a time after 1970");
    assert!(now.abs_diff(unix) < 120, "loaded_at {unix}, now {now}");
}
