//! SQL for modules: every configured database's connection pool, and the calls modules make.
//!
//! Why in the host: a module is a library that can be swapped at any moment, so it must own no
//! socket and no pool (docs/DATABASES.md). The host keeps one lazy pool per
//! `[databases.<name>]`, so a database that is down at start-up stops nothing and is retried on
//! use; every call is bounded by the database's `timeout_ms`, pool wait included, and never
//! blocks the async reactor (sqlx is async; its SQLite driver runs on its own worker thread).
//!
//! How it is split: [`address`] reads URLs, [`placeholders`] finds `?` and numbers them for
//! PostgreSQL, [`params`] checks and binds JSON parameters, [`rows`] turns rows into JSON objects,
//! [`error`] turns driver errors into kinds. This file owns the pools and the deadlines.

mod address;
mod config;
mod error;
mod params;
mod placeholders;
mod rows;
#[cfg(test)]
mod tests;

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use serde_json::{Map, Value};
use sqlx::mysql::{MySqlPool, MySqlPoolOptions};
use sqlx::pool::PoolConnection;
use sqlx::postgres::{PgConnection, PgPool, PgPoolOptions};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions};
use sqlx::{Connection, Either, Executor, Statement};
use tokio::time::{timeout_at, Instant};

pub use address::redact;
pub use mswoole_core::io::{DbInfo, Dialect, Executed, IoFailure, IoKind};

pub use self::config::{DatabaseConfig, DatabasesConfig};
use address::Address;
use params::Param;

/// Checks a configured URL the way [`Databases::open`] will read it; the error names no key.
pub fn check_url(url: &str, base_dir: &Path) -> Result<(), String> {
    address::parse(url, base_dir).map(|_| ())
}

/// A pool of one dialect.
enum Pool {
    Mysql(MySqlPool),
    Postgres(PgPool),
    Sqlite(SqlitePool),
}

/// One configured database.
struct Db {
    /// Its connections.
    pool: Pool,
    /// Its dialect (follows from the pool; kept for the placeholder rules).
    dialect: Dialect,
    /// `prefix` from the config.
    prefix: String,
    /// `timeout_ms`: the budget of one call.
    timeout: Duration,
    /// `max_connections`: a pool wait that times out below it was a failure to connect.
    max_connections: u32,
    /// The URL with its password hidden, for the log.
    shown_url: String,
    /// The password, so no error detail can carry it to the log.
    password: Option<String>,
}

/// Every configured database's pool; cheap to share in an `Arc`.
pub struct Databases {
    /// By name.
    dbs: BTreeMap<String, Db>,
}

/// A `BadStatement` failure.
fn bad(detail: impl Into<String>) -> IoFailure {
    IoFailure::new(IoKind::BadStatement, detail)
}

