//! `panics`: what plugin panics cost the host's memory, across hot swaps (issue 12).
//!
//! The case: one panic in a debug build of a plugin, with `RUST_BACKTRACE=1`
//! in the host's environment, took its RSS from 8 MB to 112 MB, since the plugin's own
//! std symbolised a backtrace from the plugin's debug info and kept it. This mode
//! starts a host (with `[modules.Index] debug_actions = true` and the chosen
//! `[log] plugin_backtraces`, and `RUST_BACKTRACE=1` unless `--no-env`), then for each
//! of `--swaps` rounds swaps a fresh copy of the Index plugin in (as cargo replaces a
//! rebuilt library), waits for the new generation, and sends `--panics / --swaps`
//! `index.debug.panic` calls, each answered 500. The host's RSS is read before the
//! first panic and after each round, once the old version has been unloaded.
//!
//! Needs a debug build of the Index plugin (its `debug` controller exists in debug
//! builds only). A growth past `--bound-mib` is reported as a problem (exit 2). Nothing
//! here is a timed test; it starts its own host.

use std::{
    path::{Path, PathBuf},
    time::Duration,
};

use clap::Args;
use futures_util::{SinkExt, StreamExt};
use serde::Serialize;
use serde_json::json;
use tokio_tungstenite::tungstenite::Message;

use crate::{
    client::{self, Endpoint, Ws},
    envelope, manager,
    modes::swap,
    procfs,
    server::{temp_dir, HostSetup, Registry, Server},
    shard,
    token::{Claims, Codec, DEFAULT_KEY},
};

/// How long one reply or one swap may take.
const STEP: Duration = Duration::from_secs(10);
/// How long the old version gets to be unloaded before RSS is read.
const SETTLE: Duration = Duration::from_millis(500);

/// Arguments of `panics`.
#[derive(Debug, Clone, Args)]
pub struct PanicsArgs {
    /// The `mswoole` binary (target/debug/mswoole: the Index plugin beside it must be a
    /// debug build).
    #[arg(long)]
    pub host_bin: PathBuf,
    /// Directory of the built plugins (default: the host binary's directory).
    #[arg(long)]
    pub plugins: Option<PathBuf>,
    /// Hot swaps of the Index plugin.
    #[arg(long, default_value_t = 10)]
    pub swaps: usize,
    /// Panics in all, spread evenly over the swaps.
    #[arg(long, default_value_t = 1000)]
    pub panics: usize,
    /// `[log] plugin_backtraces` of the host.
    #[arg(long)]
    pub plugin_backtraces: bool,
    /// Start the host without `RUST_BACKTRACE=1` in its environment.
    #[arg(long)]
    pub no_env: bool,
    /// The growth allowed, MiB.
    #[arg(long, default_value_t = 4)]
    pub bound_mib: u64,
}

/// `panics` results.
#[derive(Debug, Clone, Serialize)]
pub struct PanicsResult {
    /// Swaps done.
    pub swaps: usize,
    /// Panics answered 500.
    pub panics: usize,
    /// `[log] plugin_backtraces`.
    pub plugin_backtraces: bool,
    /// Whether the host ran with `RUST_BACKTRACE=1`.
    pub rust_backtrace_env: bool,
    /// RSS before the first panic, KiB.
    pub baseline_kib: u64,
    /// RSS after each round, KiB.
    pub after_round_kib: Vec<u64>,
    /// Last − baseline, KiB (negative: it shrank).
    pub growth_kib: i64,
    /// The bound, KiB.
    pub bound_kib: u64,
    /// The first problem seen.
    pub problem: Option<String>,
}

impl PanicsResult {
    /// The human-readable form.
    pub fn table(&self) -> String {
        let rounds: Vec<String> = self.after_round_kib.iter().map(u64::to_string).collect();
        format!(
            "panics: {} panics over {} swaps, plugin_backtraces={}, RUST_BACKTRACE={}\n  \
             RSS before: {} KiB\n  after each round: {} KiB\n  growth: {} KiB (bound {} KiB)\n{}",
            self.panics,
            self.swaps,
            self.plugin_backtraces,
            if self.rust_backtrace_env {
                "1"
            } else {
                "unset"
            },
            self.baseline_kib,
            rounds.join(", "),
            self.growth_kib,
            self.bound_kib,
            self.problem
                .as_ref()
                .map(|p| format!("  PROBLEM: {p}\n"))
                .unwrap_or_default(),
        )
    }

    /// One JSON line.
    pub fn json(&self) -> String {
        serde_json::to_string(self).unwrap_or_default()
    }
}

