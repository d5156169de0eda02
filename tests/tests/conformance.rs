//! RFC 6455 conformance: the subjects of the Autobahn|Testsuite case groups 1–7, 9 and
//! 10 re-created with a raw-socket client ([`RawClient`]), plus the opening handshake
//! (§4.2.1) and every protocol error the issue's black-box probe found. The cases, the
//! verdicts and how echo cases are adapted to the application protocol are in
//! docs/CONFORMANCE.md; case numbers in comments are Autobahn's.
//!
//! Adaptation in one line: a text message must be a JSON object, so an "echo" case sends
//! `{"method":"index.index.echo","pad":"xxx…"}` padded to the case's exact length and
//! expects the ack and the echo; a binary message, or text that is not JSON, gets a 400
//! `badRequest` envelope then close 1003 / 1007 by design (README, "Bad input").

use std::time::{Duration, Instant};

use mswoole_tests::{
    http_raw, raw::opcode, raw::upgrade_request, Incoming, RawClient, RawFrame, TestHost, Value,
    ACK, VECTOR_WECHAT_USER,
};

/// Pause between pieces in the cases that send slowly (Autobahn uses up to 1 s).
const PAUSE: Duration = Duration::from_millis(50);

/// The message every echo case wraps its payload in: `PREFIX`, the payload, `SUFFIX`.
const PREFIX: &str = r#"{"method":"index.index.echo","pad":""#;
const SUFFIX: &str = r#""}"#;

/// Says which case runs, so a failure's output names it.
fn case(id: &str, what: &str) {
    eprintln!("case {id}: {what}");
}

/// A user connection upgraded by hand.
async fn open(host: &TestHost) -> RawClient {
    RawClient::connect(host.outside, &user_path()).await
}

fn user_path() -> String {
    format!("/live?auth={VECTOR_WECHAT_USER}")
}

/// An echo message of exactly `len` bytes (at least the wrapper's 39).
fn echo_of_len(len: usize) -> Vec<u8> {
    let wrapper = PREFIX.len() + SUFFIX.len();
    assert!(
        len >= wrapper,
        "an echo message has at least {wrapper} bytes"
    );
    let mut message = Vec::with_capacity(len);
    message.extend_from_slice(PREFIX.as_bytes());
    message.resize(len - SUFFIX.len(), b'x');
    message.extend_from_slice(SUFFIX.as_bytes());
    message
}

/// An echo message whose `pad` is `bytes` as they are (valid UTF-8 or not).
fn echo_of(bytes: &[u8]) -> Vec<u8> {
    [PREFIX.as_bytes(), bytes, SUFFIX.as_bytes()].concat()
}

