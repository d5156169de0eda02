//! The shared test client and harness of the end-to-end suite.
//!
//! No mocks: every test starts the real `mswoole` binary with the real plugin
//! libraries in a private temporary directory and speaks the wire protocol to it.
//!
//! - [`browser`]: [`Browser`], headless Chromium through chromedriver, for the demo pages.
//! - [`live`]: the Live module's protocol for tests: connect as a user or a wall, act, hear.
//! - [`paths`]: where the built binary, plugins and the ABI-mismatch fixture are.
//! - [`config`]: the test config: a base `app.toml` plus the keys a test overrides.
//! - [`host`]: [`TestHost`], one running host process: start, output, console, stop.
//! - [`client`]: a WebSocket [`Client`] with timeouts that fail with a clear message.
//! - [`envelope`]: [`Envelope`], a server reply, kept as text and as parsed JSON.
//! - [`http`]: raw HTTP/1.1 requests: a `GET` for the non-upgrade requests, any method
//!   with a body (the manager's HTTP API), and hand-written requests.
//! - [`raw`]: [`RawClient`] and [`RawFrame`], a raw-socket WebSocket client that can
//!   break every rule of RFC 6455 (the conformance suite's frame writer and reader).
//! - [`redis`]: [`RedisServer`], a private `redis-server` a test can stop and restart.
//! - [`mariadb`], [`postgres`]: [`MariaDb`] and [`Postgres`], private SQL servers (one shared per
//!   test binary, a database per test, or a private one to stop and restart); [`reaper`] removes
//!   them when the test process ends.
//! - [`nginx`]: [`Nginx`], a private nginx running the shipped `config/nginx.conf`.
//! - [`notify`]: [`NotifySocket`], a `NOTIFY_SOCKET` to hear what the host tells systemd.
//! - [`token`]: auth tokens: the public vectors of docs/PROTOCOL.md "Tokens" and `mswoole token`.
//! - [`jwt`]: JSON Web Tokens signed with `openssl`, as any backend would make them, and RSA keys.
//!
//! Build everything first with `cargo build --workspace` and the fixture (tests/run.sh
//! does both); the harness panics with that advice when a file is missing.

pub mod browser;
pub mod client;
pub mod config;
pub mod envelope;
pub mod host;
pub mod http;
pub mod jwt;
pub mod live;
pub mod mariadb;
pub mod nginx;
pub mod notify;
pub mod paths;
pub mod phone;
pub mod postgres;
pub mod raw;
pub mod reaper;
pub mod redis;
pub mod token;

pub use browser::{wait_for, Browser, Screen};
pub use client::{
    connect, connect_from, connect_with_headers, Client, ClientRx, ClientTx, Frame, Refused,
};
pub use config::Config;
pub use envelope::{Envelope, ACK};
pub use host::{ConsoleOutput, HostBuilder, HostDir, TestHost};
pub use http::{http_get, http_raw, http_request, HttpResponse};
pub use mariadb::MariaDb;
pub use nginx::Nginx;
pub use notify::NotifySocket;
pub use postgres::Postgres;
pub use raw::{Incoming, RawClient, RawFrame, ServerFrame};
pub use redis::RedisServer;
pub use token::{
    now, rfc3339, Token, VECTOR_CTIME, VECTOR_DES_CBC, VECTOR_DES_CBC_IV, VECTOR_LONG_KEY,
    VECTOR_NOT_JSON, VECTOR_WALL, VECTOR_WECHAT_USER,
};

pub use serde_json::{json, Value};

use std::time::Duration;

/// How long a receive waits before the test fails: a healthy host answers in milliseconds.
pub const RECV_TIMEOUT: Duration = Duration::from_secs(5);

/// Ports [`unused_port`] hands out: below the kernel's ephemeral range (32768-60999 on
/// Linux), which every port-0 bind (the hosts under test) and every outgoing connection
/// draws from, and above the host's default ports (20000, 20001).
const PORTS: std::ops::Range<u16> = 21000..32000;

/// A TCP port for a server a test starts (redis-server, nginx, a host on a fixed port).
///
/// A port the kernel picked for a bind and released again (the old way) could be given
/// to the next outgoing connection or port-0 bind before the server took it. These
/// ports come from [`PORTS`], where the kernel never picks one by itself; a process
/// never hands out the same port twice, and processes start at different places, so
/// two test processes meet only by chance — and the servers' starters check that they
/// got their port ([`RedisServer`] retries on another one).
pub fn unused_port() -> u16 {
    use std::sync::atomic::{AtomicU32, Ordering};
    static NEXT: AtomicU32 = AtomicU32::new(0);
    let span = u32::from(PORTS.end - PORTS.start);
    let start = std::process::id().wrapping_mul(7919) % span;
    for _ in 0..span {
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let offset = u16::try_from((start + n) % span).unwrap_or(0);
        let port = PORTS.start + offset;
        if std::net::TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
    panic!("no free port in {PORTS:?}")
}

/// The success reply to `index.index.index`, byte for byte.
pub const SUCCESS: &str = r#"{"status":200,"event":"success","info":"执行完成"}"#;
