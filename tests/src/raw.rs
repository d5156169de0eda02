//! A raw-socket WebSocket client that can break every rule: the conformance suite's
//! frame writer and reader.
//!
//! The ordinary [`crate::Client`] is tungstenite, which refuses to send what RFC 6455
//! forbids. [`RawFrame`] writes any first byte (FIN, RSV, opcode), masked or not, with
//! any length field; [`RawClient`] does the opening handshake by hand, writes bytes
//! whole, in chunks or with pauses, and reads the server's frames one by one, telling a
//! close frame, an orderly end of the TCP stream and a reset apart.

use std::{net::SocketAddr, time::Duration};

use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::TcpStream,
};
use tokio_tungstenite::tungstenite::handshake::derive_accept_key;

use crate::client::RECV_TIMEOUT;

/// RFC 6455's sample nonce (§1.3): the base64 of 16 bytes.
pub const SAMPLE_KEY: &str = "dGhlIHNhbXBsZSBub25jZQ==";

/// Opcodes (RFC 6455 §5.2).
pub mod opcode {
    /// Continuation.
    pub const CONTINUATION: u8 = 0x0;
    /// Text.
    pub const TEXT: u8 = 0x1;
    /// Binary.
    pub const BINARY: u8 = 0x2;
    /// Close.
    pub const CLOSE: u8 = 0x8;
    /// Ping.
    pub const PING: u8 = 0x9;
    /// Pong.
    pub const PONG: u8 = 0xA;
}

/// One frame as a client writes it, rules optional.
#[derive(Debug, Clone)]
pub struct RawFrame {
    /// FIN.
    pub fin: bool,
    /// RSV1..3 as a 3-bit number (RSV1 is 4).
    pub rsv: u8,
    /// The opcode, reserved ones included.
    pub opcode: u8,
    /// The masking key; `None` sends the frame unmasked.
    pub mask: Option<[u8; 4]>,
    /// The payload.
    pub payload: Vec<u8>,
    /// A 64-bit length field to write instead of the payload's length.
    pub length: Option<u64>,
}

impl RawFrame {
    /// A final, masked frame with this opcode and payload.
    pub fn new(opcode: u8, payload: impl Into<Vec<u8>>) -> Self {
        RawFrame {
            fin: true,
            rsv: 0,
            opcode,
            mask: Some([0x37, 0xfa, 0x21, 0x3d]),
            payload: payload.into(),
            length: None,
        }
    }

    /// A text frame.
    pub fn text(payload: impl Into<Vec<u8>>) -> Self {
        Self::new(opcode::TEXT, payload)
    }

    /// A binary frame.
    pub fn binary(payload: impl Into<Vec<u8>>) -> Self {
        Self::new(opcode::BINARY, payload)
    }

    /// A continuation frame.
    pub fn continuation(payload: impl Into<Vec<u8>>) -> Self {
        Self::new(opcode::CONTINUATION, payload)
    }

    /// A ping.
    pub fn ping(payload: impl Into<Vec<u8>>) -> Self {
        Self::new(opcode::PING, payload)
    }

    /// A pong.
    pub fn pong(payload: impl Into<Vec<u8>>) -> Self {
        Self::new(opcode::PONG, payload)
    }

    /// A close frame with a code and a reason.
    pub fn close(code: u16, reason: &[u8]) -> Self {
        let mut payload = code.to_be_bytes().to_vec();
        payload.extend_from_slice(reason);
        Self::new(opcode::CLOSE, payload)
    }

    /// Sets FIN.
    pub fn fin(mut self, fin: bool) -> Self {
        self.fin = fin;
        self
    }

    /// Sets the RSV bits (RSV1 = 4, RSV2 = 2, RSV3 = 1).
    pub fn rsv(mut self, rsv: u8) -> Self {
        self.rsv = rsv;
        self
    }

    /// Sends it unmasked.
    pub fn unmasked(mut self) -> Self {
        self.mask = None;
        self
    }

    /// Writes this 64-bit length field whatever the payload is.
    pub fn length(mut self, length: u64) -> Self {
        self.length = Some(length);
        self
    }

