//! Controller `Wall`: a big screen (`wall`) runs its room's poll.
//!
//! - `open {title, options, seconds}`: opens a poll; 403 `pollOpen` when one is open.
//!   The screen gets `voteOpenSuccess` and every screen and phone of the room
//!   `voteOpened`, both with `{poll, title, options, closes_at}`.
//! - `close`: closes the room's open poll now (`voteCloseSuccess`; every screen and
//!   phone gets `voteClosed`); 404 `pollNotFound` when none is open.
//! - `result {poll}`: a poll of this room, open or closed: `voteResult` with
//!   `{poll, title, options, counts, total, open}`; 404 `pollNotFound` otherwise.

use mswoole_plugin_api::{serde_json::Value, Envelope, IoErrorKind, ModuleError, Outcome};

use crate::{clock, params, room, sweep, Caller, Vote};

/// The actions of controller `Wall`.
pub const ACTIONS: &[&str] = &["open", "close", "result"];

/// Runs action `action` of a checked big screen.
pub async fn call(vote: &Vote, caller: &Caller, action: &str, message: &Value) -> Outcome {
    match action {
        "open" => open(vote, caller, message).await,
        "close" => close(vote, caller).await,
        "result" => result(vote, caller, message).await,
        other => Err(ModuleError::failed(format!(
            "routed to undeclared action Vote.Wall.{other}"
        ))),
    }
}

/// 404 `pollNotFound`.
pub fn poll_not_found() -> ModuleError {
    ModuleError::refused(404, "pollNotFound", "投票不存在或已结束")
}

/// 403 `pollOpen`.
fn poll_open() -> ModuleError {
    ModuleError::refused(403, "pollOpen", "本房间已有进行中的投票")
}

async fn open(vote: &Vote, caller: &Caller, message: &Value) -> Outcome {
    let opening = params::opening(message)?;
    vote.store.ensure_tables().await?;
    let now = clock::now_ms();
    // Rounded up to a whole second: a poll lasts at least the seconds asked for.
    let closes_at = (now + opening.seconds * 1000 + 999).div_euclid(1000);
    let insert = || {
        vote.store.insert_poll(
            &caller.code,
            &opening.title,
            &opening.options,
            closes_at,
            now,
        )
    };
    let id = match insert().await {
        Ok(id) => id,
        Err(error) if error.kind() == Some(IoErrorKind::Constraint) => {
            // The room's open poll may be past its time and not swept yet: it gives
            // way (closed and announced here) instead of refusing for up to a second.
            match vote.store.open_poll(&caller.code).await? {
                Some(stale) if stale.due(now) => {
                    sweep::close(vote, &stale).await?;
                    match insert().await {
                        Ok(id) => id,
                        Err(e) if e.kind() == Some(IoErrorKind::Constraint) => {
                            return Err(poll_open())
                        }
                        Err(e) => return Err(e.into()),
                    }
                }
                _ => return Err(poll_open()),
            }
        }
        Err(error) => return Err(error.into()),
    };
    let poll = crate::poll::Poll {
        id,
        code: caller.code.clone(),
        title: opening.title,
        options: opening.options,
        closes_at,
        open: true,
        tallied_ms: 0,
        tallied_total: 0,
    };
    let param = poll.opened();
    room::to_everyone(
        &vote.host,
        &caller.code,
        Envelope::ok("voteOpened", "投票开始").with_param(&param),
    )
    .await?;
    Ok(Some(
        Envelope::ok("voteOpenSuccess", "投票已开始").with_param(&param),
    ))
}

async fn close(vote: &Vote, caller: &Caller) -> Outcome {
    vote.store.ensure_tables().await?;
    let Some(poll) = vote.store.open_poll(&caller.code).await? else {
        return Err(poll_not_found());
    };
    if !sweep::close(vote, &poll).await? {
        // Closed by its deadline or another screen meanwhile: that one announced it.
        return Err(poll_not_found());
    }
    Ok(Some(
        Envelope::ok("voteCloseSuccess", "投票已结束")
            .with_param(&mswoole_plugin_api::serde_json::json!({"poll": poll.id})),
    ))
}

async fn result(vote: &Vote, caller: &Caller, message: &Value) -> Outcome {
    let id = params::poll(message)?;
    vote.store.ensure_tables().await?;
    let Some(poll) = vote.store.poll(id, Some(&caller.code)).await? else {
        return Err(poll_not_found());
    };
    let counts = vote.store.counts(&poll).await?;
    Ok(Some(
        Envelope::ok("voteResult", "投票结果").with_param(&poll.result(&counts)),
    ))
}
