//! SQL and HTTP through a module in the running host (docs/MODULES.md, "Databases" and
//! "HTTP"): the swap fixture's `swap.io.*` actions hand statements straight to the host,
//! against a SQLite file, the suite's private MariaDB and its private PostgreSQL.

use std::time::{Duration, Instant};

use mswoole_tests::{
    eventually_some, http_get, json, paths, unused_port, Client, Envelope, MariaDb, Postgres,
    TestHost, SUCCESS, VECTOR_WECHAT_USER,
};
use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

/// A host serving the swap fixture with these `[databases.*]` sections.
async fn host_with(databases: &str) -> TestHost {
    TestHost::builder()
        .config(&format!(
            "[plugins]\nwatch = false\n[protocol]\nescape_html = false\n\
             [limits]\nhttp_max_response_bytes = 1000\n{databases}"
        ))
        .plugin_copy(
            "libswap_fixture.so",
            &paths::fixture("variants/libswap_v1.so"),
        )
        .start()
        .await
}

async fn user(host: &TestHost) -> Client {
    host.connect(&format!("/live?auth={VECTOR_WECHAT_USER}"))
        .await
}

/// `swap.io.<action>` with `fields`; the reply.
async fn io(client: &mut Client, action: &str, fields: Value) -> Envelope {
    let mut message = fields;
    message["method"] = json!(format!("swap.io.{action}"));
    client.call(&message).await
}

/// The result of a `swap.io.<action>` that must succeed.
async fn ok(client: &mut Client, action: &str, fields: Value) -> Value {
    let reply = io(client, action, fields).await;
    reply.assert_is(200, "io");
    reply.expect_param()["result"].clone()
}

/// The kind of error `swap.io.kind` reports for a statement (`ok` when it succeeds).
async fn kind(client: &mut Client, fields: Value) -> String {
    let reply = io(client, "kind", fields).await;
    reply.assert_is(200, "kind");
    reply.expect_param()["kind"]
        .as_str()
        .unwrap_or_default()
        .to_string()
}

/// Table DDL per dialect: an auto-increment id, a unique name, a number.
fn create_table(db: &str) -> &'static str {
    match db {
        "my" => "CREATE TABLE t (id BIGINT AUTO_INCREMENT PRIMARY KEY, name VARCHAR(64) NOT NULL UNIQUE, n BIGINT)",
        "pg" => "CREATE TABLE t (id BIGSERIAL PRIMARY KEY, name TEXT NOT NULL UNIQUE, n BIGINT)",
        _ => "CREATE TABLE t (id INTEGER PRIMARY KEY AUTOINCREMENT, name TEXT NOT NULL UNIQUE, n INTEGER)",
    }
}

