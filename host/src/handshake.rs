//! Reads an HTTP request head and answers what is not a WebSocket upgrade.
//!
//! tungstenite's handshake cannot answer a plain `GET /` with 200, so the head is
//! read here (with `httparse`) and only an upgrade is handed to tokio-tungstenite,
//! together with any bytes the client sent after the head.

use std::io;

use percent_encoding::percent_decode_str;
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::TcpStream,
};
use tokio_tungstenite::tungstenite::handshake::derive_accept_key;

/// The most a request head may take.
const MAX_HEAD: usize = 16 * 1024;
/// The most headers a request may have.
const MAX_HEADERS: usize = 64;

/// A parsed request head.
#[derive(Debug, Clone, Default)]
pub struct Head {
    /// `GET`, ...
    pub method: String,
    /// The path without the query.
    pub path: String,
    /// The raw query, without `?`.
    pub query: String,
    /// Headers, names lower-cased.
    pub headers: Vec<(String, String)>,
}

/// Why a head could not be read.
#[derive(Debug)]
pub enum HeadError {
    /// The socket failed or closed.
    Io(io::Error),
    /// Not HTTP, or too large.
    Malformed,
}

impl Head {
    /// The first value of a header.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    fn header_has_token(&self, name: &str, token: &str) -> bool {
        self.headers
            .iter()
            .filter(|(n, _)| n == name)
            .flat_map(|(_, v)| v.split(','))
            .any(|t| t.trim().eq_ignore_ascii_case(token))
    }

    /// Whether the client asks for a WebSocket.
    pub fn is_upgrade(&self) -> bool {
        self.header_has_token("upgrade", "websocket")
            && self.header_has_token("connection", "upgrade")
    }

    /// A query parameter, percent-decoded (`+` stays `+`: tokens use no spaces).
    pub fn query_param(&self, name: &str) -> Option<String> {
        self.query.split('&').find_map(|pair| {
            let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
            (key == name).then(|| percent_decode_str(value).decode_utf8_lossy().into_owned())
        })
    }
}

/// Reads a request head; returns it and the bytes that followed it.
pub async fn read_head(stream: &mut TcpStream) -> Result<(Head, Vec<u8>), HeadError> {
    let mut buffer = Vec::with_capacity(1024);
    let mut chunk = [0u8; 2048];
    loop {
        let read = stream.read(&mut chunk).await.map_err(HeadError::Io)?;
        if read == 0 {
            return Err(HeadError::Io(io::ErrorKind::UnexpectedEof.into()));
        }
        buffer.extend_from_slice(&chunk[..read]);
        let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
        let mut request = httparse::Request::new(&mut headers);
        match request.parse(&buffer) {
            Ok(httparse::Status::Complete(used)) => {
                let target = request.path.unwrap_or("/");
                let (path, query) = target.split_once('?').unwrap_or((target, ""));
                let head = Head {
                    method: request.method.unwrap_or("").to_string(),
                    path: path.to_string(),
                    query: query.to_string(),
                    headers: request
                        .headers
                        .iter()
                        .map(|h| {
                            (
                                h.name.to_ascii_lowercase(),
                                String::from_utf8_lossy(h.value).into_owned(),
                            )
                        })
                        .collect(),
                };
                return Ok((head, buffer[used..].to_vec()));
            }
            Ok(httparse::Status::Partial) if buffer.len() < MAX_HEAD => continue,
            Ok(httparse::Status::Partial) | Err(_) => return Err(HeadError::Malformed),
        }
    }
}

fn reason(status: u16) -> &'static str {
    match status {
        101 => "Switching Protocols",
        200 => "OK",
        400 => "Bad Request",
        403 => "Forbidden",
        404 => "Not Found",
        431 => "Request Header Fields Too Large",
        503 => "Service Unavailable",
        _ => "Error",
    }
}

/// Writes a complete HTTP response and closes the write side.
pub async fn respond(
    stream: &mut TcpStream,
    status: u16,
    headers: &[(&str, &str)],
    content_type: &str,
    body: &str,
) -> io::Result<()> {
    let mut text = format!("HTTP/1.1 {status} {}\r\n", reason(status));
    for (name, value) in headers {
        text.push_str(&format!("{name}: {value}\r\n"));
    }
    text.push_str(&format!(
        "Content-Type: {content_type}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    ));
    stream.write_all(text.as_bytes()).await?;
    stream.shutdown().await
}

/// Checks an upgrade request and writes the 101 answer.
pub async fn accept_upgrade(stream: &mut TcpStream, head: &Head) -> io::Result<bool> {
    let (Some(key), Some("13")) = (
        head.header("sec-websocket-key"),
        head.header("sec-websocket-version"),
    ) else {
        respond(
            stream,
            400,
            &[("Sec-WebSocket-Version", "13")],
            "text/plain",
            "bad websocket handshake\n",
        )
        .await?;
        return Ok(false);
    };
    let mut text = format!(
        "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: {}\r\n",
        derive_accept_key(key.trim().as_bytes())
    );
    // Browsers fail a handshake that offered subprotocols and got none back: echo the first.
    if let Some(protocol) = head
        .header("sec-websocket-protocol")
        .and_then(|p| p.split(',').next())
    {
        text.push_str(&format!("Sec-WebSocket-Protocol: {}\r\n", protocol.trim()));
    }
    text.push_str("\r\n");
    stream.write_all(text.as_bytes()).await?;
    Ok(true)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn head(query: &str, headers: &[(&str, &str)]) -> Head {
        Head {
            method: "GET".into(),
            path: "/".into(),
            query: query.into(),
            headers: headers
                .iter()
                .map(|(n, v)| (n.to_string(), v.to_string()))
                .collect(),
        }
    }

    #[test]
    fn query_params_are_percent_decoded() {
        let h = head("x=1&auth=ab%2Acd%3A_&y", &[]);
        assert_eq!(h.query_param("auth").as_deref(), Some("ab*cd:_"));
        assert_eq!(h.query_param("y").as_deref(), Some(""));
        assert_eq!(h.query_param("z"), None);
    }

    #[test]
    fn upgrade_needs_both_headers_in_any_case() {
        assert!(head(
            "",
            &[
                ("upgrade", "WebSocket"),
                ("connection", "keep-alive, Upgrade")
            ]
        )
        .is_upgrade());
        assert!(!head("", &[("upgrade", "websocket")]).is_upgrade());
    }
}
