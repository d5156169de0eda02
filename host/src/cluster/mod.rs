//! Several nodes sharing rooms through one Redis: the Redis registry ([`redis`]: the
//! registry trait's second backend, node liveness, the outage shadow and the relay
//! between nodes) and the moves of resumable sessions between nodes ([`handover`]).
//! The registry trait, its key names and the memory backend live in `mswoole-core`
//! (the module test kit uses them too).

pub mod handover;
pub mod redis;

/// Where the messages by which nodes move resumable sessions go
/// ([`crate::cluster::handover::Handover`]).
pub trait Peers: Send + Sync {
    /// A message another node sent (never blocks: what takes time runs in its own task).
    fn receive(&self, payload: String);
    /// The relay (re)subscribed: what was announced while it was away may be missed.
    fn subscribed(&self);
}
