//! A private MariaDB server: its own data directory, socket, pid file and a free port on
//! 127.0.0.1; stopped and restarted at will (to test outages), removed on drop.
//!
//! tests/run.sh installs Debian's `mariadb-server` when `mariadbd` is missing. A test that cannot
//! start one fails loudly: it never skips. Starting takes a few seconds, so a test binary shares
//! one server ([`MariaDb::shared`]) and gives each test its own database
//! ([`MariaDb::database`]); outage tests start their own.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::OnceLock;

use crate::reaper::{temp_dir, wait_for_port, Reaper};

/// The user tests connect as (with a password, so that password hiding is tested too).
pub const USER: &str = "mswoole";
/// Its password.
pub const PASSWORD: &str = "s3cret-maria";

/// One private MariaDB server.
pub struct MariaDb {
    /// Its port on 127.0.0.1.
    pub port: u16,
    /// Data directory, socket, pid file and log.
    dir: PathBuf,
    /// The running server, `None` while stopped.
    child: Option<Child>,
    /// Stops the server if this process dies without dropping it.
    _reaper: Reaper,
}

/// The server binary: `mariadbd`, or `mysqld` on older packages.
fn server_binary() -> &'static str {
    for name in ["mariadbd", "mysqld"] {
        for dir in ["/usr/sbin", "/usr/bin", "/usr/local/sbin", "/usr/local/bin"] {
            if Path::new(dir).join(name).exists() {
                return name;
            }
        }
    }
    "mariadbd"
}

impl MariaDb {
    /// One server for the whole test binary.
    pub fn shared() -> &'static MariaDb {
        static SHARED: OnceLock<MariaDb> = OnceLock::new();
        SHARED.get_or_init(MariaDb::start)
    }

    /// Creates a data directory, starts a server on a free port, creates [`USER`].
    pub fn start() -> MariaDb {
        let dir = temp_dir("mariadb");
        // Its own tmpdir: servers bootstrapping side by side never share temporary tables.
        let tmp = dir.join("tmp");
        let _ = std::fs::create_dir_all(&tmp);
        let output = Command::new("mariadb-install-db")
            .args(["--no-defaults", "--user=root", "--auth-root-authentication-method=socket", "--skip-test-db"])
            .arg(format!("--datadir={}", dir.join("data").display()))
            .arg(format!("--tmpdir={}", tmp.display()))
            .output()
            .unwrap_or_else(|e| {
                panic!("cannot run mariadb-install-db ({e}); tests/run.sh installs it (apt-get install mariadb-server)")
            });
        assert!(
            output.status.success(),
            "mariadb-install-db failed: {}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
        let stop = format!("kill -9 $(cat '{}/pid') 2>/dev/null", dir.display());
        let mut server = MariaDb {
            port: crate::ports::unused_port(),
            _reaper: Reaper::watch(&stop, &dir),
            dir,
            child: None,
        };
        server.restart();
        server.sql(&format!(
            "CREATE USER '{USER}'@'%' IDENTIFIED BY '{PASSWORD}'; GRANT ALL ON *.* TO '{USER}'@'%';"
        ));
        server
    }

    /// Kills the server at once, as a crash or a pulled cable would (data stays on disk).
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts it (again) on the same port with the same data, and waits until it answers.
    pub fn restart(&mut self) {
        self.stop();
        let log = self.dir.join("error.log");
        let child = Command::new(server_binary())
            .arg("--no-defaults")
            .arg(format!("--datadir={}", self.dir.join("data").display()))
            .arg(format!("--tmpdir={}", self.dir.join("tmp").display()))
            .arg(format!("--socket={}", self.socket().display()))
            .arg(format!("--pid-file={}", self.dir.join("pid").display()))
            .arg(format!("--log-error={}", log.display()))
            .arg(format!("--port={}", self.port))
            .args([
                "--bind-address=127.0.0.1",
                // No reverse DNS lookup per new client: the first connection would wait on it.
                "--skip-name-resolve",
                "--user=root",
                "--skip-log-bin",
                "--innodb-buffer-pool-size=16M",
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| {
                panic!(
                    "cannot start {} ({e}); tests/run.sh installs mariadb-server",
                    server_binary()
                )
            });
        self.child = Some(child);
        wait_for_port(self.port, "MariaDB", &log);
    }

    /// The server's unix socket (for the `mariadb` client as root).
    fn socket(&self) -> PathBuf {
        self.dir.join("sock")
    }

    /// Runs `sql` as root through the socket; panics with the client's output on failure.
    pub fn sql(&self, sql: &str) -> String {
        let output = Command::new("mariadb")
            .arg(format!("--socket={}", self.socket().display()))
            .args(["-uroot", "--batch", "--skip-column-names", "-e", sql])
            .output()
            .unwrap_or_else(|e| panic!("cannot run the mariadb client: {e}"));
        assert!(
            output.status.success(),
            "mariadb -e {sql:?} failed: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        String::from_utf8_lossy(&output.stdout).trim().to_string()
    }

    /// A new empty database named after `hint`; returns its URL (with [`USER`]'s password).
    pub fn database(&self, hint: &str) -> String {
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        let name = format!("{hint}_{}", NEXT.fetch_add(1, Ordering::Relaxed));
        self.sql(&format!("CREATE DATABASE `{name}`"));
        self.url(&name)
    }

    /// `mysql://USER:PASSWORD@127.0.0.1:<port>/<db>`.
    pub fn url(&self, db: &str) -> String {
        format!("mysql://{USER}:{PASSWORD}@127.0.0.1:{}/{db}", self.port)
    }
}

impl Drop for MariaDb {
    fn drop(&mut self) {
        self.stop();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
