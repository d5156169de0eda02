//! The baseline's SQL action: the statement of a `swap.io.execute` / `swap.io.query` message
//! run through sqlx directly, with the host's pool settings, answered with the envelope the
//! swap fixture answers through the host (`{"status":200,"event":"io",...,"param":{"result":…}}`).
//!
//! This is what a hand-written server would do with the same driver: one pool (same
//! `max_connections`, same SQLite options: WAL, busy timeout, foreign keys), parameters bound as
//! they come (integers, floats, strings, null), each call under the same deadline, rows decoded by
//! their column type into JSON. What it leaves out is exactly the host's SQL path: the module
//! call across the ABI, the host's placeholder scan and parameter checks, the PostgreSQL type
//! inference and the generic row conversion (docs/DATABASES.md). On PostgreSQL the `?`
//! placeholders are numbered `$1..$n` by a plain scan (the bench's statements hold no quotes).

use std::{path::Path, str::FromStr, time::Duration};

use serde_json::{json, Map, Value};
use sqlx::{
    mysql::{MySqlConnectOptions, MySqlPool, MySqlPoolOptions, MySqlRow},
    postgres::{PgConnectOptions, PgPool, PgPoolOptions, PgRow},
    sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteRow},
    Column, ColumnIndex, Decode, Row, Type, TypeInfo,
};

/// One pool, of the database's dialect.
pub enum DirectSql {
    Mysql(MySqlPool),
    Postgres(PgPool),
    Sqlite(SqlitePool),
}

/// A parameter as the bench sends it.
enum Param {
    Null,
    Int(i64),
    Float(f64),
    Text(String),
}

fn params_of(value: Option<&Value>) -> Result<Vec<Param>, String> {
    let Some(value) = value else {
        return Ok(Vec::new());
    };
    let list = value.as_array().ok_or("params must be an array")?;
    list.iter()
        .map(|v| match v {
            Value::Null => Ok(Param::Null),
            Value::Bool(b) => Ok(Param::Int(i64::from(*b))),
            Value::Number(n) => n
                .as_i64()
                .map(Param::Int)
                .or_else(|| n.as_f64().map(Param::Float))
                .ok_or_else(|| format!("parameter {n} is not a number sqlx can bind")),
            Value::String(s) => Ok(Param::Text(s.clone())),
            other => Err(format!("parameter {other} cannot be bound")),
        })
        .collect()
}

/// Numbers `?` as `$1..$n` (PostgreSQL); the bench's statements hold no quoted `?`.
fn numbered(sql: &str) -> String {
    let mut out = String::with_capacity(sql.len() + 8);
    let mut n = 0;
    for c in sql.chars() {
        if c == '?' {
            n += 1;
            out.push('$');
            out.push_str(&n.to_string());
        } else {
            out.push(c);
        }
    }
    out
}

