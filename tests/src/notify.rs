//! A `NOTIFY_SOCKET` of our own: what the host tells systemd, heard by a test.
//!
//! systemd hands a `Type=notify` service the path of a unix datagram socket in
//! `NOTIFY_SOCKET`; the service sends `READY=1` and friends there. A test binds one in
//! a private directory, starts the host with the variable set, and reads the datagrams.

use std::{path::PathBuf, time::Duration};

use tokio::net::UnixDatagram;

/// A bound notify socket; its directory is removed on drop.
pub struct NotifySocket {
    /// The socket.
    socket: UnixDatagram,
    /// Its directory.
    dir: PathBuf,
}

impl NotifySocket {
    /// Binds a fresh socket in a private directory.
    pub fn bind() -> NotifySocket {
        let dir = std::env::temp_dir().join(format!(
            "mswoole-notify-{}-{}",
            std::process::id(),
            crate::ports::unused_port()
        ));
        std::fs::create_dir_all(&dir).expect("the notify directory is created");
        let socket = UnixDatagram::bind(dir.join("notify.sock"))
            .unwrap_or_else(|error| panic!("cannot bind a notify socket: {error}"));
        NotifySocket { socket, dir }
    }

    /// Its path, the value of `NOTIFY_SOCKET`.
    pub fn path(&self) -> String {
        self.dir.join("notify.sock").display().to_string()
    }

    /// The next datagram as text, or `None` if none arrives within `timeout`.
    pub async fn recv_within(&self, timeout: Duration) -> Option<String> {
        let mut buf = vec![0u8; 4096];
        match tokio::time::timeout(timeout, self.socket.recv(&mut buf)).await {
            Ok(Ok(n)) => Some(String::from_utf8_lossy(&buf[..n]).into_owned()),
            Ok(Err(error)) => panic!("reading the notify socket failed: {error}"),
            Err(_) => None,
        }
    }

    /// Waits for a datagram with the line `line` (e.g. `READY=1`); returns the datagram.
    pub async fn expect_line(&self, line: &str, timeout: Duration) -> String {
        let deadline = tokio::time::Instant::now() + timeout;
        let mut seen = Vec::new();
        loop {
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            match self.recv_within(left).await {
                Some(datagram) if datagram.lines().any(|l| l == line) => return datagram,
                Some(datagram) => seen.push(datagram),
                None => panic!("no {line} on the notify socket within {timeout:?}; got {seen:?}"),
            }
        }
    }
}

impl Drop for NotifySocket {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
