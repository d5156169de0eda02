//! The stop's drain: closes every client with 1012 (service restart), spread evenly
//! over `shutdown.drain_s` (README.md, "Stopping").
//!
//! When a host stops, its clients reconnect to the other nodes. Closed in the same
//! instant, thousands of phones would reconnect in the same second; closed one after
//! another, client i of N at i·`drain_s`/N, the other nodes take them as a steady
//! stream. A second SIGTERM or SIGINT ([`Shutdown::hurried`]) closes the rest at once.
//! Clients that connect during the drain are refused (503) by the listener; one that
//! finished its upgrade just as the stop began is closed by its own task.

use std::time::Duration;

use tokio::time::Instant;

use crate::{
    engine::end::CloseRequest, fanout::locations::Locations, runtime::shutdown::Shutdown,
    session::Sessions,
};

/// When client `index` of `count` is closed, counted from the start of the drain.
pub fn offset(index: usize, count: usize, drain: Duration) -> Duration {
    match count {
        0 => Duration::ZERO,
        _ => drain.mul_f64(index as f64 / count as f64),
    }
}

/// Closes every client this node holds now, spread over `drain`; returns how many it asked
/// to close. The closes themselves (and each close sequence) run in the clients' tasks.
pub async fn run(
    sessions: &Sessions,
    locations: &Locations,
    drain: Duration,
    shutdown: &Shutdown,
) -> usize {
    let fds = sessions.attached_fds();
    let count = fds.len();
    let start = Instant::now();
    let mut hurried = false;
    for (index, fd) in fds.iter().enumerate() {
        if !hurried {
            tokio::select! {
                _ = tokio::time::sleep_until(start + offset(index, count, drain)) => {}
                _ = shutdown.hurried() => {
                    tracing::info!(closed = index, left = count - index, "second stop signal: closing the rest of the clients now");
                    hurried = true;
                }
            }
        }
        locations.close(fd, CloseRequest::Shutdown);
    }
    count
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn client_i_of_n_closes_at_i_drain_over_n() {
        let drain = Duration::from_secs(10);
        assert_eq!(offset(0, 4, drain), Duration::ZERO);
        assert_eq!(offset(1, 4, drain), Duration::from_millis(2500));
        assert_eq!(offset(3, 4, drain), Duration::from_millis(7500));
        assert_eq!(offset(0, 1, drain), Duration::ZERO);
        assert_eq!(offset(5, 9, Duration::ZERO), Duration::ZERO);
    }
}
