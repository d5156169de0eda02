//! The side a module author writes against: plain Rust types and `async` methods.
//!
//! Nothing here crosses the boundary by itself; [`crate::export_module!`] wraps a
//! [`Module`] into the FFI types of [`crate::ffi`].

use std::{future::Future, pin::Pin, sync::OnceLock};

use abi_stable::std_types::{ROption, RResult, RString, RVec, Tuple2};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::ffi::{
    Envelope, HostApiBox, HostError, IoError, IoErrorKind, LogLevel, ModuleError, ModuleInfo,
    Status,
};

impl Envelope {
    /// An envelope without `param`.
    pub fn new(status: Status, event: &str, info: &str) -> Self {
        Envelope {
            status,
            event: event.into(),
            info: info.into(),
            param: ROption::RNone,
        }
    }

    /// A 200 envelope without `param`.
    pub fn ok(event: &str, info: &str) -> Self {
        Self::new(200, event, info)
    }

    /// The same envelope with `param` set (JSON `null` leaves it out).
    pub fn with_param(mut self, param: &Value) -> Self {
        self.param = match param {
            Value::Null => ROption::RNone,
            value => ROption::RSome(value.to_string().into()),
        };
        self
    }
}

impl ModuleError {
    /// A refusal the client sees with this status, event and info.
    pub fn refused(status: Status, event: &str, info: &str) -> Self {
        ModuleError::Refused {
            status,
            event: event.into(),
            info: info.into(),
        }
    }

    /// 401 `badParameter`, naming the parameter.
    pub fn bad_parameter(name: &str) -> Self {
        Self::refused(401, "badParameter", &format!("参数错误: {name}"))
    }

    /// A failure whose detail goes to the log only (the client sees 500).
    pub fn failed(detail: impl Into<String>) -> Self {
        ModuleError::Failed(detail.into().into())
    }
}

impl From<HostError> for ModuleError {
    fn from(error: HostError) -> Self {
        match error {
            HostError::Unavailable(detail) => ModuleError::Unavailable(detail),
            HostError::Storage(detail) => ModuleError::Storage(detail),
            HostError::Refused(detail) => ModuleError::Failed(detail),
        }
    }
}

/// An unhandled database or HTTP error, through the one error path: `Unreachable` and
/// `Timeout` answer 503 `unavailable` ("try later"), every other kind 501 `storageError`.
/// The detail goes to the log only.
impl From<IoError> for ModuleError {
    fn from(error: IoError) -> Self {
        let detail = RString::from(error.to_string());
        if error.is_unavailable() {
            ModuleError::Unavailable(detail)
        } else {
            ModuleError::Storage(detail)
        }
    }
}

/// A boxed future, as module methods return them (`Box::pin(async move { ... })`).
pub type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send + 'static>>;

/// What an action returns: a reply envelope for the sender, or nothing.
pub type Outcome = Result<Option<Envelope>, ModuleError>;

/// One routed message as a module sees it.
#[derive(Debug, Clone)]
pub struct Request {
    /// The connection it came from.
    pub fd: String,
    /// The controller, as the module declared it.
    pub controller: String,
    /// The action, as the module declared it (an `onMessage` fallback: lower-cased).
    pub action: String,
    /// The message as JSON text; parsed on first use, so an action that never looks
    /// at it (`index.index.index`) does not pay for parsing.
    raw: String,
    /// The parsed message.
    parsed: OnceLock<Value>,
}

impl Request {
    /// A request for `controller.action` from `fd` with the message as JSON text.
    pub fn new(fd: String, controller: String, action: String, message: String) -> Self {
        Request {
            fd,
            controller,
            action,
            raw: message,
            parsed: OnceLock::new(),
        }
    }

    /// The message object, after the host's injection (`fd`, `code`, `auth`) and escaping.
    pub fn message(&self) -> &Value {
        self.parsed
            .get_or_init(|| serde_json::from_str(&self.raw).unwrap_or_default())
    }

    /// The message as the JSON text the host sent.
    pub fn message_text(&self) -> &str {
        &self.raw
    }

