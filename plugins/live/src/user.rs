//! Controller `User`: a phone user (`wechatUser`) in a room.
//!
//! - `join` / `out`: enter or leave `LIVE_USER_ROOM_<code>`; joining also registers
//!   `Live.User` for onClose, so a dropped phone leaves the room.
//! - `say {say}`: queued for moderation; every big screen of the room gets
//!   `userSayNeedCheck` with the message, the sender `userSaySuccess` with its id.
//! - `history {page, count}`: the wall messages only (`wallSayHistory`): phones never
//!   see the unmoderated queue.

use mswoole_plugin_api::{serde_json::Value, Envelope, Host, ModuleError, Outcome};

use crate::{
    params::{self, Page},
    room::{Members, Room},
    Caller, Settings,
};

/// The actions of controller `User`.
pub const ACTIONS: &[&str] = &["join", "out", "say", "history"];

/// The controller the host calls back when a joined phone's connection closes.
pub const CLOSE_CONTROLLER: &str = "Live.User";

/// Runs action `action` of a checked phone user.
pub async fn call(room: &Room, caller: &Caller, action: &str, message: &Value) -> Outcome {
    match action {
        "join" => join(room, caller).await,
        "out" => out(room, caller).await,
        "say" => say(room, caller, message).await,
        "history" => history(room, message).await,
        other => Err(ModuleError::failed(format!(
            "routed to undeclared action Live.User.{other}"
        ))),
    }
}

/// `live.user.join`.
async fn join(room: &Room, caller: &Caller) -> Outcome {
    room.enter(Members::Users, &caller.fd).await?;
    room.host()
        .add_close_controller(&caller.fd, CLOSE_CONTROLLER)
        .await?;
    Ok(Some(Envelope::ok("userJoinSuccess", "加入成功")))
}

/// `live.user.out`.
async fn out(room: &Room, caller: &Caller) -> Outcome {
    room.leave(Members::Users, &caller.fd).await?;
    // A phone that left is not notified about, or cleaned up from, the room on close.
    room.host()
        .remove_close_controller(&caller.fd, CLOSE_CONTROLLER)
        .await?;
    Ok(Some(Envelope::ok("userOutSuccess", "退出成功")))
}

/// `live.user.say {say}`.
async fn say(room: &Room, caller: &Caller, message: &Value) -> Outcome {
    let say = params::say(message)?;
    let queued = room.queue_message(caller.nickname(), say).await?;
    room.tell_stored(
        Members::Walls,
        Envelope::ok("userSayNeedCheck", "有新消息待审核").with_param(&queued),
    )
    .await;
    let id = queued.get("id").cloned().unwrap_or(Value::Null);
    Ok(Some(
        Envelope::ok("userSaySuccess", "发送成功, 等待审核").with_param(&id),
    ))
}

/// `live.user.history {page, count}`.
async fn history(room: &Room, message: &Value) -> Outcome {
    let messages = room.wall_page(Page::of(message)).await?;
    Ok(Some(
        Envelope::ok("wallSayHistory", "大屏幕消息记录").with_param(&Value::Array(messages)),
    ))
}

/// onClose of `Live.User`: the closed phone leaves its room. `info` is `{fd, code, auth}`.
pub async fn on_close(host: Host, settings: Settings, info: &Value) -> Result<(), ModuleError> {
    let text = |name: &str| info.get(name).and_then(Value::as_str).unwrap_or("");
    let (fd, code) = (text("fd"), text("code"));
    if fd.is_empty() || code.is_empty() {
        return Ok(());
    }
    Room::new(host, code, settings.message_ttl_s, None)
        .leave(Members::Users, fd)
        .await?;
    Ok(())
}
