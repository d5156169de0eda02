//! The two tables and every statement, in each dialect the host speaks.
//!
//! `<prefix>vote_poll`: one row per poll. `open` is 1 until the poll is closed;
//! `open_code` holds the room code while it is open and NULL after, and is UNIQUE:
//! that is "one open poll per room" (NULLs never collide, in SQLite, MySQL/MariaDB
//! and PostgreSQL alike, so closed polls do not count). `tallied_ms` and
//! `tallied_total` say when the last tally went out and what total it carried.
//!
//! `<prefix>vote_ballot`: one row per vote, primary key `(poll, uid)`: that is "one
//! vote per uid per poll".
//!
//! The prefix is `[databases.<name>] prefix`, as MSwoole applied its table prefix.
//! Placeholders are `?` in every dialect (the host rewrites them for PostgreSQL);
//! PostgreSQL infers a parameter's type from where it stands, so the few that stand
//! where it cannot (a `SELECT` list) are cast there.

use std::sync::{
    atomic::{AtomicBool, Ordering},
    Arc,
};

use mswoole_plugin_api::{
    serde_json::{json, Value},
    Dialect, Host, IoError, IoErrorKind, Row,
};

use crate::poll::{Counts, Poll};

/// The columns every poll query selects, in [`Poll::from_row`]'s terms.
pub const POLL_COLUMNS: &str =
    "id, code, title, options, closes_at, open, tallied_ms, tallied_total";

/// The polls' tables in one database.
#[derive(Clone)]
pub struct Store {
    /// Runs the statements.
    host: Host,
    /// `[databases.<name>]`.
    db: String,
    /// Which SQL it speaks.
    dialect: Dialect,
    /// The poll table's name, prefix included.
    polls: String,
    /// The vote table's name, prefix included.
    ballots: String,
    /// The tables exist (checked once per loaded version, then trusted).
    ready: Arc<AtomicBool>,
}

/// A statement's rows or the error that says why not.
type Rows = Result<Vec<Row>, IoError>;

/// A row that does not read as a poll: the tables are not what this module made.
fn unreadable(detail: String) -> IoError {
    IoError::new(IoErrorKind::BadStatement, detail)
}

impl Store {
    /// The tables in database `db`; an unknown database, or a prefix that is not a
    /// plain identifier, is refused (the module then does not load).
    pub fn new(host: Host, db: &str) -> Result<Store, String> {
        let info = host
            .database_info(db)
            .map_err(|e| format!("modules.Vote.database = {db:?}: {e}"))?;
        if !info
            .prefix
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_')
        {
            return Err(format!(
                "databases.{db}.prefix = {:?}: the Vote module needs letters, digits and _ only",
                info.prefix
            ));
        }
        Ok(Store {
            host,
            db: db.to_string(),
            dialect: info.dialect,
            polls: format!("{}vote_poll", info.prefix),
            ballots: format!("{}vote_ballot", info.prefix),
            ready: Arc::default(),
        })
    }

    /// The poll table's name.
    pub fn polls_table(&self) -> &str {
        &self.polls
    }

    /// The vote table's name.
    pub fn ballots_table(&self) -> &str {
        &self.ballots
    }

    async fn query(&self, sql: &str, params: &[Value]) -> Rows {
        self.host.query(&self.db, sql, params).await
    }

    async fn execute(&self, sql: &str, params: &[Value]) -> Result<u64, IoError> {
        let done = self.host.execute(&self.db, sql, params).await?;
        Ok(done.rows_affected)
    }

    /// Creates the tables when missing (once per loaded version).
    pub async fn ensure_tables(&self) -> Result<(), IoError> {
        if self.ready.load(Ordering::Acquire) {
            return Ok(());
        }
        for sql in self.create_statements() {
            // Two PostgreSQL sessions creating one table at once can collide in its
            // catalogue (a unique violation on the type's name) although each said IF
            // NOT EXISTS: the other host made it, so once more finds it there.
            match self.execute(&sql, &[]).await {
                Err(e) if e.kind() == Some(IoErrorKind::Constraint) => {
                    self.execute(&sql, &[]).await?;
                }
                other => {
                    other?;
                }
            }
        }
        self.ready.store(true, Ordering::Release);
        Ok(())
    }

