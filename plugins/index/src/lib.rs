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
//! - `index.debug.*`: `panic` panics and `sleep {ms}` waits, so tests can watch the
//!   host contain both. The controller exists in debug builds only, and answers there
//!   only with `[modules.Index] debug_actions = true`. Why a build switch and not only
//!   the config: a plugin declares its controllers before it sees its config (the host
//!   lists them in `mswoole status`), so a production (release) build must not declare
//!   them at all, or status would show debug actions that are switched off.

use std::sync::{
    atomic::{AtomicU64, Ordering},
    Arc,
};

use mswoole_plugin_api::{
    export_module, serde_json::Value, BoxFuture, Envelope, Host, LogLevel, Module, ModuleError,
    ModuleInfo, Outcome, Request,
};

/// The Index module.
pub struct Index {
    /// For `debug.sleep`: the plugin has no timer of its own.
    host: Host,
    /// Whether the `Debug` actions answer.
    debug_actions: bool,
    /// Messages handled, carried across versions.
    handled: Arc<AtomicU64>,
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
        let info = ModuleInfo::new("Index", env!("CARGO_PKG_VERSION"))
            .controller("Index", &["index", "echo", "stats"])
            .controller_with_fallback("Fallback", &["hello"]);
        if cfg!(debug_assertions) {
            info.controller("Debug", &["panic", "sleep"])
        } else {
            info
        }
    }

    fn new(host: Host, config: Value) -> Result<Self, String> {
        let debug_actions = debug_actions(&config)?;
        if debug_actions && !cfg!(debug_assertions) {
            host.log(
                LogLevel::Warn,
                "modules.Index.debug_actions = true has no effect: this is a release build, \
                 which has no debug actions",
            );
        }
        Ok(Index {
            debug_actions,
            host,
            handled: Arc::default(),
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
                ("Debug", _) if !debug_actions => Err(ModuleError::refused(
                    405,
                    "methodNotFound",
                    "debug actions are off",
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
    use mswoole_plugin_api::{
        serde_json::json,
        testing::{call, request, FakeHost},
    };

    use super::*;

    fn identity() -> Value {
        json!({"id": 1, "type": "wechatUser", "code": "demo", "nickname": "alice", "ctime": 1})
    }

    fn index(config: Value) -> Index {
        Index::new(FakeHost::new().handle(), config).expect("valid config")
    }

    #[test]
    fn index_answers_success() {
        let reply = call(
            &index(json!({})),
            request("f1", "Index", "index", json!({}), &identity()),
        );
        assert_eq!(reply, Ok(Some(Envelope::ok("success", "执行完成"))));
    }

    #[test]
    fn echo_returns_the_message_as_received() {
        let message = request("f1", "Index", "echo", json!({"say": "hi"}), &identity());
        let expected = message.message().clone();
        let reply = call(&index(json!({})), message).expect("echo answers");
        let param = reply
            .and_then(|e| e.param.into_option())
            .expect("echo has a param");
        assert_eq!(serde_json::from_str::<Value>(&param).ok(), Some(expected));
    }

    #[test]
    fn fallback_names_the_unknown_action() {
        let reply = call(
            &index(json!({})),
            request("f1", "Fallback", "zap", json!({}), &identity()),
        );
        let envelope = reply.expect("fallback answers").expect("with an envelope");
        assert_eq!(envelope.event.as_str(), "onMessage");
        assert_eq!(
            envelope.param.into_option().map(|p| p.into_string()),
            Some("\"zap\"".into())
        );
    }

    #[test]
    fn only_debug_builds_declare_the_debug_controller() {
        let declared = Index::info()
            .controllers
            .iter()
            .any(|controller| controller.name.as_str() == "Debug");
        assert_eq!(declared, cfg!(debug_assertions));
    }

    #[cfg(debug_assertions)]
    #[test]
    fn debug_actions_are_refused_unless_configured() {
        let reply = call(
            &index(json!({})),
            request("f1", "Debug", "sleep", json!({}), &identity()),
        );
        assert!(
            matches!(reply, Err(ModuleError::Refused { status: 405, .. })),
            "{reply:?}"
        );
        let reply = call(
            &index(json!({"debug_actions": true})),
            request("f1", "Debug", "sleep", json!({"ms": 5}), &identity()),
        );
        assert_eq!(
            reply.expect("sleep answers").map(|e| e.event.into_string()),
            Some("slept".into())
        );
    }

    #[test]
    fn the_handled_count_survives_a_swap() {
        let old = index(json!({}));
        for _ in 0..3 {
            let _ = call(
                &old,
                request("f1", "Index", "index", json!({}), &identity()),
            );
        }
        let state = old.export_state().expect("export").expect("a count");
        let new = index(json!({}));
        new.import_state(&state).expect("import");
        let reply = call(
            &new,
            request("f1", "Index", "stats", json!({}), &identity()),
        );
        let param = reply
            .expect("stats answers")
            .and_then(|e| e.param.into_option());
        assert_eq!(
            param.map(|p| p.into_string()),
            Some(r#"{"handled":4}"#.into())
        );
        assert!(new.import_state("not a number").is_err());
    }

    #[test]
    fn a_bad_config_value_is_refused_with_its_name() {
        let error = Index::new(FakeHost::new().handle(), json!({"debug_actions": "yes"})).err();
        assert!(error.is_some_and(|e| e.contains("modules.Index.debug_actions")));
    }
}
