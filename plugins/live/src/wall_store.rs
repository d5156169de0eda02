//! Where a room's wall messages live: the registry (the default), or MSwoole's SQL table.
//!
//! MSwoole keeps the big screen's messages in the table `live_wall_message`; operators who
//! read that table from their back office set `[modules.Live] database = "<name>"` and get
//! the same rows (docs/PROTOCOL.md, "Live in SQL"). Columns as MSwoole has them: `id`
//! (auto-increment), `code`, `nickname`, `say`, `user_id` (text: token ids may be strings),
//! `status` (1 shown, 0 recalled), `create_time`, `update_time` (unix seconds). The table is
//! created when missing; a database that is down at start stops nothing: creation is tried
//! again before the next statement. The moderation queue stays in the registry either way.

use std::sync::{
    atomic::{AtomicBool, Ordering},
    Arc, OnceLock,
};

use mswoole_plugin_api::{
    serde_json::{json, Value},
    Dialect, Host, IoError, LogLevel, ModuleError,
};

use crate::params::Page;

/// MSwoole's table name.
pub const DEFAULT_TABLE: &str = "live_wall_message";

/// A wall message store in SQL.
#[derive(Clone)]
pub struct SqlWall {
    /// `[databases.<name>]` the table is in.
    db: String,
    /// The table (`[modules.Live] wall_table`), `[A-Za-z0-9_]+`: it is spliced into SQL.
    table: String,
    /// Whether the table is known to exist.
    ready: Arc<AtomicBool>,
    /// The database's dialect, asked of the host once: `database_info` is a JSON round
    /// trip across the ABI, and a `[databases.<name>]` does not change while the host runs.
    dialect: Arc<OnceLock<Dialect>>,
}

/// A message as clients see it, from a row.
fn message(row: &Value) -> Value {
    json!({
        "id": row["id"],
        "code": row["code"],
        "nickname": row["nickname"],
        "say": row["say"],
        "user_id": user_id(&row["user_id"]),
        "ctime": row["create_time"],
    })
}

/// The token id as issued, from its text column: a canonical integer was a number.
fn user_id(stored: &Value) -> Value {
    match stored {
        Value::String(text) => match text.parse::<i64>() {
            Ok(n) if n.to_string() == *text => Value::from(n),
            _ => stored.clone(),
        },
        other => other.clone(),
    }
}

/// A token id as the text column holds it.
fn user_id_text(id: &Value) -> String {
    match id {
        Value::String(text) => text.clone(),
        Value::Null => String::new(),
        other => other.to_string(),
    }
}

