//! `swap`: the `rr` load while the Index plugin file is replaced K times, the way cargo
//! replaces a rebuilt library (remove the old file, then put the new one in place by
//! writing it under a temporary name in the same directory and renaming it). The figure
//! that matters is the longest time any single request waited.

use std::{
    io::ErrorKind,
    path::{Path, PathBuf},
    sync::{mpsc, Arc},
    time::{Duration, Instant},
};

use clap::Args;

use crate::{
    manager,
    modes::{
        requests::{self, Events, Pacing},
        rr::RrArgs,
        seconds,
    },
    report::SwapResult,
    shard,
    stats::round3,
};

/// Arguments of `swap`.
#[derive(Debug, Clone, Args)]
pub struct SwapArgs {
    #[command(flatten)]
    pub rr: RrArgs,
    /// The host's plugin directory (`[plugins] dir`).
    #[arg(long)]
    pub plugin_dir: PathBuf,
    /// Files to put in place in turn (comma-separated), e.g. builds of the Index plugin.
    #[arg(long, value_delimiter = ',', required = true, num_args = 1..)]
    pub variants: Vec<PathBuf>,
    /// Replacements, spread evenly over the measured window.
    #[arg(long, default_value_t = 4)]
    pub swaps: usize,
    /// The name replaced in the plugin directory.
    #[arg(long, default_value = "libmswoole_index.so")]
    pub file: String,
    /// The host's manager URL (`ws://IP:PORT`): report the Index generation before and after.
    #[arg(long)]
    pub manager: Option<String>,
}

/// Replaces `dir/file` with `variant` as cargo does: remove, then link (or copy) to a
/// temporary name in the same directory and rename over the final name.
pub fn replace(dir: &Path, file: &str, variant: &Path) -> Result<(), String> {
    let target = dir.join(file);
    let temp = dir.join(format!(".{file}.ws-bench-tmp"));
    let _ = std::fs::remove_file(&temp);
    match std::fs::remove_file(&target) {
        Ok(()) => {}
        Err(e) if e.kind() == ErrorKind::NotFound => {}
        Err(e) => return Err(format!("remove {}: {e}", target.display())),
    }
    if std::fs::hard_link(variant, &temp).is_err() {
        std::fs::copy(variant, &temp)
            .map_err(|e| format!("copy {} to {}: {e}", variant.display(), temp.display()))?;
    }
    std::fs::rename(&temp, &target)
        .map_err(|e| format!("rename {} to {}: {e}", temp.display(), target.display()))
}

/// A duration in milliseconds, 3 decimals.
fn ms(d: Duration) -> f64 {
    round3(d.as_secs_f64() * 1000.0)
}

/// The plugin status the manager reports, if a manager URL was given and answers.
fn plugin_status(manager: Option<&str>) -> Option<manager::PluginStatus> {
    let url = manager?;
    shard::block_on(manager::plugin_status(url)).ok()?.ok()
}

