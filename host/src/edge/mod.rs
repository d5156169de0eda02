//! Where a socket meets the host, before it is a connection.
//!
//! The [`listener`] accepts and admits (`limits.max_connections`,
//! `limits.connections_per_ip`), reads the request head within
//! `limits.handshake_timeout_s` ([`handshake`]), answers plain HTTP ([`pages`]), checks
//! the token ([`auth`]), opens or resumes the client's session ([`opening`]) and hands
//! the upgraded socket to [`crate::conn`].

pub mod auth;
pub mod handshake;
pub mod ip_limit;
pub mod listener;
pub mod opening;
pub mod pages;
