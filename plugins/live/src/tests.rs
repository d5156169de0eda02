//! The Live protocol against a fake host: one big screen and two phones in room `demo`.

use mswoole_plugin_api::{
    serde_json::{json, Value},
    testing::{block_on, call, request, FakeHost},
    Envelope, Module, ModuleError, Outcome,
};

use crate::Live;

/// The big screen's connection.
const WALL: &str = "fd-wall";
/// Alice's phone.
const ALICE: &str = "fd-alice";
/// Bob's phone.
const BOB: &str = "fd-bob";

/// A decoded token.
fn token(id: Value, kind: &str, code: &str, nickname: &str) -> Value {
    json!({"id": id, "type": kind, "code": code, "nickname": nickname, "ctime": 1_764_115_200})
}

/// The identity behind each test connection: all in room `demo`.
fn identity(fd: &str) -> Value {
    match fd {
        WALL => token(json!("w-7"), "wall", "demo", "big screen"),
        ALICE => token(json!(1), "wechatUser", "demo", "alice"),
        BOB => token(json!(2), "wechatUser", "demo", "bob"),
        other => panic!("no identity for {other}"),
    }
}

/// What a client received: status, event and param (parsed).
#[derive(Debug, Clone, PartialEq)]
struct Got {
    status: u16,
    event: String,
    param: Option<Value>,
}

impl From<Envelope> for Got {
    fn from(envelope: Envelope) -> Self {
        Got {
            status: envelope.status,
            event: envelope.event.into_string(),
            param: envelope
                .param
                .into_option()
                .map(|p| serde_json::from_str(&p).expect("param is JSON")),
        }
    }
}

/// The keys of a message, in order.
fn keys(message: &Value) -> Vec<&str> {
    message
        .as_object()
        .expect("a message is an object")
        .keys()
        .map(String::as_str)
        .collect()
}

/// A 200 envelope with `event` and `param`.
fn ok(event: &str, param: Value) -> Got {
    Got {
        status: 200,
        event: event.into(),
        param: Some(param),
    }
}

/// A 200 envelope with `event` and no `param`.
fn ok_bare(event: &str) -> Got {
    Got {
        status: 200,
        event: event.into(),
        param: None,
    }
}

/// The Live module on a fake host where the three test connections are online.
struct Fixture {
    host: FakeHost,
    live: Live,
}

impl Fixture {
    fn new() -> Self {
        let host = FakeHost::new();
        for fd in [WALL, ALICE, BOB] {
            host.state().identities.insert(fd.into(), identity(fd));
        }
        let live = Live::new(host.handle(), json!({})).expect("an empty config is valid");
        Fixture { host, live }
    }

    /// `method` (`controller.action`) from `fd` as its identity, with `message`.
    fn send_as(&self, fd: &str, as_identity: &Value, method: &str, message: Value) -> Outcome {
        let (controller, action) = method.split_once('.').expect("controller.action");
        call(
            &self.live,
            request(fd, controller, action, message, as_identity),
        )
    }

    /// `method` from `fd` with `message`.
    fn send(&self, fd: &str, method: &str, message: Value) -> Outcome {
        self.send_as(fd, &identity(fd), method, message)
    }

    /// `method` from `fd`, which must be answered with an envelope.
    fn reply(&self, fd: &str, method: &str, message: Value) -> Got {
        match self.send(fd, method, message) {
            Ok(Some(envelope)) => envelope.into(),
            other => panic!("{method} from {fd}: expected a reply, got {other:?}"),
        }
    }

    /// `method` from `fd`, which must be refused with `status` and `event`.
    #[track_caller]
    fn refused(&self, fd: &str, method: &str, message: Value, status: u16, event: &str) {
        match self.send(fd, method, message) {
            Err(ModuleError::Refused {
                status: got,
                event: got_event,
                ..
            }) if got == status && got_event.as_str() == event => {}
            other => panic!("{method} from {fd}: expected {status} {event}, got {other:?}"),
        }
    }

    /// Everything sent to `fd` since the last look (the replies are not in it).
    fn inbox(&self, fd: &str) -> Vec<Got> {
        let mut state = self.host.state();
        let (mine, others) = std::mem::take(&mut state.sent)
            .into_iter()
            .partition::<Vec<_>, _>(|(to, _)| to == fd);
        state.sent = others;
        mine.into_iter()
            .map(|(_, envelope)| envelope.into())
            .collect()
    }

    /// Members of a set.
    fn members(&self, key: &str) -> Vec<String> {
        let state = self.host.state();
        state
            .sets
            .get(key)
            .map(|set| set.iter().cloned().collect())
            .unwrap_or_default()
    }

