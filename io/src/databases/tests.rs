//! The database layer against the real thing: SQLite files, a private MariaDB and a private
//! PostgreSQL (tests/src/mariadb.rs, tests/src/postgres.rs), never the machine's shared servers.

use std::time::{Duration, Instant};

use serde_json::{json, Map, Value};

use super::*;
use crate::{DatabaseConfig as Database, DatabasesConfig};
use mswoole_tests::{reaper::scratch_dir, MariaDb, Postgres};

/// The three dialects every test runs against.
const ALL: [Dialect; 3] = [Dialect::Sqlite, Dialect::Mysql, Dialect::Postgres];

/// A config with one database `db` at `url`.
fn one(url: &str, timeout_ms: u64) -> DatabasesConfig {
    let mut config = DatabasesConfig::new();
    config.insert(
        "db".into(),
        Database {
            url: url.into(),
            max_connections: 4,
            timeout_ms,
            prefix: "t_".into(),
        },
    );
    config
}

/// A fresh empty database of `dialect` (a new SQLite file, or a new database on the shared
/// server), opened as `db`.
fn fresh(dialect: Dialect, hint: &str, timeout_ms: u64) -> Databases {
    let url = match dialect {
        Dialect::Sqlite => format!(
            "sqlite://{}/nested/dir/{hint}.sqlite3",
            scratch_dir("sqlite").display()
        ),
        Dialect::Mysql => MariaDb::shared().database(hint),
        Dialect::Postgres => Postgres::shared().database(hint),
    };
    Databases::open(&one(&url, timeout_ms), Path::new("/nonexistent"))
        .unwrap_or_else(|e| panic!("{dialect:?}: {e}"))
}

/// `CREATE TABLE` text for an auto-increment id column in `dialect`.
fn id_column(dialect: Dialect) -> &'static str {
    match dialect {
        Dialect::Sqlite => "id INTEGER PRIMARY KEY AUTOINCREMENT",
        Dialect::Mysql => "id BIGINT PRIMARY KEY AUTO_INCREMENT",
        Dialect::Postgres => "id BIGSERIAL PRIMARY KEY",
    }
}

async fn exec(dbs: &Databases, sql: &str, params: &[Value]) -> Executed {
    dbs.execute("db", sql, params)
        .await
        .unwrap_or_else(|e| panic!("{sql}: {e}"))
}

async fn rows(dbs: &Databases, sql: &str, params: &[Value]) -> Vec<Map<String, Value>> {
    dbs.query("db", sql, params)
        .await
        .unwrap_or_else(|e| panic!("{sql}: {e}"))
}

async fn failure(dbs: &Databases, sql: &str, params: &[Value]) -> IoFailure {
    match dbs.query("db", sql, params).await {
        Ok(r) => panic!("{sql}: expected a failure, got {r:?}"),
        Err(e) => e,
    }
}

#[tokio::test]
async fn execute_query_and_info_on_every_dialect() {
    for dialect in ALL {
        let dbs = fresh(dialect, "roundtrip", 5000);
        assert_eq!(dbs.names(), vec!["db".to_string()]);
        let info = dbs.info("db").expect("info");
        assert_eq!((info.dialect, info.prefix.as_str()), (dialect, "t_"));
        exec(
            &dbs,
            &format!(
                "CREATE TABLE people ({}, name VARCHAR(40) NOT NULL, age INTEGER, score DOUBLE PRECISION)",
                id_column(dialect)
            ),
            &[],
        )
        .await;
        let first = exec(
            &dbs,
            "INSERT INTO people (name, age, score) VALUES (?, ?, ?)",
            &[json!("ann"), json!(31), json!(1.5)],
        )
        .await;
        let second = exec(
            &dbs,
            "INSERT INTO people (name, age, score) VALUES (?, ?, ?)",
            &[json!("bob"), json!(null), json!(2)],
        )
        .await;
        assert_eq!(first.rows_affected, 1, "{dialect:?}");
        match dialect {
            Dialect::Postgres => {
                assert_eq!((first.last_insert_id, second.last_insert_id), (None, None))
            }
            _ => assert_eq!(
                (first.last_insert_id, second.last_insert_id),
                (Some(1), Some(2)),
                "{dialect:?}"
            ),
        }
        let updated = exec(
            &dbs,
            "UPDATE people SET age = ? WHERE age IS NULL",
            &[json!(40)],
        )
        .await;
        assert_eq!(
            (updated.rows_affected, updated.last_insert_id),
            (1, None),
            "{dialect:?}"
        );
        let found = rows(
            &dbs,
            "SELECT score, name, id, age FROM people WHERE age > ? ORDER BY id",
            &[json!(30)],
        )
        .await;
        let got: Vec<Value> = found.into_iter().map(Value::Object).collect();
        assert_eq!(
            serde_json::to_string(&got).expect("json"),
            r#"[{"score":1.5,"name":"ann","id":1,"age":31},{"score":2.0,"name":"bob","id":2,"age":40}]"#,
            "{dialect:?}: column order and values"
        );
        assert!(
            rows(&dbs, "SELECT * FROM people WHERE name = ?", &[json!("zed")])
                .await
                .is_empty()
        );
    }
}

