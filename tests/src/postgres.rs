//! A private PostgreSQL server: `initdb` in a temp dir, `postgres` on a free port on 127.0.0.1
//! with its socket in that dir; stopped and restarted at will (to test outages), removed on drop.
//!
//! PostgreSQL refuses to run as root, so when the tests run as root the server runs as the
//! `postgres` user (`setpriv`, which execs in place, so the process we hold is the postmaster)
//! and owns its directory. tests/run.sh installs Debian's `postgresql` when `initdb` cannot be
//! found (on PATH or under /usr/lib/postgresql/*/bin). A test that cannot start one fails loudly.
//! As with MariaDB, a test binary shares one server ([`Postgres::shared`]) and each test gets its
//! own database ([`Postgres::database`]).

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use crate::reaper::{temp_dir, Reaper};

/// The superuser tests connect as.
pub const USER: &str = "postgres";
/// Its password (TCP connections must give it).
pub const PASSWORD: &str = "s3cret-pg";

/// One private PostgreSQL server.
pub struct Postgres {
    /// Its port on 127.0.0.1.
    pub port: u16,
    /// Holds `data/`, the socket and the log.
    dir: PathBuf,
    /// The directory of `initdb`, `postgres` and `psql`.
    bin: PathBuf,
    /// The postmaster, `None` while stopped.
    child: Option<Child>,
    /// Stops the server if this process dies without dropping it.
    _reaper: Reaper,
}

/// Where the PostgreSQL programs are: next to `initdb` on PATH, else the newest
/// /usr/lib/postgresql/<version>/bin.
fn bin_dir() -> PathBuf {
    if let Some(path) = std::env::var_os("PATH") {
        for dir in std::env::split_paths(&path) {
            let initdb = dir.join("initdb");
            if initdb.exists() {
                let real = std::fs::canonicalize(&initdb).unwrap_or(initdb);
                if let Some(parent) = real.parent() {
                    return parent.to_path_buf();
                }
            }
        }
    }
    let mut versions: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| Some((e.file_name().to_str()?.parse().ok()?, e.path().join("bin"))))
        .filter(|(_, bin)| bin.join("initdb").exists())
        .collect();
    versions.sort();
    versions.pop().map(|(_, bin)| bin).unwrap_or_else(|| {
        panic!("PostgreSQL's initdb is not on PATH nor under /usr/lib/postgresql/*/bin; tests/run.sh installs it (apt-get install postgresql)")
    })
}

/// Whether this process is root (PostgreSQL then runs as the `postgres` user).
fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
}

/// A command for `program`, run as `postgres` when we are root.
fn as_server_user(program: &Path) -> Command {
    if is_root() {
        let mut cmd = Command::new("setpriv");
        cmd.args([
            "--reuid=postgres",
            "--regid=postgres",
            "--init-groups",
            "--",
        ])
        .arg(program);
        cmd
    } else {
        Command::new(program)
    }
}

