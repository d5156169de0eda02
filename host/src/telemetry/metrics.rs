//! The host's Prometheus metrics: their names, their labels, and the recorder.
//!
//! Operators watch a live event on a dashboard (`docs/grafana/mswoole.json`), so the
//! names are a contract (README.md, "Metrics"): every one starts with `mswoole_`, and
//! label values come from small sets (module names, status codes, close codes,
//! handshake results) — never fds or uids, which would make a series per client.
//!
//! Values are recorded through the `metrics` facade and kept by
//! `metrics-exporter-prometheus`, which the manager port renders at `GET /metrics`.
//! Counters on the per-message path are looked up once and kept as handles, so a
//! message costs a few atomic adds; histograms are folded into their buckets by
//! [`Metrics::upkeep`] (and at every scrape), so samples never pile up unscraped.

use std::{
    collections::HashMap,
    sync::{OnceLock, RwLock},
    time::Duration,
};

use metrics::{
    counter, describe_counter, describe_gauge, describe_histogram, gauge, histogram, Counter,
};
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};

/// Seconds between folding histogram samples into their buckets.
const UPKEEP: Duration = Duration::from_secs(5);

/// Buckets of `mswoole_module_call_seconds`: most actions answer in well under a
/// millisecond; `limits.call_timeout_ms` (5 s by default) ends the slowest.
const CALL_BUCKETS: [f64; 14] = [
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 5.0,
];

/// Buckets of `mswoole_database_query_seconds`.
const QUERY_BUCKETS: [f64; 12] = [
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 5.0,
];

/// Statuses whose message counters are kept as handles (the ones the host and the
/// shipped modules answer); any other status is looked up by name.
const COMMON_STATUSES: [u16; 11] = [200, 400, 401, 403, 404, 405, 409, 429, 500, 501, 503];

/// What a handshake came to, the label of `mswoole_handshakes_total`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Handshake {
    /// Upgraded.
    Ok,
    /// A missing or invalid token: 403.
    Forbidden,
    /// Stopping, or `limits.max_connections` reached: 503.
    Unavailable,
    /// Not a valid RFC 6455 handshake, or not HTTP: 400.
    BadRequest,
    /// No complete request within `limits.handshake_timeout_s`.
    Timeout,
}

impl Handshake {
    const ALL: [Handshake; 5] = [
        Handshake::Ok,
        Handshake::Forbidden,
        Handshake::Unavailable,
        Handshake::BadRequest,
        Handshake::Timeout,
    ];

    fn label(self) -> &'static str {
        match self {
            Handshake::Ok => "ok",
            Handshake::Forbidden => "forbidden",
            Handshake::Unavailable => "unavailable",
            Handshake::BadRequest => "bad_request",
            Handshake::Timeout => "timeout",
        }
    }
}

/// Why a session was not resumed, the label of `mswoole_sessions_not_resumed_total`
/// (docs/PROTOCOL.md's words).
pub const NOT_RESUMED_REASONS: [&str; 6] = [
    "unknown", "expired", "identity", "overflow", "invalid", "busy",
];

/// Handles for the per-message path.
struct Hot {
    /// `mswoole_messages_total` per common status, then `none`.
    messages: HashMap<u16, Counter>,
    /// `mswoole_messages_total{status="none"}`.
    no_reply: Counter,
    /// `mswoole_frames_sent_total`.
    frames_sent: Counter,
    /// `mswoole_module_call_seconds` per module, created on a module's first call.
    calls: RwLock<HashMap<String, metrics::Histogram>>,
}

static HOT: OnceLock<Hot> = OnceLock::new();

fn hot() -> &'static Hot {
    HOT.get_or_init(|| Hot {
        messages: COMMON_STATUSES
            .iter()
            .map(|&status| {
                let counter = counter!("mswoole_messages_total", "status" => status.to_string());
                (status, counter)
            })
            .collect(),
        no_reply: counter!("mswoole_messages_total", "status" => "none"),
        frames_sent: counter!("mswoole_frames_sent_total"),
        calls: RwLock::default(),
    })
}

/// The installed recorder.
#[derive(Clone)]
pub struct Metrics {
    handle: PrometheusHandle,
}

impl Metrics {
    /// Installs the process-wide recorder, declares every metric and starts its upkeep.
    /// Call once, inside the runtime, before any connection.
    pub fn install() -> Result<Metrics, String> {
        let handle = PrometheusBuilder::new()
            .set_buckets_for_metric(
                Matcher::Full("mswoole_module_call_seconds".into()),
                &CALL_BUCKETS,
            )
            .and_then(|b| {
                b.set_buckets_for_metric(
                    Matcher::Full("mswoole_database_query_seconds".into()),
                    &QUERY_BUCKETS,
                )
            })
            .map_err(|e| format!("metrics: {e}"))?
            .install_recorder()
            .map_err(|e| format!("metrics: {e}"))?;
        declare();
        let metrics = Metrics { handle };
        let upkeep = metrics.clone();
        tokio::spawn(async move {
            let mut every = tokio::time::interval(UPKEEP);
            loop {
                every.tick().await;
                upkeep.handle.run_upkeep();
            }
        });
        Ok(metrics)
    }

    /// The Prometheus text format of every metric, with `mswoole_connections` set to
    /// `connections` (read at scrape time, so connecting costs nothing here).
    pub fn render(&self, connections: usize) -> String {
        gauge!("mswoole_connections").set(connections as f64);
        self.handle.render()
    }
}

