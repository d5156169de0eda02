//! Several nodes sharing rooms through one Redis: the Redis registry ([`redis`]: the
//! registry trait's second backend, node liveness, the outage shadow and the relay
//! between nodes) and the moves of resumable sessions between nodes ([`handover`]).
//! The registry trait, its key names and the memory backend live in `mswoole-core`
//! (the module test kit uses them too).

pub mod handover;
pub mod redis;

use tokio_tungstenite::tungstenite::Utf8Bytes;

/// Where what other nodes relay to this one goes: frame delivery
/// ([`crate::fanout::delivery::Delivery`]), the one path by which a frame reaches a local fd.
pub trait Arrivals: Send + Sync {
    /// Frames for these fds, if they live here; returns those that moved from here to
    /// another node, by node, for the relay to send on.
    fn to_fds(&self, fds: &[String], text: &Utf8Bytes) -> Vec<(String, Vec<String>)>;
    /// A frame for every connection of this node.
    fn to_all(&self, text: &Utf8Bytes);
    /// Closes one of this node's connections (1000), as a module's `close` does; returns
    /// the node it moved to instead, if it did, for the relay to send the request on.
    fn close(&self, fd: &str) -> Option<String>;
}

/// Where the messages by which nodes move resumable sessions go
/// ([`crate::cluster::handover::Handover`]).
pub trait Peers: Send + Sync {
    /// A message another node sent (never blocks: what takes time runs in its own task).
    fn receive(&self, payload: String);
    /// The relay (re)subscribed: what was announced while it was away may be missed.
    fn subscribed(&self);
}