impl Postgres {
    /// One server for the whole test binary.
    pub fn shared() -> &'static Postgres {
        static SHARED: OnceLock<Postgres> = OnceLock::new();
        SHARED.get_or_init(Postgres::start)
    }

    /// `initdb` (password auth over TCP, trust on the socket), then a server on a free port.
    pub fn start() -> Postgres {
        let dir = temp_dir("postgres");
        let bin = bin_dir();
        std::fs::write(dir.join("pwfile"), PASSWORD).unwrap_or_else(|e| panic!("pwfile: {e}"));
        if is_root() {
            let status = Command::new("chown")
                .args(["-R", "postgres:"])
                .arg(&dir)
                .status();
            assert!(
                status.is_ok_and(|s| s.success()),
                "cannot chown {} to postgres",
                dir.display()
            );
        }
        let output = as_server_user(&bin.join("initdb"))
            .arg("-D")
            .arg(dir.join("data"))
            .args([
                "-U",
                USER,
                "--auth-local=trust",
                "--auth-host=scram-sha-256",
                "-E",
                "UTF8",
                "--no-sync",
            ])
            .arg(format!("--pwfile={}", dir.join("pwfile").display()))
            .output()
            .unwrap_or_else(|e| {
                panic!("cannot run initdb ({e}); tests/run.sh installs postgresql")
            });
        assert!(
            output.status.success(),
            "initdb failed: {}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
        // SIGQUIT: the postmaster ends its backends too (SIGKILL would orphan them).
        let stop = format!(
            "kill -QUIT $(head -1 '{}/data/postmaster.pid') 2>/dev/null",
            dir.display()
        );
        let mut server = Postgres {
            port: crate::ports::unused_port(),
            _reaper: Reaper::watch(&stop, &dir),
            dir,
            bin,
            child: None,
        };
        server.restart();
        server
    }

    /// Stops the server at once (immediate shutdown: every connection is dropped).
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = Command::new("kill")
                .args(["-QUIT", &child.id().to_string()])
                .status();
            let started = Instant::now();
            loop {
                match child.try_wait() {
                    Ok(Some(_)) | Err(_) => break,
                    Ok(None) if started.elapsed() > Duration::from_secs(10) => {
                        let _ = child.kill();
                        let _ = child.wait();
                        break;
                    }
                    Ok(None) => std::thread::sleep(Duration::from_millis(20)),
                }
            }
        }
    }

    /// Starts it (again) on the same port with the same data, and waits until it accepts queries.
    pub fn restart(&mut self) {
        self.stop();
        let log = self.dir.join("server.log");
        let log_file = std::fs::File::create(&log).unwrap_or_else(|e| panic!("server.log: {e}"));
        let err_file = log_file
            .try_clone()
            .unwrap_or_else(|e| panic!("server.log: {e}"));
        let child = as_server_user(&self.bin.join("postgres"))
            .arg("-D")
            .arg(self.dir.join("data"))
            .args(["-p", &self.port.to_string(), "-h", "127.0.0.1", "-k"])
            .arg(&self.dir)
            .args([
                "-c",
                "fsync=off",
                "-c",
                "shared_buffers=16MB",
                "-c",
                "max_connections=100",
            ])
            .stdin(Stdio::null())
            .stdout(log_file)
            .stderr(err_file)
            .spawn()
            .unwrap_or_else(|e| {
                panic!("cannot start postgres ({e}); tests/run.sh installs postgresql")
            });
        self.child = Some(child);
        let started = Instant::now();
        loop {
            let ready = Command::new(self.bin.join("pg_isready"))
                .args(["-h", "127.0.0.1", "-p", &self.port.to_string(), "-q"])
                .status()
                .is_ok_and(|s| s.success());
            if ready {
                break;
            }
            if started.elapsed() > Duration::from_secs(30) {
                let text = std::fs::read_to_string(&log).unwrap_or_default();
                panic!(
                    "PostgreSQL on port {} did not get ready within 30 s; its log:\n{text}",
                    self.port
                );
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Runs `sql` as the superuser through the socket; panics with psql's output on failure.
    pub fn sql(&self, db: &str, sql: &str) -> String {
        let output = Command::new(self.bin.join("psql"))
            .arg("-h")
            .arg(&self.dir)
            .args([
                "-p",
                &self.port.to_string(),
                "-U",
                USER,
                "-d",
                db,
                "-X",
                "-q",
                "-t",
                "-A",
                "-v",
                "ON_ERROR_STOP=1",
                "-c",
                sql,
            ])
            .output()
            .unwrap_or_else(|e| panic!("cannot run psql: {e}"));
        assert!(
            output.status.success(),
            "psql -c {sql:?} failed: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        String::from_utf8_lossy(&output.stdout).trim().to_string()
    }

    /// A new empty database named after `hint`; returns its URL (with the password).
    pub fn database(&self, hint: &str) -> String {
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        let name = format!("{hint}_{}", NEXT.fetch_add(1, Ordering::Relaxed));
        self.sql("postgres", &format!("CREATE DATABASE \"{name}\""));
        self.url(&name)
    }

    /// `postgres://postgres:PASSWORD@127.0.0.1:<port>/<db>`.
    pub fn url(&self, db: &str) -> String {
        format!("postgres://{USER}:{PASSWORD}@127.0.0.1:{}/{db}", self.port)
    }
}

impl Drop for Postgres {
    fn drop(&mut self) {
        self.stop();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
