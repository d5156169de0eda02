//! Opening authenticated WebSocket connections to a server under test.
//!
//! Every client socket is bound to a source address in 127.0.0.1–127.0.0.250 before it
//! connects, round-robin by connection index: each source address has its own ephemeral
//! port range, so 19,000 connections (and their TIME_WAIT leftovers from the previous run)
//! never exhaust loopback ports. The client uses the same small read buffer as the host
//! so that holding many connections costs the load generator little memory.

use std::{
    net::{IpAddr, Ipv4Addr, SocketAddr, ToSocketAddrs},
    ops::Range,
    str::FromStr,
    time::Duration,
};

use futures_util::{stream, StreamExt};

use crate::envelope::{self, Kind};
use tokio::net::{TcpSocket, TcpStream};
use tokio_tungstenite::{
    client_async_with_config,
    tungstenite::{
        client::IntoClientRequest, protocol::WebSocketConfig, Error as WsError, Message,
    },
    WebSocketStream,
};

/// A client connection.
pub type Ws = WebSocketStream<TcpStream>;

/// Read buffer per client connection (tungstenite's default is 128 KiB).
const READ_BUFFER: usize = 4 * 1024;
/// Source addresses used: 127.0.0.1 ..= 127.0.0.`SOURCES`.
const SOURCES: usize = 250;
/// How long one TCP connect plus WebSocket handshake may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(15);

/// Where a server listens: `ws://HOST:PORT/PATH`, parsed once.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoint {
    /// The resolved socket address.
    pub addr: SocketAddr,
    /// `HOST:PORT` as written, for the request line's Host header.
    pub authority: String,
    /// The path, starting with `/`.
    pub path: String,
}

impl FromStr for Endpoint {
    type Err = String;

    fn from_str(url: &str) -> Result<Self, String> {
        let rest = url
            .strip_prefix("ws://")
            .ok_or_else(|| format!("{url}: only ws:// URLs are supported"))?;
        let (authority, path) = match rest.find('/') {
            Some(at) => (&rest[..at], &rest[at..]),
            None => (rest, "/"),
        };
        if path.contains('?') {
            return Err(format!(
                "{url}: leave the query out, the token is added as ?auth="
            ));
        }
        let addr = authority
            .to_socket_addrs()
            .map_err(|e| format!("{url}: cannot resolve {authority}: {e}"))?
            .find(SocketAddr::is_ipv4)
            .ok_or_else(|| format!("{url}: {authority} has no IPv4 address"))?;
        Ok(Endpoint {
            addr,
            authority: authority.to_string(),
            path: path.to_string(),
        })
    }
}

impl std::fmt::Display for Endpoint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "ws://{}{}", self.authority, self.path)
    }
}

/// tungstenite settings of every client connection.
pub fn ws_config() -> WebSocketConfig {
    WebSocketConfig::default().read_buffer_size(READ_BUFFER)
}

/// The source address of connection number `index`.
pub fn source_addr(index: usize) -> Ipv4Addr {
    let last = u8::try_from(index % SOURCES + 1).unwrap_or(1);
    Ipv4Addr::new(127, 0, 0, last)
}

