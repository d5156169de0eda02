//! docs/PROTOCOL.md "Live actions" end to end: the Live module in the real host, on the memory registry, with
//! one big screen and two phones in a room. Tokens are minted with `mswoole token`.

use std::time::Duration;

use mswoole_tests::{
    eventually, json,
    live::{connect, id, ids, keys, user_in, wall_in, Speaks},
    Client, TestHost, Value,
};

/// How long a client must hear nothing to count as left out of a broadcast.
const QUIET: Duration = Duration::from_millis(300);

/// The room of these tests.
const ROOM: &str = "e2e-room";

/// One big screen and two phones, all joined to [`ROOM`].
struct Room {
    wall: Client,
    alice: Client,
    bob: Client,
}

impl Room {
    async fn join(host: &TestHost) -> Room {
        let wall = wall_in(host, "w-1", ROOM, "big screen").await;
        let alice = user_in(host, "101", ROOM, "alice").await;
        let bob = user_in(host, "102", ROOM, "bob").await;
        Room { wall, alice, bob }
    }
}

/// The room's member sets, as the Live module names them.
const USERS: &str = "LIVE_USER_ROOM_e2e-room";
const WALLS: &str = "LIVE_WALL_ROOM_e2e-room";

/// Membership as the registry holds it, on the memory backend too: the manager
/// broadcasts `rollCall` to the set `key` and answers how many members the set holds
/// (`members`, stale ones included) and how many connections it reached (`local`).
/// Every member that is connected gets the frame; the caller reads it.
async fn roll_call(host: &TestHost, key: &str) -> (u64, u64) {
    let command =
        json!({"method": "broadcast", "key": key, "event": "rollCall", "info": "", "param": key});
    let reply = host.manager(&command).await;
    reply.assert_is(200, "broadcastSuccess");
    let param = reply.expect_param();
    let count = |name: &str| {
        param[name]
            .as_u64()
            .unwrap_or_else(|| panic!("broadcast without {name}: {param}"))
    };
    (count("local"), count("members"))
}

/// Waits until the host counts `count` connections (a dropped one is gone).
async fn wait_for_connections(host: &TestHost, count: u64) {
    mswoole_tests::phone::wait_connections(host, count).await;
}