    /// The bytes on the wire.
    pub fn encode(&self) -> Vec<u8> {
        let mut bytes = Vec::with_capacity(self.payload.len() + 14);
        bytes.push(u8::from(self.fin) << 7 | (self.rsv & 0x7) << 4 | (self.opcode & 0xF));
        let mask_bit = if self.mask.is_some() { 0x80 } else { 0 };
        match (self.length, self.payload.len()) {
            (Some(length), _) => {
                bytes.push(mask_bit | 127);
                bytes.extend_from_slice(&length.to_be_bytes());
            }
            (None, n @ 0..=125) => bytes.push(mask_bit | n as u8),
            (None, n @ 126..=65535) => {
                bytes.push(mask_bit | 126);
                bytes.extend_from_slice(&(n as u16).to_be_bytes());
            }
            (None, n) => {
                bytes.push(mask_bit | 127);
                bytes.extend_from_slice(&(n as u64).to_be_bytes());
            }
        }
        match self.mask {
            Some(mask) => {
                bytes.extend_from_slice(&mask);
                bytes.extend(
                    self.payload
                        .iter()
                        .zip(mask.iter().cycle())
                        .map(|(byte, key)| byte ^ key),
                );
            }
            None => bytes.extend_from_slice(&self.payload),
        }
        bytes
    }
}

/// A frame the server sent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerFrame {
    /// FIN.
    pub fin: bool,
    /// RSV bits.
    pub rsv: u8,
    /// The opcode.
    pub opcode: u8,
    /// Whether it was masked (a server must not mask).
    pub masked: bool,
    /// The payload, unmasked.
    pub payload: Vec<u8>,
}

impl ServerFrame {
    /// A close frame's code, if it has one.
    pub fn close_code(&self) -> Option<u16> {
        (self.opcode == opcode::CLOSE && self.payload.len() >= 2)
            .then(|| u16::from_be_bytes([self.payload[0], self.payload[1]]))
    }

    /// The payload as text (lossy, for messages).
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.payload).into_owned()
    }
}

/// What the client read next.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Incoming {
    /// A frame.
    Frame(ServerFrame),
    /// The TCP stream ended in order (FIN).
    Closed,
    /// The TCP stream failed: a reset, mostly.
    Failed(String),
}

/// A WebSocket client on a raw TCP socket.
pub struct RawClient {
    /// The socket.
    stream: TcpStream,
    /// Bytes read and not yet parsed.
    buffer: Vec<u8>,
    /// How long a receive waits.
    timeout: Duration,
    /// The stream ended (a later read must not block).
    ended: Option<Incoming>,
}

/// The upgrade request for `path`, with extra header lines.
pub fn upgrade_request(addr: SocketAddr, path: &str, extra: &str) -> String {
    format!(
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Key: {SAMPLE_KEY}\r\nSec-WebSocket-Version: 13\r\n{extra}\r\n"
    )
}

impl RawClient {
    /// Connects to `addr` and upgrades `path` (with its query); panics unless the
    /// answer is a correct 101.
    pub async fn connect(addr: SocketAddr, path: &str) -> RawClient {
        Self::connect_then(addr, path, &[]).await
    }

    /// As [`RawClient::connect`], writing `after` in the same write as the request.
    pub async fn connect_then(addr: SocketAddr, path: &str, after: &[u8]) -> RawClient {
        let mut stream = match TcpStream::connect(addr).await {
            Ok(stream) => stream,
            Err(error) => panic!("cannot connect to {addr}: {error}"),
        };
        let _ = stream.set_nodelay(true);
        let mut request = upgrade_request(addr, path, "").into_bytes();
        request.extend_from_slice(after);
        if let Err(error) = stream.write_all(&request).await {
            panic!("cannot send the upgrade request: {error}");
        }
        let mut client = RawClient {
            stream,
            buffer: Vec::new(),
            timeout: RECV_TIMEOUT,
            ended: None,
        };
        let head = client.read_head().await;
        let accept = derive_accept_key(SAMPLE_KEY.as_bytes());
        let lower = head.to_ascii_lowercase();
        assert!(
            head.starts_with("HTTP/1.1 101 ")
                && lower.contains(&format!(
                    "sec-websocket-accept: {}",
                    accept.to_ascii_lowercase()
                ))
                && lower.contains("upgrade: websocket"),
            "expected a 101 with Sec-WebSocket-Accept {accept}, got:\n{head}"
        );
        client
    }

