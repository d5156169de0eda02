//! The Vote module (examples/vote, built as its README says) through real hosts that
//! also run Live: a poll end to end on SQLite, MariaDB and PostgreSQL; a thousand
//! phones voting at once; a hot swap and a restart with a poll open; two hosts on one
//! database and one Redis.

use std::{
    path::Path,
    sync::Arc,
    time::{Duration, Instant, SystemTime, UNIX_EPOCH},
};

use mswoole_tests::{
    json, live, paths, Client, Envelope, MariaDb, Postgres, RedisServer, TestHost, Token, Value,
    ACK,
};
use tokio::sync::{Barrier, Semaphore};

/// The plugin's file name in `plugins/`.
const VOTE_FILE: &str = "libmswoole_vote.so";

/// The events a room member may get at any time, between an action and its reply.
const PUSHED: [&str; 3] = ["voteOpened", "voteTally", "voteClosed"];

/// How late a deadline close may be: the sweep arms a one-shot timer for `closes_at`,
/// so it is milliseconds late; a second covers a busy test machine.
const CLOSE_SLACK: Duration = Duration::from_millis(1000);

/// A host directory serving Index, Live and Vote, with `extra` config.
fn vote_builder(extra: &str) -> mswoole_tests::HostBuilder {
    TestHost::builder()
        .config(extra)
        .plugin_copy(VOTE_FILE, &paths::vote_plugin())
}

/// Unix time in milliseconds.
fn now_ms() -> i64 {
    let since = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("the clock is after 1970");
    i64::try_from(since.as_millis()).expect("milliseconds fit in i64")
}

/// A room member (a screen or a phone) that keeps every push it heard, with the time
/// it arrived, so a test can count them and see how far apart they came.
struct Member {
    client: Client,
    /// `(unix ms on arrival, envelope)` of every push (see [`PUSHED`]).
    heard: Vec<(i64, Envelope)>,
}

impl Member {
    fn new(client: Client) -> Member {
        Member {
            client,
            heard: Vec::new(),
        }
    }

    /// A screen of room `code` that joined Live's wall set.
    async fn wall(host: &TestHost, id: &str, code: &str) -> Member {
        Member::new(live::wall_in(host, id, code, "screen").await)
    }

    /// A phone user of room `code` that joined Live's user set.
    async fn phone(host: &TestHost, id: &str, code: &str) -> Member {
        Member::new(live::user_in(host, id, code, "phone").await)
    }

    /// Keeps a frame if it is a push; returns it otherwise.
    fn keep(&mut self, envelope: Envelope) -> Option<Envelope> {
        if envelope.status() == 200 && PUSHED.contains(&envelope.event()) {
            self.heard.push((now_ms(), envelope));
            None
        } else {
            Some(envelope)
        }
    }

    /// Sends `{"method": method, ...fields}`; returns the reply (the ack and pushes that
    /// arrive meanwhile are set aside).
    async fn act(&mut self, method: &str, fields: Value) -> Envelope {
        let mut message = fields;
        message["method"] = json!(method);
        self.client.send_json(&message).await;
        loop {
            let text = self.client.recv_text().await;
            if text == ACK {
                continue;
            }
            if let Some(reply) = self.keep(Envelope::parse(&text)) {
                reply.assert_key_order();
                return reply;
            }
        }
    }

    /// Acts and asserts a 200 reply with `event`; returns its param.
    async fn ok(&mut self, method: &str, fields: Value, event: &str) -> Value {
        let reply = self.act(method, fields).await;
        reply.assert_is(200, event);
        reply.expect_param().clone()
    }

    /// Acts and asserts the refusal `status` `event`.
    async fn refused(&mut self, method: &str, fields: Value, status: u64, event: &str) {
        let reply = self.act(method, fields).await;
        reply.assert_is(status, event);
        assert_eq!(reply.param(), None, "a refusal has no param: {reply:?}");
    }

    /// The pushes with `event` heard so far.
    fn pushes(&self, event: &str) -> Vec<(i64, Value)> {
        self.heard
            .iter()
            .filter(|(_, e)| e.event() == event)
            .map(|(at, e)| (*at, e.expect_param().clone()))
            .collect()
    }