impl Databases {
    /// Builds a lazy pool per database (no connection is made: a server that is down fails
    /// nothing here). Creates SQLite files' parent directories. The error names the key.
    /// Must run inside the tokio runtime (the pools start their maintenance tasks).
    pub fn open(config: &DatabasesConfig, base_dir: &Path) -> Result<Databases, String> {
        let mut dbs = BTreeMap::new();
        for (name, cfg) in config {
            let key = format!("databases.{name}");
            let address =
                address::parse(&cfg.url, base_dir).map_err(|e| format!("{key}.url: {e}"))?;
            if cfg.max_connections == 0 {
                return Err(format!("{key}.max_connections must be greater than 0"));
            }
            if cfg.timeout_ms == 0 {
                return Err(format!("{key}.timeout_ms must be greater than 0"));
            }
            let timeout = Duration::from_millis(cfg.timeout_ms);
            // The pool's own wait is longer than a call's deadline, so the deadline decides.
            let acquire = timeout + Duration::from_secs(1);
            let (pool, dialect) = match address {
                Address::Mysql(options) => (
                    Pool::Mysql(
                        MySqlPoolOptions::new()
                            .max_connections(cfg.max_connections)
                            .acquire_timeout(acquire)
                            .connect_lazy_with(options),
                    ),
                    Dialect::Mysql,
                ),
                Address::Postgres(options) => (
                    Pool::Postgres(
                        PgPoolOptions::new()
                            .max_connections(cfg.max_connections)
                            .acquire_timeout(acquire)
                            .connect_lazy_with(options),
                    ),
                    Dialect::Postgres,
                ),
                Address::Sqlite(path) => {
                    if let Some(parent) = path.parent() {
                        std::fs::create_dir_all(parent).map_err(|e| {
                            format!("{key}.url: cannot create {}: {e}", parent.display())
                        })?;
                    }
                    let options = SqliteConnectOptions::new()
                        .filename(&path)
                        .create_if_missing(true)
                        .journal_mode(SqliteJournalMode::Wal)
                        .busy_timeout(timeout)
                        .foreign_keys(true);
                    (
                        Pool::Sqlite(
                            SqlitePoolOptions::new()
                                .max_connections(cfg.max_connections)
                                .acquire_timeout(acquire)
                                .connect_lazy_with(options),
                        ),
                        Dialect::Sqlite,
                    )
                }
            };
            let password = url::Url::parse(&cfg.url)
                .ok()
                .and_then(|u| u.password().map(str::to_string))
                .filter(|p| !p.is_empty());
            dbs.insert(
                name.clone(),
                Db {
                    pool,
                    dialect,
                    prefix: cfg.prefix.clone(),
                    timeout,
                    max_connections: cfg.max_connections,
                    shown_url: redact(&cfg.url),
                    password,
                },
            );
        }
        Ok(Databases { dbs })
    }

    /// The configured names, sorted.
    pub fn names(&self) -> Vec<String> {
        self.dbs.keys().cloned().collect()
    }

    /// Dialect and prefix of `db`.
    pub fn info(&self, db: &str) -> Result<DbInfo, IoFailure> {
        let db = self.get(db)?;
        Ok(DbInfo {
            dialect: db.dialect,
            prefix: db.prefix.clone(),
        })
    }

    /// `db`'s URL with the password hidden, for the log.
    pub fn shown_url(&self, db: &str) -> Result<String, IoFailure> {
        Ok(self.get(db)?.shown_url.clone())
    }

    /// Opens (or reuses) one connection to `db` within its deadline: how start-up finds out
    /// whether a database is reachable without ever waiting on it.
    pub async fn probe(&self, db: &str) -> Result<(), IoFailure> {
        let db = self.get(db)?;
        let deadline = Instant::now() + db.timeout;
        match &db.pool {
            Pool::Mysql(pool) => db.acquire(pool, deadline).await.map(drop),
            Pool::Postgres(pool) => db.acquire(pool, deadline).await.map(drop),
            Pool::Sqlite(pool) => db.acquire(pool, deadline).await.map(drop),
        }
    }

    /// Runs a statement that returns rows; each row a JSON object keyed by column name.
    pub async fn query(
        &self,
        db: &str,
        sql: &str,
        params: &[Value],
    ) -> Result<Vec<Map<String, Value>>, IoFailure> {
        let db = self.get(db)?;
        let params = params::check(params).map_err(bad)?;
        let sql = placeholders::bind_text(sql, db.dialect, params.len()).map_err(bad)?;
        let deadline = Instant::now() + db.timeout;
        let sql = sql.as_ref();
        match &db.pool {
            Pool::Mysql(pool) => {
                let mut conn = db.acquire(pool, deadline).await?;
                let args = params::mysql(&params).map_err(bad)?;
                let work = async {
                    let found = sqlx::query_with(sql, args)
                        .fetch_all(&mut *conn)
                        .await
                        .map_err(|e| db.failure(&e))?;
                    found.iter().map(|r| rows::mysql(r).map_err(bad)).collect()
                };
                db.settle(timeout_at(deadline, work).await, conn)
            }
            Pool::Postgres(pool) => {
                let mut conn = db.acquire(pool, deadline).await?;
                let work = async {
                    let found = postgres_rows(&mut conn, sql, &params, db).await?;
                    found
                        .iter()
                        .map(|r| rows::postgres(r).map_err(bad))
                        .collect()
                };
                db.settle(timeout_at(deadline, work).await, conn)
            }
            Pool::Sqlite(pool) => {
                let mut conn = db.acquire(pool, deadline).await?;
                let args = params::sqlite(&params).map_err(bad)?;
                let work = async {
                    let found = sqlx::query_with(sql, args)
                        .fetch_all(&mut *conn)
                        .await
                        .map_err(|e| db.failure(&e))?;
                    found.iter().map(|r| rows::sqlite(r).map_err(bad)).collect()
                };
                db.settle(timeout_at(deadline, work).await, conn)
            }
        }
    }

