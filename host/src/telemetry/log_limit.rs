//! Log floods summarised: identical errors repeated within a second are counted, and
//! one line says how many ("… 905 more in the last 10 s") — never silently dropped.
//!
//! Why: with Redis frozen, every client message failed and wrote its own ERROR line
//! (906 in 10 s), burying the one line that said why. An operator needs the first
//! line, then the count (README.md, "Deploying": what to watch in the logs).
//!
//! How: each call site names a bounded key — where it logs, the module and the error
//! kind, never an fd or an address — and asks [`admit`] before writing its line. The
//! first occurrence is written as it was. While the same key keeps coming back less
//! than [`REPEAT`] apart, occurrences are counted instead; the count is written as one
//! summary line when the repeats stop for [`REPEAT`], or every [`SUMMARY_EVERY`] while
//! they go on, by [`run_summaries`] (or by the next [`admit`] of that key, whichever is
//! first). A key quiet for [`SUMMARY_EVERY`] is forgotten, and past [`MAX_KEYS`] keys
//! new ones are written unlimited rather than lost.

use std::{
    collections::HashMap,
    sync::{LazyLock, Mutex, PoisonError},
    time::{Duration, Instant},
};

use tracing::Level;

use crate::runtime::shutdown::Shutdown;

/// Occurrences of one key less than this apart are counted, not written.
pub const REPEAT: Duration = Duration::from_secs(1);
/// While a flood goes on, its count is written this often.
pub const SUMMARY_EVERY: Duration = Duration::from_secs(10);
/// Keys tracked at once; a bound on memory whatever the call sites pass.
const MAX_KEYS: usize = 1024;

/// One key's flood.
struct Flood {
    /// Level of the lines the key writes.
    level: Level,
    /// The latest counted line, for the summary.
    message: String,
    /// When a line (or a summary) of the key was last written.
    written: Instant,
    /// When the key was last seen.
    seen: Instant,
    /// Occurrences seen and not written since `written`.
    counted: u64,
}

/// A summary line due: `"{message} (… {count} more in the last {seconds} s)"`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Summary {
    /// The key's level.
    pub level: Level,
    /// The key.
    pub key: String,
    /// Its latest line.
    pub message: String,
    /// Occurrences not written.
    pub count: u64,
    /// Seconds since the key's last written line, rounded up.
    pub seconds: u64,
}

impl Summary {
    fn write(&self) {
        let Summary {
            key,
            message,
            count,
            seconds,
            ..
        } = self;
        let line = format!("{message} (… {count} more in the last {seconds} s)");
        match self.level {
            Level::ERROR => tracing::error!(%key, "{line}"),
            Level::WARN => tracing::warn!(%key, "{line}"),
            _ => tracing::info!(%key, "{line}"),
        }
    }
}

/// Every key's flood.
#[derive(Default)]
pub struct LogLimit {
    /// A std mutex: held for a map operation, never across an await.
    floods: Mutex<HashMap<String, Flood>>,
}

impl LogLimit {
    /// Whether an occurrence of `key` at `now` is written; `Some` also carries a summary
    /// of the key's earlier flood to write first.
    pub fn admit(
        &self,
        level: Level,
        key: &str,
        message: &str,
        now: Instant,
    ) -> (bool, Option<Summary>) {
        let mut floods = self.floods.lock().unwrap_or_else(PoisonError::into_inner);
        let Some(flood) = floods.get_mut(key) else {
            if floods.len() < MAX_KEYS {
                let flood = Flood {
                    level,
                    message: String::new(),
                    written: now,
                    seen: now,
                    counted: 0,
                };
                floods.insert(key.to_string(), flood);
            }
            return (true, None);
        };
        let repeat = now.saturating_duration_since(flood.seen) < REPEAT;
        flood.seen = now;
        if repeat {
            flood.counted += 1;
            flood.message = message.to_string();
            let summary = (now.saturating_duration_since(flood.written) >= SUMMARY_EVERY)
                .then(|| summarise(key, flood, now));
            return (false, summary);
        }
        let summary = (flood.counted > 0).then(|| summarise(key, flood, now));
        flood.written = now;
        (true, summary)
    }

    /// Summaries due at `now`: floods that stopped, or that went on for
    /// [`SUMMARY_EVERY`]; keys quiet for that long are forgotten.
    pub fn due(&self, now: Instant) -> Vec<Summary> {
        let mut floods = self.floods.lock().unwrap_or_else(PoisonError::into_inner);
        let mut due = Vec::new();
        floods.retain(|key, flood| {
            let quiet = now.saturating_duration_since(flood.seen);
            if flood.counted > 0
                && (quiet >= REPEAT
                    || now.saturating_duration_since(flood.written) >= SUMMARY_EVERY)
            {
                due.push(summarise(key, flood, now));
            }
            flood.counted > 0 || quiet < SUMMARY_EVERY
        });
        due
    }
}

