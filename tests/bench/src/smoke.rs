//! `ws-bench smoke`: proves the load generator works, at a size CI can afford (a few
//! connections, about a second per mode). It starts the baseline and the given host
//! itself, runs `rr`, `rate` and `idle` against both (and `fanout --floor` against the
//! baseline), `sql` on SQLite against both (the swap test fixture's SQL actions, see
//! `--io-plugin`), then `soak` for a few seconds with a few clients (it starts its own host
//! and needs the Live plugin next to it), and fails on any error, lost connection,
//! missed heartbeat or record left in the registry. Nothing is timed against a target:
//! benchmarks are never tests.

use std::path::PathBuf;

use clap::Args;

use crate::{
    client::Endpoint,
    modes::{
        fanout::{self, FanoutArgs},
        idle::{self, IdleArgs},
        rate::{self, RateArgs},
        rr::{self, RrArgs},
        soak::{self, SoakArgs},
        sql::{self, SqlArgs, Statement, Which},
        TargetArgs,
    },
    report::Outcome,
    server::{HostSetup, Registry, Server},
    token::DEFAULT_KEY,
};

/// Arguments of `smoke`.
#[derive(Debug, Clone, Args)]
pub struct SmokeArgs {
    /// The `mswoole` binary to test (e.g. target/debug/mswoole).
    #[arg(long)]
    pub host_bin: PathBuf,
    /// Directory of the built plugins (default: the host binary's directory).
    #[arg(long)]
    pub plugins: Option<PathBuf>,
    /// Also run `fanout` against the host (needs a working Live module).
    #[arg(long)]
    pub live: bool,
    /// The swap test fixture for the `sql` check (default: `fixtures/variants/libswap_v1.so`
    /// beside the host binary's directory, where tests/run.sh builds it).
    #[arg(long)]
    pub io_plugin: Option<PathBuf>,
}

/// `sql` at smoke size: SQLite, both statements, both servers, no pinning.
fn sql_check(args: &SmokeArgs, plugins: &std::path::Path) -> Result<String, String> {
    let io_plugin = match &args.io_plugin {
        Some(path) => path.clone(),
        None => plugins.join("../fixtures/variants/libswap_v1.so"),
    };
    let sql = SqlArgs {
        host_bin: args.host_bin.clone(),
        plugins: Some(plugins.to_path_buf()),
        io_plugin,
        database: "sqlite".into(),
        max_connections: 4,
        timeout_ms: 3000,
        statements: vec![Statement::Insert, Statement::Select],
        servers: vec![Which::Baseline, Which::Host],
        conns: 4,
        rate: 200.0,
        duration: 0.6,
        warmup: 0.2,
        repeat: 1,
        slow_conns: 0,
        slow_sql: None,
        db_pid: None,
        server_cpu: 0,
        client_cpu: 1,
        no_pin: true,
    };
    let result = sql::run(&sql)?;
    if let Some(problem) = result.problem {
        return Err(problem);
    }
    if result.runs.len() != 4 || result.runs.iter().any(|r| r.requests == 0) {
        return Err(format!(
            "no work was measured in some of the {} runs",
            result.runs.len()
        ));
    }
    Ok(result
        .medians
        .iter()
        .map(|m| format!("{:?} {:?} p50 {} ms", m.server, m.statement, m.p50_ms).to_lowercase())
        .collect::<Vec<_>>()
        .join(", "))
}

/// One smoke check: its name and what came of it.
type Check = (String, Result<Outcome, String>);

fn endpoint(server: &Server) -> Result<Endpoint, String> {
    server.url().parse()
}

/// The small runs against one server.
fn against(name: &str, server: &Server, checks: &mut Vec<Check>) -> Result<(), String> {
    let target = TargetArgs::new(endpoint(server)?);
    let rr = RrArgs {
        target: target.clone(),
        conns: 4,
        duration: 0.6,
        warmup: 0.2,
        threads: 1,
        pid: Some(server.pid),
    };
    checks.push((format!("rr / {name}"), rr::run(&rr).map(Outcome::Rr)));
    let rate = RateArgs {
        target: target.clone(),
        conns: 4,
        rate: 400.0,
        duration: 0.6,
        warmup: 0.2,
        pid: server.pid,
    };
    checks.push((
        format!("rate / {name}"),
        rate::run(&rate).map(Outcome::Rate),
    ));
    let idle = IdleArgs {
        target,
        conns: 20,
        hold: 1.0,
        heartbeat: 0.3,
        pid: Some(server.pid),
    };
    checks.push((
        format!("idle / {name}"),
        idle::run(&idle).map(Outcome::Idle),
    ));
    Ok(())
}

