//! `mswoole`: the binary. Everything it runs lives in the library (`lib.rs`).

use std::process::ExitCode;

use mswoole::{app, cli, telemetry::backtraces};

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
            runtime.block_on(app::run(config))
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
