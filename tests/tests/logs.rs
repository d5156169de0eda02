//! The log file (README.md, "Deploying": logs): daily files kept to `log.keep`, or one
//! file that logrotate rotates and SIGUSR1 reopens; each connection's lines name its
//! fd and client address.

use std::{path::Path, time::Duration};

use mswoole_tests::{TestHost, VECTOR_WECHAT_USER};

/// Today's date in UTC as `YYYY-MM-DD`, from `date` (the host names its files so).
fn today_utc() -> String {
    let output = std::process::Command::new("date")
        .args(["-u", "+%Y-%m-%d"])
        .output()
        .expect("`date` runs");
    String::from_utf8_lossy(&output.stdout).trim().to_string()
}

/// The regular files named `mswoole.*.log` in `dir`.
fn dated_files(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .expect("the runtime directory is readable")
        .filter_map(Result::ok)
        .filter(|entry| entry.file_type().is_ok_and(|t| t.is_file()))
        .map(|entry| entry.file_name().to_string_lossy().into_owned())
        .filter(|name| name.starts_with("mswoole.") && name.ends_with(".log"))
        .collect();
    names.sort();
    names
}

#[tokio::test]
async fn daily_files_are_linked_from_mswoole_log_and_kept_to_log_keep() {
    let dir = TestHost::builder().config("[log]\nkeep = 3").prepare();
    // Earlier days' files, oldest first (the appender prunes by creation time).
    for day in 1..=6 {
        let name = format!("mswoole.2020-01-0{day}.log");
        std::fs::write(dir.runtime_dir().join(name), "old\n").expect("an old log file");
        std::thread::sleep(Duration::from_millis(20));
    }
    let host = dir.start().await;
    let runtime = host.dir().runtime_dir();
    let today = format!("mswoole.{}.log", today_utc());
    let link = std::fs::read_link(runtime.join("mswoole.log"))
        .expect("runtime/mswoole.log is a link in daily mode");
    assert_eq!(
        link.file_name().map(|n| n.to_string_lossy().into_owned()),
        Some(today.clone())
    );
    let files = dated_files(&runtime);
    assert_eq!(
        files.len(),
        3,
        "log.keep = 3 files, today's included: {files:?}"
    );
    assert!(files.contains(&today), "{files:?}");
    assert!(
        files.contains(&"mswoole.2020-01-06.log".to_string()),
        "the newest old files are the ones kept: {files:?}"
    );
    host.wait_for_log_file_line("saying the host started", |line| {
        line.contains("mswoole started")
    })
    .await;
}

#[tokio::test]
async fn sigusr1_reopens_the_log_file_after_logrotate_renamed_it() {
    let host = TestHost::start("[log]\nrotate = \"never\"").await;
    let runtime = host.dir().runtime_dir();
    let path = runtime.join("mswoole.log");
    let meta = std::fs::symlink_metadata(&path).expect("runtime/mswoole.log exists");
    assert!(meta.is_file(), "rotate = \"never\" writes a plain file");
    let mut first = host.connect_user().await;
    let first_fd = first.fd().await;
    host.wait_for_log_file_line("with the first connection", |line| {
        line.contains("connected") && line.contains(&first_fd)
    })
    .await;

    // What logrotate does without copytruncate: rename, then signal.
    let rotated = runtime.join("mswoole.log.1");
    std::fs::rename(&path, &rotated).expect("the log file is renamed");
    host.signal("USR1");
    host.wait_for_log_file_line("saying the log file was reopened", |line| {
        line.contains("reopened")
    })
    .await;
    let mut second = host.connect_user().await;
    let second_fd = second.fd().await;
    host.wait_for_log_file_line("with the second connection", |line| {
        line.contains("connected") && line.contains(&second_fd)
    })
    .await;
    let old = std::fs::read_to_string(&rotated).expect("the rotated file");
    assert!(old.contains(&first_fd), "{old}");
    assert!(
        !old.contains(&second_fd),
        "lines after SIGUSR1 went to the renamed file:\n{old}"
    );
    // The host is still serving, and said nothing about a failure.
    second.send_text("2").await;
    assert_eq!(second.recv_text().await, "3");
    assert!(!host.output().contains("ERROR"), "{}", host.output());
}

#[tokio::test]
async fn a_connection_logs_its_address_at_info_when_it_starts_and_ends() {
    let host = TestHost::start("").await;
    let mut client = host.connect_user().await;
    let fd = client.fd().await;
    client.close(1000).await;
    for (what, word) in [("connected", "connected"), ("disconnected", "disconnected")] {
        let line = host
            .wait_for_log_file_line(what, |line| line.contains(word) && line.contains(&fd))
            .await;
        assert!(line.contains(" INFO "), "{line}");
        assert!(line.contains("ip=127.0.0.1"), "{line}");
        assert!(!line.contains(VECTOR_WECHAT_USER), "{line}");
    }
}

#[tokio::test]
async fn switching_to_daily_keeps_the_file_written_before() {
    let host = TestHost::start("[log]\nrotate = \"never\"").await;
    let mut client = host.connect_user().await;
    let fd = client.fd().await;
    host.wait_for_log_file_line("with the connection", |line| line.contains(&fd))
        .await;
    drop(client);
    host.console("stop", &[]).assert_success();
    let dir = host.into_dir();
    let runtime = dir.runtime_dir();
    let mut config = std::fs::read_to_string(dir.config_path()).expect("app.toml");
    config = config.replace("rotate = \"never\"", "rotate = \"daily\"");
    dir.write_config(&config);
    let host = dir.start().await;
    assert!(
        std::fs::symlink_metadata(runtime.join("mswoole.log"))
            .expect("runtime/mswoole.log")
            .file_type()
            .is_symlink(),
        "daily mode links mswoole.log"
    );
    let kept: Vec<String> = dated_files(&runtime)
        .into_iter()
        .filter(|name| {
            std::fs::read_to_string(runtime.join(name)).is_ok_and(|text| text.contains(&fd))
        })
        .collect();
    assert_eq!(
        kept.len(),
        1,
        "the lines written before the switch are gone: {:?}",
        dated_files(&runtime)
    );
    drop(host);
}
