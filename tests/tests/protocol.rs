//! docs/PROTOCOL.md "Frames", "Envelopes", "Close codes" and "Heartbeat": ping, idle, bad input, ack.

use std::{
    sync::{
        atomic::{AtomicU64, Ordering},
        Arc,
    },
    time::{Duration, Instant},
};

use mswoole_tests::{eventually, json, ClientRx, Frame, TestHost, ACK, SUCCESS};

const QUIET: Duration = Duration::from_millis(300);

#[tokio::test]
async fn text_2_is_answered_with_text_3_and_nothing_else() {
    let host = TestHost::start("").await;
    let mut client = host.connect_user().await;
    client.send_text("2").await;
    assert_eq!(client.recv_text().await, "3");
    client.expect_silence(QUIET).await;
}

#[tokio::test]
async fn text_2_is_not_queued_behind_a_call_in_progress() {
    let host = TestHost::start("").await;
    let mut client = host.connect_user().await;
    client
        .send_json(&json!({"method": "index.debug.sleep", "ms": 1000}))
        .await;
    client.send_text("2").await;
    let mut frames = Vec::new();
    while frames.len() < 3 {
        frames.push(client.recv_text().await);
    }
    let pong = frames
        .iter()
        .position(|text| text == "3")
        .expect("a `3` arrived");
    let slept = frames
        .iter()
        .position(|text| text.contains("\"slept\""))
        .expect("the sleep answered");
    assert!(
        pong < slept,
        "`3` waited for the call in progress: {frames:?}"
    );
    assert!(frames.iter().any(|text| text == ACK), "{frames:?}");
    client.expect_silence(QUIET).await;
}

#[tokio::test]
async fn an_idle_client_is_closed_with_1000_idle_timeout() {
    let host = TestHost::start("[heartbeat]\nidle_s = 1").await;
    let mut client = host.connect_user().await;
    let started = Instant::now();
    let reason = client.expect_close(1000).await;
    assert_eq!(reason, "idle timeout");
    let waited = started.elapsed();
    assert!(
        waited >= Duration::from_millis(800) && waited < Duration::from_secs(3),
        "closed after {waited:?}"
    );
}

#[tokio::test]
async fn pinging_every_500_ms_keeps_a_client_alive() {
    let host = TestHost::start("[heartbeat]\nidle_s = 1").await;
    let mut client = host.connect_user().await;
    let started = Instant::now();
    while started.elapsed() < Duration::from_millis(2500) {
        tokio::time::sleep(Duration::from_millis(500)).await;
        client.send_text("2").await;
        assert_eq!(client.recv_text().await, "3");
    }
    client
        .send_json(&json!({"method": "index.index.index"}))
        .await;
    assert_eq!(client.recv_text().await, ACK);
    assert_eq!(client.recv_text().await, SUCCESS);
}

#[tokio::test]
async fn invalid_json_is_400_bad_request_then_close_1007() {
    let host = TestHost::start("").await;
    let mut client = host.connect_user().await;
    client.send_text("{not json").await;
    client
        .expect_envelope(400, "badRequest")
        .await
        .assert_key_order();
    client.expect_close(1007).await;
}

#[tokio::test]
async fn json_that_is_not_an_object_is_400_bad_request_then_close_1007() {
    let host = TestHost::start("").await;
    for text in ["[1]", "\"x\"", "42", "null", "true"] {
        let mut client = host.connect_user().await;
        client.send_text(text).await;
        let envelope = client.recv_envelope().await;
        assert_eq!(
            (envelope.status(), envelope.event()),
            (400, "badRequest"),
            "reply to {text}: {envelope:?}"
        );
        client.expect_close(1007).await;
    }
}

#[tokio::test]
async fn a_method_that_is_not_a_string_is_400_bad_request_then_close_1007() {
    let host = TestHost::start("").await;
    for text in [r#"{"method":5}"#, r#"{"method":["index"]}"#] {
        let mut client = host.connect_user().await;
        client.send_text(text).await;
        let envelope = client.recv_envelope().await;
        assert_eq!(
            (envelope.status(), envelope.event()),
            (400, "badRequest"),
            "reply to {text}: {envelope:?}"
        );
        client.expect_close(1007).await;
    }
}

