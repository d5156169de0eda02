//! What the host leaves on the machine: the pid file, the manager address file, and
//! its open-file limit (the log is [`crate::telemetry::log_file`]'s).

use std::{
    fs,
    net::SocketAddr,
    path::{Path, PathBuf},
};

/// The pid file's name in the runtime directory.
pub const PID_FILE: &str = "mswoole.pid";
/// The file holding the manager's bound address (for `manager.port = 0`).
pub const MANAGER_FILE: &str = "mswoole.manager";

/// The pid of a host that runs on `runtime`, per its pid file.
///
/// A pid file whose process is gone, or is another program (the pid was reused after
/// a crash), names no running host: a restart must not be refused because of it.
pub fn running_pid(runtime: &Path) -> Option<u32> {
    let pid: u32 = fs::read_to_string(runtime.join(PID_FILE))
        .ok()?
        .trim()
        .parse()
        .ok()?;
    let name = |pid: &str| fs::read_to_string(format!("/proc/{pid}/comm")).ok();
    let theirs = name(&pid.to_string())?;
    (pid != std::process::id() && Some(theirs) == name("self")).then_some(pid)
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
