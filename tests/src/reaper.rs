//! Cleans up after a private server once the test process is gone.
//!
//! Why: MariaDB and PostgreSQL take seconds to start, so a test binary shares one of each
//! (a `OnceLock`), and statics are never dropped. A reaper is a small `sh` loop that waits for
//! the test process to exit, then stops the server and removes its directory — also when the
//! test process panicked or was killed.

use std::path::Path;
use std::process::{Child, Command, Stdio};

/// A running reaper; dropping it ends the reaper (the owner then cleans up itself).
pub struct Reaper(Child);

impl Reaper {
    /// Watches this process; when it is gone, runs `stop` (a shell command) and removes `dir`.
    pub fn watch(stop: &str, dir: &Path) -> Reaper {
        let script = r#"while kill -0 "$1" 2>/dev/null; do sleep 0.5; done; eval "$2"; sleep 1; rm -rf "$3""#;
        let child = Command::new("sh")
            .args(["-c", script, "reaper"])
            .arg(std::process::id().to_string())
            .arg(stop)
            .arg(dir)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start the reaper shell: {e}"));
        Reaper(child)
    }
}

impl Drop for Reaper {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A fresh empty directory under the system temp dir, named after `what` and unique.
pub fn temp_dir(what: &str) -> std::path::PathBuf {
    use std::sync::atomic::{AtomicUsize, Ordering};
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    let dir = std::env::temp_dir().join(format!(
        "mswoole-{what}-{}-{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    ));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir)
        .unwrap_or_else(|e| panic!("cannot create {}: {e}", dir.display()));
    dir
}

/// A fresh directory for `what` under one per-process root that a reaper removes when the test
/// process ends (for files a test leaves behind, such as SQLite databases).
pub fn scratch_dir(what: &str) -> std::path::PathBuf {
    static ROOT: std::sync::OnceLock<(std::path::PathBuf, Reaper)> = std::sync::OnceLock::new();
    let (root, _) = ROOT.get_or_init(|| {
        let root = temp_dir("scratch");
        let reaper = Reaper::watch("true", &root);
        (root, reaper)
    });
    use std::sync::atomic::{AtomicUsize, Ordering};
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    let dir = root.join(format!("{what}-{}", NEXT.fetch_add(1, Ordering::Relaxed)));
    std::fs::create_dir_all(&dir)
        .unwrap_or_else(|e| panic!("cannot create {}: {e}", dir.display()));
    dir
}

/// Waits until something accepts TCP connections on 127.0.0.1:`port`, or panics naming `what`.
pub fn wait_for_port(port: u16, what: &str, log: &Path) {
    let started = std::time::Instant::now();
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        if started.elapsed() > std::time::Duration::from_secs(30) {
            let text = std::fs::read_to_string(log).unwrap_or_default();
            panic!("{what} on port {port} did not answer within 30 s; its log:\n{text}");
        }
        std::thread::sleep(std::time::Duration::from_millis(25));
    }
}
