//! A raw HTTP/1.1 `GET`, for the requests that are not upgrades (`/`, `/healthz`, 404s),
//! and any request written by hand (handshakes that break the rules).

use std::{net::SocketAddr, time::Duration};

use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::TcpStream,
};

use crate::client::RECV_TIMEOUT;

/// A response to [`http_get`].
#[derive(Debug, Clone)]
pub struct HttpResponse {
    /// The status code.
    pub status: u16,
    /// Header names (lower-cased) and values, in order.
    pub headers: Vec<(String, String)>,
    /// The body.
    pub body: Vec<u8>,
}

impl HttpResponse {
    /// A header's value (names compared case-insensitively).
    pub fn header(&self, name: &str) -> Option<&str> {
        let name = name.to_ascii_lowercase();
        self.headers
            .iter()
            .find(|(key, _)| *key == name)
            .map(|(_, value)| value.as_str())
    }

    /// The body as text.
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    /// The body as JSON; panics with the body when it is not.
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|error| panic!("body is not JSON ({error}): {:?}", self.text()))
    }
}

/// Sends `GET <path>` with `Connection: close` and reads the whole response.
pub async fn http_get(addr: SocketAddr, path: &str) -> HttpResponse {
    let request = format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n");
    match tokio::time::timeout(RECV_TIMEOUT, exchange(addr, &request)).await {
        Ok(response) => response,
        Err(_) => panic!("GET {path} got no complete response within {RECV_TIMEOUT:?}"),
    }
}

/// Sends `request` exactly as written (for handshakes that break the rules) and reads
/// the whole response.
pub async fn http_raw(addr: SocketAddr, request: &str) -> HttpResponse {
    match tokio::time::timeout(RECV_TIMEOUT, exchange(addr, request)).await {
        Ok(response) => response,
        Err(_) => panic!("{request:?} got no complete response within {RECV_TIMEOUT:?}"),
    }
}

/// Sends `method path` with `headers` and `body` (its `Content-Length` added) and
/// `Connection: close`, and reads the whole response.
pub async fn http_request(
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &str,
) -> HttpResponse {
    let mut request = format!("{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n");
    for (name, value) in headers {
        request.push_str(&format!("{name}: {value}\r\n"));
    }
    request.push_str(&format!("Content-Length: {}\r\n\r\n{body}", body.len()));
    http_raw(addr, &request).await
}

/// Writes `request`, reads the head and then the body (by `Content-Length`, else to EOF).
async fn exchange(addr: SocketAddr, request: &str) -> HttpResponse {
    let mut stream = TcpStream::connect(addr)
        .await
        .expect("the outside port accepts TCP");
    stream
        .write_all(request.as_bytes())
        .await
        .expect("the request is written");
    let mut buffer = Vec::new();
    let head_end = loop {
        if let Some(at) = buffer.windows(4).position(|window| window == b"\r\n\r\n") {
            break at;
        }
        let mut chunk = [0u8; 4096];
        let read = stream
            .read(&mut chunk)
            .await
            .expect("the response is readable");
        assert!(
            read > 0,
            "connection closed before a complete response head: {:?}",
            String::from_utf8_lossy(&buffer)
        );
        buffer.extend_from_slice(&chunk[..read]);
    };
    let head = String::from_utf8_lossy(&buffer[..head_end]).into_owned();
    let mut lines = head.split("\r\n");
    let status_line = lines.next().unwrap_or_default();
    let status = status_line
        .split(' ')
        .nth(1)
        .and_then(|code| code.parse().ok())
        .unwrap_or_else(|| panic!("not an HTTP status line: {status_line:?}"));
    let headers: Vec<(String, String)> = lines
        .filter_map(|line| line.split_once(':'))
        .map(|(name, value)| (name.trim().to_ascii_lowercase(), value.trim().to_string()))
        .collect();
    let mut body = buffer[head_end + 4..].to_vec();
    let length = headers
        .iter()
        .find(|(name, _)| name == "content-length")
        .and_then(|(_, value)| value.parse::<usize>().ok());
    loop {
        if length.is_some_and(|length| body.len() >= length) {
            break;
        }
        let mut chunk = [0u8; 4096];
        match stream.read(&mut chunk).await {
            Ok(0) | Err(_) => break,
            Ok(read) => body.extend_from_slice(&chunk[..read]),
        }
    }
    if let Some(length) = length {
        body.truncate(length);
    }
    HttpResponse {
        status,
        headers,
        body,
    }
}

/// Opens a TCP connection, sends nothing, and returns how long the server took to drop it
/// (`None` if it was still open after `patience`).
pub async fn time_until_dropped(addr: SocketAddr, patience: Duration) -> Option<Duration> {
    let mut stream = TcpStream::connect(addr)
        .await
        .expect("the outside port accepts TCP");
    let started = tokio::time::Instant::now();
    let mut chunk = [0u8; 1024];
    loop {
        match tokio::time::timeout_at(started + patience, stream.read(&mut chunk)).await {
            Err(_) => return None,
            Ok(Ok(0) | Err(_)) => return Some(started.elapsed()),
            // An error response before closing is fine; keep reading until the close.
            Ok(Ok(_)) => continue,
        }
    }
}
