//! Results of every mode: one serde type each (the JSON line of `--json`, read back by
//! the suite), a human-readable table, and whether the run saw problems.

use serde::{Deserialize, Serialize};

use crate::stats::LatencySummary;

/// The outcome of one mode run; serialised with a `mode` tag as one JSON line.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "mode", rename_all = "lowercase")]
pub enum Outcome {
    /// `idle`: connections held and memory.
    Idle(IdleResult),
    /// `rr`: closed-loop requests.
    Rr(RrResult),
    /// `rate`: fixed offered load, server CPU per request.
    Rate(RateResult),
    /// `fanout`: room broadcast delivery time.
    Fanout(FanoutResult),
    /// `swap`: requests while the plugin file is replaced.
    Swap(SwapResult),
}

/// `idle` results.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct IdleResult {
    /// Server URL.
    pub url: String,
    /// Connections asked for.
    pub conns_wanted: usize,
    /// Connections that were open when the hold ended.
    pub conns_held: usize,
    /// Connections that could not be opened.
    pub connect_errors: usize,
    /// Seconds it took to open them all.
    pub connect_s: f64,
    /// Seconds they were held after opening.
    pub hold_s: f64,
    /// Heartbeat interval, seconds.
    pub heartbeat_s: f64,
    /// `2` frames answered with `3`.
    pub heartbeats_ok: u64,
    /// `2` frames not answered within 10 s.
    pub heartbeats_missed: u64,
    /// Connections closed by the server during the hold.
    pub lost: u64,
    /// Server RSS before connecting, KiB (when the pid is known).
    pub rss_before_kib: Option<u64>,
    /// Server RSS at the end of the hold, KiB.
    pub rss_after_kib: Option<u64>,
    /// (after − before) / held, bytes.
    pub bytes_per_conn: Option<u64>,
    /// The first problem seen.
    pub first_error: Option<String>,
}

/// `rr` results.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RrResult {
    /// Server URL.
    pub url: String,
    /// Connections, each with one request in flight.
    pub conns: usize,
    /// Client threads.
    pub threads: usize,
    /// Measured seconds (after the warm-up).
    pub duration_s: f64,
    /// Requests sent in the window and answered with `success`.
    pub requests: u64,
    /// `requests / duration_s`.
    pub rps: f64,
    /// Send → `success` latency.
    pub latency: LatencySummary,
    /// Requests answered with another envelope, or not at all.
    pub errors: u64,
    /// Connections lost during the run.
    pub lost: u64,
    /// Connections that could not be opened.
    pub connect_errors: usize,
    /// Load generator CPU over the window, percent of one core.
    pub client_cpu_pct: f64,
    /// Server CPU over the window, percent of one core (when the pid is known).
    pub server_cpu_pct: Option<f64>,
    /// Server CPU per answered request, µs (when the pid is known).
    pub server_cpu_us_per_req: Option<f64>,
    /// Requests answered per connection in the window: `[min, median, max]`. A wide spread
    /// means the server served some connections and starved others.
    #[serde(default)]
    pub per_conn: [u64; 3],
    /// The first problem seen.
    pub first_error: Option<String>,
}

/// `rate` results.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RateResult {
    /// Server URL.
    pub url: String,
    /// Connections the load is spread over.
    pub conns: usize,
    /// Requests per second offered.
    pub offered_rps: f64,
    /// Requests per second answered with `success` (scheduled in the window).
    pub achieved_rps: f64,
    /// Requests scheduled in the window and answered with `success`.
    pub requests: u64,
    /// Measured seconds.
    pub duration_s: f64,
    /// Server CPU time over the window, seconds.
    pub server_cpu_s: f64,
    /// Server CPU per answered request, µs.
    pub server_cpu_us_per_req: f64,
    /// Server CPU over the window, percent of one core.
    pub server_cpu_pct: f64,
    /// Load generator CPU over the window, percent of one core.
    pub client_cpu_pct: f64,
    /// Scheduled send → `success` latency.
    pub latency: LatencySummary,
    /// Requests answered with another envelope, or not at all.
    pub errors: u64,
    /// Connections lost during the run.
    pub lost: u64,
    /// Connections that could not be opened.
    pub connect_errors: usize,
    /// The first problem seen.
    pub first_error: Option<String>,
}

