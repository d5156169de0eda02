//! A resumable session's seq counter and the frames it keeps for a replay (README.md,
//! "Resumable sessions").
//!
//! The connection task stamps each envelope as it writes it: `"seq":n` becomes the
//! last key, n counting 1, 2, 3, … per session, so the order of seqs is the order on
//! the wire. What it stamps is kept (the *written ring*) for `recovery.replay_s`, within
//! `recovery.max_frames` and `recovery.max_bytes` (the oldest go first): frames written
//! just before a drop the host has not noticed are still there for the resume, byte
//! for byte as first sent. Frames that arrive while the session is detached wait
//! unstamped in its outbound queue and are stamped when it is claimed.

use std::{collections::VecDeque, time::Duration};

use serde::{Deserialize, Serialize};
use tokio::time::Instant;
use tokio_tungstenite::tungstenite::Utf8Bytes;

use super::control::NotResumed;
use crate::config::Recovery;

/// A session's seq counter and written ring on their way to another node: the highest
/// seq, and each kept frame as `(seq, text, age in ms)`, oldest first.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReplayState {
    /// The highest seq stamped.
    pub last: u64,
    /// The written ring.
    pub frames: Vec<(u64, String, u64)>,
}

/// A resumable session as its connection task holds it.
#[derive(Debug)]
pub struct Session {
    /// Its id (`param.session` of `sessionStart`).
    pub id: String,
    /// Its seq counter and written ring.
    pub replay: Replay,
}

/// A frame written to a resumable connection.
#[derive(Debug, Clone)]
struct Written {
    seq: u64,
    text: Utf8Bytes,
    at: Instant,
}

/// A session's seq counter and written ring.
#[derive(Debug)]
pub struct Replay {
    /// The highest seq stamped.
    last: u64,
    /// What was stamped, oldest first.
    ring: VecDeque<Written>,
    /// Bytes in `ring`.
    bytes: usize,
    /// `recovery.replay_s`.
    keep: Duration,
    /// `recovery.max_frames`.
    max_frames: usize,
    /// `recovery.max_bytes`.
    max_bytes: usize,
}

impl Replay {
    /// A ring for a new session.
    pub fn new(recovery: &Recovery) -> Self {
        Replay {
            last: 0,
            ring: VecDeque::new(),
            bytes: 0,
            keep: Duration::from_secs(recovery.replay_s),
            max_frames: recovery.max_frames.max(1),
            max_bytes: recovery.max_bytes.max(1),
        }
    }

    /// The highest seq stamped so far.
    #[cfg(test)]
    pub fn last(&self) -> u64 {
        self.last
    }

    /// Stamps an envelope with the next seq and keeps it. Text that is not a JSON object
    /// (it never is) goes out as it is.
    pub fn stamp(&mut self, text: &str) -> Utf8Bytes {
        let Some(open) = text.strip_suffix('}') else {
            return Utf8Bytes::from(text.to_string());
        };
        self.last += 1;
        let separator = if open.trim_end().ends_with('{') {
            ""
        } else {
            ","
        };
        let stamped = Utf8Bytes::from(format!("{open}{separator}\"seq\":{}}}", self.last));
        self.bytes += stamped.len();
        self.ring.push_back(Written {
            seq: self.last,
            text: stamped.clone(),
            at: Instant::now(),
        });
        self.trim();
        stamped
    }

    /// Drops what is older than `replay_s` or beyond the bounds, oldest first.
    fn trim(&mut self) {
        let now = Instant::now();
        while let Some(oldest) = self.ring.front() {
            let too_old = now.duration_since(oldest.at) > self.keep;
            if !too_old && self.ring.len() <= self.max_frames && self.bytes <= self.max_bytes {
                break;
            }
            self.bytes -= oldest.text.len();
            self.ring.pop_front();
        }
    }

    /// The ring as it travels to another node (a session that moves): every frame with its
    /// seq and age.
    pub fn export(&self) -> ReplayState {
        let now = Instant::now();
        ReplayState {
            last: self.last,
            frames: self
                .ring
                .iter()
                .map(|written| {
                    let age = now.duration_since(written.at).as_millis() as u64;
                    (written.seq, written.text.to_string(), age)
                })
                .collect(),
        }
    }