#[tokio::test]
async fn a_live_event_from_join_to_clean() {
    let host = TestHost::start("").await;
    let Room {
        mut wall,
        mut alice,
        mut bob,
    } = Room::join(&host).await;
    // Both phones are in the user set, the screen in the wall set, and nobody else.
    assert_eq!(roll_call(&host, USERS).await, (2, 2));
    alice.hears("rollCall").await;
    bob.hears("rollCall").await;
    assert_eq!(roll_call(&host, WALLS).await, (1, 1));
    wall.hears("rollCall").await;

    // Alice speaks (a room or fd she names is ignored): the screen gets it to check.
    let say = json!({"say": "hi <all>", "code": "elsewhere", "fd": "forged"});
    let first = id(&alice.ok("live.user.say", say, "userSaySuccess").await);
    let queued = wall.hears("userSayNeedCheck").await;
    assert_eq!(keys(&queued), ["id", "nickname", "say", "ctime"]);
    assert_eq!(
        (&queued["id"], &queued["nickname"], &queued["say"]),
        (&json!(first), &json!("alice"), &json!("hi &lt;all&gt;"))
    );
    let pending = json!({"type": "user"});
    let queue = wall.ok("live.wall.history", pending.clone(), "userSayHistory");
    assert_eq!(ids(&queue.await), vec![first]);

    // Approved: every phone gets it, and it leaves the queue.
    let check = json!({"id": first, "status": 1});
    let checked = wall.ok("live.wall.check", check, "wallCheckSuccess").await;
    assert_eq!(checked, json!(first));
    assert_eq!(alice.hears("userSayBroadcast").await, queued);
    assert_eq!(bob.hears("userSayBroadcast").await, queued);
    let queue = wall.ok("live.wall.history", pending.clone(), "userSayHistory");
    assert_eq!(queue.await, json!([]));

    // Dropped: nobody hears Bob's spam.
    let spam = bob.ok("live.user.say", json!({"say": "spam"}), "userSaySuccess");
    let spam = id(&spam.await);
    wall.hears("userSayNeedCheck").await;
    let check = json!({"id": spam, "status": 0});
    wall.ok("live.wall.check", check, "wallCheckSuccess").await;
    alice.expect_silence(QUIET).await;
    bob.expect_silence(QUIET).await;

    // The screen speaks twice; every phone hears it.
    let welcome = wall.ok("live.wall.say", json!({"say": "welcome"}), "wallSaySuccess");
    let welcome = welcome.await;
    let expected = ["id", "code", "nickname", "say", "user_id", "ctime"];
    assert_eq!(keys(&welcome), expected);
    assert_eq!(
        [&welcome["code"], &welcome["nickname"], &welcome["user_id"]],
        [&json!(ROOM), &json!("big screen"), &json!("w-1")]
    );
    assert!(id(&welcome["id"]) > spam, "ids come from one counter");
    assert_eq!(alice.hears("wallSayBroadcast").await, welcome);
    assert_eq!(bob.hears("wallSayBroadcast").await, welcome);
    let rules = wall.ok("live.wall.say", json!({"say": "be nice"}), "wallSaySuccess");
    let rules = rules.await;
    alice.hears("wallSayBroadcast").await;
    bob.hears("wallSayBroadcast").await;

    // The first is recalled: phones are told, and histories leave it out.
    let recall = json!({"id": welcome["id"]});
    let recalled = wall
        .ok("live.wall.recall", recall, "wallRecallSuccess")
        .await;
    assert_eq!(recalled, welcome["id"]);
    assert_eq!(alice.hears("wallSayRecall").await, welcome["id"]);
    assert_eq!(bob.hears("wallSayRecall").await, welcome["id"]);
    let shown = alice.ok("live.user.history", json!({}), "wallSayHistory");
    assert_eq!(shown.await, json!([rules]));
    let shown = wall.ok(
        "live.wall.history",
        json!({"type": "wall"}),
        "wallSayHistory",
    );
    assert_eq!(shown.await, json!([rules]));

    // The queue, newest first, until the screen cleans it.
    let one = alice.ok("live.user.say", json!({"say": "one"}), "userSaySuccess");
    let one = id(&one.await);
    let two = bob.ok("live.user.say", json!({"say": "two"}), "userSaySuccess");
    let two = id(&two.await);
    wall.hears("userSayNeedCheck").await;
    wall.hears("userSayNeedCheck").await;
    let page = json!({"type": "user", "page": 1, "count": 50});
    let queue = wall.ok("live.wall.history", page, "userSayHistory");
    assert_eq!(ids(&queue.await), vec![two, one]);
    let cleaned = wall.ok("live.wall.clean", json!({}), "wallCleanSuccess");
    assert_eq!(cleaned.await, Value::Null);
    let queue = wall.ok("live.wall.history", pending, "userSayHistory");
    assert_eq!(queue.await, json!([]));

    // Leaving: Alice is out, so only Bob hears the screen; the screen is out, so nobody
    // hears Bob.
    alice.ok("live.user.out", json!({}), "userOutSuccess").await;
    assert_eq!(roll_call(&host, USERS).await, (1, 1), "alice left the set");
    bob.hears("rollCall").await;
    alice.expect_silence(QUIET).await;
    wall.ok("live.wall.say", json!({"say": "bye"}), "wallSaySuccess")
        .await;
    bob.hears("wallSayBroadcast").await;
    alice.expect_silence(QUIET).await;
    wall.ok("live.wall.out", json!({}), "wallOutSuccess").await;
    assert_eq!(
        roll_call(&host, WALLS).await,
        (0, 0),
        "the screen left its set"
    );
    bob.ok("live.user.say", json!({"say": "anyone?"}), "userSaySuccess")
        .await;
    wall.expect_silence(QUIET).await;
}

#[tokio::test]
async fn a_dropped_phone_leaves_the_room_and_hears_nothing_more() {
    let host = TestHost::start("").await;
    let Room {
        mut wall,
        mut alice,
        bob,
    } = Room::join(&host).await;

    // Bob's phone drops off the network: no close frame, the socket just goes.
    drop(bob);
    wait_for_connections(&host, 2).await;
    // The set loses him (his close sequence), not only the connections a frame reaches.
    let alice_hears = tokio::sync::Mutex::new(&mut alice);
    eventually(
        "the dropped phone out of the set",
        Duration::from_secs(5),
        || async {
            let counts = roll_call(&host, USERS).await;
            alice_hears.lock().await.hears("rollCall").await;
            counts == (1, 1)
        },
    )
    .await;

    // Bob comes back with the same token: a new fd, which is not in the room.
    let mut bob = connect(&host, "102", "wechatUser", ROOM, "bob").await;
    wall.ok(
        "live.wall.say",
        json!({"say": "after the drop"}),
        "wallSaySuccess",
    )
    .await;
    alice.hears("wallSayBroadcast").await;
    bob.expect_silence(QUIET).await;

    // Once he joins again he hears the room.
    bob.ok("live.user.join", json!({}), "userJoinSuccess").await;
    assert_eq!(roll_call(&host, USERS).await, (2, 2));
    alice.hears("rollCall").await;
    bob.hears("rollCall").await;
    wall.ok(
        "live.wall.say",
        json!({"say": "welcome back"}),
        "wallSaySuccess",
    )
    .await;
    alice.hears("wallSayBroadcast").await;
    bob.hears("wallSayBroadcast").await;

    // The screen drops too: the phones' messages reach no one, and nothing failed on the way.
    drop(wall);
    wait_for_connections(&host, 2).await;
    eventually(
        "the dropped screen out of its set",
        Duration::from_secs(5),
        || async { roll_call(&host, WALLS).await == (0, 0) },
    )
    .await;
    alice
        .ok("live.user.say", json!({"say": "hello?"}), "userSaySuccess")
        .await;
    let output = host.output();
    assert!(
        !output.contains("onClose"),
        "the close sequence complained:\n{output}"
    );
}

