//! The suite's written results: the targets of issue 5 checked against the measurements,
//! a dated markdown file (machine, setup, targets, every run, JSON lines) in
//! `docs/bench-results/`, and the latest-results section of `docs/BENCHMARKS.md`.

use std::path::{Path, PathBuf};

use crate::{
    machine::Machine,
    record::{label, scenario, Record},
    report::Outcome,
};

/// Start and end markers of the generated section of `docs/BENCHMARKS.md`.
pub const DOCS_START: &str = "<!-- ws-bench:latest:start -->";
/// See [`DOCS_START`].
pub const DOCS_END: &str = "<!-- ws-bench:latest:end -->";

/// How the suite was run.
#[derive(Debug, Clone)]
pub struct Setup {
    /// The command line.
    pub command: String,
    /// CPU the servers were pinned to.
    pub server_cpu: Option<usize>,
    /// CPU the load generator was pinned to.
    pub client_cpu: Option<usize>,
    /// `idle` connections.
    pub idle_conns: usize,
    /// `rate` offered load.
    pub rate: f64,
    /// `fanout` room size.
    pub fanout_members: usize,
    /// Measured seconds per run.
    pub duration: f64,
    /// How long the suite took.
    pub elapsed_s: u64,
    /// `/proc/loadavg` when the suite ended.
    pub loadavg_end: String,
    /// Runs per scenario and server (the median is kept).
    pub repeat: usize,
}

/// Whether a target was met.
#[derive(Debug, Clone, PartialEq)]
enum Verdict {
    Met,
    Missed,
    NotMeasured(String),
}

/// One line of the targets table.
struct Row {
    scenario: String,
    metric: &'static str,
    reference: String,
    host: String,
    ratio: String,
    target: String,
    verdict: Verdict,
}

/// The outcome of `scenario` against `server`, or why there is none.
fn find<'a>(records: &'a [Record], scenario: &str, server: &str) -> Result<&'a Outcome, String> {
    let record = records
        .iter()
        .find(|r| r.scenario == scenario && r.server == server)
        .ok_or_else(|| "not run".to_string())?;
    match (&record.outcome, &record.error, &record.skipped) {
        (Some(outcome), _, _) => Ok(outcome),
        (_, Some(error), _) => Err(format!("failed: {error}")),
        (_, _, Some(why)) => Err(format!("skipped: {why}")),
        _ => Err("nothing recorded".into()),
    }
}

fn num(x: f64) -> String {
    if x.abs() >= 1000.0 {
        let s = format!("{:.0}", x.round());
        let (sign, digits) = s.strip_prefix('-').map_or(("", s.as_str()), |d| ("-", d));
        let mut out = String::new();
        for (i, c) in digits.chars().enumerate() {
            if i > 0 && (digits.len() - i) % 3 == 0 {
                out.push(',');
            }
            out.push(c);
        }
        format!("{sign}{out}")
    } else if x.abs() >= 100.0 {
        format!("{x:.0}")
    } else {
        format!("{x:.2}")
    }
}

fn ratio(host: f64, reference: f64) -> String {
    if reference > 0.0 {
        format!("{:.2}×", host / reference)
    } else {
        "-".into()
    }
}

/// The value in a cell: the number, or `-` when it is missing.
fn cell<T>(value: &Result<T, String>, show: impl Fn(&T) -> String) -> String {
    value.as_ref().map_or_else(|_| "-".into(), show)
}

/// Builds a row from two optional measurements.
#[allow(clippy::too_many_arguments)]
fn row<A, B>(
    scenario: &str,
    metric: &'static str,
    reference: Result<A, String>,
    host: Result<B, String>,
    show_ref: impl Fn(&A) -> String,
    show_host: impl Fn(&B) -> String,
    ratio_of: impl Fn(&A, &B) -> String,
    target: String,
    met: impl Fn(&B, Option<&A>) -> Result<bool, String>,
) -> Row {
    let verdict = match &host {
        Err(why) => Verdict::NotMeasured(why.clone()),
        Ok(h) => match met(h, reference.as_ref().ok()) {
            Ok(true) => Verdict::Met,
            Ok(false) => Verdict::Missed,
            Err(why) => Verdict::NotMeasured(why),
        },
    };
    let ratio = match (&reference, &host) {
        (Ok(r), Ok(h)) => ratio_of(r, h),
        _ => "-".into(),
    };
    Row {
        scenario: scenario.into(),
        metric,
        reference: cell(&reference, show_ref),
        host: cell(&host, show_host),
        ratio,
        target,
        verdict,
    }
}

