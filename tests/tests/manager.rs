//! docs/PROTOCOL.md "Manager commands": the manager port, one JSON command per connection.

use std::time::Duration;

use mswoole_tests::{
    connect, connect_with_headers, eventually, json, Frame, RawClient, RawFrame, RedisServer,
    TestHost, Token, VECTOR_WALL,
};

/// How long a condition the host reaches at once may take under load.
const SOON: Duration = Duration::from_secs(3);

const QUIET: Duration = Duration::from_millis(300);

/// A host on a private Redis, so a test can read the registry itself (`redis-cli`)
/// instead of inferring it from what the host reports: the manager counts local
/// connections only, and a stale record would not show in those counts.
async fn redis_host(redis: &RedisServer) -> TestHost {
    TestHost::start(&redis.registry_toml("node-a")).await
}

#[tokio::test]
async fn status_reports_pid_connections_plugins_and_nodes() {
    let host = TestHost::start("").await;
    let mut client = host.connect_user().await;
    client.fd().await;
    let reply = host.manager(&json!({"method": "status"})).await;
    reply.assert_is(200, "statusSuccess").assert_key_order();
    let status = reply.expect_param();
    assert_eq!(status["pid"], json!(host.pid), "{status}");
    assert_eq!(status["connections"], json!(1), "{status}");
    assert!(status["nodes"].is_array(), "{status}");
    assert!(
        status["uptime_s"].is_u64() && status["memory_kb"].is_u64(),
        "{status}"
    );
    assert!(status["node"].is_string(), "{status}");
    assert_eq!(status["refusals"], json!([]), "{status}");
    let plugins = status["plugins"].as_array().expect("plugins is an array");
    for name in ["Index", "Live"] {
        let plugin = plugins
            .iter()
            .find(|plugin| plugin["name"] == json!(name))
            .unwrap_or_else(|| panic!("{name} not listed: {status}"));
        assert_eq!(plugin["version"], json!("1.0.0"), "{plugin}");
        assert!(plugin["generation"].is_u64(), "{plugin}");
        assert!(plugin["file"].is_string(), "{plugin}");
        assert!(
            plugin["loaded_at"].is_string() || plugin["loaded_at"].is_u64(),
            "{plugin}"
        );
    }
}

#[tokio::test]
async fn the_manager_answers_once_then_closes() {
    let host = TestHost::start("").await;
    let mut manager = connect(host.manager, "/")
        .await
        .expect("the manager upgrades");
    manager.send_json(&json!({"method": "status"})).await;
    manager.expect_envelope(200, "statusSuccess").await;
    match manager.recv().await {
        Frame::Close(_) | Frame::Ended(_) => {}
        other => panic!("expected the manager to close, got {other:?}"),
    }
}

#[tokio::test]
async fn say_reaches_every_client() {
    let host = TestHost::start("").await;
    let mut user = host.connect_user().await;
    let mut wall = host.connect(&format!("/?auth={VECTOR_WALL}")).await;
    let reply = host
        .manager(&json!({"method": "say", "say": "hello everyone"}))
        .await;
    reply.assert_is(200, "saySuccess");
    assert_eq!(reply.param(), Some(&json!({"local": 2, "nodes": 0})));
    let expected = r#"{"status":200,"event":"serverBroadcast","info":"收到服务广播内容","param":"hello everyone"}"#;
    assert_eq!(user.recv_text().await, expected);
    assert_eq!(wall.recv_text().await, expected);

    let reply = host
        .manager(&json!({"method": "say", "say": {"title": "news", "items": [1, 2]}}))
        .await;
    reply.assert_is(200, "saySuccess");
    for client in [&mut user, &mut wall] {
        let broadcast = client.expect_envelope(200, "serverBroadcast").await;
        assert_eq!(
            broadcast.param(),
            Some(&json!({"title": "news", "items": [1, 2]}))
        );
        client.expect_silence(QUIET).await;
    }
}

