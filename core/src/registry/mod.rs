//! The fd registry: who is connected, and the sets, hashes, lists and counters
//! modules keep about them.
//!
//! One trait, two backends: [`memory`] (the default, one node, nothing to install;
//! here, because the module test kit uses it too) and Redis (several nodes sharing
//! rooms; in the host). Every key lives under `registry.prefix`; the `WEBSOCKET_*`
//! names are the host's, as in MSwoole.

pub mod memory;

use async_trait::async_trait;

use crate::identity::Identity;

/// Why a registry operation failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RegistryError {
    /// The backend cannot be reached.
    Unavailable(String),
    /// The backend refused the operation (e.g. a key holding another kind of value).
    Storage(String),
}

impl std::fmt::Display for RegistryError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            RegistryError::Unavailable(detail) => write!(f, "registry unavailable: {detail}"),
            RegistryError::Storage(detail) => write!(f, "registry error: {detail}"),
        }
    }
}

/// Shorthand for registry results.
pub type Result<T> = std::result::Result<T, RegistryError>;

/// Hash of fd → identity JSON.
pub const FDINFO: &str = "WEBSOCKET_FDINFO";
/// Hash of uid → fd, for `wechatUser` connections.
pub const UIDTOFD: &str = "WEBSOCKET_UIDTOFD";
/// Hash of fd → node, for connections living on another node than the one their fd
/// names (a resumed session that moved, README.md "Resumable sessions").
pub const FDNODE: &str = "WEBSOCKET_FDNODE";

/// Set of controllers (`Module.Controller`) to notify when `fd` closes.
pub fn controllers_key(fd: &str) -> String {
    format!("WEBSOCKET_FdController_{fd}")
}

/// Set of set keys `fd` must leave when it closes.
pub fn close_keys_key(fd: &str) -> String {
    format!("WEBSOCKET_FdCloseSetKey_{fd}")
}

/// Whether a key belongs to the host (modules may not touch it).
pub fn is_host_key(key: &str) -> bool {
    key.starts_with("WEBSOCKET_")
}

/// The registry, as the host and the module API use it. Keys are given without prefix.
#[async_trait]
pub trait Registry: Send + Sync {
    /// Records a new connection: its identity and, for a `wechatUser`, uid → fd (newest wins).
    async fn register(&self, identity: &Identity) -> Result<()>;
    /// Deletes a connection's identity records; uid → fd only if it still points at this fd.
    async fn unregister(&self, identity: &Identity) -> Result<()>;
    /// The identity JSON of a connection.
    async fn identity(&self, fd: &str) -> Result<Option<String>>;
    /// The fd of an online `wechatUser`.
    async fn uid_fd(&self, uid: &str) -> Result<Option<String>>;
    /// Adds a member to a set; `true` if it was new.
    async fn set_add(&self, key: &str, member: &str) -> Result<bool>;
    /// Removes a member from a set; `true` if it was there.
    async fn set_remove(&self, key: &str, member: &str) -> Result<bool>;
    /// The members of a set.
    async fn set_members(&self, key: &str) -> Result<Vec<String>>;
    /// One field of a hash.
    async fn hash_get(&self, key: &str, field: &str) -> Result<Option<String>>;
    /// Sets one field of a hash.
    async fn hash_set(&self, key: &str, field: &str, value: &str) -> Result<()>;
    /// Deletes one field; `true` if it was there.
    async fn hash_delete(&self, key: &str, field: &str) -> Result<bool>;
    /// Every field of a hash.
    async fn hash_get_all(&self, key: &str) -> Result<Vec<(String, String)>>;
    /// Adds `by` to a counter; returns the new value.
    async fn incr(&self, key: &str, by: i64) -> Result<i64>;
    /// Pushes at the head of a list; returns the new length.
    async fn list_push(&self, key: &str, value: &str) -> Result<u64>;
    /// Elements `start..=stop`, negative from the end.
    async fn list_range(&self, key: &str, start: i64, stop: i64) -> Result<Vec<String>>;
    /// Keeps only elements `start..=stop`.
    async fn list_trim(&self, key: &str, start: i64, stop: i64) -> Result<()>;
    /// Removes the key after `seconds`; `true` if it exists.
    async fn expire(&self, key: &str, seconds: u64) -> Result<bool>;
    /// Removes the key; `true` if it existed.
    async fn delete(&self, key: &str) -> Result<bool>;
    /// Number of connections this registry knows, on every node.
    async fn connection_count(&self) -> Result<u64>;
    /// Relays a frame to connections held by another node; `true` if that node took it.
    async fn publish_to_node(&self, node: &str, fds: &[String], text: &str) -> Result<bool>;
    /// Asks another node to close one of its connections; `true` if that node took it.
    async fn close_on_node(&self, node: &str, fd: &str) -> Result<bool>;
    /// Relays a frame to every connection of every other node; returns how many nodes took it.
    async fn publish_to_all(&self, text: &str) -> Result<u64>;
    /// The live nodes sharing this registry (empty when there is only this one).
    async fn nodes(&self) -> Result<Vec<String>>;
    /// Runs before the host accepts clients: removes what a crashed earlier run left.
    async fn start(&self) -> Result<()>;
    /// Runs when the host stops, after its connections closed.
    async fn leave(&self) -> Result<()>;
    /// Sends a message between nodes' session handovers, to one node or (`None`) to every
    /// node; returns how many nodes took it. One node alone has nobody to tell.
    async fn send_peer(&self, _node: Option<&str>, _payload: &str) -> Result<u64> {
        Ok(0)
    }
    /// Moves this node's connection `fd` to node `to`, with its records (the node's fd
    /// set, `WEBSOCKET_FDNODE`); returns what `to` must hold to put them back after an
    /// outage, for [`Registry::adopt`].
    async fn move_fd(&self, _fd: &str, _to: &str) -> Result<String> {
        Ok(String::new())
    }
    /// Takes over a connection another node moved here with [`Registry::move_fd`].
    fn adopt(&self, _identity: &Identity, _records: &str) {}
}

/// Resolves Redis-style `start..=stop` indexes (negative from the end) on a list of `len`.
pub fn list_span(len: usize, start: i64, stop: i64) -> std::ops::Range<usize> {
    let len = len as i64;
    let at = |index: i64| {
        if index < 0 {
            (len + index).max(0)
        } else {
            index
        }
    };
    let (from, to) = (at(start), (at(stop) + 1).min(len));
    if from >= to {
        0..0
    } else {
        from as usize..to as usize
    }
}

#[cfg(test)]
mod tests {
    use super::list_span;

    #[test]
    fn list_spans_follow_redis() {
        assert_eq!(list_span(5, 0, -1), 0..5);
        assert_eq!(list_span(5, 0, 1), 0..2);
        assert_eq!(list_span(5, -2, -1), 3..5);
        assert_eq!(list_span(5, 3, 100), 3..5);
        assert_eq!(list_span(5, 4, 2), 0..0);
        assert_eq!(list_span(0, 0, -1), 0..0);
    }
}