    /// Runs a statement for its effect.
    pub async fn execute(
        &self,
        db: &str,
        sql: &str,
        params: &[Value],
    ) -> Result<Executed, IoFailure> {
        let statements = [(sql.to_string(), params.to_vec())];
        let mut done = self.run(db, &statements, false).await?;
        done.pop()
            .ok_or_else(|| bad("the statement produced no outcome"))
    }

    /// Runs `statements` in one transaction, all or nothing, under one `timeout_ms`; a failure
    /// rolls everything back and its detail names the statement (1-based).
    pub async fn transaction(
        &self,
        db: &str,
        statements: &[(String, Vec<Value>)],
    ) -> Result<Vec<Executed>, IoFailure> {
        self.run(db, statements, true).await
    }

    /// Executes `statements`, inside a transaction when `atomic`.
    async fn run(
        &self,
        db: &str,
        statements: &[(String, Vec<Value>)],
        atomic: bool,
    ) -> Result<Vec<Executed>, IoFailure> {
        let db = self.get(db)?;
        // Every statement is checked before anything is sent.
        let mut prepared = Vec::with_capacity(statements.len());
        for (i, (sql, values)) in statements.iter().enumerate() {
            let which = |e: String| {
                if atomic {
                    bad(format!("statement {}: {e}", i + 1))
                } else {
                    bad(e)
                }
            };
            let params = params::check(values).map_err(which)?;
            let sql = placeholders::bind_text(sql, db.dialect, params.len()).map_err(which)?;
            prepared.push((sql.into_owned(), params));
        }
        let deadline = Instant::now() + db.timeout;
        match &db.pool {
            Pool::Mysql(pool) => {
                let mut conn = db.acquire(pool, deadline).await?;
                let mut args = Vec::with_capacity(prepared.len());
                for (sql, params) in &prepared {
                    args.push((sql.as_str(), params::mysql(params).map_err(bad)?));
                }
                let work = async {
                    if atomic {
                        let mut tx = conn.begin().await.map_err(|e| db.failure(&e))?;
                        let out = mysql_steps(&mut tx, args, atomic, db).await?;
                        tx.commit().await.map_err(|e| db.failure(&e))?;
                        Ok(out)
                    } else {
                        mysql_steps(&mut conn, args, atomic, db).await
                    }
                };
                db.settle(timeout_at(deadline, work).await, conn)
            }
            Pool::Postgres(pool) => {
                let mut conn = db.acquire(pool, deadline).await?;
                let work = async {
                    let mut out = Vec::with_capacity(prepared.len());
                    if atomic {
                        let mut tx = conn.begin().await.map_err(|e| db.failure(&e))?;
                        for (i, (sql, params)) in prepared.iter().enumerate() {
                            let done =
                                postgres_execute(&mut tx, sql, params, db)
                                    .await
                                    .map_err(|e| {
                                        IoFailure::new(
                                            e.kind,
                                            format!("statement {}: {}", i + 1, e.detail),
                                        )
                                    })?;
                            out.push(done);
                        }
                        tx.commit().await.map_err(|e| db.failure(&e))?;
                    } else {
                        for (sql, params) in &prepared {
                            out.push(postgres_execute(&mut conn, sql, params, db).await?);
                        }
                    }
                    Ok(out)
                };
                db.settle(timeout_at(deadline, work).await, conn)
            }
            Pool::Sqlite(pool) => {
                let mut conn = db.acquire(pool, deadline).await?;
                let mut args = Vec::with_capacity(prepared.len());
                for (sql, params) in &prepared {
                    args.push((sql.as_str(), params::sqlite(params).map_err(bad)?));
                }
                let work = async {
                    if atomic {
                        // IMMEDIATE takes the write lock up front, waiting up to the busy
                        // timeout: a deferred transaction that reads and then writes fails at
                        // once ("database is locked") when another writer got in between.
                        let mut tx = conn
                            .begin_with("BEGIN IMMEDIATE")
                            .await
                            .map_err(|e| db.failure(&e))?;
                        let out = sqlite_steps(&mut tx, args, atomic, db).await?;
                        tx.commit().await.map_err(|e| db.failure(&e))?;
                        Ok(out)
                    } else {
                        sqlite_steps(&mut conn, args, atomic, db).await
                    }
                };
                db.settle(timeout_at(deadline, work).await, conn)
            }
        }
    }