    /// A string field of the message, or 401 `badParameter` naming it.
    pub fn str_param(&self, name: &str) -> Result<&str, ModuleError> {
        self.message()
            .get(name)
            .and_then(Value::as_str)
            .ok_or_else(|| ModuleError::bad_parameter(name))
    }

    /// The room code from the connection's token (empty when the token had none).
    pub fn code(&self) -> &str {
        self.message()
            .get("code")
            .and_then(Value::as_str)
            .unwrap_or("")
    }

    /// The decoded token of the connection (without `ctime`).
    pub fn auth(&self) -> &Value {
        self.message().get("auth").unwrap_or(&Value::Null)
    }
}

/// A module: what the author implements, in ordinary Rust.
///
/// Futures are `'static`: clone what they need (the [`Host`], an `Arc` of state)
/// into them. They may await only futures the host hands out through [`Host`]; the
/// plugin's own copy of any runtime has no reactor. A call that awaits nothing
/// completes on its first poll and costs no thread hop.
pub trait Module: Send + Sync + Sized + 'static {
    /// Name, version and controllers; called before the module is constructed.
    fn info() -> ModuleInfo;

    /// Builds the module from the host handle and its `[modules.<name>]` table.
    fn new(host: Host, config: Value) -> Result<Self, String>;

    /// Handles one routed message.
    fn call(&self, request: Request) -> BoxFuture<Outcome>;

    /// `onClose` of `controller` for a connection that registered it; `info` is `{fd, code, auth}`.
    fn on_close(&self, controller: &str, info: Value) -> BoxFuture<Result<(), ModuleError>> {
        let _ = (controller, info);
        Box::pin(std::future::ready(Ok(())))
    }

    /// `onReload`: the operator asked for a reload.
    fn on_reload(&self) -> BoxFuture<Result<(), ModuleError>> {
        Box::pin(std::future::ready(Ok(())))
    }

    /// `onShutdown`: the host is stopping.
    fn on_shutdown(&self) -> BoxFuture<Result<(), ModuleError>> {
        Box::pin(std::future::ready(Ok(())))
    }

    /// Runs once this version is constructed and has imported its predecessor's
    /// state, before it serves: re-arm timers here. An error refuses the version.
    fn on_start(&self) -> BoxFuture<Result<(), ModuleError>> {
        Box::pin(std::future::ready(Ok(())))
    }

    /// A timer set with [`Host::timer_after`] or [`Host::timer_every`] fired.
    fn on_timer(&self, name: &str, payload: Value) -> BoxFuture<Result<(), ModuleError>> {
        let _ = (name, payload);
        Box::pin(std::future::ready(Ok(())))
    }

    /// What this module serves once constructed, when its config changes what
    /// [`Module::info`] declares (a controller that is switched off is then not
    /// routed, and not listed by `mswoole status`). `None` keeps `info()`.
    fn configured_info(&self) -> Option<ModuleInfo> {
        None
    }

    /// State to hand to the next version of this module when it is swapped in.
    fn export_state(&self) -> Result<Option<String>, ModuleError> {
        Ok(None)
    }

    /// Takes state exported by the previous version. An error refuses the new version.
    fn import_state(&self, state: &str) -> Result<(), ModuleError> {
        let _ = state;
        Ok(())
    }
}

/// The SQL dialect of a database.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Dialect {
    /// MySQL or MariaDB.
    Mysql,
    /// PostgreSQL.
    Postgres,
    /// SQLite.
    Sqlite,
}

/// What a module may know of a configured database.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DatabaseInfo {
    /// Which SQL it speaks.
    pub dialect: Dialect,
    /// `[databases.<name>] prefix`: a table prefix for the module to apply, if it wants.
    pub prefix: String,
}

/// The outcome of a statement run for its effect.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Executed {
    /// Rows inserted, updated or deleted.
    pub rows_affected: u64,
    /// The generated id (MySQL's `LAST_INSERT_ID()`, SQLite's rowid after an insert);
    /// always `None` on PostgreSQL: use `RETURNING id` with [`Host::query`] there.
    pub last_insert_id: Option<i64>,
}