    /// Everyone joins room `demo`.
    fn everyone_joins(&self) {
        assert_eq!(
            self.reply(WALL, "Wall.join", json!({})),
            ok_bare("wallJoinSuccess")
        );
        for phone in [ALICE, BOB] {
            assert_eq!(
                self.reply(phone, "User.join", json!({})),
                ok_bare("userJoinSuccess")
            );
        }
    }

    /// The id of a message param.
    fn id_of(message: &Value) -> i64 {
        message["id"].as_i64().expect("a message has an integer id")
    }

    /// `live.user.say` from `fd`; returns the id the sender got.
    fn user_says(&self, fd: &str, say: &str) -> i64 {
        let reply = self.reply(fd, "User.say", json!({ "say": say }));
        assert_eq!(
            (reply.status, reply.event.as_str()),
            (200, "userSaySuccess")
        );
        reply
            .param
            .and_then(|id| id.as_i64())
            .expect("userSaySuccess carries the message id")
    }

    /// `live.wall.say` from the screen; returns the stored message.
    fn wall_says(&self, say: &str) -> Value {
        let reply = self.reply(WALL, "Wall.say", json!({ "say": say }));
        assert_eq!(
            (reply.status, reply.event.as_str()),
            (200, "wallSaySuccess")
        );
        reply.param.expect("wallSaySuccess carries the message")
    }

    /// The ids of a history reply.
    fn history_ids(reply: &Got) -> Vec<i64> {
        reply
            .param
            .as_ref()
            .and_then(Value::as_array)
            .expect("a history is an array")
            .iter()
            .map(Fixture::id_of)
            .collect()
    }
}

#[test]
fn a_whole_live_event() {
    let room = Fixture::new();
    room.everyone_joins();
    assert_eq!(room.members("LIVE_WALL_ROOM_demo"), vec![WALL]);
    assert_eq!(room.members("LIVE_USER_ROOM_demo"), vec![ALICE, BOB]);

    // Alice speaks: the screen gets it for moderation, the phones get nothing yet.
    let first = room.user_says(ALICE, "hello &amp; welcome");
    let need_check = room.inbox(WALL);
    assert_eq!(need_check.len(), 1, "{need_check:?}");
    assert_eq!(
        (need_check[0].status, need_check[0].event.as_str()),
        (200, "userSayNeedCheck")
    );
    let queued = need_check[0].param.clone().expect("the message to check");
    assert_eq!(Fixture::id_of(&queued), first);
    assert_eq!(queued["nickname"], "alice");
    assert_eq!(queued["say"], "hello &amp; welcome");
    assert!(queued["ctime"].as_u64().is_some_and(|t| t > 1_700_000_000));
    assert_eq!(keys(&queued), ["id", "nickname", "say", "ctime"]);
    assert!(room.inbox(ALICE).is_empty() && room.inbox(BOB).is_empty());

    // The screen approves it: both phones get it, and it leaves the queue.
    assert_eq!(
        room.reply(WALL, "Wall.check", json!({"id": first, "status": 1})),
        ok("wallCheckSuccess", json!(first))
    );
    for phone in [ALICE, BOB] {
        assert_eq!(
            room.inbox(phone),
            vec![ok("userSayBroadcast", queued.clone())]
        );
    }
    room.refused(
        WALL,
        "Wall.check",
        json!({"id": first, "status": 1}),
        404,
        "messageNotFound",
    );

    // Bob's message is dropped: nobody hears it.
    let dropped = room.user_says(BOB, "spam");
    room.inbox(WALL);
    assert_eq!(
        room.reply(WALL, "Wall.check", json!({"id": dropped, "status": 0})),
        ok("wallCheckSuccess", json!(dropped))
    );
    assert!(room.inbox(ALICE).is_empty() && room.inbox(BOB).is_empty());

    // The screen speaks twice, then recalls the first.
    let welcome = room.wall_says("welcome");
    assert_eq!(
        keys(&welcome),
        ["id", "code", "nickname", "say", "user_id", "ctime"]
    );
    assert_eq!(
        (&welcome["code"], &welcome["nickname"], &welcome["user_id"]),
        (&json!("demo"), &json!("big screen"), &json!("w-7"))
    );
    for phone in [ALICE, BOB] {
        assert_eq!(
            room.inbox(phone),
            vec![ok("wallSayBroadcast", welcome.clone())]
        );
    }
    let rules = room.wall_says("be nice");
    assert!(Fixture::id_of(&rules) > Fixture::id_of(&welcome));
    room.inbox(ALICE);
    room.inbox(BOB);
    let recalled = Fixture::id_of(&welcome);
    assert_eq!(
        room.reply(WALL, "Wall.recall", json!({ "id": recalled })),
        ok("wallRecallSuccess", json!(recalled))
    );
    for phone in [ALICE, BOB] {
        assert_eq!(
            room.inbox(phone),
            vec![ok("wallSayRecall", json!(recalled))]
        );
    }
    assert!(room.inbox(WALL).is_empty());

    // Histories: the recalled message is left out; phones never see the queue.
    let wall_history = room.reply(WALL, "Wall.history", json!({"type": "wall"}));
    assert_eq!(wall_history, ok("wallSayHistory", json!([&rules])));
    assert_eq!(
        room.reply(ALICE, "User.history", json!({})),
        ok("wallSayHistory", json!([&rules]))
    );
    let later = [room.user_says(ALICE, "one"), room.user_says(BOB, "two")];
    let queue = room.reply(WALL, "Wall.history", json!({"type": "user"}));
    assert_eq!(queue.event, "userSayHistory");
    assert_eq!(Fixture::history_ids(&queue), vec![later[1], later[0]]);

    // Cleaning drops the queue and nothing else.
    assert_eq!(
        room.reply(WALL, "Wall.clean", json!({})),
        ok_bare("wallCleanSuccess")
    );
    assert_eq!(
        room.reply(WALL, "Wall.history", json!({"type": "user"})),
        ok("userSayHistory", json!([]))
    );
    room.refused(
        WALL,
        "Wall.check",
        json!({"id": later[0], "status": 1}),
        404,
        "messageNotFound",
    );
    let still_here = room.wall_says("still here");
    assert_eq!(
        Fixture::history_ids(&room.reply(WALL, "Wall.history", json!({"type": "wall"}))),
        vec![Fixture::id_of(&still_here), Fixture::id_of(&rules)]
    );

    // Leaving: the phones and the screen are out of the room.
    assert_eq!(
        room.reply(ALICE, "User.out", json!({})),
        ok_bare("userOutSuccess")
    );
    assert_eq!(
        room.reply(WALL, "Wall.out", json!({})),
        ok_bare("wallOutSuccess")
    );
    assert_eq!(room.members("LIVE_USER_ROOM_demo"), vec![BOB]);
    assert!(room.members("LIVE_WALL_ROOM_demo").is_empty());
}

