//! The Redis registry against a real, private `redis-server`: several hosts sharing
//! it, a node that crashes, and Redis itself going away and coming back empty.

use std::time::Duration;

use mswoole_tests::{eventually, json, unused_port, RedisServer, TestHost, VECTOR_WECHAT_USER};

async fn node(redis: &RedisServer, id: &str) -> TestHost {
    TestHost::start(&redis.registry_toml(id)).await
}

async fn push_to_uid(host: &TestHost, uid: u64) -> mswoole_tests::Envelope {
    host.manager(&json!({"method": "push", "uid": uid, "event": "hi", "info": "x", "param": uid}))
        .await
}

fn reach(reply: &mswoole_tests::Envelope) -> (u64, u64) {
    let param = reply.expect_param();
    (
        param["local"].as_u64().unwrap_or(99),
        param["nodes"].as_u64().unwrap_or(99),
    )
}

#[tokio::test]
async fn two_hosts_share_nodes_and_reach_each_others_clients() {
    let redis = RedisServer::start();
    let (a, b) = (node(&redis, "node-a").await, node(&redis, "node-b").await);
    let status = a.manager(&json!({"method": "status"})).await;
    assert_eq!(status.expect_param()["nodes"], json!(["node-a", "node-b"]));

    let mut on_b = b.connect_user().await;
    let fd = on_b.fd().await;
    assert!(fd.starts_with("node-b/"), "an fd names its node: {fd}");

    let said = a.manager(&json!({"method": "say", "say": "from a"})).await;
    said.assert_is(200, "saySuccess");
    assert_eq!(reach(&said), (0, 1), "a has no client, b took the relay");
    let got = on_b.recv_envelope().await;
    got.assert_is(200, "serverBroadcast");
    assert_eq!(got.expect_param(), &json!("from a"));

    let pushed = push_to_uid(&a, 1).await;
    assert_eq!(reach(&pushed), (0, 1), "uid 1 lives on b");
    on_b.expect_envelope(200, "hi").await;
    let by_fd = a
        .manager(&json!({"method": "push", "fd": fd, "event": "byFd"}))
        .await;
    assert_eq!(reach(&by_fd), (0, 1));
    on_b.expect_envelope(200, "byFd").await;
}

#[tokio::test]
async fn a_closed_connection_leaves_nothing_behind() {
    let redis = RedisServer::start();
    let host = node(&redis, "node-a").await;
    let mut client = host.connect_user().await;
    let fd = client.fd().await;
    assert_eq!(redis.cli(&["HGET", "mswoole:WEBSOCKET_UIDTOFD", "1"]), fd);
    assert!(!redis
        .cli(&["HGET", "mswoole:WEBSOCKET_FDINFO", &fd])
        .is_empty());
    client.close(1000).await;
    eventually(
        "the fd's records are deleted",
        Duration::from_secs(3),
        async || {
            redis.cli(&["HLEN", "mswoole:WEBSOCKET_FDINFO"]) == "0"
                && redis.cli(&["HLEN", "mswoole:WEBSOCKET_UIDTOFD"]) == "0"
        },
    )
    .await;
}

#[tokio::test]
async fn a_crashed_node_is_pruned_by_the_others_and_cleans_up_when_it_restarts() {
    let redis = RedisServer::start();
    let a = node(&redis, "node-a").await;
    let b = node(&redis, "node-b").await;
    let mut on_b = b.connect_user().await;
    let fd = on_b.fd().await;
    assert_eq!(reach(&push_to_uid(&a, 1).await), (0, 1));
    on_b.expect_envelope(200, "hi").await;

    // SIGKILL: no close sequence, no cleanup.
    let dir = b.into_dir();
    assert_eq!(
        redis.cli(&["HGET", "mswoole:WEBSOCKET_UIDTOFD", "1"]),
        fd,
        "the dead node's records are still there"
    );
    eventually(
        "node-a prunes node-b",
        Duration::from_secs(10),
        async || {
            redis.cli(&["HEXISTS", "mswoole:WEBSOCKET_FDINFO", &fd]) == "0"
                && redis.cli(&["HEXISTS", "mswoole:WEBSOCKET_UIDTOFD", "1"]) == "0"
                && redis.cli(&["SISMEMBER", "mswoole:WEBSOCKET_NODES", "node-b"]) == "0"
        },
    )
    .await;
    assert_eq!(
        reach(&push_to_uid(&a, 1).await),
        (0, 0),
        "no message for uid 1 goes anywhere"
    );

    // A crash, then a restart before anyone pruned: the node clears its own leftovers.
    let mut on_a = a.connect_user().await;
    let a_fd = on_a.fd().await;
    let a_dir = a.into_dir();
    assert_eq!(redis.cli(&["HGET", "mswoole:WEBSOCKET_UIDTOFD", "1"]), a_fd);
    let restarted = a_dir.start().await;
    assert_eq!(
        redis.cli(&["HEXISTS", "mswoole:WEBSOCKET_FDINFO", &a_fd]),
        "0",
        "leftovers are gone before it is ready"
    );
    assert_eq!(
        redis.cli(&["HEXISTS", "mswoole:WEBSOCKET_UIDTOFD", "1"]),
        "0"
    );
    let mut again = restarted.connect_user().await;
    assert_ne!(
        again.fd().await,
        a_fd,
        "fds are never reused, not even after a restart"
    );
    drop(dir);
}

