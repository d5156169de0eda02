//! How fast one connection may send: `limits.messages_per_s` with a burst of
//! `limits.messages_burst` (README.md, "Bad input"; docs/PROTOCOL.md). The host counts on
//! the real clock, the module test kit on its manual one.
//!
//! Why: one client in a loop would otherwise take a module's whole attention and the
//! registry's with it. A phone sends a few messages a second at most, so the defaults
//! (100/s, a burst of 200) never touch a real client. A message over the rate is
//! answered 429 `tooManyRequests` and dropped; a client that goes on sending over it for
//! `limits.rate_close_after_s` is closed with 1008, since it is not reading its 429s.
//!
//! How: the bucket is `governor`'s GCRA limiter (a token bucket in one atomic, well
//! kept and tested), so this file only owns the "over for too long" rule. An excess
//! streak begins with the first refused message and goes on while refusals come less
//! than [`STREAK_GAP`] apart: a client that slows down below its rate starts afresh.

use std::{num::NonZeroU32, time::Duration};

use governor::{
    clock::{Clock, DefaultClock, Reference},
    middleware::NoOpMiddleware,
    state::{InMemoryState, NotKeyed},
    Quota, RateLimiter,
};

/// A pause in refusals this long ends an excess streak.
pub const STREAK_GAP: Duration = Duration::from_secs(1);

/// What to do with one message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Within the rate: route it.
    Pass,
    /// Over the rate: answer 429 and drop it.
    Refuse,
    /// Over the rate for `limits.rate_close_after_s`: close with 1008.
    Close,
}

/// One connection's message rate.
pub struct MessageRate<C: Clock = DefaultClock> {
    /// The bucket; `None` when `limits.messages_per_s = 0`.
    bucket: Option<RateLimiter<NotKeyed, InMemoryState, C, NoOpMiddleware<C::Instant>>>,
    /// The clock the bucket reads, read for the streak too.
    clock: C,
    /// `limits.rate_close_after_s`; `None` never closes.
    close_after: Option<Duration>,
    /// `(first, last)` refusal of the current excess streak.
    streak: Option<(C::Instant, C::Instant)>,
}

impl MessageRate {
    /// The limit from `[limits]`, on the real clock.
    pub fn new(per_s: u32, burst: u32, close_after_s: u64) -> Self {
        Self::with_clock(per_s, burst, close_after_s, DefaultClock::default())
    }
}

/// One message's verdict, as the per-connection engine asks for it.
pub trait Rate {
    /// Takes one message's token, if there is one.
    fn check(&mut self) -> Verdict;
}

impl<C: Clock + Clone> Rate for MessageRate<C> {
    fn check(&mut self) -> Verdict {
        MessageRate::check(self)
    }
}

impl<C: Clock + Clone> MessageRate<C> {
    /// The limit on a given clock (tests use governor's fake clock).
    pub fn with_clock(per_s: u32, burst: u32, close_after_s: u64, clock: C) -> Self {
        let bucket = NonZeroU32::new(per_s).map(|rate| {
            // The config requires a burst > 0 when the limit is on; 1 is the least that works.
            let burst = NonZeroU32::new(burst).unwrap_or(NonZeroU32::MIN);
            RateLimiter::direct_with_clock(
                Quota::per_second(rate).allow_burst(burst),
                clock.clone(),
            )
        });
        MessageRate {
            bucket,
            clock,
            close_after: (close_after_s > 0).then(|| Duration::from_secs(close_after_s)),
            streak: None,
        }
    }

    /// Takes one message's token, if there is one.
    pub fn check(&mut self) -> Verdict {
        let Some(bucket) = &self.bucket else {
            return Verdict::Pass;
        };
        if bucket.check().is_ok() {
            return Verdict::Pass;
        }
        let now = self.clock.now();
        let first = match self.streak {
            Some((first, last)) if Duration::from(now.duration_since(last)) < STREAK_GAP => first,
            _ => now,
        };
        self.streak = Some((first, now));
        match self.close_after {
            Some(limit) if Duration::from(now.duration_since(first)) >= limit => Verdict::Close,
            _ => Verdict::Refuse,
        }
    }
}

#[cfg(test)]
mod tests {
    use governor::clock::FakeRelativeClock;

    use super::*;

    fn rate(
        per_s: u32,
        burst: u32,
        close_after_s: u64,
    ) -> (MessageRate<FakeRelativeClock>, FakeRelativeClock) {
        let clock = FakeRelativeClock::default();
        (
            MessageRate::with_clock(per_s, burst, close_after_s, clock.clone()),
            clock,
        )
    }

    #[test]
    fn the_burst_passes_and_the_excess_is_refused() {
        let (mut rate, _clock) = rate(10, 3, 10);
        let verdicts: Vec<_> = (0..5).map(|_| rate.check()).collect();
        use Verdict::*;
        assert_eq!(verdicts, [Pass, Pass, Pass, Refuse, Refuse]);
    }

    #[test]
    fn the_bucket_refills_at_the_rate() {
        let (mut rate, clock) = rate(10, 1, 10);
        assert_eq!(rate.check(), Verdict::Pass);
        assert_eq!(rate.check(), Verdict::Refuse);
        clock.advance(Duration::from_millis(100));
        assert_eq!(rate.check(), Verdict::Pass);
    }

    #[test]
    fn a_client_over_its_rate_for_close_after_is_closed() {
        let (mut rate, clock) = rate(1, 1, 3);
        assert_eq!(rate.check(), Verdict::Pass);
        // Ten messages a second against one allowed: refused, and closed after 3 s.
        let mut verdicts = Vec::new();
        for _ in 0..40 {
            clock.advance(Duration::from_millis(100));
            verdicts.push(rate.check());
        }
        let first_close = verdicts.iter().position(|v| *v == Verdict::Close);
        // The streak starts at 100 ms; 3 s later is message 31 (index 30).
        assert_eq!(first_close, Some(30), "{verdicts:?}");
        assert!(
            verdicts[..30].contains(&Verdict::Pass),
            "the rate still lets some through"
        );
    }

    #[test]
    fn a_pause_ends_the_streak() {
        let (mut rate, clock) = rate(1, 1, 2);
        assert_eq!(rate.check(), Verdict::Pass);
        assert_eq!(rate.check(), Verdict::Refuse);
        clock.advance(Duration::from_millis(1500));
        assert_eq!(rate.check(), Verdict::Pass);
        clock.advance(Duration::from_millis(600));
        // Refused again 2.1 s after the first refusal, but a new streak began.
        assert_eq!(rate.check(), Verdict::Refuse);
    }

    #[test]
    fn zero_is_off() {
        let (mut rate, _clock) = rate(0, 0, 1);
        assert!((0..10_000).all(|_| rate.check() == Verdict::Pass));
        let (mut never_closed, clock) = rate_never_closing();
        for _ in 0..100 {
            clock.advance(Duration::from_millis(500));
            assert_ne!(never_closed.check(), Verdict::Close);
            assert_ne!(never_closed.check(), Verdict::Close);
        }
    }

    fn rate_never_closing() -> (MessageRate<FakeRelativeClock>, FakeRelativeClock) {
        rate(1, 1, 0)
    }
}