#[tokio::test]
async fn every_sql_call_and_error_kind_on_sqlite_mariadb_and_postgresql() {
    let my = MariaDb::shared().database("module_io");
    let pg = Postgres::shared().database("module_io");
    let down = unused_port();
    let host = host_with(&format!(
        "[databases.lite]\nurl = \"sqlite://data/lite.sqlite3\"\n\
         [databases.my]\nurl = \"{my}\"\ntimeout_ms = 1000\nprefix = \"live_\"\n\
         [databases.pg]\nurl = \"{pg}\"\ntimeout_ms = 1000\n\
         [databases.gone]\nurl = \"postgres://u:p@127.0.0.1:{down}/x\"\ntimeout_ms = 300\n"
    ))
    .await;
    let mut client = user(&host).await;
    for (db, dialect) in [("lite", "sqlite"), ("my", "mysql"), ("pg", "postgres")] {
        let info = ok(&mut client, "info", json!({"db": db})).await;
        assert_eq!(info["dialect"], dialect);
        ok(
            &mut client,
            "execute",
            json!({"db": db, "sql": create_table(db)}),
        )
        .await;
        // Parameters are bound, never spliced: this name is stored as it is.
        let evil = "O'Brien'); DROP TABLE t; --";
        let insert = "INSERT INTO t (name, n) VALUES (?, ?)";
        let done = ok(
            &mut client,
            "execute",
            json!({"db": db, "sql": insert, "params": [evil, 7]}),
        )
        .await;
        assert_eq!(done["rows_affected"], 1, "{db}: {done}");
        if db == "pg" {
            assert_eq!(
                done["last_insert_id"],
                Value::Null,
                "PostgreSQL: use RETURNING"
            );
        } else {
            assert_eq!(done["last_insert_id"], 1, "{db}: {done}");
        }
        let rows = ok(
            &mut client,
            "query",
            json!({"db": db, "sql": "SELECT id, name, n FROM t WHERE n = ?", "params": [7]}),
        )
        .await;
        assert_eq!(rows, json!([{"id": 1, "name": evil, "n": 7}]), "{db}");

        // All or nothing: the second statement's duplicate rolls the first back.
        let failed = io(
            &mut client,
            "transaction",
            json!({"db": db, "statements": [[insert, ["fresh", 1]], [insert, [evil, 2]]]}),
        )
        .await;
        failed.assert_is(501, "storageError");
        let count = ok(
            &mut client,
            "query",
            json!({"db": db, "sql": "SELECT COUNT(*) AS c FROM t"}),
        )
        .await;
        assert_eq!(
            count[0]["c"], 1,
            "{db}: the transaction left nothing behind"
        );
        let both = ok(
            &mut client,
            "transaction",
            json!({"db": db, "statements": [[insert, ["a", 1]], [insert, ["b", 2]]]}),
        )
        .await;
        assert_eq!(both.as_array().map(Vec::len), Some(2), "{db}: {both}");

        // Each kind, as the module can match on it.
        let dup = json!({"db": db, "op": "execute", "sql": insert, "params": ["a", 3]});
        assert_eq!(kind(&mut client, dup).await, "Constraint", "{db}");
        let syntax = json!({"db": db, "sql": "SELEKT 1"});
        assert_eq!(kind(&mut client, syntax).await, "BadStatement", "{db}");
        let count_mismatch = json!({"db": db, "sql": "SELECT ? AS x", "params": [1, 2]});
        assert_eq!(
            kind(&mut client, count_mismatch).await,
            "BadStatement",
            "{db}"
        );
        let no_table = json!({"db": db, "sql": "SELECT * FROM missing_table"});
        assert_eq!(kind(&mut client, no_table).await, "BadStatement", "{db}");
    }
    let unknown = json!({"db": "nope", "sql": "SELECT 1"});
    assert_eq!(kind(&mut client, unknown).await, "UnknownDatabase");
    let sleep_my = json!({"db": "my", "sql": "SELECT SLEEP(3)"});
    assert_eq!(kind(&mut client, sleep_my).await, "Timeout");
    let sleep_pg = json!({"db": "pg", "sql": "SELECT pg_sleep(3)"});
    assert_eq!(kind(&mut client, sleep_pg).await, "Timeout");
    let started = Instant::now();
    let gone = json!({"db": "gone", "sql": "SELECT 1"});
    assert_eq!(kind(&mut client, gone).await, "Unreachable");
    assert!(started.elapsed() < Duration::from_millis(2000));
    let prefix = ok(&mut client, "info", json!({"db": "my"})).await;
    assert_eq!(prefix["prefix"], "live_");

    // Unhandled, through the one error path: "try later" is 503, the rest 501.
    io(
        &mut client,
        "query",
        json!({"db": "gone", "sql": "SELECT 1"}),
    )
    .await
    .assert_is(503, "unavailable");
    io(
        &mut client,
        "query",
        json!({"db": "nope", "sql": "SELECT 1"}),
    )
    .await
    .assert_is(501, "storageError");
    io(&mut client, "query", json!({"db": "lite", "sql": "SELEKT"}))
        .await
        .assert_is(501, "storageError");
    let log = host.output();
    for detail in [
        "call failed: storage error: Constraint: statement 2:",
        "call failed: storage error: UnknownDatabase: no database \"nope\"",
        "call failed: unavailable: Unreachable: cannot connect to postgres://u:***@",
    ] {
        assert!(log.contains(detail), "{detail:?} is logged:\n{log}");
    }
    assert!(!log.contains(":p@127"), "no password in the log");
    // The calls were timed per database.
    let metrics =
        String::from_utf8_lossy(&http_get(host.manager, "/metrics").await.body).to_string();
    assert!(
        metrics.contains("mswoole_database_query_seconds_count{db=\"pg\"}"),
        "{metrics}"
    );
}

