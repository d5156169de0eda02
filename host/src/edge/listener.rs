//! Accepts client sockets and takes each through its handshake.
//!
//! As in mini-redis, a [`Listener`] accepts and applies the limits (a semaphore of
//! `limits.max_connections` permits, `limits.connections_per_ip` through [`IpLimit`], a
//! back-off on accept errors), and each socket gets its own task: it reads the request
//! head within `limits.handshake_timeout_s`, answers plain HTTP, checks the token, and
//! hands an upgrade to [`crate::conn::run`].

use std::{
    net::{IpAddr, SocketAddr},
    sync::Arc,
    time::{Duration, Instant},
};

use tokio::{
    net::{TcpListener, TcpStream},
    sync::Semaphore,
};
use tokio_tungstenite::{tungstenite::protocol::Role, WebSocketStream};
use tokio_util::task::TaskTracker;
use tracing::Level;

use super::{
    auth,
    handshake::{self, Head, HeadError},
    ip_limit::IpLimit,
    opening::{self, Asked},
    pages, Edge,
};
use crate::{
    identity::Identity,
    telemetry::{
        log_limit,
        metrics::{self, Handshake},
    },
};

/// Accepts client sockets until the listeners close.
pub struct Listener {
    /// What each socket's task uses.
    pub edge: Arc<Edge>,
    /// The outside port.
    pub listener: TcpListener,
    /// One permit per WebSocket connection.
    pub limit: Arc<Semaphore>,
    /// Connections per client address.
    pub per_ip: Arc<IpLimit>,
    /// Every socket task, so the stop sequence can wait for them.
    pub tracker: TaskTracker,
}

impl Listener {
    pub async fn run(self) {
        let mut backoff = Duration::from_millis(10);
        loop {
            let accepted = tokio::select! {
                _ = self.edge.shutdown.listeners_closed() => return,
                accepted = self.listener.accept() => accepted,
            };
            match accepted {
                Ok((socket, peer)) => {
                    backoff = Duration::from_millis(10);
                    let _ = socket.set_nodelay(true);
                    let (edge, limit) = (self.edge.clone(), self.limit.clone());
                    let per_ip = self.per_ip.clone();
                    self.tracker
                        .spawn(handle(edge, limit, per_ip, socket, peer));
                }
                Err(error) => {
                    // Out of file descriptors, mostly: wait, and the others keep running.
                    tracing::error!("accept failed: {error}; retrying in {backoff:?}");
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(Duration::from_secs(1));
                }
            }
        }
    }
}

/// The client's address: `X-Real-IP` when the peer is a trusted proxy.
fn client_ip(edge: &Edge, head: &Head, peer: SocketAddr) -> IpAddr {
    let trusted = edge.config.outside.trusted_proxies.contains(&peer.ip());
    head.header("x-real-ip")
        .filter(|_| trusted)
        .and_then(|ip| ip.trim().parse().ok())
        .unwrap_or(peer.ip())
}

/// Checks the handshake's token with the keys of the moment; an error means 403.
fn identify(edge: &Edge, head: &Head, fd: String) -> Result<Identity, auth::AuthError> {
    let token = head.query_param("auth");
    edge.tokens.current().identify(token.as_deref(), fd)
}