/// The summary of `flood`'s counted occurrences; the count starts again.
fn summarise(key: &str, flood: &mut Flood, now: Instant) -> Summary {
    let elapsed = now.saturating_duration_since(flood.written);
    let summary = Summary {
        level: flood.level,
        key: key.to_string(),
        message: std::mem::take(&mut flood.message),
        count: flood.counted,
        seconds: elapsed.as_secs() + u64::from(elapsed.subsec_nanos() > 0),
    };
    flood.counted = 0;
    flood.written = now;
    summary
}

/// The host's one flood table.
static FLOODS: LazyLock<LogLimit> = LazyLock::new(LogLimit::default);

/// Whether to write this occurrence of `key` now (writing a summary of its earlier
/// flood first). The caller writes its own line when this says yes, so the line keeps
/// its fields and its target.
pub fn admit(level: Level, key: &str, message: &str) -> bool {
    let (write, summary) = FLOODS.admit(level, key, message, Instant::now());
    if let Some(summary) = summary {
        summary.write();
    }
    write
}

/// Writes the summaries as they fall due, until the host stops, then the rest.
pub async fn run_summaries(shutdown: Shutdown) {
    let mut tick = tokio::time::interval(REPEAT);
    loop {
        tokio::select! {
            _ = shutdown.stopping() => break,
            _ = tick.tick() => {}
        }
        FLOODS.due(Instant::now()).iter().for_each(Summary::write);
    }
    // Whatever is still counted is written before the host exits.
    let later = Instant::now() + SUMMARY_EVERY;
    FLOODS.due(later).iter().for_each(Summary::write);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    #[test]
    fn a_flood_is_one_line_then_its_count() {
        let limit = LogLimit::default();
        let t0 = Instant::now();
        let key = "call failed Live unavailable";
        assert_eq!(limit.admit(Level::ERROR, key, "x 0", t0), (true, None));
        // 906 failures in 10 s, as in the issue: one line, the rest counted.
        for i in 1..906 {
            let (write, summary) =
                limit.admit(Level::ERROR, key, &format!("x {i}"), t0 + ms(i * 11));
            assert!(!write && summary.is_none(), "occurrence {i}");
        }
        assert!(
            limit.due(t0 + ms(9_966)).is_empty(),
            "still flooding, 10 s not up"
        );
        let due = limit.due(t0 + ms(11_000));
        assert_eq!(
            due,
            [Summary {
                level: Level::ERROR,
                key: key.into(),
                message: "x 905".into(),
                count: 905,
                seconds: 11,
            }]
        );
        assert!(limit.due(t0 + ms(12_000)).is_empty(), "counted once");
    }

    #[test]
    fn a_long_flood_is_summarised_every_ten_seconds() {
        let limit = LogLimit::default();
        let t0 = Instant::now();
        let mut summaries = Vec::new();
        for i in 0..3000 {
            let now = t0 + ms(i * 10);
            let (_, summary) = limit.admit(Level::WARN, "k", "m", now);
            summaries.extend(summary);
            summaries.extend(limit.due(now));
        }
        let counts: Vec<u64> = summaries.iter().map(|s| s.count).collect();
        assert_eq!(counts, [1000, 1000], "at 10 s and 20 s");
        assert_eq!(
            limit.due(t0 + ms(31_000))[0].count,
            999,
            "the rest once it stops"
        );
    }

    #[test]
    fn distinct_keys_and_spaced_errors_are_all_written() {
        let limit = LogLimit::default();
        let t0 = Instant::now();
        assert!(limit.admit(Level::ERROR, "a", "m", t0).0);
        assert!(limit.admit(Level::ERROR, "b", "m", t0).0, "another key");
        assert!(
            limit.admit(Level::ERROR, "a", "m", t0 + ms(1_500)).0,
            "1.5 s later"
        );
        assert!(
            limit.admit(Level::ERROR, "a", "m", t0 + ms(3_000)).0,
            "and again"
        );
        assert!(limit.due(t0 + ms(20_000)).is_empty(), "nothing was counted");
        assert!(
            limit
                .floods
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .is_empty(),
            "quiet keys forgotten"
        );
    }

    #[test]
    fn the_next_line_after_a_flood_carries_its_count_when_not_yet_summarised() {
        let limit = LogLimit::default();
        let t0 = Instant::now();
        limit.admit(Level::ERROR, "a", "m", t0);
        limit.admit(Level::ERROR, "a", "m", t0 + ms(100));
        let (write, summary) = limit.admit(Level::ERROR, "a", "m", t0 + ms(2_000));
        assert!(write);
        assert_eq!(summary.map(|s| s.count), Some(1));
    }

    #[test]
    fn past_the_key_bound_lines_are_written_unlimited() {
        let limit = LogLimit::default();
        let t0 = Instant::now();
        for n in 0..MAX_KEYS {
            limit.admit(Level::ERROR, &n.to_string(), "m", t0);
        }
        for _ in 0..10 {
            assert!(limit.admit(Level::ERROR, "one more", "m", t0).0);
        }
        assert_eq!(
            limit
                .floods
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .len(),
            MAX_KEYS
        );
    }
}
