//! How many connections one client address may hold: `limits.connections_per_ip`.
//!
//! Why: one misbehaving machine reconnecting in a loop must not take every
//! connection slot. Off by default (0), since a venue's Wi-Fi puts thousands of phones
//! behind one address; the address is the one `server::client_ip` decides (`X-Real-IP`
//! behind a trusted proxy). Over the limit, the handshake gets 503 (README.md, "The
//! protocol in brief").
//!
//! How: a count per address behind a mutex, held by a [`Slot`] that gives it back when
//! the connection ends. An address with no connection has no entry, so the map holds
//! at most as many entries as there are connections.

use std::{
    collections::HashMap,
    net::IpAddr,
    sync::{Arc, Mutex, PoisonError},
};

/// The connections each client address holds.
pub struct IpLimit {
    /// `limits.connections_per_ip`; 0 = no limit.
    max: usize,
    /// Connections per address, entries removed at zero. A std mutex: held for a map
    /// operation only, never across an await.
    counts: Mutex<HashMap<IpAddr, usize>>,
}

/// One connection's place in its address's count, given back on drop.
pub struct Slot {
    limit: Arc<IpLimit>,
    ip: IpAddr,
}

impl IpLimit {
    /// A limit of `max` connections per address (0 = none).
    pub fn new(max: usize) -> Arc<Self> {
        Arc::new(IpLimit {
            max,
            counts: Mutex::new(HashMap::new()),
        })
    }

    /// A slot for one more connection from `ip`, or `None` when it holds `max` already.
    /// With no limit, nothing is counted.
    pub fn admit(self: &Arc<Self>, ip: IpAddr) -> Option<Option<Slot>> {
        if self.max == 0 {
            return Some(None);
        }
        // A panic elsewhere while holding the lock leaves a consistent map: take it anyway.
        let mut counts = self.counts.lock().unwrap_or_else(PoisonError::into_inner);
        let count = counts.entry(ip).or_insert(0);
        if *count >= self.max {
            return None;
        }
        *count += 1;
        Some(Some(Slot {
            limit: self.clone(),
            ip,
        }))
    }

    /// Connections `ip` holds.
    #[cfg(test)]
    fn held(&self, ip: IpAddr) -> usize {
        let counts = self.counts.lock().unwrap_or_else(PoisonError::into_inner);
        counts.get(&ip).copied().unwrap_or(0)
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        let mut counts = self
            .limit
            .counts
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if let Some(count) = counts.get_mut(&self.ip) {
            *count -= 1;
            if *count == 0 {
                counts.remove(&self.ip);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const A: IpAddr = IpAddr::V4(std::net::Ipv4Addr::new(10, 0, 0, 1));
    const B: IpAddr = IpAddr::V4(std::net::Ipv4Addr::new(10, 0, 0, 2));

    #[test]
    fn each_address_gets_max_and_a_closed_one_gives_its_slot_back() {
        let limit = IpLimit::new(2);
        let first = limit.admit(A).expect("first");
        let _second = limit.admit(A).expect("second");
        assert!(limit.admit(A).is_none(), "a third from the same address");
        assert!(limit.admit(B).is_some(), "another address is counted apart");
        drop(first);
        assert_eq!(limit.held(A), 1);
        assert!(limit.admit(A).is_some(), "the slot was given back");
    }

    #[test]
    fn an_address_without_connections_leaves_no_entry() {
        let limit = IpLimit::new(1);
        drop(limit.admit(A));
        assert!(limit
            .counts
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .is_empty());
    }

    #[test]
    fn zero_counts_nothing() {
        let limit = IpLimit::new(0);
        let slots: Vec<_> = (0..1000).map(|_| limit.admit(A)).collect();
        assert!(slots.iter().all(|slot| matches!(slot, Some(None))));
        assert_eq!(limit.held(A), 0);
    }
}