#[tokio::test]
async fn push_by_fd_reaches_that_connection_only() {
    let host = TestHost::start("").await;
    let mut target = host.connect_user().await;
    let mut bystander = host.connect_user().await;
    let fd = target.fd().await;
    let reply = host
        .manager(&json!({"method": "push", "fd": fd, "status": 200, "event": "notice", "info": "hi", "param": {"x": 1}}))
        .await;
    reply.assert_is(200, "pushSuccess");
    assert_eq!(reply.param(), Some(&json!({"local": 1, "nodes": 0})));
    assert_eq!(
        target.recv_text().await,
        r#"{"status":200,"event":"notice","info":"hi","param":{"x":1}}"#
    );
    bystander.expect_silence(QUIET).await;

    let reply = host
        .manager(&json!({"method": "push", "fd": "no-such-fd", "status": 200, "event": "notice", "info": "hi"}))
        .await;
    reply.assert_is(200, "pushSuccess");
    assert_eq!(reply.param(), Some(&json!({"local": 0, "nodes": 0})));
}

#[tokio::test]
async fn push_by_uid_reaches_the_phone_user() {
    let host = TestHost::start("").await;
    let token = Token::wechat_user("42").mint();
    let mut user = host.connect(&format!("/live?auth={token}")).await;
    let mut wall = host.connect(&format!("/?auth={VECTOR_WALL}")).await;
    let reply = host
        .manager(&json!({"method": "push", "uid": "42", "status": 200, "event": "notice", "info": "for 42"}))
        .await;
    reply.assert_is(200, "pushSuccess");
    assert_eq!(reply.param(), Some(&json!({"local": 1, "nodes": 0})));
    assert_eq!(
        user.recv_text().await,
        r#"{"status":200,"event":"notice","info":"for 42"}"#
    );

    // An offline uid, and a wall's id (only phone users are mapped by uid), reach nobody.
    for uid in ["43", "w-7"] {
        let reply = host
            .manager(&json!({"method": "push", "uid": uid, "status": 200, "event": "notice", "info": "nobody"}))
            .await;
        reply.assert_is(200, "pushSuccess");
        assert_eq!(
            reply.param(),
            Some(&json!({"local": 0, "nodes": 0})),
            "uid {uid}"
        );
    }
    user.expect_silence(QUIET).await;
    wall.expect_silence(QUIET).await;
}

#[tokio::test]
async fn broadcast_to_a_set_nobody_joined_reaches_nobody() {
    let host = TestHost::start("").await;
    let mut client = host.connect_user().await;
    let reply = host
        .manager(&json!({"method": "broadcast", "key": "LIVE_USER_ROOM_nobody", "status": 200, "event": "x", "info": "y"}))
        .await;
    reply.assert_is(200, "broadcastSuccess");
    assert_eq!(
        reply.param(),
        Some(&json!({"local": 0, "nodes": 0, "members": 0}))
    );
    client.expect_silence(QUIET).await;
}

#[tokio::test]
async fn broadcast_reaches_the_members_of_a_set_and_a_closed_member_leaves_it() {
    let redis = RedisServer::start();
    let host = redis_host(&redis).await;
    let mut member = host.connect_user().await;
    let fd = member.fd().await;
    let mut wall = host.connect(&format!("/?auth={VECTOR_WALL}")).await;
    let joined = member.call(&json!({"method": "live.user.join"})).await;
    joined.assert_is(200, "userJoinSuccess");
    // Members of the room's user set get it, the big screen does not.
    let command = json!({"method": "broadcast", "key": "LIVE_USER_ROOM_demo", "status": 200, "event": "x", "info": "y", "param": [1]});
    let reply = host.manager(&command).await;
    reply.assert_is(200, "broadcastSuccess");
    assert_eq!(
        reply.param(),
        Some(&json!({"local": 1, "nodes": 0, "members": 1}))
    );
    assert_eq!(
        member.recv_text().await,
        r#"{"status":200,"event":"x","info":"y","param":[1]}"#
    );
    wall.expect_silence(QUIET).await;
    let room = "mswoole:LIVE_USER_ROOM_demo";
    assert_eq!(redis.cli(&["SISMEMBER", room, &fd]), "1");
    // A dropped phone leaves the room (its close sequence): the set itself, not only
    // the local count a broadcast reports, loses it.
    member.close(1000).await;
    let _ = member.recv().await;
    eventually("the closed member leaving the room's set", SOON, || {
        let done = redis.cli(&["SISMEMBER", room, &fd]) == "0";
        async move { done }
    })
    .await;
    let reply = host.manager(&command).await;
    assert_eq!(
        reply.param(),
        Some(&json!({"local": 0, "nodes": 0, "members": 0}))
    );
}

