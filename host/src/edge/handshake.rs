//! Reads an HTTP request head and answers what is not a WebSocket upgrade.
//!
//! tungstenite's handshake cannot answer a plain `GET /` with 200, so the head is
//! read here (with `httparse`) and only an upgrade is handed to tokio-tungstenite,
//! together with any bytes the client sent after the head.
//!
//! An upgrade is checked as RFC 6455 §4.2.1 says before anything else (the token
//! included): a `GET` over HTTP/1.1 or later, `Sec-WebSocket-Version: 13`, and a
//! `Sec-WebSocket-Key` that is the base64 of 16 bytes. Anything else is answered 400
//! with `Sec-WebSocket-Version: 13` (§4.4) and never upgraded.

use std::io;

use base64::{engine::general_purpose::STANDARD, Engine};
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
    /// The minor HTTP version: 1 for HTTP/1.1, 0 for HTTP/1.0.
    pub version: u8,
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

/// What [`parse_head`] makes of the bytes read so far.
#[derive(Debug)]
pub enum Parsed {
    /// A whole head, and how many bytes it took.
    Complete(Head, usize),
    /// Not a whole head yet; more bytes may complete it.
    Partial,
    /// Not HTTP.
    Malformed,
}

/// Parses the bytes read so far as a request head. Pure, so the fuzz target and the
/// property tests can feed it anything (docs/FUZZING.md).
pub fn parse_head(buffer: &[u8]) -> Parsed {
    let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut request = httparse::Request::new(&mut headers);
    match request.parse(buffer) {
        Ok(httparse::Status::Complete(used)) => {
            let target = request.path.unwrap_or("/");
            let (path, query) = target.split_once('?').unwrap_or((target, ""));
            let head = Head {
                method: request.method.unwrap_or("").to_string(),
                version: request.version.unwrap_or(0),
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
            Parsed::Complete(head, used)
        }
        Ok(httparse::Status::Partial) => Parsed::Partial,
        Err(_) => Parsed::Malformed,
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
        match parse_head(&buffer) {
            Parsed::Complete(head, used) => return Ok((head, buffer[used..].to_vec())),
            Parsed::Partial if buffer.len() < MAX_HEAD => continue,
            Parsed::Partial | Parsed::Malformed => return Err(HeadError::Malformed),
        }
    }
}

fn reason(status: u16) -> &'static str {
    match status {
        101 => "Switching Protocols",
        200 => "OK",
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        411 => "Length Required",
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

/// Why an upgrade request is not a valid RFC 6455 opening handshake.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BadUpgrade {
    /// Not `GET`.
    Method,
    /// HTTP/1.0.
    HttpVersion,
    /// `Sec-WebSocket-Version` missing or not 13.
    WebSocketVersion,
    /// `Sec-WebSocket-Key` missing, or not the base64 of 16 bytes.
    Key,
}

impl BadUpgrade {
    /// The reason, as the 400's body says it.
    pub fn reason(self) -> &'static str {
        match self {
            BadUpgrade::Method => "a WebSocket handshake must be a GET",
            BadUpgrade::HttpVersion => "a WebSocket handshake needs HTTP/1.1",
            BadUpgrade::WebSocketVersion => "Sec-WebSocket-Version must be 13",
            BadUpgrade::Key => "Sec-WebSocket-Key must be the base64 of 16 bytes",
        }
    }
}

/// Checks an upgrade request against RFC 6455 §4.2.1 (see the module docs).
pub fn check_upgrade(head: &Head) -> Result<(), BadUpgrade> {
    if head.method != "GET" {
        return Err(BadUpgrade::Method);
    }
    if head.version < 1 {
        return Err(BadUpgrade::HttpVersion);
    }
    if head.header("sec-websocket-version").map(str::trim) != Some("13") {
        return Err(BadUpgrade::WebSocketVersion);
    }
    let key = head.header("sec-websocket-key").map(str::trim);
    match key.map(|key| STANDARD.decode(key)) {
        Some(Ok(nonce)) if nonce.len() == 16 => Ok(()),
        _ => Err(BadUpgrade::Key),
    }
}

/// Answers an invalid upgrade request: 400, and the version this server speaks.
pub async fn reject_upgrade(stream: &mut TcpStream, bad: BadUpgrade) -> io::Result<()> {
    let body = format!("bad websocket handshake: {}\n", bad.reason());
    respond(
        stream,
        400,
        &[("Sec-WebSocket-Version", "13")],
        "text/plain",
        &body,
    )
    .await
}