/// A row: column name to value (docs/DATABASES.md, "Rows").
pub type Row = Map<String, Value>;

/// An HTTP request a module asks the host to make.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HttpRequest {
    /// `GET`, `POST`, …
    pub method: String,
    /// An `http://` or `https://` URL.
    pub url: String,
    /// Header name and value pairs, in order.
    pub headers: Vec<(String, String)>,
    /// A text body.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub body: Option<String>,
    /// A binary body, base64-encoded (instead of `body`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub body_base64: Option<String>,
    /// The whole call's deadline, connecting and reading the answer included.
    pub timeout_ms: u64,
}

impl HttpRequest {
    /// A request without headers or body, with a 5 s deadline.
    pub fn new(method: &str, url: &str) -> Self {
        HttpRequest {
            method: method.into(),
            url: url.into(),
            headers: Vec::new(),
            body: None,
            body_base64: None,
            timeout_ms: 5000,
        }
    }

    /// `GET url`.
    pub fn get(url: &str) -> Self {
        Self::new("GET", url)
    }

    /// `POST url` with a JSON body and its content type.
    pub fn post_json(url: &str, body: &Value) -> Self {
        Self::new("POST", url)
            .header("content-type", "application/json")
            .body(body.to_string())
    }

    /// Adds a header.
    pub fn header(mut self, name: &str, value: &str) -> Self {
        self.headers.push((name.into(), value.into()));
        self
    }

    /// Sets a text body.
    pub fn body(mut self, text: impl Into<String>) -> Self {
        self.body = Some(text.into());
        self
    }

    /// Sets the deadline.
    pub fn timeout_ms(mut self, millis: u64) -> Self {
        self.timeout_ms = millis;
        self
    }
}

/// An HTTP answer (redirects are returned, not followed).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HttpResponse {
    /// The status code.
    pub status: u16,
    /// Header name and value pairs, in the order received.
    pub headers: Vec<(String, String)>,
    /// The body when it is UTF-8 text, else empty.
    pub body: String,
    /// The body, base64-encoded, when it is not UTF-8 text.
    #[serde(default)]
    pub body_base64: Option<String>,
}

impl HttpResponse {
    /// The first header of that name (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// The body parsed as JSON.
    pub fn json(&self) -> Result<Value, IoError> {
        serde_json::from_str(&self.body)
            .map_err(|e| IoError::new(IoErrorKind::BadStatement, format!("body is not JSON: {e}")))
    }
}

/// Reads the JSON text of a successful I/O call.
fn decoded<T: for<'de> Deserialize<'de>>(result: RResult<RString, IoError>) -> Result<T, IoError> {
    let text = Result::from(result)?;
    serde_json::from_str(&text).map_err(|e| {
        IoError::new(
            IoErrorKind::BadStatement,
            format!("the host's answer cannot be read: {e}"),
        )
    })
}

/// Parameters as the JSON array text the host binds.
fn params_text(params: &[Value]) -> RString {
    Value::Array(params.to_vec()).to_string().into()
}

/// The host's services, as a module author uses them. Cheap to clone.
#[derive(Clone)]
pub struct Host(HostApiBox);

fn strings(values: RVec<RString>) -> Vec<String> {
    values.into_iter().map(RString::into_string).collect()
}

impl Host {
    /// Wraps the handle the host passed to the constructor.
    pub fn new(api: HostApiBox) -> Self {
        Host(api)
    }

    /// The plugin-api version the host implements.
    pub fn api_version(&self) -> u32 {
        self.0.api_version()
    }

    /// Sends an envelope to one connection; `true` if it was found.
    pub async fn send(&self, fd: &str, envelope: Envelope) -> Result<bool, HostError> {
        self.0.send(fd.into(), envelope).await.into()
    }

    /// Sends an envelope to every member of a set; returns how many were reached.
    pub async fn send_to_set(&self, key: &str, envelope: Envelope) -> Result<u64, HostError> {
        self.0.send_to_set(key.into(), envelope).await.into()
    }

