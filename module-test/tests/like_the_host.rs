//! The kit behaves like the host: each test names a way the old fake host
//! (plugin-api's `testing::FakeHost`) differed from the real one, and would have
//! caught it.

use std::sync::{
    atomic::{AtomicBool, Ordering},
    Arc,
};

use mswoole_module_test::{
    block_on, close_keys_key,
    serde_json::{json, Value},
    Failure, Options, Registry, TestHost,
};
use mswoole_plugin_api::{
    BoxFuture, Envelope, Host, LogLevel, Module, ModuleError, ModuleInfo, Outcome, Request,
};

/// A module that does what it is asked, to watch the host around it.
struct Probe {
    host: Host,
    /// Set when `onClose` ran.
    closed: Arc<AtomicBool>,
    /// Panic in the destructor (set by the config).
    panic_on_drop: bool,
}

impl Module for Probe {
    fn info() -> ModuleInfo {
        ModuleInfo::new("Probe", "1.0.0").controller(
            "ChatRoom",
            &["getHistory", "echo", "call", "sleep", "panic", "leave"],
        )
    }

    fn new(host: Host, config: Value) -> Result<Self, String> {
        Ok(Probe {
            host,
            closed: Arc::default(),
            panic_on_drop: config["panic_on_drop"].as_bool().unwrap_or(false),
        })
    }

    fn call(&self, request: Request) -> BoxFuture<Outcome> {
        let host = self.host.clone();
        Box::pin(async move {
            let names = json!({"controller": request.controller, "action": request.action});
            match request.action.as_str() {
                "getHistory" => Ok(Some(Envelope::ok("names", "").with_param(&names))),
                "echo" => Ok(Some(Envelope::ok("echo", "").with_param(request.message()))),
                "call" => {
                    // Runs one host API call named in the message and reports its result.
                    let key = request.str_param("key")?.to_string();
                    let result = match request.str_param("op")? {
                        "set_add" => host.set_add(&key, &request.fd).await.map(Value::from),
                        "incr" => {
                            let by = request.message()["by"].as_i64().unwrap_or(1);
                            host.incr(&key, by).await.map(Value::from)
                        }
                        "expire" => host.expire(&key, 10).await.map(Value::from),
                        "members" => host.set_members(&key).await.map(Value::from),
                        "join" => {
                            host.set_add(&key, &request.fd).await?;
                            host.add_close_key(&request.fd, &key).await?;
                            host.add_close_controller(&request.fd, "Probe.ChatRoom")
                                .await
                                .map(|()| Value::Null)
                        }
                        "tell" => host
                            .send_to_set(
                                &key,
                                Envelope::ok("told", "")
                                    .with_param(&Value::from(request.fd.as_str())),
                            )
                            .await
                            .map(Value::from),
                        "close" => host.close(&key).await.map(Value::from),
                        other => return Err(ModuleError::failed(format!("unknown op {other}"))),
                    };
                    Ok(Some(Envelope::ok("called", "").with_param(&result?)))
                }
                "sleep" => {
                    host.sleep(1000).await?;
                    Ok(Some(Envelope::ok("slept", "")))
                }
                "panic" => panic!("asked to panic"),
                "leave" => {
                    let key = request.str_param("key")?.to_string();
                    host.remove_close_key(&request.fd, &key).await?;
                    host.remove_close_controller(&request.fd, "Probe.ChatRoom")
                        .await?;
                    Ok(Some(Envelope::ok("left", "")))
                }
                _ => Err(ModuleError::failed("undeclared")),
            }
        })
    }

    fn on_close(&self, controller: &str, info: Value) -> BoxFuture<Result<(), ModuleError>> {
        let (host, closed) = (self.host.clone(), self.closed.clone());
        let controller = controller.to_string();
        Box::pin(async move {
            closed.store(true, Ordering::SeqCst);
            let fd = info["fd"].as_str().unwrap_or("").to_string();
            // The closing connection is still in its rooms while onClose runs.
            let still_in = host.set_members("ROOM").await?.contains(&fd);
            host.log(
                LogLevel::Info,
                &format!("onClose {controller} {fd} in room: {still_in}"),
            );
            Ok(())
        })
    }
}