#[tokio::test]
async fn placeholders_inside_quotes_and_comments_are_text() {
    for dialect in ALL {
        let dbs = fresh(dialect, "placeholders", 5000);
        let found = rows(
            &dbs,
            "SELECT '?' AS q, /* ? */ ? AS v, 'it''s ?' AS w -- ?\n",
            &[json!("x")],
        )
        .await;
        assert_eq!(
            Value::Object(found[0].clone()),
            json!({"q": "?", "v": "x", "w": "it's ?"}),
            "{dialect:?}"
        );
        let e = failure(&dbs, "SELECT ?, '?'", &[json!(1), json!(2)]).await;
        assert_eq!(e.kind, IoKind::BadStatement, "{dialect:?}");
        assert!(
            e.detail.contains("1 placeholder(s) and 2 parameter(s)"),
            "{e}"
        );
        let e = failure(&dbs, "SELECT ?", &[]).await;
        assert_eq!(e.kind, IoKind::BadStatement, "{dialect:?}");
        let e = failure(&dbs, "SELECT ?", &[json!([1, 2])]).await;
        assert_eq!(e.kind, IoKind::BadStatement, "{dialect:?}");
        assert!(e.detail.contains("array"), "{e}");
        let e = failure(&dbs, "SELECT ?", &[json!({"a": 1})]).await;
        assert_eq!(e.kind, IoKind::BadStatement, "{dialect:?}");
    }
}

#[tokio::test]
async fn postgres_infers_parameter_types() {
    let dbs = fresh(Dialect::Postgres, "infer", 5000);
    exec(
        &dbs,
        "CREATE TABLE t (id INT PRIMARY KEY, n NUMERIC(10,2), at TIMESTAMPTZ, ok BOOLEAN, j JSONB)",
        &[],
    )
    .await;
    // Strings for typed columns are converted as the server converts untyped text.
    exec(
        &dbs,
        "INSERT INTO t VALUES (?, ?, ?, ?, ?)",
        &[
            json!("7"),
            json!("12.5"),
            json!("2024-05-06 07:08:09+02:00"),
            json!("true"),
            json!("{\"a\": [1]}"),
        ],
    )
    .await;
    exec(
        &dbs,
        "INSERT INTO t VALUES (?, ?, ?, ?, ?)",
        &[json!(8), json!(3), json!(null), json!(false), json!(null)],
    )
    .await;
    let found = rows(
        &dbs,
        "SELECT id, n, at, ok, j FROM t WHERE id = ? OR id = ? + 1 ORDER BY id",
        &[json!(7), json!("7")],
    )
    .await;
    let got: Vec<Value> = found.into_iter().map(Value::Object).collect();
    assert_eq!(
        Value::Array(got),
        json!([
            {"id": 7, "n": "12.50", "at": "2024-05-06T05:08:09+00:00", "ok": true, "j": "{\"a\": [1]}"},
            {"id": 8, "n": "3.00", "at": null, "ok": false, "j": null}
        ])
    );
    // The same statement with other JSON types for the same parameter reuses the cached statement.
    assert_eq!(
        rows(&dbs, "SELECT id FROM t WHERE id = ?", &[json!("8")])
            .await
            .len(),
        1
    );
    assert_eq!(
        rows(&dbs, "SELECT id FROM t WHERE id = ?", &[json!(8)])
            .await
            .len(),
        1
    );
    let e = failure(&dbs, "SELECT id FROM t WHERE id = ?", &[json!("eight")]).await;
    assert_eq!(e.kind, IoKind::BadStatement);
    assert!(
        e.detail.contains("parameter 1") && e.detail.contains("INT4"),
        "{e}"
    );
}

