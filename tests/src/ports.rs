//! Free TCP ports for the servers a test starts (redis-server, nginx, a host on a fixed port).

/// Ports [`unused_port`] hands out: below the kernel's ephemeral range (32768-60999 on
/// Linux), which every port-0 bind (the hosts under test) and every outgoing connection
/// draws from, and above the host's default ports (20000, 20001).
const PORTS: std::ops::Range<u16> = 21000..32000;

/// A TCP port for a server a test starts (redis-server, nginx, a host on a fixed port).
///
/// A port the kernel picked for a bind and released again (the old way) could be given
/// to the next outgoing connection or port-0 bind before the server took it. These
/// ports come from [`PORTS`], where the kernel never picks one by itself; a process
/// never hands out the same port twice, and processes start at different places, so
/// two test processes meet only by chance — and the servers' starters check that they
/// got their port ([`RedisServer`] retries on another one).
pub fn unused_port() -> u16 {
    use std::sync::atomic::{AtomicU32, Ordering};
    static NEXT: AtomicU32 = AtomicU32::new(0);
    let span = u32::from(PORTS.end - PORTS.start);
    let start = std::process::id().wrapping_mul(7919) % span;
    for _ in 0..span {
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let offset = u16::try_from((start + n) % span).unwrap_or(0);
        let port = PORTS.start + offset;
        if std::net::TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
    panic!("no free port in {PORTS:?}")
}