#[tokio::test]
async fn an_unknown_command_is_400_unknown_command() {
    let host = TestHost::start("").await;
    host.manager(&json!({"method": "dance"}))
        .await
        .assert_is(400, "unknownCommand");
}

#[tokio::test]
async fn bad_json_is_400_bad_request() {
    let host = TestHost::start("").await;
    host.manager_text("{not json")
        .await
        .assert_is(400, "badRequest");
}

#[tokio::test]
async fn with_a_manager_token_commands_must_carry_it() {
    let host = TestHost::start("[manager]\ntoken = \"s3cret\"").await;
    for command in [
        json!({"method": "status"}),
        json!({"method": "status", "token": "wrong"}),
    ] {
        let reply = host.manager(&command).await;
        assert_eq!(reply.status(), 403, "reply to {command}: {reply:?}");
        assert!(!reply.event().is_empty());
    }
    let reply = host
        .manager(&json!({"method": "status", "token": "s3cret"}))
        .await;
    reply.assert_is(200, "statusSuccess");
}

#[tokio::test]
async fn a_handshake_with_an_origin_header_is_refused() {
    let host = TestHost::start("").await;
    match connect_with_headers(host.manager, "/", &[("Origin", "http://example.com")]).await {
        Ok(_) => panic!("the manager upgraded a handshake with an Origin header"),
        Err(refused) => assert_eq!(refused.status, 403, "{refused:?}"),
    }
}

#[tokio::test]
async fn reload_answers_200_and_clients_stay_connected() {
    let host = TestHost::builder()
        .plugin_copy(
            "libswap_fixture.so",
            &mswoole_tests::paths::fixture("variants/libswap_v1.so"),
        )
        .start()
        .await;
    let mut client = host.connect_user().await;
    let mark = host.output().len();
    let reply = host.manager(&json!({"method": "reload"})).await;
    reply.assert_is(200, "reloadSuccess");
    // The module's own line: onReload ran, not only the host's note about the reload.
    host.wait_for_line_after(mark, "the module's onReload", |line| {
        line.contains("onReload v1")
    })
    .await;
    let reply = client.call(&json!({"method": "index.index.index"})).await;
    reply.assert_is(200, "success");
    let status = host.manager(&json!({"method": "status"})).await;
    assert_eq!(status.expect_param()["connections"], json!(1));
}

#[tokio::test]
async fn stop_closes_every_client_with_1012_and_exits_0() {
    // drain_s = 0: every client at once (README.md, "Stopping"); tests/tests/drain.rs spreads them.
    let mut host = TestHost::start("[shutdown]\ndrain_s = 0").await;
    let mut user = host.connect_user().await;
    let mut wall = host.connect(&format!("/?auth={VECTOR_WALL}")).await;
    assert!(host.dir().pid_file().is_file(), "no pid file while running");
    let reply = host.manager(&json!({"method": "stop"})).await;
    reply.assert_is(200, "stopSuccess");
    user.expect_close(1012).await;
    wall.expect_close(1012).await;
    let status = host.wait_exit(Duration::from_secs(10)).await;
    assert_eq!(status.code(), Some(0), "exit status {status}");
    assert!(
        !host.dir().pid_file().exists(),
        "the pid file is still there"
    );
}

