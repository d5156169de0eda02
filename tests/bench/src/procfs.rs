//! What `/proc` says about a process: resident memory and CPU time.
//!
//! CPU time is `utime + stime` of `/proc/<pid>/stat` (all threads, including those that
//! exited), in clock ticks. It measures what the server spent, whatever the speed of the
//! client, which is why `rate` reports CPU per request rather than requests per second.

use std::time::Duration;

/// Resident set size of `pid` in bytes (`VmRSS` of `/proc/<pid>/status`).
pub fn rss_bytes(pid: u32) -> Result<u64, String> {
    let path = format!("/proc/{pid}/status");
    let text = std::fs::read_to_string(&path).map_err(|e| format!("{path}: {e}"))?;
    let line = text
        .lines()
        .find(|l| l.starts_with("VmRSS:"))
        .ok_or_else(|| format!("{path}: no VmRSS line"))?;
    let kib: u64 = line
        .trim_start_matches("VmRSS:")
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()
        .map_err(|e| format!("{path}: bad VmRSS {line:?}: {e}"))?;
    Ok(kib * 1024)
}

/// User plus system CPU time `pid` has used so far.
pub fn cpu_time(pid: u32) -> Result<Duration, String> {
    let path = format!("/proc/{pid}/stat");
    let text = std::fs::read_to_string(&path).map_err(|e| format!("{path}: {e}"))?;
    parse_stat_cpu(&text, ticks_per_second()).ok_or_else(|| format!("{path}: unreadable"))
}

/// CPU time of this process.
pub fn own_cpu_time() -> Result<Duration, String> {
    cpu_time(std::process::id())
}

/// `USER_HZ`, the unit of `utime` and `stime`.
fn ticks_per_second() -> u64 {
    rustix::param::clock_ticks_per_second().max(1)
}

/// `utime + stime` from the text of a stat file. The command name (field 2) may contain
/// spaces and parentheses, so fields are counted from the last `)`.
fn parse_stat_cpu(text: &str, hz: u64) -> Option<Duration> {
    let after = &text[text.rfind(')')? + 1..];
    let mut fields = after.split_whitespace();
    // After `)`: field 3 (state) is index 0, so utime (14) is index 11 and stime (15) index 12.
    let utime: u64 = fields.nth(11)?.parse().ok()?;
    let stime: u64 = fields.next()?.parse().ok()?;
    let ticks = utime + stime;
    Some(Duration::from_secs(ticks / hz) + Duration::from_nanos((ticks % hz) * 1_000_000_000 / hz))
}

/// Whether process `pid` still exists (and is not a zombie).
pub fn alive(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|text| {
            let after = &text[text.rfind(')')? + 1..];
            after.split_whitespace().next().map(|state| state != "Z")
        })
        .unwrap_or(false)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_stat_with_odd_names() {
        let text = "42 (a (b) c) S 1 42 42 0 -1 4194560 100 0 0 0 250 50 0 0 20 0 3 0 100 0 0";
        assert_eq!(parse_stat_cpu(text, 100), Some(Duration::from_secs(3)));
    }

    #[test]
    fn reads_this_process() {
        let me = std::process::id();
        assert!(rss_bytes(me).expect("rss") > 0);
        assert!(cpu_time(me).is_ok());
        assert!(alive(me));
    }
}
