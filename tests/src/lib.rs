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
//! - [`eventually`]: waiting for a condition rather than sleeping for it.
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
//! - [`ports`]: free TCP ports for the servers a test starts.
//! - [`token`]: auth tokens: the public vectors of docs/PROTOCOL.md "Tokens" and `mswoole token`.
//! - [`jwt`]: JSON Web Tokens signed with `openssl`, as any backend would make them, and RSA keys.
//!
//! Build everything first with `cargo build --workspace` and the fixture (tests/run.sh
//! does both); the harness panics with that advice when a file is missing.

pub mod browser;
pub mod client;
pub mod config;
pub mod envelope;
pub mod eventually;
pub mod host;
pub mod http;
pub mod jwt;
pub mod live;
pub mod mariadb;
pub mod nginx;
pub mod notify;
pub mod paths;
pub mod phone;
pub mod ports;
pub mod postgres;
pub mod raw;
pub mod reaper;
pub mod redis;
pub mod token;

pub use browser::{wait_for, Browser, Screen};
pub use client::{
    connect, connect_from, connect_with_headers, Client, ClientRx, ClientTx, Frame, Refused,
    RECV_TIMEOUT,
};
pub use config::Config;
pub use envelope::{Envelope, ACK, SUCCESS};
pub use eventually::{eventually, eventually_some};
pub use host::{ConsoleOutput, HostBuilder, HostDir, TestHost};
pub use http::{http_get, http_raw, http_request, HttpResponse};
pub use mariadb::MariaDb;
pub use nginx::Nginx;
pub use notify::NotifySocket;
pub use ports::unused_port;
pub use postgres::Postgres;
pub use raw::{Incoming, RawClient, RawFrame, ServerFrame};
pub use redis::RedisServer;
pub use token::{
    now, rfc3339, Token, VECTOR_CTIME, VECTOR_DES_CBC, VECTOR_DES_CBC_IV, VECTOR_LONG_KEY,
    VECTOR_NOT_JSON, VECTOR_WALL, VECTOR_WECHAT_USER,
};

pub use serde_json::{json, Value};