    /// Receives until `n` pushes of `event` were heard (within `within`); returns them.
    async fn hear(&mut self, event: &str, n: usize, within: Duration) -> Vec<(i64, Value)> {
        let deadline = Instant::now() + within;
        while self.pushes(event).len() < n {
            let left = deadline.saturating_duration_since(Instant::now());
            let Some(frame) = self.client.recv_within(left).await else {
                panic!(
                    "{n} {event} not heard within {within:?}; heard {:?}",
                    self.heard
                );
            };
            let mswoole_tests::Frame::Text(text) = frame else {
                panic!("expected a text frame, got {frame:?}");
            };
            if let Some(other) = self.keep(Envelope::parse(&text)) {
                panic!("expected pushes only, got {other:?}");
            }
        }
        self.pushes(event)
    }

    /// Keeps every push that arrives within `quiet`.
    async fn listen(&mut self, quiet: Duration) {
        let deadline = Instant::now() + quiet;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let Some(frame) = self.client.recv_within(left).await else {
                return;
            };
            let mswoole_tests::Frame::Text(text) = frame else {
                panic!("expected a text frame, got {frame:?}");
            };
            if let Some(other) = self.keep(Envelope::parse(&text)) {
                panic!("expected pushes only, got {other:?}");
            }
        }
    }
}

/// Opens a poll from `wall`; returns `voteOpenSuccess`'s param after checking it.
async fn open(wall: &mut Member, title: &str, options: &[&str], seconds: i64) -> Value {
    let before = now_ms();
    let param = wall
        .ok(
            "vote.wall.open",
            json!({"title": title, "options": options, "seconds": seconds}),
            "voteOpenSuccess",
        )
        .await;
    let closes_at = param["closes_at"]
        .as_i64()
        .expect("closes_at in unix seconds");
    // At least `seconds` from the open, rounded up to a whole second.
    assert!(
        closes_at * 1000 >= before + seconds * 1000
            && closes_at * 1000 < now_ms() + seconds * 1000 + 1000,
        "closes_at {closes_at} for a {seconds} s poll opened at {before} ms"
    );
    assert_eq!(
        param["options"].as_array().map(Vec::len),
        Some(options.len())
    );
    assert!(param["poll"].as_i64().is_some(), "{param}");
    param
}

/// Waits for the one `voteClosed` of `poll` at each member, and checks it came at
/// `closes_at` (not before, within [`CLOSE_SLACK`]) with these counts; then listens a
/// while longer to see no second one.
async fn closes_on_time(members: &mut [&mut Member], opened: &Value, counts: Value) {
    let closes_ms = opened["closes_at"].as_i64().expect("closes_at") * 1000;
    let wait = Duration::from_millis(u64::try_from(closes_ms - now_ms()).unwrap_or(0))
        + CLOSE_SLACK
        + Duration::from_secs(2);
    let total: i64 = counts
        .as_array()
        .expect("counts")
        .iter()
        .filter_map(Value::as_i64)
        .sum();
    let expected = json!({"poll": opened["poll"], "title": opened["title"],
        "options": opened["options"], "counts": counts, "total": total});
    for member in members.iter_mut() {
        let closed = member.hear("voteClosed", 1, wait).await;
        let (at, param) = &closed[0];
        assert_eq!(param, &expected);
        assert!(*at >= closes_ms, "closed {} ms early", closes_ms - at);
        let late = u64::try_from(at - closes_ms).unwrap_or(0);
        assert!(
            Duration::from_millis(late) < CLOSE_SLACK,
            "closed {late} ms after closes_at ({closes_ms}); heard {:?}",
            member.heard
        );
    }
    for member in members.iter_mut() {
        member.listen(Duration::from_millis(1500)).await;
        assert_eq!(
            member.pushes("voteClosed").len(),
            1,
            "once: {:?}",
            member.heard
        );
        let last_tally = member.pushes("voteTally").last().map(|(at, _)| *at);
        let closed_at = member.pushes("voteClosed")[0].0;
        assert!(
            last_tally.is_none_or(|at| at <= closed_at),
            "no tally after the result: {:?}",
            member.heard
        );
    }
}

