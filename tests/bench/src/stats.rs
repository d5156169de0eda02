//! Latency histograms and per-run counters, kept per client thread and merged at the end.

use std::time::Duration;

use hdrhistogram::Histogram;
use serde::{Deserialize, Serialize};

/// Largest latency recorded, in microseconds (larger ones are clamped to it).
const MAX_US: u64 = 120_000_000;

/// Latencies in microseconds, 3 significant digits.
#[derive(Debug, Clone)]
pub struct Latencies(Histogram<u64>);

impl Default for Latencies {
    fn default() -> Self {
        Latencies(
            Histogram::new_with_bounds(1, MAX_US, 3).expect("constant histogram bounds are valid"),
        )
    }
}

impl Latencies {
    /// Records one latency.
    pub fn record(&mut self, latency: Duration) {
        let us = u64::try_from(latency.as_micros()).unwrap_or(MAX_US);
        self.0.saturating_record(us.clamp(1, MAX_US));
    }

    /// Adds another histogram's samples.
    pub fn merge(&mut self, other: &Latencies) {
        // Same bounds on both sides: adding cannot fail; a failure would only lose samples.
        let _ = self.0.add(&other.0);
    }

    /// Number of samples.
    pub fn count(&self) -> u64 {
        self.0.len()
    }

    /// Percentiles in milliseconds.
    pub fn summary(&self) -> LatencySummary {
        let ms = |us: u64| round3(us as f64 / 1000.0);
        if self.0.is_empty() {
            return LatencySummary::default();
        }
        LatencySummary {
            p50_ms: ms(self.0.value_at_quantile(0.50)),
            p90_ms: ms(self.0.value_at_quantile(0.90)),
            p99_ms: ms(self.0.value_at_quantile(0.99)),
            p999_ms: ms(self.0.value_at_quantile(0.999)),
            max_ms: ms(self.0.max()),
            mean_ms: round3(self.0.mean() / 1000.0),
        }
    }
}

/// `[min, median, max]` of `values` (zeros when empty).
pub fn spread(values: &[u64]) -> [u64; 3] {
    let mut sorted = values.to_vec();
    sorted.sort_unstable();
    match (sorted.first(), sorted.last()) {
        (Some(&min), Some(&max)) => [min, sorted[sorted.len() / 2], max],
        _ => [0; 3],
    }
}

/// Rounds to 3 decimals (for readable JSON).
pub fn round3(x: f64) -> f64 {
    (x * 1000.0).round() / 1000.0
}

/// Latency percentiles, milliseconds.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct LatencySummary {
    /// Median.
    pub p50_ms: f64,
    /// 90th percentile.
    pub p90_ms: f64,
    /// 99th percentile.
    pub p99_ms: f64,
    /// 99.9th percentile.
    pub p999_ms: f64,
    /// Largest.
    pub max_ms: f64,
    /// Mean.
    pub mean_ms: f64,
}

/// What one client thread saw during a request/response run.
#[derive(Debug, Clone, Default)]
pub struct Tally {
    /// Latencies of requests answered with the awaited event inside the window.
    pub latencies: Latencies,
    /// Requests answered with something else (an error envelope) or not at all.
    pub errors: u64,
    /// Connections that closed or failed during the run.
    pub lost: u64,
    /// The first error seen, for the report.
    pub first_error: Option<String>,
    /// The longest wait of a request that overlapped an outside event (see
    /// `requests::Events`: a plugin swap), and of any other request.
    pub longest_near_event: Duration,
    /// See [`Tally::longest_near_event`].
    pub longest_elsewhere: Duration,
    /// Requests answered in the window, per connection (closed loop only).
    pub per_conn: Vec<u64>,
}

impl Tally {
    /// Records an answered request; `near_event` says whether it overlapped an outside event.
    pub fn answered(&mut self, latency: Duration, near_event: bool) {
        self.latencies.record(latency);
        let longest = if near_event {
            &mut self.longest_near_event
        } else {
            &mut self.longest_elsewhere
        };
        *longest = (*longest).max(latency);
    }

    /// Counts an error and remembers the first one.
    pub fn error(&mut self, what: impl FnOnce() -> String) {
        self.errors += 1;
        if self.first_error.is_none() {
            self.first_error = Some(what());
        }
    }

    /// Counts a lost connection and remembers why, if it is the first problem.
    pub fn lost(&mut self, what: impl FnOnce() -> String) {
        self.lost += 1;
        if self.first_error.is_none() {
            self.first_error = Some(what());
        }
    }

    /// Adds another thread's tally.
    pub fn merge(&mut self, other: &Tally) {
        self.latencies.merge(&other.latencies);
        self.errors += other.errors;
        self.lost += other.lost;
        if self.first_error.is_none() {
            self.first_error.clone_from(&other.first_error);
        }
        self.longest_near_event = self.longest_near_event.max(other.longest_near_event);
        self.longest_elsewhere = self.longest_elsewhere.max(other.longest_elsewhere);
        self.per_conn.extend_from_slice(&other.per_conn);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn summarises_and_merges() {
        let mut a = Latencies::default();
        for ms in 1..=100u64 {
            a.record(Duration::from_millis(ms));
        }
        let mut b = Latencies::default();
        b.record(Duration::from_secs(1));
        a.merge(&b);
        assert_eq!(a.count(), 101);
        let s = a.summary();
        assert!((s.p50_ms - 51.0).abs() < 0.1, "{s:?}");
        assert!((s.max_ms - 1000.0).abs() < 1.0, "{s:?}");
        assert_eq!(Latencies::default().summary(), LatencySummary::default());
    }
}
