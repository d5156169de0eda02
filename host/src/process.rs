//! What the host leaves on the machine: the log, the pid file, the manager address
//! file, and its open-file limit.

use std::{
    fs, io,
    net::SocketAddr,
    path::{Path, PathBuf},
    sync::Arc,
};

use tracing_subscriber::{fmt::writer::MakeWriterExt, EnvFilter};

/// The pid file's name in the runtime directory.
pub const PID_FILE: &str = "mswoole.pid";
/// The file holding the manager's bound address (for `manager.port = 0`).
pub const MANAGER_FILE: &str = "mswoole.manager";
/// The log file's name in the runtime directory.
pub const LOG_FILE: &str = "mswoole.log";

/// Logs to stdout and to `<runtime>/mswoole.log`, at `level` (a tracing filter).
pub fn init_logging(runtime: &Path, level: &str) -> Result<(), String> {
    let filter = EnvFilter::try_new(level)
        .map_err(|e| format!("log.level {level:?} is not a valid filter: {e}"))?;
    let path = runtime.join(LOG_FILE);
    let file = fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&path)
        .map_err(|e| format!("cannot open {}: {e}", path.display()))?;
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(false)
        .with_writer(io::stdout.and(Arc::new(file)))
        .try_init()
        .map_err(|e| format!("cannot start logging: {e}"))
}

/// Raises the open-file soft limit to the hard limit; returns the new soft limit.
pub fn raise_open_files() -> u64 {
    match rlimit::Resource::NOFILE.get() {
        Ok((soft, hard)) => {
            let raised = rlimit::Resource::NOFILE
                .set(hard, hard)
                .map(|()| hard)
                .unwrap_or(soft);
            tracing::info!(
                soft_before = soft,
                hard,
                soft_now = raised,
                "open-file limit"
            );
            raised
        }
        Err(error) => {
            tracing::warn!("cannot read the open-file limit: {error}");
            1024
        }
    }
}

/// The files a running host writes into its runtime directory; removed on drop.
pub struct RuntimeFiles {
    pid: PathBuf,
    manager: PathBuf,
}

impl RuntimeFiles {
    /// Writes the pid file and the manager address file.
    pub fn write(runtime: &Path, manager: SocketAddr) -> Result<Self, String> {
        let pid = runtime.join(PID_FILE);
        let manager_file = runtime.join(MANAGER_FILE);
        fs::write(&pid, format!("{}\n", std::process::id()))
            .map_err(|e| format!("cannot write {}: {e}", pid.display()))?;
        fs::write(&manager_file, format!("{manager}\n"))
            .map_err(|e| format!("cannot write {}: {e}", manager_file.display()))?;
        Ok(RuntimeFiles {
            pid,
            manager: manager_file,
        })
    }

    /// Removes both files: the host's last act before it exits.
    pub fn remove(self) {}
}

impl Drop for RuntimeFiles {
    fn drop(&mut self) {
        let _ = fs::remove_file(&self.manager);
        let _ = fs::remove_file(&self.pid);
    }
}

/// Resident memory of this process in KiB, from `/proc/self/status`.
pub fn resident_kib() -> u64 {
    fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|status| {
            status.lines().find_map(|line| {
                line.strip_prefix("VmRSS:")
                    .and_then(|rest| rest.split_whitespace().next())
                    .and_then(|n| n.parse().ok())
            })
        })
        .unwrap_or(0)
}
