//! `rr`: C connections in a closed loop (send `index.index.index`, wait for `success`,
//! repeat) for a window after a warm-up: requests/s and latency percentiles.

use clap::Args;

use crate::{
    modes::{
        parse_seconds,
        requests::{self, Pacing, Plan},
        seconds, TargetArgs,
    },
    report::RrResult,
    stats::{round3, spread},
};

/// Arguments of `rr`.
#[derive(Debug, Clone, Args)]
pub struct RrArgs {
    #[command(flatten)]
    pub target: TargetArgs,
    /// Connections, one request in flight each.
    #[arg(long, default_value_t = 100)]
    pub conns: usize,
    /// Measured seconds.
    #[arg(long, default_value_t = 10.0, value_parser = parse_seconds)]
    pub duration: f64,
    /// Unmeasured seconds before the window.
    #[arg(long, default_value_t = 2.0, value_parser = parse_seconds)]
    pub warmup: f64,
    /// Client threads, each a current-thread runtime (1 = the measurement setup).
    #[arg(long, default_value_t = 1)]
    pub threads: usize,
    /// The server's pid: also report its CPU per request.
    #[arg(long)]
    pub pid: Option<u32>,
}

impl RrArgs {
    /// The engine's plan for these arguments.
    pub fn plan(&self, pacing: Pacing) -> Plan {
        Plan {
            target: self.target.clone(),
            conns: self.conns,
            threads: self.threads,
            warmup: seconds(self.warmup),
            duration: seconds(self.duration),
            pid: self.pid,
            pacing,
            events: None,
        }
    }
}

/// Runs `rr`.
pub fn run(args: &RrArgs) -> Result<RrResult, String> {
    let run = requests::run(&args.plan(Pacing::Closed), &|_, _| {})?;
    let window = seconds(args.duration).as_secs_f64().max(1e-9);
    let requests = run.requests();
    let per_req =
        |cpu: std::time::Duration| round3(cpu.as_secs_f64() * 1e6 / requests.max(1) as f64);
    Ok(RrResult {
        url: args.target.url.to_string(),
        conns: args.conns,
        threads: args.threads.max(1),
        duration_s: args.duration,
        requests,
        rps: round3(requests as f64 / window),
        latency: run.tally.latencies.summary(),
        errors: run.tally.errors,
        lost: run.tally.lost,
        connect_errors: run.connect_errors,
        client_cpu_pct: round3(run.client_cpu.as_secs_f64() * 100.0 / window),
        server_cpu_pct: run
            .server_cpu
            .map(|cpu| round3(cpu.as_secs_f64() * 100.0 / window)),
        server_cpu_us_per_req: run.server_cpu.map(per_req),
        per_conn: spread(&run.tally.per_conn),
        first_error: run.tally.first_error,
    })
}
