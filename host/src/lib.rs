//! `mswoole`: MSwoole's WebSocket service as a plugin host, as a library: the `mswoole`
//! binary (`main.rs`) is a thin `main` over it, and the fuzz targets (`fuzz/`,
//! docs/FUZZING.md) call its parsers directly.
//!
//! Data flows one way: socket ([`server`], [`handshake`]) → connection task
//! ([`connection`], [`frame_error`], [`message`]) → [`router`] → plugin ([`plugins`]) → host API
//! (`mswoole_core::services`, reaching out through [`plugins::outlet`]) →
//! [`registry`] and outbound queues ([`clients`], reached on any node through
//! [`delivery`], the one path of a frame for an fd, both ways). [`closer`] is the one
//! place a connection ends and its close sequence runs; [`drain`] spreads a stop's closes.
//! [`manager`] and [`cli`] drive a running host; [`error`] is the one place a
//! failure becomes an envelope. Modules' databases and HTTP are `mswoole-io`'s.
//!
//! What decides behaviour without a socket — [`message`], [`router`], [`error`],
//! [`envelope`], [`identity`], the registry trait and its memory backend, the close
//! sequence and the host API — lives in `mswoole-core`, which the module test kit
//! uses too; it is re-exported here under the names the host has always used.

pub mod auth;
pub mod backtraces;
pub mod browser_client;
pub mod cli;
pub mod clients;
pub mod closer;
pub mod config;
pub mod connection;
pub mod delivery;
pub mod demo;
pub mod drain;
pub mod frame_error;
pub mod handover;
pub mod handshake;
pub mod ip_limit;
pub mod log_file;
pub mod log_limit;
pub mod manager;
pub mod metrics;
pub mod new_module;
pub mod outbound;
pub mod plugins;
pub mod process;
pub mod rate_limit;
pub mod readiness;
pub mod registry;
pub mod server;
pub mod session;
pub mod sessions;
pub mod shared;
pub mod shutdown;
pub mod timers;

pub use mswoole_core::{envelope, error, identity, message, router};
