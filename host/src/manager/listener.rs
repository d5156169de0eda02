//! The manager port's listener: each connection's request head decides the transport
//! (a WebSocket command, or HTTP).

use std::{sync::Arc, time::Duration};

use tokio::net::{TcpListener, TcpStream};

use super::{
    access::{Manager, COMMAND_TIMEOUT},
    http, ws,
};
use crate::edge::handshake::{self, HeadError};

/// Accepts manager connections until the listeners close.
pub async fn serve(manager: Arc<Manager>, listener: TcpListener) {
    loop {
        let accepted = tokio::select! {
            _ = manager.shutdown.listeners_closed() => return,
            accepted = listener.accept() => accepted,
        };
        match accepted {
            Ok((socket, _)) => {
                tokio::spawn(session(manager.clone(), socket));
            }
            Err(error) => {
                tracing::error!("manager accept failed: {error}");
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    }
}

/// One manager connection: its head decides the transport.
async fn session(manager: Arc<Manager>, mut socket: TcpStream) {
    let head = tokio::time::timeout(COMMAND_TIMEOUT, handshake::read_head(&mut socket)).await;
    let (head, rest) = match head {
        Err(_) | Ok(Err(HeadError::Io(_))) => return,
        Ok(Err(HeadError::Malformed)) => {
            let _ = handshake::respond(&mut socket, 400, &[], "text/plain", "bad request\n").await;
            return;
        }
        Ok(Ok(parsed)) => parsed,
    };
    if head.header("origin").is_some() {
        let body = "the manager port does not accept browser requests\n";
        let _ = handshake::respond(&mut socket, 403, &[], "text/plain", body).await;
        return;
    }
    if head.is_upgrade() {
        ws::session(&manager, socket, head, rest).await;
    } else {
        http::request(&manager, socket, head, rest).await;
    }
}
