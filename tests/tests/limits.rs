//! Rate limits (README.md, "The protocol in brief"): `limits.messages_per_s` with
//! `limits.messages_burst` per connection, 429 `tooManyRequests` for the excess, 1008
//! after `limits.rate_close_after_s` over the rate; `limits.connections_per_ip`, 503 at
//! the handshake, the address from `X-Real-IP` behind a trusted proxy. And the log
//! flood rule: identical errors within a second become one line and a count.

use std::{
    net::{IpAddr, Ipv4Addr},
    time::{Duration, Instant},
};

use mswoole_tests::{
    connect_from, connect_with_headers, eventually_some, http_get, json, Frame, TestHost, SUCCESS,
    VECTOR_WECHAT_USER,
};

const USER: &str = "/live?auth=";

fn user_path() -> String {
    format!("{USER}{VECTOR_WECHAT_USER}")
}

#[tokio::test]
async fn messages_past_the_burst_are_answered_429_in_their_turn() {
    let host =
        TestHost::start("[limits]\nmessages_per_s = 1\nmessages_burst = 3\nrate_close_after_s = 0")
            .await;
    let mut client = host.connect_user().await;
    for _ in 0..6 {
        client
            .send_json(&json!({"method": "index.index.index"}))
            .await;
    }
    for n in 0..3 {
        client.expect_ack().await;
        assert_eq!(
            client.recv_text().await,
            SUCCESS,
            "message {n} is within the burst"
        );
    }
    for _ in 3..6 {
        // No ack: the message is dropped, not routed.
        client.expect_envelope(429, "tooManyRequests").await;
    }
    // The bucket refills at the rate: a second later one more passes.
    tokio::time::sleep(Duration::from_millis(1100)).await;
    client
        .send_json(&json!({"method": "index.index.index"}))
        .await;
    client.expect_ack().await;
    assert_eq!(client.recv_text().await, SUCCESS);
    // `2` is never counted: a burst of pings is answered.
    for _ in 0..10 {
        client.send_text("2").await;
        assert_eq!(client.recv_text().await, "3");
    }
}

