//! README.md "Resumable sessions" across hosts on one Redis: a session that dropped on
//! one node resumes on another with its fd, rooms, identity and every frame, including
//! frames sent to it while it moved; a stopping node's sessions move to the others.

use std::time::Duration;

use mswoole_tests::{
    eventually, http_get, json,
    live::{self, Speaks},
    phone::{
        assert_one_resume_won, connections, fd_of, holders, push, resume, resume_phone, start,
        wait_connections, Phone,
    },
    Client, RedisServer, TestHost, Token, Value,
};

/// Two hosts on one private Redis.
async fn two_hosts(redis: &RedisServer, a_extra: &str) -> (TestHost, TestHost) {
    let a = TestHost::start(&format!("{}\n{a_extra}", redis.registry_toml("node-a"))).await;
    let b = TestHost::start(&redis.registry_toml("node-b")).await;
    (a, b)
}

/// A phone of room `code` on `host`, joined; returns it and its fd.
async fn phone_in(host: &TestHost, token: &str) -> (Phone, String) {
    let mut phone = start(host, token).await;
    let reply = phone.call(json!({"method": "live.user.join"})).await;
    assert_eq!(reply["event"], "userJoinSuccess", "{reply}");
    let fd = fd_of(&mut phone).await;
    (phone, fd)
}

/// Reads the next wall broadcast; returns what it says.
async fn heard(phone: &mut Phone) -> String {
    let frame = phone.next().await;
    assert_eq!(frame["event"], "wallSayBroadcast", "{frame}");
    frame["param"]["say"]
        .as_str()
        .unwrap_or_else(|| panic!("no say: {frame}"))
        .to_string()
}

async fn say(wall: &mut Client, text: &str) {
    wall.ok("live.wall.say", json!({ "say": text }), "wallSaySuccess")
        .await;
}

fn members(redis: &RedisServer, key: &str) -> String {
    redis.cli(&["SMEMBERS", &format!("mswoole:{key}")])
}

#[tokio::test]
async fn a_phone_resumes_on_another_host_with_its_fd_its_room_and_every_frame() {
    let redis = RedisServer::start();
    let (a, b) = two_hosts(&redis, "").await;
    let token = Token::new("41", "wechatUser", "rx", "a").mint();
    let (mut phone, fd) = phone_in(&a, &token).await;
    let mut wall = live::wall_in(&b, "w-41", "rx", "screen").await;
    say(&mut wall, "one").await;
    assert_eq!(heard(&mut phone).await, "one");

    // Dropped on A; meanwhile a wall message from B and a push on A.
    let (session, last) = (phone.session.clone(), phone.last);
    drop(phone.client);
    wait_connections(&a, 0).await;
    say(&mut wall, "two").await;
    assert_eq!(push(&a, &fd, "away", json!(1)).await, 1);

    // Someone else cannot take it from B.
    let stranger = Token::new("42", "wechatUser", "rx", "b").mint();
    let (other, first) = resume(&b, &stranger, &session, &last.to_string()).await;
    assert_eq!(
        (first["event"].as_str(), first["info"].as_str()),
        (Some("sessionNotResumed"), Some("identity")),
        "{first}"
    );
    drop(other);

    let (mut phone, missed) = resume_phone(&b, &token, session, last).await;
    assert_eq!(
        missed, 2,
        "the wall message and the push sent while it was away"
    );
    // Each once. They came by different paths (the wall's through Redis from B, the push
    // on A itself), so they may have reached the session in either order.
    let mut missed_frames = Vec::new();
    for _ in 0..2 {
        let frame = phone.next().await;
        missed_frames.push(match frame["event"].as_str() {
            Some("wallSayBroadcast") => format!("say {}", frame["param"]["say"]),
            Some(event) => format!("{event} {}", frame["param"]),
            None => panic!("not an envelope: {frame}"),
        });
    }
    missed_frames.sort();
    assert_eq!(missed_frames, ["away 1", "say \"two\""]);
    assert_eq!(fd_of(&mut phone).await, fd, "the same fd on the other host");

    // It lives on B now: the registry says so, and frames from both hosts reach it.
    assert_eq!(
        redis.cli(&["HGET", "mswoole:WEBSOCKET_FDNODE", &fd]),
        "node-b"
    );
    assert!(members(&redis, "WEBSOCKET_NODEFDS_node-b").contains(&fd));
    assert!(!members(&redis, "WEBSOCKET_NODEFDS_node-a").contains(&fd));
    assert!(members(&redis, "LIVE_USER_ROOM_rx").contains(&fd));
    wait_connections(&b, 2).await;
    assert_eq!(connections(&a).await, 0);
    say(&mut wall, "three").await;
    assert_eq!(heard(&mut phone).await, "three");
    push(&a, &fd, "from-a", json!(2)).await;
    assert_eq!(
        phone.next().await["event"],
        "from-a",
        "A sends frames on to B"
    );
    phone
        .client
        .expect_silence(Duration::from_millis(300))
        .await;
    let moved = http_get(a.manager, "/metrics").await.text();
    assert!(moved.contains("mswoole_sessions_moved_total 1"), "{moved}");

    // Ended on B: its close sequence runs there and leaves nothing behind.
    phone.client.close(1000).await;
    eventually("its identity record gone", Duration::from_secs(3), || {
        let gone = redis
            .cli(&["HGET", "mswoole:WEBSOCKET_FDINFO", &fd])
            .is_empty();
        async move { gone }
    })
    .await;
    assert!(!members(&redis, "LIVE_USER_ROOM_rx").contains(&fd));
    assert_eq!(redis.cli(&["HGET", "mswoole:WEBSOCKET_FDNODE", &fd]), "");
    assert_eq!(redis.cli(&["HGET", "mswoole:WEBSOCKET_FDINFO", &fd]), "");
}

