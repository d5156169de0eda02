//! The timer work: closing polls whose time is up and sending tallies.
//!
//! Every loaded version arms one repeating timer, `sweep`, every second (in
//! `on_start`, so a hot swap or a restart re-arms it). A sweep reads every open poll
//! of the database and steps each one:
//! - past `closes_at`: closed (see [`close`]);
//! - closing within the next sweep: a one-shot timer `close:<id>` is armed for the
//!   exact moment, and no tally goes out any more (the result follows within a second
//!   and carries the counts);
//! - otherwise, when its total changed since the last tally: the tally goes to the
//!   room's screens, unless one went out less than a second ago, in which case a
//!   one-shot `tally:<id>` fires when the second is over.
//!
//! Closes and tallies are claimed in the database first ([`Store::claim_close`],
//! [`Store::claim_tally`]) and only the claimant sends, so any number of hosts can
//! sweep one database: each poll closes once and its tallies are never less than a
//! second apart. The one-shot timers are only for precision; a sweep does their work
//! too, so losing one (a restart) costs at most a second.
//!
//! [`Store::claim_close`]: crate::store::Store::claim_close
//! [`Store::claim_tally`]: crate::store::Store::claim_tally

use mswoole_plugin_api::{
    serde_json::{json, Value},
    Envelope, Host, HostError, LogLevel, ModuleError,
};

use crate::{clock, poll::Poll, room, Vote};

/// The repeating timer's name.
pub const SWEEP: &str = "sweep";
/// How often it fires.
pub const SWEEP_MS: u64 = 1000;
/// The shortest time between two tallies of one poll.
pub const TALLY_GAP_MS: i64 = 1000;

/// Arms the sweep (setting it again replaces it).
pub fn arm(host: &Host) -> Result<(), HostError> {
    host.timer_every(SWEEP, SWEEP_MS, &json!({}))
}

/// The one-shot timer that closes poll `id` on time.
fn close_timer(id: i64) -> String {
    format!("close:{id}")
}

/// The one-shot timer that sends poll `id`'s deferred tally.
fn tally_timer(id: i64) -> String {
    format!("tally:{id}")
}

/// The poll a one-shot timer is about.
fn timer_poll(name: &str) -> Option<i64> {
    let (kind, id) = name.split_once(':')?;
    matches!(kind, "close" | "tally")
        .then(|| id.parse().ok())
        .flatten()
}

/// `on_timer`: a sweep, or a one-shot for one poll.
pub async fn on_timer(vote: &Vote, name: &str, payload: &Value) -> Result<(), ModuleError> {
    vote.store.ensure_tables().await?;
    if name == SWEEP {
        return sweep(vote).await;
    }
    let Some(id) = timer_poll(name) else {
        vote.host.log(
            LogLevel::Warn,
            &format!("timer {name} ({payload}) is not one of this version's: ignored"),
        );
        return Ok(());
    };
    match vote.store.poll(id, None).await? {
        Some(poll) if poll.open => step(vote, &poll, clock::now_ms()).await,
        _ => Ok(()),
    }
}

/// Steps every open poll; one poll's failure does not stop the others.
async fn sweep(vote: &Vote) -> Result<(), ModuleError> {
    let now = clock::now_ms();
    let mut failures = Vec::new();
    for poll in vote.store.open_polls().await? {
        if let Err(error) = step(vote, &poll, now).await {
            failures.push(format!("poll {}: {error:?}", poll.id));
        }
    }
    if failures.is_empty() {
        Ok(())
    } else {
        Err(ModuleError::failed(format!(
            "sweep failed for {}",
            failures.join("; ")
        )))
    }
}

/// What is due for one open poll at `now_ms` (see the module's documentation).
pub async fn step(vote: &Vote, poll: &Poll, now_ms: i64) -> Result<(), ModuleError> {
    if poll.due(now_ms) {
        close(vote, poll).await?;
        return Ok(());
    }
    let left = poll.closes_ms() - now_ms;
    if left <= TALLY_GAP_MS {
        later(vote, &close_timer(poll.id), left, poll.id);
        return Ok(());
    }
    let counts = vote.store.counts(poll).await?;
    if counts.total == poll.tallied_total {
        return Ok(());
    }
    let wait = poll.tallied_ms + TALLY_GAP_MS - now_ms;
    if wait > 0 {
        later(vote, &tally_timer(poll.id), wait, poll.id);
        return Ok(());
    }
    if vote
        .store
        .claim_tally(poll.id, poll.tallied_ms, counts.total, now_ms)
        .await?
    {
        let tally = Envelope::ok("voteTally", "投票统计").with_param(&poll.tally(&counts));
        room::to_walls(&vote.host, &poll.code, tally).await?;
    }
    Ok(())
}

/// Arms a one-shot timer for `poll` in `millis`. Best effort: when the host refuses
/// (too many timers), the next sweep does the same work a moment later.
fn later(vote: &Vote, name: &str, millis: i64, poll: i64) {
    let millis = u64::try_from(millis).unwrap_or(0);
    if let Err(error) = vote.host.timer_after(name, millis, &json!({"poll": poll})) {
        vote.host.log(
            LogLevel::Warn,
            &format!("timer {name} not armed, the sweep does its work: {error:?}"),
        );
    }
}

/// Closes `poll` if this caller claims it, and then announces the result to every
/// screen and phone of its room: `true` if it was this caller. A poll some other
/// call or host closed first is left to that one.
pub async fn close(vote: &Vote, poll: &Poll) -> Result<bool, ModuleError> {
    if !vote.store.claim_close(poll.id).await? {
        return Ok(false);
    }
    vote.host.timer_cancel(&close_timer(poll.id));
    vote.host.timer_cancel(&tally_timer(poll.id));
    let counts = vote.store.counts(poll).await?;
    let closed = Envelope::ok("voteClosed", "投票结束").with_param(&poll.closed(&counts));
    room::to_everyone(&vote.host, &poll.code, closed).await?;
    Ok(true)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_shot_timers_name_their_poll() {
        assert_eq!(timer_poll(&close_timer(12)), Some(12));
        assert_eq!(timer_poll(&tally_timer(3)), Some(3));
        assert_eq!(timer_poll(SWEEP), None);
        assert_eq!(timer_poll("close:x"), None);
        assert_eq!(timer_poll("other:1"), None);
    }
}
