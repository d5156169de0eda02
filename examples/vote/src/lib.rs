//! The Vote module: a poll on the big screen. Its protocol, its config and how to
//! build and test it are in README.md next to this crate.
//!
//! A big screen (`wall`) opens a poll in its room, phone users (`wechatUser`) cast one
//! vote each, the room's screens get the tally once a second while it changes, and
//! when the poll closes (its deadline, or the screen closes it) every screen and phone
//! of the room gets the result. Rooms are Live's: `LIVE_WALL_ROOM_<code>` and
//! `LIVE_USER_ROOM_<code>` (only clients that joined with Live get broadcasts).
//!
//! Nothing that matters is kept in memory. Polls, votes and deadlines are rows in a
//! database the host runs for the module, and the database's unique keys decide the
//! races: one open poll per room, one vote per uid per poll. Work that must happen
//! once across several hosts on one database (a close, a tally) is *claimed* with a
//! conditional `UPDATE` first, and only the host whose update changed the row sends
//! anything. So a hot swap, a restart or a second host changes nothing: each version
//! of the module re-arms its one-second sweep in `on_start` and carries on from the
//! rows.
//!
//! - [`wall`]: controller `Wall`: `open`, `close`, `result`.
//! - [`user`]: controller `User`: `cast`.
//! - [`sweep`]: the timer work: closing due polls and sending tallies.
//! - [`store`]: the two tables and every statement, in each dialect.
//! - [`poll`]: a poll as read from its row, its counts, and what clients are sent.
//! - [`params`]: reading what the client sent.
//! - [`room`]: Live's room sets, and sending to them.
//! - [`clock`]: unix time (a manual clock in this crate's unit tests).
//!
//! `[modules.Vote]` takes one optional key, `database`: the `[databases.<name>]` the
//! polls live in (default `default`).

pub mod clock;
pub mod params;
pub mod poll;
pub mod room;
pub mod store;
pub mod sweep;
pub mod user;
pub mod wall;

#[cfg(test)]
mod tests;

use mswoole_plugin_api::{
    export_module, serde_json::Value, BoxFuture, Host, LogLevel, Module, ModuleError, ModuleInfo,
    Outcome, Request,
};

use crate::store::Store;

/// The Vote module.
#[derive(Clone)]
pub struct Vote {
    /// The host's services: connections, Live's room sets and timers.
    host: Host,
    /// The polls' tables.
    store: Store,
}

/// The module's settings, from `[modules.Vote]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Settings {
    /// The `[databases.<name>]` the polls live in.
    pub database: String,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            database: "default".into(),
        }
    }
}

impl Settings {
    /// Reads `[modules.Vote]` (passed as JSON); an unknown key or a bad value is refused by name.
    pub fn from_config(config: &Value) -> Result<Self, String> {
        let table = match config {
            Value::Null => return Ok(Settings::default()),
            Value::Object(table) => table,
            other => return Err(format!("modules.Vote must be a table, not {other}")),
        };
        let mut settings = Settings::default();
        for (key, value) in table {
            match (key.as_str(), value) {
                ("database", Value::String(name)) if !name.is_empty() => {
                    settings.database = name.clone();
                }
                ("database", other) => {
                    return Err(format!(
                        "modules.Vote.database must name a [databases.<name>] section, \
                         not {other}"
                    ));
                }
                (other, _) => {
                    return Err(format!(
                        "modules.Vote.{other} is not a setting of the Vote module \
                         (it knows database)"
                    ));
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
    /// Its room code (never empty).
    pub code: String,
    /// Its decoded token, as the host injected it (without `ctime`).
    pub auth: Value,
}

impl Caller {
    /// Checks the room code (999 `codeIsEmpty`) and then the token type (403) of a
    /// request: the first two of the checks every action makes, in this order.
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
            code: code.to_string(),
            auth: auth.clone(),
        })
    }

    /// The uid one vote is counted under: the string form of the token's `id`, as the
    /// host forms it (`1` and `"1"` are the same user).
    pub fn uid(&self) -> Option<String> {
        match self.auth.get("id")? {
            Value::String(id) => Some(id.clone()),
            Value::Number(id) => Some(id.to_string()),
            _ => None,
        }
    }
}

impl Module for Vote {
    fn info() -> ModuleInfo {
        ModuleInfo::new("Vote", env!("CARGO_PKG_VERSION"))
            .controller("Wall", wall::ACTIONS)
            .controller("User", user::ACTIONS)
    }

    fn new(host: Host, config: Value) -> Result<Self, String> {
        let settings = Settings::from_config(&config)?;
        let store = Store::new(host.clone(), &settings.database)?;
        Ok(Vote { host, store })
    }

    /// Arms the sweep and creates the tables. A database that cannot be reached now
    /// does not refuse the module: the tables are created on first use instead.
    fn on_start(&self) -> BoxFuture<Result<(), ModuleError>> {
        let vote = self.clone();
        Box::pin(async move {
            sweep::arm(&vote.host)?;
            if let Err(error) = vote.store.ensure_tables().await {
                vote.host.log(
                    LogLevel::Warn,
                    &format!("cannot create the poll tables yet, retried on use: {error}"),
                );
            }
            Ok(())
        })
    }

    fn call(&self, request: Request) -> BoxFuture<Outcome> {
        let vote = self.clone();
        Box::pin(async move {
            let role = match request.controller.as_str() {
                "Wall" => Role::Wall,
                "User" => Role::WechatUser,
                other => {
                    return Err(ModuleError::failed(format!(
                        "routed to undeclared controller Vote.{other}"
                    )))
                }
            };
            let caller = Caller::check(&request, role)?;
            let message = request.message();
            match role {
                Role::Wall => wall::call(&vote, &caller, &request.action, message).await,
                Role::WechatUser => user::call(&vote, &caller, &request.action, message).await,
            }
        })
    }

    fn on_timer(&self, name: &str, payload: Value) -> BoxFuture<Result<(), ModuleError>> {
        let vote = self.clone();
        let name = name.to_string();
        Box::pin(async move { sweep::on_timer(&vote, &name, &payload).await })
    }
}

export_module!(Vote);
