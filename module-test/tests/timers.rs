//! Timers in the kit follow the host's rules: by name per module, on the manual
//! clock, re-armed on repeat, a tick skipped while the previous one still runs,
//! kept across a hot swap, bounded in number.

use std::sync::{
    atomic::{AtomicBool, Ordering},
    Arc,
};

use mswoole_module_test::{serde_json::json, Options, TestHost};
use mswoole_plugin_api::{
    serde_json::Value, BoxFuture, Envelope, Host, LogLevel, Module, ModuleError, ModuleInfo,
    Outcome, Request,
};

/// A module whose actions arm timers and whose `on_timer` logs what it got.
struct Clock {
    host: Host,
    /// Which version this is, for the log.
    version: u64,
    /// `on_timer` sleeps this long (to overlap ticks).
    slow: Arc<AtomicBool>,
}

impl Module for Clock {
    fn info() -> ModuleInfo {
        ModuleInfo::new("Clock", "1.0.0").controller("Index", &["after", "every", "cancel", "slow"])
    }

    fn new(host: Host, config: Value) -> Result<Self, String> {
        Ok(Clock {
            host,
            version: config["version"].as_u64().unwrap_or(1),
            slow: Arc::default(),
        })
    }

    fn on_start(&self) -> BoxFuture<Result<(), ModuleError>> {
        let armed = self
            .host
            .timer_every("heartbeat", 1000, &json!({"from": "on_start"}));
        Box::pin(async move { armed.map_err(ModuleError::from) })
    }

    fn call(&self, request: Request) -> BoxFuture<Outcome> {
        let host = self.host.clone();
        let slow = self.slow.clone();
        Box::pin(async move {
            let ms = request.message()["ms"].as_u64().unwrap_or(100);
            let name = request.message()["name"]
                .as_str()
                .unwrap_or("t")
                .to_string();
            let done = match request.action.as_str() {
                "after" => host.timer_after(&name, ms, &json!({"n": 1})).map(|()| true),
                "every" => host.timer_every(&name, ms, &json!({"n": 2})).map(|()| true),
                "cancel" => Ok(host.timer_cancel(&name)),
                "slow" => {
                    slow.store(true, Ordering::SeqCst);
                    Ok(true)
                }
                _ => Ok(false),
            };
            match done {
                Ok(done) => Ok(Some(Envelope::ok("done", "").with_param(&json!(done)))),
                Err(error) => Ok(Some(Envelope::new(400, "refused", &format!("{error:?}")))),
            }
        })
    }

    fn on_timer(&self, name: &str, payload: Value) -> BoxFuture<Result<(), ModuleError>> {
        let (host, version, slow) = (self.host.clone(), self.version, self.slow.clone());
        let name = name.to_string();
        Box::pin(async move {
            if name == "boom" {
                panic!("on_timer panics");
            }
            host.log(LogLevel::Info, &format!("tick {name} v{version} {payload}"));
            if slow.load(Ordering::SeqCst) {
                host.sleep(250).await?;
            }
            Ok(())
        })
    }
}

fn host() -> (TestHost, mswoole_module_test::Conn) {
    let host = TestHost::with_options(Options {
        ack: false,
        timers_per_module: 3,
        ..Options::default()
    });
    host.load::<Clock>(json!({})).expect("loads");
    let conn = host.connect(json!({"id": 1, "type": "wechatUser", "code": "demo"}));
    (host, conn)
}

/// The `tick` log lines for timer `name` so far.
fn ticks(host: &TestHost, name: &str) -> Vec<String> {
    host.log()
        .into_iter()
        .map(|line| line.message)
        .filter(|m| m.starts_with(&format!("tick {name} ")))
        .collect()
}