/// Every action of the module, as `controller.action`.
const EVERY_ACTION: [&str; 11] = [
    "User.join",
    "User.out",
    "User.say",
    "User.history",
    "Wall.join",
    "Wall.out",
    "Wall.check",
    "Wall.say",
    "Wall.recall",
    "Wall.clean",
    "Wall.history",
];

/// Whether the fake host holds nothing a module wrote and nothing was sent.
fn untouched(host: &FakeHost) -> bool {
    let state = host.state();
    state.sent.is_empty()
        && state.sets.is_empty()
        && state.hashes.is_empty()
        && state.lists.is_empty()
        && state.counters.is_empty()
        && state.close_keys.is_empty()
        && state.close_controllers.is_empty()
}

#[test]
fn an_empty_room_code_is_999_before_anything_else() {
    let room = Fixture::new();
    // A phone without a room calling screen actions: the code is checked before the type.
    let no_room = token(json!(1), "wechatUser", "", "alice");
    for method in EVERY_ACTION {
        match room.send_as(ALICE, &no_room, method, json!({"say": "hi", "id": 1})) {
            Err(ModuleError::Refused {
                status: 999, event, ..
            }) if event.as_str() == "codeIsEmpty" => {}
            other => panic!("{method} without a room: {other:?}"),
        }
    }
    assert!(untouched(&room.host));
}

#[test]
fn the_wrong_token_type_is_403_and_writes_nothing() {
    let room = Fixture::new();
    let message = json!({"say": "hi", "id": 1, "status": 1, "type": "user"});
    for method in EVERY_ACTION {
        if method.starts_with("User.") {
            room.refused(WALL, method, message.clone(), 403, "mustBeWechatUser");
        } else {
            room.refused(ALICE, method, message.clone(), 403, "mustBeWall");
        }
    }
    // Another type entirely (an anonymous connection) is refused by both controllers.
    let anonymous = token(json!("n/1/9"), "anonymous", "demo", "");
    for method in EVERY_ACTION {
        assert!(
            matches!(
                room.send_as("fd-anon", &anonymous, method, message.clone()),
                Err(ModuleError::Refused { status: 403, .. })
            ),
            "{method} as anonymous"
        );
    }
    assert!(untouched(&room.host), "{:?}", room.host.state());
}

