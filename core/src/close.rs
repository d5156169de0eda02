//! The close sequence every connection ends with, whatever ended it.
//!
//! In this order: `onClose` of every controller the connection registered, then it
//! leaves every set it registered as a close key, then its identity records are
//! deleted (README, "The protocol in brief"). The order matters: a module's
//! `onClose` still sees the connection in its rooms and can tell the others. One
//! implementation serves the host's connections and the module test kit's.
//!
//! The last two steps are [`release`]: what a connection holds in the registry, given
//! back. The host also runs it without the hooks for the connections of a node that
//! died (README, "Several hosts behind one Redis": pruning), so the registry is
//! cleaned the same way whoever cleans it.

use async_trait::async_trait;
use serde_json::Value;

use crate::{
    error::CallError,
    identity::Identity,
    registry::{close_keys_key, controllers_key, Registry},
};

/// Runs `onClose` hooks: the host through its plugin table, the kit directly.
#[async_trait]
pub trait CloseHooks: Send + Sync {
    /// Calls `onClose` of `controller` (as registered, `Module.Controller`) with
    /// `info`; `Ok(false)` when no loaded module serves it.
    async fn on_close(&self, controller: &str, info: &Value) -> Result<bool, CallError>;
}

/// Runs the close sequence of `identity`'s connection. Failures are logged and
/// the sequence goes on: a connection always leaves what it can.
pub async fn close_sequence(
    registry: &dyn Registry,
    hooks: &dyn CloseHooks,
    identity: &Identity,
    escape: bool,
) {
    let fd = identity.fd.as_str();
    let controllers = registry
        .set_members(&controllers_key(fd))
        .await
        .unwrap_or_else(|error| {
            tracing::warn!(fd, "cannot read controllers to notify: {error}");
            Vec::new()
        });
    if !controllers.is_empty() {
        let info = identity.close_info(escape);
        for controller in controllers {
            match hooks.on_close(&controller, &info).await {
                Ok(true) => {}
                Ok(false) => tracing::warn!(fd, %controller, "onClose: no such module loaded"),
                Err(error) => tracing::error!(fd, %controller, "onClose failed: {error}"),
            }
        }
    }
    release(registry, identity).await;
}

/// The close sequence's last two steps: `identity`'s connection leaves every set it
/// registered as a close key, then its identity records are deleted (uid → fd only if it
/// still points at this fd). Failures are logged and the steps go on.
pub async fn release(registry: &dyn Registry, identity: &Identity) {
    let fd = identity.fd.as_str();
    match registry.set_members(&close_keys_key(fd)).await {
        Ok(keys) => {
            for key in keys {
                if let Err(error) = registry.set_remove(&key, fd).await {
                    tracing::warn!(fd, key, "cannot leave set: {error}");
                }
            }
        }
        Err(error) => tracing::warn!(fd, "cannot read close keys: {error}"),
    }
    if let Err(error) = registry.unregister(identity).await {
        tracing::warn!(fd, "cannot delete identity records: {error}");
    }
}
