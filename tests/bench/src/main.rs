//! `ws-bench`: load generator, bare baseline server and benchmark suite for the mswoole
//! host (issue 5).
//!
//! The client side ([`client`], [`modes`]) runs on one current-thread tokio runtime by
//! default so that it measures the server, not itself; [`baseline`] is the reference
//! server; [`suite`] runs everything pinned with `taskset` and writes [`results`];
//! [`smoke`] is the few-second CI check.

mod baseline;
mod client;
mod direct_sql;
mod envelope;
mod machine;
mod manager;
mod modes;
mod procfs;
mod record;
mod report;
mod results;
mod server;
mod shard;
mod smoke;
mod stats;
mod suite;
mod token;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

use crate::{
    baseline::BaselineArgs,
    modes::{
        fanout::FanoutArgs, idle::IdleArgs, panics::PanicsArgs, rate::RateArgs, resume::ResumeArgs,
        rr::RrArgs, slow::SlowArgs, soak::SoakArgs, sql::SqlArgs, swap::SwapArgs,
    },
    report::Outcome,
    smoke::SmokeArgs,
    suite::SuiteArgs,
};

/// Load generator and benchmarks for the mswoole WebSocket host.
#[derive(Debug, Parser)]
#[command(name = "ws-bench", version, about)]
struct Cli {
    /// Print a mode's result as one JSON line instead of a table.
    #[arg(long, global = true)]
    json: bool,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Hold N authenticated connections with heartbeats; server memory per connection.
    Idle(IdleArgs),
    /// Closed-loop requests on C connections: requests/s and latency.
    Rr(RrArgs),
    /// A fixed offered load: server CPU time per request.
    Rate(RateArgs),
    /// A Live room broadcast to M members: time until the last one has it.
    Fanout(FanoutArgs),
    /// `rr` while the Index plugin file is replaced: the longest stall.
    Swap(SwapArgs),
    /// Phone users that stop reading while their rooms get 60 KB broadcasts: the host's
    /// memory against R × limits.outbound_bytes, and after they are gone (starts a host).
    Slow(SlowArgs),
    /// Plugin panics across hot swaps of a debug Index build: the host's memory against
    /// a bound (starts a host; `RUST_BACKTRACE=1` in its environment unless --no-env).
    Panics(PanicsArgs),
    /// N resumable sessions dropped at once and resumed at once: how long until all are back.
    Resume(ResumeArgs),
    /// A database-backed action (`swap.io.execute` / `swap.io.query` of the swap test
    /// fixture) at a fixed rate on the host and on the baseline calling sqlx directly:
    /// server CPU and latency per request, optionally beside slow queries (starts both).
    Sql(SqlArgs),
    /// Churning clients (connect, join a Live room, say, leave or abort) for minutes
    /// against one host or two on Redis: RSS, connections and registry records over
    /// time, and what is left at the end (starts its hosts).
    Soak(SoakArgs),
    /// Run the bare baseline server.
    Baseline(BaselineArgs),
    /// Run every mode against the baseline and the host, pinned, and write the results
    /// (needs `cargo build --release --workspace` first).
    Suite(SuiteArgs),
    /// A few-second check that the load generator works (for CI).
    Smoke(SmokeArgs),
}

/// Runs a mode and prints its outcome; 0 when clean, 2 when it saw problems.
fn report(json: bool, outcome: Result<Outcome, String>) -> Result<i32, String> {
    let outcome = outcome?;
    Ok(shown(
        json,
        || outcome.json(),
        || outcome.table(),
        outcome.problems().is_some(),
    ))
}

/// Prints a mode's result as JSON or as a table; the exit code: 2 when it found a problem.
fn shown(
    json: bool,
    as_json: impl FnOnce() -> String,
    as_table: impl FnOnce() -> String,
    problem: bool,
) -> i32 {
    if json {
        println!("{}", as_json());
    } else {
        print!("{}", as_table());
    }
    if problem {
        2
    } else {
        0
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    // Thousands of sockets: use every file descriptor the hard limit allows.
    if let Err(error) = rlimit::increase_nofile_limit(u64::MAX) {
        eprintln!("ws-bench: cannot raise the open-file limit: {error}");
    }
    let json = cli.json;
    let result = match cli.command {
        Command::Idle(args) => report(json, modes::idle::run(&args).map(Outcome::Idle)),
        Command::Rr(args) => report(json, modes::rr::run(&args).map(Outcome::Rr)),
        Command::Rate(args) => report(json, modes::rate::run(&args).map(Outcome::Rate)),
        Command::Fanout(args) => report(json, modes::fanout::run(&args).map(Outcome::Fanout)),
        Command::Swap(args) => report(json, modes::swap::run(&args).map(Outcome::Swap)),
        Command::Slow(args) => modes::slow::run(&args).map(|result| {
            shown(
                json,
                || result.json(),
                || result.table(),
                result.problem.is_some(),
            )
        }),
        Command::Panics(args) => modes::panics::run(&args).map(|result| {
            shown(
                json,
                || result.json(),
                || result.table(),
                result.problem.is_some(),
            )
        }),
        Command::Resume(args) => modes::resume::run(&args).map(|result| {
            shown(
                json,
                || result.json(),
                || result.table(),
                result.problem.is_some(),
            )
        }),
        Command::Sql(args) => modes::sql::run(&args).map(|result| {
            shown(
                json,
                || result.json(),
                || result.table(),
                result.problem.is_some(),
            )
        }),
        Command::Soak(args) => modes::soak::run(&args).map(|result| {
            shown(
                json,
                || result.json(),
                || result.table(),
                result.problem.is_some(),
            )
        }),
        Command::Baseline(args) => baseline::serve(&args).map(|()| 0),
        Command::Suite(args) => suite::run(&args),
        Command::Smoke(args) => smoke::run(&args),
    };
    match result {
        Ok(0) => ExitCode::SUCCESS,
        Ok(code) => ExitCode::from(u8::try_from(code).unwrap_or(1)),
        Err(error) => {
            eprintln!("ws-bench: {error}");
            ExitCode::FAILURE
        }
    }
}
