//! A WebSocket client for the outside and manager ports.
//!
//! Every receive has a timeout ([`crate::client::RECV_TIMEOUT`] unless changed) and fails the
//! test with what it was waiting for; a refused handshake comes back as [`Refused`]
//! with the HTTP status, headers and body.

use std::{
    net::{IpAddr, SocketAddr},
    time::Duration,
};

use futures_util::{
    stream::{SplitSink, SplitStream},
    SinkExt, StreamExt,
};
use serde_json::Value;
use tokio::net::{TcpSocket, TcpStream};
use tokio_tungstenite::{
    tungstenite::{
        self,
        client::IntoClientRequest,
        http::{HeaderMap, HeaderName, HeaderValue},
        protocol::{frame::coding::CloseCode, CloseFrame},
        Message,
    },
    MaybeTlsStream, WebSocketStream,
};

use crate::envelope::{Envelope, ACK};

/// How long a receive waits before the test fails: a healthy host answers in milliseconds.
pub const RECV_TIMEOUT: Duration = Duration::from_secs(5);

/// The WebSocket stream of a client.
type Ws = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// A handshake the server answered with an HTTP response instead of an upgrade.
#[derive(Debug)]
pub struct Refused {
    /// The HTTP status, e.g. 403.
    pub status: u16,
    /// The response headers.
    pub headers: HeaderMap,
    /// The response body, if any.
    pub body: Vec<u8>,
}

impl Refused {
    /// A header's value as text.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|value| value.to_str().ok())
    }
}

/// What a client can receive.
#[derive(Debug, Clone, PartialEq)]
pub enum Frame {
    /// A text frame.
    Text(String),
    /// A binary frame.
    Binary(Vec<u8>),
    /// A close frame: code and reason, if it carried them.
    Close(Option<(u16, String)>),
    /// The stream ended without a close frame, or failed: why.
    Ended(String),
}

/// Opens a WebSocket to `ws://<addr><path_and_query>`.
pub async fn connect(addr: SocketAddr, path_and_query: &str) -> Result<Client, Refused> {
    connect_with_headers(addr, path_and_query, &[]).await
}

/// Opens a WebSocket with extra request headers (e.g. `Origin`).
pub async fn connect_with_headers(
    addr: SocketAddr,
    path_and_query: &str,
    headers: &[(&str, &str)],
) -> Result<Client, Refused> {
    connect_from(None, addr, path_and_query, headers).await
}

/// Opens a WebSocket from a chosen local address (any of 127.0.0.0/8 on loopback), so a
/// proxy in between has a client address to pass on that is not its own.
pub async fn connect_from(
    local: Option<IpAddr>,
    addr: SocketAddr,
    path_and_query: &str,
    headers: &[(&str, &str)],
) -> Result<Client, Refused> {
    let url = format!("ws://{addr}{path_and_query}");
    let mut request = url
        .as_str()
        .into_client_request()
        .unwrap_or_else(|error| panic!("{url} is not a valid request: {error}"));
    for (name, value) in headers {
        request.headers_mut().insert(
            HeaderName::from_bytes(name.as_bytes()).expect("a valid header name"),
            HeaderValue::from_str(value).expect("a valid header value"),
        );
    }
    let connecting = async {
        let stream = match local {
            None => TcpStream::connect(addr).await,
            Some(local) => {
                let socket = TcpSocket::new_v4().expect("a TCP socket");
                socket
                    .bind(SocketAddr::new(local, 0))
                    .unwrap_or_else(|error| panic!("cannot bind {local}: {error}"));
                socket.connect(addr).await
            }
        }
        .unwrap_or_else(|error| panic!("cannot connect to {addr}: {error}"));
        tokio_tungstenite::client_async(request, MaybeTlsStream::Plain(stream)).await
    };
    match tokio::time::timeout(RECV_TIMEOUT, connecting).await {
        Err(_) => panic!("handshake with {url} got no answer within {RECV_TIMEOUT:?}"),
        Ok(Ok((stream, _response))) => Ok(Client::new(stream)),
        Ok(Err(tungstenite::Error::Http(response))) => Err(Refused {
            status: response.status().as_u16(),
            headers: response.headers().clone(),
            body: response.body().clone().unwrap_or_default(),
        }),
        Ok(Err(error)) => panic!("handshake with {url} failed: {error}"),
    }
}

/// A connected WebSocket client.
pub struct Client {
    /// The sending half.
    pub tx: ClientTx,
    /// The receiving half.
    pub rx: ClientRx,
}

