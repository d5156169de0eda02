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
    /// Starts a server on a free port and waits until it answers.
    pub fn start() -> RedisServer {
        let mut server = RedisServer {
            port: crate::unused_port(),
            child: None,
        };
        server.restart();
        server
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
        self.stop();
        let child = Command::new("redis-server")
            .args(["--port", &self.port.to_string(), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|error| {
                panic!("cannot start redis-server ({error}); tests/run.sh installs it (apt-get install redis-server)")
            });
        self.child = Some(child);
        let started = Instant::now();
        while TcpStream::connect(("127.0.0.1", self.port)).is_err() {
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
