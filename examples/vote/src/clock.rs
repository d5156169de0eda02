//! Unix time in milliseconds: when a poll closes and when a tally may go out.
//!
//! Polls close at a unix second (`closes_at`) that every host on one database reads
//! the same way, so the module reads the system clock (hosts keep theirs in step with
//! NTP). Its unit tests run on the test kit's manual clock instead: there `now_ms` is
//! a per-thread clock that starts at a fixed instant and moves only when a test moves
//! it (the kit polls a module's futures on the test's own thread), so deadlines are
//! exact in tests and the kit's timers and this clock move together.

/// Milliseconds since 1970 (0 for a clock set before it).
#[cfg(not(test))]
pub fn now_ms() -> i64 {
    use std::time::{SystemTime, UNIX_EPOCH};
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |since| {
            i64::try_from(since.as_millis()).unwrap_or(i64::MAX)
        })
}

#[cfg(test)]
pub use manual::{advance_ms, now_ms};

#[cfg(test)]
mod manual {
    use std::cell::Cell;

    /// Where every test's clock starts: 2025-11-26 00:00:00.250 UTC, a quarter
    /// second past a whole second, so a deadline rounded up is visibly rounded.
    pub const START_MS: i64 = 1_764_115_200_250;

    thread_local! {
        /// This test thread's time (a `Cell` has no destructor).
        static NOW_MS: Cell<i64> = const { Cell::new(START_MS) };
    }

    /// The test's clock.
    pub fn now_ms() -> i64 {
        NOW_MS.with(Cell::get)
    }

    /// Moves the test's clock forward.
    pub fn advance_ms(millis: i64) {
        NOW_MS.with(|now| now.set(now.get() + millis));
    }
}
