//! The Index module: MSwoole's sample controller, and the example to copy.
//!
//! - `index.index.index` answers 200 `success` `执行完成`.
//! - `index.index.echo` answers 200 `echo` with the message exactly as the module got
//!   it (after the host injected `fd`, `code`, `auth` and escaped strings).
//! - `index.fallback.*` shows the `onMessage` fallback: any action of that controller
//!   is answered by the module, naming the action it got.
//! - `index.index.stats` answers how many messages this module handled; the count
//!   survives a hot swap through `export_state` / `import_state` (the example of
//!   state handoff: best-effort, calls finishing on the old version after the
//!   export are not counted).
//! - `index.debug.*` exists only when `[modules.Index] debug_actions = true`: `panic`
//!   panics and `sleep {ms}` waits, so tests can watch the host contain both. Off,
//!   the controller is not served or listed at all (404): the module says so through
//!   `configured_info`, which the host reads after construction.
//! - With debug actions on, `[modules.Index] debug_shutdown_ms = N` makes `onShutdown`
//!   take N ms, so tests can watch the host while it stops (`/healthz` answers 503).

use std::sync::{
    atomic::{AtomicU64, Ordering},
    Arc,
};

use mswoole_plugin_api::{
    export_module, serde_json::Value, BoxFuture, Envelope, Host, Module, ModuleError, ModuleInfo,
    Outcome, Request,
};

/// The Index module.
pub struct Index {
    /// For `debug.sleep`: the plugin has no timer of its own.
    host: Host,
    /// Whether the `Debug` actions answer.
    debug_actions: bool,
    /// Messages handled, carried across versions.
    handled: Arc<AtomicU64>,
    /// How long `onShutdown` waits (debug actions only); 0 = not at all.
    shutdown_ms: u64,
}

/// Reads `debug_shutdown_ms` from the module's config table.
fn debug_shutdown_ms(config: &Value) -> Result<u64, String> {
    match config.get("debug_shutdown_ms") {
        None => Ok(0),
        Some(value) => value.as_u64().ok_or_else(|| {
            format!("modules.Index.debug_shutdown_ms must be a number of milliseconds, not {value}")
        }),
    }
}

/// Reads `debug_actions` from the module's config table.
fn debug_actions(config: &Value) -> Result<bool, String> {
    match config.get("debug_actions") {
        None => Ok(false),
        Some(Value::Bool(on)) => Ok(*on),
        Some(other) => Err(format!(
            "modules.Index.debug_actions must be true or false, not {other}"
        )),
    }
}

impl Module for Index {
    fn info() -> ModuleInfo {
        ModuleInfo::new("Index", env!("CARGO_PKG_VERSION"))
            .controller("Index", &["index", "echo", "stats"])
            .controller_with_fallback("Fallback", &["hello"])
            .controller("Debug", &["panic", "sleep"])
    }

    fn new(host: Host, config: Value) -> Result<Self, String> {
        let debug_actions = debug_actions(&config)?;
        let shutdown_ms = debug_shutdown_ms(&config)?;
        Ok(Index {
            debug_actions,
            host,
            handled: Arc::default(),
            shutdown_ms: if debug_actions { shutdown_ms } else { 0 },
        })
    }

    fn configured_info(&self) -> Option<ModuleInfo> {
        // Debug actions off: the controller is neither routed nor listed.
        (!self.debug_actions).then(|| {
            ModuleInfo::new("Index", env!("CARGO_PKG_VERSION"))
                .controller("Index", &["index", "echo", "stats"])
                .controller_with_fallback("Fallback", &["hello"])
        })
    }

    fn call(&self, request: Request) -> BoxFuture<Outcome> {
        let host = self.host.clone();
        let debug_actions = self.debug_actions;
        let handled = self.handled.fetch_add(1, Ordering::Relaxed) + 1;
        Box::pin(async move {
            match (request.controller.as_str(), request.action.as_str()) {
                ("Index", "index") => Ok(Some(Envelope::ok("success", "执行完成"))),
                ("Index", "echo") => Ok(Some(
                    Envelope::ok("echo", "收到").with_param(request.message()),
                )),
                ("Index", "stats") => Ok(Some(
                    Envelope::ok("stats", "统计")
                        .with_param(&serde_json::json!({"handled": handled})),
                )),
                ("Fallback", "hello") => Ok(Some(Envelope::ok("hello", "你好"))),
                ("Fallback", other) => Ok(Some(
                    Envelope::ok("onMessage", "未知操作由控制器处理")
                        .with_param(&Value::from(other)),
                )),
                ("Debug", _) if !debug_actions => Err(ModuleError::failed(
                    "a Debug action was routed while debug actions are off",
                )),
                ("Debug", "panic") => panic!("index.debug.panic was asked to panic"),
                ("Debug", "sleep") => {
                    let ms = request
                        .message()
                        .get("ms")
                        .and_then(Value::as_u64)
                        .unwrap_or(100);
                    host.sleep(ms).await?;
                    Ok(Some(
                        Envelope::ok("slept", "已等待").with_param(&Value::from(ms)),
                    ))
                }
                (controller, action) => Err(ModuleError::failed(format!(
                    "routed to undeclared action {controller}.{action}"
                ))),
            }
        })
    }

