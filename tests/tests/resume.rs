//! README.md "Resumable sessions", on one host (memory registry): `resume=1`, `seq` on
//! every envelope, a resume replays every missed envelope once and in order, or says why
//! not; what detaches and what ends a session; the window; the bounds; takeover.

use std::time::Duration;

use mswoole_tests::{
    eventually, http_get, json,
    live::{self, Speaks},
    phone::{
        assert_one_resume_won, broadcast_reach, connections, fd_of, holders, push, resume,
        resume_phone, start, wait_connections, Phone,
    },
    Frame, RedisServer, TestHost, Token, Value, VECTOR_WALL, VECTOR_WECHAT_USER,
};

/// How long a condition the host reaches at once may take under load.
const SOON: Duration = Duration::from_secs(3);

/// `mswoole_frames_sent_total`: frames the host wrote to sockets.
async fn frames_sent(host: &TestHost) -> u64 {
    let metrics = http_get(host.manager, "/metrics").await.text();
    metrics
        .lines()
        .find_map(|line| line.strip_prefix("mswoole_frames_sent_total "))
        .and_then(|count| count.trim().parse().ok())
        .unwrap_or(0)
}

#[tokio::test]
async fn every_envelope_is_stamped_and_a_resume_replays_the_missed_ones_once_in_order() {
    let host = TestHost::start("").await;
    let mut phone = start(&host, VECTOR_WECHAT_USER).await;
    let fd = fd_of(&mut phone).await;
    for n in 0..3 {
        assert_eq!(push(&host, &fd, "before", json!(n)).await, 1);
        assert_eq!(phone.next().await["param"], n);
    }
    // A reset-free drop without a close frame (the phone went to the background): detached.
    let last = phone.last;
    drop(phone.client);
    let Phone { session, .. } = phone;
    wait_connections(&host, 0).await;
    // Frames sent meanwhile reach the session and count.
    for n in 0..5 {
        assert_eq!(
            push(&host, &fd, "away", json!(n)).await,
            1,
            "a detached session counts in local"
        );
    }
    let (mut phone, missed) = resume_phone(&host, VECTOR_WECHAT_USER, session, last).await;
    assert_eq!(missed, 5, "the five frames sent while away");
    for n in 0..5 {
        let frame = phone.next().await;
        assert_eq!(
            (frame["event"].as_str(), &frame["param"]),
            (Some("away"), &json!(n))
        );
    }
    phone
        .client
        .expect_silence(Duration::from_millis(300))
        .await;
    // Same fd, and live traffic goes on with the next seq.
    assert_eq!(fd_of(&mut phone).await, fd);
    assert_eq!(push(&host, &fd, "after", json!(1)).await, 1);
    assert_eq!(phone.next().await["event"], "after");

    let metrics = http_get(host.manager, "/metrics").await.text();
    assert!(
        metrics.contains("mswoole_sessions_resumed_total 1"),
        "{metrics}"
    );
}

#[tokio::test]
async fn frames_written_just_before_a_drop_are_replayed_exactly_once() {
    let host = TestHost::start("").await;
    let mut phone = start(&host, VECTOR_WECHAT_USER).await;
    let fd = fd_of(&mut phone).await;
    // Written to the socket and on their way, but the phone drops before it reads them:
    // the host has written them (they are in the session's written ring, not its queue).
    let written = frames_sent(&host).await;
    for n in 0..4 {
        push(&host, &fd, "inflight", json!(n)).await;
    }
    eventually("the four frames written to the socket", SOON, || async {
        frames_sent(&host).await >= written + 4
    })
    .await;
    let last = phone.last;
    let session = phone.session.clone();
    drop(phone.client);
    wait_connections(&host, 0).await;
    let (mut phone, missed) = resume_phone(&host, VECTOR_WECHAT_USER, session, last).await;
    assert_eq!(missed, 4, "written before the drop, never read");
    for n in 0..4 {
        assert_eq!(phone.next().await["param"], n);
    }
    phone
        .client
        .expect_silence(Duration::from_millis(300))
        .await;
}

