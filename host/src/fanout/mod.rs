//! Frames to connections, wherever they live.
//!
//! Modules, the manager and other nodes never write to a socket: they hand a frame to
//! [`delivery`], the one path of a frame for an fd in both directions, which queues it
//! on this node's [`outbound`] queue of that connection or relays it to the node that
//! holds it ([`locations`] knows which).

pub mod delivery;
pub mod locations;
pub mod outbound;
