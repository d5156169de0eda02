//! What machine and build a benchmark ran on, for the header of a results file.

use std::{path::Path, process::Command};

use serde::Serialize;

/// Facts about the machine and the checkout.
#[derive(Debug, Clone, Serialize)]
pub struct Machine {
    /// When the suite started, UTC, `YYYY-MM-DD HH:MM:SS`.
    pub date_utc: String,
    /// CPU model name.
    pub cpu: String,
    /// CPUs this process may use.
    pub cores: usize,
    /// Total memory, GiB.
    pub memory_gib: f64,
    /// Kernel release.
    pub kernel: String,
    /// rustc version used to build (the one on PATH).
    pub rustc: String,
    /// Short commit of the checkout, `+dirty` when it has changes.
    pub commit: String,
    /// Open-file limit (soft/hard) of this process after raising it.
    pub nofile: String,
    /// `/proc/loadavg` when the suite started: other work on a shared machine shows here.
    pub loadavg: String,
}

impl Machine {
    /// Reads everything; unknown values are `"unknown"`.
    pub fn read(root: &Path) -> Machine {
        let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
        let cpu = cpuinfo
            .lines()
            .find(|l| l.starts_with("model name"))
            .and_then(|l| l.split_once(':'))
            .map_or_else(|| "unknown".into(), |(_, v)| v.trim().to_string());
        let meminfo = std::fs::read_to_string("/proc/meminfo").unwrap_or_default();
        let mem_kib: f64 = meminfo
            .lines()
            .find(|l| l.starts_with("MemTotal:"))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|v| v.parse().ok())
            .unwrap_or(0.0);
        let nofile = rlimit::getrlimit(rlimit::Resource::NOFILE).map_or_else(
            |_| "unknown".into(),
            |(soft, hard)| format!("{soft}/{hard}"),
        );
        let commit = match output(Command::new("git").arg("-C").arg(root).args([
            "rev-parse",
            "--short",
            "HEAD",
        ])) {
            Some(rev) => {
                let dirty = output(
                    Command::new("git")
                        .arg("-C")
                        .arg(root)
                        .args(["status", "--porcelain"]),
                )
                .is_some_and(|s| !s.is_empty());
                if dirty {
                    format!("{rev}+dirty")
                } else {
                    rev
                }
            }
            None => "unknown".into(),
        };
        Machine {
            date_utc: utc(now_secs()),
            cpu,
            cores: std::thread::available_parallelism().map_or(0, usize::from),
            memory_gib: (mem_kib / 1024.0 / 1024.0 * 10.0).round() / 10.0,
            kernel: std::fs::read_to_string("/proc/sys/kernel/osrelease")
                .map_or_else(|_| "unknown".into(), |s| s.trim().to_string()),
            rustc: output(Command::new("rustc").arg("--version"))
                .unwrap_or_else(|| "unknown".into()),
            commit,
            nofile,
            loadavg: loadavg(),
        }
    }
}

/// The 1, 5 and 15 minute load averages.
pub fn loadavg() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|_| "unknown".into())
}

/// A command's trimmed stdout, if it ran and succeeded.
fn output(command: &mut Command) -> Option<String> {
    let out = command.output().ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).trim().to_string())
}

/// Seconds since 1970.
pub fn now_secs() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or_default()
}

/// `YYYY-MM-DD HH:MM:SS` (UTC) of unix time `secs`.
pub fn utc(secs: u64) -> String {
    let (y, m, d) = civil(secs / 86_400);
    let s = secs % 86_400;
    format!(
        "{y:04}-{m:02}-{d:02} {:02}:{:02}:{:02}",
        s / 3600,
        s / 60 % 60,
        s % 60
    )
}

/// Year, month, day of a day number since 1970-01-01 (H. Hinnant's `civil_from_days`).
fn civil(days: u64) -> (u64, u64, u64) {
    let z = days + 719_468;
    let era = z / 146_097;
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + u64::from(m <= 2);
    (y, m, d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_utc_dates() {
        assert_eq!(utc(0), "1970-01-01 00:00:00");
        assert_eq!(utc(1_764_115_200), "2025-11-26 00:00:00");
        assert_eq!(utc(951_782_400 + 3661), "2000-02-29 01:01:01");
    }
}
