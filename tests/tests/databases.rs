//! Start-up with `[databases]`: a database that is down is logged (password hidden) and never
//! stops the host; a bad URL or key stops it, naming the key; the environment defines URLs; the
//! default SQLite database exists without being configured.

use mswoole_tests::{unused_port, TestHost, SUCCESS};

/// Set for this whole test binary before any host starts: every host here inherits it.
const ENV_NAME: &str = "MSWOOLE_DATABASES_FROMENV_URL";

#[tokio::test]
async fn databases_down_at_start_are_logged_without_passwords_and_start_up_goes_on() {
    let down = unused_port();
    std::env::set_var(
        ENV_NAME,
        format!("postgres://envuser:env-hunter2@127.0.0.1:{down}/x"),
    );
    let host = TestHost::start(&format!(
        "[databases.main]\nurl = \"mysql://app:file-hunter2@127.0.0.1:{down}/live\"\ntimeout_ms = 300\n\
         [databases.fromenv]\nurl = \"sqlite://never-used.db\"\ntimeout_ms = 300\n"
    ))
    .await;
    let main = host
        .wait_for_line("warning about databases.main", |l| {
            l.contains("WARN")
                && l.contains("database unreachable at start")
                && l.contains("database=main")
        })
        .await;
    assert!(
        main.contains(&format!("app:***@127.0.0.1:{down}/live")),
        "{main}"
    );
    // The environment's URL replaced the file's for `fromenv`.
    let env = host
        .wait_for_line("warning about the env database", |l| {
            l.contains("database unreachable at start") && l.contains("database=fromenv")
        })
        .await;
    assert!(
        env.contains(&format!("envuser:***@127.0.0.1:{down}/x")),
        "{env}"
    );
    // The default database needs no config: a SQLite file under runtime.dir.
    host.wait_for_line("the default database reachable", |l| {
        l.contains("database reachable") && l.contains("database=default")
    })
    .await;
    assert!(host.dir().runtime_dir().join("mswoole.sqlite3").exists());
    // The host serves as usual.
    let mut client = host.connect_user().await;
    client.send_text(r#"{"method":"index.index.index"}"#).await;
    client.expect_ack().await;
    assert_eq!(client.recv_text().await, SUCCESS);
    let output = host.output();
    assert!(
        !output.contains("hunter2"),
        "a password was printed:\n{output}"
    );
    assert!(
        !host.log_file().contains("hunter2"),
        "a password was logged"
    );
}

#[test]
fn a_bad_database_url_or_key_stops_start_up_naming_it() {
    for (toml, key) in [
        (
            "[databases.main]\nurl = \"sqlite::memory:\"",
            "databases.main.url",
        ),
        (
            "[databases.main]\nurl = \"ftp://u:pw@h/x\"",
            "databases.main.url",
        ),
        (
            "[databases.main]\nurll = \"sqlite://a.db\"",
            "databases.main.urll",
        ),
        ("[databases.main]\nprefix = \"x_\"", "databases.main.url"),
        (
            "[databases.main]\nurl = \"sqlite://a.db\"\ntimeout_ms = -1",
            "databases.main.timeout_ms",
        ),
    ] {
        let dir = TestHost::builder().config(toml).prepare();
        let output = dir.start_expecting_exit().assert_failure();
        assert!(
            output.contains(key),
            "{key} is not named for {toml:?}:\n{output}"
        );
        assert!(
            !output.contains("u:pw"),
            "a password was printed:\n{output}"
        );
    }
}
