//! The fd registry. The trait, the key names and the memory backend live in
//! `mswoole-core` (the module test kit uses them too); the Redis backend, which
//! needs sockets, lives here.

pub mod redis;

pub use mswoole_core::registry::*;