/// Writes the 101 answer to an upgrade request that passed [`check_upgrade`] (checked
/// again here: an unchecked one is rejected, never upgraded).
pub async fn accept_upgrade(stream: &mut TcpStream, head: &Head) -> io::Result<bool> {
    if let Err(bad) = check_upgrade(head) {
        reject_upgrade(stream, bad).await?;
        return Ok(false);
    }
    let key = head.header("sec-websocket-key").unwrap_or_default();
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
            version: 1,
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
    fn an_upgrade_is_checked_as_rfc_6455_says() {
        let key = ("sec-websocket-key", "dGhlIHNhbXBsZSBub25jZQ==");
        let version = ("sec-websocket-version", "13");
        assert_eq!(check_upgrade(&head("", &[key, version])), Ok(()));
        let post = Head {
            method: "POST".into(),
            ..head("", &[key, version])
        };
        assert_eq!(check_upgrade(&post), Err(BadUpgrade::Method));
        let http10 = Head {
            version: 0,
            ..head("", &[key, version])
        };
        assert_eq!(check_upgrade(&http10), Err(BadUpgrade::HttpVersion));
        for bad in [
            vec![key],
            vec![key, ("sec-websocket-version", "8")],
            vec![key, ("sec-websocket-version", "13, 8")],
        ] {
            assert_eq!(
                check_upgrade(&head("", &bad)),
                Err(BadUpgrade::WebSocketVersion),
                "{bad:?}"
            );
        }
        for bad in [
            "",
            "not base64!",
            // Unpadded 16 bytes, then 17 and 18 bytes.
            "dGhlIHNhbXBsZSBub25jZQ",
            "dGhlIHNhbXBsZSBub25jZTE=",
            "AAAAAAAAAAAAAAAAAAAAAAAA",
        ] {
            let headers = [("sec-websocket-key", bad), version];
            assert_eq!(
                check_upgrade(&head("", &headers)),
                Err(BadUpgrade::Key),
                "{bad:?}"
            );
        }
        assert_eq!(check_upgrade(&head("", &[version])), Err(BadUpgrade::Key));
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

    mod properties {
        //! The invariants the `head` fuzz target checks (docs/FUZZING.md).
        use proptest::prelude::*;

        use super::super::*;

        fn shape(head: &Head) -> (String, u8, String, String, Vec<(String, String)>) {
            (
                head.method.clone(),
                head.version,
                head.path.clone(),
                head.query.clone(),
                head.headers.clone(),
            )
        }

        /// A well-formed request head, and what it says.
        fn request(
        ) -> impl Strategy<Value = (String, String, u8, String, String, Vec<(String, String)>)>
        {
            (
                "GET|POST|HEAD|OPTIONS",
                "/[a-z0-9/._-]{0,12}",
                0u8..=1,
                "([a-z]{1,5}=[A-Za-z0-9%*:_]{0,8}&?){0,3}",
                prop::collection::vec(("[A-Za-z][A-Za-z0-9-]{0,15}", "[ -~]{0,20}"), 0..10),
            )
                .prop_map(|(method, path, version, query, headers)| {
                    let target = if query.is_empty() {
                        path.clone()
                    } else {
                        format!("{path}?{query}")
                    };
                    let mut text = format!("{method} {target} HTTP/1.{version}\r\n");
                    for (name, value) in &headers {
                        text.push_str(&format!("{name}: {value}\r\n"));
                    }
                    text.push_str("\r\n");
                    (text, method, version, path, query, headers)
                })
        }

        proptest! {
            #[test]
            fn any_bytes_parse_the_same_whole_or_in_two_reads(bytes in prop::collection::vec(any::<u8>(), 0..300), cut in any::<prop::sample::Index>()) {
                let whole = parse_head(&bytes);
                match (parse_head(&bytes[..cut.index(bytes.len() + 1)]), &whole) {
                    (Parsed::Partial, _) | (Parsed::Malformed, Parsed::Malformed) => {}
                    (Parsed::Complete(first, used), Parsed::Complete(head, whole_used)) => {
                        prop_assert_eq!(used, *whole_used);
                        prop_assert_eq!(shape(&first), shape(head));
                    }
                    (first, whole) => prop_assert!(false, "prefix {:?}, whole {:?}", first, whole),
                }
            }

            #[test]
            fn a_well_formed_head_is_read_as_sent(
                (text, method, version, path, query, headers) in request(),
                after in prop::collection::vec(any::<u8>(), 0..20),
                cut in any::<prop::sample::Index>(),
            ) {
                let mut bytes = text.clone().into_bytes();
                bytes.extend_from_slice(&after);
                let Parsed::Complete(head, used) = parse_head(&bytes) else {
                    panic!("not read: {text:?}");
                };
                prop_assert_eq!(used, text.len());
                prop_assert_eq!(&head.method, &method);
                prop_assert_eq!(head.version, version);
                prop_assert_eq!(&head.path, &path);
                prop_assert_eq!(&head.query, &query);
                let expected: Vec<(String, String)> = headers
                    .iter()
                    .map(|(n, v)| (n.to_ascii_lowercase(), v.trim_matches([' ', '\t']).to_string()))
                    .collect();
                prop_assert_eq!(&head.headers, &expected);
                // Any strict prefix is not yet a head.
                let short = cut.index(text.len());
                prop_assert!(matches!(parse_head(&bytes[..short]), Parsed::Partial));
            }

            #[test]
            fn an_accepted_upgrade_is_one_rfc_6455_allows(
                method in "GET|POST|get", version in 0u8..=1, ws_version in "13| 13 |8|",
                key in prop_oneof![
                    prop::collection::vec(any::<u8>(), 0..20).prop_map(|k| STANDARD.encode(k)),
                    "[ -~]{0,30}",
                ],
            ) {
                let head = Head {
                    method: method.clone(),
                    version,
                    headers: vec![
                        ("sec-websocket-version".into(), ws_version.clone()),
                        ("sec-websocket-key".into(), key.clone()),
                    ],
                    ..Head::default()
                };
                let accepted = check_upgrade(&head).is_ok();
                let valid = method == "GET"
                    && version == 1
                    && ws_version.trim() == "13"
                    && STANDARD.decode(key.trim()).is_ok_and(|k| k.len() == 16);
                prop_assert_eq!(accepted, valid);
            }
        }
    }
}