impl DirectSql {
    /// A lazy pool for `url` (`sqlite://REL` against the working directory, `sqlite:///ABS`,
    /// `mysql://…`, `postgres://…`) with the host's settings. Must run inside the runtime.
    pub fn open(url: &str, max_connections: u32, timeout: Duration) -> Result<DirectSql, String> {
        let acquire = timeout + Duration::from_secs(1);
        let scheme = url.split_once(':').map_or("", |(s, _)| s);
        match scheme {
            "mysql" | "mariadb" => {
                let options = MySqlConnectOptions::from_str(&url.replacen(scheme, "mysql", 1))
                    .map_err(|e| format!("--database: {e}"))?;
                Ok(DirectSql::Mysql(
                    MySqlPoolOptions::new()
                        .max_connections(max_connections)
                        .acquire_timeout(acquire)
                        .connect_lazy_with(options),
                ))
            }
            "postgres" | "postgresql" => {
                let options =
                    PgConnectOptions::from_str(url).map_err(|e| format!("--database: {e}"))?;
                Ok(DirectSql::Postgres(
                    PgPoolOptions::new()
                        .max_connections(max_connections)
                        .acquire_timeout(acquire)
                        .connect_lazy_with(options),
                ))
            }
            "sqlite" => {
                let path = url
                    .strip_prefix("sqlite://")
                    .filter(|p| !p.is_empty())
                    .ok_or("--database: write sqlite://REL or sqlite:///ABS")?;
                let path = Path::new(path);
                if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
                    std::fs::create_dir_all(parent)
                        .map_err(|e| format!("create {}: {e}", parent.display()))?;
                }
                let options = SqliteConnectOptions::new()
                    .filename(path)
                    .create_if_missing(true)
                    .journal_mode(SqliteJournalMode::Wal)
                    .busy_timeout(timeout)
                    .foreign_keys(true);
                Ok(DirectSql::Sqlite(
                    SqlitePoolOptions::new()
                        .max_connections(max_connections)
                        .acquire_timeout(acquire)
                        .connect_lazy_with(options),
                ))
            }
            _ => Err(format!(
                "--database {scheme}:…: use sqlite://, mysql:// or postgres://"
            )),
        }
    }

    /// Answers `message` (already parsed) when it is a `swap.io.execute` or `swap.io.query`:
    /// the reply envelope's text; `None` for any other method.
    pub async fn answer(&self, message: &Map<String, Value>, timeout: Duration) -> Option<String> {
        let query = match message.get("method").and_then(Value::as_str) {
            Some("swap.io.execute") => false,
            Some("swap.io.query") => true,
            _ => return None,
        };
        let sql = message.get("sql").and_then(Value::as_str).unwrap_or("");
        let outcome = match params_of(message.get("params")) {
            Ok(params) => {
                match tokio::time::timeout(timeout, self.run(sql, &params, query)).await {
                    Ok(outcome) => outcome,
                    Err(_) => Err("timeout".into()),
                }
            }
            Err(e) => Err(e),
        };
        Some(match outcome {
            Ok(result) => {
                json!({"status": 200, "event": "io", "info": "io", "param": {"result": result}})
                    .to_string()
            }
            Err(detail) => {
                json!({"status": 501, "event": "storageError", "info": detail}).to_string()
            }
        })
    }

    async fn run(&self, sql: &str, params: &[Param], query: bool) -> Result<Value, String> {
        macro_rules! bind_all {
            ($q:expr) => {{
                let mut q = $q;
                for p in params {
                    q = match p {
                        Param::Null => q.bind(None::<i64>),
                        Param::Int(i) => q.bind(*i),
                        Param::Float(f) => q.bind(*f),
                        Param::Text(s) => q.bind(s.as_str()),
                    };
                }
                q
            }};
        }
        match self {
            DirectSql::Mysql(pool) => {
                let q = bind_all!(sqlx::query(sql));
                if query {
                    let rows = q.fetch_all(pool).await.map_err(|e| e.to_string())?;
                    Ok(Value::Array(rows.iter().map(mysql_row).collect()))
                } else {
                    let done = q.execute(pool).await.map_err(|e| e.to_string())?;
                    let id = done.last_insert_id();
                    Ok(json!({"rows_affected": done.rows_affected(),
                              "last_insert_id": (id != 0).then_some(id)}))
                }
            }
            DirectSql::Postgres(pool) => {
                let sql = numbered(sql);
                let q = bind_all!(sqlx::query(&sql));
                if query {
                    let rows = q.fetch_all(pool).await.map_err(|e| e.to_string())?;
                    Ok(Value::Array(rows.iter().map(pg_row).collect()))
                } else {
                    let done = q.execute(pool).await.map_err(|e| e.to_string())?;
                    Ok(json!({"rows_affected": done.rows_affected(), "last_insert_id": null}))
                }
            }
            DirectSql::Sqlite(pool) => {
                let q = bind_all!(sqlx::query(sql));
                if query {
                    let rows = q.fetch_all(pool).await.map_err(|e| e.to_string())?;
                    Ok(Value::Array(rows.iter().map(sqlite_row).collect()))
                } else {
                    let done = q.execute(pool).await.map_err(|e| e.to_string())?;
                    Ok(json!({"rows_affected": done.rows_affected(),
                              "last_insert_id": done.last_insert_rowid()}))
                }
            }
        }
    }
}

/// Column `i` of `row` decoded as `T`, as JSON: null when it is NULL or does not decode as `T`.
fn decoded<'r, R, T>(row: &'r R, i: usize) -> Value
where
    R: Row,
    usize: ColumnIndex<R>,
    Option<T>: Decode<'r, R::Database> + Type<R::Database>,
    Value: From<T>,
{
    row.try_get::<Option<T>, _>(i)
        .ok()
        .flatten()
        .map_or(Value::Null, Value::from)
}

/// A row as a JSON object: integer columns as numbers, floats as numbers, the rest as text.
fn mysql_row(row: &MySqlRow) -> Value {
    let mut out = Map::new();
    for (i, column) in row.columns().iter().enumerate() {
        let name = column.type_info().name();
        let value = if name.contains("INT") {
            decoded::<_, i64>(row, i)
        } else if name == "DOUBLE" || name == "FLOAT" {
            decoded::<_, f64>(row, i)
        } else {
            decoded::<_, String>(row, i)
        };
        out.insert(column.name().to_string(), value);
    }
    Value::Object(out)
}

/// See [`mysql_row`].
fn pg_row(row: &PgRow) -> Value {
    let mut out = Map::new();
    for (i, column) in row.columns().iter().enumerate() {
        let value = match column.type_info().name() {
            "INT8" => decoded::<_, i64>(row, i),
            "INT4" => decoded::<_, i32>(row, i),
            "INT2" => decoded::<_, i16>(row, i),
            "FLOAT8" => decoded::<_, f64>(row, i),
            _ => decoded::<_, String>(row, i),
        };
        out.insert(column.name().to_string(), value);
    }
    Value::Object(out)
}

/// See [`mysql_row`].
fn sqlite_row(row: &SqliteRow) -> Value {
    let mut out = Map::new();
    for (i, column) in row.columns().iter().enumerate() {
        let value = match column.type_info().name() {
            "INTEGER" => decoded::<_, i64>(row, i),
            "REAL" => decoded::<_, f64>(row, i),
            _ => decoded::<_, String>(row, i),
        };
        out.insert(column.name().to_string(), value);
    }
    Value::Object(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_placeholders_for_postgres() {
        assert_eq!(
            numbered("INSERT INTO t (a, b) VALUES (?, ?)"),
            "INSERT INTO t (a, b) VALUES ($1, $2)"
        );
    }

    #[test]
    fn reads_parameters() {
        let params = params_of(Some(&json!([1, 2.5, "x", null]))).expect("params");
        assert_eq!(params.len(), 4);
        assert!(params_of(Some(&json!([[1]]))).is_err());
        assert!(params_of(None).expect("none").is_empty());
    }
}