/// `fanout` results.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct FanoutResult {
    /// Server URLs (members are spread over them; the wall is on the first).
    pub urls: Vec<String>,
    /// `true`: the baseline's broadcast command (the floor), not the Live protocol.
    pub floor: bool,
    /// Room members.
    pub members: usize,
    /// Rounds (wall posts) measured.
    pub rounds: usize,
    /// Post → last member, median over rounds, ms.
    pub last_ms: f64,
    /// Post → last member, best round, ms.
    pub last_ms_best: f64,
    /// Post → last member, worst round, ms.
    pub last_ms_worst: f64,
    /// Post → first member, median over rounds, ms.
    pub first_ms: f64,
    /// Post → median member, median over rounds, ms.
    pub p50_ms: f64,
    /// `members / last`, using the median round.
    pub deliveries_per_s: f64,
    /// Deliveries that did not arrive within the timeout, all rounds together.
    pub missing: u64,
    /// Server CPU time per post (post → last delivery), ms, summed over the given pids.
    #[serde(default)]
    pub server_cpu_ms_per_post: Option<f64>,
    /// Load generator CPU time per post (post → last delivery), ms.
    #[serde(default)]
    pub client_cpu_ms_per_post: f64,
    /// The first problem seen.
    pub first_error: Option<String>,
}

/// `swap` results.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SwapResult {
    /// Server URL.
    pub url: String,
    /// Connections, each with one request in flight.
    pub conns: usize,
    /// Measured seconds.
    pub duration_s: f64,
    /// Plugin replacements done.
    pub swaps: usize,
    /// Replacements that failed on the file system.
    pub swap_errors: usize,
    /// The Index module's generation before the run (from the manager's `status`).
    pub generation_before: Option<u64>,
    /// The Index module's generation after the run.
    pub generation_after: Option<u64>,
    /// Plugin files the host refused during the run (from the manager's `status`).
    #[serde(default)]
    pub refusals: usize,
    /// Requests answered with `success` in the window.
    pub requests: u64,
    /// `requests / duration_s`.
    pub rps: f64,
    /// Send → `success` latency.
    pub latency: LatencySummary,
    /// The longest any single request waited, ms.
    pub longest_stall_ms: f64,
    /// The longest wait of a request that overlapped a swap (or the second after it), ms.
    #[serde(default)]
    pub longest_stall_near_swaps_ms: f64,
    /// The longest wait of any other request: the machine's background noise, ms.
    #[serde(default)]
    pub longest_stall_elsewhere_ms: f64,
    /// Per swap: ms from the new file in place to the manager reporting the new
    /// generation (includes the watcher's 300 ms debounce); empty without `--manager`.
    #[serde(default)]
    pub swap_latency_ms: Vec<f64>,
    /// Requests answered with another envelope, or not at all.
    pub errors: u64,
    /// Connections lost during the run.
    pub lost: u64,
    /// The first problem seen.
    pub first_error: Option<String>,
}

fn opt<T: ToString>(value: &Option<T>) -> String {
    value.as_ref().map_or_else(|| "-".into(), T::to_string)
}