/// The ack, then the echo of a message built by [`echo_of_len`] or [`echo_of`]: the
/// `pad` the module saw is the one sent, byte for byte.
async fn expect_echo(client: &mut RawClient, message: &[u8]) {
    assert_eq!(client.expect_text().await, ACK, "expected the ack");
    let reply = client.expect_text().await;
    let pad = &message[PREFIX.len()..message.len() - SUFFIX.len()];
    let needle = [br#""pad":""#.as_slice(), pad, b"\""].concat();
    assert!(
        reply.starts_with(r#"{"status":200,"event":"echo","#)
            && reply.as_bytes().windows(needle.len()).any(|w| w == needle),
        "expected the echo of a {}-byte message, got {} bytes: {:?}…",
        message.len(),
        reply.len(),
        &reply[..reply.len().min(200)]
    );
}

/// The application's answer to text that is not JSON or to a binary message: one 400
/// envelope, then the close `code`, then the end.
async fn expect_bad_request(client: &mut RawClient, code: u16) {
    let envelope: Value = match serde_json::from_str(&client.expect_text().await) {
        Ok(value) => value,
        Err(error) => panic!("expected a 400 envelope: {error}"),
    };
    assert_eq!(
        (&envelope["status"], &envelope["event"]),
        (&Value::from(400), &Value::from("badRequest")),
        "{envelope}"
    );
    client.expect_failed(code).await;
}

/// Opens a connection, sends `frames` in one write, expects the connection failed with 1002.
async fn expect_protocol_error(host: &TestHost, frames: &[RawFrame]) {
    let mut client = open(host).await;
    client.send_all(frames).await;
    client.expect_failed(1002).await;
}

/// Sends a frame, then a close: the very next frame is the close echoed, so nothing
/// was sent in between.
async fn expect_nothing_before_close(client: &mut RawClient) {
    client.send(&RawFrame::close(1000, b"")).await;
    client.expect_failed(1000).await;
}

#[tokio::test]
async fn group_1_framing() {
    let host = TestHost::start("").await;
    case("1.1.1", "empty text message (adapted: not JSON)");
    let mut client = open(&host).await;
    client.send(&RawFrame::text(Vec::new())).await;
    expect_bad_request(&mut client, 1007).await;
    // 1.1.2–1.1.7: the 7-bit, 16-bit and 64-bit length encodings at their edges.
    for (id, len) in [
        ("1.1.2", 125),
        ("1.1.3", 126),
        ("1.1.4", 127),
        ("1.1.5", 128),
        ("1.1.6", 65535),
        ("1.1.7", 65536),
    ] {
        case(id, &format!("text message of {len} bytes"));
        let mut client = open(&host).await;
        let message = echo_of_len(len);
        client.send(&RawFrame::text(message.clone())).await;
        expect_echo(&mut client, &message).await;
        expect_nothing_before_close(&mut client).await;
    }
    case(
        "1.1.8",
        "65536-byte text message written in chunks of 997 bytes",
    );
    let mut client = open(&host).await;
    let message = echo_of_len(65536);
    let bytes = RawFrame::text(message.clone()).encode();
    client.send_chunked(&bytes, 997, Duration::ZERO).await;
    expect_echo(&mut client, &message).await;
    // 1.2.x: binary messages (adapted: a binary message is bad input, 1003).
    for (id, len) in [
        ("1.2.1", 0),
        ("1.2.2", 125),
        ("1.2.3", 126),
        ("1.2.4", 127),
        ("1.2.5", 128),
        ("1.2.6", 65535),
        ("1.2.7", 65536),
    ] {
        case(id, &format!("binary message of {len} bytes (adapted)"));
        let mut client = open(&host).await;
        client.send(&RawFrame::binary(vec![0xfe; len])).await;
        expect_bad_request(&mut client, 1003).await;
    }
    case(
        "1.2.8",
        "65536-byte binary message in chunks of 997 bytes (adapted)",
    );
    let mut client = open(&host).await;
    let bytes = RawFrame::binary(vec![0xfe; 65536]).encode();
    client.send_chunked(&bytes, 997, Duration::ZERO).await;
    expect_bad_request(&mut client, 1003).await;
}

#[tokio::test]
async fn group_2_pings_and_pongs() {
    let host = TestHost::start("").await;
    for (id, payload) in [
        ("2.1", b"".to_vec()),
        ("2.2", b"Hello, world!".to_vec()),
        ("2.3", vec![0x00, 0xff, 0xfe, 0xfd, 0xfc, 0xfb, 0x00, 0xff]),
        ("2.4", vec![0xfe; 125]),
    ] {
        case(id, &format!("ping with a {}-byte payload", payload.len()));
        let mut client = open(&host).await;
        client.send(&RawFrame::ping(payload.clone())).await;
        client.expect_pong(&payload).await;
        expect_nothing_before_close(&mut client).await;
    }
    case("2.5", "ping with a 126-byte payload");
    expect_protocol_error(&host, &[RawFrame::ping(vec![0xfe; 126])]).await;
    case(
        "2.6",
        "ping with a 125-byte payload written 1 byte at a time",
    );
    let mut client = open(&host).await;
    let payload = vec![0xfe; 125];
    let bytes = RawFrame::ping(payload.clone()).encode();
    client.send_chunked(&bytes, 1, Duration::ZERO).await;
    client.expect_pong(&payload).await;
    case(
        "2.7",
        "unsolicited pong without payload: nothing answers it",
    );
    let mut client = open(&host).await;
    client.send(&RawFrame::pong(Vec::new())).await;
    expect_nothing_before_close(&mut client).await;
    case("2.8", "unsolicited pong with payload: nothing answers it");
    let mut client = open(&host).await;
    client.send(&RawFrame::pong(b"unsolicited".to_vec())).await;
    expect_nothing_before_close(&mut client).await;
    case(
        "2.9",
        "unsolicited pong, then ping: only the ping is answered",
    );
    let mut client = open(&host).await;
    client
        .send_all(&[
            RawFrame::pong(b"unsolicited".to_vec()),
            RawFrame::ping(b"solicited".to_vec()),
        ])
        .await;
    client.expect_pong(b"solicited").await;
    expect_nothing_before_close(&mut client).await;
    case("2.10", "10 pings in one write: 10 pongs in order");
    let mut client = open(&host).await;
    let pings: Vec<RawFrame> = (0..10)
        .map(|n| RawFrame::ping(format!("payload-{n}").into_bytes()))
        .collect();
    client.send_all(&pings).await;
    for n in 0..10 {
        client.expect_pong(format!("payload-{n}").as_bytes()).await;
    }
    case(
        "2.11",
        "10 pings written 1 byte at a time: 10 pongs in order",
    );
    let mut client = open(&host).await;
    let bytes: Vec<u8> = pings.iter().flat_map(RawFrame::encode).collect();
    client.send_chunked(&bytes, 1, Duration::ZERO).await;
    for n in 0..10 {
        client.expect_pong(format!("payload-{n}").as_bytes()).await;
    }
    expect_nothing_before_close(&mut client).await;
}

#[tokio::test]
async fn group_3_reserved_bits() {
    let host = TestHost::start("").await;
    let message = echo_of_len(64);
    case("3.1", "text with RSV = 1");
    expect_protocol_error(&host, &[RawFrame::text(message.clone()).rsv(1)]).await;
    for (id, rsv, chunked) in [("3.2", 2, None), ("3.3", 3, None), ("3.4", 4, Some(1))] {
        case(
            id,
            &format!("echo, then text with RSV = {rsv}, then ping: echo, then 1002, no pong"),
        );
        let mut client = open(&host).await;
        let frames = [
            RawFrame::text(message.clone()),
            RawFrame::text(message.clone()).rsv(rsv),
            RawFrame::ping(b"never answered".to_vec()),
        ];
        match chunked {
            None => client.send_all(&frames).await,
            Some(chunk) => {
                let bytes: Vec<u8> = frames.iter().flat_map(RawFrame::encode).collect();
                client.send_chunked(&bytes, chunk, Duration::ZERO).await;
            }
        }
        expect_echo(&mut client, &message).await;
        client.expect_failed(1002).await;
    }
    case("3.5", "binary with RSV = 5");
    expect_protocol_error(&host, &[RawFrame::binary(vec![0xff; 8]).rsv(5)]).await;
    case("3.6", "ping with RSV = 6");
    expect_protocol_error(&host, &[RawFrame::ping(b"ping".to_vec()).rsv(6)]).await;
    case("3.7", "close with RSV = 7");
    expect_protocol_error(&host, &[RawFrame::close(1000, b"").rsv(7)]).await;
}

#[tokio::test]
async fn group_4_opcodes() {
    let host = TestHost::start("").await;
    let message = echo_of_len(64);
    for (group, opcodes) in [("4.1", [3u8, 4, 5, 6, 7]), ("4.2", [11, 12, 13, 14, 15])] {
        for (n, code) in opcodes.into_iter().enumerate() {
            let id = format!("{group}.{}", n + 1);
            let payload = if n % 2 == 1 {
                b"reserved payload".to_vec()
            } else {
                Vec::new()
            };
            if n < 2 {
                case(&id, &format!("reserved opcode {code:#x}"));
                expect_protocol_error(&host, &[RawFrame::new(code, payload)]).await;
            } else {
                case(
                    &id,
                    &format!("echo, reserved opcode {code:#x}, ping: echo, then 1002, no pong"),
                );
                let mut client = open(&host).await;
                client
                    .send_all(&[
                        RawFrame::text(message.clone()),
                        RawFrame::new(code, payload),
                        RawFrame::ping(b"never answered".to_vec()),
                    ])
                    .await;
                expect_echo(&mut client, &message).await;
                client.expect_failed(1002).await;
            }
        }
    }
}

/// Splits `message` into a text frame and continuation frames of `size` bytes.
fn fragments(message: &[u8], size: usize) -> Vec<RawFrame> {
    let pieces: Vec<&[u8]> = message.chunks(size.max(1)).collect();
    let last = pieces.len().saturating_sub(1);
    if pieces.is_empty() {
        return vec![RawFrame::text(Vec::new())];
    }
    pieces
        .into_iter()
        .enumerate()
        .map(|(n, piece)| {
            let frame = match n {
                0 => RawFrame::text(piece.to_vec()),
                _ => RawFrame::continuation(piece.to_vec()),
            };
            frame.fin(n == last)
        })
        .collect()
}

/// The bytes of frames, in one buffer.
fn wire(frames: &[RawFrame]) -> Vec<u8> {
    frames.iter().flat_map(RawFrame::encode).collect()
}

#[tokio::test]
async fn group_5_fragmentation() {
    let host = TestHost::start("").await;
    let message = echo_of_len(80);
    let (first, second) = message.split_at(40);
    case("5.1", "ping in 2 fragments");
    expect_protocol_error(
        &host,
        &[
            RawFrame::ping(b"frag1".to_vec()).fin(false),
            RawFrame::continuation(b"frag2".to_vec()),
        ],
    )
    .await;
    case("5.2", "pong in 2 fragments");
    expect_protocol_error(
        &host,
        &[
            RawFrame::pong(b"frag1".to_vec()).fin(false),
            RawFrame::continuation(b"frag2".to_vec()),
        ],
    )
    .await;
    let two = [
        RawFrame::text(first.to_vec()).fin(false),
        RawFrame::continuation(second.to_vec()),
    ];
    let with_ping = [
        RawFrame::text(first.to_vec()).fin(false),
        RawFrame::ping(b"in between".to_vec()),
        RawFrame::continuation(second.to_vec()),
    ];
    for (id, frames, ping, chunk, pause) in [
        ("5.3", &two[..], false, None, Duration::ZERO),
        ("5.4", &two[..], false, Some(1), Duration::ZERO),
        ("5.5", &two[..], false, Some(1), PAUSE / 10),
        ("5.6", &with_ping[..], true, None, Duration::ZERO),
        ("5.7", &with_ping[..], true, Some(1), Duration::ZERO),
        ("5.8", &with_ping[..], true, Some(1), PAUSE / 10),
    ] {
        case(
            id,
            &format!("text in 2 fragments, ping between: {ping}, chunk {chunk:?}, pause {pause:?}"),
        );
        let mut client = open(&host).await;
        match chunk {
            None => client.send_all(frames).await,
            Some(chunk) => client.send_chunked(&wire(frames), chunk, pause).await,
        }
        if ping {
            client.expect_pong(b"in between").await;
        }
        expect_echo(&mut client, &message).await;
        expect_nothing_before_close(&mut client).await;
    }
    // 5.9–5.14: a continuation with nothing to continue, then a whole message and a ping.
    for (id, fin, chunk, pause) in [
        ("5.9", true, None, Duration::ZERO),
        ("5.10", true, Some(1), Duration::ZERO),
        ("5.11", true, Some(1), PAUSE / 10),
        ("5.12", false, None, Duration::ZERO),
        ("5.13", false, Some(1), Duration::ZERO),
        ("5.14", false, Some(1), PAUSE / 10),
    ] {
        case(
            id,
            &format!("continuation (fin {fin}) with nothing to continue"),
        );
        let mut client = open(&host).await;
        let frames = [
            RawFrame::continuation(b"fragment".to_vec()).fin(fin),
            RawFrame::text(message.clone()),
            RawFrame::ping(b"never answered".to_vec()),
        ];
        match chunk {
            None => client.send_all(&frames).await,
            Some(chunk) => client.send_chunked(&wire(&frames), chunk, pause).await,
        }
        client.expect_failed(1002).await;
    }
    case(
        "5.15",
        "a whole fragmented message, then a continuation that starts nothing",
    );
    let mut client = open(&host).await;
    client
        .send_all(&[
            RawFrame::text(first.to_vec()).fin(false),
            RawFrame::continuation(second.to_vec()),
            RawFrame::continuation(b"frag3".to_vec()).fin(false),
            RawFrame::text(b"frag4".to_vec()),
        ])
        .await;
    expect_echo(&mut client, &message).await;
    client.expect_failed(1002).await;
    for (id, lead_fin) in [("5.16", false), ("5.17", true)] {
        case(
            id,
            "continuation, text, continuation (twice): fails at once",
        );
        let frames = [
            RawFrame::continuation(b"frag1".to_vec()).fin(lead_fin),
            RawFrame::text(b"frag2".to_vec()).fin(false),
            RawFrame::continuation(b"frag3".to_vec()),
        ];
        let twice: Vec<RawFrame> = frames.iter().chain(frames.iter()).cloned().collect();
        expect_protocol_error(&host, &twice).await;
    }
    case("5.18", "a new text frame inside a fragmented text message");
    expect_protocol_error(
        &host,
        &[
            RawFrame::text(first.to_vec()).fin(false),
            RawFrame::text(second.to_vec()),
        ],
    )
    .await;
    for (id, chunk) in [("5.19", None), ("5.20", Some(1))] {
        case(id, "5 fragments with pings and pauses between them");
        let mut client = open(&host).await;
        let pieces: Vec<&[u8]> = message.chunks(16).collect();
        assert_eq!(pieces.len(), 5);
        let frame = |n: usize| match n {
            0 => RawFrame::text(pieces[0].to_vec()).fin(false),
            n => RawFrame::continuation(pieces[n].to_vec()).fin(n == 4),
        };
        let steps = [
            vec![frame(0), frame(1), RawFrame::ping(b"pongme 1!".to_vec())],
            vec![frame(2), frame(3), RawFrame::ping(b"pongme 2!".to_vec())],
            vec![frame(4)],
        ];
        for (n, step) in steps.iter().enumerate() {
            match chunk {
                None => client.send_all(step).await,
                Some(chunk) => {
                    client
                        .send_chunked(&wire(step), chunk, Duration::ZERO)
                        .await
                }
            }
            if n < 2 {
                client
                    .expect_pong(format!("pongme {}!", n + 1).as_bytes())
                    .await;
                tokio::time::sleep(PAUSE).await;
            }
        }
        expect_echo(&mut client, &message).await;
        expect_nothing_before_close(&mut client).await;
    }
}

/// Sends `message` as one frame, or in fragments of `size` bytes.
async fn send_text(client: &mut RawClient, message: &[u8], size: Option<usize>) {
    match size {
        None => client.send(&RawFrame::text(message.to_vec())).await,
        Some(size) => client.send_all(&fragments(message, size)).await,
    }
}

#[tokio::test]
async fn group_6_utf8_in_frames_and_fragments() {
    let host = TestHost::start("").await;
    case("6.1.1", "empty text message (adapted: not JSON)");
    let mut client = open(&host).await;
    client.send(&RawFrame::text(Vec::new())).await;
    expect_bad_request(&mut client, 1007).await;
    case("6.1.2", "three empty fragments (adapted: not JSON)");
    let mut client = open(&host).await;
    client
        .send_all(&[
            RawFrame::text(Vec::new()).fin(false),
            RawFrame::continuation(Vec::new()).fin(false),
            RawFrame::continuation(Vec::new()),
        ])
        .await;
    expect_bad_request(&mut client, 1007).await;
    case("6.1.3", "empty fragments, then the message in the last one");
    let mut client = open(&host).await;
    let message = echo_of(b"middle");
    client
        .send_all(&[
            RawFrame::text(Vec::new()).fin(false),
            RawFrame::continuation(message.clone()).fin(false),
            RawFrame::continuation(Vec::new()),
        ])
        .await;
    expect_echo(&mut client, &message).await;
    let hello = echo_of("Hello-µ@ßöäüàá-UTF-8!!".as_bytes());
    let kosme = echo_of("κόσμε".as_bytes());
    for (id, message, size) in [
        ("6.2.1", &hello, None),
        ("6.2.2", &hello, Some(PREFIX.len() + 8)),
        ("6.2.3", &hello, Some(1)),
        ("6.2.4", &kosme, Some(1)),
    ] {
        case(id, &format!("valid UTF-8 in fragments of {size:?} bytes"));
        let mut client = open(&host).await;
        send_text(&mut client, message, size).await;
        expect_echo(&mut client, message).await;
    }
    let invalid = echo_of(b"\xce\xba\xe1\xbd\xb9\xcf\x83\xce\xbc\xce\xb5\xed\xa0\x80edited");
    for (id, size) in [("6.3.1", None), ("6.3.2", Some(1))] {
        case(id, &format!("invalid UTF-8 in fragments of {size:?} bytes"));
        let mut client = open(&host).await;
        send_text(&mut client, &invalid, size).await;
        client.expect_failed(1007).await;
    }
    // 6.4.1/6.4.2: fail fast: the invalid fragment is answered before the message ends.
    let start = [PREFIX.as_bytes(), "κόσμε".as_bytes()].concat();
    for (id, one, two) in [
        ("6.4.1", start.clone(), b"\xf4\x90\x80\x80".to_vec()),
        (
            "6.4.2",
            [start.as_slice(), b"\xf4"].concat(),
            b"\x90\x80\x80".to_vec(),
        ),
    ] {
        case(
            id,
            "invalid UTF-8 in the 2nd of 3 fragments: 1007 before the 3rd",
        );
        let mut client = open(&host).await;
        client
            .send_all(&[
                RawFrame::text(one).fin(false),
                RawFrame::continuation(two).fin(false),
            ])
            .await;
        client.expect_close(1007).await;
        client
            .try_send_raw(&RawFrame::continuation(b"edited\"}".to_vec()).encode())
            .await;
        client.expect_end().await;
    }
    // 6.4.3/6.4.4: one frame written in 3 pieces. tungstenite checks a frame when it is
    // complete, so the failure comes after the last piece (Autobahn: non-strict).
    for (id, cut) in [("6.4.3", 4), ("6.4.4", 1)] {
        case(id, "invalid UTF-8 inside one frame written in pieces: 1007");
        let mut client = open(&host).await;
        let message = [
            start.as_slice(),
            b"\xf4\x90\x80\x80",
            b"edited",
            SUFFIX.as_bytes(),
        ]
        .concat();
        let bytes = RawFrame::text(message).encode();
        let at = bytes.len() - SUFFIX.len() - 6 - 4;
        client.send_raw(&bytes[..at]).await;
        tokio::time::sleep(PAUSE).await;
        client.send_raw(&bytes[at..at + cut]).await;
        tokio::time::sleep(PAUSE).await;
        client.send_raw(&bytes[at + cut..]).await;
        client.expect_failed(1007).await;
    }
    case("6.x", "a message that ends inside a UTF-8 sequence");
    let mut client = open(&host).await;
    client
        .send_all(&[
            RawFrame::text(start.clone()).fin(false),
            RawFrame::continuation(b"\xce".to_vec()),
        ])
        .await;
    client.expect_failed(1007).await;
    case("6.x", "a sequence split across fragments completes");
    let mut client = open(&host).await;
    let message = echo_of("κόσμε".as_bytes());
    let at = PREFIX.len() + 1;
    client
        .send_all(&[
            RawFrame::text(message[..at].to_vec()).fin(false),
            RawFrame::continuation(message[at..].to_vec()),
        ])
        .await;
    expect_echo(&mut client, &message).await;
}

/// What a sequence is: valid UTF-8 (echoed), valid UTF-8 that JSON forbids raw in a
/// string (a C0 control character: 400 then 1007, the UTF-8 check passed), or invalid
/// UTF-8 (1007 at once, no envelope).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Valid,
    ValidNotJson,
    Invalid,
}

/// The UTF-8 sequences of Autobahn's cases 6.5–6.23 (Markus Kuhn's stress test).
fn sequences() -> Vec<(&'static str, &'static [u8], Kind)> {
    use Kind::*;
    vec![
        ("6.5.1", b"\xce\xba\xe1\xbd\xb9\xcf\x83\xce\xbc\xce\xb5", Valid),
        ("6.5.2", b"\xce\xba\xe1\xbd\xb9\xcf\x83\xce\xbc\xce\xb5\xed\xa0\x80", Invalid),
        ("6.6.1", b"\xce", Invalid),
        ("6.6.2", b"\xce\xba", Valid),
        ("6.6.3", b"\xce\xba\xe1", Invalid),
        ("6.6.4", b"\xce\xba\xe1\xbd", Invalid),
        ("6.6.5", b"\xce\xba\xe1\xbd\xb9", Valid),
        ("6.7.1", b"\x00", ValidNotJson),
        ("6.7.2", b"\xc2\x80", Valid),
        ("6.7.3", b"\xe0\xa0\x80", Valid),
        ("6.7.4", b"\xf0\x90\x80\x80", Valid),
        ("6.8.1", b"\xf8\x88\x80\x80\x80", Invalid),
        ("6.8.2", b"\xfc\x84\x80\x80\x80\x80", Invalid),
        ("6.9.1", b"\x7f", Valid),
        ("6.9.2", b"\xdf\xbf", Valid),
        ("6.9.3", b"\xef\xbf\xbf", Valid),
        ("6.9.4", b"\xf4\x8f\xbf\xbf", Valid),
        ("6.10.1", b"\xf7\xbf\xbf\xbf", Invalid),
        ("6.10.2", b"\xfb\xbf\xbf\xbf\xbf", Invalid),
        ("6.10.3", b"\xfd\xbf\xbf\xbf\xbf\xbf", Invalid),
        ("6.11.1", b"\xed\x9f\xbf", Valid),
        ("6.11.2", b"\xee\x80\x80", Valid),
        ("6.11.3", b"\xef\xbf\xbd", Valid),
        ("6.11.4", b"\xf4\x8f\xbf\xbf", Valid),
        ("6.11.5", b"\xf4\x90\x80\x80", Invalid),
        ("6.12.1", b"\x80", Invalid),
        ("6.12.2", b"\xbf", Invalid),
        ("6.12.3", b"\x80\xbf", Invalid),
        ("6.12.4", b"\x80\xbf\x80", Invalid),
        ("6.12.5", b"\x80\xbf\x80\xbf", Invalid),
        ("6.12.8", b"\x80\x81\x82\x83\x84\x85\x86\x87\x88\x89\x8a\x8b\x8c\x8d\x8e\x8f", Invalid),
        ("6.13.1", b"\xc0 \xc1 \xc2 \xc3 \xdf ", Invalid),
        ("6.13.2", b"\xe0 \xe1 \xef ", Invalid),
        ("6.13.3", b"\xf0 \xf7 ", Invalid),
        ("6.13.4", b"\xf8 \xfb ", Invalid),
        ("6.13.5", b"\xfc \xfd ", Invalid),
        ("6.14.1", b"\xc0", Invalid),
        ("6.14.2", b"\xe0\x80", Invalid),
        ("6.14.3", b"\xf0\x80\x80", Invalid),
        ("6.14.4", b"\xf8\x80\x80\x80", Invalid),
        ("6.14.5", b"\xfc\x80\x80\x80\x80", Invalid),
        ("6.14.6", b"\xdf", Invalid),
        ("6.14.7", b"\xef\xbf", Invalid),
        ("6.14.8", b"\xf7\xbf\xbf", Invalid),
        ("6.15.1", b"\xc0\xe0\x80\xf0\x80\x80\xf8\x80\x80\x80\xfc\x80\x80\x80\x80\xdf\xef\xbf\xf7\xbf\xbf\xfb\xbf\xbf\xbf\xfd\xbf\xbf\xbf\xbf", Invalid),
        ("6.16.1", b"\xfe", Invalid),
        ("6.16.2", b"\xff", Invalid),
        ("6.16.3", b"\xfe\xfe\xff\xff", Invalid),
        ("6.17.1", b"\xc0\xaf", Invalid),
        ("6.17.2", b"\xe0\x80\xaf", Invalid),
        ("6.17.3", b"\xf0\x80\x80\xaf", Invalid),
        ("6.17.4", b"\xf8\x80\x80\x80\xaf", Invalid),
        ("6.17.5", b"\xfc\x80\x80\x80\x80\xaf", Invalid),
        ("6.18.1", b"\xc1\xbf", Invalid),
        ("6.18.2", b"\xe0\x9f\xbf", Invalid),
        ("6.18.3", b"\xf0\x8f\xbf\xbf", Invalid),
        ("6.18.4", b"\xf8\x87\xbf\xbf\xbf", Invalid),
        ("6.18.5", b"\xfc\x83\xbf\xbf\xbf\xbf", Invalid),
        ("6.19.1", b"\xc0\x80", Invalid),
        ("6.19.2", b"\xe0\x80\x80", Invalid),
        ("6.19.3", b"\xf0\x80\x80\x80", Invalid),
        ("6.19.4", b"\xf8\x80\x80\x80\x80", Invalid),
        ("6.19.5", b"\xfc\x80\x80\x80\x80\x80", Invalid),
        ("6.20.1", b"\xed\xa0\x80", Invalid),
        ("6.20.2", b"\xed\xad\xbf", Invalid),
        ("6.20.3", b"\xed\xae\x80", Invalid),
        ("6.20.4", b"\xed\xaf\xbf", Invalid),
        ("6.20.5", b"\xed\xb0\x80", Invalid),
        ("6.20.6", b"\xed\xbe\x80", Invalid),
        ("6.20.7", b"\xed\xbf\xbf", Invalid),
        ("6.21.1", b"\xed\xa0\x80\xed\xb0\x80", Invalid),
        ("6.21.2", b"\xed\xa0\x80\xed\xbf\xbf", Invalid),
        ("6.21.3", b"\xed\xad\xbf\xed\xb0\x80", Invalid),
        ("6.21.4", b"\xed\xad\xbf\xed\xbf\xbf", Invalid),
        ("6.21.5", b"\xed\xae\x80\xed\xb0\x80", Invalid),
        ("6.21.6", b"\xed\xae\x80\xed\xbf\xbf", Invalid),
        ("6.21.7", b"\xed\xaf\xbf\xed\xb0\x80", Invalid),
        ("6.21.8", b"\xed\xaf\xbf\xed\xbf\xbf", Invalid),
        ("6.22.1", b"\xef\xbf\xbe", Valid),
        ("6.22.2", b"\xef\xbf\xbf", Valid),
        ("6.22.3", b"\xf0\x9f\xbf\xbe", Valid),
        ("6.22.4", b"\xf0\x9f\xbf\xbf", Valid),
        ("6.22.5", b"\xf4\x8f\xbf\xbe", Valid),
        ("6.22.6", b"\xef\xb7\x90\xef\xb7\xaf", Valid),
        ("6.23.1", b"\xef\xbf\xb9", Valid),
        ("6.23.2", b"\xef\xbf\xbc", Valid),
        ("6.23.3", b"\xef\xbf\xbd", Valid),
        ("6.23.4", b"\xef\xbb\xbf", Valid),
        ("6.23.5", b"\xe2\x80\xa8\xe2\x80\xa9", Valid),
    ]
}

#[tokio::test]
async fn group_6_utf8_sequences_whole_and_byte_by_byte() {
    let host = TestHost::start("").await;
    for (id, sequence, kind) in sequences() {
        // Each sequence as one frame, then as one fragment per byte (Autobahn sends both).
        for size in [None, Some(1)] {
            case(
                id,
                &format!("{sequence:02x?} ({kind:?}) in fragments of {size:?}"),
            );
            assert_eq!(
                std::str::from_utf8(sequence).is_ok(),
                kind != Kind::Invalid,
                "the table is wrong about {id}"
            );
            let mut client = open(&host).await;
            let message = echo_of(sequence);
            send_text(&mut client, &message, size).await;
            match kind {
                Kind::Valid => {
                    expect_echo(&mut client, &message).await;
                    expect_nothing_before_close(&mut client).await;
                }
                Kind::ValidNotJson => expect_bad_request(&mut client, 1007).await,
                Kind::Invalid => client.expect_failed(1007).await,
            }
        }
    }
}

#[tokio::test]
async fn group_7_close_handling() {
    let host = TestHost::start("").await;
    let message = echo_of_len(64);
    case(
        "7.1.1",
        "echo, then close: the close is echoed and the server closes TCP",
    );
    let mut client = open(&host).await;
    client
        .send_all(&[RawFrame::text(message.clone()), RawFrame::close(1000, b"")])
        .await;
    expect_echo(&mut client, &message).await;
    client.expect_failed(1000).await;
    for (id, after) in [
        ("7.1.2", RawFrame::close(1000, b"")),
        ("7.1.3", RawFrame::ping(b"after close".to_vec())),
        ("7.1.4", RawFrame::text(message.clone())),
    ] {
        case(id, "a frame after the close is ignored");
        let mut client = open(&host).await;
        client.send_all(&[RawFrame::close(1000, b""), after]).await;
        client.expect_failed(1000).await;
    }
    case("7.1.5", "a fragment, close, the last fragment: no message");
    let mut client = open(&host).await;
    let (first, second) = message.split_at(30);
    client
        .send_all(&[
            RawFrame::text(first.to_vec()).fin(false),
            RawFrame::close(1000, b""),
            RawFrame::continuation(second.to_vec()),
        ])
        .await;
    client.expect_failed(1000).await;
    case(
        "7.1.6",
        "a 60 KB message, close, ping: echo, close, no pong",
    );
    let mut client = open(&host).await;
    let large = echo_of_len(60_000);
    client
        .send_all(&[
            RawFrame::text(large.clone()),
            RawFrame::close(1000, b""),
            RawFrame::ping(b"after close".to_vec()),
        ])
        .await;
    expect_echo(&mut client, &large).await;
    client.expect_failed(1000).await;
    case("7.3.1", "close without payload: close without payload");
    let mut client = open(&host).await;
    client.send(&RawFrame::new(opcode::CLOSE, Vec::new())).await;
    assert_eq!(client.expect_close_frame().await, Vec::<u8>::new());
    client.expect_end().await;
    case("7.3.2", "close with a 1-byte payload");
    expect_protocol_error(&host, &[RawFrame::new(opcode::CLOSE, vec![0x03])]).await;
    let reason_123 = [b'*'; 123];
    for (id, reason) in [
        ("7.3.3", &b""[..]),
        ("7.3.4", &b"Hello World!"[..]),
        ("7.3.5", &reason_123[..]),
    ] {
        case(
            id,
            &format!("close 1000 with a {}-byte reason", reason.len()),
        );
        let mut client = open(&host).await;
        client.send(&RawFrame::close(1000, reason)).await;
        client.expect_failed(1000).await;
    }
    case(
        "7.3.6",
        "close with a 124-byte reason (a 126-byte control frame)",
    );
    expect_protocol_error(&host, &[RawFrame::close(1000, &[b'*'; 124])]).await;
    case("7.5.1", "close with a reason that is not UTF-8");
    let mut client = open(&host).await;
    client
        .send(&RawFrame::close(
            1000,
            b"\xce\xba\xe1\xbd\xb9\xcf\x83\xce\xbc\xce\xb5\xed\xa0\x80edited",
        ))
        .await;
    client.expect_failed(1007).await;
    for (n, code) in [
        1000, 1001, 1002, 1003, 1007, 1008, 1009, 1010, 1011, 3000, 3999, 4000, 4999,
    ]
    .into_iter()
    .enumerate()
    {
        case(
            &format!("7.7.{}", n + 1),
            &format!("valid close code {code} is echoed"),
        );
        let mut client = open(&host).await;
        client.send(&RawFrame::close(code, b"")).await;
        client.expect_failed(code).await;
    }
    for (id, code) in [
        ("7.9.1", 0),
        ("7.9.2", 999),
        ("7.9.3", 1004),
        ("7.9.4", 1005),
        ("7.9.5", 1006),
        ("7.9.6", 1014),
        ("7.9.7", 1015),
        ("7.9.8", 1016),
        ("7.9.9", 1100),
        ("7.9.10", 2000),
        ("7.9.11", 2999),
        ("7.13.1", 5000),
        ("7.13.2", 65535),
    ] {
        case(id, &format!("invalid close code {code}: 1002"));
        expect_protocol_error(&host, &[RawFrame::close(code, b"")]).await;
    }
}

/// The largest message of group 9, and the host's limit for that run.
const MAX: usize = 16 * 1024 * 1024;

/// Group 9's message sizes.
const SIZES: [(&str, usize); 6] = [
    ("1", 64 * 1024),
    ("2", 256 * 1024),
    ("3", 1024 * 1024),
    ("4", 4 * 1024 * 1024),
    ("5", 8 * 1024 * 1024),
    ("6", MAX),
];

/// A host whose limit lets group 9's largest message in.
async fn group_9_host() -> TestHost {
    // Autobahn's 9.7/9.8 send 1000 messages back to back: a load test, not a phone, so
    // the message rate limit is off for this run (README.md, "The protocol in brief").
    TestHost::start(&format!(
        "[limits]\nmax_message_bytes = {MAX}\nmessages_per_s = 0"
    ))
    .await
}

// Group 9 is two tests so that its large echoes (most of this file's time in a debug
// build) run beside the rest.
#[tokio::test]
async fn group_9_1_text_messages_up_to_16_mib() {
    let host = group_9_host().await;
    let started = Instant::now();
    for (n, len) in SIZES {
        case(&format!("9.1.{n}"), &format!("text message of {len} bytes"));
        let mut client = open(&host).await;
        client.set_timeout(Duration::from_secs(30));
        let message = echo_of_len(len);
        client.send(&RawFrame::text(message.clone())).await;
        expect_echo(&mut client, &message).await;
    }
    eprintln!("9.1 took {:?}", started.elapsed());
}

#[tokio::test]
async fn group_9_2_to_9_7_and_the_limit() {
    let host = group_9_host().await;
    let started = Instant::now();
    for (n, len) in SIZES {
        case(
            &format!("9.2.{n}"),
            &format!("binary message of {len} bytes (adapted)"),
        );
        let mut client = open(&host).await;
        client.set_timeout(Duration::from_secs(30));
        client.send(&RawFrame::binary(vec![0xfe; len])).await;
        expect_bad_request(&mut client, 1003).await;
    }
    // Autobahn fragments a 4 MiB message; 1 MiB keeps the debug build's run short, and a
    // 4 MiB fragment is 9.1.4's single frame.
    let one = echo_of_len(1024 * 1024);
    for (n, size) in [64, 256, 1024, 4096, 16384, 65536, 262144, 1048576]
        .into_iter()
        .enumerate()
    {
        case(
            &format!("9.3.{}", n + 1),
            &format!("1 MiB text message in fragments of {size} bytes"),
        );
        let mut client = open(&host).await;
        client.set_timeout(Duration::from_secs(30));
        client.send_all(&fragments(&one, size)).await;
        expect_echo(&mut client, &one).await;
    }
    for (n, size) in [64, 65536, 4194304].into_iter().enumerate() {
        case(
            &format!("9.4.{}", [1, 6, 9][n]),
            &format!("4 MiB binary message in fragments of {size} bytes (adapted)"),
        );
        let mut client = open(&host).await;
        client.set_timeout(Duration::from_secs(30));
        let frames: Vec<RawFrame> = fragments(&vec![0xfe; 4 * 1024 * 1024], size)
            .into_iter()
            .map(|frame| match frame.opcode {
                opcode::TEXT => RawFrame {
                    opcode: opcode::BINARY,
                    ..frame
                },
                _ => frame,
            })
            .collect();
        client.send_all(&frames).await;
        expect_bad_request(&mut client, 1003).await;
    }
    for (n, chunk) in [64, 128, 256, 512, 1024, 2048].into_iter().enumerate() {
        case(
            &format!("9.5.{}", n + 1),
            &format!("1 MiB text message written in chunks of {chunk} bytes"),
        );
        let mut client = open(&host).await;
        client.set_timeout(Duration::from_secs(30));
        let bytes = RawFrame::text(one.clone()).encode();
        client.send_chunked(&bytes, chunk, Duration::ZERO).await;
        expect_echo(&mut client, &one).await;
    }
    case(
        "9.6.1",
        "1 MiB binary message written in chunks of 64 bytes (adapted)",
    );
    let mut client = open(&host).await;
    let bytes = RawFrame::binary(vec![0xfe; 1024 * 1024]).encode();
    client.send_chunked(&bytes, 64, Duration::ZERO).await;
    expect_bad_request(&mut client, 1003).await;
    for (n, len) in [39, 64, 256, 1024, 4096].into_iter().enumerate() {
        case(
            &format!("9.7.{}", n + 1),
            &format!("1000 text messages of {len} bytes, one round trip each"),
        );
        let mut client = open(&host).await;
        let message = echo_of_len(len);
        for _ in 0..1000 {
            client.send(&RawFrame::text(message.clone())).await;
            expect_echo(&mut client, &message).await;
        }
    }
    case("9.x", "one byte over the limit in one frame: 1009");
    let mut client = open(&host).await;
    client.set_timeout(Duration::from_secs(30));
    // The host refuses it from the header: the rest of the write may fail.
    client
        .try_send_raw(&RawFrame::text(echo_of_len(MAX + 1)).encode())
        .await;
    client.expect_failed(1009).await;
    case("9.x", "one byte over the limit in fragments: 1009");
    let mut client = open(&host).await;
    client.set_timeout(Duration::from_secs(30));
    let over = echo_of_len(MAX + 1);
    let (head, tail) = over.split_at(MAX / 2);
    client.send(&RawFrame::text(head.to_vec()).fin(false)).await;
    client
        .try_send_raw(&RawFrame::continuation(tail.to_vec()).encode())
        .await;
    client.expect_failed(1009).await;
    eprintln!("9.2–9.7 took {:?}", started.elapsed());
}

#[tokio::test]
async fn group_10_misc() {
    let host = TestHost::start("").await;
    case(
        "10.1.1",
        "65536-byte text message in fragments of 1300 bytes",
    );
    let mut client = open(&host).await;
    let message = echo_of_len(65536);
    client.send_all(&fragments(&message, 1300)).await;
    expect_echo(&mut client, &message).await;
    expect_nothing_before_close(&mut client).await;
}

#[tokio::test]
async fn every_protocol_error_the_probe_found_closes_1002() {
    let host = TestHost::start("").await;
    let text = || RawFrame::text(echo_of_len(64));
    let mut top_bit = RawFrame::text(b"{}".to_vec()).length(1 << 63);
    top_bit.payload.clear();
    let cases: Vec<(&str, Vec<RawFrame>)> = vec![
        ("an unmasked client frame", vec![text().unmasked()]),
        ("RSV1 set", vec![text().rsv(4)]),
        ("RSV2 and RSV3 set", vec![text().rsv(3)]),
        (
            "reserved opcode 0x3",
            vec![RawFrame::new(0x3, b"x".to_vec())],
        ),
        (
            "reserved opcode 0xB",
            vec![RawFrame::new(0xB, b"x".to_vec())],
        ),
        (
            "a fragmented ping",
            vec![RawFrame::ping(b"x".to_vec()).fin(false)],
        ),
        (
            "a continuation without a start",
            vec![RawFrame::continuation(b"x".to_vec())],
        ),
        (
            "a text frame inside a fragmented message",
            vec![RawFrame::text(b"{".to_vec()).fin(false), text()],
        ),
        (
            "a binary frame inside a fragmented message",
            vec![
                RawFrame::text(b"{".to_vec()).fin(false),
                RawFrame::binary(b"x".to_vec()),
            ],
        ),
        ("a 126-byte ping", vec![RawFrame::ping(vec![b'p'; 126])]),
        (
            "a 1-byte close payload",
            vec![RawFrame::new(opcode::CLOSE, vec![3])],
        ),
        (
            "an unmasked close",
            vec![RawFrame::close(1000, b"").unmasked()],
        ),
        ("a 64-bit length with the top bit set", vec![top_bit]),
    ];
    for (what, frames) in cases {
        case("probe", what);
        expect_protocol_error(&host, &frames).await;
    }
    case("probe", "bytes after the upgrade that are not a frame");
    let mut client =
        RawClient::connect_then(host.outside, &user_path(), b"GET / HTTP/1.1\r\n\r\n").await;
    client.expect_failed(1002).await;
    // The host keeps serving.
    let mut client = open(&host).await;
    let message = echo_of_len(64);
    client.send(&RawFrame::text(message.clone())).await;
    expect_echo(&mut client, &message).await;
}

#[tokio::test]
async fn an_invalid_opening_handshake_is_400_and_never_upgraded() {
    let host = TestHost::start("").await;
    let addr = host.outside;
    let path = user_path();
    let valid = upgrade_request(addr, &path, "");
    let without = |header: &str| {
        valid
            .lines()
            .filter(|line| !line.starts_with(header))
            .map(|line| format!("{line}\r\n"))
            .collect::<String>()
    };
    let with_key = |key: &str| valid.replace(mswoole_tests::raw::SAMPLE_KEY, key);
    let cases = [
        ("POST", valid.replacen("GET ", "POST ", 1)),
        ("HTTP/1.0", valid.replacen("HTTP/1.1", "HTTP/1.0", 1)),
        ("no Sec-WebSocket-Key", without("Sec-WebSocket-Key")),
        ("a key that is not base64", with_key("not base64 at all!")),
        // base64 of 15 and of 17 bytes.
        ("a key of 15 bytes", with_key("dGhlIHNhbXBsZSBub25j")),
        ("a key of 17 bytes", with_key("dGhlIHNhbXBsZSBub25jZTE=")),
        ("no Sec-WebSocket-Version", without("Sec-WebSocket-Version")),
        (
            "Sec-WebSocket-Version 8",
            valid.replace("Sec-WebSocket-Version: 13", "Sec-WebSocket-Version: 8"),
        ),
        (
            "a bad key and a bad token: the handshake is checked first",
            with_key("x").replace(VECTOR_WECHAT_USER, "not-a-token"),
        ),
    ];
    for (what, request) in cases {
        case("handshake", what);
        let response = http_raw(addr, &request).await;
        assert_eq!(response.status, 400, "{what}: {response:?}");
        assert_eq!(
            response.header("sec-websocket-version"),
            Some("13"),
            "{what}: a 400 says which version is spoken"
        );
        assert_eq!(response.header("upgrade"), None, "{what}");
        assert_eq!(response.header("sec-websocket-accept"), None, "{what}");
    }
    case("handshake", "the valid request is upgraded");
    let mut client = RawClient::connect(addr, &path).await;
    client.send(&RawFrame::ping(b"up".to_vec())).await;
    client.expect_pong(b"up").await;
    // And a valid handshake with a bad token is still a 403.
    let response = http_raw(addr, &valid.replace(VECTOR_WECHAT_USER, "not-a-token")).await;
    assert_eq!(response.status, 403);
}

#[tokio::test]
async fn a_dropped_connection_is_not_a_failure_and_disturbs_nobody() {
    let host = TestHost::start("").await;
    let mut watcher = open(&host).await;
    // Half a frame, then the socket is closed: nothing to answer, nothing breaks.
    let mut client = open(&host).await;
    let bytes = RawFrame::text(echo_of_len(64)).encode();
    client.send_raw(&bytes[..10]).await;
    drop(client);
    let message = echo_of_len(64);
    watcher.send(&RawFrame::text(message.clone())).await;
    expect_echo(&mut watcher, &message).await;
    match watcher.recv_within(Duration::from_millis(100)).await {
        None => {}
        Some(Incoming::Frame(frame)) => panic!("unexpected {frame:?}"),
        Some(end) => panic!("the watcher's connection ended: {end:?}"),
    }
}