#[tokio::test]
async fn the_reply_to_a_call_in_flight_at_the_drop_is_replayed() {
    let host = TestHost::start("").await;
    let mut phone = start(&host, VECTOR_WECHAT_USER).await;
    phone
        .client
        .send_json(&json!({"method": "index.debug.sleep", "ms": 500}))
        .await;
    assert_eq!(phone.next().await["event"], "receiveMessage");
    // The phone drops while the module works; it comes back at once.
    let Phone {
        client,
        session,
        last,
    } = phone;
    drop(client);
    let (mut phone, missed) = resume_phone(&host, VECTOR_WECHAT_USER, session, last).await;
    assert_eq!(missed, 1, "the reply that came after the drop");
    let reply = phone.next().await;
    assert_eq!(
        (reply["event"].as_str(), &reply["param"]),
        (Some("slept"), &json!(500))
    );
    phone
        .client
        .expect_silence(Duration::from_millis(300))
        .await;
}

#[tokio::test]
async fn a_resume_says_why_not_and_starts_a_fresh_session() {
    let host = TestHost::start("").await;
    let mut phone = start(&host, VECTOR_WECHAT_USER).await;
    let fd = fd_of(&mut phone).await;
    let session = phone.session.clone();
    drop(phone.client);
    wait_connections(&host, 0).await;

    let refused = |first: &Value, reason: &str| {
        assert_eq!(first["event"], "sessionNotResumed", "{first}");
        assert_eq!(first["info"], reason, "{first}");
        assert_eq!(first["param"]["seq"], 0, "{first}");
        let fresh = first["param"]["session"].as_str().unwrap_or_default();
        assert!(
            fresh.len() >= 32 && fresh != session,
            "a fresh session: {first}"
        );
    };
    // A forged id.
    let (_c, first) = resume(
        &host,
        VECTOR_WECHAT_USER,
        "00112233445566778899aabbccddeeff",
        "0",
    )
    .await;
    refused(&first, "unknown");
    // Another identity: refused, and the session is not disturbed.
    let (_c, first) = resume(&host, VECTOR_WALL, &session, "2").await;
    refused(&first, "identity");
    let other_user = Token::new("2", "wechatUser", "demo", "bob").mint();
    let (_c, first) = resume(&host, &other_user, &session, "2").await;
    refused(&first, "identity");
    // `last` not a number: `invalid`, and the session ends (docs/PROTOCOL.md, "Resumable sessions").
    let (_c, first) = resume(&host, VECTOR_WECHAT_USER, &session, "x").await;
    refused(&first, "invalid");
    assert_eq!(
        push(&host, &fd, "gone", json!(0)).await,
        0,
        "the session ended"
    );
    let (_c, first) = resume(&host, VECTOR_WECHAT_USER, &session, "2").await;
    refused(&first, "unknown");
    // `last` above the highest seq: the same.
    let mut phone = start(&host, VECTOR_WECHAT_USER).await;
    let fd = fd_of(&mut phone).await;
    let session = phone.session.clone();
    let connected = connections(&host).await;
    drop(phone.client);
    wait_connections(&host, connected - 1).await;
    let (_c, first) = resume(&host, VECTOR_WECHAT_USER, &session, "99").await;
    refused(&first, "invalid");
    assert_eq!(
        push(&host, &fd, "gone", json!(0)).await,
        0,
        "the session ended"
    );

    let metrics = http_get(host.manager, "/metrics").await.text();
    for (reason, count) in [("unknown", 2), ("identity", 2), ("invalid", 2)] {
        let line = format!("mswoole_sessions_not_resumed_total{{reason=\"{reason}\"}} {count}");
        assert!(metrics.contains(&line), "{line} missing:\n{metrics}");
    }
}

