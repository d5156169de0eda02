//! Controller `Wall`: a big screen (`wall`) in a room, which moderates and speaks.
//!
//! - `join` / `out`: enter or leave `LIVE_WALL_ROOM_<code>` (left on close too, unless
//!   the screen already left with `out`).
//! - `check {id, status}`: status 1 broadcasts the queued message to every phone
//!   (`userSayBroadcast`), anything else drops it; either way it leaves the queue.
//! - `say {say}`: stored, and broadcast to every phone (`wallSayBroadcast`).
//! - `recall {id}`: the stored message is marked recalled; phones get `wallSayRecall`.
//! - `clean`: drops the moderation queue.
//! - `history {type, page, count}`: `wall` messages or the `user` queue, newest first.

use mswoole_plugin_api::{serde_json::Value, Envelope, HostError, LogLevel, ModuleError, Outcome};

use crate::{
    params::{self, HistoryKind, Page},
    room::{Members, Room},
    Caller,
};

/// The actions of controller `Wall`.
pub const ACTIONS: &[&str] = &["join", "out", "check", "say", "recall", "clean", "history"];

/// Runs action `action` of a checked big screen.
pub async fn call(room: &Room, caller: &Caller, action: &str, message: &Value) -> Outcome {
    match action {
        "join" => join(room, caller).await,
        "out" => out(room, caller).await,
        "check" => check(room, message).await,
        "say" => say(room, caller, message).await,
        "recall" => recall(room, message).await,
        "clean" => clean(room).await,
        "history" => history(room, message).await,
        other => Err(ModuleError::failed(format!(
            "routed to undeclared action Live.Wall.{other}"
        ))),
    }
}

/// 404 `messageNotFound`.
pub fn message_not_found() -> ModuleError {
    ModuleError::refused(404, "messageNotFound", "消息不存在")
}

/// What a failed registry write of a wall message answers: a storage error is 501 `insertDbError`
/// (its detail goes to the log), anything else keeps its own status.
pub fn insert_error(room: &Room, error: HostError) -> ModuleError {
    match error {
        HostError::Storage(detail) => {
            room.host().log(
                LogLevel::Error,
                &format!(
                    "{}: cannot store a wall message: {detail}",
                    room.wall_messages_key()
                ),
            );
            ModuleError::refused(501, "insertDbError", "消息保存失败")
        }
        other => other.into(),
    }
}

/// `live.wall.join`.
async fn join(room: &Room, caller: &Caller) -> Outcome {
    room.enter(Members::Walls, &caller.fd).await?;
    Ok(Some(Envelope::ok("wallJoinSuccess", "加入成功")))
}

/// `live.wall.out`.
async fn out(room: &Room, caller: &Caller) -> Outcome {
    room.leave(Members::Walls, &caller.fd).await?;
    Ok(Some(Envelope::ok("wallOutSuccess", "退出成功")))
}

/// `live.wall.check {id, status}`.
async fn check(room: &Room, message: &Value) -> Outcome {
    let id = params::id(message)?;
    let approved = params::approved(message);
    let queued = room.take_queued(id).await?.ok_or_else(message_not_found)?;
    if approved {
        let broadcast = Envelope::ok("userSayBroadcast", "收到新消息").with_param(&queued);
        if let Err(error) = room.tell(Members::Users, broadcast).await {
            // Not delivered: put it back so the screen can check it again.
            if let Err(lost) = room.requeue(&queued).await {
                room.host().log(
                    LogLevel::Error,
                    &format!("{}: message {id} lost: {lost:?}", room.queue_key()),
                );
            }
            return Err(error.into());
        }
    }
    Ok(Some(
        Envelope::ok("wallCheckSuccess", "审核完成").with_param(&Value::from(id)),
    ))
}

/// `live.wall.say {say}`.
async fn say(room: &Room, caller: &Caller, message: &Value) -> Outcome {
    let say = params::say(message)?;
    let stored = room.store_wall_message(caller, say).await?;
    room.tell_stored(
        Members::Users,
        Envelope::ok("wallSayBroadcast", "收到大屏幕消息").with_param(&stored),
    )
    .await;
    Ok(Some(
        Envelope::ok("wallSaySuccess", "发送成功").with_param(&stored),
    ))
}

/// `live.wall.recall {id}`.
async fn recall(room: &Room, message: &Value) -> Outcome {
    let id = params::id(message)?;
    if !room.recall(id).await? {
        return Err(message_not_found());
    }
    // Told every time, also for a message recalled before: a retry after a failed
    // broadcast must still reach the phones.
    room.tell(
        Members::Users,
        Envelope::ok("wallSayRecall", "消息已撤回").with_param(&Value::from(id)),
    )
    .await?;
    Ok(Some(
        Envelope::ok("wallRecallSuccess", "撤回成功").with_param(&Value::from(id)),
    ))
}

/// `live.wall.clean`.
async fn clean(room: &Room) -> Outcome {
    room.clear_queue().await?;
    Ok(Some(Envelope::ok("wallCleanSuccess", "清空成功")))
}

/// `live.wall.history {type, page, count}`.
async fn history(room: &Room, message: &Value) -> Outcome {
    let kind = params::history_kind(message)?;
    let page = Page::of(message);
    let (event, info, messages) = match kind {
        HistoryKind::Wall => (
            "wallSayHistory",
            "大屏幕消息记录",
            room.wall_page(page).await?,
        ),
        HistoryKind::User => (
            "userSayHistory",
            "用户消息记录",
            room.queue_page(page).await?,
        ),
    };
    Ok(Some(
        Envelope::ok(event, info).with_param(&Value::Array(messages)),
    ))
}
