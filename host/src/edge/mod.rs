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

use std::{
    sync::Arc,
    time::{SystemTime, UNIX_EPOCH},
};

use crate::{
    cluster::handover::Handover, config::Config, conn, identity::FdIds, plugins::Plugins,
    runtime::shutdown::Shutdown, session::Sessions,
};

use self::auth::TokenKeys;

/// What the edge uses: the sections of the config it reads, the token check, and the
/// parts a new connection is handed to.
pub struct Edge {
    /// `[outside]`, `[limits]`, `[auth]`, `[recovery]`, `[demo]`.
    pub config: Arc<Config>,
    /// The keys handshake tokens are checked with; a reload swaps them.
    pub tokens: Arc<TokenKeys>,
    /// Hands out fds.
    pub ids: FdIds,
    /// This node's id (for `/healthz`).
    pub node: String,
    /// Opens and resumes sessions.
    pub sessions: Arc<Sessions>,
    /// Resumes sessions another node holds.
    pub handover: Arc<Handover>,
    /// What each connection task gets.
    pub conn: conn::Context,
    /// Whether the host is stopping (503), and when to stop accepting.
    pub shutdown: Shutdown,
}

impl Edge {
    /// The loaded modules (for `/healthz`).
    pub fn plugins(&self) -> &Plugins {
        &self.conn.plugins
    }
}

/// Wall-clock unix seconds (token ages, minted demo tokens).
pub fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}
