//! `mswoole`: MSwoole's WebSocket service as a plugin host.
//!
//! Data flows one way: socket ([`server`], [`handshake`]) → connection task
//! ([`connection`], [`frame_error`], [`message`]) → [`router`] → plugin ([`plugins`]) → host API
//! (`mswoole_core::services`, reaching out through [`plugins::outlet`]) →
//! [`registry`] and outbound queues ([`clients`], reached on any node through
//! [`delivery`], the one path of a frame for an fd, both ways). [`closer`] is the one
//! place a connection ends and its close sequence runs; [`drain`] spreads a stop's closes.
//! [`manager`] and [`cli`] drive a running host; [`error`] is the one place a
//! failure becomes an envelope.
//!
//! What decides behaviour without a socket — [`message`], [`router`], [`error`],
//! [`envelope`], [`identity`], the registry trait and its memory backend, the close
//! sequence and the host API — lives in `mswoole-core`, which the module test kit
//! uses too; it is re-exported here under the names the host has always used.

mod auth;
mod backtraces;
mod browser_client;
mod cli;
mod clients;
mod closer;
mod config;
mod connection;
mod delivery;
mod demo;
mod drain;
mod frame_error;
mod handshake;
mod ip_limit;
mod log_file;
mod log_limit;
mod manager;
mod metrics;
mod new_module;
mod outbound;
mod plugins;
mod process;
mod rate_limit;
mod readiness;
mod registry;
mod server;
mod session;
mod sessions;
mod shared;
mod shutdown;
mod timers;

use std::process::ExitCode;

use mswoole_core::{envelope, error, identity, message, router};

use clap::Parser;

/// The host's allocator is jemalloc with background purging: after a burst of slow
/// consumers it gives their memory back to the OS within seconds, where glibc's malloc
/// kept up to 300 MB resident and mimalloc all of it (docs/BENCHMARKS.md, "Slow consumers
/// and memory"). Only the host's own allocations use it: a plugin keeps its own allocator
/// (README, "Rules"), and what crosses the ABI is freed by the side that allocated it
/// (abi_stable's types carry their destructor).
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

fn main() -> ExitCode {
    let cli = cli::Cli::parse();
    let outcome = cli::load_config(&cli).and_then(|config| {
        if cli.is_start() {
            backtraces::apply(config.log.plugin_backtraces);
        }
        // One worker means the current-thread runtime: on one core the multi-threaded
        // one served connections unevenly (p99 ~10x higher at 1,000 connections).
        let mut builder = match (cli.is_start(), config.runtime.workers) {
            (true, 1) | (false, _) => tokio::runtime::Builder::new_current_thread(),
            (true, workers) => {
                let mut builder = tokio::runtime::Builder::new_multi_thread();
                if workers > 0 {
                    builder.worker_threads(workers);
                }
                builder
            }
        };
        let runtime = builder
            .enable_all()
            .build()
            .map_err(|e| format!("cannot start the runtime: {e}"))?;
        if cli.is_start() {
            runtime.block_on(server::run(config))
        } else {
            runtime.block_on(cli::run(cli, config))
        }
    });
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(reason) => {
            eprintln!("mswoole: {reason}");
            ExitCode::FAILURE
        }
    }
}
