//! What the suite records: scenario and server names as results files spell them, and one
//! [`Record`] per measurement.

use serde::{Deserialize, Serialize};

use crate::report::Outcome;

/// Scenario names, as they appear in results files.
pub mod scenario {
    /// `idle` with the suite's connection count.
    pub const IDLE: &str = "idle";
    /// `rr` with 100 connections.
    pub const RR_100: &str = "rr-100";
    /// `rr` with 1,000 connections.
    pub const RR_1000: &str = "rr-1000";
    /// `rate` at the suite's rate over 100 connections.
    pub const RATE: &str = "rate";
    /// `fanout` on one host (baseline: the floor).
    pub const FANOUT: &str = "fanout";
    /// `fanout` with members spread over two hosts sharing Redis.
    pub const FANOUT_2: &str = "fanout-2-hosts";
    /// `swap` with 100 connections.
    pub const SWAP: &str = "swap";
}

/// Server labels, as they appear in results files.
pub mod label {
    /// The bare baseline server.
    pub const BASELINE: &str = "baseline";
    /// The baseline on a multi-threaded runtime with one worker: not a target reference,
    /// it shows what the runtime flavour alone does to the tail at 1,000 connections.
    pub const BASELINE_MULTI_THREAD: &str = "baseline-multi-thread";
    /// The host with the memory registry.
    pub const HOST: &str = "host";
    /// The host with the Redis registry.
    pub const HOST_REDIS: &str = "host-redis";
}

/// One measurement of the suite: a scenario against a server, and what came of it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Record {
    /// Scenario name (see [`scenario`]).
    pub scenario: String,
    /// Server label (see [`label`]).
    pub server: String,
    /// The result, when it ran.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub outcome: Option<Outcome>,
    /// Why it could not run.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// Why it was not run.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub skipped: Option<String>,
    /// With `--repeat`: the headline figure of every run, in run order (the outcome kept
    /// is the median one).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub repeats: Vec<f64>,
}

impl Record {
    pub(crate) fn new(scenario: &str, server: &str, result: Result<Outcome, String>) -> Self {
        let (outcome, error) = match result {
            Ok(outcome) => (Some(outcome), None),
            Err(error) => (None, Some(error)),
        };
        Record {
            scenario: scenario.into(),
            server: server.into(),
            outcome,
            error,
            skipped: None,
            repeats: Vec::new(),
        }
    }

    /// The run with the median headline figure of `runs`; failed runs count only when no
    /// run succeeded.
    pub(crate) fn median(scenario: &str, server: &str, runs: Vec<Result<Outcome, String>>) -> Self {
        let figures: Vec<f64> = runs
            .iter()
            .filter_map(|r| r.as_ref().ok().map(|o| o.headline().1))
            .collect();
        let mut ok: Vec<Outcome> = runs
            .iter()
            .filter_map(|r| r.as_ref().ok().cloned())
            .collect();
        let first_error = runs.into_iter().find_map(Result::err);
        if ok.is_empty() {
            return Record::new(
                scenario,
                server,
                Err(first_error.unwrap_or_else(|| "not run".into())),
            );
        }
        ok.sort_by(|a, b| a.headline().1.total_cmp(&b.headline().1));
        let kept = ok.swap_remove(ok.len() / 2);
        let mut record = Record::new(scenario, server, Ok(kept));
        if figures.len() > 1 {
            record.repeats = figures;
        }
        record
    }

    pub(crate) fn skipped(scenario: &str, server: &str, why: &str) -> Self {
        Record {
            scenario: scenario.into(),
            server: server.into(),
            outcome: None,
            error: None,
            skipped: Some(why.into()),
            repeats: Vec::new(),
        }
    }

    /// One line for the progress log and the results table.
    pub fn summary(&self) -> String {
        match (&self.outcome, &self.error, &self.skipped) {
            (Some(outcome), _, _) if !self.repeats.is_empty() => {
                let (metric, _) = outcome.headline();
                let all: Vec<String> = self.repeats.iter().map(|v| format!("{v}")).collect();
                format!(
                    "{} (median of {} runs by {metric}: {})",
                    outcome.summary(),
                    self.repeats.len(),
                    all.join(", ")
                )
            }
            (Some(outcome), _, _) => outcome.summary(),
            (_, Some(error), _) => format!("FAILED: {error}"),
            (_, _, Some(why)) => format!("skipped: {why}"),
            _ => "nothing recorded".into(),
        }
    }
}