/// One row of every type, read back from each dialect.
#[tokio::test]
async fn every_type_converts() {
    let want_common = |v: &Map<String, Value>, dialect: Dialect| {
        let s = |k: &str| v.get(k).cloned().unwrap_or(Value::Null);
        assert_eq!(s("i"), json!(-5), "{dialect:?}");
        assert_eq!(
            s("big"),
            json!(9_223_372_036_854_775_807_i64),
            "{dialect:?}"
        );
        assert_eq!(s("f"), json!(0.25), "{dialect:?}");
        assert_eq!(s("b"), json!(true), "{dialect:?}");
        assert_eq!(s("t"), json!("héllo 'q'"), "{dialect:?}");
        assert_eq!(s("bytes"), json!("3q2+7w=="), "{dialect:?}");
        assert_eq!(s("n"), Value::Null, "{dialect:?}");
    };

    // SQLite: storage classes, plus BOOLEAN and DATETIME declared columns.
    let dbs = fresh(Dialect::Sqlite, "types", 5000);
    exec(&dbs, "CREATE TABLE v (i INTEGER, big INTEGER, f REAL, b BOOLEAN, t TEXT, bytes BLOB, n INTEGER, at DATETIME, d DATE)", &[]).await;
    exec(
        &dbs,
        "INSERT INTO v VALUES (?, ?, ?, ?, ?, X'DEADBEEF', ?, '2024-05-06 07:08:09.5', '2024-05-06')",
        &[json!(-5), json!(i64::MAX), json!(0.25), json!(true), json!("héllo 'q'"), json!(null)],
    )
    .await;
    let v = rows(&dbs, "SELECT * FROM v", &[]).await.remove(0);
    want_common(&v, Dialect::Sqlite);
    assert_eq!(v["at"], json!("2024-05-06T07:08:09.500"));
    assert_eq!(v["d"], json!("2024-05-06"));

    // MariaDB.
    let dbs = fresh(Dialect::Mysql, "types", 5000);
    exec(
        &dbs,
        "CREATE TABLE v (i TINYINT, big BIGINT, ubig BIGINT UNSIGNED, f DOUBLE, f4 FLOAT, b BOOLEAN, \
         t VARCHAR(20), bytes VARBINARY(8), n INT, dec1 DECIMAL(30,2), d DATE, tm TIME(1), dur TIME, \
         at DATETIME(3), ts TIMESTAMP NULL, j JSON, e ENUM('a','b'))",
        &[],
    )
    .await;
    exec(
        &dbs,
        "INSERT INTO v VALUES (?, ?, 18446744073709551615, ?, 1.1, ?, ?, X'DEADBEEF', ?, \
         '1234567890123456789012345678.50', '2024-05-06', '07:08:09.5', '-30:00:01', \
         '2024-05-06 07:08:09.125', '2024-05-06 07:08:09', '{\"a\": 1}', 'b')",
        &[
            json!(-5),
            json!(i64::MAX),
            json!(0.25),
            json!(true),
            json!("héllo 'q'"),
            json!(null),
        ],
    )
    .await;
    let v = rows(&dbs, "SELECT * FROM v", &[]).await.remove(0);
    want_common(&v, Dialect::Mysql);
    assert_eq!(v["ubig"], json!("18446744073709551615"));
    assert_eq!(v["f4"], json!(1.1));
    assert_eq!(v["dec1"], json!("1234567890123456789012345678.50"));
    assert_eq!(v["d"], json!("2024-05-06"));
    assert_eq!(v["tm"], json!("07:08:09.500"));
    assert_eq!(v["dur"], json!("-30:00:01"));
    assert_eq!(v["at"], json!("2024-05-06T07:08:09.125"));
    assert_eq!(v["ts"], json!("2024-05-06T07:08:09"));
    // MariaDB's JSON is text with a binary collation: valid UTF-8 comes back as text.
    assert_eq!(v["j"], json!("{\"a\": 1}"));
    assert_eq!(v["e"], json!("b"));

    // PostgreSQL.
    let dbs = fresh(Dialect::Postgres, "types", 5000);
    let v = rows(
        &dbs,
        "SELECT ?::int2 AS i, 9223372036854775807::int8 AS big, 0.25::float8 AS f, 1.1::float4 AS f4, \
         true AS b, 'héllo ''q'''::varchar AS t, '\\xdeadbeef'::bytea AS bytes, NULL::int AS n, \
         123456789012345678901234567890.50::numeric AS dec1, 'NaN'::numeric AS nan, \
         '2024-05-06'::date AS d, '07:08:09.5'::time AS tm, '2024-05-06 07:08:09.125'::timestamp AS at, \
         '2024-05-06 07:08:09+02'::timestamptz AS tz, '{\"a\": 1}'::jsonb AS j, \
         'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11'::uuid AS u, 'x'::name AS nm",
        &[json!(-5)],
    )
    .await
    .remove(0);
    want_common(&v, Dialect::Postgres);
    assert_eq!(v["f4"], json!(1.1));
    assert_eq!(v["dec1"], json!("123456789012345678901234567890.50"));
    assert_eq!(v["nan"], json!("NaN"));
    assert_eq!(v["d"], json!("2024-05-06"));
    assert_eq!(v["tm"], json!("07:08:09.500"));
    assert_eq!(v["at"], json!("2024-05-06T07:08:09.125"));
    assert_eq!(v["tz"], json!("2024-05-06T05:08:09+00:00"));
    assert_eq!(v["j"], json!("{\"a\": 1}"));
    assert_eq!(v["u"], json!("a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11"));
    assert_eq!(v["nm"], json!("x"));
    let e = failure(&dbs, "SELECT interval '1 day' AS span", &[]).await;
    assert_eq!(e.kind, IoKind::BadStatement);
    assert!(
        e.detail.contains("\"span\"") && e.detail.contains("cast it to text"),
        "{e}"
    );
}