#[tokio::test]
async fn clients_survive_a_redis_outage_and_their_records_come_back() {
    let mut redis = RedisServer::start();
    let host = node(&redis, "node-a").await;
    let mut client = host.connect_user().await;
    let fd = client.fd().await;

    redis.stop();
    client.send_text("2").await;
    assert_eq!(client.recv_text().await, "3", "2/3 works without Redis");
    let reply = client.call(&json!({"method": "index.index.index"})).await;
    reply.assert_is(200, "success");
    let pushed = push_to_uid(&host, 1).await;
    pushed.assert_is(503, "unavailable");
    let mut late = host
        .connect(&format!("/live?auth={VECTOR_WECHAT_USER}"))
        .await;
    let late_fd = late.fd().await;

    redis.restart();
    eventually(
        "the node re-asserts its connections",
        Duration::from_secs(10),
        async || {
            redis.cli(&["HEXISTS", "mswoole:WEBSOCKET_FDINFO", &fd]) == "1"
                && redis.cli(&["HEXISTS", "mswoole:WEBSOCKET_FDINFO", &late_fd]) == "1"
        },
    )
    .await;
    let pushed = push_to_uid(&host, 1).await;
    assert_eq!(reach(&pushed).0, 1, "uid 1 is reachable again");
    let envelope = late.recv_envelope().await;
    envelope.assert_is(200, "hi");
    let still = client.call(&json!({"method": "index.index.index"})).await;
    still.assert_is(200, "success");
}

#[tokio::test]
async fn a_host_does_not_start_without_its_redis() {
    let redis = RedisServer::start();
    let port = redis.port;
    drop(redis);
    let dir = TestHost::builder()
        .config(&format!(
            "[registry]\nbackend = \"redis\"\nurl = \"redis://127.0.0.1:{port}/\""
        ))
        .prepare();
    let output = dir.start_expecting_exit();
    let reason = output.assert_failure_one_line();
    assert!(
        reason.contains("registry.url"),
        "the reason names the setting: {reason}"
    );
}

#[tokio::test]
async fn a_redis_port_someone_else_holds_is_never_taken_for_ours() {
    let first = RedisServer::start();
    // As if another test process had picked the same port a moment earlier.
    let second = RedisServer::start_preferring(first.port);
    assert_ne!(
        second.port, first.port,
        "the second server moved to another port"
    );
    second.cli(&["SET", "owner", "second"]);
    assert_eq!(
        first.cli(&["GET", "owner"]),
        "",
        "and never talked to the first"
    );
}

#[test]
fn test_ports_come_from_outside_the_ephemeral_range_and_never_repeat() {
    let ports: Vec<u16> = (0..50).map(|_| unused_port()).collect();
    assert!(
        ports.iter().all(|port| (21000..32000).contains(port)),
        "{ports:?}"
    );
    let mut unique = ports.clone();
    unique.sort_unstable();
    unique.dedup();
    assert_eq!(unique.len(), ports.len(), "{ports:?}");
}

#[tokio::test]
async fn manager_broadcast_reaches_set_members_on_every_node() {
    let redis = RedisServer::start();
    let (a, b) = (node(&redis, "node-a").await, node(&redis, "node-b").await);
    let mut members = Vec::new();
    // Five phone users on a, two on b, all in room demo's user set.
    for (host, uids) in [(&a, 1..=5), (&b, 6..=7)] {
        for uid in uids {
            let token = mswoole_tests::Token::wechat_user(&uid.to_string()).mint();
            let mut user = host.connect(&format!("/live?auth={token}")).await;
            user.call(&json!({"method": "live.user.join"}))
                .await
                .assert_is(200, "userJoinSuccess");
            members.push(user);
        }
    }
    let command = json!({"method": "broadcast", "key": "LIVE_USER_ROOM_demo", "event": "x", "info": "y", "param": [1]});
    let reply = b.manager(&command).await;
    reply.assert_is(200, "broadcastSuccess");
    assert_eq!(reach(&reply), (2, 1), "two members on b, five relayed to a");
    assert_eq!(
        reply.expect_param()["members"],
        7,
        "the set holds all seven"
    );
    for member in &mut members {
        assert_eq!(
            member.recv_text().await,
            r#"{"status":200,"event":"x","info":"y","param":[1]}"#
        );
    }
    // The HTTP form goes the same way.
    let reply = mswoole_tests::http_request(
        a.manager,
        "POST",
        "/api/broadcast",
        &[],
        &command.to_string(),
    )
    .await;
    assert_eq!(
        reply.json()["param"],
        json!({"local": 5, "nodes": 1, "members": 7})
    );
    for member in &mut members {
        member.expect_envelope(200, "x").await;
    }
}
