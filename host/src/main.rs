//! `mswoole`: MSwoole's WebSocket service as a plugin host.
//!
//! Data flows one way: socket ([`server`], [`handshake`]) → connection task
//! ([`connection`], [`message`]) → [`router`] → plugin ([`plugins`]) → host API
//! ([`plugins::host_api`]) → [`registry`] and outbound queues ([`clients`], reached
//! on any node through [`delivery`]).
//! [`manager`] and [`cli`] drive a running host; [`error`] is the one place a
//! failure becomes an envelope.

mod auth;
mod cli;
mod clients;
mod config;
mod connection;
// The plugin host API (plugins/host_api.rs) is what calls query/execute/transaction.
#[allow(dead_code)]
mod databases;
mod delivery;
mod envelope;
mod error;
mod handshake;
// The plugin host API (plugins/host_api.rs) is what calls request.
#[allow(dead_code)]
mod http_client;
mod identity;
mod manager;
mod message;
mod outbound;
mod plugins;
mod process;
mod registry;
mod router;
mod server;
mod shared;
mod shutdown;

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let cli = cli::Cli::parse();
    let outcome = cli::load_config(&cli).and_then(|config| {
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