#[tokio::test]
async fn a_client_that_goes_on_over_its_rate_is_closed_1008_and_another_is_untouched() {
    let host =
        TestHost::start("[limits]\nmessages_per_s = 5\nmessages_burst = 5\nrate_close_after_s = 1")
            .await;
    let (mut tx, mut rx) = host.connect_user().await.split();
    let mut calm = host.connect_user().await;
    // Forty messages a second against five allowed, for at most 10 s.
    let flood = tokio::spawn(async move {
        let started = Instant::now();
        while started.elapsed() < Duration::from_secs(10) {
            let message = json!({"method": "index.index.index"}).to_string();
            if tx.try_send_text(&message).await.is_err() {
                return;
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
    });
    let (mut refused, mut served) = (0, 0);
    let close = loop {
        match rx.recv().await {
            Frame::Text(text) if text.contains("\"status\":429") => refused += 1,
            Frame::Text(text) if text == SUCCESS => served += 1,
            Frame::Text(_) => {}
            Frame::Close(close) => break close,
            other => panic!("expected replies then a close, got {other:?}"),
        }
    };
    flood.abort();
    assert_eq!(close, Some((1008, "rate limit".to_string())));
    assert!(refused > 0, "429s before the close");
    assert!(served >= 5, "the burst and the rate were served ({served})");
    // The other client, at its own pace, is served as usual.
    for _ in 0..3 {
        let reply = calm.call(&json!({"method": "index.index.index"})).await;
        reply.assert_is(200, "success");
    }
}

#[tokio::test]
async fn the_defaults_never_touch_a_phone() {
    let host = TestHost::start("").await;
    let mut client = host.connect_user().await;
    // A phone that reconnects and replays its queue: fifty messages at once.
    for _ in 0..50 {
        client
            .send_json(&json!({"method": "index.index.index"}))
            .await;
    }
    for _ in 0..50 {
        client.expect_ack().await;
        assert_eq!(client.recv_text().await, SUCCESS);
    }
}

/// Connects from `local` (a 127.0.0.0/8 address) with `headers`; the HTTP status.
async fn handshake(host: &TestHost, local: Ipv4Addr, headers: &[(&str, &str)]) -> u16 {
    match connect_from(Some(IpAddr::V4(local)), host.outside, &user_path(), headers).await {
        Ok(client) => {
            // Keep it open for the rest of the test.
            tokio::spawn(async move {
                let _client = client;
                tokio::time::sleep(Duration::from_secs(60)).await;
            });
            101
        }
        Err(refused) => refused.status,
    }
}

#[tokio::test]
async fn connections_per_ip_refuses_503_and_a_closed_one_frees_its_place() {
    let host = TestHost::start("[limits]\nconnections_per_ip = 2").await;
    let mut first = host.connect_user().await;
    let _second = host.connect_user().await;
    let refused = connect_with_headers(host.outside, &user_path(), &[])
        .await
        .err()
        .map(|refused| refused.status);
    assert_eq!(refused, Some(503), "a third from 127.0.0.1");
    // Another address is counted apart.
    assert_eq!(
        handshake(&host, Ipv4Addr::new(127, 0, 0, 2), &[]).await,
        101
    );
    first.close(1000).await;
    eventually_some(
        "the closed connection's place given back",
        Duration::from_secs(5),
        || async {
            match connect_with_headers(host.outside, &user_path(), &[]).await {
                Ok(client) => Some(client),
                Err(refused) => {
                    assert_eq!(refused.status, 503);
                    None
                }
            }
        },
    )
    .await;
    host.wait_for_log_file_line("naming the limit", |line| {
        line.contains("limits.connections_per_ip reached: 503")
    })
    .await;
    // Each refusal counts as an unavailable handshake, like one over max_connections.
    let metrics = http_get(host.manager, "/metrics").await.text();
    let refusals = metrics
        .lines()
        .find(|line| line.starts_with("mswoole_handshakes_total{result=\"unavailable\"}"))
        .and_then(|line| line.rsplit(' ').next())
        .and_then(|count| count.parse::<u64>().ok());
    assert!(
        refusals.is_some_and(|count| count >= 1),
        "the 503s are counted: {metrics}"
    );
}

#[tokio::test]
async fn behind_a_trusted_proxy_the_limit_counts_x_real_ip() {
    let host = TestHost::start(
        "[outside]\ntrusted_proxies = [\"127.0.0.1\"]\n[limits]\nconnections_per_ip = 1",
    )
    .await;
    let proxy = Ipv4Addr::LOCALHOST;
    let phone_a = [("X-Real-IP", "10.1.1.1")];
    let phone_b = [("X-Real-IP", "10.1.1.2")];
    assert_eq!(handshake(&host, proxy, &phone_a).await, 101);
    assert_eq!(
        handshake(&host, proxy, &phone_a).await,
        503,
        "10.1.1.1 again"
    );
    assert_eq!(
        handshake(&host, proxy, &phone_b).await,
        101,
        "another phone, same proxy"
    );
    // From a peer that is not a trusted proxy the header is ignored: counted as the peer.
    let untrusted = Ipv4Addr::new(127, 0, 0, 3);
    assert_eq!(handshake(&host, untrusted, &phone_a).await, 101);
    assert_eq!(
        handshake(&host, untrusted, &phone_b).await,
        503,
        "127.0.0.3 again"
    );
}

#[tokio::test]
async fn a_flood_of_identical_errors_is_one_line_and_a_count() {
    let host = TestHost::start("").await;
    let mut client = host.connect_user().await;
    for _ in 0..40 {
        let reply = client.call(&json!({"method": "index.debug.panic"})).await;
        reply.assert_is(500, "controllerError");
    }
    let summary = host
        .wait_for_log_file_line("summarising the flood", |line| {
            line.contains("module panicked") && line.contains("more in the last")
        })
        .await;
    assert!(summary.contains("(… 39 more in the last "), "{summary}");
    let log = host.log_file();
    let lines = log
        .lines()
        .filter(|line| line.contains("call failed: module panicked"))
        .count();
    assert_eq!(lines, 2, "the first failure and the summary:\n{log}");
}
