//! The Vote protocol through the module test kit: a big screen and phones in room
//! `demo`, the polls in the kit's SQLite database (the host's own database code), and
//! time moved by hand (the kit's clock for timers, [`crate::clock`] for deadlines).

use std::path::PathBuf;

use mswoole_module_test::{
    block_on,
    serde_json::{json, Value},
    Conn, Options, Registry, TestHost,
};

use mswoole_plugin_api::{BoxFuture, Envelope, Host, Module, ModuleInfo, Outcome, Request};

use crate::{clock, store::Store, Vote};

/// A decoded token.
fn token(id: Value, kind: &str, code: &str) -> Value {
    json!({"id": id, "type": kind, "code": code, "nickname": format!("{kind} {id}")})
}

/// `(status, event)` of a frame.
fn head(frame: &Value) -> (u64, &str) {
    (
        frame["status"].as_u64().unwrap_or_default(),
        frame["event"].as_str().unwrap_or_default(),
    )
}

/// The frames with this event.
fn events<'a>(frames: &'a [Value], event: &str) -> Vec<&'a Value> {
    frames.iter().filter(|f| f["event"] == event).collect()
}

/// The one frame of a reply that is not a broadcast the sender also got.
fn reply(frames: &[Value], event: &str) -> Value {
    let found = events(frames, event);
    assert_eq!(found.len(), 1, "one {event} in {frames:?}");
    found[0].clone()
}