/// The reference value, or why a ratio target cannot be checked without it.
fn needs<T>(reference: Option<T>, what: &str) -> Result<T, String> {
    reference.ok_or_else(|| format!("no {what} to compare with"))
}

/// The issue's targets, checked.
fn rows(records: &[Record], setup: &Setup) -> Vec<Row> {
    let mut rows = Vec::new();
    let idle = |server| match find(records, scenario::IDLE, server) {
        Ok(Outcome::Idle(r)) => Ok(r.clone()),
        Ok(_) => Err("wrong mode".to_string()),
        Err(e) => Err(e),
    };
    let rr = |sc, server| match find(records, sc, server) {
        Ok(Outcome::Rr(r)) => Ok(r.clone()),
        Ok(_) => Err("wrong mode".to_string()),
        Err(e) => Err(e),
    };
    let rate = |server| match find(records, scenario::RATE, server) {
        Ok(Outcome::Rate(r)) => Ok(r.clone()),
        Ok(_) => Err("wrong mode".to_string()),
        Err(e) => Err(e),
    };
    let fanout = |sc, server| match find(records, sc, server) {
        Ok(Outcome::Fanout(r)) => Ok(r.clone()),
        Ok(_) => Err("wrong mode".to_string()),
        Err(e) => Err(e),
    };
    let idle_name = format!("idle, {} conns", num(setup.idle_conns as f64));
    let wanted = setup.idle_conns;
    rows.push(row(
        &idle_name,
        "connections held with heartbeats",
        idle(label::BASELINE),
        idle(label::HOST),
        |r| num(r.conns_held as f64),
        |r| num(r.conns_held as f64),
        |_, _| "-".into(),
        format!("{} held, none lost", num(wanted as f64)),
        |h, _| Ok(h.conns_held >= wanted && h.lost == 0 && h.heartbeats_missed == 0),
    ));
    rows.push(row(
        &idle_name,
        "server RSS per connection, bytes",
        idle(label::BASELINE),
        idle(label::HOST),
        |r| r.bytes_per_conn.map_or("-".into(), |b| num(b as f64)),
        |r| r.bytes_per_conn.map_or("-".into(), |b| num(b as f64)),
        |r, h| match (r.bytes_per_conn, h.bytes_per_conn) {
            (Some(r), Some(h)) => ratio(h as f64, r as f64),
            _ => "-".into(),
        },
        "≤ 4,096".into(),
        |h, _| needs(h.bytes_per_conn, "RSS reading").map(|b| b <= 4096),
    ));
    rows.push(row(
        "rr, 100 conns",
        "requests/s",
        rr(scenario::RR_100, label::BASELINE),
        rr(scenario::RR_100, label::HOST),
        |r| num(r.rps),
        |h| num(h.rps),
        |r, h| ratio(h.rps, r.rps),
        "≥ 0.9× baseline".into(),
        |h, r| needs(r, "baseline").map(|r| h.rps >= 0.9 * r.rps),
    ));
    rows.push(row(
        "rr, 100 conns",
        "p99 latency, ms",
        rr(scenario::RR_100, label::BASELINE),
        rr(scenario::RR_100, label::HOST),
        |r| num(r.latency.p99_ms),
        |h| num(h.latency.p99_ms),
        |r, h| ratio(h.latency.p99_ms, r.latency.p99_ms),
        "≤ 3 ms".into(),
        |h, _| Ok(h.latency.p99_ms <= 3.0 && h.requests > 0),
    ));
    rows.push(row(
        "rr, 1,000 conns",
        "requests/s",
        rr(scenario::RR_1000, label::BASELINE),
        rr(scenario::RR_1000, label::HOST),
        |r| num(r.rps),
        |h| num(h.rps),
        |r, h| ratio(h.rps, r.rps),
        "(no target)".into(),
        |_, _| Err("no target".into()),
    ));
    rows.push(row(
        "rr, 1,000 conns",
        "p99 latency, ms; errors",
        rr(scenario::RR_1000, label::BASELINE),
        rr(scenario::RR_1000, label::HOST),
        |r| format!("{}; {}", num(r.latency.p99_ms), r.errors + r.lost),
        |h| format!("{}; {}", num(h.latency.p99_ms), h.errors + h.lost),
        |r, h| ratio(h.latency.p99_ms, r.latency.p99_ms),
        "≤ 20 ms; 0".into(),
        |h, _| {
            Ok(h.latency.p99_ms <= 20.0
                && h.errors + h.lost == 0
                && h.connect_errors == 0
                && h.requests > 0)
        },
    ));
    rows.push(row(
        &format!("rate, {} req/s, 100 conns", num(setup.rate)),
        "server CPU per request, µs",
        rate(label::BASELINE),
        rate(label::HOST),
        |r| num(r.server_cpu_us_per_req),
        |h| num(h.server_cpu_us_per_req),
        |r, h| ratio(h.server_cpu_us_per_req, r.server_cpu_us_per_req),
        "≤ 1.15× baseline".into(),
        |h, r| {
            needs(r, "baseline")
                .map(|r| h.errors == 0 && h.server_cpu_us_per_req <= 1.15 * r.server_cpu_us_per_req)
        },
    ));
    rows.push(row(
        &format!("fanout, {} members", num(setup.fanout_members as f64)),
        "post → last member, ms (baseline: floor)",
        fanout(scenario::FANOUT, label::BASELINE),
        fanout(scenario::FANOUT, label::HOST),
        |r| num(r.last_ms),
        |h| num(h.last_ms),
        |r, h| ratio(h.last_ms, r.last_ms),
        "≤ 1.5× floor and ≤ 50 ms".into(),
        |h, r| {
            needs(r, "floor")
                .map(|r| h.missing == 0 && h.last_ms <= 1.5 * r.last_ms && h.last_ms <= 50.0)
        },
    ));
    rows.push(row(
        &format!(
            "fanout, {} members, 2 hosts on Redis",
            num(setup.fanout_members as f64)
        ),
        "post → last member, ms",
        Err::<(), String>("-".into()),
        fanout(scenario::FANOUT_2, label::HOST_REDIS),
        |_| "-".into(),
        |h| num(h.last_ms),
        |_, _| "-".into(),
        "≤ 100 ms".into(),
        |h, _| Ok(h.missing == 0 && h.last_ms <= 100.0),
    ));
    rows.push(row(
        "rr, 100 conns, Redis registry",
        "requests/s (reference: memory registry)",
        rr(scenario::RR_100, label::HOST),
        rr(scenario::RR_100, label::HOST_REDIS),
        |r| num(r.rps),
        |h| num(h.rps),
        |r, h| ratio(h.rps, r.rps),
        "≥ 0.95× memory".into(),
        |h, r| needs(r, "memory-registry run").map(|r| h.rps >= 0.95 * r.rps),
    ));
    let swap = match find(records, scenario::SWAP, label::HOST) {
        Ok(Outcome::Swap(r)) => Ok(r.clone()),
        Ok(_) => Err("wrong mode".to_string()),
        Err(e) => Err(e),
    };
    rows.push(row(
        "swap, 100 conns",
        "longest stall, ms; errors",
        Err::<(), String>("-".into()),
        swap,
        |_| "-".into(),
        |h| {
            let slowest_swap = h.swap_latency_ms.iter().copied().fold(None, |most: Option<f64>, v| {
                Some(most.map_or(v, |m| m.max(v)))
            });
            format!(
                "{}; {} (within 1 s of a swap: {}, elsewhere: {}; file in place → serving: ≤ {} ms)",
                num(h.longest_stall_ms),
                h.errors + h.lost + h.swap_errors as u64,
                num(h.longest_stall_near_swaps_ms),
                num(h.longest_stall_elsewhere_ms),
                slowest_swap.map_or("-".into(), num)
            )
        },
        |_, _| "-".into(),
        "≤ 5 ms; 0".into(),
        |h, _| {
            // Without a manager answer the generations are unknown: judge the stalls alone.
            if let (Some(before), Some(after)) = (h.generation_before, h.generation_after) {
                let applied = after.saturating_sub(before);
                if applied < h.swaps as u64 {
                    return Err(format!(
                        "the host applied {applied} of {} plugin replacements (Index generation {before} → {after})",
                        h.swaps
                    ));
                }
            }
            Ok(h.longest_stall_ms <= 5.0 && h.errors + h.lost == 0 && h.swap_errors == 0)
        },
    ));
    rows
}

