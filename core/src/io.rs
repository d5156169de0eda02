//! Databases and HTTP as a module reaches them: the calls, their results, their failures.
//!
//! Why a trait here: the host and the module test kit must answer a module's SQL and
//! HTTP calls the same way, but this crate opens no socket. So [`services`](crate::services)
//! checks and converts what crosses the ABI, and hands the work to a [`ModuleIo`]: the
//! host's (its pools and client, crate `mswoole-io`) or the kit's (the same crate on a
//! private runtime, SQLite by default). What a module can act on is the [`IoKind`]
//! (docs/DATABASES.md, "Error kinds").

use std::fmt;

use serde_json::{json, Map, Value};

use crate::future::BoxFuture;

/// The kinds of failure; `TooLarge` and `BadUrl` serve HTTP too.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum IoKind {
    /// No database of that name is configured.
    UnknownDatabase,
    /// The statement or its parameters are wrong: syntax, unknown table or column, a parameter
    /// of a type SQL cannot take, a placeholder count that does not match.
    BadStatement,
    /// A unique, foreign-key, not-null or check constraint refused the change.
    Constraint,
    /// The deadline (`timeout_ms`) passed, or the server gave up waiting for a lock: whether the
    /// statement took effect is unknown.
    Timeout,
    /// The server cannot be reached: refused, gone, or the pool cannot connect.
    Unreachable,
    /// The request or the answer is larger than allowed.
    TooLarge,
    /// The URL cannot be used.
    BadUrl,
}

impl IoKind {
    /// The kind's name, as the log and modules spell it.
    pub fn as_str(self) -> &'static str {
        match self {
            IoKind::UnknownDatabase => "UnknownDatabase",
            IoKind::BadStatement => "BadStatement",
            IoKind::Constraint => "Constraint",
            IoKind::Timeout => "Timeout",
            IoKind::Unreachable => "Unreachable",
            IoKind::TooLarge => "TooLarge",
            IoKind::BadUrl => "BadUrl",
        }
    }
}

/// A failed call: its kind and a detail for the log (never a password).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IoFailure {
    /// What went wrong, for the caller to act on.
    pub kind: IoKind,
    /// What the driver or the host said, for the log.
    pub detail: String,
}

impl IoFailure {
    /// A failure of `kind` with `detail`.
    pub fn new(kind: IoKind, detail: impl Into<String>) -> IoFailure {
        IoFailure {
            kind,
            detail: detail.into(),
        }
    }
}

impl fmt::Display for IoFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.kind.as_str(), self.detail)
    }
}

impl std::error::Error for IoFailure {}

/// Which SQL a database speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dialect {
    /// MySQL or MariaDB.
    Mysql,
    /// PostgreSQL.
    Postgres,
    /// SQLite.
    Sqlite,
}

impl Dialect {
    /// `mysql`, `postgres` or `sqlite`, as modules see it.
    pub fn as_str(self) -> &'static str {
        match self {
            Dialect::Mysql => "mysql",
            Dialect::Postgres => "postgres",
            Dialect::Sqlite => "sqlite",
        }
    }
}

/// What a module may know about a database.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DbInfo {
    /// Its SQL dialect.
    pub dialect: Dialect,
    /// Its configured table prefix (applied by nobody but the module).
    pub prefix: String,
}

impl DbInfo {
    /// As a module receives it.
    pub fn to_json(&self) -> Value {
        json!({"dialect": self.dialect.as_str(), "prefix": self.prefix})
    }
}

/// The outcome of a statement that is not a query.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Executed {
    /// Rows inserted, updated or deleted.
    pub rows_affected: u64,
    /// The id the statement generated: MySQL's `LAST_INSERT_ID()` when not 0, SQLite's rowid
    /// after an `INSERT`/`REPLACE` that inserted; always `None` on PostgreSQL (use `RETURNING`).
    pub last_insert_id: Option<i64>,
}

impl Executed {
    /// As a module receives it.
    pub fn to_json(&self) -> Value {
        json!({"rows_affected": self.rows_affected, "last_insert_id": self.last_insert_id})
    }
}

/// A request body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Body {
    /// Text, sent as UTF-8.
    Text(String),
    /// Bytes, given as base64.
    Base64(String),
    /// No body.
    None,
}

/// An HTTP request a module asked for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpCall {
    /// The method, e.g. `GET`.
    pub method: String,
    /// The URL.
    pub url: String,
    /// Header pairs, in order.
    pub headers: Vec<(String, String)>,
    /// The body.
    pub body: Body,
    /// The deadline of the whole call.
    pub timeout_ms: u64,
}