#[tokio::test]
async fn a_binary_frame_is_400_bad_request_then_close_1003() {
    let host = TestHost::start("").await;
    let mut client = host.connect_user().await;
    client
        .send_binary(br#"{"method":"index.index.index"}"#)
        .await;
    client.expect_envelope(400, "badRequest").await;
    client.expect_close(1003).await;
}

#[tokio::test]
async fn messages_before_a_bad_one_are_answered_first() {
    let host = TestHost::start("").await;
    let (mut tx, mut rx) = host.connect_user().await.split();
    tx.feed_text(r#"{"method":"index.index.index"}"#).await;
    tx.feed_text(r#"{"method":"index.index.echo","n":1}"#).await;
    tx.feed_text("oops").await;
    tx.flush().await;
    rx.expect_ack().await;
    assert_eq!(rx.recv_text().await, SUCCESS);
    rx.expect_ack().await;
    rx.expect_envelope(200, "echo").await;
    rx.expect_envelope(400, "badRequest").await;
    rx.expect_close(1007).await;
}

#[tokio::test]
async fn messages_before_a_binary_frame_are_answered_first() {
    let host = TestHost::start("").await;
    let mut client = host.connect_user().await;
    client.send_text(r#"{"method":"index.index.index"}"#).await;
    client.send_binary(b"\x00\x01").await;
    client.expect_ack().await;
    assert_eq!(client.recv_text().await, SUCCESS);
    client.expect_envelope(400, "badRequest").await;
    client.expect_close(1003).await;
}

#[tokio::test]
async fn a_frame_over_max_message_bytes_is_closed_1009_without_an_envelope() {
    let host = TestHost::start("[limits]\nmax_message_bytes = 1024").await;
    let mut client = host.connect_user().await;
    // Just under the limit: served.
    let fits = json!({"method": "index.index.echo", "pad": "x".repeat(950)}).to_string();
    assert!(fits.len() <= 1024);
    client.send_text(&fits).await;
    client.expect_ack().await;
    client.expect_envelope(200, "echo").await;
    // Over it: closed, nothing else.
    let over = json!({"method": "index.index.echo", "pad": "x".repeat(2000)}).to_string();
    client.send_text(&over).await;
    client.expect_close(1009).await;
}

#[tokio::test]
async fn a_misbehaving_client_does_not_disturb_another() {
    let host = TestHost::start("[limits]\nmax_message_bytes = 1024").await;
    let mut good = host.connect_user().await;
    let mut binary = host.connect_user().await;
    let mut garbage = host.connect_user().await;
    let mut oversized = host.connect_user().await;
    binary.send_binary(b"\xff").await;
    garbage.send_text("{{{").await;
    oversized.send_text(&"y".repeat(4096)).await;
    binary.expect_envelope(400, "badRequest").await;
    binary.expect_close(1003).await;
    garbage.expect_envelope(400, "badRequest").await;
    garbage.expect_close(1007).await;
    oversized.expect_close(1009).await;
    good.send_json(&json!({"method": "index.index.index"}))
        .await;
    good.expect_ack().await;
    assert_eq!(good.recv_text().await, SUCCESS);
    good.send_text("2").await;
    assert_eq!(good.recv_text().await, "3");
}

#[tokio::test]
async fn a_valid_object_is_acked_then_answered_byte_for_byte() {
    let host = TestHost::start("").await;
    let mut client = host.connect_user().await;
    client
        .send_json(&json!({"method": "index.index.index"}))
        .await;
    assert_eq!(client.recv_text().await, ACK);
    assert_eq!(client.recv_text().await, SUCCESS);
    client.expect_silence(QUIET).await;
}

#[tokio::test]
async fn with_ack_off_only_the_reply_is_sent() {
    let host = TestHost::start("[protocol]\nack = false").await;
    let mut client = host.connect_user().await;
    client
        .send_json(&json!({"method": "index.index.index"}))
        .await;
    assert_eq!(client.recv_text().await, SUCCESS);
    client.expect_silence(QUIET).await;
}

#[tokio::test]
async fn envelopes_keep_status_event_info_param_order() {
    let host = TestHost::start("").await;
    let mut client = host.connect_user().await;
    let reply = client
        .call(&json!({"method": "index.index.echo", "zz": 0, "aa": ""}))
        .await;
    reply.assert_is(200, "echo").assert_key_order();
    assert!(
        reply
            .text
            .starts_with(r#"{"status":200,"event":"echo","info":"收到","param":{"#),
        "{reply:?}"
    );
    // `0` and `""` are data and are sent.
    assert_eq!(reply.expect_param()["zz"], json!(0));
    assert_eq!(reply.expect_param()["aa"], json!(""));
}

#[tokio::test]
async fn a_client_close_is_answered_with_a_close() {
    let host = TestHost::start("").await;
    let mut client = host.connect_user().await;
    client.close(1000).await;
    match client.recv().await {
        Frame::Close(Some((code, _))) => assert_eq!(code, 1000),
        other => panic!("expected the close echoed, got {other:?}"),
    }
}

/// `connections` from the manager's `status`.
async fn connections(host: &TestHost) -> serde_json::Value {
    let status = host.manager(&json!({"method": "status"})).await;
    status.assert_is(200, "statusSuccess");
    status.expect_param()["connections"].clone()
}

#[tokio::test]
async fn a_client_that_stops_reading_is_dropped_after_slow_consumer_s_and_holds_back_nobody() {
    let host = TestHost::start("[limits]\noutbound_queue = 4\nslow_consumer_s = 3").await;
    let (mut tx, mut rx) = host.connect_user().await.split();
    let mut other = host.connect_user().await;
    // Large echo replies that this client never reads fill the socket buffers; the host
    // then waits on the socket and stops reading, and the sender blocks.
    let pad = "x".repeat(60_000);
    let sent = Arc::new(AtomicU64::new(0));
    let counted = sent.clone();
    let sender = tokio::spawn(async move {
        for n in 0..400 {
            let message = json!({"method": "index.index.echo", "n": n, "pad": pad}).to_string();
            if tx.try_send_text(&message).await.is_err() {
                break;
            }
            counted.fetch_add(1, Ordering::Relaxed);
        }
    });
    // Stuck: the sender has not got a message out for half a second.
    let mut seen = 0;
    eventually(
        "the host to stop reading the client that stopped reading",
        Duration::from_secs(10),
        || {
            let now = sent.load(Ordering::Relaxed);
            let stuck = now == seen && now > 0;
            seen = now;
            async move {
                if !stuck {
                    tokio::time::sleep(Duration::from_millis(500)).await;
                }
                stuck
            }
        },
    )
    .await;
    let stuck_at = Instant::now();
    // The stuck connection holds back nobody else, and is not dropped early.
    other
        .send_json(&json!({"method": "index.index.index"}))
        .await;
    other.expect_ack().await;
    assert_eq!(other.recv_text().await, SUCCESS);
    assert!(
        stuck_at.elapsed() < Duration::from_secs(1),
        "another client waited {:?}",
        stuck_at.elapsed()
    );
    assert_eq!(connections(&host).await, json!(2));
    // Its sender is stuck: stop it, so that only the reading half sees how the
    // connection ends (a pending write would take the reset's error for itself).
    sender.abort();
    let _ = sender.await;
    // Stuck for slow_consumer_s: the host gives up on it, not long after.
    eventually(
        "the stuck client dropped",
        Duration::from_secs(6),
        || async { connections(&host).await == json!(1) },
    )
    .await;
    // Its end: what was in flight, then a reset. Its socket could not take the close
    // frame, and the README promises 1008 `slow consumer` only when it can.
    host.wait_for_line("the reset", |line| {
        line.contains("close frame not sent: connection reset")
    })
    .await;
    expect_frames_then_reset(&mut rx).await;
    // And the host goes on serving.
    other.send_text("2").await;
    assert_eq!(other.recv_text().await, "3");
}

#[tokio::test]
async fn any_frame_from_the_client_keeps_it_alive() {
    let host = TestHost::start("[heartbeat]\nidle_s = 1").await;
    let mut pinging = host.connect_user().await;
    let mut talking = host.connect_user().await;
    let started = Instant::now();
    while started.elapsed() < Duration::from_millis(2500) {
        tokio::time::sleep(Duration::from_millis(500)).await;
        pinging.tx.send_ping(b"hi").await;
        talking
            .send_json(&json!({"method": "index.index.index"}))
            .await;
        talking.expect_ack().await;
        assert_eq!(talking.recv_text().await, SUCCESS);
    }
    // Pongs are skipped by the client; the connection must still be open.
    pinging.send_text("2").await;
    assert_eq!(pinging.recv_text().await, "3");
}

/// Reads frames until the stream fails with a TCP reset; returns how many came first.
async fn expect_frames_then_reset(rx: &mut ClientRx) -> usize {
    let mut frames = 0;
    loop {
        match rx.recv().await {
            Frame::Text(_) => frames += 1,
            // "reset by peer" is an RST; tungstenite calls a FIN without a close frame
            // "Connection reset without closing handshake", which is not one.
            Frame::Ended(why) if why.contains("Connection reset by peer") => return frames,
            other => panic!("expected a reset after {frames} frames, got {other:?}"),
        }
    }
}

/// Sends 60 KB `say` broadcasts through the manager until the host logs that a client
/// became a slow consumer; returns how many it sent.
async fn say_until_a_slow_consumer(host: &TestHost) -> usize {
    let say = "x".repeat(60_000);
    for sent in 1..=1000 {
        host.manager(&json!({"method": "say", "say": say}))
            .await
            .assert_is(200, "saySuccess");
        if host.output().contains("slow consumer: its outbound queue") {
            return sent;
        }
    }
    panic!("1000 broadcasts of 60 KB made no slow consumer");
}

#[tokio::test]
async fn a_client_past_outbound_bytes_that_reads_again_gets_1008_slow_consumer() {
    let host = TestHost::start("[limits]\noutbound_bytes = 262144").await;
    let (_tx, mut slow) = host.connect_user().await.split();
    // Another client reads all along.
    let (mut other_tx, mut other_rx) = host.connect_user().await.split();
    let reader = tokio::spawn(async move {
        let mut broadcasts = 0;
        loop {
            match other_rx.recv_within(Duration::from_secs(2)).await {
                Some(Frame::Text(text)) if text.contains("serverBroadcast") => broadcasts += 1,
                None => return (broadcasts, other_rx),
                Some(other) => panic!("the reading client got {other:?}"),
            }
        }
    });
    // `slow` reads nothing until its queue has gone past 256 KiB.
    let sent = say_until_a_slow_consumer(&host).await;
    // It reads again at once, well within the close frame's 2 s: what was in flight,
    // then the close frame, then the end.
    let mut frames = 0;
    loop {
        match slow.recv().await {
            Frame::Text(_) => frames += 1,
            Frame::Close(Some((code, reason))) => {
                assert_eq!((code, reason.as_str()), (1008, "slow consumer"));
                break;
            }
            other => panic!("expected close 1008 after {frames} frames, got {other:?}"),
        }
    }
    assert!(
        frames < sent,
        "{frames} of {sent} broadcasts arrived: the queue past the limit was not dropped"
    );
    assert!(matches!(slow.recv().await, Frame::Ended(_)));
    // The other client, which read, got every broadcast and is still served.
    let (broadcasts, mut other_rx) = match reader.await {
        Ok(counted) => counted,
        Err(error) => panic!("the reading client failed: {error}"),
    };
    assert_eq!(broadcasts, sent);
    other_tx.send_text("2").await;
    assert_eq!(other_rx.recv_text().await, "3");
    assert_eq!(connections(&host).await, json!(1));
}

#[tokio::test]
async fn a_client_past_outbound_bytes_that_never_reads_is_reset_without_waiting_for_slow_consumer_s(
) {
    let host = TestHost::start("[limits]\noutbound_bytes = 262144").await;
    let (_tx, mut slow) = host.connect_user().await.split();
    let sent = say_until_a_slow_consumer(&host).await;
    let started = Instant::now();
    host.wait_for_line("the reset", |line| {
        line.contains("close frame not sent: connection reset")
    })
    .await;
    // Closed as soon as the close frame's 2 s ran out, not after the 10 s stall
    // (limits.slow_consumer_s).
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "reset after {:?}",
        started.elapsed()
    );
    assert_eq!(connections(&host).await, json!(0));
    let frames = expect_frames_then_reset(&mut slow).await;
    assert!(frames < sent, "{frames} of {sent} broadcasts arrived");
}