/// Polls the manager until the Index generation moves past `previous` (at most 5 s);
/// returns how long that took and the new generation. The polling costs the host a
/// handshake every 20 ms, which the stall figures include.
fn wait_for_generation(manager: Option<&str>, previous: u64) -> Option<(Duration, u64)> {
    let started = Instant::now();
    while started.elapsed() < Duration::from_secs(5) {
        if let Some(now) = plugin_status(manager).and_then(|s| s.index_generation) {
            if now > previous {
                return Some((started.elapsed(), now));
            }
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    None
}

/// Runs `swap`.
pub fn run(args: &SwapArgs) -> Result<SwapResult, String> {
    for variant in &args.variants {
        if !variant.is_file() {
            return Err(format!("--variants: {} is not a file", variant.display()));
        }
    }
    if !args.plugin_dir.is_dir() {
        return Err(format!(
            "--plugin-dir {} is not a directory",
            args.plugin_dir.display()
        ));
    }
    let before = plugin_status(args.manager.as_deref());
    let (window_tx, window_rx) = mpsc::channel::<(Instant, Instant)>();
    let events = Arc::new(Events::default());
    let swapper = {
        let (dir, file, variants, swaps, events, manager) = (
            args.plugin_dir.clone(),
            args.file.clone(),
            args.variants.clone(),
            args.swaps,
            events.clone(),
            args.manager.clone(),
        );
        let mut generation = before.as_ref().and_then(|b| b.index_generation);
        // File operations block: they run on their own thread, never on the client's.
        std::thread::spawn(move || {
            let (mut outcomes, mut latencies) = (Vec::new(), Vec::new());
            let Ok((start, end)) = window_rx.recv() else {
                return (outcomes, latencies);
            };
            let step = (end - start) / u32::try_from(swaps + 1).unwrap_or(u32::MAX);
            for k in 0..swaps {
                let at = start + step * u32::try_from(k + 1).unwrap_or(u32::MAX);
                std::thread::sleep(at.saturating_duration_since(Instant::now()));
                events.mark();
                let replaced = replace(&dir, &file, &variants[k % variants.len()]);
                if let (Ok(()), Some(previous)) = (&replaced, generation) {
                    if let Some((latency, now)) = wait_for_generation(manager.as_deref(), previous)
                    {
                        latencies.push(ms(latency));
                        generation = Some(now);
                    }
                }
                outcomes.push(replaced);
            }
            (outcomes, latencies)
        })
    };
    let mut plan = args.rr.plan(Pacing::Closed);
    plan.events = Some(events);
    let run = requests::run(&plan, &move |start, end| {
        let _ = window_tx.send((start, end));
    });
    let (outcomes, swap_latency_ms) = swapper
        .join()
        .map_err(|_| "the swapping thread panicked".to_string())?;
    let run = run?;
    // Give the watcher time to settle on the last replacement before asking.
    std::thread::sleep(seconds(3.0));
    let after = plugin_status(args.manager.as_deref());
    // Files with a refusal on record that had none before the run.
    let refused =
        |status: &Option<manager::PluginStatus>| status.as_ref().map_or(0, |s| s.refusals.len());
    let refusals = refused(&after).saturating_sub(refused(&before));
    let swap_errors: Vec<&String> = outcomes.iter().filter_map(|o| o.as_ref().err()).collect();
    let window = seconds(args.rr.duration).as_secs_f64().max(1e-9);
    let requests = run.requests();
    let latency = run.tally.latencies.summary();
    let mut first_error = run.tally.first_error;
    if first_error.is_none() {
        first_error = swap_errors.first().map(|e| format!("swap: {e}"));
    }
    if first_error.is_none() && refusals > 0 {
        first_error = after
            .as_ref()
            .and_then(|a| a.refusals.last())
            .map(|r| format!("the host refused a replacement: {r}"));
    }
    Ok(SwapResult {
        url: args.rr.target.url.to_string(),
        conns: args.rr.conns,
        duration_s: args.rr.duration,
        swaps: outcomes.len() - swap_errors.len(),
        swap_errors: swap_errors.len(),
        generation_before: before.as_ref().and_then(|b| b.index_generation),
        generation_after: after.as_ref().and_then(|a| a.index_generation),
        refusals,
        requests,
        rps: round3(requests as f64 / window),
        longest_stall_ms: latency.max_ms,
        longest_stall_near_swaps_ms: ms(run.tally.longest_near_event),
        longest_stall_elsewhere_ms: ms(run.tally.longest_elsewhere),
        swap_latency_ms,
        latency,
        errors: run.tally.errors,
        lost: run.tally.lost,
        first_error,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replaces_like_cargo() {
        let dir = std::env::temp_dir().join(format!("ws-bench-swap-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        let a = dir.join("a.bin");
        let b = dir.join("b.bin");
        std::fs::write(&a, "A").expect("write a");
        std::fs::write(&b, "B").expect("write b");
        let plugins = dir.join("plugins");
        std::fs::create_dir_all(&plugins).expect("plugins dir");
        replace(&plugins, "libx.so", &a).expect("first replace (no file yet)");
        assert_eq!(
            std::fs::read_to_string(plugins.join("libx.so")).expect("read"),
            "A"
        );
        replace(&plugins, "libx.so", &b).expect("second replace");
        assert_eq!(
            std::fs::read_to_string(plugins.join("libx.so")).expect("read"),
            "B"
        );
        let names: Vec<_> = std::fs::read_dir(&plugins)
            .expect("list")
            .filter_map(|e| e.ok().map(|e| e.file_name()))
            .collect();
        assert_eq!(names.len(), 1, "no temporary file is left: {names:?}");
        std::fs::remove_dir_all(&dir).expect("cleanup");
    }
}