/// The sending half of a [`Client`].
pub struct ClientTx {
    /// The sink of the WebSocket.
    sink: SplitSink<Ws, Message>,
}

/// The receiving half of a [`Client`].
pub struct ClientRx {
    /// The stream of the WebSocket.
    stream: SplitStream<Ws>,
    /// How long a receive waits.
    timeout: Duration,
}

impl Client {
    /// Wraps an open stream.
    fn new(stream: Ws) -> Self {
        let (sink, stream) = stream.split();
        Client {
            tx: ClientTx { sink },
            rx: ClientRx {
                stream,
                timeout: RECV_TIMEOUT,
            },
        }
    }

    /// Splits into halves so a test can send and receive at the same time.
    pub fn split(self) -> (ClientTx, ClientRx) {
        (self.tx, self.rx)
    }

    /// Changes how long receives wait.
    pub fn set_timeout(&mut self, timeout: Duration) {
        self.rx.timeout = timeout;
    }

    /// Sends a text frame.
    pub async fn send_text(&mut self, text: &str) {
        self.tx.send_text(text).await;
    }

    /// Sends a JSON value as a text frame.
    pub async fn send_json(&mut self, value: &Value) {
        self.tx.send_json(value).await;
    }

    /// Sends a binary frame.
    pub async fn send_binary(&mut self, bytes: &[u8]) {
        self.tx.send_binary(bytes).await;
    }

    /// Receives the next frame (pings and pongs are skipped).
    pub async fn recv(&mut self) -> Frame {
        self.rx.recv().await
    }

    /// The next frame, or `None` if nothing arrives within `timeout`.
    pub async fn recv_within(&mut self, timeout: Duration) -> Option<Frame> {
        self.rx.recv_within(timeout).await
    }

    /// Receives a text frame.
    pub async fn recv_text(&mut self) -> String {
        self.rx.recv_text().await
    }

    /// Receives an envelope.
    pub async fn recv_envelope(&mut self) -> Envelope {
        self.rx.recv_envelope().await
    }

    /// Receives an envelope and asserts its status and event.
    pub async fn expect_envelope(&mut self, status: u64, event: &str) -> Envelope {
        self.rx.expect_envelope(status, event).await
    }

    /// Receives the acknowledgement, byte for byte.
    pub async fn expect_ack(&mut self) {
        self.rx.expect_ack().await;
    }

    /// Receives a close frame with `code`; returns its reason.
    pub async fn expect_close(&mut self, code: u16) -> String {
        self.rx.expect_close(code).await
    }

    /// Asserts nothing arrives for `quiet`.
    pub async fn expect_silence(&mut self, quiet: Duration) {
        self.rx.expect_silence(quiet).await;
    }

    /// Sends `message`, expects the ack, returns the reply.
    pub async fn call(&mut self, message: &Value) -> Envelope {
        self.send_json(message).await;
        self.expect_ack().await;
        self.recv_envelope().await
    }

    /// Sends `{"method":"index.index.echo", ...fields}`; returns the echoed object (`param`).
    pub async fn echo(&mut self, fields: Value) -> Value {
        let mut message = match fields {
            Value::Object(map) => map,
            other => panic!("echo takes a JSON object, not {other}"),
        };
        message.insert("method".into(), "index.index.echo".into());
        let reply = self.call(&Value::Object(message)).await;
        reply.assert_is(200, "echo");
        reply.expect_param().clone()
    }

    /// This connection's fd, as `index.index.echo` shows it.
    pub async fn fd(&mut self) -> String {
        match self.echo(serde_json::json!({})).await.get("fd") {
            Some(Value::String(fd)) => fd.clone(),
            other => panic!("echo shows fd {other:?}, expected a string"),
        }
    }

    /// Sends a close frame with `code`.
    pub async fn close(&mut self, code: u16) {
        self.tx.close(code).await;
    }
}

impl ClientTx {
    /// Sends a text frame.
    pub async fn send_text(&mut self, text: &str) {
        self.send(Message::text(text)).await;
    }

    /// Sends a JSON value as a text frame.
    pub async fn send_json(&mut self, value: &Value) {
        self.send_text(&value.to_string()).await;
    }

    /// Sends a binary frame.
    pub async fn send_binary(&mut self, bytes: &[u8]) {
        self.send(Message::binary(bytes.to_vec())).await;
    }

    /// Sends a text frame, waiting as long as it takes; an error is returned, not a panic
    /// (for tests that fill the connection on purpose).
    pub async fn try_send_text(&mut self, text: &str) -> Result<(), String> {
        self.sink
            .send(Message::text(text))
            .await
            .map_err(|error| error.to_string())
    }