/// A poll from its opening to its result in room `code` of `host`: the whole
/// protocol of examples/vote/README.md, on whatever database `host` gives Vote.
async fn poll_end_to_end(host: &TestHost, code: &str) {
    let mut wall = Member::wall(host, "w-1", code).await;
    let mut phones = Vec::new();
    for id in 1..=3 {
        phones.push(Member::phone(host, &id.to_string(), code).await);
    }
    // Refusals before a poll exists, in the contract's order.
    phones[0]
        .refused(
            "vote.user.cast",
            json!({"option": "0"}),
            401,
            "badParameter",
        )
        .await;
    phones[0]
        .refused("vote.user.cast", json!({"option": 0}), 404, "pollNotFound")
        .await;
    wall.refused(
        "vote.user.cast",
        json!({"option": 0}),
        403,
        "mustBeWechatUser",
    )
    .await;
    phones[0]
        .refused("vote.wall.open", json!({}), 403, "mustBeWall")
        .await;
    wall.refused("vote.wall.close", json!({}), 404, "pollNotFound")
        .await;

    let opened = open(&mut wall, "Tea or <coffee>?", &["tea", "coffee", "both"], 5).await;
    let poll = opened["poll"].clone();
    // Strings come back as the host escaped them.
    assert_eq!(opened["title"], "Tea or &lt;coffee&gt;?");
    let opened = json!({"poll": poll, "title": "Tea or &lt;coffee&gt;?",
        "options": ["tea", "coffee", "both"], "closes_at": opened["closes_at"]});
    for member in phones.iter_mut().chain([&mut wall]) {
        let heard = member.hear("voteOpened", 1, Duration::from_secs(2)).await;
        assert_eq!(heard[0].1, opened);
    }
    wall.refused(
        "vote.wall.open",
        json!({"title": "again", "options": ["a", "b"], "seconds": 60}),
        403,
        "pollOpen",
    )
    .await;

    for (phone, option) in phones.iter_mut().zip([0, 2, 2]) {
        let cast = phone
            .ok(
                "vote.user.cast",
                json!({"option": option}),
                "voteCastSuccess",
            )
            .await;
        assert_eq!(cast, json!({"poll": poll, "option": option}));
    }
    phones[0]
        .refused("vote.user.cast", json!({"option": 1}), 403, "alreadyVoted")
        .await;
    phones[1]
        .refused("vote.user.cast", json!({"option": 3}), 401, "badParameter")
        .await;
    let tallies = wall.hear("voteTally", 1, Duration::from_secs(3)).await;
    let (_, last) = tallies.last().expect("a tally");
    assert_eq!(last["poll"], poll);
    let result = wall
        .ok("vote.wall.result", json!({"poll": poll}), "voteResult")
        .await;
    assert_eq!(
        result,
        json!({"poll": poll, "title": opened["title"], "options": opened["options"],
            "counts": [1, 0, 2], "total": 3, "open": true})
    );

    let mut members: Vec<&mut Member> = phones.iter_mut().collect();
    members.push(&mut wall);
    closes_on_time(&mut members, &opened, json!([1, 0, 2])).await;
    let result = wall
        .ok("vote.wall.result", json!({"poll": poll}), "voteResult")
        .await;
    assert_eq!(result["open"], false);
    assert_eq!(result["total"], 3);
    phones[2]
        .refused("vote.user.cast", json!({"option": 0}), 404, "pollNotFound")
        .await;

    // The next poll, closed by the screen.
    let next = open(&mut wall, "Again?", &["yes", "no"], 60).await;
    phones[0]
        .ok("vote.user.cast", json!({"option": 1}), "voteCastSuccess")
        .await;
    let closed = wall
        .ok("vote.wall.close", json!({}), "voteCloseSuccess")
        .await;
    assert_eq!(closed, json!({"poll": next["poll"]}));
    for member in phones.iter_mut().chain([&mut wall]) {
        let heard = member.hear("voteClosed", 2, Duration::from_secs(2)).await;
        assert_eq!(heard[1].1["counts"], json!([0, 1]));
    }
    wall.refused("vote.wall.close", json!({}), 404, "pollNotFound")
        .await;
}

#[tokio::test]
async fn a_poll_end_to_end_on_sqlite() {
    // No [modules.Vote]: the built-in `default` database, SQLite in the runtime directory.
    let host = vote_builder("").start().await;
    poll_end_to_end(&host, "lite").await;
    assert!(
        host.dir().runtime_dir().join("mswoole.sqlite3").is_file(),
        "the polls are in the default SQLite database"
    );
}