#[tokio::test]
async fn errors_have_kinds() {
    for dialect in ALL {
        let dbs = fresh(dialect, "errors", 5000);
        let e = dbs
            .query("nope", "SELECT 1", &[])
            .await
            .expect_err("unknown db");
        assert_eq!(e.kind, IoKind::UnknownDatabase, "{dialect:?}");
        assert_eq!(
            dbs.info("nope").expect_err("info").kind,
            IoKind::UnknownDatabase
        );
        exec(
            &dbs,
            "CREATE TABLE parent (id INTEGER PRIMARY KEY, name VARCHAR(10) NOT NULL UNIQUE)",
            &[],
        )
        .await;
        exec(
            &dbs,
            "CREATE TABLE child (id INTEGER PRIMARY KEY, parent_id INTEGER NOT NULL REFERENCES parent(id))",
            &[],
        )
        .await;
        exec(&dbs, "INSERT INTO parent VALUES (1, 'a')", &[]).await;
        for (sql, params, kind) in [
            ("SELEC 1", vec![], IoKind::BadStatement),
            ("SELECT * FROM missing_table", vec![], IoKind::BadStatement),
            (
                "SELECT missing_column FROM parent",
                vec![],
                IoKind::BadStatement,
            ),
            (
                "INSERT INTO parent VALUES (2, ?)",
                vec![json!("a")],
                IoKind::Constraint,
            ),
            (
                "INSERT INTO parent VALUES (1, ?)",
                vec![json!("b")],
                IoKind::Constraint,
            ),
            (
                "INSERT INTO parent VALUES (3, ?)",
                vec![json!(null)],
                IoKind::Constraint,
            ),
            (
                "INSERT INTO child VALUES (1, ?)",
                vec![json!(99)],
                IoKind::Constraint,
            ),
        ] {
            let e = dbs.execute("db", sql, &params).await.expect_err(sql);
            assert_eq!(e.kind, kind, "{dialect:?} {sql}: {e}");
        }
    }
}

