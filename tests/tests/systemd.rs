//! The shipped `config/mswoole.service` and what the host tells systemd (README.md, "Deploying").

use std::{net::TcpStream, process::Command, time::Duration};

use mswoole_tests::{json, paths, unused_port, NotifySocket, TestHost, SUCCESS};

/// The shipped unit's text.
fn shipped_unit() -> String {
    let path = paths::workspace_root().join("config/mswoole.service");
    std::fs::read_to_string(&path)
        .unwrap_or_else(|error| panic!("cannot read {}: {error}", path.display()))
}

/// `key=value` lines of the unit, comments left out.
fn settings(unit: &str) -> Vec<(String, String)> {
    unit.lines()
        .map(str::trim)
        .filter(|line| !line.starts_with('#') && !line.starts_with('['))
        .filter_map(|line| line.split_once('='))
        .map(|(key, value)| (key.trim().to_string(), value.trim().to_string()))
        .collect()
}

/// The value of `key`, which must be set exactly once.
fn setting(unit: &str, key: &str) -> String {
    let values: Vec<String> = settings(unit)
        .into_iter()
        .filter(|(k, _)| k == key)
        .map(|(_, v)| v)
        .collect();
    assert_eq!(
        values.len(),
        1,
        "{key} should be set once in config/mswoole.service: {values:?}"
    );
    values[0].clone()
}

#[test]
fn the_unit_says_what_an_operator_needs() {
    let unit = shipped_unit();
    assert_eq!(setting(&unit, "Type"), "notify");
    let start = setting(&unit, "ExecStart");
    let (binary, rest) = start.split_once(' ').expect("ExecStart has arguments");
    assert!(rest.starts_with("start --config "), "{start}");
    let config = rest.trim_start_matches("start --config ").to_string();
    assert_eq!(
        setting(&unit, "ExecReload"),
        format!("{binary} reload --config {config}")
    );
    assert_eq!(
        setting(&unit, "ExecStop"),
        format!("{binary} stop --config {config}")
    );
    let nofile: u64 = setting(&unit, "LimitNOFILE")
        .parse()
        .expect("LimitNOFILE is a number");
    assert!(nofile >= 65536, "LimitNOFILE={nofile}");
    let user = setting(&unit, "User");
    assert!(!user.is_empty() && user != "root", "User={user}");
    for (key, value) in [
        ("NoNewPrivileges", "yes"),
        ("ProtectSystem", "strict"),
        ("ProtectHome", "yes"),
        ("PrivateTmp", "yes"),
    ] {
        assert_eq!(setting(&unit, key), value, "{key}");
    }
    // The only writable path is the runtime directory of that config: app.toml's
    // runtime.dir = "runtime", relative to the config file's directory.
    let config_dir = config.rsplit_once('/').map(|(dir, _)| dir).unwrap_or("");
    assert_eq!(
        setting(&unit, "ReadWritePaths"),
        format!("{config_dir}/runtime")
    );
}

#[test]
fn systemd_analyze_verifies_the_unit() {
    // The unit names /opt/mswoole/bin/mswoole; verify insists the binary exists, so the
    // copy names the one just built. Nothing else is changed.
    let unit = shipped_unit();
    let binary = setting(&unit, "ExecStart")
        .split_once(' ')
        .map(|(binary, _)| binary.to_string())
        .expect("ExecStart has arguments");
    let built = paths::mswoole_bin();
    let dir = std::env::temp_dir().join(format!("mswoole-unit-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("the unit directory is created");
    let path = dir.join("mswoole.service");
    std::fs::write(&path, unit.replace(&binary, &built.display().to_string()))
        .expect("the unit is written");
    let output = Command::new("systemd-analyze")
        .arg("verify")
        .arg(&path)
        .output()
        .unwrap_or_else(|error| {
            panic!("cannot run systemd-analyze ({error}); tests/run.sh installs it (apt-get install systemd)")
        });
    let stderr = String::from_utf8_lossy(&output.stderr);
    // verify exits 0 even for settings it ignores; every complaint names the file.
    let complaints: Vec<&str> = stderr
        .lines()
        .filter(|line| line.contains("mswoole.service"))
        .collect();
    let _ = std::fs::remove_dir_all(&dir);
    assert!(
        output.status.success() && complaints.is_empty(),
        "systemd-analyze verify complains ({}):\n{stderr}",
        output.status
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_host_says_ready_only_once_both_ports_accept() {
    let notify = NotifySocket::bind();
    let (outside, manager) = (unused_port(), unused_port());
    let dir = TestHost::builder()
        .config(&format!(
            "[outside]\nport = {outside}\n[manager]\nport = {manager}"
        ))
        .prepare();
    let path = notify.path();
    // Listen for READY=1 while the host starts, and try both ports the moment it comes.
    let ready = async {
        let datagram = notify.expect_line("READY=1", Duration::from_secs(20)).await;
        let reachable = [outside, manager]
            // Closed at once: a socket that never sends a request would hold the stop
            // below for limits.handshake_timeout_s.
            .map(|port| {
                TcpStream::connect(("127.0.0.1", port))
                    .map(drop)
                    .map_err(|e| e.to_string())
            });
        (datagram, reachable)
    };
    let env = [("NOTIFY_SOCKET", path.as_str())];
    let (host, (datagram, reachable)) = tokio::join!(dir.start_with_env(&env), ready);
    assert!(
        reachable.iter().all(Result::is_ok),
        "READY=1 came before both ports accepted connections: {reachable:?}"
    );
    assert!(datagram.contains("STATUS="), "{datagram:?}");
    // And they are served, not only bound.
    let mut client = host.connect_user().await;
    let reply = client.call(&json!({"method": "index.index.index"})).await;
    assert_eq!(reply.text, SUCCESS);
    let status = host.manager(&json!({"method": "status"})).await;
    status.assert_is(200, "statusSuccess");
    // Stopping is announced too.
    drop(client);
    host.console("stop", &[]).assert_success();
    notify
        .expect_line("STOPPING=1", Duration::from_secs(5))
        .await;
}
