//! The Live protocol through the module test kit: one big screen and two phones
//! in room `demo`, as the host would route, prepare and answer their messages.

use std::{cell::RefCell, collections::HashMap};

use mswoole_module_test::{
    block_on, close_keys_key, controllers_key,
    serde_json::{json, Value},
    Conn, Failure, Options, Registry, TestHost,
};

use crate::{Live, Settings};

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

/// What a client received: status, event and param.
#[derive(Debug, Clone, PartialEq)]
struct Got {
    status: u16,
    event: String,
    param: Option<Value>,
}

impl From<Value> for Got {
    fn from(frame: Value) -> Self {
        Got {
            status: frame["status"]
                .as_u64()
                .and_then(|s| u16::try_from(s).ok())
                .expect("an envelope has a status"),
            event: frame["event"]
                .as_str()
                .expect("an envelope has an event")
                .into(),
            param: frame.get("param").cloned(),
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

/// Live on a test host where the three test connections are online (acks off, so
/// a reply is the first frame a sender gets).
struct Fixture {
    host: TestHost,
    /// Connections by fd.
    conns: RefCell<HashMap<String, Conn>>,
    /// Frames that arrived behind a reply, not yet looked at.
    backlog: RefCell<HashMap<String, Vec<Got>>>,
}

impl Fixture {
    fn new() -> Self {
        Self::with(Options::default(), json!({}))
    }

    /// The room with these kit options (`ack` off) and `[modules.Live]` table.
    fn with(options: Options, config: Value) -> Self {
        let host = TestHost::with_options(Options {
            ack: false,
            ..options
        });
        host.load::<Live>(config).expect("the config is valid");
        let room = Fixture {
            host,
            conns: RefCell::default(),
            backlog: RefCell::default(),
        };
        for fd in [WALL, ALICE, BOB] {
            room.conn_as(fd, &identity(fd));
        }
        room
    }

    /// The connection `fd`, connected with `claims` if it is not yet.
    fn conn_as(&self, fd: &str, claims: &Value) -> Conn {
        self.conns
            .borrow_mut()
            .entry(fd.into())
            .or_insert_with(|| self.host.connect_as(fd, claims.clone()))
            .clone()
    }

    /// `live.<method>` from `fd` (connected as `claims` if new): the reply it got.
    fn send_as(&self, fd: &str, claims: &Value, method: &str, mut message: Value) -> Got {
        message["method"] = Value::from(format!("live.{method}"));
        let conn = self.conn_as(fd, claims);
        // What arrived before this message is not its reply.
        let earlier = conn.take().into_iter().map(Got::from);
        self.backlog
            .borrow_mut()
            .entry(fd.into())
            .or_default()
            .extend(earlier);
        let mut frames = conn.send(message).into_iter();
        let reply = frames
            .next()
            .unwrap_or_else(|| panic!("{method} from {fd}: no reply"));
        self.backlog
            .borrow_mut()
            .entry(fd.into())
            .or_default()
            .extend(frames.map(Got::from));
        reply.into()
    }

    /// `method` from one of the three test connections: the reply.
    fn send(&self, fd: &str, method: &str, message: Value) -> Got {
        self.send_as(fd, &identity(fd), method, message)
    }

    /// `method` from `fd`, which must be answered 200.
    #[track_caller]
    fn reply(&self, fd: &str, method: &str, message: Value) -> Got {
        let got = self.send(fd, method, message);
        assert_eq!(got.status, 200, "{method} from {fd}: {got:?}");
        got
    }

    /// `method` from `fd`, which must be refused with `status` and `event`.
    #[track_caller]
    fn refused(&self, fd: &str, method: &str, message: Value, status: u16, event: &str) {
        let got = self.send(fd, method, message);
        assert_eq!(
            (got.status, got.event.as_str()),
            (status, event),
            "{method} from {fd}: {got:?}"
        );
    }

    /// Everything sent to `fd` since the last look, besides its replies.
    fn inbox(&self, fd: &str) -> Vec<Got> {
        let mut got = self.backlog.borrow_mut().remove(fd).unwrap_or_default();
        if let Some(conn) = self.conns.borrow().get(fd) {
            got.extend(conn.take().into_iter().map(Got::from));
        }
        got
    }

    /// Members of a set, sorted.
    fn members(&self, key: &str) -> Vec<String> {
        self.host.members(key)
    }

    /// Whether the registry holds nothing but connection records and nobody got a frame.
    fn untouched(&self) -> bool {
        let fds: Vec<String> = self.conns.borrow().keys().cloned().collect();
        let keys = self.host.registry().keys();
        keys.iter()
            .all(|key| key == "WEBSOCKET_FDINFO" || key == "WEBSOCKET_UIDTOFD")
            && fds.iter().all(|fd| self.inbox(fd).is_empty())
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
    let first = room.user_says(ALICE, "hello & <welcome>");
    let need_check = room.inbox(WALL);
    assert_eq!(need_check.len(), 1, "{need_check:?}");
    assert_eq!(
        (need_check[0].status, need_check[0].event.as_str()),
        (200, "userSayNeedCheck")
    );
    let queued = need_check[0].param.clone().expect("the message to check");
    assert_eq!(Fixture::id_of(&queued), first);
    assert_eq!(queued["nickname"], "alice");
    assert_eq!(
        queued["say"], "hello &amp; &lt;welcome&gt;",
        "the host escaped it"
    );
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
    // What they left is no longer theirs to clean up or be told about on close.
    for fd in [ALICE, WALL] {
        assert!(room.members(&close_keys_key(fd)).is_empty(), "{fd}");
        assert!(room.members(&controllers_key(fd)).is_empty(), "{fd}");
    }
    assert_eq!(room.members(&controllers_key(BOB)), vec!["Live.User"]);
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

#[test]
fn an_empty_room_code_is_999_before_anything_else() {
    let room = Fixture::new();
    // A phone without a room calling screen actions: the code is checked before the type.
    let no_room = token(json!(1), "wechatUser", "", "alice");
    for method in EVERY_ACTION {
        let got = room.send_as(
            "fd-no-room",
            &no_room,
            method,
            json!({"say": "hi", "id": 1}),
        );
        assert_eq!(
            (got.status, got.event.as_str()),
            (999, "codeIsEmpty"),
            "{method}"
        );
    }
    // A numeric room code is a room code: the host gives the module its text.
    let numeric_room = json!({"id": 4, "type": "wall", "code": 42, "nickname": "screen"});
    assert_eq!(
        room.send_as("fd-numeric", &numeric_room, "Wall.join", json!({})),
        ok_bare("wallJoinSuccess")
    );
    assert_eq!(room.members("LIVE_WALL_ROOM_42"), vec!["fd-numeric"]);
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
        let got = room.send_as("fd-anon", &anonymous, method, message.clone());
        assert_eq!(got.status, 403, "{method} as anonymous: {got:?}");
    }
    assert!(room.untouched(), "{:?}", room.host.registry().keys());
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
    let stored: Vec<String> = room
        .host
        .registry()
        .keys()
        .into_iter()
        .filter(|key| key.contains("MESSAGE"))
        .collect();
    assert!(stored.is_empty(), "nothing was stored: {stored:?}");
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
    assert_eq!(
        room.send_as("fd-carol", &elsewhere, "User.join", json!({})),
        ok_bare("userJoinSuccess")
    );
    room.wall_says("demo only");
    assert!(room.inbox("fd-carol").is_empty());
    let history = room.send_as("fd-carol", &elsewhere, "User.history", json!({}));
    assert_eq!(history, ok("wallSayHistory", json!([])));
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
    room.host.fail_registry(Failure::Unavailable);
    for (fd, method, message) in [
        (ALICE, "User.join", json!({})),
        (ALICE, "User.say", json!({"say": "hi"})),
        (ALICE, "User.history", json!({})),
        (WALL, "Wall.say", json!({"say": "hi"})),
        (WALL, "Wall.check", json!({"id": 1, "status": 1})),
        (WALL, "Wall.clean", json!({})),
        (WALL, "Wall.history", json!({"type": "user"})),
    ] {
        let got = room.send(fd, method, message);
        assert_eq!(
            (got.status, got.event.as_str()),
            (503, "unavailable"),
            "{method}"
        );
    }
    // The checks that need no registry still answer as usual.
    room.refused(ALICE, "User.say", json!({}), 401, "badParameter");
    room.refused(ALICE, "Wall.say", json!({"say": "hi"}), 403, "mustBeWall");
    // And when it is back, so is the room.
    room.host.heal_registry();
    room.user_says(ALICE, "back");
    assert_eq!(room.inbox(WALL).len(), 1);
}

#[test]
fn a_storage_error_storing_a_wall_message_is_501_insert_db_error() {
    let room = Fixture::new();
    room.everyone_joins();
    room.host.fail_registry(Failure::Storage);
    room.refused(WALL, "Wall.say", json!({"say": "hi"}), 501, "insertDbError");
    assert!(room.inbox(ALICE).is_empty(), "nothing is broadcast");
    assert!(
        room.host
            .log()
            .iter()
            .any(|line| line.module == "Live"
                && line.message.contains("cannot store a wall message")),
        "the detail goes to the log"
    );
}

#[test]
fn joining_registers_the_close_key_and_closing_removes_the_phone() {
    let room = Fixture::new();
    room.everyone_joins();
    assert!(room
        .members(&close_keys_key(ALICE))
        .contains(&"LIVE_USER_ROOM_demo".to_string()));
    assert_eq!(room.members(&controllers_key(ALICE)), vec!["Live.User"]);
    assert_eq!(
        room.members(&close_keys_key(WALL)),
        vec!["LIVE_WALL_ROOM_demo"]
    );
    assert!(room.members(&controllers_key(WALL)).is_empty());
    // Bob's phone drops: the host runs its close sequence, Live's onClose included.
    room.conns.borrow()[BOB].close();
    assert_eq!(room.members("LIVE_USER_ROOM_demo"), vec![ALICE]);
    assert!(room
        .host
        .registry()
        .keys()
        .iter()
        .all(|key| !key.contains(BOB)));
    // Bob hears nothing more.
    room.wall_says("after bob left");
    assert!(room.inbox(BOB).is_empty());
    assert_eq!(room.inbox(ALICE).len(), 1);
    // The screen closing leaves its room and nothing else.
    room.conns.borrow()[WALL].close();
    assert!(room.members("LIVE_WALL_ROOM_demo").is_empty());
    assert_eq!(room.members("LIVE_USER_ROOM_demo"), vec![ALICE]);
}

#[test]
fn message_ids_come_from_one_counter_across_rooms() {
    let room = Fixture::new();
    room.everyone_joins();
    let first = room.user_says(ALICE, "in demo");
    let elsewhere = token(json!("w-8"), "wall", "other", "screen 2");
    let reply = room.send_as(
        "fd-wall-2",
        &elsewhere,
        "Wall.say",
        json!({"say": "in other"}),
    );
    let second = reply.param.expect("the message");
    assert_eq!(Fixture::id_of(&second), first + 1);
    assert_eq!(
        block_on(room.host.registry().incr("LIVE_MESSAGE_ID", 0)),
        Ok(first + 1)
    );
}

#[test]
fn the_config_takes_message_ttl_s_and_refuses_anything_else() {
    assert_eq!(Settings::from_config(&json!({})), Ok(Settings::default()));
    assert_eq!(
        Settings::from_config(&json!({"message_ttl_s": 3600})),
        Ok(Settings {
            message_ttl_s: 3600,
            ..Settings::default()
        })
    );
    let sql = Settings::from_config(&json!({"database": "main", "wall_table": "wall"}))
        .expect("database and wall_table");
    assert_eq!(sql.database.as_deref(), Some("main"));
    assert_eq!(sql.wall_table, "wall");
    let unknown = Settings::from_config(&json!({"rooms": 3})).expect_err("unknown key");
    assert!(unknown.contains("modules.Live.rooms"), "{unknown}");
    let bad = Settings::from_config(&json!({"message_ttl_s": -1})).expect_err("bad value");
    assert!(bad.contains("modules.Live.message_ttl_s"), "{bad}");
    assert_eq!(Settings::default().queue_max, 1000);
    assert_eq!(
        Settings::from_config(&json!({"queue_max": 3})).map(|s| s.queue_max),
        Ok(3)
    );
    for bad in [json!(0), json!(-1), json!("3"), json!(2.5)] {
        let refused = Settings::from_config(&json!({ "queue_max": bad })).expect_err("bad value");
        assert!(refused.contains("modules.Live.queue_max"), "{refused}");
    }
}

/// The log lines of Live that say a room's queue started dropping messages.
fn overflow_lines(room: &Fixture) -> usize {
    room.host
        .log()
        .iter()
        .filter(|line| line.module == "Live" && line.message.contains("moderation queue is full"))
        .count()
}

#[test]
fn the_moderation_queue_keeps_the_newest_queue_max_messages() {
    let room = Fixture::with(Options::default(), json!({"queue_max": 3}));
    room.everyone_joins();
    let ids: Vec<i64> = (1..=5)
        .map(|n| room.user_says(if n % 2 == 0 { BOB } else { ALICE }, &format!("say {n}")))
        .collect();
    // The screen was told about all five as they came.
    assert_eq!(room.inbox(WALL).len(), 5);
    let newest_first: Vec<i64> = ids.iter().rev().take(3).copied().collect();
    let queue = room.reply(WALL, "Wall.history", json!({"type": "user"}));
    assert_eq!(queue.event, "userSayHistory");
    assert_eq!(Fixture::history_ids(&queue), newest_first);
    let says: Vec<&str> = queue
        .param
        .as_ref()
        .and_then(Value::as_array)
        .expect("a history is an array")
        .iter()
        .filter_map(|message| message["say"].as_str())
        .collect();
    assert_eq!(says, ["say 5", "say 4", "say 3"]);
    assert_eq!(room.host.hash("LIVE_USER_MESSAGE_demo").len(), 3);
    // Dropped is gone: checking it is 404.
    room.refused(
        WALL,
        "Wall.check",
        json!({"id": ids[0], "status": 1}),
        404,
        "messageNotFound",
    );
    // Two drops, one burst: logged once.
    assert_eq!(overflow_lines(&room), 1);
    // The screen checks one: the next say fits, and the burst is over.
    room.reply(WALL, "Wall.check", json!({"id": ids[2], "status": 0}));
    let sixth = room.user_says(ALICE, "say 6");
    assert_eq!(room.host.hash("LIVE_USER_MESSAGE_demo").len(), 3);
    assert_eq!(overflow_lines(&room), 1);
    // A new burst is logged again, and drops the oldest left (say 4).
    let seventh = room.user_says(BOB, "say 7");
    assert_eq!(overflow_lines(&room), 2);
    let queue = room.reply(WALL, "Wall.history", json!({"type": "user"}));
    assert_eq!(Fixture::history_ids(&queue), [seventh, sixth, ids[4]]);
    // Other rooms have queues of their own.
    let elsewhere = token(json!(3), "wechatUser", "other", "carol");
    let carol = room.send_as("fd-carol", &elsewhere, "User.say", json!({"say": "hi"}));
    assert_eq!(carol.event, "userSaySuccess");
    assert_eq!(room.host.hash("LIVE_USER_MESSAGE_other").len(), 1);
    assert_eq!(room.host.hash("LIVE_USER_MESSAGE_demo").len(), 3);
}

#[test]
fn a_large_queue_is_trimmed_every_sixteenth_of_queue_max_says() {
    // queue_max 32: trimmed on every second say, so at most one message over between trims.
    let room = Fixture::with(Options::default(), json!({"queue_max": 32}));
    let ids: Vec<i64> = (1..=40)
        .map(|n| room.user_says(ALICE, &format!("say {n}")))
        .collect();
    let queued = |room: &Fixture| -> Vec<i64> {
        let mut ids: Vec<i64> = room
            .host
            .hash("LIVE_USER_MESSAGE_demo")
            .keys()
            .map(|id| id.parse().expect("fields are ids"))
            .collect();
        ids.sort_unstable();
        ids
    };
    assert_eq!(queued(&room), ids[8..]);
    let one_more = room.user_says(ALICE, "say 41");
    assert_eq!(queued(&room).len(), 33);
    let trimmed = room.user_says(ALICE, "say 42");
    let mut newest: Vec<i64> = ids[10..].to_vec();
    newest.extend([one_more, trimmed]);
    assert_eq!(queued(&room), newest);
    assert_eq!(overflow_lines(&room), 1);
}

/// The rows of the wall table, oldest first.
fn wall_rows(room: &Fixture, table: &str) -> Vec<Value> {
    room.host
        .query(
            "default",
            &format!("SELECT * FROM {table} ORDER BY id"),
            &[],
        )
        .expect("the table is there")
        .into_iter()
        .map(Value::Object)
        .collect()
}

#[test]
fn with_a_database_wall_messages_are_rows_of_mswooles_table() {
    let room = Fixture::with(Options::default(), json!({"database": "default"}));
    room.everyone_joins();
    // Ids still come from the one counter for the moderation queue.
    let queued = room.user_says(ALICE, "queued");
    let first = room.wall_says("hello <b>");
    let second = room.wall_says("second");
    assert_eq!(Fixture::id_of(&first), 1, "SQL wall ids are the table's");
    assert_eq!(Fixture::id_of(&second), 2);
    assert_eq!(queued, 1, "the queue keeps the registry counter");
    assert_eq!(
        keys(&first),
        ["id", "code", "nickname", "say", "user_id", "ctime"]
    );
    assert_eq!(first["user_id"], "w-7", "the id as issued in the token");
    assert_eq!(first["say"], "hello &lt;b&gt;");
    for phone in [ALICE, BOB] {
        let got = room.inbox(phone);
        assert!(
            got.contains(&ok("wallSayBroadcast", first.clone())),
            "{got:?}"
        );
    }
    let rows = wall_rows(&room, "live_wall_message");
    assert_eq!(rows.len(), 2);
    let row = &rows[0];
    assert_eq!(row["code"], "demo");
    assert_eq!(row["nickname"], "big screen");
    assert_eq!(row["say"], "hello &lt;b&gt;");
    assert_eq!(row["user_id"], "w-7");
    assert_eq!(row["status"], 1);
    assert_eq!(row["create_time"], first["ctime"]);
    assert_eq!(row["update_time"], first["ctime"]);

    // Recall sets status 0; both histories read shown rows, newest first.
    room.reply(WALL, "Wall.recall", json!({"id": 1}));
    assert_eq!(wall_rows(&room, "live_wall_message")[0]["status"], 0);
    let third = room.wall_says("third");
    let history = room.reply(ALICE, "User.history", json!({}));
    assert_eq!(Fixture::history_ids(&history), [3, 2]);
    let wall_history = room.reply(
        WALL,
        "Wall.history",
        json!({"type": "wall", "count": 1, "page": 2}),
    );
    assert_eq!(Fixture::history_ids(&wall_history), [2]);
    assert_eq!(
        history.param.as_ref().and_then(|p| p.get(0)).cloned(),
        Some(third)
    );
    // A recall is scoped to the room: another room's screen cannot touch it.
    let other = token(json!("w-9"), "wall", "other", "other screen");
    let refused = room.send_as("fd-other", &other, "Wall.recall", json!({"id": 2}));
    assert_eq!(
        (refused.status, refused.event.as_str()),
        (404, "messageNotFound")
    );
    assert_eq!(wall_rows(&room, "live_wall_message")[1]["status"], 1);
    // Recalling again still answers (a retry after a failed broadcast), even on MySQL.
    room.reply(WALL, "Wall.recall", json!({"id": 1}));
    room.refused(
        WALL,
        "Wall.recall",
        json!({"id": 99}),
        404,
        "messageNotFound",
    );
    // Nothing of the wall went to the registry.
    assert!(!room
        .host
        .registry()
        .keys()
        .iter()
        .any(|k| k.starts_with("LIVE_WALL_MESSAGE")));
}

#[test]
fn wall_table_renames_the_table_and_a_user_id_number_stays_a_number() {
    let room = Fixture::with(
        Options::default(),
        json!({"database": "default", "wall_table": "screen_messages"}),
    );
    room.everyone_joins();
    let said = room.wall_says("hi");
    assert_eq!(wall_rows(&room, "screen_messages").len(), 1);
    let numeric = token(json!(42), "wall", "demo", "numbered");
    let reply = room.send_as("fd-42", &numeric, "Wall.say", json!({"say": "n"}));
    assert_eq!(
        reply.param.as_ref().map(|p| p["user_id"].clone()),
        Some(json!(42))
    );
    let history = room.reply(ALICE, "User.history", json!({}));
    let users: Vec<Value> = history
        .param
        .as_ref()
        .and_then(Value::as_array)
        .map(|a| a.iter().map(|m| m["user_id"].clone()).collect())
        .unwrap_or_default();
    assert_eq!(users, [json!(42), said["user_id"].clone()]);
    let bad = Settings::from_config(&json!({"database": "default", "wall_table": "x; DROP"}))
        .map(|s| crate::wall_store::SqlWall::new("default", &s.wall_table).map(drop));
    assert!(matches!(bad, Ok(Err(_))), "{bad:?}");
}

#[test]
fn a_failed_insert_is_501_insert_db_error_and_broadcasts_nothing() {
    let room = Fixture::with(Options::default(), json!({"database": "default"}));
    room.everyone_joins();
    // A table of that name that is not MSwoole's: the insert fails (BadStatement).
    room.host
        .execute("default", "DROP TABLE live_wall_message", &[])
        .expect("dropped");
    room.host
        .execute("default", "CREATE TABLE live_wall_message (x INTEGER)", &[])
        .expect("created");
    room.refused(
        WALL,
        "Wall.say",
        json!({"say": "lost"}),
        501,
        "insertDbError",
    );
    for phone in [ALICE, BOB] {
        assert!(room.inbox(phone).is_empty(), "nothing was broadcast");
    }
    assert!(room
        .host
        .log()
        .iter()
        .any(|line| line.message.contains("cannot store a wall message")));
}

#[test]
fn an_unreachable_database_is_503_and_does_not_stop_live_from_loading() {
    let dir = std::env::temp_dir().join(format!("live-gone-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("dir");
    let mut options = Options::default();
    options
        .databases
        .insert("gone".into(), format!("sqlite://{}", dir.display()));
    let room = Fixture::with(options, json!({"database": "gone"}));
    room.everyone_joins();
    room.refused(
        WALL,
        "Wall.say",
        json!({"say": "later"}),
        503,
        "unavailable",
    );
    room.refused(ALICE, "User.history", json!({}), 503, "unavailable");
    assert!(room
        .host
        .log()
        .iter()
        .any(|l| l.message.contains("not created yet")));
    let _ = std::fs::remove_dir(&dir);
}