/// Connects from `source` to `endpoint` and completes the upgrade with `token`.
pub async fn connect(endpoint: &Endpoint, source: Ipv4Addr, token: &str) -> Result<Ws, String> {
    let attempt = async {
        let socket = TcpSocket::new_v4().map_err(|e| format!("socket: {e}"))?;
        // Only loopback servers can be reached from a loopback source address.
        let local = if endpoint.addr.ip().is_loopback() {
            IpAddr::V4(source)
        } else {
            IpAddr::V4(Ipv4Addr::UNSPECIFIED)
        };
        socket
            .bind(SocketAddr::new(local, 0))
            .map_err(|e| format!("bind {local}: {e}"))?;
        let tcp = socket
            .connect(endpoint.addr)
            .await
            .map_err(|e| format!("connect {}: {e}", endpoint.addr))?;
        tcp.set_nodelay(true)
            .map_err(|e| format!("TCP_NODELAY: {e}"))?;
        let url = format!("ws://{}{}?auth={token}", endpoint.authority, endpoint.path);
        let request = url
            .into_client_request()
            .map_err(|e| format!("request for {endpoint}: {e}"))?;
        let (ws, _) = client_async_with_config(request, tcp, Some(ws_config()))
            .await
            .map_err(|e| match e {
                WsError::Http(response) => format!("handshake refused: HTTP {}", response.status()),
                other => format!("handshake: {other}"),
            })?;
        Ok(ws)
    };
    tokio::time::timeout(CONNECT_TIMEOUT, attempt)
        .await
        .map_err(|_| format!("connect to {endpoint}: no upgrade within {CONNECT_TIMEOUT:?}"))?
}

/// Opens connections number `indices`, at most `concurrency` handshakes at a time;
/// connection `i` uses `token(i)` from `source_addr(i)`. Returns the connections that
/// opened (with their index, in order) and the errors of those that did not.
pub async fn connect_many(
    endpoint: &Endpoint,
    indices: Range<usize>,
    concurrency: usize,
    token: impl Fn(usize) -> String,
) -> (Vec<(usize, Ws)>, Vec<String>) {
    let token = &token;
    let mut results: Vec<(usize, Result<Ws, String>)> = stream::iter(indices)
        .map(|i| async move { (i, connect(endpoint, source_addr(i), &token(i)).await) })
        .buffer_unordered(concurrency.max(1))
        .collect()
        .await;
    results.sort_by_key(|(i, _)| *i);
    let mut open = Vec::with_capacity(results.len());
    let mut errors = Vec::new();
    for (i, result) in results {
        match result {
            Ok(ws) => open.push((i, ws)),
            Err(error) => errors.push(error),
        }
    }
    (open, errors)
}

/// Why waiting for an event ended without it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Miss {
    /// The server answered with another envelope (described).
    Other(String),
    /// The connection closed or failed.
    Gone(String),
}

/// Reads frames until the envelope with event `expected` arrives, skipping acks, `3`s
/// and control frames.
pub async fn wait_for(ws: &mut Ws, expected: &str) -> Result<(), Miss> {
    loop {
        match ws.next().await {
            Some(Ok(Message::Text(text))) => match envelope::classify(&text, expected) {
                Kind::Ack => continue,
                Kind::Expected => return Ok(()),
                Kind::Other => return Err(Miss::Other(envelope::describe(&text))),
            },
            Some(Ok(Message::Close(frame))) => {
                return Err(Miss::Gone(match frame {
                    Some(f) => format!("closed by the server: {} {}", f.code, f.reason),
                    None => "closed by the server".into(),
                }))
            }
            Some(Ok(_)) => continue,
            Some(Err(error)) => return Err(Miss::Gone(format!("connection failed: {error}"))),
            None => return Err(Miss::Gone("connection closed".into())),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_endpoints() {
        let e: Endpoint = "ws://127.0.0.1:20000/live".parse().expect("endpoint");
        assert_eq!(e.addr, SocketAddr::from(([127, 0, 0, 1], 20000)));
        assert_eq!(e.path, "/live");
        let e: Endpoint = "ws://127.0.0.1:9".parse().expect("no path");
        assert_eq!(e.path, "/");
        assert!("http://127.0.0.1:1/".parse::<Endpoint>().is_err());
        assert!("ws://127.0.0.1:1/?auth=x".parse::<Endpoint>().is_err());
    }

    #[test]
    fn spreads_source_addresses() {
        assert_eq!(source_addr(0), Ipv4Addr::new(127, 0, 0, 1));
        assert_eq!(source_addr(249), Ipv4Addr::new(127, 0, 0, 250));
        assert_eq!(source_addr(250), Ipv4Addr::new(127, 0, 0, 1));
    }
}