    fn on_shutdown(&self) -> BoxFuture<Result<(), ModuleError>> {
        let (host, ms) = (self.host.clone(), self.shutdown_ms);
        Box::pin(async move {
            if ms > 0 {
                host.sleep(ms).await?;
            }
            Ok(())
        })
    }

    fn export_state(&self) -> Result<Option<String>, ModuleError> {
        Ok(Some(self.handled.load(Ordering::Relaxed).to_string()))
    }

    fn import_state(&self, state: &str) -> Result<(), ModuleError> {
        let handled = state
            .parse::<u64>()
            .map_err(|_| ModuleError::failed(format!("state {state:?} is not a count")))?;
        self.handled.fetch_add(handled, Ordering::Relaxed);
        Ok(())
    }
}

export_module!(Index);

#[cfg(test)]
mod tests {
    use mswoole_module_test::{serde_json::json, Options, TestHost};

    use super::*;

    /// A host with Index loaded with `config`, acks off so replies stand alone.
    fn host(config: Value) -> TestHost {
        let host = TestHost::with_options(Options {
            ack: false,
            ..Options::default()
        });
        host.load::<Index>(config).expect("Index loads");
        host
    }

    fn alice(host: &TestHost) -> mswoole_module_test::Conn {
        host.connect(json!({"id": 1, "type": "wechatUser", "code": "demo", "nickname": "<alice>", "ctime": 1}))
    }

    #[test]
    fn index_answers_success() {
        let host = host(json!({}));
        assert_eq!(
            alice(&host).send(json!({"method": "index.index.index"})),
            vec![json!({"status": 200, "event": "success", "info": "执行完成"})]
        );
    }

    #[test]
    fn echo_returns_the_message_as_the_host_prepared_it() {
        let host = host(json!({}));
        let alice = alice(&host);
        let reply = alice.send(json!({"method": "echo", "say": "<hi>", "fd": "forged"}));
        let param = &reply[0]["param"];
        assert_eq!(param["say"], "&lt;hi&gt;", "strings are escaped");
        assert_eq!(
            param["fd"],
            alice.fd(),
            "fd is the host's, not the client's"
        );
        assert_eq!(param["code"], "demo");
        assert_eq!(param["auth"]["nickname"], "&lt;alice&gt;");
        assert!(param["auth"].get("ctime").is_none());
    }

    #[test]
    fn fallback_names_the_unknown_action() {
        let host = host(json!({}));
        let reply = alice(&host).send(json!({"method": "index.fallback.ZAP"}));
        assert_eq!(reply[0]["event"], "onMessage");
        assert_eq!(reply[0]["param"], "zap");
    }

    #[test]
    fn debug_actions_are_not_served_unless_configured() {
        let off = host(json!({}));
        let reply = alice(&off).send(json!({"method": "index.debug.sleep"}));
        assert_eq!(reply[0]["status"], 404, "not even listed: {reply:?}");

        let on = host(json!({"debug_actions": true}));
        let phone = alice(&on);
        assert_eq!(
            phone.send(json!({"method": "index.debug.sleep", "ms": 50})),
            Vec::<Value>::new()
        );
        on.advance_ms(49);
        assert_eq!(phone.take(), Vec::<Value>::new(), "still sleeping");
        on.advance_ms(1);
        assert_eq!(phone.take()[0]["event"], "slept");
        let reply = phone.send(json!({"method": "index.debug.panic"}));
        assert_eq!(
            reply[0],
            json!({"status": 500, "event": "controllerError", "info": "控制器执行错误"})
        );
    }

    #[test]
    fn the_handled_count_survives_a_swap() {
        let host = host(json!({}));
        let alice = alice(&host);
        for _ in 0..3 {
            alice.send(json!({"method": "index.index.index"}));
        }
        host.swap::<Index>(json!({}))
            .expect("the new version takes the count");
        let reply = alice.send(json!({"method": "index.index.stats"}));
        assert_eq!(reply[0]["param"], json!({"handled": 4}));
    }

    #[test]
    fn a_bad_config_value_is_refused_with_its_name() {
        let error = TestHost::new().load::<Index>(json!({"debug_actions": "yes"}));
        assert!(error.is_err_and(|e| e.contains("modules.Index.debug_actions")));
    }
}
