//! Where a module's frames, closes, sleeps and log lines go in the host.
//!
//! The host API itself (`mswoole_core::services`) is shared with the module test
//! kit; this is the host's side of it: frames and closes go through [`Delivery`]
//! to connections on any node, sleeps are tokio timers, module timers go to
//! [`Timers`], log lines go to the log.

use std::{sync::Arc, time::Duration};

use async_trait::async_trait;
use mswoole_core::services::{BoxFuture, Outlet, Timer};
use mswoole_plugin_api::LogLevel;
use tokio_tungstenite::tungstenite::Utf8Bytes;

use crate::{fanout::delivery::Delivery, plugins::timers::Timers, registry::RegistryError};

/// The host's [`Outlet`].
pub struct HostOutlet {
    /// Frames to connections on any node.
    pub delivery: Arc<Delivery>,
    /// Modules' timers.
    pub timers: Arc<Timers>,
}

#[async_trait]
impl Outlet for HostOutlet {
    async fn to_fds(&self, fds: &[String], text: String) -> Result<u64, RegistryError> {
        let reach = self.delivery.to_fds(fds, &Utf8Bytes::from(text)).await?;
        Ok(reach.local + reach.relayed)
    }

    async fn close(&self, fd: &str) -> Result<bool, RegistryError> {
        self.delivery.close(fd).await
    }

    fn sleep(&self, millis: u64) -> BoxFuture<()> {
        Box::pin(tokio::time::sleep(Duration::from_millis(millis)))
    }

    fn log(&self, module: &str, level: LogLevel, message: &str) {
        match level {
            LogLevel::Error => tracing::error!(module, "{message}"),
            LogLevel::Warn => tracing::warn!(module, "{message}"),
            LogLevel::Info => tracing::info!(module, "{message}"),
            LogLevel::Debug => tracing::debug!(module, "{message}"),
        }
    }

    fn set_timer(&self, module: &str, timer: Timer) -> Result<(), String> {
        self.timers.set(module, timer)
    }

    fn cancel_timer(&self, module: &str, name: &str) -> bool {
        self.timers.cancel(module, name)
    }
}
