//! README.md "Stopping": a stop drains. `/healthz` answers 503 `draining` and upgrades 503 at
//! once; of N clients, client i is closed with 1012 at i·`drain_s`/N (±200 ms); a second
//! signal closes the rest at once; then the host exits 0.

use std::time::Duration;

use mswoole_tests::{
    eventually_some, http_get, Client, Frame, TestHost, Value, VECTOR_WECHAT_USER,
};
use tokio::{sync::mpsc, time::Instant};

/// How far a close may land from its slot.
const TOLERANCE: Duration = Duration::from_millis(200);

/// Connects `count` users, each with its fd known (so each is in the host's table).
async fn connect_users(host: &TestHost, count: usize) -> Vec<Client> {
    let mut clients = Vec::new();
    for _ in 0..count {
        let mut client = host.connect_user().await;
        client.fd().await;
        clients.push(client);
    }
    clients
}

/// Waits for each client's close frame; each one's arrival time and code come on the channel.
fn close_arrivals(
    clients: Vec<Client>,
    patience: Duration,
) -> mpsc::UnboundedReceiver<(Instant, u16)> {
    let (arrived, arrivals) = mpsc::unbounded_channel();
    for client in clients {
        let (_tx, mut rx) = client.split();
        let arrived = arrived.clone();
        tokio::spawn(async move {
            let frame = rx.recv_within(patience).await;
            let at = Instant::now();
            match frame {
                Some(Frame::Close(Some((code, _)))) => {
                    let _ = arrived.send((at, code));
                }
                other => panic!("expected a close frame, got {other:?}"),
            }
        });
    }
    arrivals
}

/// The next `count` arrivals, in order.
async fn next_arrivals(
    arrivals: &mut mpsc::UnboundedReceiver<(Instant, u16)>,
    count: usize,
    patience: Duration,
) -> Vec<(Instant, u16)> {
    let mut got = Vec::new();
    while got.len() < count {
        match tokio::time::timeout(patience, arrivals.recv()).await {
            Ok(Some(arrival)) => got.push(arrival),
            other => panic!(
                "{} of {count} closes arrived ({other:?}): {got:?}",
                got.len()
            ),
        }
    }
    got
}

#[tokio::test]
async fn a_stop_spreads_the_1012_closes_over_drain_s_and_refuses_newcomers_at_once() {
    let mut host = TestHost::start("[shutdown]\ndrain_s = 2").await;
    let clients = connect_users(&host, 5).await;
    let mut arrivals = close_arrivals(clients, Duration::from_secs(10));
    let signalled = Instant::now();
    host.signal("TERM");

    // At once: /healthz is 503 draining and an upgrade is refused with 503.
    let health = eventually_some("/healthz answering 503", Duration::from_secs(1), || async {
        let health = http_get(host.outside, "/healthz").await;
        (health.status == 503).then_some(health)
    })
    .await;
    let body: Value = serde_json::from_slice(&health.body)
        .unwrap_or_else(|error| panic!("/healthz is not JSON ({error}): {}", health.text()));
    assert_eq!(body["status"], "draining", "{body}");
    match host
        .try_connect(&format!("/?auth={VECTOR_WECHAT_USER}"))
        .await
    {
        Err(refused) => assert_eq!(refused.status, 503, "{refused:?}"),
        Ok(_) => panic!("an upgrade was accepted while the host drains"),
    }

    let arrivals = next_arrivals(&mut arrivals, 5, Duration::from_secs(10)).await;
    let offsets: Vec<Duration> = arrivals
        .iter()
        .map(|(at, _)| at.duration_since(signalled))
        .collect();
    for (index, (offset, (_, code))) in offsets.iter().zip(&arrivals).enumerate() {
        assert_eq!(*code, 1012, "client {index} closed with {code}");
        let slot = Duration::from_millis(2000 * index as u64 / 5);
        assert!(
            *offset >= slot.saturating_sub(TOLERANCE) && *offset <= slot + TOLERANCE,
            "client {index} of 5 closed {offset:?} after the signal, its slot is {slot:?} \
             (±{TOLERANCE:?}); all: {offsets:?}"
        );
    }
    let status = host.wait_exit(Duration::from_secs(10)).await;
    assert_eq!(status.code(), Some(0), "exit status {status}");
}

#[tokio::test]
async fn a_second_signal_closes_the_rest_at_once() {
    // Four clients over 60 s: slots at 0, 15, 30 and 45 s.
    let mut host = TestHost::start("[shutdown]\ndrain_s = 60").await;
    let clients = connect_users(&host, 4).await;
    let mut arrivals = close_arrivals(clients, Duration::from_secs(20));
    host.signal("INT");
    let first = next_arrivals(&mut arrivals, 1, Duration::from_secs(2)).await;
    assert_eq!(first[0].1, 1012, "{first:?}");
    // The second slot is 15 s away: nothing else closes meanwhile.
    let early = tokio::time::timeout(Duration::from_millis(500), arrivals.recv()).await;
    assert!(
        early.is_err(),
        "a second client closed before its slot: {early:?}"
    );
    let hurried = Instant::now();
    host.signal("TERM");
    let rest = next_arrivals(&mut arrivals, 3, Duration::from_secs(5)).await;
    for (at, code) in &rest {
        assert_eq!(*code, 1012, "{rest:?}");
        assert!(
            at.duration_since(hurried) < Duration::from_secs(1),
            "a client closed {:?} after the second signal",
            at.duration_since(hurried)
        );
    }
    let status = host.wait_exit(Duration::from_secs(10)).await;
    assert_eq!(status.code(), Some(0), "exit status {status}");
}