/// Describes every metric and registers those with known labels at 0, so a dashboard
/// sees them before the first event.
fn declare() {
    describe_gauge!("mswoole_connections", "Clients connected to this node");
    describe_counter!(
        "mswoole_handshakes_total",
        "Client handshakes by result (ok, forbidden, unavailable, bad_request, timeout)"
    );
    describe_counter!(
        "mswoole_messages_total",
        "Routed client messages by the status of their reply (none when there was none)"
    );
    describe_histogram!(
        "mswoole_module_call_seconds",
        metrics::Unit::Seconds,
        "Time a module took to answer an action"
    );
    describe_counter!(
        "mswoole_frames_sent_total",
        "Frames written to client sockets"
    );
    describe_counter!(
        "mswoole_closes_total",
        "Connections ended, by the close code sent (1006 when none was)"
    );
    describe_counter!(
        "mswoole_plugin_swaps_total",
        "Hot swaps of a module (not its first load)"
    );
    describe_counter!("mswoole_plugin_refusals_total", "Plugin files refused");
    describe_counter!(
        "mswoole_registry_errors_total",
        "Registry (Redis) commands that failed or timed out"
    );
    describe_histogram!(
        "mswoole_database_query_seconds",
        metrics::Unit::Seconds,
        "Time of a module's database query"
    );
    describe_counter!("mswoole_sessions_resumed_total", "Sessions resumed");
    describe_counter!(
        "mswoole_sessions_moved_total",
        "Sessions this node handed over to another node"
    );
    describe_counter!(
        "mswoole_sessions_not_resumed_total",
        "Resumes refused, by reason"
    );
    describe_gauge!("mswoole_build_info", "The host's version");

    gauge!("mswoole_connections").set(0.0);
    gauge!("mswoole_build_info", "version" => env!("CARGO_PKG_VERSION")).set(1.0);
    for result in Handshake::ALL {
        counter!("mswoole_handshakes_total", "result" => result.label()).absolute(0);
    }
    for name in [
        "mswoole_frames_sent_total",
        "mswoole_plugin_refusals_total",
        "mswoole_registry_errors_total",
        "mswoole_sessions_resumed_total",
        "mswoole_sessions_moved_total",
    ] {
        counter!(name).absolute(0);
    }
    // The closes of a normal day: the server's, a stop's, and clients that vanish.
    for code in ["1000", "1012", "1006"] {
        counter!("mswoole_closes_total", "code" => code).absolute(0);
    }
    for reason in NOT_RESUMED_REASONS {
        counter!("mswoole_sessions_not_resumed_total", "reason" => reason).absolute(0);
    }
    hot();
}

/// A session was resumed.
pub fn session_resumed() {
    counter!("mswoole_sessions_resumed_total").increment(1);
}

/// A session moved from this node to another.
pub fn session_moved() {
    counter!("mswoole_sessions_moved_total").increment(1);
}

/// A resume was refused for `reason` (one of [`NOT_RESUMED_REASONS`]).
pub fn session_not_resumed(reason: &'static str) {
    counter!("mswoole_sessions_not_resumed_total", "reason" => reason).increment(1);
}

/// A handshake came to `result`.
pub fn handshake(result: Handshake) {
    counter!("mswoole_handshakes_total", "result" => result.label()).increment(1);
}

/// A routed message was answered with `status`, or not at all (`None`).
pub fn message(status: Option<u16>) {
    let hot = hot();
    match status {
        None => hot.no_reply.increment(1),
        Some(status) => match hot.messages.get(&status) {
            Some(counter) => counter.increment(1),
            None => counter!("mswoole_messages_total", "status" => status.to_string()).increment(1),
        },
    }
}

/// The histogram of a module's calls, registered on first use.
fn calls_of(module: &str) -> metrics::Histogram {
    let calls = &hot().calls;
    let known = calls
        .read()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
        .get(module)
        .cloned();
    match known {
        Some(histogram) => histogram,
        None => {
            let histogram =
                metrics::histogram!("mswoole_module_call_seconds", "module" => module.to_string());
            calls
                .write()
                .unwrap_or_else(|poisoned| poisoned.into_inner())
                .insert(module.to_string(), histogram.clone());
            histogram
        }
    }
}

/// A module was loaded for the first time: its call histogram and its swap count
/// are shown (empty, 0) from now on.
pub fn module_loaded(module: &str) {
    let _ = calls_of(module);
    counter!("mswoole_plugin_swaps_total", "module" => module.to_string()).absolute(0);
}

/// A module's action took `elapsed`.
pub fn module_call(module: &str, elapsed: Duration) {
    calls_of(module).record(elapsed.as_secs_f64());
}

/// A frame was written to a client's socket.
pub fn frame_sent() {
    hot().frames_sent.increment(1);
}

/// A connection ended with close `code` sent, or none (`None`, counted as 1006).
pub fn closed(code: Option<u16>) {
    let code = code.unwrap_or(1006);
    counter!("mswoole_closes_total", "code" => code.to_string()).increment(1);
}

/// A module was swapped for a new version.
pub fn plugin_swapped(module: &str) {
    counter!("mswoole_plugin_swaps_total", "module" => module.to_string()).increment(1);
}

/// A plugin file was refused.
pub fn plugin_refused() {
    counter!("mswoole_plugin_refusals_total").increment(1);
}

/// A registry command failed.
pub fn registry_error() {
    counter!("mswoole_registry_errors_total").increment(1);
}

/// A module's SQL call to `db` took `elapsed`.
pub fn database_query(db: &str, elapsed: Duration) {
    histogram!("mswoole_database_query_seconds", "db" => db.to_string())
        .record(elapsed.as_secs_f64());
}
