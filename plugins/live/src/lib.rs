//! The Live module: rooms of phone users (`wechatUser`) and big screens (`wall`).
//!
//! This version declares the module's controllers and actions so that routing to
//! them works; every action answers 405 `methodNotFound` until the Live issue
//! implements them on top of the host's registry.

use mswoole_plugin_api::{
    export_module, serde_json::Value, BoxFuture, Host, Module, ModuleError, ModuleInfo, Outcome,
    Request,
};

/// The Live module.
pub struct Live;

impl Module for Live {
    fn info() -> ModuleInfo {
        ModuleInfo::new("Live", env!("CARGO_PKG_VERSION"))
            .controller("User", &["join", "out", "say", "history"])
            .controller(
                "Wall",
                &["join", "out", "check", "say", "recall", "clean", "history"],
            )
    }

    fn new(_host: Host, _config: Value) -> Result<Self, String> {
        Ok(Live)
    }

    fn call(&self, request: Request) -> BoxFuture<Outcome> {
        let info = format!(
            "live.{}.{} is not implemented yet",
            request.controller, request.action
        );
        Box::pin(std::future::ready(Err(ModuleError::refused(
            405,
            "methodNotFound",
            &info,
        ))))
    }
}

export_module!(Live);