    /// A ring another node exported, under this node's `[recovery]` bounds.
    pub fn import(recovery: &Recovery, state: ReplayState) -> Self {
        let mut replay = Replay::new(recovery);
        let now = Instant::now();
        replay.last = state.last;
        for (seq, text, age) in state.frames {
            let at = now.checked_sub(Duration::from_millis(age)).unwrap_or(now);
            replay.bytes += text.len();
            replay.ring.push_back(Written {
                seq,
                text: Utf8Bytes::from(text),
                at,
            });
        }
        replay.trim();
        replay
    }

    /// The frames after `last`, in order, for a resume; an error when `last` is above
    /// the highest seq or frames after it are gone.
    pub fn since(&mut self, last: u64) -> Result<Vec<Utf8Bytes>, NotResumed> {
        if last > self.last {
            return Err(NotResumed::Invalid);
        }
        self.trim();
        if last == self.last {
            return Ok(Vec::new());
        }
        match self.ring.front() {
            Some(oldest) if oldest.seq <= last + 1 => Ok(self
                .ring
                .iter()
                .filter(|written| written.seq > last)
                .map(|written| written.text.clone())
                .collect()),
            _ => Err(NotResumed::Overflow),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn recovery(max_frames: usize, max_bytes: usize) -> Recovery {
        Recovery {
            max_frames,
            max_bytes,
            ..Recovery::default()
        }
    }

    #[test]
    fn seq_is_the_last_key_and_counts_from_1() {
        let mut replay = Replay::new(&Recovery::default());
        assert_eq!(
            replay
                .stamp(r#"{"status":200,"event":"a","info":"x"}"#)
                .as_str(),
            r#"{"status":200,"event":"a","info":"x","seq":1}"#
        );
        assert_eq!(
            replay
                .stamp(r#"{"status":200,"event":"b","info":"","param":[1]}"#)
                .as_str(),
            r#"{"status":200,"event":"b","info":"","param":[1],"seq":2}"#
        );
        assert_eq!(replay.stamp("{}").as_str(), r#"{"seq":3}"#);
        assert_eq!(replay.last(), 3);
    }

    #[test]
    fn a_resume_gets_what_came_after_last_or_a_reason() {
        let mut replay = Replay::new(&recovery(3, 1 << 20));
        for n in 1..=5 {
            replay.stamp(&format!(r#"{{"n":{n}}}"#));
        }
        // The ring keeps 3..=5.
        let texts =
            |frames: Vec<Utf8Bytes>| frames.iter().map(|f| f.to_string()).collect::<Vec<_>>();
        assert_eq!(
            replay.since(3).map(texts),
            Ok(vec![
                r#"{"n":4,"seq":4}"#.to_string(),
                r#"{"n":5,"seq":5}"#.to_string()
            ])
        );
        assert_eq!(replay.since(2).map(|f| f.len()), Ok(3));
        assert_eq!(replay.since(5).map(|f| f.len()), Ok(0));
        assert_eq!(replay.since(1), Err(NotResumed::Overflow));
        assert_eq!(replay.since(6), Err(NotResumed::Invalid));
    }

    #[test]
    fn the_ring_is_bounded_in_bytes() {
        let mut replay = Replay::new(&recovery(100, 40));
        replay.stamp(r#"{"a":"0123456789"}"#);
        replay.stamp(r#"{"a":"0123456789"}"#);
        assert_eq!(replay.since(0), Err(NotResumed::Overflow));
        assert_eq!(replay.since(1).map(|f| f.len()), Ok(1));
    }

    #[test]
    fn a_ring_moves_to_another_node_whole() {
        let mut replay = Replay::new(&Recovery::default());
        for n in 1..=3 {
            replay.stamp(&format!(r#"{{"n":{n}}}"#));
        }
        let state = replay.export();
        assert_eq!(state.last, 3);
        let mut moved = Replay::import(&Recovery::default(), state.clone());
        assert_eq!(moved.export().frames.len(), 3);
        assert_eq!(moved.since(1), replay.since(1));
        assert_eq!(moved.stamp("{}").as_str(), r#"{"seq":4}"#);
        // The receiving node's bounds apply.
        let mut small = Replay::import(&recovery(2, 1 << 20), state);
        assert_eq!(small.since(0), Err(NotResumed::Overflow));
        assert_eq!(small.since(1).map(|f| f.len()), Ok(2));
    }
}