fn fanout_check(name: &str, server: &Server, floor: bool) -> Result<Check, String> {
    let args = FanoutArgs {
        urls: vec![endpoint(server)?],
        key: DEFAULT_KEY.into(),
        code: "smoke".into(),
        concurrency: 16,
        members: 20,
        rounds: 2,
        floor,
        pids: vec![server.pid],
        timeout: 5.0,
    };
    Ok((
        format!("fanout / {name}"),
        fanout::run(&args).map(Outcome::Fanout),
    ))
}

/// Whether a check passed: it ran, saw no problems, and did some work.
fn verdict(outcome: &Result<Outcome, String>) -> Result<(), String> {
    let outcome = outcome.as_ref().map_err(Clone::clone)?;
    if let Some(problems) = outcome.problems() {
        return Err(problems);
    }
    let idle_work = match outcome {
        Outcome::Rr(r) => r.requests > 0,
        Outcome::Rate(r) => r.requests > 0,
        Outcome::Idle(r) => r.conns_held == r.conns_wanted && r.heartbeats_ok > 0,
        Outcome::Fanout(r) => r.missing == 0,
        Outcome::Swap(r) => r.requests > 0,
    };
    if idle_work {
        Ok(())
    } else {
        Err("no work was measured".into())
    }
}

/// Runs the smoke test; returns the exit code (0: all passed, 1: some failed).
pub fn run(args: &SmokeArgs) -> Result<i32, String> {
    if !args.host_bin.is_file() {
        return Err(format!(
            "--host-bin {}: not found (build it first: cargo build --workspace)",
            args.host_bin.display()
        ));
    }
    let exe = std::env::current_exe().map_err(|e| format!("cannot find this executable: {e}"))?;
    let plugins = match &args.plugins {
        Some(dir) => dir.clone(),
        None => args
            .host_bin
            .parent()
            .map(PathBuf::from)
            .ok_or("--host-bin has no directory; pass --plugins")?,
    };
    let sql = sql_check(args, &plugins);
    let mut checks: Vec<Check> = Vec::new();
    {
        let baseline = Server::baseline(&exe, Some(1), None)?;
        against("baseline", &baseline, &mut checks)?;
        checks.push(fanout_check("baseline (floor)", &baseline, true)?);
        baseline.stop();
    }
    {
        let setup = HostSetup {
            bin: args.host_bin.clone(),
            plugins: plugins.clone(),
            registry: Registry::Memory,
            workers: 1,
            max_connections: 1000,
            idle_s: 60,
            outbound_bytes: None,
            extra_plugins: Vec::new(),
        };
        let host = Server::host(&setup, None)?;
        against("host", &host, &mut checks)?;
        if args.live {
            checks.push(fanout_check("host", &host, false)?);
        }
        host.stop();
    }
    let soaked = soak::run(&SoakArgs {
        host_bin: args.host_bin.clone(),
        plugins: Some(plugins),
        clients: 8,
        duration: 3.0,
        warmup: 1.0,
        sample: 1.0,
        pause: 0.1,
        abort_every: 2,
        rooms: 2,
        redis_url: None,
        workers: 1,
    });
    let mut failed = 0;
    // The soak's RSS bound means little over three seconds; errors and records left do.
    match soaked {
        Ok(r)
            if r.errors == 0
                && r.registered_end == 0
                && r.connections_end == 0
                && r.aborts > 0
                && r.cycles > r.aborts =>
        {
            println!(
                "ok     soak / host: {} cycles ({} by abort), registry empty at the end",
                r.cycles, r.aborts
            );
        }
        Ok(r) => {
            failed += 1;
            println!(
                "FAILED soak / host: {} cycles, {} aborts, {} errors {:?}, {} connections and {} records at the end",
                r.cycles, r.aborts, r.errors, r.first_errors, r.connections_end, r.registered_end
            );
        }
        Err(error) => {
            failed += 1;
            println!("FAILED soak / host: {error}");
        }
    }
    for (name, outcome) in &checks {
        match verdict(outcome) {
            Ok(()) => {
                let line = outcome.as_ref().map(Outcome::summary).unwrap_or_default();
                println!("ok     {name}: {line}");
            }
            Err(why) => {
                failed += 1;
                println!("FAILED {name}: {why}");
            }
        }
    }
    match &sql {
        Ok(line) => println!("ok     sql / sqlite (baseline, host): {line}"),
        Err(why) => {
            failed += 1;
            println!("FAILED sql / sqlite (baseline, host): {why}");
        }
    }
    println!(
        "smoke: {} passed, {failed} failed",
        checks.len() + 2 - failed
    );
    Ok(if failed == 0 { 0 } else { 1 })
}
