//! `rate`: a fixed offered load spread over C connections; the figure that matters is
//! the server's CPU time per request (`/proc/<pid>/stat` utime+stime over the window),
//! which does not depend on how fast the load generator is.

use clap::Args;

use crate::{
    modes::{
        parse_seconds,
        requests::{self, Pacing, Plan},
        seconds, TargetArgs,
    },
    report::RateResult,
    stats::round3,
};

/// Arguments of `rate`.
#[derive(Debug, Clone, Args)]
pub struct RateArgs {
    #[command(flatten)]
    pub target: TargetArgs,
    /// Connections the load is spread over.
    #[arg(long, default_value_t = 100)]
    pub conns: usize,
    /// Requests per second offered, in total.
    #[arg(long, default_value_t = 20_000.0)]
    pub rate: f64,
    /// Measured seconds.
    #[arg(long, default_value_t = 10.0, value_parser = parse_seconds)]
    pub duration: f64,
    /// Unmeasured seconds before the window.
    #[arg(long, default_value_t = 2.0, value_parser = parse_seconds)]
    pub warmup: f64,
    /// The server's pid (required: CPU per request is what this mode reports).
    #[arg(long)]
    pub pid: u32,
}

/// Runs `rate`.
pub fn run(args: &RateArgs) -> Result<RateResult, String> {
    if !(args.rate.is_finite() && args.rate > 0.0) {
        return Err(format!("--rate {}: must be a positive number", args.rate));
    }
    let plan = Plan {
        target: args.target.clone(),
        conns: args.conns,
        threads: 1,
        warmup: seconds(args.warmup),
        duration: seconds(args.duration),
        pid: Some(args.pid),
        pacing: Pacing::Rate(args.rate),
        events: None,
    };
    let run = requests::run(&plan, &|_, _| {})?;
    let window = seconds(args.duration).as_secs_f64().max(1e-9);
    let requests = run.requests();
    let server_cpu = run
        .server_cpu
        .ok_or("the server's CPU time could not be read")?
        .as_secs_f64();
    Ok(RateResult {
        url: args.target.url.to_string(),
        conns: args.conns,
        offered_rps: args.rate,
        achieved_rps: round3(requests as f64 / window),
        requests,
        duration_s: args.duration,
        server_cpu_s: round3(server_cpu),
        server_cpu_us_per_req: round3(server_cpu * 1e6 / requests.max(1) as f64),
        server_cpu_pct: round3(server_cpu * 100.0 / window),
        client_cpu_pct: round3(run.client_cpu.as_secs_f64() * 100.0 / window),
        latency: run.tally.latencies.summary(),
        errors: run.tally.errors,
        lost: run.tally.lost,
        connect_errors: run.connect_errors,
        first_error: run.tally.first_error,
    })
}