#[test]
fn a_timer_fires_once_after_its_delay_with_its_payload() {
    let (host, conn) = host();
    conn.send(json!({"method": "clock.index.after", "name": "once", "ms": 300}));
    host.advance_ms(299);
    assert!(ticks(&host, "once").is_empty());
    host.advance_ms(1);
    assert_eq!(ticks(&host, "once"), vec![r#"tick once v1 {"n":1}"#]);
    host.advance_ms(5000);
    assert_eq!(ticks(&host, "once").len(), 1, "once only");
}

#[test]
fn a_repeating_timer_fires_every_interval_until_cancelled() {
    let (host, conn) = host();
    conn.send(json!({"method": "clock.index.every", "name": "rep", "ms": 100}));
    host.advance_ms(1000);
    assert_eq!(ticks(&host, "rep").len(), 10);
    let reply = conn.send(json!({"method": "clock.index.cancel", "name": "rep"}));
    assert_eq!(reply[0]["param"], true);
    host.advance_ms(1000);
    assert_eq!(ticks(&host, "rep").len(), 10);
    let again = conn.send(json!({"method": "clock.index.cancel", "name": "rep"}));
    assert_eq!(again[0]["param"], false);
}

#[test]
fn setting_a_name_again_replaces_it() {
    let (host, conn) = host();
    conn.send(json!({"method": "clock.index.every", "name": "rep", "ms": 100}));
    conn.send(json!({"method": "clock.index.every", "name": "rep", "ms": 500}));
    host.advance_ms(1000);
    assert_eq!(ticks(&host, "rep").len(), 2);
}

#[test]
fn a_tick_due_while_the_previous_one_runs_is_skipped() {
    let (host, conn) = host();
    conn.send(json!({"method": "clock.index.slow"}));
    conn.send(json!({"method": "clock.index.every", "name": "rep", "ms": 100}));
    host.advance_ms(1000);
    // Each on_timer takes 250 ms: ticks at 100, 400, 700, 1000 (the ones between are skipped).
    assert_eq!(ticks(&host, "rep").len(), 4, "{:?}", ticks(&host, "rep"));
}

#[test]
fn timers_are_bounded_and_repeats_are_at_least_10_ms() {
    let (host, conn) = host();
    // on_start armed "heartbeat": two more fit under a limit of 3.
    for name in ["a", "b"] {
        let reply = conn.send(json!({"method": "clock.index.after", "name": name, "ms": 100}));
        assert_eq!(reply[0]["param"], true);
    }
    let refused = conn.send(json!({"method": "clock.index.after", "name": "c", "ms": 100}));
    assert_eq!(refused[0]["status"], 400);
    assert!(refused[0]["info"]
        .as_str()
        .is_some_and(|i| i.contains("timers_per_module")));
    let replaced = conn.send(json!({"method": "clock.index.after", "name": "a", "ms": 200}));
    assert_eq!(
        replaced[0]["param"], true,
        "re-arming a name is not one more"
    );
    let fast = conn.send(json!({"method": "clock.index.every", "name": "a", "ms": 9}));
    assert!(fast[0]["info"]
        .as_str()
        .is_some_and(|i| i.contains("minimum")));
    let _ = host;
}

#[test]
fn timers_belong_to_the_module_and_the_new_version_gets_them_after_a_swap() {
    let (host, conn) = host();
    conn.send(json!({"method": "clock.index.every", "name": "rep", "ms": 100}));
    host.advance_ms(300);
    host.swap::<Clock>(json!({"version": 2})).expect("swaps");
    host.advance_ms(300);
    let got = ticks(&host, "rep");
    assert_eq!(got.len(), 6, "no tick lost or doubled: {got:?}");
    assert!(
        got[..3].iter().all(|t| t.contains(" v1 ")) && got[3..].iter().all(|t| t.contains(" v2 "))
    );
    // v2's on_start re-armed the heartbeat by name at 300 ms: one timer, due at 1300 ms.
    host.advance_ms(699);
    assert!(ticks(&host, "heartbeat").is_empty());
    host.advance_ms(1);
    assert_eq!(
        ticks(&host, "heartbeat"),
        vec![r#"tick heartbeat v2 {"from":"on_start"}"#]
    );
}

#[test]
fn a_panicking_on_timer_is_logged_and_the_timer_goes_on() {
    let (host, conn) = host();
    conn.send(json!({"method": "clock.index.every", "name": "boom", "ms": 100}));
    host.advance_ms(300);
    let failures = host
        .log()
        .into_iter()
        .filter(|l| l.level == LogLevel::Error && l.message.contains("on_timer panics"))
        .count();
    assert_eq!(failures, 3);
}

#[test]
fn timers_end_at_shutdown() {
    let (host, conn) = host();
    conn.send(json!({"method": "clock.index.every", "name": "rep", "ms": 100}));
    host.advance_ms(200);
    host.shutdown();
    host.advance_ms(1000);
    assert_eq!(ticks(&host, "rep").len(), 2);
    assert!(!conn.is_open());
    // As the host's drain closes its clients: 1012 `service restart`.
    assert_eq!(conn.close_code(), Some(1012));
}