    /// The database named `name`.
    fn get(&self, name: &str) -> Result<&Db, IoFailure> {
        self.dbs.get(name).ok_or_else(|| {
            IoFailure::new(
                IoKind::UnknownDatabase,
                format!(
                    "no database {name:?} is configured (known: {})",
                    self.names().join(", ")
                ),
            )
        })
    }
}

impl Db {
    /// A failure from a driver error, its detail cleared of the password.
    fn failure(&self, e: &sqlx::Error) -> IoFailure {
        IoFailure::new(error::kind_of(e, self.dialect), self.hide(e.to_string()))
    }

    /// [`Db::failure`] naming statement `i` of a transaction.
    fn step_failure(&self, atomic: bool, i: usize, e: &sqlx::Error) -> IoFailure {
        let mut failure = self.failure(e);
        if atomic {
            failure.detail = format!("statement {}: {}", i + 1, failure.detail);
        }
        failure
    }

    /// `text` with the password replaced by `***`.
    fn hide(&self, text: String) -> String {
        match &self.password {
            Some(p) => text.replace(p.as_str(), "***"),
            None => text,
        }
    }

    /// A connection from `pool` before `deadline`. A wait that ends while the pool has room
    /// means connecting failed (a refused connection is retried until then): `Unreachable`;
    /// with every connection busy it is a `Timeout`.
    async fn acquire<DB: sqlx::Database>(
        &self,
        pool: &sqlx::Pool<DB>,
        deadline: Instant,
    ) -> Result<PoolConnection<DB>, IoFailure> {
        match timeout_at(deadline, pool.acquire()).await {
            Ok(Ok(conn)) => Ok(conn),
            Ok(Err(sqlx::Error::PoolTimedOut)) | Err(_) if pool.size() < self.max_connections => {
                Err(IoFailure::new(
                    IoKind::Unreachable,
                    format!(
                        "cannot connect to {} within {} ms",
                        self.shown_url,
                        self.timeout.as_millis()
                    ),
                ))
            }
            Ok(Err(sqlx::Error::PoolTimedOut)) | Err(_) => Err(IoFailure::new(
                IoKind::Timeout,
                format!(
                    "no connection within {} ms: all {} in use or still connecting",
                    self.timeout.as_millis(),
                    self.max_connections
                ),
            )),
            Ok(Err(e)) => Err(self.failure(&e)),
        }
    }

    /// The outcome of work bounded by the deadline (`timeout_at`). Work cut short is a `Timeout`,
    /// and its connection is closed rather than returned to the pool: the statement may still be
    /// running on the server, and the pool must not wait for it before handing out a slot.
    fn settle<T, DB: sqlx::Database>(
        &self,
        outcome: Result<Result<T, IoFailure>, tokio::time::error::Elapsed>,
        conn: PoolConnection<DB>,
    ) -> Result<T, IoFailure> {
        outcome.unwrap_or_else(|_| {
            // Detached, the pool frees its slot at once; dropped, its socket closes.
            drop(conn.detach());
            Err(IoFailure::new(
                IoKind::Timeout,
                format!(
                    "no answer within {} ms; whether the statement took effect is unknown",
                    self.timeout.as_millis()
                ),
            ))
        })
    }
}

