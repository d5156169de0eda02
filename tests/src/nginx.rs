//! A private nginx in front of a test host, running the shipped `config/nginx.conf`.
//!
//! The shipped file is used as operators use it: included inside an `http { }` block
//! (Debian's nginx.conf includes conf.d/*.conf there). Only its ports and its log
//! directory are substituted; each substitution must match exactly once, so a changed
//! file fails here instead of being silently tested as something else. nginx runs in
//! the foreground with its own prefix, pid file, error and access logs and temp
//! directories in a private directory, and is stopped on drop.
//!
//! tests/run.sh installs Debian's `nginx` package when it is missing. A test that
//! cannot start nginx fails loudly: it never skips.

use std::{
    net::{SocketAddr, TcpStream},
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

use crate::paths;

/// How long nginx may take to listen.
const START_TIMEOUT: Duration = Duration::from_secs(10);

/// One private nginx.
pub struct Nginx {
    /// The address it listens on (127.0.0.1, a free port).
    pub addr: SocketAddr,
    /// Its private directory: config, logs, pid file, temp files.
    dir: PathBuf,
    /// The master process, `None` once stopped.
    child: Option<Child>,
}

/// The nginx binary: on `PATH`, else where Debian puts it.
fn nginx_bin() -> PathBuf {
    let on_path = std::env::var_os("PATH")
        .into_iter()
        .flat_map(|path| std::env::split_paths(&path).collect::<Vec<_>>())
        .map(|dir| dir.join("nginx"))
        .find(|candidate| candidate.is_file());
    on_path.unwrap_or_else(|| PathBuf::from("/usr/sbin/nginx"))
}

/// `text` with `from` replaced by `to`; panics unless `from` occurs exactly once.
fn substitute(text: &str, from: &str, to: &str) -> String {
    let count = text.matches(from).count();
    assert_eq!(
        count, 1,
        "config/nginx.conf should contain {from:?} exactly once (found {count}): \
         the test adapts the shipped file by substituting it"
    );
    text.replacen(from, to, 1)
}

impl Nginx {
    /// Starts nginx with the shipped config, proxying to `upstream` (the host's outside
    /// address). Should another process hold the chosen port by the time nginx binds it,
    /// it tries another.
    pub fn start(upstream: SocketAddr) -> Nginx {
        Self::start_preferring(upstream, crate::ports::unused_port())
    }

    /// Like [`Nginx::start`], trying `port` first.
    pub fn start_preferring(upstream: SocketAddr, port: u16) -> Nginx {
        let mut port = port;
        for _ in 0..10 {
            if let Some(nginx) = Self::start_on(upstream, port) {
                return nginx;
            }
            port = crate::ports::unused_port();
        }
        panic!("nginx could not bind any of 10 free ports (its error log said the port was taken)")
    }

    /// Starts nginx on `port`; `None` when the port was taken.
    fn start_on(upstream: SocketAddr, port: u16) -> Option<Nginx> {
        let shipped = paths::workspace_root().join("config/nginx.conf");
        let text = std::fs::read_to_string(&shipped)
            .unwrap_or_else(|error| panic!("cannot read {}: {error}", shipped.display()));
        let dir = std::env::temp_dir().join(format!("mswoole-nginx-{}-{port}", std::process::id()));
        for sub in ["logs", "tmp"] {
            std::fs::create_dir_all(dir.join(sub)).expect("the nginx directory is created");
        }
        let text = substitute(&text, "listen 80;", &format!("listen 127.0.0.1:{port};"));
        let text = substitute(&text, "127.0.0.1:20000", &upstream.to_string());
        let text = substitute(&text, "/var/log/nginx/", &format!("{}/", dir.display()));
        std::fs::write(dir.join("mswoole.conf"), text).expect("mswoole.conf is written");
        let d = dir.display();
        // Debian's nginx.conf reduced to what a private instance needs; the shipped file
        // is included where Debian includes conf.d/*.conf.
        let main = format!(
            "worker_processes 1;\n\
             error_log {d}/error.log info;\n\
             events {{ worker_connections 256; }}\n\
             http {{\n\
             client_body_temp_path {d}/tmp/body;\n\
             proxy_temp_path {d}/tmp/proxy;\n\
             fastcgi_temp_path {d}/tmp/fastcgi;\n\
             uwsgi_temp_path {d}/tmp/uwsgi;\n\
             scgi_temp_path {d}/tmp/scgi;\n\
             access_log {d}/logs/default-access.log;\n\
             include {d}/mswoole.conf;\n\
             }}\n"
        );
        std::fs::write(dir.join("nginx.conf"), main).expect("nginx.conf is written");
        let bin = nginx_bin();
        let child = Command::new(&bin)
            .arg("-p")
            .arg(&dir)
            .arg("-e")
            .arg(dir.join("error.log"))
            .arg("-c")
            .arg(dir.join("nginx.conf"))
            .arg("-g")
            .arg(format!("daemon off; pid {d}/nginx.pid;"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|error| {
                panic!(
                    "cannot start {} ({error}); tests/run.sh installs it (apt-get install nginx)",
                    bin.display()
                )
            });
        let mut nginx = Nginx {
            addr: SocketAddr::from(([127, 0, 0, 1], port)),
            dir,
            child: Some(child),
        };
        nginx.wait_listening().then_some(nginx)
    }

    /// Waits until this nginx listens (the port accepts connections and its pid file
    /// names this process: someone else's server on the port accepts them too); `false`
    /// when it exited because the port was taken; panics with nginx's error log if it
    /// exits for another reason.
    fn wait_listening(&mut self) -> bool {
        let started = Instant::now();
        let ours = |nginx: &Nginx| {
            let pid = nginx.child.as_ref().map(Child::id).unwrap_or_default();
            std::fs::read_to_string(nginx.dir.join("nginx.pid"))
                .is_ok_and(|text| text.trim() == pid.to_string())
        };
        while !(TcpStream::connect(self.addr).is_ok() && ours(self)) {
            if let Some(child) = self.child.as_mut() {
                if let Ok(Some(status)) = child.try_wait() {
                    self.child = None;
                    if self.error_log().contains("Address already in use") {
                        return false;
                    }
                    panic!(
                        "nginx exited ({status}) before listening; its error log:\n{}",
                        self.error_log()
                    );
                }
            }
            assert!(
                started.elapsed() < START_TIMEOUT,
                "nginx did not listen on {} within {START_TIMEOUT:?}; its error log:\n{}",
                self.addr,
                self.error_log()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        true
    }

    /// Its directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The access log written through the shipped `access_log` line (empty if none yet).
    pub fn access_log(&self) -> String {
        std::fs::read_to_string(self.dir.join("mswoole.access.log")).unwrap_or_default()
    }

    /// nginx's error log (empty if none yet).
    pub fn error_log(&self) -> String {
        std::fs::read_to_string(self.dir.join("error.log")).unwrap_or_default()
    }

    /// Waits until the access log has a line satisfying `matches` (nginx writes a
    /// WebSocket's line when it ends); returns the line.
    pub async fn wait_for_access_line(&self, what: &str, matches: impl Fn(&str) -> bool) -> String {
        let started = Instant::now();
        loop {
            let log = self.access_log();
            if let Some(line) = log.lines().find(|line| matches(line)) {
                return line.to_string();
            }
            assert!(
                started.elapsed() < crate::client::RECV_TIMEOUT,
                "no access log line {what} within {:?}; it holds:\n{log}",
                crate::client::RECV_TIMEOUT
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Stops nginx (SIGTERM: a fast shutdown that takes its worker along), then SIGKILL.
    pub fn stop(&mut self) {
        let Some(mut child) = self.child.take() else {
            return;
        };
        let _ = Command::new("kill")
            .arg("-TERM")
            .arg(child.id().to_string())
            .status();
        let started = Instant::now();
        while started.elapsed() < Duration::from_secs(5) {
            if let Ok(Some(_)) = child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = child.kill();
        let _ = child.wait();
    }
}

impl Drop for Nginx {
    fn drop(&mut self) {
        self.stop();
        if std::thread::panicking() {
            eprintln!(
                "nginx directory kept: {}\n---- nginx error log ----\n{}---- access log ----\n{}",
                self.dir.display(),
                self.error_log(),
                self.access_log()
            );
        } else {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }
}