#[tokio::test]
async fn refusals_999_403_401_404() {
    let host = TestHost::start("").await;
    let Room {
        mut wall,
        mut alice,
        mut bob,
    } = Room::join(&host).await;

    // 999: a token without a room code, checked before the type.
    let mut roomless = connect(&host, "103", "wechatUser", "", "carol").await;
    for method in [
        "live.user.join",
        "live.user.say",
        "live.wall.join",
        "live.wall.history",
    ] {
        roomless
            .refused(method, json!({"say": "hi"}), 999, "codeIsEmpty")
            .await;
    }

    // 403: the wrong type is refused, and nothing happens.
    let screen_things = json!({"say": "fake screen", "type": "user"});
    for method in [
        "live.wall.join",
        "live.wall.say",
        "live.wall.clean",
        "live.wall.history",
    ] {
        alice
            .refused(method, screen_things.clone(), 403, "mustBeWall")
            .await;
    }
    for method in ["live.user.join", "live.user.say", "live.user.history"] {
        wall.refused(
            method,
            json!({"say": "fake phone"}),
            403,
            "mustBeWechatUser",
        )
        .await;
    }
    bob.expect_silence(QUIET).await; // the refused wall.say broadcast nothing
    let said = bob
        .ok("live.user.say", json!({"say": "real"}), "userSaySuccess")
        .await;
    wall.hears("userSayNeedCheck").await;
    alice.expect_silence(QUIET).await; // her refused wall.join did not make her a screen
    let stored = wall.ok(
        "live.wall.history",
        json!({"type": "wall"}),
        "wallSayHistory",
    );
    assert_eq!(
        stored.await,
        json!([]),
        "the refused wall.say stored nothing"
    );

    // 401: missing or bad parameters.
    for fields in [json!({}), json!({"say": 5}), json!({"say": ""})] {
        alice
            .refused("live.user.say", fields.clone(), 401, "badParameter")
            .await;
        wall.refused("live.wall.say", fields, 401, "badParameter")
            .await;
    }
    wall.refused("live.wall.check", json!({"status": 1}), 401, "badParameter")
        .await;
    wall.refused(
        "live.wall.recall",
        json!({"id": "abc"}),
        401,
        "badParameter",
    )
    .await;
    wall.refused(
        "live.wall.history",
        json!({"type": "all"}),
        401,
        "typeError",
    )
    .await;

    // 404: unknown ids; a queued phone message is not a wall message either.
    let unknown = json!({"id": 987_654_321, "status": 1});
    wall.refused("live.wall.check", unknown.clone(), 404, "messageNotFound")
        .await;
    wall.refused("live.wall.recall", unknown, 404, "messageNotFound")
        .await;
    let queued = json!({ "id": said });
    wall.refused("live.wall.recall", queued, 404, "messageNotFound")
        .await;

    // None of it disturbed the room: the queued message is still there to approve.
    alice.expect_silence(QUIET).await;
    bob.expect_silence(QUIET).await;
    let check = json!({"id": said, "status": 1});
    wall.ok("live.wall.check", check, "wallCheckSuccess").await;
    alice.hears("userSayBroadcast").await;
    bob.hears("userSayBroadcast").await;
}

#[tokio::test]
async fn stored_messages_expire_after_message_ttl_s() {
    let host = TestHost::start("[modules.Live]\nmessage_ttl_s = 1").await;
    let Room {
        mut wall,
        mut alice,
        mut bob,
    } = Room::join(&host).await;
    wall.ok(
        "live.wall.say",
        json!({"say": "soon gone"}),
        "wallSaySuccess",
    )
    .await;
    alice.hears("wallSayBroadcast").await;
    bob.hears("wallSayBroadcast").await;
    bob.ok("live.user.say", json!({"say": "me too"}), "userSaySuccess")
        .await;
    wall.hears("userSayNeedCheck").await;
    let shown = alice.ok("live.user.history", json!({}), "wallSayHistory");
    assert_eq!(ids(&shown.await).len(), 1);

    tokio::time::sleep(Duration::from_millis(1_300)).await;
    let shown = alice.ok("live.user.history", json!({}), "wallSayHistory");
    assert_eq!(shown.await, json!([]));
    let queue = wall.ok(
        "live.wall.history",
        json!({"type": "user"}),
        "userSayHistory",
    );
    assert_eq!(queue.await, json!([]));
}