#[tokio::test]
async fn frames_sent_while_a_session_moves_arrive_once_and_in_order() {
    const SAYS: usize = 60;
    let redis = RedisServer::start();
    let (a, b) = two_hosts(&redis, "").await;
    let token = Token::new("43", "wechatUser", "ry", "a").mint();
    let (mut phone, _) = phone_in(&a, &token).await;
    let mut wall_a = live::wall_in(&a, "w-43a", "ry", "on-a").await;
    let mut wall_b = live::wall_in(&b, "w-43b", "ry", "on-b").await;
    // Both walls say their numbers without a pause while the phone drops on A and
    // resumes on B.
    let walls = async {
        for n in 0..SAYS {
            let (on_a, on_b) = (format!("a{n}"), format!("b{n}"));
            tokio::join!(say(&mut wall_a, &on_a), say(&mut wall_b, &on_b));
        }
    };
    let (b, token) = (&b, &token);
    let mover = async move {
        let mut heard_before = Vec::new();
        while heard_before.len() < 10 {
            heard_before.push(heard(&mut phone).await);
        }
        let Phone {
            client,
            session,
            last,
        } = phone;
        drop(client);
        let (resumed, _) = resume_phone(b, token, session, last).await;
        (heard_before, resumed)
    };
    let ((), (mut heard_all, mut resumed)) = tokio::join!(walls, mover);
    while heard_all.len() < 2 * SAYS {
        heard_all.push(heard(&mut resumed).await);
    }
    resumed
        .client
        .expect_silence(Duration::from_millis(300))
        .await;
    for wall in ["a", "b"] {
        let said: Vec<&String> = heard_all
            .iter()
            .filter(|say| say.starts_with(wall))
            .collect();
        let expected: Vec<String> = (0..SAYS).map(|n| format!("{wall}{n}")).collect();
        assert_eq!(
            said,
            expected.iter().collect::<Vec<_>>(),
            "every message of wall {wall} once, in order"
        );
    }
}

