//! What went wrong with a database call, as a kind a module can act on.
//!
//! Why kinds: a module decides what to tell its client by the kind (docs/DATABASES.md:
//! `Unreachable` and `Timeout` are "try later", `Constraint` is "you sent a duplicate", the rest
//! are bugs), so kinds come from SQLSTATEs and driver error numbers, never from message text. The
//! detail is for the log only; it never holds a password.

use sqlx::error::ErrorKind;
use sqlx::mysql::MySqlDatabaseError;

use super::{Dialect, IoKind};

/// The kind of a driver error from a database of `dialect`. `PoolTimedOut` is decided by the
/// caller, which knows whether the pool was full (a wait: `Timeout`) or could not connect.
pub fn kind_of(error: &sqlx::Error, dialect: Dialect) -> IoKind {
    match error {
        sqlx::Error::Database(db) => match db.kind() {
            ErrorKind::UniqueViolation
            | ErrorKind::ForeignKeyViolation
            | ErrorKind::NotNullViolation
            | ErrorKind::CheckViolation => IoKind::Constraint,
            _ => match dialect {
                Dialect::Postgres => postgres_kind(db.code().as_deref().unwrap_or("")),
                Dialect::Mysql => db
                    .try_downcast_ref::<MySqlDatabaseError>()
                    .map_or(IoKind::BadStatement, |e| mysql_kind(e.number())),
                Dialect::Sqlite => {
                    let code = db.code().and_then(|c| c.parse::<i32>().ok()).unwrap_or(1);
                    sqlite_kind(code)
                }
            },
        },
        sqlx::Error::Io(_)
        | sqlx::Error::Tls(_)
        | sqlx::Error::Protocol(_)
        | sqlx::Error::PoolClosed
        | sqlx::Error::WorkerCrashed => IoKind::Unreachable,
        sqlx::Error::PoolTimedOut => IoKind::Timeout,
        sqlx::Error::Configuration(_) => IoKind::BadUrl,
        _ => IoKind::BadStatement,
    }
}

/// PostgreSQL SQLSTATEs (https://www.postgresql.org/docs/current/errcodes-appendix.html).
fn postgres_kind(sqlstate: &str) -> IoKind {
    match sqlstate {
        // Integrity constraint violation (the named ones are caught above; exclusion, restrict).
        s if s.starts_with("23") => IoKind::Constraint,
        // query_canceled (statement_timeout), lock_not_available, serialization and deadlock.
        "57014" | "55P03" | "40001" | "40P01" => IoKind::Timeout,
        // Connection exceptions, shutdowns, cannot-connect-now, too many connections,
        // insufficient resources, invalid authorization, unknown database.
        s if s.starts_with("08")
            || s.starts_with("57P")
            || s.starts_with("53")
            || s.starts_with("28")
            || s == "3D000" =>
        {
            IoKind::Unreachable
        }
        "54000" | "54001" => IoKind::TooLarge,
        _ => IoKind::BadStatement,
    }
}

/// MySQL / MariaDB error numbers
/// (https://mariadb.com/kb/en/mariadb-error-code-reference/).
fn mysql_kind(number: u16) -> IoKind {
    match number {
        // Duplicate key, foreign keys, NULL into NOT NULL, no default, check constraint.
        1022 | 1062 | 1169 | 1216 | 1217 | 1451 | 1452 | 1048 | 1364 | 1557 | 1586 | 3819
        | 4025 => IoKind::Constraint,
        // Lock wait timeout, deadlock, max_statement_time / max_execution_time exceeded.
        1205 | 1213 | 1969 | 3024 => IoKind::Timeout,
        // Too many connections, server shutdown, connection killed, access denied, unknown database,
        // server gone / lost.
        1040
        | 1053
        | 1077
        | 1080
        | 1152
        | 1158..=1161
        | 1927
        | 1045
        | 1044
        | 1049
        | 2006
        | 2013 => IoKind::Unreachable,
        // Packet too large, row too large.
        1153 | 1118 | 1301 => IoKind::TooLarge,
        _ => IoKind::BadStatement,
    }
}

/// SQLite (extended) result codes (https://www.sqlite.org/rescode.html).
fn sqlite_kind(code: i32) -> IoKind {
    match code & 0xff {
        // SQLITE_CONSTRAINT and its extended codes.
        19 => IoKind::Constraint,
        // SQLITE_BUSY, SQLITE_LOCKED: the busy timeout ran out.
        5 | 6 => IoKind::Timeout,
        // SQLITE_READONLY, SQLITE_IOERR, SQLITE_CORRUPT, SQLITE_FULL, SQLITE_CANTOPEN,
        // SQLITE_NOTADB: the file cannot be used.
        8 | 10 | 11 | 13 | 14 | 26 => IoKind::Unreachable,
        // SQLITE_TOOBIG.
        18 => IoKind::TooLarge,
        _ => IoKind::BadStatement,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_map_to_kinds() {
        assert_eq!(postgres_kind("23505"), IoKind::Constraint);
        assert_eq!(postgres_kind("42P01"), IoKind::BadStatement);
        assert_eq!(postgres_kind("42601"), IoKind::BadStatement);
        assert_eq!(postgres_kind("57014"), IoKind::Timeout);
        assert_eq!(postgres_kind("57P01"), IoKind::Unreachable);
        assert_eq!(postgres_kind("08006"), IoKind::Unreachable);
        assert_eq!(mysql_kind(1062), IoKind::Constraint);
        assert_eq!(mysql_kind(1146), IoKind::BadStatement);
        assert_eq!(mysql_kind(1064), IoKind::BadStatement);
        assert_eq!(mysql_kind(1969), IoKind::Timeout);
        assert_eq!(mysql_kind(2013), IoKind::Unreachable);
        assert_eq!(sqlite_kind(2067), IoKind::Constraint);
        assert_eq!(sqlite_kind(1), IoKind::BadStatement);
        assert_eq!(sqlite_kind(5), IoKind::Timeout);
        assert_eq!(sqlite_kind(14), IoKind::Unreachable);
    }
}