#[test]
fn a_missing_or_bad_parameter_is_401() {
    let room = Fixture::new();
    room.everyone_joins();
    for bad in [
        json!({}),
        json!({"say": 5}),
        json!({"say": ["hi"]}),
        json!({"say": " "}),
    ] {
        room.refused(ALICE, "User.say", bad.clone(), 401, "badParameter");
        room.refused(WALL, "Wall.say", bad, 401, "badParameter");
    }
    for bad in [
        json!({"status": 1}),
        json!({"id": "abc"}),
        json!({"id": 0}),
        json!({"id": -3}),
    ] {
        room.refused(WALL, "Wall.check", bad.clone(), 401, "badParameter");
        room.refused(WALL, "Wall.recall", bad, 401, "badParameter");
    }
    for bad in [json!({}), json!({"type": "all"}), json!({"type": 1})] {
        room.refused(WALL, "Wall.history", bad, 401, "typeError");
    }
    assert!(room.inbox(WALL).is_empty() && room.inbox(ALICE).is_empty());
    assert!(room.host.state().hashes.is_empty(), "nothing was stored");
}

#[test]
fn unknown_message_ids_are_404() {
    let room = Fixture::new();
    room.everyone_joins();
    room.refused(
        WALL,
        "Wall.check",
        json!({"id": 99, "status": 1}),
        404,
        "messageNotFound",
    );
    room.refused(
        WALL,
        "Wall.recall",
        json!({"id": 99}),
        404,
        "messageNotFound",
    );
    // A queued phone message is not a wall message, and the other way round.
    let queued = room.user_says(ALICE, "hi");
    let stored = Fixture::id_of(&room.wall_says("hello"));
    room.refused(
        WALL,
        "Wall.recall",
        json!({ "id": queued }),
        404,
        "messageNotFound",
    );
    room.refused(
        WALL,
        "Wall.check",
        json!({"id": stored, "status": 1}),
        404,
        "messageNotFound",
    );
    // Ids are decimal text too, as PHP clients send them.
    assert_eq!(
        room.reply(
            WALL,
            "Wall.check",
            json!({"id": queued.to_string(), "status": "1"})
        ),
        ok("wallCheckSuccess", json!(queued))
    );
}

#[test]
fn rooms_do_not_hear_each_other() {
    let room = Fixture::new();
    room.everyone_joins();
    let elsewhere = token(json!(3), "wechatUser", "other", "carol");
    room.send_as("fd-carol", &elsewhere, "User.join", json!({}))
        .expect("carol joins room other");
    room.wall_says("demo only");
    assert!(room.inbox("fd-carol").is_empty());
    let history = room
        .send_as("fd-carol", &elsewhere, "User.history", json!({}))
        .expect("history answers")
        .expect("with an envelope");
    assert_eq!(Got::from(history), ok("wallSayHistory", json!([])));
}

#[test]
fn histories_are_paged_newest_first_and_count_is_clamped_to_1_through_20() {
    let room = Fixture::new();
    // 25 messages: ids 1..=25, so "10" < "9" as text would show a wrong order.
    let ids: Vec<i64> = (1..=25)
        .map(|n| Fixture::id_of(&room.wall_says(&format!("message {n}"))))
        .collect();
    let newest_first: Vec<i64> = ids.iter().rev().copied().collect();
    let page = |message: Value| Fixture::history_ids(&room.reply(ALICE, "User.history", message));
    assert_eq!(page(json!({})), newest_first[..10]);
    assert_eq!(page(json!({"page": 2})), newest_first[10..20]);
    assert_eq!(page(json!({"page": 3})), newest_first[20..]);
    assert_eq!(page(json!({"page": 4})), Vec::<i64>::new());
    assert_eq!(page(json!({"count": 100})), newest_first[..20]);
    assert_eq!(page(json!({"count": 0})), newest_first[..1]);
    assert_eq!(page(json!({"count": -7})), newest_first[..1]);
    assert_eq!(
        page(json!({"page": "2", "count": "5"})),
        newest_first[5..10]
    );
    assert_eq!(page(json!({"page": 0, "count": 3})), newest_first[..3]);
    assert_eq!(page(json!({"page": "x", "count": 3})), newest_first[..3]);
    let screen = Fixture::history_ids(&room.reply(
        WALL,
        "Wall.history",
        json!({"type": "wall", "page": 2, "count": 20}),
    ));
    assert_eq!(screen, newest_first[20..]);
}