impl Drop for Probe {
    fn drop(&mut self) {
        if self.panic_on_drop {
            panic!("the destructor panics");
        }
    }
}

fn host() -> TestHost {
    let host = TestHost::with_options(Options {
        ack: false,
        ..Options::default()
    });
    host.load::<Probe>(json!({})).expect("Probe loads");
    host
}

fn user(id: i64) -> Value {
    json!({"id": id, "type": "wechatUser", "code": "demo", "nickname": "<b>n</b>", "ctime": 1})
}

#[test]
fn strings_are_escaped_and_fd_code_auth_injected() {
    let host = host();
    let phone = host.connect(user(1));
    let reply = phone
        .send(json!({"method": "probe.chatroom.echo", "say": "<i>&'\"", "fd": "x", "auth": 1}));
    let message = &reply[0]["param"];
    assert_eq!(message["say"], "&lt;i&gt;&amp;&#039;&quot;");
    assert_eq!(message["fd"], phone.fd());
    assert_eq!(message["code"], "demo");
    assert_eq!(
        message["auth"],
        json!({"id": 1, "type": "wechatUser", "code": "demo", "nickname": "&lt;b&gt;n&lt;/b&gt;"})
    );
}

#[test]
fn escaping_follows_the_option() {
    let host = TestHost::with_options(Options {
        ack: false,
        escape_html: false,
        ..Options::default()
    });
    host.load::<Probe>(json!({})).expect("loads");
    let reply = host
        .connect(user(1))
        .send(json!({"method": "probe.chatroom.echo", "say": "<i>"}));
    assert_eq!(reply[0]["param"]["say"], "<i>");
}

#[test]
fn a_numeric_room_code_is_its_text() {
    let host = host();
    let screen = host.connect(json!({"id": "w", "type": "wall", "code": 42}));
    let reply = screen.send(json!({"method": "probe.chatroom.echo"}));
    assert_eq!(reply[0]["param"]["code"], "42");
}

#[test]
fn the_hosts_keys_are_refused_to_modules() {
    let host = host();
    let reply = host
        .connect(user(1))
        .send(json!({"method": "probe.chatroom.call", "op": "set_add", "key": "WEBSOCKET_FDINFO"}));
    assert_eq!(reply[0]["status"], 500, "{reply:?}");
    assert!(host
        .log()
        .iter()
        .any(|line| line.message.contains("belongs to the host")));
}

#[test]
fn names_reach_the_module_as_declared_and_routing_ignores_case() {
    let host = host();
    let phone = host.connect(user(1));
    for method in [
        "probe.chatroom.gethistory",
        "PROBE.CHATROOM.GETHISTORY",
        "Probe.ChatRoom.getHistory",
    ] {
        let reply = phone.send(json!({ "method": method }));
        assert_eq!(
            reply[0]["param"],
            json!({"controller": "ChatRoom", "action": "getHistory"}),
            "{method}"
        );
    }
    let reply = phone.send(json!({"method": "probe.chatroom.<b>"}));
    assert_eq!(
        reply[0]["event"], "controllerNotFound",
        "a name that is not a name is never echoed"
    );
}

#[test]
fn a_panic_becomes_500_for_that_request_only() {
    let host = host();
    let phone = host.connect(user(1));
    let reply = phone.send(json!({"method": "probe.chatroom.panic"}));
    assert_eq!(
        reply,
        vec![json!({"status": 500, "event": "controllerError", "info": "控制器执行错误"})]
    );
    assert!(host
        .log()
        .iter()
        .any(|l| l.module == "Probe" && l.message.contains("asked to panic")));
    assert_eq!(
        phone.send(json!({"method": "probe.chatroom.getHistory"}))[0]["status"],
        200
    );
}