    /// Reads up to the end of an HTTP head; returns it, keeps what follows.
    async fn read_head(&mut self) -> String {
        loop {
            if let Some(at) = self.buffer.windows(4).position(|w| w == b"\r\n\r\n") {
                let head = String::from_utf8_lossy(&self.buffer[..at]).into_owned();
                self.buffer.drain(..at + 4);
                return head;
            }
            match self.fill(self.timeout).await {
                Some(None) => {}
                Some(Some(end)) => panic!(
                    "the connection ended before a response head ({end:?}): {:?}",
                    String::from_utf8_lossy(&self.buffer)
                ),
                None => panic!("no response head within {:?}", self.timeout),
            }
        }
    }

    /// Reads once: `Some(None)` when bytes arrived, `Some(Some(end))` when the stream
    /// ended, `None` when nothing came within `wait`.
    async fn fill(&mut self, wait: Duration) -> Option<Option<Incoming>> {
        if let Some(end) = &self.ended {
            return Some(Some(end.clone()));
        }
        let mut chunk = vec![0u8; 64 * 1024];
        match tokio::time::timeout(wait, self.stream.read(&mut chunk)).await {
            Err(_) => None,
            Ok(Ok(0)) => {
                self.ended = Some(Incoming::Closed);
                Some(self.ended.clone())
            }
            Ok(Ok(read)) => {
                self.buffer.extend_from_slice(&chunk[..read]);
                Some(None)
            }
            Ok(Err(error)) => {
                self.ended = Some(Incoming::Failed(error.to_string()));
                Some(self.ended.clone())
            }
        }
    }

    /// Changes how long receives wait.
    pub fn set_timeout(&mut self, timeout: Duration) {
        self.timeout = timeout;
    }

    /// Writes bytes as they are.
    pub async fn send_raw(&mut self, bytes: &[u8]) {
        match tokio::time::timeout(self.timeout, self.stream.write_all(bytes)).await {
            Ok(Ok(())) => {}
            Ok(Err(error)) => panic!("writing {} bytes failed: {error}", bytes.len()),
            Err(_) => panic!(
                "writing {} bytes blocked for {:?}",
                bytes.len(),
                self.timeout
            ),
        }
    }

    /// Writes bytes, ignoring a failure (for writes the server may already have refused).
    pub async fn try_send_raw(&mut self, bytes: &[u8]) {
        let _ = tokio::time::timeout(self.timeout, self.stream.write_all(bytes)).await;
    }

    /// Writes one frame.
    pub async fn send(&mut self, frame: &RawFrame) {
        self.send_raw(&frame.encode()).await;
    }

    /// Writes frames in one write.
    pub async fn send_all(&mut self, frames: &[RawFrame]) {
        let bytes: Vec<u8> = frames.iter().flat_map(RawFrame::encode).collect();
        self.send_raw(&bytes).await;
    }

    /// Writes bytes in pieces of `chunk` bytes, pausing `pause` between them. A failed
    /// write ends it quietly: the server may fail the connection before the last piece
    /// (that is what many cases test), and what it said is read next.
    pub async fn send_chunked(&mut self, bytes: &[u8], chunk: usize, pause: Duration) {
        for piece in bytes.chunks(chunk.max(1)) {
            let written = tokio::time::timeout(self.timeout, self.stream.write_all(piece)).await;
            match written {
                Ok(Ok(())) => {}
                Ok(Err(_)) => return,
                Err(_) => panic!(
                    "writing {} bytes blocked for {:?}",
                    piece.len(),
                    self.timeout
                ),
            }
            if !pause.is_zero() {
                tokio::time::sleep(pause).await;
            }
        }
    }

