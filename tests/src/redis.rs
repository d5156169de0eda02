//! A private `redis-server` per test: its own port, nothing on disk, stopped and
//! restarted at will (to test outages), killed on drop.
//!
//! tests/run.sh installs `redis-server` from Debian's packages when it is missing.
//! A test that cannot start one fails loudly: it never skips.

use std::{
    net::TcpStream,
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

/// One private Redis server.
pub struct RedisServer {
    /// Its port on 127.0.0.1.
    pub port: u16,
    /// The running process, `None` while stopped.
    child: Option<Child>,
}

impl RedisServer {
    /// Starts a server on a free port and waits until it answers. Should another
    /// process hold the port by the time redis-server binds it, it tries another.
    pub fn start() -> RedisServer {
        Self::start_preferring(crate::ports::unused_port())
    }

    /// Starts a server on `port`, or on another free port if `port` is taken.
    pub fn start_preferring(port: u16) -> RedisServer {
        let mut server = RedisServer { port, child: None };
        for _ in 0..10 {
            if server.launch() {
                return server;
            }
            server.port = crate::ports::unused_port();
        }
        panic!(
            "redis-server could not bind any of 10 free ports (its exit said the port was taken)"
        )
    }

    /// `redis://127.0.0.1:<port>/`.
    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/", self.port)
    }

    /// Stops the server (everything it held is lost: it keeps nothing on disk).
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts it again on the same port, empty.
    pub fn restart(&mut self) {
        assert!(
            self.launch(),
            "redis-server could not bind port {} again",
            self.port
        );
    }

    /// Starts redis-server on `self.port` and waits until the server answering there is
    /// this one (its `process_id`: a port taken by someone else answers too); `false`
    /// when it exited instead (the port was taken).
    fn launch(&mut self) -> bool {
        self.stop();
        let child = Command::new("redis-server")
            .args(["--port", &self.port.to_string(), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|error| {
                panic!("cannot start redis-server ({error}); tests/run.sh installs it (apt-get install redis-server)")
            });
        let pid = format!("process_id:{}", child.id());
        self.child = Some(child);
        let started = Instant::now();
        loop {
            if let Some(child) = self.child.as_mut() {
                if let Ok(Some(_)) = child.try_wait() {
                    self.child = None;
                    return false;
                }
            }
            if TcpStream::connect(("127.0.0.1", self.port)).is_ok()
                && self
                    .cli(&["INFO", "server"])
                    .lines()
                    .any(|line| line.trim() == pid)
            {
                return true;
            }
            assert!(
                started.elapsed() < Duration::from_secs(10),
                "redis-server on port {} did not answer",
                self.port
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Runs `redis-cli` against it; returns its output.
    pub fn cli(&self, args: &[&str]) -> String {
        let output = Command::new("redis-cli")
            .args(["-p", &self.port.to_string()])
            .args(args)
            .output()
            .unwrap_or_else(|error| panic!("cannot run redis-cli: {error}"));
        String::from_utf8_lossy(&output.stdout).trim().to_string()
    }

    /// The TOML a host needs to use this server, with `node_id` and a short node TTL.
    pub fn registry_toml(&self, node_id: &str) -> String {
        format!("[registry]\nbackend = \"redis\"\nurl = \"{}\"\nnode_id = \"{node_id}\"\nnode_ttl_s = 3", self.url())
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.stop();
    }
}