    /// Closes a connection; `true` if it was found.
    pub async fn close(&self, fd: &str) -> Result<bool, HostError> {
        self.0.close(fd.into()).await.into()
    }

    /// The decoded token of a connection, if it is connected.
    pub async fn identity(&self, fd: &str) -> Result<Option<Value>, HostError> {
        let found: Option<RString> = Result::from(self.0.identity(fd.into()).await)?.into();
        Ok(found.and_then(|text| serde_json::from_str::<Value>(&text).ok()))
    }

    /// The connection of an online `wechatUser`.
    pub async fn uid_fd(&self, uid: &str) -> Result<Option<String>, HostError> {
        let found: Option<RString> = Result::from(self.0.uid_fd(uid.into()).await)?.into();
        Ok(found.map(RString::into_string))
    }

    /// Adds a member to a set; `true` if it was new.
    pub async fn set_add(&self, key: &str, member: &str) -> Result<bool, HostError> {
        self.0.set_add(key.into(), member.into()).await.into()
    }

    /// Removes a member from a set; `true` if it was there.
    pub async fn set_remove(&self, key: &str, member: &str) -> Result<bool, HostError> {
        self.0.set_remove(key.into(), member.into()).await.into()
    }

    /// The members of a set.
    pub async fn set_members(&self, key: &str) -> Result<Vec<String>, HostError> {
        Result::from(self.0.set_members(key.into()).await).map(strings)
    }

    /// One field of a hash.
    pub async fn hash_get(&self, key: &str, field: &str) -> Result<Option<String>, HostError> {
        let found: Option<RString> =
            Result::from(self.0.hash_get(key.into(), field.into()).await)?.into();
        Ok(found.map(RString::into_string))
    }

    /// Sets one field of a hash.
    pub async fn hash_set(&self, key: &str, field: &str, value: &str) -> Result<(), HostError> {
        self.0
            .hash_set(key.into(), field.into(), value.into())
            .await
            .into()
    }

    /// Deletes one field of a hash; `true` if it was there.
    pub async fn hash_delete(&self, key: &str, field: &str) -> Result<bool, HostError> {
        self.0.hash_delete(key.into(), field.into()).await.into()
    }

    /// Every field of a hash.
    pub async fn hash_get_all(&self, key: &str) -> Result<Vec<(String, String)>, HostError> {
        let pairs = Result::from(self.0.hash_get_all(key.into()).await)?;
        Ok(pairs
            .into_iter()
            .map(|Tuple2(field, value)| (field.into_string(), value.into_string()))
            .collect())
    }

    /// Adds `by` to a counter and returns the new value.
    pub async fn incr(&self, key: &str, by: i64) -> Result<i64, HostError> {
        self.0.incr(key.into(), by).await.into()
    }

    /// Pushes a value at the head of a list; returns the new length.
    pub async fn list_push(&self, key: &str, value: &str) -> Result<u64, HostError> {
        self.0.list_push(key.into(), value.into()).await.into()
    }

    /// Elements `start..=stop` of a list (negative counts from the end).
    pub async fn list_range(
        &self,
        key: &str,
        start: i64,
        stop: i64,
    ) -> Result<Vec<String>, HostError> {
        Result::from(self.0.list_range(key.into(), start, stop).await).map(strings)
    }

    /// Keeps only elements `start..=stop` of a list.
    pub async fn list_trim(&self, key: &str, start: i64, stop: i64) -> Result<(), HostError> {
        self.0.list_trim(key.into(), start, stop).await.into()
    }

    /// Removes a key after `seconds`.
    pub async fn expire(&self, key: &str, seconds: u64) -> Result<bool, HostError> {
        self.0.expire(key.into(), seconds).await.into()
    }

    /// Removes a key; `true` if it existed.
    pub async fn delete(&self, key: &str) -> Result<bool, HostError> {
        self.0.delete(key.into()).await.into()
    }

    /// When `fd` closes, remove it from the set `key`.
    pub async fn add_close_key(&self, fd: &str, key: &str) -> Result<(), HostError> {
        self.0.add_close_key(fd.into(), key.into()).await.into()
    }