/// A fresh SQLite file for tests that need two kit hosts on one database.
fn shared_sqlite(name: &str) -> (PathBuf, String) {
    let dir = std::env::temp_dir().join(format!("mswoole-vote-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("a scratch directory");
    let url = format!("sqlite://{}", dir.join("vote.sqlite3").display());
    (dir, url)
}

/// A test host with Vote loaded (acks off: a reply is the frame a sender gets).
fn host_on(databases: &[(&str, &str)]) -> TestHost {
    let mut options = Options {
        ack: false,
        ..Options::default()
    };
    for (name, url) in databases {
        options.databases.insert((*name).into(), (*url).into());
    }
    let host = TestHost::with_options(options);
    host.load::<Vote>(json!({})).expect("Vote loads");
    host
}

/// One kit host with a screen and phones who joined room `demo` as Live joins them.
struct Room {
    host: TestHost,
    wall: Conn,
    phones: Vec<Conn>,
}

impl Room {
    fn new() -> Room {
        Room::on(host_on(&[]), 2)
    }

    fn on(host: TestHost, phones: u64) -> Room {
        let wall = host.connect(token(json!("w-7"), "wall", "demo"));
        join(&host, "LIVE_WALL_ROOM_demo", &wall);
        let phones = (1..=phones)
            .map(|id| {
                let phone = host.connect(token(json!(id), "wechatUser", "demo"));
                join(&host, "LIVE_USER_ROOM_demo", &phone);
                phone
            })
            .collect();
        Room { host, wall, phones }
    }

    /// Opens a poll of `seconds` with three options; returns its id.
    fn open(&self, seconds: u64) -> i64 {
        let frames = self
            .wall
            .send(json!({"method": "vote.wall.open", "title": "Tea?",
            "options": ["yes", "no", "later"], "seconds": seconds}));
        let answer = reply(&frames, "voteOpenSuccess");
        answer["param"]["poll"].as_i64().expect("a poll id")
    }

    /// Phone `n` (0-based) casts `option`; returns its answer.
    fn cast(&self, n: usize, option: Value) -> Value {
        let frames = self.phones[n].send(json!({"method": "vote.user.cast", "option": option}));
        frames.last().cloned().expect("an answer")
    }

    /// Moves both clocks by `millis`, in steps of 50 ms.
    fn pass(&self, millis: i64) {
        pass(&[&self.host], millis);
    }
}

/// Moves the module's clock and every kit host's clock together, 50 ms at a time, so
/// that a timer sees the module's clock within 50 ms of its due time.
fn pass(hosts: &[&TestHost], millis: i64) {
    let mut left = millis;
    while left > 0 {
        let step = left.min(50);
        clock::advance_ms(step);
        for host in hosts {
            host.advance_ms(u64::try_from(step).unwrap_or(0));
        }
        left -= step;
    }
}

/// Adds `conn` to a Live room set, as `live.*.join` does.
fn join(host: &TestHost, key: &str, conn: &Conn) {
    block_on(host.registry().set_add(key, conn.fd())).expect("the kit's registry");
}

#[test]
fn a_poll_opens_for_the_whole_room() {
    let room = Room::new();
    let frames = room
        .wall
        .send(json!({"method": "vote.wall.open", "title": "<b>Tea?</b>",
        "options": ["yes", "no"], "seconds": 60}));
    // 60 s from 00:00:00.250 rounded up to a whole second: 00:01:01.
    let param = json!({"poll": 1, "title": "&lt;b&gt;Tea?&lt;/b&gt;", "options": ["yes", "no"],
        "closes_at": 1_764_115_261});
    let answer = reply(&frames, "voteOpenSuccess");
    assert_eq!(
        answer,
        json!({"status": 200, "event": "voteOpenSuccess", "info": "投票已开始", "param": param})
    );
    assert_eq!(
        reply(&frames, "voteOpened")["param"],
        param,
        "the screen is in the room too"
    );
    for phone in &room.phones {
        let got = phone.take();
        assert_eq!(got.len(), 1, "{got:?}");
        assert_eq!(
            got[0],
            json!({"status": 200, "event": "voteOpened", "info": "投票开始", "param": param})
        );
    }
}

#[test]
fn one_open_poll_per_room() {
    let room = Room::new();
    room.open(60);
    room.phones[0].take();
    let again = room
        .wall
        .send(json!({"method": "vote.wall.open", "title": "t",
        "options": ["a", "b"], "seconds": 30}));
    assert_eq!(again.len(), 1, "nothing broadcast: {again:?}");
    assert_eq!(head(&again[0]), (403, "pollOpen"));
    // Another room has its own.
    let other = room.host.connect(token(json!("w-8"), "wall", "other"));
    let frames = other.send(json!({"method": "vote.wall.open", "title": "t",
        "options": ["a", "b"], "seconds": 30}));
    assert_eq!(reply(&frames, "voteOpenSuccess")["param"]["poll"], 2);
    assert!(
        room.phones[0].take().is_empty(),
        "room demo hears nothing of room other"
    );
}

#[test]
fn a_vote_counts_once_per_uid() {
    let room = Room::new();
    let poll = room.open(60);
    assert_eq!(
        room.cast(0, json!(2)),
        json!({"status": 200, "event": "voteCastSuccess", "info": "投票成功",
            "param": {"poll": poll, "option": 2}})
    );
    let again = room.cast(0, json!(1));
    assert_eq!(head(&again), (403, "alreadyVoted"));
    // The same uid on another connection, with its id as text: the same voter.
    let same = room.host.connect(token(json!("1"), "wechatUser", "demo"));
    let third = same.send(json!({"method": "vote.user.cast", "option": 0}));
    assert_eq!(head(&third[0]), (403, "alreadyVoted"));
    assert_eq!(head(&room.cast(1, json!(0))), (200, "voteCastSuccess"));
    let result = room
        .wall
        .send(json!({"method": "vote.wall.result", "poll": poll}));
    assert_eq!(
        reply(&result, "voteResult")["param"],
        json!({"poll": poll, "title": "Tea?", "options": ["yes", "no", "later"],
            "counts": [1, 0, 1], "total": 2, "open": true})
    );
}

#[test]
fn checks_run_in_the_contracts_order() {
    let room = Room::new();
    let host = &room.host;
    let nowhere_wall = host.connect(token(json!("w-9"), "wall", ""));
    let nowhere_phone = host.connect(token(json!(9), "wechatUser", ""));
    let anonymous = host.connect_anonymous();
    let first = |conn: &Conn, message: Value| {
        let frames = conn.send(message);
        assert_eq!(frames.len(), 1, "{frames:?}");
        let (status, event) = head(&frames[0]);
        (status, event.to_string())
    };
    let expect = |status: u64, event: &str| (status, event.to_string());
    // 1. An empty room code, before the type and the parameters.
    assert_eq!(
        first(&nowhere_phone, json!({"method": "vote.wall.open"})),
        expect(999, "codeIsEmpty")
    );
    assert_eq!(
        first(&nowhere_wall, json!({"method": "vote.user.cast"})),
        expect(999, "codeIsEmpty")
    );
    assert_eq!(
        first(&anonymous, json!({"method": "vote.user.cast"})),
        expect(999, "codeIsEmpty")
    );
    // 2. The type, before the parameters.
    assert_eq!(
        first(&room.phones[0], json!({"method": "vote.wall.open"})),
        expect(403, "mustBeWall")
    );
    assert_eq!(
        first(&room.phones[0], json!({"method": "vote.wall.close"})),
        expect(403, "mustBeWall")
    );
    assert_eq!(
        first(&room.phones[0], json!({"method": "vote.wall.result"})),
        expect(403, "mustBeWall")
    );
    assert_eq!(
        first(&room.wall, json!({"method": "vote.user.cast"})),
        expect(403, "mustBeWechatUser")
    );
    // 3. The parameters, before the poll's state (no poll is open yet).
    assert_eq!(
        first(&room.phones[0], json!({"method": "vote.user.cast"})),
        expect(401, "badParameter")
    );
    assert_eq!(
        first(
            &room.phones[0],
            json!({"method": "vote.user.cast", "option": "1"})
        ),
        expect(401, "badParameter")
    );
    assert_eq!(
        first(
            &room.wall,
            json!({"method": "vote.wall.result", "poll": 1.0})
        ),
        expect(401, "badParameter")
    );
    // 4. The poll's state.
    assert_eq!(
        first(
            &room.phones[0],
            json!({"method": "vote.user.cast", "option": 0})
        ),
        expect(404, "pollNotFound")
    );
    assert_eq!(
        first(
            &room.phones[0],
            json!({"method": "vote.user.cast", "option": 99})
        ),
        expect(404, "pollNotFound")
    );
    assert_eq!(
        first(&room.wall, json!({"method": "vote.wall.close"})),
        expect(404, "pollNotFound")
    );
    assert_eq!(
        first(&room.wall, json!({"method": "vote.wall.result", "poll": 1})),
        expect(404, "pollNotFound")
    );
    room.open(60);
    room.phones[0].take();
    // Parameters are checked before "a poll is open" ...
    assert_eq!(
        first(
            &room.wall,
            json!({"method": "vote.wall.open", "title": "t", "options": ["a", "b"], "seconds": 4})
        ),
        expect(401, "badParameter")
    );
    // ... and an option the poll does not have, with the poll.
    for option in [json!(3), json!(-1)] {
        assert_eq!(
            first(
                &room.phones[0],
                json!({"method": "vote.user.cast", "option": option})
            ),
            expect(401, "badParameter")
        );
    }
    assert_eq!(
        head(&room.cast(0, json!(0))),
        (200, "voteCastSuccess"),
        "a refused cast did not count"
    );
}

#[test]
fn the_walls_get_a_tally_a_second_while_it_changes() {
    let room = Room::new();
    let poll = room.open(60);
    room.wall.take();
    room.pass(1000);
    assert!(room.wall.take().is_empty(), "no votes, no tally");
    room.cast(0, json!(0));
    room.cast(1, json!(2));
    room.pass(1000);
    let tally = json!({"status": 200, "event": "voteTally", "info": "投票统计",
        "param": {"poll": poll, "counts": [1, 0, 1], "total": 2}});
    assert_eq!(
        room.wall.take(),
        vec![tally],
        "one tally for two votes in a second"
    );
    for phone in &room.phones {
        assert!(
            events(&phone.take(), "voteTally").is_empty(),
            "phones get no tallies"
        );
    }
    room.pass(3000);
    assert!(room.wall.take().is_empty(), "no change, no tally");
}

#[test]
fn tallies_are_never_less_than_a_second_apart() {
    let room = Room::on(host_on(&[]), 3);
    room.open(60);
    room.wall.take();
    // A vote just before a sweep: its tally goes out at once (time 1000) ...
    room.pass(950);
    room.cast(0, json!(0));
    room.pass(50);
    let first_at = clock::now_ms();
    assert_eq!(events(&room.wall.take(), "voteTally").len(), 1);
    // ... and a second tally, claimed once a second has passed, not before. Here the
    // last tally looks 300 ms younger than it is, as a slower clock on another host
    // would make it: the sweep defers it with a one-shot timer.
    room.cast(1, json!(1));
    clock::advance_ms(-300);
    room.pass(1000);
    assert!(
        events(&room.wall.take(), "voteTally").is_empty(),
        "not within a second"
    );
    room.pass(300);
    let tallies = room.wall.take();
    assert_eq!(events(&tallies, "voteTally").len(), 1, "{tallies:?}");
    assert!(clock::now_ms() - first_at >= 1000);
}

#[test]
fn the_deadline_closes_the_poll_once_for_everyone() {
    let room = Room::new();
    let poll = room.open(5); // closes at 00:00:06, 5.75 s from now
    room.cast(0, json!(1));
    room.pass(5700);
    for conn in [&room.wall, &room.phones[0], &room.phones[1]] {
        assert!(
            events(&conn.take(), "voteClosed").is_empty(),
            "still open at 5.7 s"
        );
    }
    room.pass(100);
    let closed = json!({"status": 200, "event": "voteClosed", "info": "投票结束",
        "param": {"poll": poll, "title": "Tea?", "options": ["yes", "no", "later"],
            "counts": [0, 1, 0], "total": 1}});
    let wall = room.wall.take();
    assert_eq!(events(&wall, "voteClosed"), vec![&closed], "{wall:?}");
    assert_eq!(wall.last(), Some(&closed), "no tally after the result");
    for phone in &room.phones {
        assert_eq!(phone.take(), vec![closed.clone()]);
    }
    room.pass(5000);
    assert!(room.wall.take().is_empty(), "closed once");
    assert_eq!(head(&room.cast(1, json!(0))), (404, "pollNotFound"));
    let result = room
        .wall
        .send(json!({"method": "vote.wall.result", "poll": poll}));
    assert_eq!(reply(&result, "voteResult")["param"]["open"], false);
    // The room may open its next poll.
    assert_eq!(room.open(30), poll + 1);
}

#[test]
fn a_cast_at_closes_at_is_too_late_and_the_late_poll_gives_way() {
    let room = Room::new();
    let first = room.open(5);
    room.wall.take();
    // Time is up, but no sweep has run since: the poll is still open in its row.
    clock::advance_ms(6000);
    assert_eq!(head(&room.cast(0, json!(0))), (404, "pollNotFound"));
    // A new poll closes it (announced once) instead of answering pollOpen.
    let second = room.open(5);
    assert_eq!(second, first + 1);
    let closed = events(&room.phones[0].take(), "voteClosed")
        .into_iter()
        .cloned()
        .collect::<Vec<_>>();
    assert_eq!(closed.len(), 1);
    assert_eq!(closed[0]["param"]["poll"], first);
    room.host.advance_ms(2000);
    assert!(events(&room.phones[0].take(), "voteClosed").is_empty());
}

#[test]
fn a_screen_closes_the_poll() {
    let room = Room::new();
    let poll = room.open(60);
    room.cast(0, json!(0));
    room.cast(1, json!(0));
    room.wall.take();
    let frames = room.wall.send(json!({"method": "vote.wall.close"}));
    assert_eq!(
        reply(&frames, "voteCloseSuccess")["param"],
        json!({"poll": poll})
    );
    assert_eq!(
        reply(&frames, "voteClosed")["param"],
        json!({"poll": poll, "title": "Tea?", "options": ["yes", "no", "later"],
            "counts": [2, 0, 0], "total": 2})
    );
    for phone in &room.phones {
        assert_eq!(events(&phone.take(), "voteClosed").len(), 1);
    }
    let again = room.wall.send(json!({"method": "vote.wall.close"}));
    assert_eq!(head(&again[0]), (404, "pollNotFound"));
    room.pass(61_000);
    assert!(
        room.wall.take().is_empty(),
        "the deadline does not close it again"
    );
}

#[test]
fn results_are_for_the_callers_room_only() {
    let room = Room::new();
    let poll = room.open(60);
    let stranger = room.host.connect(token(json!("w-8"), "wall", "other"));
    let frames = stranger.send(json!({"method": "vote.wall.result", "poll": poll}));
    assert_eq!(head(&frames[0]), (404, "pollNotFound"));
}

#[test]
fn an_open_poll_survives_a_hot_swap() {
    let room = Room::on(host_on(&[]), 3);
    let poll = room.open(5);
    room.cast(0, json!(0));
    room.pass(1000);
    room.host
        .swap::<Vote>(json!({}))
        .expect("the new version is accepted");
    room.cast(1, json!(1));
    assert_eq!(
        head(&room.cast(0, json!(1))),
        (403, "alreadyVoted"),
        "votes before the swap count"
    );
    room.pass(1000);
    room.host.swap::<Vote>(json!({})).expect("and another");
    room.cast(2, json!(1));
    room.pass(4000);
    let wall = room.wall.take();
    let closed = events(&wall, "voteClosed");
    assert_eq!(closed.len(), 1, "{wall:?}");
    assert_eq!(closed[0]["param"]["poll"], poll);
    assert_eq!(closed[0]["param"]["counts"], json!([1, 2, 0]));
}

#[test]
fn an_open_poll_survives_a_restart_on_the_same_database() {
    let (dir, url) = shared_sqlite("restart");
    let before = Room::on(host_on(&[("default", &url)]), 2);
    let poll = before.open(10);
    before.cast(0, json!(2));
    before.host.shutdown();
    drop(before);
    pass(&[], 3000);
    // A new host: nothing in memory, the sweep re-armed by on_start.
    let after = Room::on(host_on(&[("default", &url)]), 2);
    assert_eq!(head(&after.cast(0, json!(0))), (403, "alreadyVoted"));
    after.cast(1, json!(2));
    after.pass(7000);
    assert!(
        events(&after.wall.take(), "voteClosed").is_empty(),
        "open until 00:00:11"
    );
    after.pass(1000);
    let closed = events(&after.wall.take(), "voteClosed")
        .into_iter()
        .cloned()
        .collect::<Vec<_>>();
    assert_eq!(closed.len(), 1);
    assert_eq!(closed[0]["param"]["poll"], poll);
    assert_eq!(closed[0]["param"]["counts"], json!([0, 0, 2]));
    drop(after);
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn two_hosts_on_one_database_close_a_poll_once() {
    let (dir, url) = shared_sqlite("two-hosts");
    let one = Room::on(host_on(&[("default", &url)]), 2);
    let two = Room::on(host_on(&[("default", &url)]), 2);
    let poll = one.open(5);
    one.cast(0, json!(0));
    two.cast(1, json!(1)); // uid 2 on host two; uid 1 on host two is uid 1 too:
    assert_eq!(head(&two.cast(0, json!(2))), (403, "alreadyVoted"));
    pass(&[&one.host, &two.host], 8000);
    let mut closes = Vec::new();
    let mut tallies = Vec::new();
    for room in [&one, &two] {
        let frames = room.wall.take();
        closes.extend(events(&frames, "voteClosed").into_iter().cloned());
        tallies.extend(events(&frames, "voteTally").into_iter().cloned());
    }
    assert_eq!(closes.len(), 1, "one claimant announces: {closes:?}");
    assert_eq!(closes[0]["param"]["poll"], poll);
    assert_eq!(closes[0]["param"]["counts"], json!([1, 1, 0]));
    assert_eq!(
        tallies.len(),
        1,
        "one tally for the one change: {tallies:?}"
    );
    drop((one, two));
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn config_and_databases_are_checked_at_load() {
    let host = TestHost::new();
    let unknown = host.load::<Vote>(json!({"tables": "x"}));
    assert!(
        unknown
            .as_ref()
            .is_err_and(|e| e.contains("modules.Vote.tables")),
        "{unknown:?}"
    );
    let missing = host.load::<Vote>(json!({"database": "nope"}));
    assert!(
        missing.as_ref().is_err_and(|e| e.contains("nope")),
        "{missing:?}"
    );
    let bad = host.load::<Vote>(json!({"database": 7}));
    assert!(
        bad.as_ref()
            .is_err_and(|e| e.contains("modules.Vote.database")),
        "{bad:?}"
    );
}

#[test]
fn a_database_away_at_start_answers_503_and_is_used_once_back() {
    // A SQLite "file" that is a directory cannot be opened: Unreachable.
    let (dir, _) = shared_sqlite("away");
    let db = dir.join("vote.sqlite3");
    std::fs::create_dir_all(&db).expect("a directory in the way");
    let host = host_on(&[("default", &format!("sqlite://{}", db.display()))]);
    assert!(
        host.log()
            .iter()
            .any(|l| l.message.contains("retried on use")),
        "{:?}",
        host.log()
    );
    let room = Room::on(host, 1);
    let frames = room
        .wall
        .send(json!({"method": "vote.wall.open", "title": "t",
        "options": ["a", "b"], "seconds": 30}));
    assert_eq!(head(&frames[0]), (503, "unavailable"));
    std::fs::remove_dir(&db).expect("the way cleared");
    assert_eq!(room.open(30), 1, "the tables are made on first use");
    drop(room);
    let _ = std::fs::remove_dir_all(dir);
}

/// The store's claims, called directly: a second module on the same kit host (so the
/// same database) whose actions run one claim each and answer whether it won.
struct Probe {
    store: Store,
}

impl Module for Probe {
    fn info() -> ModuleInfo {
        ModuleInfo::new("Probe", "1.0.0").controller("Store", &["claimClose", "claimTally"])
    }

    fn new(host: Host, _config: Value) -> Result<Self, String> {
        Ok(Probe {
            store: Store::new(host, "default")?,
        })
    }

    fn call(&self, request: Request) -> BoxFuture<Outcome> {
        let store = self.store.clone();
        Box::pin(async move {
            let m = request.message();
            let int = |name: &str| m[name].as_i64().unwrap_or_default();
            let won = match request.action.as_str() {
                "claimClose" => store.claim_close(int("poll")).await?,
                _ => {
                    store
                        .claim_tally(int("poll"), int("last"), int("total"), int("now"))
                        .await?
                }
            };
            Ok(Some(Envelope::ok("claimed", "").with_param(&json!(won))))
        })
    }
}

/// Whether the probe's claim won.
fn claim(probe: &Conn, action: &str, fields: Value) -> bool {
    let mut message = fields;
    message["method"] = json!(format!("probe.store.{action}"));
    let frames = probe.send(message);
    frames[0]["param"]
        .as_bool()
        .expect("a claim answers true or false")
}

#[test]
fn a_close_is_claimed_once() {
    let room = Room::new();
    room.host.load::<Probe>(json!({})).expect("the probe loads");
    let probe = room.host.connect(token(json!("p"), "probe", "demo"));
    let poll = room.open(60);
    assert!(claim(&probe, "claimClose", json!({"poll": poll})));
    assert!(
        !claim(&probe, "claimClose", json!({"poll": poll})),
        "only the first caller wins"
    );
    // The screen's close finds it closed: not found, and nothing sent.
    let frames = room.wall.send(json!({"method": "vote.wall.close"}));
    assert_eq!(head(&frames[0]), (404, "pollNotFound"));
    assert!(events(&room.phones[0].take(), "voteClosed").is_empty());
}

#[test]
fn a_tally_is_claimed_once_a_second_at_most() {
    let room = Room::new();
    room.host.load::<Probe>(json!({})).expect("the probe loads");
    let probe = room.host.connect(token(json!("p"), "probe", "demo"));
    let poll = room.open(60);
    let at = |last: i64, now: i64| json!({"poll": poll, "last": last, "total": 1, "now": now});
    assert!(claim(&probe, "claimTally", at(0, 5_000)));
    assert!(
        !claim(&probe, "claimTally", at(0, 6_000)),
        "read before the other claim: stale"
    );
    assert!(
        !claim(&probe, "claimTally", at(5_000, 5_999)),
        "less than a second later"
    );
    assert!(claim(&probe, "claimTally", at(5_000, 6_000)));
    assert!(claim(&probe, "claimClose", json!({"poll": poll})));
    assert!(
        !claim(&probe, "claimTally", at(6_000, 9_000)),
        "none once closed"
    );
}