    fn create_statements(&self) -> Vec<String> {
        let (p, b) = (&self.polls, &self.ballots);
        match self.dialect {
            Dialect::Sqlite => vec![
                format!(
                    "CREATE TABLE IF NOT EXISTS {p} (\
                     id INTEGER PRIMARY KEY AUTOINCREMENT, \
                     code TEXT NOT NULL, \
                     title TEXT NOT NULL, \
                     options TEXT NOT NULL, \
                     closes_at INTEGER NOT NULL, \
                     open INTEGER NOT NULL, \
                     open_code TEXT UNIQUE, \
                     tallied_ms INTEGER NOT NULL DEFAULT 0, \
                     tallied_total INTEGER NOT NULL DEFAULT 0, \
                     create_time INTEGER NOT NULL)"
                ),
                format!("CREATE INDEX IF NOT EXISTS {p}_open ON {p} (open)"),
                format!(
                    "CREATE TABLE IF NOT EXISTS {b} (\
                     poll INTEGER NOT NULL, \
                     uid TEXT NOT NULL, \
                     choice INTEGER NOT NULL, \
                     create_time INTEGER NOT NULL, \
                     PRIMARY KEY (poll, uid))"
                ),
            ],
            // Room codes and uids compare byte for byte (`utf8mb4_bin`): MySQL's
            // default collation would make rooms `Demo` and `demo` one room, and users
            // `a` and `A` one voter. 191 characters keep a unique key within InnoDB's
            // limit in utf8mb4.
            Dialect::Mysql => vec![
                format!(
                    "CREATE TABLE IF NOT EXISTS {p} (\
                     id BIGINT NOT NULL AUTO_INCREMENT, \
                     code VARCHAR(191) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NOT NULL, \
                     title TEXT NOT NULL, \
                     options TEXT NOT NULL, \
                     closes_at BIGINT NOT NULL, \
                     open SMALLINT NOT NULL, \
                     open_code VARCHAR(191) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NULL, \
                     tallied_ms BIGINT NOT NULL DEFAULT 0, \
                     tallied_total BIGINT NOT NULL DEFAULT 0, \
                     create_time BIGINT NOT NULL, \
                     PRIMARY KEY (id), \
                     UNIQUE KEY {p}_open_code (open_code), \
                     KEY {p}_open (open)\
                     ) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4"
                ),
                format!(
                    "CREATE TABLE IF NOT EXISTS {b} (\
                     poll BIGINT NOT NULL, \
                     uid VARCHAR(191) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NOT NULL, \
                     choice INT NOT NULL, \
                     create_time BIGINT NOT NULL, \
                     PRIMARY KEY (poll, uid)\
                     ) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4"
                ),
            ],
            Dialect::Postgres => vec![
                format!(
                    "CREATE TABLE IF NOT EXISTS {p} (\
                     id BIGSERIAL PRIMARY KEY, \
                     code TEXT NOT NULL, \
                     title TEXT NOT NULL, \
                     options TEXT NOT NULL, \
                     closes_at BIGINT NOT NULL, \
                     open SMALLINT NOT NULL, \
                     open_code TEXT UNIQUE, \
                     tallied_ms BIGINT NOT NULL DEFAULT 0, \
                     tallied_total BIGINT NOT NULL DEFAULT 0, \
                     create_time BIGINT NOT NULL)"
                ),
                format!("CREATE INDEX IF NOT EXISTS {p}_open ON {p} (open)"),
                format!(
                    "CREATE TABLE IF NOT EXISTS {b} (\
                     poll BIGINT NOT NULL, \
                     uid TEXT NOT NULL, \
                     choice INTEGER NOT NULL, \
                     create_time BIGINT NOT NULL, \
                     PRIMARY KEY (poll, uid))"
                ),
            ],
        }
    }

    /// Inserts an open poll and returns its id. A poll already open in the room is
    /// an `IoErrorKind::Constraint` error (the unique `open_code`).
    pub async fn insert_poll(
        &self,
        code: &str,
        title: &str,
        options: &[String],
        closes_at: i64,
        now_ms: i64,
    ) -> Result<i64, IoError> {
        let options = Value::Array(options.iter().map(|o| json!(o)).collect()).to_string();
        let params = [
            json!(code),
            json!(title),
            json!(options),
            json!(closes_at),
            json!(code),
            json!(now_ms / 1000),
        ];
        let insert = format!(
            "INSERT INTO {} (code, title, options, closes_at, open, open_code, \
             tallied_ms, tallied_total, create_time) VALUES (?, ?, ?, ?, 1, ?, 0, 0, ?)",
            self.polls
        );
        let id = match self.dialect {
            // PostgreSQL reports no insert id: the row says it.
            Dialect::Postgres => {
                let rows = self
                    .query(&format!("{insert} RETURNING id"), &params)
                    .await?;
                rows.first()
                    .and_then(|row| row.get("id"))
                    .and_then(Value::as_i64)
            }
            Dialect::Mysql | Dialect::Sqlite => {
                self.host
                    .execute(&self.db, &insert, &params)
                    .await?
                    .last_insert_id
            }
        };
        id.ok_or_else(|| unreadable("the new poll's id was not reported".into()))
    }

    fn polls_from(rows: &[Row]) -> Result<Vec<Poll>, IoError> {
        rows.iter()
            .map(|row| Poll::from_row(row).map_err(unreadable))
            .collect()
    }