impl HttpCall {
    /// Reads the JSON a module sent (`method`, `url`, `headers`, `body` or `body_base64`,
    /// `timeout_ms`); the reason when it cannot be used.
    pub fn from_json(value: &Value) -> Result<HttpCall, String> {
        let text = |name: &str| -> Result<String, String> {
            value
                .get(name)
                .and_then(Value::as_str)
                .map(str::to_string)
                .ok_or_else(|| format!("{name} must be a string"))
        };
        let mut headers = Vec::new();
        match value.get("headers") {
            None | Some(Value::Null) => {}
            Some(Value::Array(pairs)) => {
                for pair in pairs {
                    match pair.as_array().map(Vec::as_slice) {
                        Some([Value::String(name), Value::String(v)]) => {
                            headers.push((name.clone(), v.clone()))
                        }
                        _ => return Err("headers must be [name, value] string pairs".into()),
                    }
                }
            }
            Some(_) => return Err("headers must be a list of [name, value] pairs".into()),
        }
        let body = match (value.get("body"), value.get("body_base64")) {
            (Some(Value::String(_)), Some(Value::String(_))) => {
                return Err("body and body_base64 are exclusive".into())
            }
            (Some(Value::String(text)), _) => Body::Text(text.clone()),
            (_, Some(Value::String(encoded))) => Body::Base64(encoded.clone()),
            (None | Some(Value::Null), None | Some(Value::Null)) => Body::None,
            _ => return Err("body and body_base64 must be strings".into()),
        };
        let timeout_ms = value
            .get("timeout_ms")
            .and_then(Value::as_u64)
            .filter(|ms| *ms > 0)
            .ok_or("timeout_ms must be a positive integer")?;
        Ok(HttpCall {
            method: text("method")?,
            url: text("url")?,
            headers,
            body,
            timeout_ms,
        })
    }
}

/// An answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpReply {
    /// The status code.
    pub status: u16,
    /// Headers in the order received (values that are not UTF-8 are given lossily).
    pub headers: Vec<(String, String)>,
    /// The body when it is UTF-8 text, else empty.
    pub body: String,
    /// The body as base64 when it is not UTF-8 text.
    pub body_base64: Option<String>,
}

impl HttpReply {
    /// As a module receives it.
    pub fn to_json(&self) -> Value {
        json!({
            "status": self.status,
            "headers": self.headers.iter().map(|(n, v)| json!([n, v])).collect::<Vec<_>>(),
            "body": self.body,
            "body_base64": self.body_base64,
        })
    }
}

/// Rows as a module receives them.
pub type Rows = Vec<Map<String, Value>>;

/// Answers a module's SQL and HTTP calls: the host's pools, or the kit's.
pub trait ModuleIo: Send + Sync {
    /// Dialect and prefix of a configured database.
    fn database_info(&self, db: &str) -> Result<DbInfo, IoFailure>;
    /// A statement that returns rows.
    fn query(
        &self,
        db: String,
        sql: String,
        params: Vec<Value>,
    ) -> BoxFuture<Result<Rows, IoFailure>>;
    /// A statement run for its effect.
    fn execute(
        &self,
        db: String,
        sql: String,
        params: Vec<Value>,
    ) -> BoxFuture<Result<Executed, IoFailure>>;
    /// Statements in one transaction, all or nothing.
    fn transaction(
        &self,
        db: String,
        statements: Vec<(String, Vec<Value>)>,
    ) -> BoxFuture<Result<Vec<Executed>, IoFailure>>;
    /// One HTTP request.
    fn http(&self, call: HttpCall) -> BoxFuture<Result<HttpReply, IoFailure>>;
}

/// No databases and no HTTP: every call fails (`UnknownDatabase`, `Unreachable`).
pub struct NoIo;

impl ModuleIo for NoIo {
    fn database_info(&self, db: &str) -> Result<DbInfo, IoFailure> {
        Err(unknown(db))
    }

    fn query(&self, db: String, _: String, _: Vec<Value>) -> BoxFuture<Result<Rows, IoFailure>> {
        Box::pin(std::future::ready(Err(unknown(&db))))
    }

    fn execute(
        &self,
        db: String,
        _: String,
        _: Vec<Value>,
    ) -> BoxFuture<Result<Executed, IoFailure>> {
        Box::pin(std::future::ready(Err(unknown(&db))))
    }

    fn transaction(
        &self,
        db: String,
        _: Vec<(String, Vec<Value>)>,
    ) -> BoxFuture<Result<Vec<Executed>, IoFailure>> {
        Box::pin(std::future::ready(Err(unknown(&db))))
    }

    fn http(&self, _: HttpCall) -> BoxFuture<Result<HttpReply, IoFailure>> {
        Box::pin(std::future::ready(Err(IoFailure::new(
            IoKind::Unreachable,
            "no HTTP client",
        ))))
    }
}

/// `UnknownDatabase` naming `db`.
pub fn unknown(db: &str) -> IoFailure {
    IoFailure::new(
        IoKind::UnknownDatabase,
        format!("no database {db:?} is configured ([databases.{db}])"),
    )
}