#[tokio::test]
async fn a_close_frame_ends_the_session_and_its_id_is_not_resumable_again() {
    let host = TestHost::start("").await;
    let token = Token::new("7", "wechatUser", "r1", "a").mint();
    let mut phone = start(&host, &token).await;
    let reply = phone.call(json!({"method": "live.user.join"})).await;
    assert_eq!(reply["event"], "userJoinSuccess", "{reply}");
    assert_eq!(broadcast_reach(&host, "LIVE_USER_ROOM_r1").await, 1);
    phone.client.close(1000).await;
    let session = phone.session.clone();
    // The close sequence ran at once: out of the room.
    eventually("the closed phone out of its room", SOON, || async {
        broadcast_reach(&host, "LIVE_USER_ROOM_r1").await == 0
    })
    .await;
    let (_c, first) = resume(&host, &token, &session, "2").await;
    assert_eq!(
        (first["event"].as_str(), first["info"].as_str()),
        (Some("sessionNotResumed"), Some("unknown")),
        "{first}"
    );
}

#[tokio::test]
async fn a_detached_session_stays_in_its_room_until_the_window_passes_then_leaves_it() {
    let host = TestHost::start("[recovery]\nwindow_s = 2").await;
    let token = Token::new("8", "wechatUser", "r2", "a").mint();
    let mut phone = start(&host, &token).await;
    let reply = phone.call(json!({"method": "live.user.join"})).await;
    assert_eq!(reply["event"], "userJoinSuccess", "{reply}");
    let session = phone.session.clone();
    drop(phone.client);
    wait_connections(&host, 0).await;
    // Still in the room, its frames kept: no onClose yet.
    assert_eq!(broadcast_reach(&host, "LIVE_USER_ROOM_r2").await, 1);
    let detached = std::time::Instant::now();
    // The window passes: onClose runs (Live.User takes it out of the room).
    eventually(
        "the window's end taking the phone out of its room",
        Duration::from_secs(5),
        || async { broadcast_reach(&host, "LIVE_USER_ROOM_r2").await == 0 },
    )
    .await;
    assert!(
        detached.elapsed() >= Duration::from_millis(1500),
        "it left its room {:?} after the drop, before its 2 s window",
        detached.elapsed()
    );
    let (_c, first) = resume(&host, &token, &session, "2").await;
    assert_eq!(
        (first["event"].as_str(), first["info"].as_str()),
        (Some("sessionNotResumed"), Some("expired")),
        "{first}"
    );
}

#[tokio::test]
async fn a_detached_session_past_its_bounds_ends_and_its_resume_says_overflow() {
    let host = TestHost::start("[recovery]\nmax_frames = 3").await;
    let mut phone = start(&host, VECTOR_WECHAT_USER).await;
    let fd = fd_of(&mut phone).await;
    let session = phone.session.clone();
    let last = phone.last;
    drop(phone.client);
    wait_connections(&host, 0).await;
    for n in 0..3 {
        assert_eq!(push(&host, &fd, "kept", json!(n)).await, 1);
    }
    // The fourth would go past recovery.max_frames: the session ends rather than lose it.
    push(&host, &fd, "over", json!(3)).await;
    eventually("the overflowing session to end", SOON, || async {
        push(&host, &fd, "probe", json!(0)).await == 0
    })
    .await;
    // The log says what happened: a detached session, not a slow client's socket.
    host.wait_for_line("the overflow", |line| {
        line.contains("detached session: its frames went past recovery.max_frames")
    })
    .await;
    let (_c, first) = resume(&host, VECTOR_WECHAT_USER, &session, &last.to_string()).await;
    assert_eq!(
        (first["event"].as_str(), first["info"].as_str()),
        (Some("sessionNotResumed"), Some("overflow")),
        "{first}"
    );
}