#[tokio::test]
async fn a_stopping_hosts_phones_resume_on_another_host_during_and_after_its_drain() {
    let redis = RedisServer::start();
    let (mut a, b) = two_hosts(&redis, "[shutdown]\ndrain_s = 4").await;
    let tokens = [
        Token::new("51", "wechatUser", "rz", "one").mint(),
        Token::new("52", "wechatUser", "rz", "two").mint(),
    ];
    let (one, one_fd) = phone_in(&a, &tokens[0]).await;
    let (two, two_fd) = phone_in(&a, &tokens[1]).await;
    let mut wall = live::wall_in(&b, "w-51", "rz", "screen").await;

    a.signal("TERM");
    // The drain closes one phone now and the other 2 s later; the first comes back at
    // once, while A still drains: its session moves.
    let mut phones = [(one, one_fd, &tokens[0]), (two, two_fd, &tokens[1])];
    let [(one, ..), (two, ..)] = &mut phones;
    let first = tokio::select! {
        _ = one.client.expect_close(1012) => 0,
        _ = two.client.expect_close(1012) => 1,
    };
    phones.swap(0, first);
    let [(early, early_fd, early_token), (mut late, late_fd, late_token)] = phones;
    let (session, last) = (early.session.clone(), early.last);
    let (mut early, missed) = resume_phone(&b, early_token, session, last).await;
    assert_eq!(missed, 0);
    assert_eq!(fd_of(&mut early).await, early_fd);

    // The second comes back only after A has exited: B adopted its session at the end of
    // A's drain, with what was sent to it meanwhile.
    late.client.expect_close(1012).await;
    say(&mut wall, "while-away").await;
    let status = a.wait_exit(Duration::from_secs(20)).await;
    assert_eq!(status.code(), Some(0), "exit status {status}");
    let output = a.output();
    assert!(
        output.contains("detached sessions handed over to other nodes"),
        "{output}"
    );
    say(&mut wall, "after-exit").await;
    assert_eq!(heard(&mut early).await, "while-away");
    assert_eq!(heard(&mut early).await, "after-exit");
    let (session, last) = (late.session.clone(), late.last);
    let (mut late, missed) = resume_phone(&b, late_token, session, last).await;
    assert_eq!(missed, 2);
    assert_eq!(heard(&mut late).await, "while-away");
    assert_eq!(heard(&mut late).await, "after-exit");
    assert_eq!(fd_of(&mut late).await, late_fd);

    // Both are still in the room, on B; A left nothing else behind.
    let room = members(&redis, "LIVE_USER_ROOM_rz");
    assert!(
        room.contains(&early_fd) && room.contains(&late_fd),
        "{room}"
    );
    assert_eq!(members(&redis, "WEBSOCKET_NODEFDS_node-a"), "");
    let on_b = members(&redis, "WEBSOCKET_NODEFDS_node-b");
    assert!(
        on_b.contains(&early_fd) && on_b.contains(&late_fd),
        "{on_b}"
    );
}

#[tokio::test]
async fn a_resume_on_another_host_takes_over_a_half_open_connection() {
    let redis = RedisServer::start();
    let (a, b) = two_hosts(&redis, "").await;
    let token = Token::new("61", "wechatUser", "rw", "a").mint();
    let (mut phone, fd) = phone_in(&a, &token).await;
    // The old socket stays open on A (A cannot tell it is dead); the phone resumes on B.
    let (client, first) = resume(&b, &token, &phone.session, &phone.last.to_string()).await;
    assert_eq!(first["event"], "sessionResumed", "{first}");
    let mut resumed = Phone {
        client,
        session: phone.session.clone(),
        last: phone.last,
    };
    match phone.client.rx.recv_within(Duration::from_secs(5)).await {
        Some(mswoole_tests::Frame::Ended(_)) => {}
        other => panic!("the old socket should end without a close frame, got {other:?}"),
    }
    // No close sequence ran: same fd, same room, served by B.
    assert_eq!(fd_of(&mut resumed).await, fd);
    assert!(members(&redis, "LIVE_USER_ROOM_rw").contains(&fd));
    assert_eq!((connections(&a).await, connections(&b).await), (0, 1));
}

#[tokio::test]
async fn a_session_nobody_holds_is_unknown_on_every_host() {
    let redis = RedisServer::start();
    let (_a, b) = two_hosts(&redis, "").await;
    let token = Token::new("71", "wechatUser", "rv", "a").mint();
    let (_client, first): (Client, Value) =
        resume(&b, &token, "0123456789abcdef0123456789abcdef", "0").await;
    assert_eq!(
        (first["event"].as_str(), first["info"].as_str()),
        (Some("sessionNotResumed"), Some("unknown")),
        "{first}"
    );
}

#[tokio::test]
async fn of_two_resumes_racing_on_two_hosts_one_holds_the_session() {
    let redis = RedisServer::start();
    let (a, b) = two_hosts(&redis, "").await;
    let token = Token::new("81", "wechatUser", "ru", "a").mint();
    let (phone, fd) = phone_in(&a, &token).await;
    let Phone {
        client,
        session,
        last,
    } = phone;
    drop(client);
    wait_connections(&a, 0).await;
    let last = last.to_string();
    let ((mut on_a, first_a), (mut on_b, first_b)) = tokio::join!(
        resume(&a, &token, &session, &last),
        resume(&b, &token, &session, &last)
    );
    assert_one_resume_won(&first_a, &first_b);
    // Whatever the order, exactly one socket holds the session now, on either host: a
    // resume answers once the session is its.
    push(&a, &fd, "who", json!(0)).await;
    let holders = holders([&mut on_a, &mut on_b], "who").await;
    assert_eq!(holders, 1, "exactly one socket gets the session's frames");
    assert!(members(&redis, "LIVE_USER_ROOM_ru").contains(&fd));
}