/// One socket: HTTP answers, or the upgrade and the connection.
async fn handle(
    edge: Arc<Edge>,
    limit: Arc<Semaphore>,
    per_ip: Arc<IpLimit>,
    mut socket: TcpStream,
    peer: SocketAddr,
) {
    let timeout = Duration::from_secs(edge.config.limits.handshake_timeout_s);
    let (head, rest) = match tokio::time::timeout(timeout, handshake::read_head(&mut socket)).await
    {
        Err(_) => {
            metrics::handshake(Handshake::Timeout);
            return tracing::debug!(%peer, "handshake timeout");
        }
        Ok(Err(HeadError::Io(error))) => {
            return tracing::debug!(%peer, "gone before its request: {error}")
        }
        Ok(Err(HeadError::Malformed)) => {
            metrics::handshake(Handshake::BadRequest);
            let _ = handshake::respond(&mut socket, 400, &[], "text/plain", "bad request\n").await;
            return;
        }
        Ok(Ok(parsed)) => parsed,
    };
    if !head.is_upgrade() {
        return pages::plain_http(&edge, &mut socket, &head).await;
    }
    // An invalid handshake is a 400 whatever else it carries (RFC 6455 §4.2.1).
    if let Err(bad) = handshake::check_upgrade(&head) {
        tracing::debug!(%peer, "bad handshake: {}", bad.reason());
        metrics::handshake(Handshake::BadRequest);
        let _ = handshake::reject_upgrade(&mut socket, bad).await;
        return;
    }
    if edge.shutdown.is_stopping() {
        metrics::handshake(Handshake::Unavailable);
        let _ = handshake::respond(&mut socket, 503, &[], "text/plain", "server stopping\n").await;
        return;
    }
    let Ok(_permit) = limit.try_acquire_owned() else {
        let message = "limits.max_connections reached: 503";
        if log_limit::admit(Level::WARN, message, message) {
            tracing::warn!(%peer, "{message}");
        }
        metrics::handshake(Handshake::Unavailable);
        let _ = handshake::respond(
            &mut socket,
            503,
            &[],
            "text/plain",
            "too many connections\n",
        )
        .await;
        return;
    };
    let ip = client_ip(&edge, &head, peer);
    let Some(_slot) = per_ip.admit(ip) else {
        let message = "limits.connections_per_ip reached: 503";
        if log_limit::admit(Level::WARN, message, message) {
            tracing::warn!(%ip, "{message}");
        }
        metrics::handshake(Handshake::Unavailable);
        let body = "too many connections from this address\n";
        let _ = handshake::respond(&mut socket, 503, &[], "text/plain", body).await;
        return;
    };
    let identity = match identify(&edge, &head, edge.ids.next()) {
        Ok(identity) => identity,
        Err(error) => {
            tracing::info!(%ip, "handshake refused: {error}");
            metrics::handshake(Handshake::Forbidden);
            let _ = handshake::respond(
                &mut socket,
                403,
                &[("message", "error auth")],
                "text/plain",
                "error auth\n",
            )
            .await;
            return;
        }
    };
    match handshake::accept_upgrade(&mut socket, &head).await {
        Ok(true) => metrics::handshake(Handshake::Ok),
        Ok(false) | Err(_) => return,
    }
    // The connection's first and last lines name its fd and client address (README.md,
    // "Deploying": what to watch in the logs); its other lines name the fd. Not a span:
    // entering one on every poll would cost the per-message path. The path is logged,
    // never the query: it holds the token.
    // README.md "Resumable sessions": `resume=1` asks for one, `resume=S&last=n` resumes S.
    let resume = match edge.config.recovery.enabled {
        true => head
            .query_param("resume")
            .filter(|resume| !resume.is_empty()),
        false => None,
    };
    let last = head.query_param("last");
    // The head is not needed any more; the connection lives long, its memory should not.
    let path = head.path.clone();
    drop(head);
    let asked = Asked {
        resume: resume.as_deref(),
        last: last.as_deref(),
    };
    let (opened, greeting) = match opening::open(&edge, identity, asked).await {
        Ok(opened) => opened,
        Err(error) => return tracing::error!(%ip, "{error}"),
    };
    let fd = opened.identity.fd.clone();
    tracing::info!(%fd, %ip, path = %path, resumable = opened.session.is_some(), "connected");
    let config = edge.conn.settings.websocket();
    let since = Instant::now();
    let socket =
        WebSocketStream::from_partially_read(socket, rest, Role::Server, Some(config)).await;
    crate::conn::run(&edge.conn, socket, opened, greeting).await;
    tracing::info!(%fd, %ip, seconds = since.elapsed().as_secs(), "disconnected");
}