/// The targets as a markdown table.
pub fn targets_table(records: &[Record], setup: &Setup) -> String {
    let mut out = String::from(
        "| Scenario | Metric | Baseline | Host | Host ÷ baseline | Target | Verdict |\n\
         |---|---|---:|---:|---:|---|---|\n",
    );
    for r in rows(records, setup) {
        let verdict = match &r.verdict {
            Verdict::Met => "**met**".to_string(),
            Verdict::Missed => "**missed**".to_string(),
            Verdict::NotMeasured(why) => format!("not measured ({})", one_line(why, 160)),
        };
        out.push_str(&format!(
            "| {} | {} | {} | {} | {} | {} | {} |\n",
            r.scenario, r.metric, r.reference, r.host, r.ratio, r.target, verdict
        ));
    }
    out
}

/// `text` on one line, cut to `max` characters, with `|` escaped for a table cell.
fn one_line(text: &str, max: usize) -> String {
    let flat: String = text.split_whitespace().collect::<Vec<_>>().join(" ");
    let mut cut: String = flat.chars().take(max).collect();
    if flat.chars().count() > max {
        cut.push('…');
    }
    cut.replace('|', "\\|")
}

/// The table of every run.
fn runs_table(records: &[Record]) -> String {
    let mut out = String::from("| Scenario | Server | Result |\n|---|---|---|\n");
    for r in records {
        out.push_str(&format!(
            "| {} | {} | {} |\n",
            r.scenario,
            r.server,
            one_line(&r.summary(), 600)
        ));
    }
    out
}