/// Whether the statement's first keyword (after comments) is INSERT or REPLACE.
fn starts_with_insert(sql: &str) -> bool {
    let mut rest = sql.trim_start();
    loop {
        if let Some(after) = rest.strip_prefix("--") {
            rest = after.split_once('\n').map_or("", |(_, r)| r).trim_start();
        } else if let Some(after) = rest.strip_prefix("/*") {
            rest = after.split_once("*/").map_or("", |(_, r)| r).trim_start();
        } else {
            break;
        }
    }
    let word: String = rest
        .chars()
        .take_while(|c| c.is_ascii_alphabetic())
        .collect::<String>()
        .to_ascii_uppercase();
    word == "INSERT" || word == "REPLACE"
}

/// The parameter types PostgreSQL infers for `sql`: the statement is prepared (and cached by
/// sqlx under its text) with every parameter type left unspecified (see [`params`]).
async fn postgres_types(
    conn: &mut PgConnection,
    sql: &str,
    db: &Db,
) -> Result<Vec<sqlx::postgres::PgTypeInfo>, IoFailure> {
    let statement = conn
        .prepare_with(sql, &[])
        .await
        .map_err(|e| db.failure(&e))?;
    Ok(match statement.parameters() {
        Some(Either::Left(types)) => types.to_vec(),
        _ => Vec::new(),
    })
}

/// Rows of `sql` on PostgreSQL, parameters encoded in the types the server inferred.
async fn postgres_rows(
    conn: &mut PgConnection,
    sql: &str,
    params: &[Param],
    db: &Db,
) -> Result<Vec<sqlx::postgres::PgRow>, IoFailure> {
    let types = postgres_types(conn, sql, db).await?;
    let args = params::postgres(params, &types).map_err(bad)?;
    sqlx::query_with(sql, args)
        .fetch_all(&mut *conn)
        .await
        .map_err(|e| db.failure(&e))
}

/// One statement on PostgreSQL for its effect.
async fn postgres_execute(
    conn: &mut PgConnection,
    sql: &str,
    params: &[Param],
    db: &Db,
) -> Result<Executed, IoFailure> {
    let types = postgres_types(conn, sql, db).await?;
    let args = params::postgres(params, &types).map_err(bad)?;
    let done = sqlx::query_with(sql, args)
        .execute(&mut *conn)
        .await
        .map_err(|e| db.failure(&e))?;
    Ok(Executed {
        rows_affected: done.rows_affected(),
        last_insert_id: None,
    })
}

/// MySQL statements one after the other on `conn` (a transaction's or a plain one).
async fn mysql_steps(
    conn: &mut sqlx::mysql::MySqlConnection,
    args: Vec<(&str, sqlx::mysql::MySqlArguments)>,
    atomic: bool,
    db: &Db,
) -> Result<Vec<Executed>, IoFailure> {
    let mut out = Vec::with_capacity(args.len());
    for (i, (sql, args)) in args.into_iter().enumerate() {
        let done = sqlx::query_with(sql, args)
            .execute(&mut *conn)
            .await
            .map_err(|e| db.step_failure(atomic, i, &e))?;
        out.push(Executed {
            rows_affected: done.rows_affected(),
            last_insert_id: i64::try_from(done.last_insert_id())
                .ok()
                .filter(|id| *id != 0),
        });
    }
    Ok(out)
}

/// SQLite statements one after the other on `conn` (a transaction's or a plain one).
async fn sqlite_steps(
    conn: &mut sqlx::sqlite::SqliteConnection,
    args: Vec<(&str, sqlx::sqlite::SqliteArguments<'static>)>,
    atomic: bool,
    db: &Db,
) -> Result<Vec<Executed>, IoFailure> {
    let mut out = Vec::with_capacity(args.len());
    for (i, (sql, args)) in args.into_iter().enumerate() {
        let done = sqlx::query_with(sql, args)
            .execute(&mut *conn)
            .await
            .map_err(|e| db.step_failure(atomic, i, &e))?;
        // SQLite's last rowid belongs to the connection, not the statement: only an insert's is news.
        let inserted = starts_with_insert(sql) && done.rows_affected() > 0;
        out.push(Executed {
            rows_affected: done.rows_affected(),
            last_insert_id: inserted.then(|| done.last_insert_rowid()),
        });
    }
    Ok(out)
}