#[tokio::test]
async fn a_failed_transaction_leaves_nothing() {
    for dialect in ALL {
        let dbs = fresh(dialect, "tx", 5000);
        exec(
            &dbs,
            "CREATE TABLE t (id INTEGER PRIMARY KEY, v VARCHAR(10))",
            &[],
        )
        .await;
        let done = dbs
            .transaction(
                "db",
                &[
                    (
                        "INSERT INTO t VALUES (?, ?)".into(),
                        vec![json!(1), json!("a")],
                    ),
                    (
                        "UPDATE t SET v = ? WHERE id = ?".into(),
                        vec![json!("b"), json!(1)],
                    ),
                ],
            )
            .await
            .unwrap_or_else(|e| panic!("{dialect:?}: {e}"));
        assert_eq!(done.len(), 2);
        assert_eq!(done[1].rows_affected, 1, "{dialect:?}");
        let e = dbs
            .transaction(
                "db",
                &[
                    (
                        "INSERT INTO t VALUES (?, ?)".into(),
                        vec![json!(2), json!("c")],
                    ),
                    (
                        "UPDATE t SET v = ? WHERE id = ?".into(),
                        vec![json!("z"), json!(1)],
                    ),
                    (
                        "INSERT INTO t VALUES (?, ?)".into(),
                        vec![json!(1), json!("dup")],
                    ),
                ],
            )
            .await
            .expect_err("duplicate key");
        assert_eq!(e.kind, IoKind::Constraint, "{dialect:?}: {e}");
        assert!(e.detail.starts_with("statement 3: "), "{e}");
        let all = rows(&dbs, "SELECT id, v FROM t ORDER BY id", &[]).await;
        assert_eq!(
            Value::Array(all.into_iter().map(Value::Object).collect()),
            json!([{"id": 1, "v": "b"}]),
            "{dialect:?}: the failed transaction left changes"
        );
        // A bad parameter anywhere stops the whole transaction before anything is sent.
        let e = dbs
            .transaction(
                "db",
                &[
                    (
                        "INSERT INTO t VALUES (?, ?)".into(),
                        vec![json!(5), json!("e")],
                    ),
                    ("INSERT INTO t VALUES (?, ?)".into(), vec![json!(6)]),
                ],
            )
            .await
            .expect_err("count");
        assert_eq!(e.kind, IoKind::BadStatement);
        assert!(e.detail.starts_with("statement 2: "), "{e}");
        assert_eq!(
            rows(&dbs, "SELECT id FROM t", &[]).await.len(),
            1,
            "{dialect:?}"
        );
    }
}

