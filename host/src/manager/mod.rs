//! The manager port: how the console, operators' scripts and backends drive a running
//! host, and where Prometheus scrapes it.
//!
//! One port speaks two transports (README.md, "Console and manager port" and "HTTP
//! API"): a WebSocket taking one JSON command per connection, as in MSwoole ([`ws`]),
//! and plain HTTP — `POST /api/<command>` and `GET /metrics` ([`http`]). Both parse
//! and run commands through [`command`], so a command means the same on either.
//!
//! The [`listener`] reads each connection's request head once; it decides the transport.
//! A request with an `Origin` header is refused on both (a web page must not reach the
//! manager, even on a loopback address); with `manager.token` set, every request carries
//! it, compared in constant time ([`access`]). [`status`] is what `status` answers, as a
//! type, and [`client`] the one client of this port (the console's and ws-bench's).

pub mod access;
pub mod client;
pub mod command;
mod http;
mod listener;
pub mod status;
mod ws;

pub use self::{access::Manager, command::reload, listener::serve};
