//! docs/PROTOCOL.md "Messages and routing": the messages of one connection are handled in the order they arrived.

use std::time::Duration;

use mswoole_tests::{json, Envelope, TestHost, ACK};

const MESSAGES: u64 = 1000;

#[tokio::test]
async fn a_thousand_messages_written_back_to_back_are_answered_in_order() {
    // A thousand at once is a load test, not a phone: the message rate limit (README.md,
    // "Rate limits") would answer most of them 429, so it is off for this host.
    let host = TestHost::start("[limits]\nmessages_per_s = 0").await;
    let (mut tx, mut rx) = host.connect_user().await.split();
    // Read while writing, so neither side's buffers fill up.
    let reader = tokio::spawn(async move {
        let mut acks = 0u64;
        let mut replies = 0u64;
        while replies < MESSAGES {
            let text = rx.recv_text().await;
            if text == ACK {
                acks += 1;
                continue;
            }
            let reply = Envelope::parse(&text);
            reply.assert_is(200, "echo");
            assert_eq!(
                reply.expect_param()["n"],
                json!(replies),
                "reply out of order"
            );
            replies += 1;
            assert!(acks >= replies, "reply {} came before its ack", replies - 1);
        }
        assert_eq!(acks, MESSAGES);
        rx.expect_silence(Duration::from_millis(200)).await;
    });
    for n in 0..MESSAGES {
        tx.feed_text(&json!({"method": "index.index.echo", "n": n}).to_string())
            .await;
    }
    tx.flush().await;
    match tokio::time::timeout(Duration::from_secs(30), reader).await {
        Ok(Ok(())) => {}
        Ok(Err(failed)) => std::panic::resume_unwind(failed.into_panic()),
        Err(_) => panic!("{MESSAGES} replies did not arrive within 30 s"),
    }
}

#[tokio::test]
async fn a_slow_call_holds_back_the_messages_after_it_on_its_connection() {
    let host = TestHost::start("").await;
    let (mut tx, mut rx) = host.connect_user().await.split();
    tx.feed_text(r#"{"method":"index.debug.sleep","ms":300}"#)
        .await;
    tx.feed_text(r#"{"method":"index.index.index"}"#).await;
    tx.feed_text(r#"{"method":"index.index.echo","n":2}"#).await;
    tx.flush().await;
    let mut replies = Vec::new();
    while replies.len() < 3 {
        let text = rx.recv_text().await;
        if text != ACK {
            replies.push(Envelope::parse(&text).event().to_string());
        }
    }
    assert_eq!(replies, ["slept", "success", "echo"]);
}