#[tokio::test]
async fn a_resume_takes_over_a_half_open_connection_without_its_close_sequence() {
    let host = TestHost::start("").await;
    let token = Token::new("9", "wechatUser", "r3", "a").mint();
    let mut phone = start(&host, &token).await;
    let reply = phone.call(json!({"method": "live.user.join"})).await;
    assert_eq!(reply["event"], "userJoinSuccess", "{reply}");
    let fd = fd_of(&mut phone).await;
    // The old socket stays open (the host cannot tell it is dead); a new one resumes.
    let (client, first) = resume(&host, &token, &phone.session, &phone.last.to_string()).await;
    assert_eq!(first["event"], "sessionResumed", "{first}");
    assert_eq!(first["param"]["missed"], 0, "{first}");
    // The old socket is dropped without a close frame.
    match phone.client.rx.recv_within(Duration::from_secs(5)).await {
        Some(Frame::Ended(_)) => {}
        other => panic!("the old socket should end without a close frame, got {other:?}"),
    }
    let mut resumed = Phone {
        client,
        session: phone.session.clone(),
        last: phone.last,
    };
    // No close sequence: still in the room, same fd, frames reach the new socket.
    assert_eq!(broadcast_reach(&host, "LIVE_USER_ROOM_r3").await, 1);
    assert_eq!(resumed.next().await["event"], "probe");
    assert_eq!(fd_of(&mut resumed).await, fd);
    assert_eq!(connections(&host).await, 1);
}

#[tokio::test]
async fn of_two_racing_resumes_one_holds_the_session() {
    let host = TestHost::start("").await;
    let mut phone = start(&host, VECTOR_WECHAT_USER).await;
    let fd = fd_of(&mut phone).await;
    let (session, last) = (phone.session.clone(), phone.last.to_string());
    drop(phone.client);
    wait_connections(&host, 0).await;
    let ((mut a, first_a), (mut b, first_b)) = tokio::join!(
        resume(&host, VECTOR_WECHAT_USER, &session, &last),
        resume(&host, VECTOR_WECHAT_USER, &session, &last)
    );
    assert_one_resume_won(&first_a, &first_b);
    // Whatever the order, exactly one socket holds the session now: a resume answers once
    // the session is its (a takeover's old socket has let it go).
    assert_eq!(push(&host, &fd, "who", json!(0)).await, 1);
    let holders = holders([&mut a, &mut b], "who").await;
    assert_eq!(holders, 1, "exactly one socket gets the session's frames");
}

#[tokio::test]
async fn without_recovery_resume_is_ignored() {
    let host = TestHost::start("[recovery]\nenabled = false").await;
    let mut client = host
        .connect(&format!("/live?auth={VECTOR_WECHAT_USER}&resume=1"))
        .await;
    // No sessionStart, no seq: the ack and the reply byte for byte.
    client
        .send_json(&json!({"method": "index.index.index"}))
        .await;
    client.expect_ack().await;
    assert_eq!(client.rx.recv_text().await, mswoole_tests::SUCCESS);
}

#[tokio::test]
async fn clients_without_resume_see_the_same_bytes_and_resumable_ones_only_add_seq() {
    let host = TestHost::start("").await;
    let mut plain = host.connect_user().await;
    let mut phone = start(&host, VECTOR_WECHAT_USER).await;
    plain
        .send_json(&json!({"method": "index.index.index"}))
        .await;
    plain.expect_ack().await;
    assert_eq!(plain.rx.recv_text().await, mswoole_tests::SUCCESS);
    let reply = host.manager(&json!({"method": "say", "say": "hi"})).await;
    reply.assert_is(200, "saySuccess");
    let said = r#"{"status":200,"event":"serverBroadcast","info":"收到服务广播内容","param":"hi"}"#;
    assert_eq!(plain.rx.recv_text().await, said);
    assert_eq!(
        phone.client.rx.recv_text().await,
        format!("{},\"seq\":1}}", &said[..said.len() - 1])
    );
    phone.last = 1;
    let reply = phone.call(json!({"method": "index.index.index"})).await;
    assert_eq!(reply["event"], "success");
}