fn latency_rows(rows: &mut Vec<(&'static str, String)>, l: &LatencySummary) {
    rows.push(("p50 ms", l.p50_ms.to_string()));
    rows.push(("p90 ms", l.p90_ms.to_string()));
    rows.push(("p99 ms", l.p99_ms.to_string()));
    rows.push(("p99.9 ms", l.p999_ms.to_string()));
    rows.push(("max ms", l.max_ms.to_string()));
}

impl Outcome {
    /// The mode's name.
    pub fn mode(&self) -> &'static str {
        match self {
            Outcome::Idle(_) => "idle",
            Outcome::Rr(_) => "rr",
            Outcome::Rate(_) => "rate",
            Outcome::Fanout(_) => "fanout",
            Outcome::Swap(_) => "swap",
        }
    }

    /// The figure runs are compared by (`suite --repeat` keeps the median run): its name and value.
    pub fn headline(&self) -> (&'static str, f64) {
        match self {
            Outcome::Idle(r) => ("bytes/conn", r.bytes_per_conn.map_or(0.0, |b| b as f64)),
            Outcome::Rr(r) => ("req/s", r.rps),
            Outcome::Rate(r) => ("server µs/req", r.server_cpu_us_per_req),
            Outcome::Fanout(r) => ("last-member ms", r.last_ms),
            Outcome::Swap(r) => ("longest stall ms", r.longest_stall_ms),
        }
    }

    /// Whether the run saw errors, lost connections, missing deliveries or unopened connections.
    pub fn problems(&self) -> Option<String> {
        let (count, first) = match self {
            Outcome::Idle(r) => (
                r.connect_errors as u64
                    + r.lost
                    + r.heartbeats_missed
                    + (r.conns_wanted - r.conns_held.min(r.conns_wanted)) as u64,
                &r.first_error,
            ),
            Outcome::Rr(r) => (r.errors + r.lost + r.connect_errors as u64, &r.first_error),
            Outcome::Rate(r) => (r.errors + r.lost + r.connect_errors as u64, &r.first_error),
            Outcome::Fanout(r) => (r.missing, &r.first_error),
            Outcome::Swap(r) => (r.errors + r.lost + r.swap_errors as u64, &r.first_error),
        };
        (count > 0).then(|| {
            format!(
                "{} problem(s); first: {}",
                count,
                first.as_deref().unwrap_or("(not recorded)")
            )
        })
    }

    /// Label/value rows of the human-readable table.
    pub fn rows(&self) -> Vec<(&'static str, String)> {
        let mut rows = Vec::new();
        match self {
            Outcome::Idle(r) => {
                rows.push(("url", r.url.clone()));
                rows.push((
                    "connections held",
                    format!("{} / {}", r.conns_held, r.conns_wanted),
                ));
                rows.push(("connect errors", r.connect_errors.to_string()));
                rows.push(("connect s", r.connect_s.to_string()));
                rows.push(("hold s", r.hold_s.to_string()));
                rows.push(("heartbeats ok", r.heartbeats_ok.to_string()));
                rows.push(("heartbeats missed", r.heartbeats_missed.to_string()));
                rows.push(("lost", r.lost.to_string()));
                rows.push(("server RSS before KiB", opt(&r.rss_before_kib)));
                rows.push(("server RSS after KiB", opt(&r.rss_after_kib)));
                rows.push(("bytes / connection", opt(&r.bytes_per_conn)));
            }
            Outcome::Rr(r) => {
                rows.push(("url", r.url.clone()));
                rows.push(("connections", r.conns.to_string()));
                rows.push(("client threads", r.threads.to_string()));
                rows.push(("duration s", r.duration_s.to_string()));
                rows.push(("requests", r.requests.to_string()));
                rows.push(("requests/s", format!("{:.0}", r.rps)));
                latency_rows(&mut rows, &r.latency);
                rows.push(("errors", r.errors.to_string()));
                rows.push(("lost", r.lost.to_string()));
                rows.push(("connect errors", r.connect_errors.to_string()));
                rows.push(("client CPU %", format!("{:.1}", r.client_cpu_pct)));
                rows.push((
                    "server CPU %",
                    opt(&r.server_cpu_pct.map(|v| format!("{v:.1}"))),
                ));
                rows.push((
                    "server CPU µs/req",
                    opt(&r.server_cpu_us_per_req.map(|v| format!("{v:.2}"))),
                ));
                rows.push((
                    "requests per conn",
                    format!(
                        "{} min / {} median / {} max",
                        r.per_conn[0], r.per_conn[1], r.per_conn[2]
                    ),
                ));
            }
            Outcome::Rate(r) => {
                rows.push(("url", r.url.clone()));
                rows.push(("connections", r.conns.to_string()));
                rows.push(("offered req/s", format!("{:.0}", r.offered_rps)));
                rows.push(("achieved req/s", format!("{:.0}", r.achieved_rps)));
                rows.push(("duration s", r.duration_s.to_string()));
                rows.push(("server CPU s", format!("{:.3}", r.server_cpu_s)));
                rows.push((
                    "server CPU µs/req",
                    format!("{:.2}", r.server_cpu_us_per_req),
                ));
                rows.push(("server CPU %", format!("{:.1}", r.server_cpu_pct)));
                rows.push(("client CPU %", format!("{:.1}", r.client_cpu_pct)));
                latency_rows(&mut rows, &r.latency);
                rows.push(("errors", r.errors.to_string()));
                rows.push(("lost", r.lost.to_string()));
                rows.push(("connect errors", r.connect_errors.to_string()));
            }
            Outcome::Fanout(r) => {
                rows.push(("urls", r.urls.join(" ")));
                rows.push((
                    "kind",
                    if r.floor {
                        "floor (bare broadcast)"
                    } else {
                        "Live room"
                    }
                    .into(),
                ));
                rows.push(("members", r.members.to_string()));
                rows.push(("rounds", r.rounds.to_string()));
                rows.push(("last member ms (median)", r.last_ms.to_string()));
                rows.push(("last member ms (best)", r.last_ms_best.to_string()));
                rows.push(("last member ms (worst)", r.last_ms_worst.to_string()));
                rows.push(("first member ms", r.first_ms.to_string()));
                rows.push(("median member ms", r.p50_ms.to_string()));
                rows.push(("deliveries/s", format!("{:.0}", r.deliveries_per_s)));
                rows.push(("missing", r.missing.to_string()));
                rows.push(("server CPU ms / post", opt(&r.server_cpu_ms_per_post)));
                rows.push(("client CPU ms / post", r.client_cpu_ms_per_post.to_string()));
            }
            Outcome::Swap(r) => {
                rows.push(("url", r.url.clone()));
                rows.push(("connections", r.conns.to_string()));
                rows.push(("duration s", r.duration_s.to_string()));
                rows.push(("swaps", r.swaps.to_string()));
                rows.push(("swap errors", r.swap_errors.to_string()));
                rows.push(("refused by the host", r.refusals.to_string()));
                rows.push((
                    "Index generation",
                    format!(
                        "{} → {}",
                        opt(&r.generation_before),
                        opt(&r.generation_after)
                    ),
                ));
                rows.push(("requests/s", format!("{:.0}", r.rps)));
                latency_rows(&mut rows, &r.latency);
                rows.push(("longest stall ms", r.longest_stall_ms.to_string()));
                rows.push((
                    "  near a swap ms",
                    r.longest_stall_near_swaps_ms.to_string(),
                ));
                rows.push(("  elsewhere ms", r.longest_stall_elsewhere_ms.to_string()));
                rows.push(("swap latency ms", list(&r.swap_latency_ms)));
                rows.push(("errors", r.errors.to_string()));
                rows.push(("lost", r.lost.to_string()));
            }
        }
        if let Some(problems) = self.problems() {
            rows.push(("PROBLEMS", problems));
        }
        rows
    }

    /// One line for the results file's table of all runs.
    pub fn summary(&self) -> String {
        let lat = |l: &LatencySummary| {
            format!(
                "p50 {} / p90 {} / p99 {} / p99.9 {} / max {} ms",
                l.p50_ms, l.p90_ms, l.p99_ms, l.p999_ms, l.max_ms
            )
        };
        let mut line = match self {
            Outcome::Idle(r) => format!(
                "{} conns held of {}; server RSS {} → {} KiB, {} bytes/conn; heartbeats {} ok, {} missed; {} lost; connecting took {} s",
                r.conns_held, r.conns_wanted, opt(&r.rss_before_kib), opt(&r.rss_after_kib),
                opt(&r.bytes_per_conn), r.heartbeats_ok, r.heartbeats_missed, r.lost, r.connect_s
            ),
            Outcome::Rr(r) => format!(
                "{} conns: {:.0} req/s; {}; errors {}, lost {}; requests per conn min/median/max {}/{}/{}; server CPU {} % ({} µs/req), client CPU {:.0} %",
                r.conns, r.rps, lat(&r.latency), r.errors, r.lost, r.per_conn[0], r.per_conn[1], r.per_conn[2],
                opt(&r.server_cpu_pct.map(|v| format!("{v:.0}"))),
                opt(&r.server_cpu_us_per_req.map(|v| format!("{v:.2}"))),
                r.client_cpu_pct
            ),
            Outcome::Rate(r) => format!(
                "{} conns, {:.0} req/s offered, {:.0} answered: server CPU {:.2} µs/req ({:.0} % of a core); {}; errors {}, lost {}; client CPU {:.0} %",
                r.conns, r.offered_rps, r.achieved_rps, r.server_cpu_us_per_req, r.server_cpu_pct,
                lat(&r.latency), r.errors, r.lost, r.client_cpu_pct
            ),
            Outcome::Fanout(r) => format!(
                "{} members{} over {} host(s): last member {} ms (median of {} rounds; best {}, worst {}), first {} ms, median member {} ms, {:.0} deliveries/s, {} missing; CPU per post: server {} ms, client {} ms",
                r.members, if r.floor { " (floor)" } else { "" }, r.urls.len(), r.last_ms, r.rounds,
                r.last_ms_best, r.last_ms_worst, r.first_ms, r.p50_ms, r.deliveries_per_s, r.missing,
                opt(&r.server_cpu_ms_per_post), r.client_cpu_ms_per_post
            ),
            Outcome::Swap(r) => format!(
                "{} conns, {} swaps ({} failed, {} refused by the host), Index generation {} → {}, swap latency (file in place → serving) {} ms: {:.0} req/s; longest stall {} ms ({} ms within 1 s of a swap, {} ms elsewhere); {}; errors {}, lost {}",
                r.conns, r.swaps, r.swap_errors, r.refusals, opt(&r.generation_before), opt(&r.generation_after),
                list(&r.swap_latency_ms), r.rps, r.longest_stall_ms, r.longest_stall_near_swaps_ms, r.longest_stall_elsewhere_ms,
                lat(&r.latency), r.errors, r.lost
            ),
        };
        if let Some(problems) = self.problems() {
            line.push_str(&format!(" — {problems}"));
        }
        line
    }

    /// The table printed without `--json`.
    pub fn table(&self) -> String {
        let rows = self.rows();
        let width = rows
            .iter()
            .map(|(k, _)| k.chars().count())
            .max()
            .unwrap_or(0);
        let mut out = format!("ws-bench {}\n", self.mode());
        for (key, value) in rows {
            let pad = width - key.chars().count();
            out.push_str(&format!("  {key}{}  {value}\n", " ".repeat(pad)));
        }
        out
    }

    /// The one-line JSON form.
    pub fn json(&self) -> String {
        serde_json::to_string(self).unwrap_or_else(|e| format!("{{\"error\":\"{e}\"}}"))
    }
}

/// Milliseconds as `a, b, c` (`-` when there are none).
fn list(values: &[f64]) -> String {
    if values.is_empty() {
        return "-".into();
    }
    values
        .iter()
        .map(f64::to_string)
        .collect::<Vec<_>>()
        .join(", ")
}
