//! Signals: SIGTERM and SIGINT stop (a second one hurries the drain), SIGHUP reloads, SIGUSR1
//! reopens the log file.

use std::sync::Arc;

use crate::{
    manager::{self, Manager},
    telemetry::log_file::LogFile,
};

/// SIGTERM and SIGINT stop (a second one skips the rest of the drain); SIGHUP reloads;
/// SIGUSR1 reopens the log file (logrotate).
pub async fn signals(manager: Arc<Manager>, log: Arc<LogFile>) {
    use tokio::signal::unix::{signal, SignalKind};
    let (Ok(mut term), Ok(mut int), Ok(mut hup), Ok(mut usr1)) = (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
        signal(SignalKind::hangup()),
        signal(SignalKind::user_defined1()),
    ) else {
        tracing::error!("cannot install signal handlers");
        return;
    };
    loop {
        tokio::select! {
            _ = term.recv() => { tracing::info!("SIGTERM"); manager.shutdown.stop_or_hurry(); }
            _ = int.recv() => { tracing::info!("SIGINT"); manager.shutdown.stop_or_hurry(); }
            _ = hup.recv() => { tracing::info!("SIGHUP: reloading"); manager::reload(&manager).await; }
            _ = usr1.recv() => match log.reopen() {
                Ok(()) => tracing::info!(file = %log.path().display(), "SIGUSR1: log file reopened"),
                Err(error) => tracing::error!("SIGUSR1: {error}; logging to stdout only until the next try"),
            },
        }
    }
}
