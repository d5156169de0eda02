//! The Live module (docs/PROTOCOL.md, "Live actions"): rooms of phone users (`wechatUser`) and big screens (`wall`).
//!
//! A room is the token's `code`, which the host injects into every message together
//! with `fd` and `auth`; nothing else the client sends is trusted for them. Every
//! action first checks the room code (999 `codeIsEmpty`), then the token type (403
//! `mustBeWechatUser` / `mustBeWall`); a refusal stops the action before anything is
//! written or sent.
//!
//! - [`user`]: controller `User`: join, out, say (queued for moderation), history, onClose.
//! - [`wall`]: controller `Wall`: join, out, check, say, recall, clean, history.
//! - [`room`]: a room's registry keys: who is in it and the messages it keeps.
//! - [`wall_store`]: wall messages in MSwoole's SQL table, when a database is configured.
//! - [`params`]: reading what the client sent (`say`, `id`, `status`, `type`, `page`, `count`).
//!
//! `[modules.Live]` keys, all optional: `message_ttl_s`, seconds a room's stored registry
//! messages are kept after their last write (default 0: kept until deleted); `database`,
//! a `[databases.<name>]` to keep wall messages in (default: none, the registry);
//! `wall_table`, its table (default `live_wall_message`, MSwoole's); `queue_max`, the most
//! messages a room's moderation queue holds, the oldest dropped first (default 1000).

pub mod params;
pub mod room;
pub mod user;
pub mod wall;
pub mod wall_store;

#[cfg(test)]
mod tests;

use mswoole_plugin_api::{
    export_module, serde_json::Value, BoxFuture, Host, LogLevel, Module, ModuleError, ModuleInfo,
    Outcome, Request,
};

use crate::{
    room::{QueueBound, Room},
    wall_store::SqlWall,
};

/// The Live module.
pub struct Live {
    /// The host's services: the registry and the connections.
    host: Host,
    /// What `[modules.Live]` set.
    settings: Settings,
    /// The wall messages' SQL table, when `database` is set.
    sql: Option<SqlWall>,
    /// The moderation queues' bound, and which rooms are dropping messages now.
    queue: QueueBound,
}

/// The module's settings, from `[modules.Live]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Settings {
    /// Seconds a room's message keys live after their last write; 0 keeps them.
    pub message_ttl_s: u64,
    /// The `[databases.<name>]` wall messages are kept in; `None`: the registry.
    pub database: Option<String>,
    /// The table of wall messages in `database`.
    pub wall_table: String,
    /// The most messages a room's moderation queue holds after a trim (at least 1; trims
    /// drop the oldest, see [`QueueBound`]). Without a bound, phones in a room whose screen
    /// checks nothing grow its queue forever (docs/BENCHMARKS.md, "Soak").
    pub queue_max: u64,
}

/// `queue_max` when the config does not set it: far more than a screen's moderator reads.
pub const DEFAULT_QUEUE_MAX: u64 = 1000;

impl Default for Settings {
    fn default() -> Self {
        Settings {
            message_ttl_s: 0,
            database: None,
            wall_table: wall_store::DEFAULT_TABLE.into(),
            queue_max: DEFAULT_QUEUE_MAX,
        }
    }
}

impl Settings {
    /// Reads `[modules.Live]` (passed as JSON); an unknown key or a bad value is refused by name.
    pub fn from_config(config: &Value) -> Result<Self, String> {
        let table = match config {
            Value::Null => return Ok(Settings::default()),
            Value::Object(table) => table,
            other => return Err(format!("modules.Live must be a table, not {other}")),
        };
        let mut settings = Settings::default();
        for (key, value) in table {
            match key.as_str() {
                "message_ttl_s" => {
                    settings.message_ttl_s = value.as_u64().ok_or_else(|| {
                        format!(
                            "modules.Live.message_ttl_s must be a whole number of seconds \
                             (0 keeps messages), not {value}"
                        )
                    })?;
                }
                "database" => {
                    let name = value.as_str().ok_or_else(|| {
                        format!("modules.Live.database must name a [databases.<name>], not {value}")
                    })?;
                    settings.database = Some(name.to_string());
                }
                "wall_table" => {
                    settings.wall_table = value
                        .as_str()
                        .ok_or_else(|| {
                            format!("modules.Live.wall_table must be a table name, not {value}")
                        })?
                        .to_string();
                }
                "queue_max" => {
                    settings.queue_max =
                        value.as_u64().filter(|max| *max > 0).ok_or_else(|| {
                            format!(
                                "modules.Live.queue_max must be a whole number of messages, \
                             at least 1, not {value}"
                            )
                        })?;
                }
                other => {
                    return Err(format!(
                        "modules.Live.{other} is not a setting of the Live module \
                         (it knows message_ttl_s, database, wall_table, queue_max)"
                    ))
                }
            }
        }
        Ok(settings)
    }
}