#[tokio::test]
async fn a_poll_end_to_end_on_mariadb() {
    let server = MariaDb::shared();
    let url = server.database("vote");
    let name = url.rsplit('/').next().expect("a database name").to_string();
    let host = vote_builder(&format!(
        "[databases.main]\nurl = \"{url}\"\nprefix = \"kfw_\"\n[modules.Vote]\ndatabase = \"main\""
    ))
    .start()
    .await;
    poll_end_to_end(&host, "maria").await;
    // MSwoole's table prefix applies; the rows are the database's.
    assert_eq!(
        server.sql(&format!(
            "SELECT COUNT(*) FROM `{name}`.kfw_vote_poll WHERE open = 0 AND open_code IS NULL"
        )),
        "2"
    );
    assert_eq!(
        server.sql(&format!("SELECT COUNT(*) FROM `{name}`.kfw_vote_ballot")),
        "4"
    );
}

#[tokio::test]
async fn a_poll_end_to_end_on_postgresql() {
    let url = Postgres::shared().database("vote");
    let host = vote_builder(&format!(
        "[databases.pg]\nurl = \"{url}\"\n[modules.Vote]\ndatabase = \"pg\""
    ))
    .start()
    .await;
    poll_end_to_end(&host, "postgres").await;
}

/// Mints `mswoole token` for each phone id, a few processes at a time.
fn phone_tokens(code: &str, ids: std::ops::RangeInclusive<u64>) -> Vec<String> {
    let ids: Vec<u64> = ids.collect();
    let chunk = ids.len().div_ceil(8).max(1);
    std::thread::scope(|scope| {
        let workers: Vec<_> = ids
            .chunks(chunk)
            .map(|part| {
                scope.spawn(move || {
                    part.iter()
                        .map(|id| Token::new(&id.to_string(), "wechatUser", code, "phone").mint())
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        workers
            .into_iter()
            .flat_map(|worker| worker.join().expect("a minting thread"))
            .collect()
    })
}

/// What a phone got for its vote and for its second vote.
struct Cast {
    option: i64,
    first: Envelope,
    second: Envelope,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_thousand_phones_vote_at_once_and_each_vote_counts_once() {
    const PHONES: u64 = 1000;
    let host = vote_builder("").start().await;
    let mut wall = Member::wall(&host, "w-1", "crowd").await;
    let opened = open(&mut wall, "Best talk?", &["one", "two", "three"], 120).await;
    let poll = opened["poll"].clone();
    let tokens = tokio::task::spawn_blocking(|| phone_tokens("crowd", 1..=PHONES))
        .await
        .expect("tokens are minted");

    // Every phone connects, then all vote at the same moment, then all vote again.
    let host = Arc::new(host);
    let barrier = Arc::new(Barrier::new(tokens.len()));
    let connecting = Arc::new(Semaphore::new(100));
    let mut phones = Vec::new();
    for (n, token) in tokens.into_iter().enumerate() {
        let (host, barrier, connecting) = (host.clone(), barrier.clone(), connecting.clone());
        let option = i64::try_from(n % 3).expect("small");
        phones.push(tokio::spawn(async move {
            let permit = connecting
                .acquire()
                .await
                .expect("the semaphore stays open");
            let mut phone = host.connect(&format!("/live?auth={token}")).await;
            drop(permit);
            phone.set_timeout(Duration::from_secs(30));
            barrier.wait().await;
            let first = phone
                .call(&json!({"method": "vote.user.cast", "option": option}))
                .await;
            let second = phone
                .call(&json!({"method": "vote.user.cast", "option": (option + 1) % 3}))
                .await;
            Cast {
                option,
                first,
                second,
            }
        }));
    }
    let started = Instant::now();
    let mut counts = [0_i64; 3];
    for phone in phones {
        let cast = phone.await.expect("a phone's task");
        cast.first.assert_is(200, "voteCastSuccess");
        assert_eq!(
            cast.first.expect_param(),
            &json!({"poll": poll, "option": cast.option})
        );
        cast.second.assert_is(403, "alreadyVoted");
        counts[usize::try_from(cast.option).expect("an index")] += 1;
    }
    eprintln!(
        "{PHONES} phones voted twice each in {:?} (from the moment all were connected to the last answer)",
        started.elapsed()
    );
    assert_eq!(counts, [334, 333, 333]);

    let result = wall
        .ok("vote.wall.result", json!({"poll": poll}), "voteResult")
        .await;
    assert_eq!(result["counts"], json!(counts));
    assert_eq!(result["total"], 1000);
    wall.ok("vote.wall.close", json!({}), "voteCloseSuccess")
        .await;
    let closed = wall.hear("voteClosed", 1, Duration::from_secs(2)).await;
    assert_eq!(closed[0].1["counts"], json!(counts));
    assert_eq!(closed[0].1["total"], 1000);
    // The tallies the screen saw only ever grew, and never came less than a second apart.
    let tallies = wall.pushes("voteTally");
    assert!(!tallies.is_empty(), "the screen saw the votes come in");
    for pair in tallies.windows(2) {
        assert!(
            pair[1].1["total"].as_i64() >= pair[0].1["total"].as_i64(),
            "{tallies:?}"
        );
    }
}

/// Replaces the plugin file the way cargo does (removed, then a complete new file
/// renamed into place: a new inode), then asks the host to reload.
fn swap_in(host: &TestHost, from: &Path) {
    let to = host.dir().plugins_dir().join(VOTE_FILE);
    let _ = std::fs::remove_file(&to);
    let partial = to.with_extension("so.partial");
    std::fs::copy(from, &partial).expect("the new copy is written beside the plugin");
    std::fs::rename(&partial, &to).expect("and renamed into place");
    host.console("reload", &[]).assert_success();
}

#[tokio::test]
async fn an_open_poll_closes_on_time_with_every_vote_across_a_hot_swap() {
    let host = vote_builder("").start().await;
    let mut wall = Member::wall(&host, "w-1", "swap").await;
    let mut phones = Vec::new();
    for id in 1..=4 {
        phones.push(Member::phone(&host, &id.to_string(), "swap").await);
    }
    let opened = open(&mut wall, "Swap?", &["a", "b"], 6).await;
    phones[0]
        .ok("vote.user.cast", json!({"option": 0}), "voteCastSuccess")
        .await;
    phones[1]
        .ok("vote.user.cast", json!({"option": 1}), "voteCastSuccess")
        .await;

    let mark = host.output().len();
    swap_in(&host, &paths::vote_plugin());
    host.wait_for_line_after(mark, "Vote's second generation", |line| {
        line.contains("plugin loaded") && line.contains("Vote") && line.contains("generation=2")
    })
    .await;
    phones[0]
        .refused("vote.user.cast", json!({"option": 1}), 403, "alreadyVoted")
        .await;
    phones[2]
        .ok("vote.user.cast", json!({"option": 1}), "voteCastSuccess")
        .await;
    // And once more, while the poll runs.
    let mark = host.output().len();
    swap_in(&host, &paths::vote_plugin());
    host.wait_for_line_after(mark, "Vote's third generation", |line| {
        line.contains("plugin loaded") && line.contains("Vote") && line.contains("generation=3")
    })
    .await;
    phones[3]
        .ok("vote.user.cast", json!({"option": 1}), "voteCastSuccess")
        .await;
    let mut members: Vec<&mut Member> = phones.iter_mut().collect();
    members.push(&mut wall);
    closes_on_time(&mut members, &opened, json!([1, 3])).await;
}

#[tokio::test]
async fn an_open_poll_closes_on_time_after_a_restart() {
    let host = vote_builder("").start().await;
    let mut wall = Member::wall(&host, "w-1", "restart").await;
    let mut alice = Member::phone(&host, "1", "restart").await;
    let opened = open(&mut wall, "Restart?", &["a", "b"], 10).await;
    alice
        .ok("vote.user.cast", json!({"option": 1}), "voteCastSuccess")
        .await;
    drop((wall, alice));
    host.console("stop", &[]).assert_success();
    let dir = host.into_dir();
    // The same config, runtime directory and default SQLite database; nothing in memory.
    let host = dir.start().await;
    let mut wall = Member::wall(&host, "w-1", "restart").await;
    let mut alice = Member::phone(&host, "1", "restart").await;
    let mut bob = Member::phone(&host, "2", "restart").await;
    alice
        .refused("vote.user.cast", json!({"option": 0}), 403, "alreadyVoted")
        .await;
    bob.ok("vote.user.cast", json!({"option": 1}), "voteCastSuccess")
        .await;
    assert!(
        now_ms() < opened["closes_at"].as_i64().expect("closes_at") * 1000,
        "the restart took longer than the poll: make the poll longer"
    );
    closes_on_time(
        &mut [&mut wall, &mut alice, &mut bob],
        &opened,
        json!([0, 2]),
    )
    .await;
}

#[tokio::test]
async fn two_hosts_on_one_database_close_a_poll_once_and_space_their_tallies() {
    let redis = RedisServer::start();
    let url = MariaDb::shared().database("vote_two");
    let config = |node: &str| {
        format!(
            "{}\n[databases.main]\nurl = \"{url}\"\n[modules.Vote]\ndatabase = \"main\"",
            redis.registry_toml(node)
        )
    };
    let a = vote_builder(&config("node-a")).start().await;
    let b = vote_builder(&config("node-b")).start().await;
    let mut wall_a = Member::wall(&a, "w-a", "both").await;
    let mut wall_b = Member::wall(&b, "w-b", "both").await;
    let phone_a = Member::phone(&a, "1", "both").await;
    let phone_b = Member::phone(&b, "2", "both").await;
    // One open poll per room across both hosts.
    let opened = open(&mut wall_a, "Two hosts?", &["a", "b"], 15).await;
    wall_b
        .refused(
            "vote.wall.open",
            json!({"title": "t", "options": ["a", "b"], "seconds": 30}),
            403,
            "pollOpen",
        )
        .await;
    // The screens listen while votes come in on both hosts, a quarter of a second
    // apart, and both hosts sweep: each push is timed as it arrives.
    let closes_ms = opened["closes_at"].as_i64().expect("closes_at") * 1000;
    let listening = Duration::from_millis(u64::try_from(closes_ms - now_ms()).unwrap_or(0))
        + Duration::from_secs(2);
    let listen = |mut wall: Member| {
        tokio::spawn(async move {
            wall.listen(listening).await;
            wall
        })
    };
    let listeners = [wall_a, wall_b, phone_a, phone_b].map(listen);
    let mut expected = [0_i64; 2];
    for id in 3..=14 {
        let (host, other) = if id % 2 == 0 { (&a, &b) } else { (&b, &a) };
        let mut phone = live::connect(host, &id.to_string(), "wechatUser", "both", "p").await;
        let option = id % 2;
        let reply = phone
            .call(&json!({"method": "vote.user.cast", "option": option}))
            .await;
        reply.assert_is(200, "voteCastSuccess");
        expected[usize::try_from(option).expect("an index")] += 1;
        // The same uid on the other host is the same voter.
        let mut again = live::connect(other, &id.to_string(), "wechatUser", "both", "p").await;
        again
            .call(&json!({"method": "vote.user.cast", "option": option}))
            .await
            .assert_is(403, "alreadyVoted");
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    assert!(
        now_ms() < closes_ms,
        "the votes took longer than the poll: make it longer"
    );
    let mut members = Vec::new();
    for listener in listeners {
        members.push(listener.await.expect("a member listened"));
    }
    let [wall_a, wall_b, phone_a, phone_b] = &mut members[..] else {
        unreachable!("four members listened")
    };
    let mut members = [wall_a, wall_b, phone_a, phone_b];
    closes_on_time(&mut members, &opened, json!(expected)).await;
    for wall in &members[..2] {
        let tallies = wall.pushes("voteTally");
        assert!(
            tallies.len() >= 2,
            "tallies while votes came in: {tallies:?}"
        );
        for pair in tallies.windows(2) {
            let apart = pair[1].0 - pair[0].0;
            // Claimed at least 1000 ms apart in the database; delivery adds jitter of
            // a few milliseconds either way.
            assert!(apart >= 950, "tallies {apart} ms apart: {tallies:?}");
        }
    }
    assert_eq!(
        members[0].pushes("voteTally").len(),
        members[1].pushes("voteTally").len(),
        "each tally reaches both screens, from whichever host claimed it"
    );
}