    /// When `fd` closes, call `onClose` of `controller` (`Module.Controller`).
    pub async fn add_close_controller(&self, fd: &str, controller: &str) -> Result<(), HostError> {
        self.0
            .add_close_controller(fd.into(), controller.into())
            .await
            .into()
    }

    /// Undoes [`Host::add_close_key`]: `fd` no longer leaves `key` when it closes.
    pub async fn remove_close_key(&self, fd: &str, key: &str) -> Result<(), HostError> {
        self.0.remove_close_key(fd.into(), key.into()).await.into()
    }

    /// Undoes [`Host::add_close_controller`]: `controller` is no longer told when `fd` closes.
    pub async fn remove_close_controller(
        &self,
        fd: &str,
        controller: &str,
    ) -> Result<(), HostError> {
        self.0
            .remove_close_controller(fd.into(), controller.into())
            .await
            .into()
    }

    /// Calls [`Module::on_timer`] once, `millis` from now, with `payload`. Timers
    /// belong to the module by name (setting one again replaces it) and survive a
    /// hot swap; at most `limits.timers_per_module`. May be called from `new`.
    pub fn timer_after(&self, name: &str, millis: u64, payload: &Value) -> Result<(), HostError> {
        self.0
            .timer_after(name.into(), millis, payload.to_string().into())
            .into()
    }

    /// Calls [`Module::on_timer`] every `millis` (at least 10); a tick that falls due
    /// while the previous `on_timer` of that name still runs is skipped.
    pub fn timer_every(&self, name: &str, millis: u64, payload: &Value) -> Result<(), HostError> {
        self.0
            .timer_every(name.into(), millis, payload.to_string().into())
            .into()
    }

    /// Cancels a timer; `true` if there was one by that name.
    pub fn timer_cancel(&self, name: &str) -> bool {
        self.0.timer_cancel(name.into())
    }

    /// Completes after `millis` milliseconds.
    pub async fn sleep(&self, millis: u64) -> Result<(), HostError> {
        self.0.sleep(millis).await.into()
    }

    /// Writes a line to the host's log.
    pub fn log(&self, level: LogLevel, message: &str) {
        self.0.log(level, message.into());
    }

    /// Dialect and prefix of a configured database.
    pub fn database_info(&self, db: &str) -> Result<DatabaseInfo, IoError> {
        decoded(self.0.database_info(db.into()))
    }

    /// Runs a statement that returns rows, `?` placeholders bound to `params` (never
    /// spliced into the SQL). Bounded by the database's `timeout_ms`.
    pub async fn query(&self, db: &str, sql: &str, params: &[Value]) -> Result<Vec<Row>, IoError> {
        decoded(
            self.0
                .query(db.into(), sql.into(), params_text(params))
                .await,
        )
    }

    /// Runs a statement for its effect.
    pub async fn execute(
        &self,
        db: &str,
        sql: &str,
        params: &[Value],
    ) -> Result<Executed, IoError> {
        decoded(
            self.0
                .execute(db.into(), sql.into(), params_text(params))
                .await,
        )
    }

    /// Runs statements in one transaction, all or nothing, under one `timeout_ms`.
    pub async fn transaction(
        &self,
        db: &str,
        statements: &[(&str, Vec<Value>)],
    ) -> Result<Vec<Executed>, IoError> {
        let statements = statements
            .iter()
            .map(|(sql, params)| Tuple2(RString::from(*sql), params_text(params)))
            .collect();
        decoded(self.0.transaction(db.into(), statements).await)
    }

    /// Makes an HTTP request through the host (no redirects followed; an answer over
    /// `limits.http_max_response_bytes` is a `TooLarge` error).
    pub async fn http(&self, request: &HttpRequest) -> Result<HttpResponse, IoError> {
        let text = serde_json::to_string(request)
            .map_err(|e| IoError::new(IoErrorKind::BadStatement, format!("request: {e}")))?;
        decoded(self.0.http(text.into()).await)
    }
}
