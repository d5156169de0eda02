//! Telling the service manager (systemd) when the host is ready and when it stops.
//!
//! Why: with `Type=notify` (config/mswoole.service, README.md "Deploying"), systemd
//! starts the units that come after this one, and `systemctl start` returns, only when
//! the host says `READY=1` — which it does once both ports accept connections and the
//! plugins are loaded, not when the process merely exists. Outside systemd
//! (`NOTIFY_SOCKET` unset) every call does nothing.
//!
//! How: the `sd-notify` crate writes the datagram; a failure is logged and otherwise
//! ignored, since the host serves either way.

use sd_notify::NotifyState;

/// Sends `states` to `NOTIFY_SOCKET`, if there is one.
fn send(states: &[NotifyState<'_>]) {
    if let Err(error) = sd_notify::notify(states) {
        tracing::warn!("cannot notify the service manager: {error}");
    }
}

/// Both ports listen and are served: `READY=1`.
pub fn ready(status: &str) {
    send(&[NotifyState::Ready, NotifyState::Status(status)]);
}

/// The stop sequence began: `STOPPING=1`.
pub fn stopping() {
    send(&[NotifyState::Stopping, NotifyState::Status("stopping")]);
}
