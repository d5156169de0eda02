//! The Live scenario with the room spread over two hosts on one real Redis: a big
//! screen on one node, phones on both, every broadcast crossing nodes.

use std::time::Duration;

use mswoole_tests::{
    eventually, json,
    live::{id, ids, user_in, wall_in, Speaks},
    RedisServer, TestHost,
};

const ROOM: &str = "two-nodes";

fn room_members(redis: &RedisServer, set: &str) -> Vec<String> {
    let mut members: Vec<String> = redis
        .cli(&["SMEMBERS", &format!("mswoole:{set}_{ROOM}")])
        .lines()
        .map(str::to_string)
        .collect();
    members.sort();
    members
}

#[tokio::test]
async fn a_room_spread_over_two_hosts() {
    let redis = RedisServer::start();
    let a = TestHost::start(&redis.registry_toml("node-a")).await;
    let b = TestHost::start(&redis.registry_toml("node-b")).await;

    let mut wall = wall_in(&a, "w-1", ROOM, "big screen").await;
    let mut alice = user_in(&a, "201", ROOM, "alice").await;
    let mut bob = user_in(&b, "202", ROOM, "bob").await;
    let (alice_fd, bob_fd) = (alice.fd().await, bob.fd().await);
    let mut expected = vec![alice_fd.clone(), bob_fd.clone()];
    expected.sort();
    assert_eq!(
        room_members(&redis, "LIVE_USER_ROOM"),
        expected,
        "MSwoole's key names, under the prefix"
    );

    // A phone on node b speaks; the screen on node a must moderate it.
    let message_id = id(&bob
        .ok(
            "live.user.say",
            json!({"say": "hi from b"}),
            "userSaySuccess",
        )
        .await);
    let pending = wall.hears("userSayNeedCheck").await;
    assert_eq!(
        (pending["id"].as_i64(), pending["say"].as_str()),
        (Some(message_id), Some("hi from b"))
    );
    let queue = wall
        .ok(
            "live.wall.history",
            json!({"type": "user"}),
            "userSayHistory",
        )
        .await;
    assert_eq!(ids(&queue), vec![message_id]);

    wall.ok(
        "live.wall.check",
        json!({"id": message_id, "status": 1}),
        "wallCheckSuccess",
    )
    .await;
    for phone in [&mut alice, &mut bob] {
        assert_eq!(phone.hears("userSayBroadcast").await["say"], "hi from b");
    }

    let said = wall
        .ok("live.wall.say", json!({"say": "welcome"}), "wallSaySuccess")
        .await;
    for phone in [&mut alice, &mut bob] {
        assert_eq!(phone.hears("wallSayBroadcast").await["id"], said["id"]);
    }
    let second = wall
        .ok("live.wall.say", json!({"say": "second"}), "wallSaySuccess")
        .await;
    for phone in [&mut alice, &mut bob] {
        phone.hears("wallSayBroadcast").await;
    }
    wall.ok(
        "live.wall.recall",
        json!({"id": said["id"]}),
        "wallRecallSuccess",
    )
    .await;
    for phone in [&mut alice, &mut bob] {
        assert_eq!(phone.hears("wallSayRecall").await, said["id"]);
    }
    let history = bob
        .ok("live.user.history", json!({}), "wallSayHistory")
        .await;
    assert_eq!(
        ids(&history),
        vec![id(&second["id"])],
        "recalled messages are left out, newest first"
    );

    // Bob's host dies without a close sequence: node a prunes him from the room.
    drop(bob);
    let b_dir = b.into_dir();
    eventually(
        "node b's phone pruned from the room",
        Duration::from_secs(10),
        || {
            let pruned = room_members(&redis, "LIVE_USER_ROOM") == vec![alice_fd.clone()];
            async move { pruned }
        },
    )
    .await;
    wall.ok(
        "live.wall.say",
        json!({"say": "after b died"}),
        "wallSaySuccess",
    )
    .await;
    assert_eq!(alice.hears("wallSayBroadcast").await["say"], "after b died");
    wall.ok("live.wall.clean", json!({}), "wallCleanSuccess")
        .await;
    let queue = wall
        .ok(
            "live.wall.history",
            json!({"type": "user"}),
            "userSayHistory",
        )
        .await;
    assert_eq!(ids(&queue), Vec::<i64>::new());
    drop(b_dir);
}

#[tokio::test]
async fn a_phone_that_closes_leaves_the_room_through_its_close_sequence() {
    let redis = RedisServer::start();
    let host = TestHost::start(&redis.registry_toml("node-a")).await;
    let mut phone = user_in(&host, "301", ROOM, "carol").await;
    let fd = phone.fd().await;
    assert_eq!(room_members(&redis, "LIVE_USER_ROOM"), vec![fd.clone()]);
    phone.close(1000).await;
    eventually(
        "the closed phone out of the room",
        Duration::from_secs(5),
        || {
            let gone = room_members(&redis, "LIVE_USER_ROOM").is_empty();
            async move { gone }
        },
    )
    .await;
    assert_eq!(
        redis.cli(&["EXISTS", &format!("mswoole:WEBSOCKET_FdController_{fd}")]),
        "0"
    );
}

#[tokio::test]
async fn live_actions_answer_503_while_redis_is_away_and_rooms_come_back() {
    let mut redis = RedisServer::start();
    let host = TestHost::start(&redis.registry_toml("node-a")).await;
    let mut wall = wall_in(&host, "w-9", ROOM, "screen").await;
    let mut phone = user_in(&host, "309", ROOM, "dave").await;

    redis.stop();
    let reply = wall.act("live.wall.say", json!({"say": "anyone?"})).await;
    reply.assert_is(503, "unavailable");
    phone.send_text("2").await;
    assert_eq!(phone.recv_text().await, "3");

    redis.restart();
    eventually(
        "the rooms re-asserted after Redis came back empty",
        Duration::from_secs(10),
        || {
            let back = room_members(&redis, "LIVE_USER_ROOM").len() == 1
                && room_members(&redis, "LIVE_WALL_ROOM").len() == 1;
            async move { back }
        },
    )
    .await;
    wall.ok("live.wall.say", json!({"say": "back"}), "wallSaySuccess")
        .await;
    assert_eq!(phone.hears("wallSayBroadcast").await["say"], "back");
}