/// Who may use a controller: the `type` of the caller's token.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// A phone user, `wechatUser`: controller `User`.
    WechatUser,
    /// A big screen, `wall`: controller `Wall`.
    Wall,
}

impl Role {
    /// The token type this role needs.
    pub fn token_type(self) -> &'static str {
        match self {
            Role::WechatUser => "wechatUser",
            Role::Wall => "wall",
        }
    }

    /// The 403 a caller of another type gets.
    pub fn refusal(self) -> ModuleError {
        match self {
            Role::WechatUser => ModuleError::refused(403, "mustBeWechatUser", "仅限微信用户操作"),
            Role::Wall => ModuleError::refused(403, "mustBeWall", "仅限大屏幕操作"),
        }
    }
}

/// The caller of one action, checked: it has a room code and the role's token type.
#[derive(Debug, Clone, PartialEq)]
pub struct Caller {
    /// Its connection.
    pub fd: String,
    /// Its room code (never empty).
    pub code: String,
    /// Its decoded token, as the host injected it (without `ctime`).
    pub auth: Value,
}

impl Caller {
    /// Checks the room code (999 `codeIsEmpty`) and then the token type (403) of a request.
    pub fn check(request: &Request, role: Role) -> Result<Caller, ModuleError> {
        let code = request.code();
        if code.is_empty() {
            return Err(ModuleError::refused(999, "codeIsEmpty", "房间号不能为空"));
        }
        let auth = request.auth();
        if auth.get("type").and_then(Value::as_str) != Some(role.token_type()) {
            return Err(role.refusal());
        }
        Ok(Caller {
            fd: request.fd.clone(),
            code: code.to_string(),
            auth: auth.clone(),
        })
    }

    /// The nickname in the token (empty when it has none).
    pub fn nickname(&self) -> String {
        match self.auth.get("nickname") {
            Some(Value::String(nickname)) => nickname.clone(),
            None | Some(Value::Null) => String::new(),
            Some(other) => other.to_string(),
        }
    }

    /// The `id` in the token, as it was issued (a number or a string).
    pub fn user_id(&self) -> Value {
        self.auth.get("id").cloned().unwrap_or(Value::Null)
    }
}

impl Module for Live {
    fn info() -> ModuleInfo {
        ModuleInfo::new("Live", env!("CARGO_PKG_VERSION"))
            .controller("User", user::ACTIONS)
            .controller("Wall", wall::ACTIONS)
    }

    fn new(host: Host, config: Value) -> Result<Self, String> {
        let settings = Settings::from_config(&config)?;
        let sql = match &settings.database {
            Some(db) => Some(SqlWall::new(db, &settings.wall_table)?),
            None => None,
        };
        Ok(Live {
            queue: QueueBound::new(settings.queue_max),
            settings,
            sql,
            host,
        })
    }

    /// Creates the wall table when missing; a database that is down is logged, not fatal:
    /// creation is tried again before the next statement.
    fn on_start(&self) -> BoxFuture<Result<(), ModuleError>> {
        let (host, sql) = (self.host.clone(), self.sql.clone());
        Box::pin(async move {
            if let Some(sql) = sql {
                if let Err(error) = sql.ensure_table(&host).await {
                    host.log(
                        LogLevel::Warn,
                        &format!("{}: not created yet: {error}", sql.table()),
                    );
                }
            }
            Ok(())
        })
    }

    fn call(&self, request: Request) -> BoxFuture<Outcome> {
        let host = self.host.clone();
        let ttl = self.settings.message_ttl_s;
        let sql = self.sql.clone();
        let queue = self.queue.clone();
        Box::pin(async move {
            let role = match request.controller.as_str() {
                "User" => Role::WechatUser,
                "Wall" => Role::Wall,
                other => {
                    return Err(ModuleError::failed(format!(
                        "routed to undeclared controller Live.{other}"
                    )))
                }
            };
            let caller = Caller::check(&request, role)?;
            let room = Room::new(host, &caller.code, ttl, sql).with_queue(queue);
            match role {
                Role::WechatUser => {
                    user::call(&room, &caller, &request.action, request.message()).await
                }
                Role::Wall => wall::call(&room, &caller, &request.action, request.message()).await,
            }
        })
    }

    fn on_close(&self, controller: &str, info: Value) -> BoxFuture<Result<(), ModuleError>> {
        let host = self.host.clone();
        let settings = self.settings.clone();
        let controller = controller.to_string();
        Box::pin(async move {
            match controller.as_str() {
                "User" => user::on_close(host, settings, &info).await,
                _ => Ok(()),
            }
        })
    }
}

export_module!(Live);
