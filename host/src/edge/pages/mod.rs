//! The outside port's plain HTTP answers: `GET /`, `GET /healthz`, the browser client
//! `/mswoole.js` and, when `[demo] enabled`, the demo pages.

pub mod client;
pub mod demo;

use tokio::net::TcpStream;

use super::{
    handshake::{self, Head},
    Edge,
};

/// `GET /`, `GET /healthz`, the demo pages when `[demo] enabled`, and 404 for the rest.
pub async fn plain_http(edge: &Edge, socket: &mut TcpStream, head: &Head) {
    if edge.config.demo.enabled {
        let tokens = edge.tokens.current();
        if let Some(reply) = demo::reply(tokens.codec(), head, super::unix_now()) {
            let no_store = [("Cache-Control", "no-store")];
            let _ = handshake::respond(
                socket,
                reply.status,
                &no_store,
                reply.content_type,
                &reply.body,
            )
            .await;
            return;
        }
    }
    let _ = match (head.method.as_str(), head.path.as_str()) {
        ("GET", "/") => {
            let page = "<!doctype html><title>mswoole</title><p>mswoole WebSocket host. Connect with <code>ws://HOST/?auth=TOKEN</code>.</p>\n";
            handshake::respond(socket, 200, &[], "text/html; charset=utf-8", page).await
        }
        ("GET", path) if client::file(path).is_some() => {
            let body = client::file(path).unwrap_or_default();
            let cache = [("Cache-Control", "no-cache")];
            let kind = "text/javascript; charset=utf-8";
            handshake::respond(socket, 200, &cache, kind, body).await
        }
        ("GET", "/healthz") => {
            let stopping = edge.shutdown.is_stopping();
            let body = serde_json::json!({
                "status": if stopping { "draining" } else { "ok" },
                "node": edge.node,
                "connections": edge.sessions.connections(),
                "plugins": edge.plugins().all().len(),
            });
            handshake::respond(
                socket,
                if stopping { 503 } else { 200 },
                &[],
                "application/json",
                &body.to_string(),
            )
            .await
        }
        _ => handshake::respond(socket, 404, &[], "text/plain", "not found\n").await,
    };
}