#[tokio::test]
async fn a_database_that_goes_away_answers_503_within_its_deadline_and_comes_back() {
    let mut server = MariaDb::start();
    let url = server.database("outage");
    let host = host_with(&format!(
        "[databases.main]\nurl = \"{url}\"\ntimeout_ms = 800\nmax_connections = 2\n"
    ))
    .await;
    let mut client = user(&host).await;
    let select = json!({"db": "main", "sql": "SELECT 1 AS one"});
    assert_eq!(
        ok(&mut client, "query", select.clone()).await,
        json!([{"one": 1}])
    );

    server.stop();
    for _ in 0..3 {
        let started = Instant::now();
        io(&mut client, "query", select.clone())
            .await
            .assert_is(503, "unavailable");
        assert!(
            started.elapsed() < Duration::from_millis(800 + 700),
            "answered within the deadline: {:?}",
            started.elapsed()
        );
    }
    // The client was never dropped, and calls that need no database go on.
    client.send_text(r#"{"method":"index.index.index"}"#).await;
    client.expect_ack().await;
    assert_eq!(client.recv_text().await, SUCCESS);

    server.restart();
    let client = tokio::sync::Mutex::new(client);
    let reply = eventually_some(
        "the pool reconnected once the server is back",
        Duration::from_secs(10),
        || async {
            let reply = io(&mut *client.lock().await, "query", select.clone()).await;
            if reply.status() == 200 {
                return Some(reply);
            }
            reply.assert_is(503, "unavailable");
            None
        },
    )
    .await;
    assert_eq!(reply.expect_param()["result"], json!([{"one": 1}]));
}

/// A local HTTP server: `/ok` answers JSON, `/big` 5,000 bytes, `/hang` never answers,
/// `/echo` the request's body.
async fn backend() -> String {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let address = listener.local_addr().expect("address");
    tokio::spawn(async move {
        while let Ok((mut socket, _)) = listener.accept().await {
            tokio::spawn(async move {
                let mut data = Vec::new();
                let mut buf = [0u8; 4096];
                while !data.windows(4).any(|w| w == b"\r\n\r\n") {
                    match socket.read(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => data.extend_from_slice(&buf[..n]),
                    }
                }
                let text = String::from_utf8_lossy(&data).to_string();
                let path = text.split(' ').nth(1).unwrap_or("/").to_string();
                let body = match path.as_str() {
                    "/ok" => r#"{"hello":"world"}"#.to_string(),
                    "/big" => "x".repeat(5000),
                    "/hang" => {
                        tokio::time::sleep(Duration::from_secs(30)).await;
                        return;
                    }
                    _ => text
                        .split("\r\n\r\n")
                        .nth(1)
                        .unwrap_or_default()
                        .to_string(),
                };
                let head = format!(
                    "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\nx-backend: yes\r\ncontent-length: {}\r\nconnection: close\r\n\r\n",
                    body.len()
                );
                let _ = socket.write_all(head.as_bytes()).await;
                let _ = socket.write_all(body.as_bytes()).await;
            });
        }
    });
    format!("http://{address}")
}

#[tokio::test]
async fn http_through_a_module_with_deadline_and_size_cap() {
    let base = backend().await;
    let host = host_with("").await;
    let mut client = user(&host).await;
    let request = |path: &str, timeout_ms: u64| {
        json!({"request": {"method": "POST", "url": format!("{base}{path}"),
            "headers": [["x-test", "1"]], "body": "payload", "timeout_ms": timeout_ms}})
    };
    let answer = ok(&mut client, "http", request("/ok", 2000)).await;
    assert_eq!(answer["status"], 200);
    assert_eq!(answer["body"], r#"{"hello":"world"}"#);
    assert!(answer["headers"]
        .as_array()
        .is_some_and(|h| h.contains(&json!(["x-backend", "yes"]))));
    let echoed = ok(&mut client, "http", request("/echo", 2000)).await;
    assert_eq!(echoed["body"], "payload");

    let started = Instant::now();
    io(&mut client, "http", request("/hang", 300))
        .await
        .assert_is(503, "unavailable");
    assert!(started.elapsed() < Duration::from_millis(1500));
    // Over limits.http_max_response_bytes (1000 here): refused, not cut short.
    io(&mut client, "http", request("/big", 2000))
        .await
        .assert_is(501, "storageError");
    // The log line is written after the reply; wait for it rather than race it.
    host.wait_for_line("the TooLarge failure logged", |line| {
        line.contains("storage error: TooLarge")
    })
    .await;
    let bad =
        json!({"request": {"method": "GET", "url": "ftp://x/y", "headers": [], "timeout_ms": 100}});
    io(&mut client, "http", bad)
        .await
        .assert_is(501, "storageError");
}