fn machine_line(machine: &Machine) -> String {
    format!(
        "{}; {} cores; {} GiB; Linux {}; {}; commit {}; open files {}; load average {} at the start",
        machine.cpu,
        machine.cores,
        machine.memory_gib,
        machine.kernel,
        machine.rustc,
        machine.commit,
        machine.nofile,
        machine.loadavg
    )
}

fn setup_line(setup: &Setup) -> String {
    let pin = match (setup.server_cpu, setup.client_cpu) {
        (Some(s), Some(c)) => format!(
            "server pinned to CPU {s} (`taskset -c {s}`), load generator (one current-thread runtime) to CPU {c}"
        ),
        _ => "not pinned (--no-pin): not comparable with pinned runs".into(),
    };
    let repeat = if setup.repeat > 1 {
        format!(
            "; every figure is from the median of {} runs per scenario and server, interleaved",
            setup.repeat
        )
    } else {
        String::new()
    };
    format!(
        "{pin}{repeat}; host with `[runtime] workers = 1`, memory registry unless stated, `[log] level = \"warn\"`; \
         baseline with `--current-thread`, the runtime the host uses for `workers = 1`; {} s measured after a warm-up per run; a fresh server per run. \
         The suite took {} s; load average {} at the end.",
        setup.duration, setup.elapsed_s, setup.loadavg_end
    )
}