#[tokio::test]
async fn a_slow_statement_times_out_and_the_pool_recovers() {
    for (dialect, sleep) in [
        (Dialect::Mysql, "SELECT SLEEP(5) AS s"),
        (Dialect::Postgres, "SELECT pg_sleep(5)::text AS s"),
    ] {
        let url = match dialect {
            Dialect::Mysql => MariaDb::shared().database("timeout"),
            _ => Postgres::shared().database("timeout"),
        };
        // One connection: the next call must not wait for the abandoned statement. The budget
        // leaves room for a new connection's handshake (SCRAM is slow in a debug build).
        let mut config = one(&url, 1000);
        if let Some(db) = config.get_mut("db") {
            db.max_connections = 1;
        }
        let dbs = Databases::open(&config, Path::new("/")).expect("open");
        let started = Instant::now();
        let e = failure(&dbs, sleep, &[]).await;
        assert_eq!(e.kind, IoKind::Timeout, "{dialect:?}: {e}");
        assert!(
            started.elapsed() < Duration::from_millis(4000),
            "{dialect:?}: waited for the statement"
        );
        let again = dbs.query("db", "SELECT 1 AS one", &[]).await;
        let again = again.unwrap_or_else(|e| panic!("{dialect:?}: {e}"));
        assert_eq!(again[0]["one"], json!(1), "{dialect:?}");
    }
    // SQLite: another connection holds the write lock past the busy timeout.
    let dir = scratch_dir("sqlite-busy");
    let url = format!("sqlite://{}/busy.sqlite3", dir.display());
    let dbs = Databases::open(&one(&url, 1000), Path::new("/")).expect("open");
    exec(&dbs, "CREATE TABLE t (id INTEGER)", &[]).await;
    let holder = Databases::open(&one(&url, 5000), Path::new("/")).expect("open");
    let Pool::Sqlite(pool) = &holder.dbs["db"].pool else {
        panic!("not sqlite");
    };
    let mut lock = pool.acquire().await.expect("connection");
    sqlx::query("BEGIN IMMEDIATE")
        .execute(&mut *lock)
        .await
        .expect("lock");
    let e = dbs
        .execute("db", "INSERT INTO t VALUES (1)", &[])
        .await
        .expect_err("busy");
    assert_eq!(e.kind, IoKind::Timeout, "{e}");
    sqlx::query("ROLLBACK")
        .execute(&mut *lock)
        .await
        .expect("unlock");
    exec(&dbs, "INSERT INTO t VALUES (1)", &[]).await;
}

/// Stops `stop` mid-run: calls fail with `Unreachable` or `Timeout` within the deadline, never
/// hang; after `restart` on the same port the same `Databases` works again.
async fn outage(dbs: &Databases, stop: impl FnOnce(), restart: impl FnOnce()) {
    exec(dbs, "CREATE TABLE t (id INTEGER)", &[]).await;
    exec(dbs, "INSERT INTO t VALUES (1)", &[]).await;
    stop();
    for _ in 0..2 {
        let started = Instant::now();
        let e = failure(dbs, "SELECT id FROM t", &[]).await;
        assert!(
            matches!(e.kind, IoKind::Unreachable | IoKind::Timeout),
            "{e}"
        );
        assert!(!e.detail.contains("s3cret"), "password in {e}");
        assert!(
            started.elapsed() < Duration::from_millis(2500),
            "no answer within the deadline"
        );
    }
    restart();
    let found = rows(dbs, "SELECT id FROM t", &[]).await;
    assert_eq!(found.len(), 1, "data after restart");
}

#[tokio::test]
async fn mariadb_outage_and_recovery() {
    let mut server = MariaDb::start();
    let url = server.database("outage");
    let dbs = Databases::open(&one(&url, 1000), Path::new("/")).expect("open");
    let server = std::cell::RefCell::new(&mut server);
    outage(
        &dbs,
        || server.borrow_mut().stop(),
        || server.borrow_mut().restart(),
    )
    .await;
}

#[tokio::test]
async fn postgres_outage_and_recovery() {
    let mut server = Postgres::start();
    let url = server.database("outage");
    let dbs = Databases::open(&one(&url, 1000), Path::new("/")).expect("open");
    let server = std::cell::RefCell::new(&mut server);
    outage(
        &dbs,
        || server.borrow_mut().stop(),
        || server.borrow_mut().restart(),
    )
    .await;
}