impl SqlWall {
    /// The table `table` in database `db`; the name is checked, since SQL cannot bind it.
    pub fn new(db: &str, table: &str) -> Result<SqlWall, String> {
        if table.is_empty() || !table.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
            return Err(format!(
                "modules.Live.wall_table must be letters, digits and _, not {table:?}"
            ));
        }
        if db.is_empty() {
            return Err("modules.Live.database must name a [databases.<name>] section".into());
        }
        Ok(SqlWall {
            db: db.into(),
            table: table.into(),
            ready: Arc::default(),
            dialect: Arc::default(),
        })
    }

    /// The database's dialect, from the host the first time (an error is not kept: the
    /// next call asks again).
    fn dialect(&self, host: &Host) -> Result<Dialect, IoError> {
        if let Some(dialect) = self.dialect.get() {
            return Ok(*dialect);
        }
        let dialect = host.database_info(&self.db)?.dialect;
        Ok(*self.dialect.get_or_init(|| dialect))
    }

    /// Creates the table (and its index) when missing, once per module version.
    pub async fn ensure_table(&self, host: &Host) -> Result<(), IoError> {
        if self.ready.load(Ordering::Acquire) {
            return Ok(());
        }
        let t = &self.table;
        let statements: Vec<String> = match self.dialect(host)? {
            Dialect::Mysql => vec![format!(
                "CREATE TABLE IF NOT EXISTS `{t}` (\
                 `id` INT UNSIGNED NOT NULL AUTO_INCREMENT PRIMARY KEY, \
                 `code` VARCHAR(64) NOT NULL, `nickname` VARCHAR(255) NOT NULL DEFAULT '', \
                 `say` TEXT NOT NULL, `user_id` VARCHAR(64) NOT NULL DEFAULT '', \
                 `status` TINYINT NOT NULL DEFAULT 1, `create_time` INT UNSIGNED NOT NULL, \
                 `update_time` INT UNSIGNED NOT NULL, KEY `code_status` (`code`, `status`, `id`)\
                 ) DEFAULT CHARSET=utf8mb4"
            )],
            Dialect::Postgres => vec![
                format!(
                    "CREATE TABLE IF NOT EXISTS \"{t}\" (id BIGSERIAL PRIMARY KEY, \
                     code VARCHAR(64) NOT NULL, nickname VARCHAR(255) NOT NULL DEFAULT '', \
                     say TEXT NOT NULL, user_id VARCHAR(64) NOT NULL DEFAULT '', \
                     status SMALLINT NOT NULL DEFAULT 1, create_time BIGINT NOT NULL, \
                     update_time BIGINT NOT NULL)"
                ),
                format!(
                    "CREATE INDEX IF NOT EXISTS \"{t}_code_status\" ON \"{t}\" (code, status, id)"
                ),
            ],
            Dialect::Sqlite => vec![
                format!(
                    "CREATE TABLE IF NOT EXISTS \"{t}\" (id INTEGER PRIMARY KEY AUTOINCREMENT, \
                     code TEXT NOT NULL, nickname TEXT NOT NULL DEFAULT '', say TEXT NOT NULL, \
                     user_id TEXT NOT NULL DEFAULT '', status INTEGER NOT NULL DEFAULT 1, \
                     create_time INTEGER NOT NULL, update_time INTEGER NOT NULL)"
                ),
                format!(
                    "CREATE INDEX IF NOT EXISTS \"{t}_code_status\" ON \"{t}\" (code, status, id)"
                ),
            ],
        };
        for sql in &statements {
            host.execute(&self.db, sql, &[]).await?;
        }
        self.ready.store(true, Ordering::Release);
        Ok(())
    }

    /// Inserts a message of room `code`; returns it as clients see it.
    pub async fn insert(
        &self,
        host: &Host,
        code: &str,
        nickname: String,
        say: String,
        token_id: &Value,
        now: u64,
    ) -> Result<Value, IoError> {
        self.ensure_table(host).await?;
        let t = &self.table;
        let params = [
            json!(code),
            json!(nickname),
            json!(say),
            json!(user_id_text(token_id)),
            json!(now),
            json!(now),
        ];
        let columns = "(code, nickname, say, user_id, status, create_time, update_time) \
                       VALUES (?, ?, ?, ?, 1, ?, ?)";
        let id = match self.dialect(host)? {
            Dialect::Postgres => {
                let sql = format!("INSERT INTO \"{t}\" {columns} RETURNING id");
                let rows = host.query(&self.db, &sql, &params).await?;
                rows.first().and_then(|row| row.get("id")).cloned()
            }
            Dialect::Mysql => {
                let sql = format!("INSERT INTO `{t}` {columns}");
                host.execute(&self.db, &sql, &params)
                    .await?
                    .last_insert_id
                    .map(Value::from)
            }
            Dialect::Sqlite => {
                let sql = format!("INSERT INTO \"{t}\" {columns}");
                host.execute(&self.db, &sql, &params)
                    .await?
                    .last_insert_id
                    .map(Value::from)
            }
        };
        Ok(json!({
            "id": id.unwrap_or(Value::Null),
            "code": code,
            "nickname": nickname,
            "say": say,
            "user_id": token_id,
            "ctime": now,
        }))
    }

    /// The table's name quoted for the database's dialect.
    fn quoted(&self, host: &Host) -> Result<String, IoError> {
        Ok(match self.dialect(host)? {
            Dialect::Mysql => format!("`{}`", self.table),
            _ => format!("\"{}\"", self.table),
        })
    }

    /// Marks message `id` of room `code` recalled; `false` if the room has no such message.
    pub async fn recall(
        &self,
        host: &Host,
        code: &str,
        id: i64,
        now: u64,
    ) -> Result<bool, IoError> {
        self.ensure_table(host).await?;
        let t = self.quoted(host)?;
        let sql = format!("UPDATE {t} SET status = 0, update_time = ? WHERE id = ? AND code = ?");
        let done = host
            .execute(&self.db, &sql, &[json!(now), json!(id), json!(code)])
            .await?;
        if done.rows_affected > 0 {
            return Ok(true);
        }
        // MySQL counts changed rows only: a message recalled before is still there.
        let sql = format!("SELECT id FROM {t} WHERE id = ? AND code = ?");
        let rows = host
            .query(&self.db, &sql, &[json!(id), json!(code)])
            .await?;
        Ok(!rows.is_empty())
    }

    /// One page of room `code`'s shown messages, newest first.
    pub async fn page(&self, host: &Host, code: &str, page: Page) -> Result<Vec<Value>, IoError> {
        self.ensure_table(host).await?;
        let t = self.quoted(host)?;
        let offset = page.number.saturating_sub(1).saturating_mul(page.count);
        let sql = format!(
            "SELECT id, code, nickname, say, user_id, create_time FROM {t} \
             WHERE code = ? AND status = 1 ORDER BY id DESC LIMIT ? OFFSET ?"
        );
        let limit = i64::try_from(page.count).unwrap_or(i64::MAX);
        let offset = i64::try_from(offset).unwrap_or(i64::MAX);
        let rows = host
            .query(&self.db, &sql, &[json!(code), json!(limit), json!(offset)])
            .await?;
        Ok(rows
            .into_iter()
            .map(|row| message(&Value::Object(row)))
            .collect())
    }
}

/// What a failed insert answers: "try later" stays 503 `unavailable`; anything else is
/// 501 `insertDbError`, as MSwoole answers. The detail goes to the log.
pub fn insert_error(host: &Host, table: &str, error: IoError) -> ModuleError {
    if error.is_unavailable() {
        return error.into();
    }
    host.log(
        LogLevel::Error,
        &format!("{table}: cannot store a wall message: {error}"),
    );
    ModuleError::refused(501, "insertDbError", "消息保存失败")
}

impl SqlWall {
    /// The table's name, for the log.
    pub fn table(&self) -> &str {
        &self.table
    }
}
