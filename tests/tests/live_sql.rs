//! docs/PROTOCOL.md "Live in SQL": with `[modules.Live] database`, a big screen's messages are
//! rows of MSwoole's table `live_wall_message` in MariaDB and PostgreSQL (the suite's private
//! servers), recalls set `status = 0`, histories read shown rows, and a database that goes away
//! answers 503 without broadcasting anything.

use std::time::Duration;

use mswoole_tests::{
    eventually, json,
    live::{ids, user_in, wall_in, Speaks},
    MariaDb, Postgres, TestHost,
};

/// How long a client must hear nothing to count as left out of a broadcast.
const QUIET: Duration = Duration::from_millis(300);

async fn host_on(url: &str, live: &str) -> TestHost {
    TestHost::start(&format!(
        "[databases.main]\nurl = \"{url}\"\ntimeout_ms = 1000\n[modules.Live]\ndatabase = \"main\"\n{live}"
    ))
    .await
}

/// Says, recalls and reads the history in room `code`; returns the first message's id.
async fn a_wall_session(host: &TestHost, code: &str) -> (i64, u64) {
    let mut wall = wall_in(host, "w-7", code, "big screen").await;
    let mut alice = user_in(host, "101", code, "alice").await;
    let first = wall
        .ok(
            "live.wall.say",
            json!({"say": "hello, room"}),
            "wallSaySuccess",
        )
        .await;
    assert_eq!(
        alice.hears("wallSayBroadcast").await,
        first,
        "phones get the stored message"
    );
    assert_eq!(first["user_id"], "w-7");
    assert_eq!(first["code"], code);
    let second = wall
        .ok("live.wall.say", json!({"say": "second"}), "wallSaySuccess")
        .await;
    alice.hears("wallSayBroadcast").await;
    let first_id = first["id"].as_i64().expect("an integer id");
    wall.ok(
        "live.wall.recall",
        json!({"id": first_id}),
        "wallRecallSuccess",
    )
    .await;
    alice.hears("wallSayRecall").await;
    let history = alice
        .ok("live.user.history", json!({}), "wallSayHistory")
        .await;
    assert_eq!(ids(&history), [second["id"].as_i64().unwrap_or(0)]);
    (first_id, first["ctime"].as_u64().unwrap_or(0))
}

#[tokio::test]
async fn a_wall_on_mariadb_writes_rows_of_live_wall_message() {
    let url = MariaDb::shared().database("live_sql");
    let db = url.rsplit('/').next().unwrap_or_default().to_string();
    let host = host_on(&url, "").await;
    let (first, ctime) = a_wall_session(&host, "sql-room").await;
    let rows = MariaDb::shared().sql(&format!(
        "SELECT id, code, nickname, say, user_id, status, create_time, update_time \
         FROM `{db}`.live_wall_message ORDER BY id"
    ));
    let lines: Vec<Vec<&str>> = rows.lines().map(|l| l.split('\t').collect()).collect();
    assert_eq!(lines.len(), 2, "{rows}");
    assert_eq!(lines[0][0], first.to_string());
    assert_eq!(
        &lines[0][1..6],
        ["sql-room", "big screen", "hello, room", "w-7", "0"]
    );
    assert_eq!(lines[0][6], ctime.to_string());
    assert!(lines[0][7].parse::<u64>().unwrap_or(0) >= ctime);
    assert_eq!(
        &lines[1][1..6],
        ["sql-room", "big screen", "second", "w-7", "1"]
    );
    let columns = MariaDb::shared().sql(&format!(
        "SELECT column_name FROM information_schema.columns \
         WHERE table_schema = '{db}' AND table_name = 'live_wall_message' ORDER BY ordinal_position"
    ));
    assert_eq!(
        columns.lines().collect::<Vec<_>>(),
        [
            "id",
            "code",
            "nickname",
            "say",
            "user_id",
            "status",
            "create_time",
            "update_time"
        ]
    );
}

#[tokio::test]
async fn a_wall_on_postgresql_writes_rows_of_its_wall_table() {
    let url = Postgres::shared().database("live_sql");
    let db = url.rsplit('/').next().unwrap_or_default().to_string();
    let host = host_on(&url, "wall_table = \"screen_wall\"\n").await;
    let (first, _) = a_wall_session(&host, "pg-room").await;
    let rows = Postgres::shared().sql(
        &db,
        "SELECT id, code, say, user_id, status FROM screen_wall ORDER BY id",
    );
    assert_eq!(
        rows.lines().collect::<Vec<_>>(),
        [
            format!("{first}|pg-room|hello, room|w-7|0"),
            format!("{}|pg-room|second|w-7|1", first + 1)
        ]
    );
}

#[tokio::test]
async fn a_database_that_goes_away_answers_503_and_broadcasts_nothing() {
    let mut server = MariaDb::start();
    let url = server.database("live_outage");
    let host = host_on(&url, "").await;
    let mut wall = wall_in(&host, "w-1", "outage", "screen").await;
    let mut alice = user_in(&host, "101", "outage", "alice").await;
    wall.ok("live.wall.say", json!({"say": "before"}), "wallSaySuccess")
        .await;
    alice.hears("wallSayBroadcast").await;
    server.stop();
    wall.refused(
        "live.wall.say",
        json!({"say": "during"}),
        503,
        "unavailable",
    )
    .await;
    alice.expect_silence(QUIET).await;
    // The moderation queue is in the registry: phones still speak.
    alice
        .ok("live.user.say", json!({"say": "queued"}), "userSaySuccess")
        .await;
    wall.hears("userSayNeedCheck").await;
    server.restart();
    let wall = tokio::sync::Mutex::new(wall);
    eventually(
        "the database back for the wall's say",
        Duration::from_secs(10),
        || async {
            let reply = wall
                .lock()
                .await
                .act("live.wall.say", json!({"say": "after"}))
                .await;
            if reply.status() != 200 {
                reply.assert_is(503, "unavailable");
            }
            reply.status() == 200
        },
    )
    .await;
    let said = alice.hears("wallSayBroadcast").await;
    assert_eq!(said["say"], "after");
    let history = alice
        .ok("live.user.history", json!({}), "wallSayHistory")
        .await;
    let says: Vec<&str> = history
        .as_array()
        .map(|a| a.iter().filter_map(|m| m["say"].as_str()).collect())
        .unwrap_or_default();
    assert_eq!(says, ["after", "before"], "the failed say left no row");
}