    /// The next frame or end of stream, or `None` if nothing arrives within `wait`.
    pub async fn recv_within(&mut self, wait: Duration) -> Option<Incoming> {
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            if let Some(frame) = self.parse() {
                return Some(Incoming::Frame(frame));
            }
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            match self.fill(left).await {
                None => return None,
                Some(None) => {}
                Some(Some(end)) => {
                    // Bytes left over that are not a whole frame are lost with the stream.
                    return Some(end);
                }
            }
        }
    }

    /// The next frame or end of stream; panics if nothing arrives in time.
    pub async fn recv(&mut self) -> Incoming {
        let wait = self.timeout;
        match self.recv_within(wait).await {
            Some(incoming) => incoming,
            None => panic!("nothing received within {wait:?}"),
        }
    }

    /// Takes one whole frame off the buffer.
    fn parse(&mut self) -> Option<ServerFrame> {
        let buffer = &self.buffer;
        if buffer.len() < 2 {
            return None;
        }
        let masked = buffer[1] & 0x80 != 0;
        let (length, mut at) = match buffer[1] & 0x7F {
            126 => (
                u64::from(u16::from_be_bytes([*buffer.get(2)?, *buffer.get(3)?])),
                4,
            ),
            127 => {
                let bytes: [u8; 8] = buffer.get(2..10)?.try_into().ok()?;
                (u64::from_be_bytes(bytes), 10)
            }
            n => (u64::from(n), 2),
        };
        let mask: Option<[u8; 4]> = match masked {
            true => {
                let key = buffer.get(at..at + 4)?.try_into().ok()?;
                at += 4;
                Some(key)
            }
            false => None,
        };
        let end = at + usize::try_from(length).ok()?;
        let mut payload = buffer.get(at..end)?.to_vec();
        if let Some(mask) = mask {
            for (byte, key) in payload.iter_mut().zip(mask.iter().cycle()) {
                *byte ^= key;
            }
        }
        let frame = ServerFrame {
            fin: buffer[0] & 0x80 != 0,
            rsv: (buffer[0] >> 4) & 0x7,
            opcode: buffer[0] & 0xF,
            masked,
            payload,
        };
        self.buffer.drain(..end);
        Some(frame)
    }

    /// The next frame; panics on anything else.
    pub async fn expect_frame(&mut self) -> ServerFrame {
        match self.recv().await {
            Incoming::Frame(frame) => {
                assert!(!frame.masked, "a server frame was masked: {frame:?}");
                assert_eq!(frame.rsv, 0, "a server frame had RSV bits: {frame:?}");
                frame
            }
            other => panic!("expected a frame, got {other:?}"),
        }
    }

    /// The next frame must be a whole text message; returns it.
    pub async fn expect_text(&mut self) -> String {
        let frame = self.expect_frame().await;
        assert!(
            frame.opcode == opcode::TEXT && frame.fin,
            "expected a text frame, got opcode {} fin {} {:?}",
            frame.opcode,
            frame.fin,
            frame.text()
        );
        match String::from_utf8(frame.payload) {
            Ok(text) => text,
            Err(error) => panic!("the server sent text that is not UTF-8: {error}"),
        }
    }

    /// The next frame must be a pong with this payload.
    pub async fn expect_pong(&mut self, payload: &[u8]) {
        let frame = self.expect_frame().await;
        assert_eq!(
            (frame.opcode, frame.payload.as_slice()),
            (opcode::PONG, payload),
            "expected a pong"
        );
    }

    /// The next frame must be a close frame; returns its payload.
    pub async fn expect_close_frame(&mut self) -> Vec<u8> {
        let frame = self.expect_frame().await;
        assert_eq!(
            frame.opcode,
            opcode::CLOSE,
            "expected a close frame, got {frame:?} ({:?})",
            frame.text()
        );
        frame.payload
    }

    /// The next frame must be a close frame with `code`; returns its reason.
    pub async fn expect_close(&mut self, code: u16) -> String {
        let payload = self.expect_close_frame().await;
        assert!(
            payload.len() >= 2,
            "a close frame without a code: {payload:?}"
        );
        let got = u16::from_be_bytes([payload[0], payload[1]]);
        let reason = String::from_utf8_lossy(&payload[2..]).into_owned();
        assert_eq!(got, code, "close code (reason {reason:?})");
        reason
    }

    /// After a close frame: the server closes the TCP connection and sends nothing more.
    pub async fn expect_end(&mut self) {
        match self.recv().await {
            Incoming::Closed | Incoming::Failed(_) => {}
            Incoming::Frame(frame) => {
                panic!(
                    "expected the connection to end, got {frame:?} ({:?})",
                    frame.text()
                )
            }
        }
    }

    /// The server fails the connection: close frame with `code`, then the end.
    pub async fn expect_failed(&mut self, code: u16) {
        self.expect_close(code).await;
        self.expect_end().await;
    }

    /// Nothing arrives for `quiet`.
    pub async fn expect_silence(&mut self, quiet: Duration) {
        if let Some(incoming) = self.recv_within(quiet).await {
            panic!("expected nothing for {quiet:?}, got {incoming:?}");
        }
    }
}