/// Writes `DIR/YYYY-MM-DD-HHMMSS.md` and returns its path.
pub fn write(
    dir: &Path,
    machine: &Machine,
    setup: &Setup,
    records: &[Record],
) -> Result<PathBuf, String> {
    std::fs::create_dir_all(dir).map_err(|e| format!("create {}: {e}", dir.display()))?;
    let stamp: String = machine
        .date_utc
        .chars()
        .filter_map(|c| match c {
            ' ' => Some('-'),
            ':' => None,
            c => Some(c),
        })
        .collect();
    let path = dir.join(format!("{stamp}.md"));
    let json: Vec<String> = std::iter::once(
        serde_json::json!({"machine": machine, "command": setup.command}).to_string(),
    )
    .chain(
        records
            .iter()
            .map(|r| serde_json::to_string(r).unwrap_or_default()),
    )
    .collect();
    let text = format!(
        "# ws-bench results, {date} UTC\n\n\
         Machine: {machine}.\n\n\
         Setup: {setup}\n\n\
         Command: `{command}`\n\n\
         ## Targets (issue 5)\n\n{targets}\n\
         ## Every run\n\n{runs}\n\
         ## JSON lines\n\n```json\n{json}\n```\n",
        date = machine.date_utc,
        machine = machine_line(machine),
        setup = setup_line(setup),
        command = setup.command,
        targets = targets_table(records, setup),
        runs = runs_table(records),
        json = json.join("\n"),
    );
    std::fs::write(&path, text).map_err(|e| format!("write {}: {e}", path.display()))?;
    Ok(path)
}

/// Replaces the generated section of `docs/BENCHMARKS.md` with the latest targets table.
pub fn update_docs(
    docs: &Path,
    results: &Path,
    machine: &Machine,
    records: &[Record],
    setup: &Setup,
) -> Result<(), String> {
    let text = std::fs::read_to_string(docs).map_err(|e| format!("{}: {e}", docs.display()))?;
    let (Some(start), Some(end)) = (text.find(DOCS_START), text.find(DOCS_END)) else {
        return Err(format!(
            "{} has no {DOCS_START} … {DOCS_END} section",
            docs.display()
        ));
    };
    if end < start {
        return Err(format!(
            "{}: the section markers are out of order",
            docs.display()
        ));
    }
    let name = results
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let section = format!(
        "{DOCS_START}\n_Generated by `ws-bench suite` on {date} UTC — full results: \
         [bench-results/{name}](bench-results/{name})._\n\n\
         Machine: {machine}.\n\nSetup: {setup}\n\n{targets}\n{DOCS_END}",
        date = machine.date_utc,
        machine = machine_line(machine),
        setup = setup_line(setup),
        targets = targets_table(records, setup),
    );
    let updated = format!(
        "{}{section}{}",
        &text[..start],
        &text[end + DOCS_END.len()..]
    );
    std::fs::write(docs, updated).map_err(|e| format!("write {}: {e}", docs.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_numbers() {
        assert_eq!(num(19000.0), "19,000");
        assert_eq!(num(1234567.4), "1,234,567");
        assert_eq!(num(512.3), "512");
        assert_eq!(num(1.234), "1.23");
        assert_eq!(ratio(2.0, 1.0), "2.00×");
    }

    #[test]
    fn missing_runs_are_not_measured() {
        let setup = Setup {
            command: "ws-bench suite".into(),
            server_cpu: Some(0),
            client_cpu: Some(1),
            idle_conns: 19_000,
            rate: 20_000.0,
            fanout_members: 10_000,
            duration: 10.0,
            elapsed_s: 1,
            loadavg_end: "0.00 0.00 0.00".into(),
            repeat: 1,
        };
        let records = vec![Record {
            scenario: scenario::FANOUT_2.into(),
            server: label::HOST_REDIS.into(),
            outcome: None,
            error: None,
            skipped: Some("no --redis-url given".into()),
            repeats: Vec::new(),
        }];
        let table = targets_table(&records, &setup);
        assert!(
            table.contains("not measured (skipped: no --redis-url given)"),
            "{table}"
        );
        assert!(table.contains("not measured (not run)"), "{table}");
    }
}
