//! Controller `User`: a phone user (`wechatUser`) votes.
//!
//! - `cast {option}`: one vote, for the 0-based `option`, in the room's open poll:
//!   `voteCastSuccess` with `{poll, option}`. No open poll, or one past its time: 404
//!   `pollNotFound`; an option the poll does not have: 401 `badParameter`; a second
//!   vote of the same uid: 403 `alreadyVoted` (the vote table's primary key decides).

use mswoole_plugin_api::{
    serde_json::{json, Value},
    Envelope, IoErrorKind, ModuleError, Outcome,
};

use crate::{clock, params, wall::poll_not_found, Caller, Vote};

/// The actions of controller `User`.
pub const ACTIONS: &[&str] = &["cast"];

/// Runs action `action` of a checked phone user.
pub async fn call(vote: &Vote, caller: &Caller, action: &str, message: &Value) -> Outcome {
    match action {
        "cast" => cast(vote, caller, message).await,
        other => Err(ModuleError::failed(format!(
            "routed to undeclared action Vote.User.{other}"
        ))),
    }
}

async fn cast(vote: &Vote, caller: &Caller, message: &Value) -> Outcome {
    let option = params::option(message)?;
    let uid = caller
        .uid()
        .ok_or_else(|| ModuleError::failed("a wechatUser token without an id"))?;
    vote.store.ensure_tables().await?;
    let now = clock::now_ms();
    let poll = match vote.store.open_poll(&caller.code).await? {
        Some(poll) if !poll.due(now) => poll,
        _ => return Err(poll_not_found()),
    };
    if usize::try_from(option).map_or(true, |index| index >= poll.options.len()) {
        return Err(ModuleError::bad_parameter("option"));
    }
    match vote.store.cast(poll.id, &uid, option, now).await {
        Ok(true) => Ok(Some(
            Envelope::ok("voteCastSuccess", "投票成功")
                .with_param(&json!({"poll": poll.id, "option": option})),
        )),
        // Closed between the read and the insert.
        Ok(false) => Err(poll_not_found()),
        Err(error) if error.kind() == Some(IoErrorKind::Constraint) => {
            Err(ModuleError::refused(403, "alreadyVoted", "您已经投过票了"))
        }
        Err(error) => Err(error.into()),
    }
}