#[tokio::test]
async fn a_server_down_at_start_fails_nothing_until_used() {
    let port = mswoole_tests::unused_port();
    let url = format!("postgres://u:hunter2@127.0.0.1:{port}/x");
    let dbs =
        Databases::open(&one(&url, 300), Path::new("/")).expect("lazy: opening never connects");
    assert_eq!(
        dbs.shown_url("db").expect("url"),
        format!("postgres://u:***@127.0.0.1:{port}/x")
    );
    let e = dbs.probe("db").await.expect_err("nothing listens");
    assert_eq!(e.kind, IoKind::Unreachable, "{e}");
    assert!(!e.detail.contains("hunter2"), "{e}");
    let e = dbs.query("db", "SELECT 1", &[]).await.expect_err("down");
    assert_eq!(e.kind, IoKind::Unreachable, "{e}");
    // A wrong password is Unreachable too, and its detail does not repeat it.
    let server = MariaDb::shared();
    let url = format!(
        "mysql://{}:hunter2@127.0.0.1:{}/mysql",
        mswoole_tests::mariadb::USER,
        server.port
    );
    let dbs = Databases::open(&one(&url, 2000), Path::new("/")).expect("open");
    let e = dbs
        .query("db", "SELECT 1", &[])
        .await
        .expect_err("bad password");
    assert_eq!(e.kind, IoKind::Unreachable, "{e}");
    assert!(!e.detail.contains("hunter2"), "{e}");
}

#[tokio::test]
async fn open_names_the_key_and_creates_sqlite_files() {
    let e = Databases::open(&one("sqlite::memory:", 100), Path::new("/"))
        .err()
        .expect("memory");
    assert!(
        e.starts_with("databases.db.url: sqlite::memory: is refused"),
        "{e}"
    );
    let e = Databases::open(&one("mongodb://x:pw@h/db", 100), Path::new("/"))
        .err()
        .expect("scheme");
    assert!(
        e.starts_with("databases.db.url: ") && !e.contains("pw@"),
        "{e}"
    );
    // The host's default (config.rs): a SQLite file under runtime.dir, directories created, WAL on.
    let base = scratch_dir("default-db");
    let mut config = DatabasesConfig::new();
    config.insert(
        "default".into(),
        Database {
            url: format!("sqlite://{}/runtime/mswoole.sqlite3", base.display()),
            ..Database::default()
        },
    );
    let dbs = Databases::open(&config, &base).expect("defaults open");
    assert!(dbs.names().contains(&"default".to_string()));
    assert_eq!(dbs.info("default").expect("info").dialect, Dialect::Sqlite);
    let mode = dbs
        .query("default", "PRAGMA journal_mode", &[])
        .await
        .expect("pragma");
    assert_eq!(mode[0]["journal_mode"], json!("wal"));
    assert!(base.join("runtime/mswoole.sqlite3").exists());
}

#[test]
fn insert_detection_skips_comments() {
    assert!(starts_with_insert(
        "  /* x */ -- y\n insert into t values (1)"
    ));
    assert!(starts_with_insert("REPLACE INTO t VALUES (1)"));
    assert!(!starts_with_insert("UPDATE t SET a = 1"));
    assert!(!starts_with_insert("inserted"));
}

#[tokio::test]
async fn concurrent_transactions_all_commit() {
    for dialect in ALL {
        let dbs = fresh(dialect, "concurrent", 10_000);
        exec(&dbs, "CREATE TABLE t (id INTEGER, seen INTEGER)", &[]).await;
        // Each reads, then writes: on SQLite two such transactions started together can only
        // both finish if the write lock is taken up front. (Plain reads and inserts: InnoDB
        // would rightly report a deadlock for an INSERT … SELECT from the same table.)
        let calls = (0..16).map(|i| {
            let dbs = &dbs;
            async move {
                dbs.transaction(
                    "db",
                    &[
                        ("SELECT COUNT(*) FROM t".into(), vec![]),
                        (
                            "INSERT INTO t VALUES (?, ?)".into(),
                            vec![json!(i), json!(i)],
                        ),
                    ],
                )
                .await
            }
        });
        for outcome in futures_util::future::join_all(calls).await {
            outcome.unwrap_or_else(|e| panic!("{dialect:?}: {e}"));
        }
        let all = rows(&dbs, "SELECT COUNT(*) AS n FROM t", &[]).await;
        assert_eq!(all[0]["n"], json!(16), "{dialect:?}");
    }
}