#[test]
fn an_unreachable_registry_is_503_unavailable() {
    let room = Fixture::new();
    room.everyone_joins();
    room.host.state().unavailable = true;
    for (fd, method, message) in [
        (ALICE, "User.join", json!({})),
        (ALICE, "User.say", json!({"say": "hi"})),
        (ALICE, "User.history", json!({})),
        (WALL, "Wall.say", json!({"say": "hi"})),
        (WALL, "Wall.check", json!({"id": 1, "status": 1})),
        (WALL, "Wall.clean", json!({})),
        (WALL, "Wall.history", json!({"type": "user"})),
    ] {
        assert!(
            matches!(
                room.send(fd, method, message),
                Err(ModuleError::Unavailable(_))
            ),
            "{method}"
        );
    }
    // The checks that need no registry still answer as usual.
    room.refused(ALICE, "User.say", json!({}), 401, "badParameter");
    room.refused(ALICE, "Wall.say", json!({"say": "hi"}), 403, "mustBeWall");
}

#[test]
fn a_storage_error_storing_a_wall_message_is_501_insert_db_error() {
    let room = crate::room::Room::new(FakeHost::new().handle(), "demo", 0);
    let refused = crate::wall::insert_error(
        &room,
        mswoole_plugin_api::HostError::Storage("WRONGTYPE".into()),
    );
    assert!(
        matches!(&refused, ModuleError::Refused { status: 501, event, .. } if event.as_str() == "insertDbError"),
        "{refused:?}"
    );
    let unavailable = crate::wall::insert_error(
        &room,
        mswoole_plugin_api::HostError::Unavailable("down".into()),
    );
    assert!(matches!(unavailable, ModuleError::Unavailable(_)));
}

#[test]
fn joining_registers_the_close_key_and_on_close_removes_the_phone() {
    let room = Fixture::new();
    room.everyone_joins();
    {
        let state = room.host.state();
        assert!(state.close_keys[ALICE].contains("LIVE_USER_ROOM_demo"));
        assert!(state.close_controllers[ALICE].contains("Live.User"));
        assert!(state.close_keys[WALL].contains("LIVE_WALL_ROOM_demo"));
        assert!(!state.close_controllers.contains_key(WALL));
    }
    let info =
        json!({"fd": BOB, "code": "demo", "auth": {"id": 2, "type": "wechatUser", "code": "demo"}});
    block_on(room.live.on_close("User", info)).expect("onClose succeeds");
    assert_eq!(room.members("LIVE_USER_ROOM_demo"), vec![ALICE]);
    // Bob hears nothing more.
    room.wall_says("after bob left");
    assert!(room.inbox(BOB).is_empty());
    assert_eq!(room.inbox(ALICE).len(), 1);
    // Other controllers' onClose and incomplete infos change nothing.
    block_on(
        room.live
            .on_close("Wall", json!({"fd": WALL, "code": "demo"})),
    )
    .expect("ignored");
    block_on(room.live.on_close("User", json!({"fd": ALICE}))).expect("ignored");
    assert_eq!(room.members("LIVE_USER_ROOM_demo"), vec![ALICE]);
    assert_eq!(room.members("LIVE_WALL_ROOM_demo"), vec![WALL]);
}

#[test]
fn message_ids_come_from_one_counter_across_rooms() {
    let room = Fixture::new();
    room.everyone_joins();
    let first = room.user_says(ALICE, "in demo");
    let elsewhere = token(json!("w-8"), "wall", "other", "screen 2");
    let reply = room
        .send_as(
            "fd-wall-2",
            &elsewhere,
            "Wall.say",
            json!({"say": "in other"}),
        )
        .expect("wall say answers")
        .expect("with an envelope");
    let second = Got::from(reply).param.expect("the message");
    assert_eq!(Fixture::id_of(&second), first + 1);
    assert_eq!(
        room.host.state().counters.get("LIVE_MESSAGE_ID"),
        Some(&(first + 1))
    );
}

#[test]
fn the_config_takes_message_ttl_s_and_refuses_anything_else() {
    use crate::Settings;
    assert_eq!(Settings::from_config(&json!({})), Ok(Settings::default()));
    assert_eq!(
        Settings::from_config(&json!({"message_ttl_s": 3600})),
        Ok(Settings {
            message_ttl_s: 3600
        })
    );
    let unknown = Settings::from_config(&json!({"rooms": 3})).expect_err("unknown key");
    assert!(unknown.contains("modules.Live.rooms"), "{unknown}");
    let bad = Settings::from_config(&json!({"message_ttl_s": -1})).expect_err("bad value");
    assert!(bad.contains("modules.Live.message_ttl_s"), "{bad}");
}