#[tokio::test]
async fn push_sends_param_only_when_it_is_not_null() {
    let host = TestHost::start("").await;
    let mut client = host.connect_user().await;
    let fd = client.fd().await;
    for (param, expected) in [
        (json!(null), r#"{"status":200,"event":"e","info":"i"}"#),
        (
            json!(0),
            r#"{"status":200,"event":"e","info":"i","param":0}"#,
        ),
        (
            json!(""),
            r#"{"status":200,"event":"e","info":"i","param":""}"#,
        ),
        (
            json!([]),
            r#"{"status":200,"event":"e","info":"i","param":[]}"#,
        ),
    ] {
        let command = json!({"method": "push", "fd": fd, "status": 200, "event": "e", "info": "i", "param": param});
        host.manager(&command).await.assert_is(200, "pushSuccess");
        assert_eq!(client.recv_text().await, expected, "param {param}");
    }
}

/// Pushes to `uid`; returns how many local connections it reached.
async fn push_to_uid(host: &TestHost, uid: &str) -> serde_json::Value {
    let command =
        json!({"method": "push", "uid": uid, "status": 200, "event": "notice", "info": uid});
    let reply = host.manager(&command).await;
    reply.assert_is(200, "pushSuccess");
    reply.expect_param()["local"].clone()
}

#[tokio::test]
async fn the_newest_connection_of_a_uid_wins_and_an_old_close_does_not_unmap_it() {
    let redis = RedisServer::start();
    let host = redis_host(&redis).await;
    let uid_to_fd = |uid: &str| redis.cli(&["HGET", "mswoole:WEBSOCKET_UIDTOFD", uid]);
    let fd_info = |fd: &str| redis.cli(&["HGET", "mswoole:WEBSOCKET_FDINFO", fd]);
    let token = Token::wechat_user("42").mint();
    let mut old = host.connect(&format!("/live?auth={token}")).await;
    let old_fd = old.fd().await;
    let mut new = host.connect(&format!("/live?auth={token}")).await;
    let new_fd = new.fd().await;
    assert_eq!(
        uid_to_fd("42"),
        new_fd,
        "the newest connection owns the uid"
    );
    assert_eq!(push_to_uid(&host, "42").await, json!(1));
    new.expect_envelope(200, "notice").await;
    old.expect_silence(QUIET).await;

    old.close(1000).await;
    let _ = old.recv().await;
    // Its close sequence has run once its identity record is gone: only then can the
    // mapping be checked (a sleep could look before the sequence reached it).
    eventually("the old connection's records deleted", SOON, || {
        let done = fd_info(&old_fd).is_empty();
        async move { done }
    })
    .await;
    assert_eq!(
        uid_to_fd("42"),
        new_fd,
        "the old close left the mapping alone"
    );
    assert_eq!(push_to_uid(&host, "42").await, json!(1));
    new.expect_envelope(200, "notice").await;

    new.close(1000).await;
    let _ = new.recv().await;
    // No stale mapping: a push would count 0 local connections for one as well.
    eventually("uid 42 unmapped after its last close", SOON, || {
        let done = uid_to_fd("42").is_empty();
        async move { done }
    })
    .await;
    assert_eq!(push_to_uid(&host, "42").await, json!(0));
}

#[tokio::test]
async fn a_closed_connection_leaves_the_registry() {
    let redis = RedisServer::start();
    let host = redis_host(&redis).await;
    let mut client = host.connect_user().await;
    let fd = client.fd().await;
    let fd_info = || redis.cli(&["HGET", "mswoole:WEBSOCKET_FDINFO", &fd]);
    assert!(!fd_info().is_empty(), "the connection is in the registry");
    let status = host.manager(&json!({"method": "status"})).await;
    assert_eq!(status.expect_param()["connections"], json!(1));
    client.close(1000).await;
    let _ = client.recv().await;
    eventually("the closed connection no longer counted", SOON, || async {
        let status = host.manager(&json!({"method": "status"})).await;
        status.expect_param()["connections"] == json!(0)
    })
    .await;
    // The registry itself, not only the local count: identity and uid records gone.
    eventually("the fd's identity deleted from the registry", SOON, || {
        let done = fd_info().is_empty();
        async move { done }
    })
    .await;
    assert_eq!(redis.cli(&["HGET", "mswoole:WEBSOCKET_UIDTOFD", "1"]), "");
    let reply = host
        .manager(&json!({"method": "push", "fd": fd, "status": 200, "event": "e", "info": "i"}))
        .await;
    assert_eq!(reply.param(), Some(&json!({"local": 0, "nodes": 0})));
}

/// Sends one text frame of `len` bytes (a `say` padded with spaces) to the manager;
/// returns its answer.
async fn manager_frame_of(host: &TestHost, len: usize) -> mswoole_tests::Envelope {
    let command = r#"{"method":"say","say":"big"}"#;
    let padded = format!("{command}{}", " ".repeat(len - command.len()));
    host.manager_text(&padded).await
}

#[tokio::test]
async fn a_command_over_manager_max_message_bytes_is_answered_400_too_large() {
    let host = TestHost::start("").await;
    let mut user = host.connect_user().await;
    // 1 MiB by default; 32 MiB used to drop the connection without an answer.
    for len in [1024 * 1024 + 1, 2 * 1024 * 1024, 32 * 1024 * 1024] {
        manager_frame_of(&host, len)
            .await
            .assert_is(400, "tooLarge");
    }
    user.expect_silence(QUIET).await;
    // At the limit it is a command like any other.
    manager_frame_of(&host, 1024 * 1024)
        .await
        .assert_is(200, "saySuccess");
    user.expect_envelope(200, "serverBroadcast").await;
}

#[tokio::test]
async fn a_frame_for_clients_over_limits_max_message_bytes_is_400_too_large() {
    let host = TestHost::start("[limits]\nmax_message_bytes = 1000").await;
    let mut user = host.connect_user().await;
    let fd = user.fd().await;
    let big = "x".repeat(1000);
    for command in [
        json!({"method": "say", "say": big}),
        json!({"method": "push", "fd": fd, "event": "e", "info": big}),
        json!({"method": "broadcast", "key": "LIVE_USER_ROOM_demo", "param": big}),
    ] {
        host.manager(&command).await.assert_is(400, "tooLarge");
    }
    user.expect_silence(QUIET).await;
    host.manager(&json!({"method": "say", "say": "x".repeat(900)}))
        .await
        .assert_is(200, "saySuccess");
    user.expect_envelope(200, "serverBroadcast").await;
}

#[tokio::test]
async fn a_binary_frame_is_answered_400_bad_request() {
    let host = TestHost::start("").await;
    let mut manager = connect(host.manager, "/")
        .await
        .expect("the manager upgrades");
    manager.send_binary(br#"{"method":"status"}"#).await;
    manager.expect_envelope(400, "badRequest").await;
}

#[tokio::test]
async fn a_frame_that_breaks_rfc_6455_fails_the_manager_connection_as_on_the_outside_port() {
    let host = TestHost::start("").await;
    for (frame, code, what) in [
        (
            RawFrame::text(b"{}".to_vec()).unmasked(),
            1002,
            "an unmasked frame",
        ),
        (
            RawFrame::text(vec![0xff, 0xfe]),
            1007,
            "text that is not UTF-8",
        ),
        (RawFrame::close(999, b""), 1002, "close code 999"),
        (
            RawFrame::text(b"{}".to_vec()).rsv(2),
            1002,
            "a reserved bit",
        ),
    ] {
        let mut client = RawClient::connect(host.manager, "/").await;
        client.send(&frame).await;
        let payload = client.expect_close_frame().await;
        let got = payload.get(..2).map(|b| u16::from_be_bytes([b[0], b[1]]));
        assert_eq!(got, Some(code), "{what}: close {payload:?}");
    }
    // The port goes on answering commands.
    let status = host.manager(&json!({"method": "status"})).await;
    status.assert_is(200, "statusSuccess");
}