#[test]
fn counters_that_would_overflow_are_a_storage_error() {
    let host = host();
    let phone = host.connect(user(1));
    let incr = |by: i64| {
        phone.send(json!({"method": "probe.chatroom.call", "op": "incr", "key": "C", "by": by}))
    };
    assert_eq!(incr(i64::MAX)[0]["param"], i64::MAX);
    assert_eq!(
        incr(1)[0],
        json!({"status": 501, "event": "storageError", "info": "存储错误"})
    );
}

#[test]
fn keys_expire_when_the_clock_passes() {
    let host = host();
    let phone = host.connect(user(1));
    phone.send(json!({"method": "probe.chatroom.call", "op": "set_add", "key": "S"}));
    let reply = phone.send(json!({"method": "probe.chatroom.call", "op": "expire", "key": "S"}));
    assert_eq!(reply[0]["param"], true);
    host.advance_ms(9_999);
    assert_eq!(host.members("S"), vec![phone.fd().to_string()]);
    host.advance_ms(1);
    assert!(host.members("S").is_empty());
}

#[test]
fn sleep_waits_for_the_clock_and_frames_meanwhile_come_first() {
    let host = host();
    let (a, b) = (host.connect(user(1)), host.connect(user(2)));
    a.send(json!({"method": "probe.chatroom.call", "op": "set_add", "key": "R"}));
    assert!(a.send(json!({"method": "probe.chatroom.sleep"})).is_empty());
    // While a's call sleeps, b tells the room: a gets it at once.
    b.send(json!({"method": "probe.chatroom.call", "op": "tell", "key": "R"}));
    assert_eq!(a.take()[0]["event"], "told");
    // Messages of one connection are handled in order: this waits behind the sleep.
    assert!(a
        .send(json!({"method": "probe.chatroom.getHistory"}))
        .is_empty());
    host.advance_ms(999);
    assert!(a.take().is_empty());
    host.advance_ms(1);
    let events: Vec<Value> = a.take().iter().map(|f| f["event"].clone()).collect();
    assert_eq!(events, [json!("slept"), json!("names")]);
}

#[test]
fn a_call_past_call_timeout_ms_is_500_and_the_log_names_it() {
    let host = TestHost::with_options(Options {
        ack: false,
        call_timeout_ms: 500,
        ..Options::default()
    });
    host.load::<Probe>(json!({})).expect("loads");
    let phone = host.connect(user(1));
    phone.send(json!({"method": "probe.chatroom.sleep"}));
    host.advance_ms(499);
    assert!(phone.take().is_empty());
    host.advance_ms(1);
    assert_eq!(phone.take()[0]["event"], "controllerError");
    let line = host
        .log()
        .into_iter()
        .find(|l| l.message.contains("500 ms"))
        .expect("logged");
    assert!(line.message.contains("Probe.ChatRoom.sleep"), "{line:?}");
}

#[test]
fn a_close_runs_the_close_sequence_in_order() {
    let host = host();
    let (a, b) = (host.connect(user(1)), host.connect(user(2)));
    for conn in [&a, &b] {
        conn.send(json!({"method": "probe.chatroom.call", "op": "join", "key": "ROOM"}));
    }
    assert_eq!(host.members(&close_keys_key(a.fd())), vec!["ROOM"]);
    a.close();
    assert!(!a.is_open());
    assert_eq!(host.members("ROOM"), vec![b.fd().to_string()]);
    let said = format!("onClose ChatRoom {} in room: true", a.fd());
    assert!(
        host.log().iter().any(|l| l.message == said),
        "{:?}",
        host.log()
    );
    assert!(block_on(host.registry().identity(a.fd()))
        .expect("registry")
        .is_none());
    assert!(host.registry().keys().iter().all(|k| !k.contains(a.fd())));
}

#[test]
fn a_module_closing_a_connection_ends_it_with_1000_and_its_sequence_runs() {
    let host = host();
    let (a, b) = (host.connect(user(1)), host.connect(user(2)));
    a.send(json!({"method": "probe.chatroom.call", "op": "join", "key": "ROOM"}));
    let reply = b.send(json!({"method": "probe.chatroom.call", "op": "close", "key": a.fd()}));
    assert_eq!(reply[0]["param"], true);
    assert_eq!(a.close_code(), Some(1000));
    assert!(host.members("ROOM").is_empty());
}