    /// The poll open in room `code` (possibly past its time, not swept yet).
    pub async fn open_poll(&self, code: &str) -> Result<Option<Poll>, IoError> {
        let sql = format!(
            "SELECT {POLL_COLUMNS} FROM {} WHERE open_code = ?",
            self.polls
        );
        let rows = self.query(&sql, &[json!(code)]).await?;
        Ok(Self::polls_from(&rows)?.into_iter().next())
    }

    /// Poll `id`, open or closed; with `code`, only if it belongs to that room.
    pub async fn poll(&self, id: i64, code: Option<&str>) -> Result<Option<Poll>, IoError> {
        let rows = match code {
            Some(code) => {
                let sql = format!(
                    "SELECT {POLL_COLUMNS} FROM {} WHERE id = ? AND code = ?",
                    self.polls
                );
                self.query(&sql, &[json!(id), json!(code)]).await?
            }
            None => {
                let sql = format!("SELECT {POLL_COLUMNS} FROM {} WHERE id = ?", self.polls);
                self.query(&sql, &[json!(id)]).await?
            }
        };
        Ok(Self::polls_from(&rows)?.into_iter().next())
    }

    /// Every open poll of the database, every room.
    pub async fn open_polls(&self) -> Result<Vec<Poll>, IoError> {
        let sql = format!(
            "SELECT {POLL_COLUMNS} FROM {} WHERE open = 1 ORDER BY id",
            self.polls
        );
        Self::polls_from(&self.query(&sql, &[]).await?)
    }

    /// Records `uid`'s vote for `choice` in poll `poll`, if the poll is still open and
    /// before its time at `now_ms`: `Ok(false)` when it is not. A second vote of the
    /// uid is an `IoErrorKind::Constraint` error (the primary key).
    ///
    /// The insert reads the poll row with a shared lock (none needed in SQLite, where
    /// writers take turns), so a close that claims the poll waits for votes being
    /// inserted, and a vote after the claim finds the poll closed: the counts the
    /// closer reads after its claim are final.
    pub async fn cast(
        &self,
        poll: i64,
        uid: &str,
        choice: i64,
        now_ms: i64,
    ) -> Result<bool, IoError> {
        let (values, lock) = match self.dialect {
            Dialect::Postgres => (
                "CAST(? AS TEXT), CAST(? AS INTEGER), CAST(? AS BIGINT)",
                " FOR SHARE",
            ),
            Dialect::Mysql => ("?, ?, ?", " LOCK IN SHARE MODE"),
            Dialect::Sqlite => ("?, ?, ?", ""),
        };
        let sql = format!(
            "INSERT INTO {b} (poll, uid, choice, create_time) SELECT id, {values} FROM {p} \
             WHERE id = ? AND open = 1 AND closes_at > ?{lock}",
            b = self.ballots,
            p = self.polls,
        );
        let params = [
            json!(uid),
            json!(choice),
            json!(now_ms / 1000),
            json!(poll),
            json!(now_ms / 1000),
        ];
        Ok(self.execute(&sql, &params).await? == 1)
    }

    /// Claims the close of poll `poll`: `true` for the one caller (of every host) whose
    /// update closed it; that caller, and only it, announces the result.
    pub async fn claim_close(&self, poll: i64) -> Result<bool, IoError> {
        let sql = format!(
            "UPDATE {} SET open = 0, open_code = NULL WHERE id = ? AND open = 1",
            self.polls
        );
        Ok(self.execute(&sql, &[json!(poll)]).await? == 1)
    }

    /// Claims the tally of `poll` at `now_ms` carrying `total`: `true` for the one
    /// caller whose update found the poll open and the last tally at least a second
    /// old (`last_ms`, as that caller read it), so tallies are never less than a
    /// second apart across every host on the database.
    pub async fn claim_tally(
        &self,
        poll: i64,
        last_ms: i64,
        total: i64,
        now_ms: i64,
    ) -> Result<bool, IoError> {
        let sql = format!(
            "UPDATE {} SET tallied_ms = ?, tallied_total = ? \
             WHERE id = ? AND open = 1 AND tallied_ms = ? AND tallied_ms <= ?",
            self.polls
        );
        let params = [
            json!(now_ms),
            json!(total),
            json!(poll),
            json!(last_ms),
            json!(now_ms - 1000),
        ];
        Ok(self.execute(&sql, &params).await? == 1)
    }

    /// The votes of `poll`, per option.
    pub async fn counts(&self, poll: &Poll) -> Result<Counts, IoError> {
        let sql = format!(
            "SELECT choice, COUNT(*) AS votes FROM {} WHERE poll = ? GROUP BY choice",
            self.ballots
        );
        let rows = self.query(&sql, &[json!(poll.id)]).await?;
        let votes = rows
            .iter()
            .map(|row| {
                let choice = row.get("choice").and_then(Value::as_i64);
                let votes = row.get("votes").and_then(Value::as_i64);
                choice
                    .zip(votes)
                    .ok_or_else(|| unreadable(format!("a vote count is not two integers: {row:?}")))
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok(poll.counts(votes))
    }
}