/// Runs `panics`.
pub fn run(args: &PanicsArgs) -> Result<PanicsResult, String> {
    if args.swaps == 0 || args.panics < args.swaps {
        return Err("--swaps must be at least 1 and --panics at least --swaps".into());
    }
    let plugins = match &args.plugins {
        Some(dir) => dir.clone(),
        None => args
            .host_bin
            .parent()
            .map(PathBuf::from)
            .ok_or("--host-bin has no directory; pass --plugins")?,
    };
    // Two copies of the Index plugin, put in place in turn: each is a new file to the
    // watcher, as a rebuild is.
    let copies = temp_dir("panics-variants")?;
    let mut variants = Vec::new();
    for name in ["a", "b"] {
        let copy = copies.join(format!("libmswoole_index.{name}.so"));
        std::fs::copy(plugins.join("libmswoole_index.so"), &copy)
            .map_err(|e| format!("copy the Index plugin: {e}"))?;
        variants.push(copy);
    }
    let setup = HostSetup {
        bin: args.host_bin.clone(),
        plugins,
        registry: Registry::Memory,
        workers: 1,
        max_connections: 100,
        idle_s: 600,
        outbound_bytes: None,
        extra_plugins: Vec::new(),
    };
    let extra = format!(
        "plugin_backtraces = {}\n\n[modules.Index]\ndebug_actions = true\n",
        args.plugin_backtraces
    );
    let env: &[(&str, &str)] = if args.no_env {
        &[]
    } else {
        &[("RUST_BACKTRACE", "1")]
    };
    let host = Server::host_with(&setup, None, &extra, env)?;
    let result = shard::block_on(measure(args, &host, &variants));
    host.stop();
    let _ = std::fs::remove_dir_all(&copies);
    result?
}

/// Sends one message and reads until a reply other than the ack; returns its status.
async fn call(ws: &mut Ws, method: &str) -> Result<i64, String> {
    ws.send(Message::text(json!({ "method": method }).to_string()))
        .await
        .map_err(|e| format!("{method}: {e}"))?;
    let reply = async {
        while let Some(frame) = ws.next().await {
            match frame.map_err(|e| format!("{method}: {e}"))? {
                Message::Text(text) if envelope::event(&text) != Some("receiveMessage") => {
                    return envelope::status(&text)
                        .ok_or_else(|| format!("{method}: not an envelope: {text}"));
                }
                Message::Close(frame) => return Err(format!("{method}: closed ({frame:?})")),
                _ => {}
            }
        }
        Err(format!("{method}: connection ended"))
    };
    tokio::time::timeout(STEP, reply)
        .await
        .map_err(|_| format!("{method}: no reply within {STEP:?}"))?
}

/// Swaps the Index plugin in and waits for its generation to move past `previous`.
async fn swap_in(
    host: &Server,
    manager_url: &str,
    variant: &Path,
    previous: u64,
) -> Result<u64, String> {
    swap::replace(&host.dir.join("plugins"), "libmswoole_index.so", variant)?;
    let started = tokio::time::Instant::now();
    while started.elapsed() < STEP {
        let status = manager::plugin_status(manager_url).await?;
        if let Some(generation) = status.index_generation.filter(|g| *g > previous) {
            return Ok(generation);
        }
        if let Some(refusal) = status.refusals.last() {
            return Err(format!("the swap was refused: {refusal}"));
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    Err(format!("no new Index generation within {STEP:?}"))
}

async fn measure(
    args: &PanicsArgs,
    host: &Server,
    variants: &[PathBuf],
) -> Result<PanicsResult, String> {
    let url: Endpoint = host.url().parse()?;
    let manager_url = host.manager_url().ok_or("the host has no manager port")?;
    let codec = Codec::new(DEFAULT_KEY);
    let token = codec.mint(&Claims::user(1, "panics"));
    let mut ws = client::connect(&url, client::source_addr(0), &token).await?;
    if call(&mut ws, "index.index.index").await? != 200 {
        return Err("index.index.index did not answer 200".into());
    }
    let mut generation = manager::plugin_status(&manager_url)
        .await?
        .index_generation
        .ok_or("status shows no Index module")?;
    tokio::time::sleep(SETTLE).await;
    let baseline = procfs::rss_bytes(host.pid)? / 1024;
    let mut after_round = Vec::new();
    let mut panics = 0;
    let per_round = args.panics / args.swaps;
    for round in 0..args.swaps {
        generation = swap_in(
            host,
            &manager_url,
            &variants[round % variants.len()],
            generation,
        )
        .await?;
        for _ in 0..per_round {
            let status = call(&mut ws, "index.debug.panic").await?;
            if status != 500 {
                return Err(format!("index.debug.panic answered {status}, not 500: is the Index plugin a debug build?"));
            }
            panics += 1;
        }
        tokio::time::sleep(SETTLE).await;
        after_round.push(procfs::rss_bytes(host.pid)? / 1024);
    }
    let last = after_round.last().copied().unwrap_or(baseline);
    let growth = i64::try_from(last).unwrap_or(i64::MAX) - i64::try_from(baseline).unwrap_or(0);
    let bound = args.bound_mib * 1024;
    let problem = (growth > i64::try_from(bound).unwrap_or(i64::MAX))
        .then(|| format!("RSS grew {growth} KiB, over the bound of {bound} KiB"));
    Ok(PanicsResult {
        swaps: args.swaps,
        panics,
        plugin_backtraces: args.plugin_backtraces,
        rust_backtrace_env: !args.no_env,
        baseline_kib: baseline,
        after_round_kib: after_round,
        growth_kib: growth,
        bound_kib: bound,
        problem,
    })
}