#[test]
fn removed_close_keys_and_controllers_are_not_run() {
    let host = host();
    let a = host.connect(user(1));
    a.send(json!({"method": "probe.chatroom.call", "op": "join", "key": "ROOM"}));
    assert_eq!(
        a.send(json!({"method": "probe.chatroom.leave", "key": "ROOM"}))[0]["event"],
        "left"
    );
    a.close();
    assert_eq!(
        host.members("ROOM"),
        vec![a.fd().to_string()],
        "no longer removed on close"
    );
    assert!(!host.log().iter().any(|l| l.message.starts_with("onClose")));
}

#[test]
fn registry_outages_are_503_and_refused_writes_501() {
    let host = host();
    let phone = host.connect(user(1));
    let add = || phone.send(json!({"method": "probe.chatroom.call", "op": "set_add", "key": "S"}));
    host.fail_registry(Failure::Unavailable);
    assert_eq!(
        add()[0],
        json!({"status": 503, "event": "unavailable", "info": "服务暂不可用"})
    );
    host.fail_registry(Failure::Storage);
    assert_eq!(add()[0]["status"], 501);
    host.heal_registry();
    assert_eq!(add()[0]["param"], true);
}

#[test]
fn bad_input_is_answered_after_the_messages_before_it_then_closed() {
    let host = TestHost::new();
    host.load::<Probe>(json!({})).expect("loads");
    let phone = host.connect(user(1));
    assert_eq!(phone.send_text("2"), vec![json!(3)]);
    let frames = phone.send_text("not json");
    assert_eq!(
        frames,
        vec![json!({"status": 400, "event": "badRequest", "info": "请求格式错误"})]
    );
    assert_eq!(phone.close_code(), Some(1007));
    let other = host.connect(user(2));
    other.send_binary();
    assert_eq!(other.close_code(), Some(1003));
    let frames = host
        .connect(user(3))
        .send(json!({"method": "probe.nope.x"}));
    assert_eq!(frames[0]["event"], "receiveMessage", "the ack comes first");
    assert_eq!(frames[1]["status"], 404);
}

#[test]
fn a_panicking_destructor_of_a_retired_version_is_contained() {
    let host = TestHost::new();
    host.load::<Probe>(json!({"panic_on_drop": true}))
        .expect("loads");
    host.swap::<Probe>(json!({}))
        .expect("the new version replaces it");
    assert!(host
        .log()
        .iter()
        .any(|l| l.level == LogLevel::Error && l.message.contains("destructor panicked")));
    let reply = host
        .connect(user(1))
        .send(json!({"method": "probe.chatroom.getHistory"}));
    assert_eq!(reply[1]["status"], 200, "the new version serves");
}

#[test]
fn over_the_rate_is_429_in_turn_and_too_long_over_it_closes_1008_as_in_the_host() {
    let host = TestHost::with_options(Options {
        ack: false,
        messages_per_s: 1,
        messages_burst: 2,
        rate_close_after_s: 2,
        ..Options::default()
    });
    host.load::<Probe>(json!({})).expect("Probe loads");
    let phone = host.connect(user(1));
    let statuses = |frames: Vec<Value>| -> Vec<u64> {
        frames.iter().filter_map(|f| f["status"].as_u64()).collect()
    };
    // The burst passes, the rest of the same instant is 429, each in its turn.
    let mut seen = Vec::new();
    for _ in 0..4 {
        seen.extend(statuses(
            phone.send(json!({"method": "probe.chatroom.getHistory"})),
        ));
    }
    assert_eq!(seen, [200, 200, 429, 429]);
    // Over the rate for rate_close_after_s on the kit's clock: closed with 1008.
    for _ in 0..30 {
        host.advance_ms(100);
        phone.send(json!({"method": "probe.chatroom.getHistory"}));
        phone.send(json!({"method": "probe.chatroom.getHistory"}));
        if !phone.is_open() {
            break;
        }
    }
    assert!(!phone.is_open(), "still open after 3 s over its rate");
    assert_eq!(phone.close_code(), Some(1008));
}