#[tokio::test]
async fn the_drain_detaches_sessions_and_the_stop_ends_them_before_onshutdown() {
    let mut host = TestHost::start("[shutdown]\ndrain_s = 0").await;
    let mut phone = start(&host, VECTOR_WECHAT_USER).await;
    fd_of(&mut phone).await;
    let plain = host.connect_user().await;
    host.signal("TERM");
    phone.client.expect_close(1012).await;
    drop(plain);
    let status = host.wait_exit(Duration::from_secs(10)).await;
    assert_eq!(status.code(), Some(0), "exit status {status}");
    let output = host.output();
    assert!(
        output.contains("detached sessions ended"),
        "the stop ends detached sessions:\n{output}"
    );
}

#[tokio::test]
async fn on_redis_a_dropped_phone_keeps_its_room_and_resumes_with_every_wall_message() {
    let redis = RedisServer::start();
    let host = TestHost::start(&redis.registry_toml("node-a")).await;
    let token = Token::new("11", "wechatUser", "rr", "a").mint();
    let mut phone = start(&host, &token).await;
    let reply = phone.call(json!({"method": "live.user.join"})).await;
    assert_eq!(reply["event"], "userJoinSuccess", "{reply}");
    let fd = fd_of(&mut phone).await;
    let mut wall = live::wall_in(&host, "w-1", "rr", "screen").await;
    wall.ok("live.wall.say", json!({"say": "one"}), "wallSaySuccess")
        .await;
    assert_eq!(phone.next().await["param"]["say"], "one");
    let (session, last) = (phone.session.clone(), phone.last);
    drop(phone.client);
    wait_connections(&host, 1).await;
    let members = redis.cli(&["SMEMBERS", "mswoole:LIVE_USER_ROOM_rr"]);
    assert!(
        members.contains(&fd),
        "still in the room while detached: {members}"
    );
    for say in ["two", "three"] {
        wall.ok("live.wall.say", json!({ "say": say }), "wallSaySuccess")
            .await;
    }
    let (mut phone, missed) = resume_phone(&host, &token, session, last).await;
    assert_eq!(missed, 2);
    for say in ["two", "three"] {
        let frame = phone.next().await;
        assert_eq!(
            (frame["event"].as_str(), frame["param"]["say"].as_str()),
            (Some("wallSayBroadcast"), Some(say)),
            "{frame}"
        );
    }
    assert_eq!(fd_of(&mut phone).await, fd);
    phone
        .client
        .expect_silence(Duration::from_millis(300))
        .await;
}

#[tokio::test]
async fn a_stopping_host_with_no_other_node_ends_its_sessions_and_leaves_no_ghost() {
    // Nobody could adopt the sessions (README.md, "Resumable sessions"): the stopping
    // host ends them (close sequence) before it goes, and a resume on a node that starts
    // later answers `unknown` with a fresh session.
    let redis = RedisServer::start();
    let mut a = TestHost::start(&format!(
        "{}\n[shutdown]\ndrain_s = 0",
        redis.registry_toml("node-a")
    ))
    .await;
    let token = Token::new("31", "wechatUser", "rs", "a").mint();
    let mut phone = start(&a, &token).await;
    let reply = phone.call(json!({"method": "live.user.join"})).await;
    assert_eq!(reply["event"], "userJoinSuccess", "{reply}");
    a.signal("TERM");
    phone.client.expect_close(1012).await;
    let status = a.wait_exit(Duration::from_secs(10)).await;
    assert_eq!(status.code(), Some(0), "exit status {status}");
    let members = redis.cli(&["SMEMBERS", "mswoole:LIVE_USER_ROOM_rs"]);
    assert!(members.is_empty(), "the room keeps a ghost: {members}");
    let b = TestHost::start(&redis.registry_toml("node-b")).await;
    let (_client, first) = resume(&b, &token, &phone.session, &phone.last.to_string()).await;
    assert_eq!(
        (first["event"].as_str(), first["info"].as_str()),
        (Some("sessionNotResumed"), Some("unknown")),
        "{first}"
    );
}