    /// Sends a WebSocket ping control frame (the host's transport answers it with a pong).
    pub async fn send_ping(&mut self, payload: &[u8]) {
        self.send(Message::Ping(payload.to_vec().into())).await;
    }

    /// Queues a text frame without flushing (see [`ClientTx::flush`]).
    pub async fn feed_text(&mut self, text: &str) {
        let fed = tokio::time::timeout(RECV_TIMEOUT, self.sink.feed(Message::text(text))).await;
        match fed {
            Ok(Ok(())) => {}
            Ok(Err(error)) => panic!("queueing a frame failed: {error}"),
            Err(_) => panic!("queueing a frame blocked for {RECV_TIMEOUT:?}"),
        }
    }

    /// Flushes queued frames.
    pub async fn flush(&mut self) {
        match tokio::time::timeout(RECV_TIMEOUT, self.sink.flush()).await {
            Ok(Ok(())) => {}
            Ok(Err(error)) => panic!("flushing frames failed: {error}"),
            Err(_) => panic!("flushing frames blocked for {RECV_TIMEOUT:?}"),
        }
    }

    /// Sends a close frame with `code`.
    pub async fn close(&mut self, code: u16) {
        let frame = CloseFrame {
            code: CloseCode::from(code),
            reason: "".into(),
        };
        self.send(Message::Close(Some(frame))).await;
    }

    /// Sends one message.
    async fn send(&mut self, message: Message) {
        match tokio::time::timeout(RECV_TIMEOUT, self.sink.send(message)).await {
            Ok(Ok(())) => {}
            Ok(Err(error)) => panic!("sending a frame failed: {error}"),
            Err(_) => panic!("sending a frame blocked for {RECV_TIMEOUT:?}"),
        }
    }
}

impl ClientRx {
    /// Receives the next frame within the timeout (pings and pongs are skipped).
    pub async fn recv(&mut self) -> Frame {
        let timeout = self.timeout;
        match self.recv_within(timeout).await {
            Some(frame) => frame,
            None => panic!("nothing received within {timeout:?}"),
        }
    }

    /// The next frame, or `None` if nothing arrives within `timeout`.
    pub async fn recv_within(&mut self, timeout: Duration) -> Option<Frame> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let next = tokio::time::timeout_at(deadline, self.stream.next())
                .await
                .ok()?;
            return Some(match next {
                None => Frame::Ended("the stream ended without a close frame".into()),
                Some(Err(error)) => Frame::Ended(format!("the stream failed: {error}")),
                Some(Ok(Message::Text(text))) => Frame::Text(text.to_string()),
                Some(Ok(Message::Binary(bytes))) => Frame::Binary(bytes.to_vec()),
                Some(Ok(Message::Close(frame))) => Frame::Close(
                    frame.map(|frame| (u16::from(frame.code), frame.reason.to_string())),
                ),
                Some(Ok(Message::Ping(_) | Message::Pong(_) | Message::Frame(_))) => continue,
            });
        }
    }

    /// Changes how long receives wait.
    pub fn set_timeout(&mut self, timeout: Duration) {
        self.timeout = timeout;
    }

    /// Receives a text frame.
    pub async fn recv_text(&mut self) -> String {
        match self.recv().await {
            Frame::Text(text) => text,
            other => panic!("expected a text frame, got {other:?}"),
        }
    }

    /// Receives an envelope.
    pub async fn recv_envelope(&mut self) -> Envelope {
        Envelope::parse(&self.recv_text().await)
    }

    /// Receives an envelope and asserts its status and event.
    pub async fn expect_envelope(&mut self, status: u64, event: &str) -> Envelope {
        let envelope = self.recv_envelope().await;
        envelope.assert_is(status, event);
        envelope
    }

    /// Receives the acknowledgement, byte for byte.
    pub async fn expect_ack(&mut self) {
        let text = self.recv_text().await;
        assert_eq!(text, ACK, "expected the ack");
    }

    /// Receives a close frame with `code` (nothing else may come first); returns its reason.
    pub async fn expect_close(&mut self, code: u16) -> String {
        match self.recv().await {
            Frame::Close(Some((got, reason))) => {
                assert_eq!(got, code, "close code (reason {reason:?})");
                reason
            }
            other => panic!("expected a close frame with code {code}, got {other:?}"),
        }
    }

    /// Asserts nothing arrives for `quiet`.
    pub async fn expect_silence(&mut self, quiet: Duration) {
        if let Some(frame) = self.recv_within(quiet).await {
            panic!("expected nothing for {quiet:?}, got {frame:?}");
        }
    }
}
