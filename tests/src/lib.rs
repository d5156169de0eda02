//! The shared test client and harness of the end-to-end suite.
//!
//! No mocks: every test starts the real `mswoole` binary with the real plugin
//! libraries in a private temporary directory and speaks the wire protocol to it.
//!
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
//! - [`nginx`]: [`Nginx`], a private nginx running the shipped `config/nginx.conf`.
//! - [`notify`]: [`NotifySocket`], a `NOTIFY_SOCKET` to hear what the host tells systemd.
//! - [`token`]: auth tokens: the public vectors of docs/PROTOCOL.md "Tokens" and `mswoole token`.
//!
//! Build everything first with `cargo build --workspace` and the fixture (tests/run.sh
//! does both); the harness panics with that advice when a file is missing.

pub mod client;
pub mod config;
pub mod envelope;
pub mod host;
pub mod http;
pub mod live;
pub mod nginx;
pub mod notify;
pub mod paths;
pub mod raw;
pub mod redis;
pub mod token;

pub use client::{
    connect, connect_from, connect_with_headers, Client, ClientRx, ClientTx, Frame, Refused,
};
pub use config::Config;
pub use envelope::{Envelope, ACK};
pub use host::{ConsoleOutput, HostBuilder, HostDir, TestHost};
pub use http::{http_get, http_raw, http_request, HttpResponse};
pub use nginx::Nginx;
pub use notify::NotifySocket;
pub use raw::{Incoming, RawClient, RawFrame, ServerFrame};
pub use redis::RedisServer;
pub use token::{
    now, Token, VECTOR_CTIME, VECTOR_DES_CBC, VECTOR_DES_CBC_IV, VECTOR_LONG_KEY, VECTOR_NOT_JSON,
    VECTOR_WALL, VECTOR_WECHAT_USER,
};

pub use serde_json::{json, Value};

use std::time::Duration;

/// How long a receive waits before the test fails: a healthy host answers in milliseconds.
pub const RECV_TIMEOUT: Duration = Duration::from_secs(5);

/// A TCP port nobody listens on right now (bound, then released).
pub fn unused_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("a free port can be bound");
    listener
        .local_addr()
        .expect("a bound socket has an address")
        .port()
}

/// The success reply to `index.index.index`, byte for byte.
pub const SUCCESS: &str = r#"{"status":200,"event":"success","info":"执行完成"}"#;
