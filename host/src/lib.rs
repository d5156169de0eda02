//! `mswoole`: MSwoole's WebSocket service as a plugin host, as a library: the `mswoole`
//! binary (`main.rs`) is a thin `main` over it, and the fuzz targets (`fuzz/`,
//! docs/FUZZING.md) call its parsers directly.
//!
//! Data flows one way: a socket meets the [`edge`] (listener, request head, token,
//! plain pages), becomes a connection ([`conn`]: the socket driver of the engine in
//! `mswoole-core`), whose messages are routed to a module ([`plugins`]); the host API
//! modules call reaches the registry and the outbound queues of connections on any
//! node ([`fanout`]). [`session`] owns each connection's life: it alone decides
//! whether an ended socket parks its session, hands it over or ends it, and runs the
//! close sequence. [`cluster`] is what several nodes on Redis share (the Redis
//! registry, the relay, session moves). [`manager`] and [`cli`] drive a running host;
//! [`app`] wires the parts together once and runs the stop sequence; [`config`] is the
//! `app.toml` contract; [`telemetry`] and [`runtime`] are what every part may use:
//! metrics and logs, stop signals and the process's files.
//!
//! What decides behaviour without a socket — message preparation, routing, errors,
//! envelopes, identities, the registry trait and its memory backend, the close
//! sequence, the per-connection engine and the host API — lives in `mswoole-core`,
//! which the module test kit uses too; it is re-exported here under the names the host
//! has always used.

pub mod app;
pub mod cli;
pub mod cluster;
pub mod config;
pub mod conn;
pub mod edge;
pub mod fanout;
pub mod manager;
pub mod plugins;
pub mod runtime;
pub mod session;
pub mod telemetry;

pub use mswoole_core::{engine, envelope, error, identity, message, registry, router};
