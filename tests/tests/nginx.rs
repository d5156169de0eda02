//! The shipped `config/nginx.conf` in front of a real host (README.md, "Deploying").
//!
//! Clients connect to nginx from 127.0.0.2, so the address nginx passes on in
//! `X-Real-IP` differs from the one the host sees the proxy connect from (127.0.0.1).

use std::{
    net::{IpAddr, Ipv4Addr},
    time::Duration,
};

use mswoole_tests::{
    connect_from, http_get, json, unused_port, Client, Frame, Nginx, TestHost, SUCCESS,
    VECTOR_NOT_JSON, VECTOR_WECHAT_USER,
};

/// Where the test clients connect from.
const CLIENT_IP: IpAddr = IpAddr::V4(Ipv4Addr::new(127, 0, 0, 2));

/// A host that trusts the proxy on 127.0.0.1, as config/nginx.conf's comment says.
async fn host_behind_nginx() -> (TestHost, Nginx) {
    let host = TestHost::start("[outside]\ntrusted_proxies = [\"127.0.0.1\"]").await;
    let nginx = Nginx::start(host.outside);
    (host, nginx)
}

/// A WebSocket through nginx from [`CLIENT_IP`].
async fn client_through(nginx: &Nginx, path_and_query: &str) -> Client {
    match connect_from(Some(CLIENT_IP), nginx.addr, path_and_query, &[]).await {
        Ok(client) => client,
        Err(refused) => panic!("handshake through nginx refused: {refused:?}"),
    }
}

#[tokio::test]
async fn an_upgrade_passes_through_and_the_host_logs_the_real_client_address() {
    let (host, nginx) = host_behind_nginx().await;
    let mut client = client_through(&nginx, &format!("/live?auth={VECTOR_WECHAT_USER}")).await;
    let reply = client.call(&json!({"method": "index.index.index"})).await;
    assert_eq!(reply.text, SUCCESS);
    client.send_text("2").await;
    assert_eq!(client.recv_text().await, "3");
    let fd = client.fd().await;
    // The connection's line, at info: its fd and the address nginx put in X-Real-IP.
    let line = host
        .wait_for_line("saying the client connected", |line| {
            line.contains(" INFO ") && line.contains("connected") && line.contains(&fd)
        })
        .await;
    assert!(
        line.contains(&format!("ip={CLIENT_IP}")),
        "the connection's line does not name the client address {CLIENT_IP}: {line}"
    );
    assert!(
        !line.contains(VECTOR_WECHAT_USER) && !line.contains("auth="),
        "the connection's line holds the token: {line}"
    );
    let logged = host
        .wait_for_log_file_line("with the connection in the log file", |line| {
            line.contains("connected") && line.contains(&fd)
        })
        .await;
    assert!(logged.contains(&format!("ip={CLIENT_IP}")), "{logged}");
}

#[tokio::test]
async fn without_trusted_proxies_the_host_logs_the_proxy_address() {
    let host = TestHost::start("").await;
    let nginx = Nginx::start(host.outside);
    let mut client = client_through(&nginx, &format!("/live?auth={VECTOR_WECHAT_USER}")).await;
    let fd = client.fd().await;
    let line = host
        .wait_for_line("saying the client connected", |line| {
            line.contains("connected") && line.contains(&fd)
        })
        .await;
    assert!(
        line.contains("ip=127.0.0.1") && !line.contains(&CLIENT_IP.to_string()),
        "an untrusted X-Real-IP was believed: {line}"
    );
}

#[tokio::test]
async fn a_refused_token_and_plain_http_pass_through() {
    let (host, nginx) = host_behind_nginx().await;
    let refused = connect_from(
        Some(CLIENT_IP),
        nginx.addr,
        &format!("/live?auth={VECTOR_NOT_JSON}"),
        &[],
    )
    .await
    .err()
    .expect("a token that is not JSON is refused");
    assert_eq!(refused.status, 403, "{refused:?}");
    assert_eq!(refused.header("message"), Some("error auth"), "{refused:?}");
    // No token at all: the same 403, logged as missing.
    let refused = connect_from(Some(CLIENT_IP), nginx.addr, "/live", &[])
        .await
        .err()
        .expect("no token is refused");
    assert_eq!(refused.status, 403, "{refused:?}");
    host.wait_for_line("saying the token is missing", |line| {
        line.contains("handshake refused") && line.contains("missing")
    })
    .await;
    // Not an upgrade: the map sends "Connection: close", and the host answers as HTTP.
    let health = http_get(nginx.addr, "/healthz").await;
    assert_eq!(health.status, 200, "{}", health.text());
    assert!(
        health.text().contains("\"status\":\"ok\""),
        "{}",
        health.text()
    );
}

#[tokio::test]
async fn the_access_log_holds_no_token() {
    let (_host, nginx) = host_behind_nginx().await;
    let mut client = client_through(&nginx, &format!("/live?auth={VECTOR_WECHAT_USER}")).await;
    client.fd().await;
    client.close(1000).await;
    let _ = connect_from(
        Some(CLIENT_IP),
        nginx.addr,
        &format!("/live?auth={VECTOR_NOT_JSON}"),
        &[],
    )
    .await;
    // nginx writes a WebSocket's line when it ends.
    nginx
        .wait_for_access_line("for the upgrade", |line| {
            line.contains("/live") && line.contains(" 101 ")
        })
        .await;
    nginx
        .wait_for_access_line("for the 403", |line| {
            line.contains("/live") && line.contains(" 403 ")
        })
        .await;
    let log = nginx.access_log();
    assert!(
        log.lines()
            .all(|line| line.starts_with(&CLIENT_IP.to_string())),
        "{log}"
    );
    for secret in [VECTOR_WECHAT_USER, VECTOR_NOT_JSON, "auth="] {
        assert!(
            !log.contains(secret),
            "the access log holds {secret:?}:\n{log}"
        );
    }
}

/// Waits for the close frame (or the end) of a quiet client, at most `limit`.
async fn end_of(client: &mut Client, limit: Duration) -> Frame {
    match client.rx.recv_within(limit).await {
        Some(Frame::Text(text)) => panic!("a quiet client received {text:?}"),
        Some(end) => end,
        None => panic!("a quiet client was not closed within {limit:?}"),
    }
}

/// The case: both timeouts were 60 s, and 7 of 8 quiet clients got nginx's
/// abrupt close (this test, run against that config, saw the same 7 of 8). Takes about
/// 66 s: one test with all its clients side by side, so it holds one test thread.
#[tokio::test]
async fn quiet_clients_get_the_hosts_idle_close_and_heartbeats_keep_a_client() {
    let (_host, nginx) = host_behind_nginx().await;
    let token = format!("/live?auth={VECTOR_WECHAT_USER}");
    let mut quiet = Vec::new();
    for _ in 0..8 {
        quiet.push(client_through(&nginx, &token).await);
    }
    let mut beating = client_through(&nginx, &token).await;
    let started = tokio::time::Instant::now();
    let quiet_end = quiet.iter_mut().map(|client| async {
        // heartbeat.idle_s = 60 (the default); nginx's proxy_read_timeout is 75 s.
        let end = end_of(client, Duration::from_secs(72)).await;
        assert_eq!(
            end,
            Frame::Close(Some((1000, "idle timeout".into()))),
            "a quiet client behind nginx did not get the host's idle close after {:?}",
            started.elapsed()
        );
    });
    let quiet_ends = futures_util::future::join_all(quiet_end);
    let beating_stays = async {
        // Only `2` every 50 s: still there after both 60 s timeouts (host's and nginx's default).
        for at in [50, 66] {
            tokio::time::sleep_until(started + Duration::from_secs(at)).await;
            beating.send_text("2").await;
            match beating.recv().await {
                Frame::Text(text) if text == "3" => {}
                other => panic!(
                    "a client sending 2 every 50 s got {other:?} after {:?}",
                    started.elapsed()
                ),
            }
        }
    };
    tokio::join!(quiet_ends, beating_stays);
    assert!(
        !nginx.error_log().contains("upstream timed out"),
        "nginx timed the upstream out:\n{}",
        nginx.error_log()
    );
}

/// The number of seconds in the first `<directive> <N>s;` line of `text`.
fn seconds_of(text: &str, directive: &str) -> u64 {
    text.lines()
        .map(str::trim)
        .find_map(|line| line.strip_prefix(directive))
        .and_then(|rest| rest.trim().strip_suffix(';'))
        .map(|value| value.trim_end_matches('s'))
        .and_then(|value| value.parse().ok())
        .unwrap_or_else(|| panic!("no `{directive} <N>s;` line"))
}

/// The end-to-end test above races two timers; this one is exact: the shipped proxy
/// waits clearly longer than the host's default idle timeout (the issue had 60 and 60).
#[test]
fn the_shipped_read_timeout_outlasts_the_heartbeat_by_a_margin() {
    let root = mswoole_tests::paths::workspace_root();
    let nginx = std::fs::read_to_string(root.join("config/nginx.conf")).expect("nginx.conf");
    let app = std::fs::read_to_string(root.join("config/app.toml")).expect("app.toml");
    let read_timeout = seconds_of(&nginx, "proxy_read_timeout");
    let idle = app
        .lines()
        .find_map(|line| line.trim().strip_prefix("idle_s = "))
        .and_then(|value| value.trim().parse::<u64>().ok())
        .expect("config/app.toml sets heartbeat.idle_s");
    assert!(
        read_timeout >= idle + 10,
        "proxy_read_timeout {read_timeout}s must exceed heartbeat.idle_s {idle}s by 10 s or more"
    );
}

#[tokio::test]
async fn nginx_never_mistakes_a_port_someone_else_holds_for_its_own() {
    // As if another test process had taken the chosen port a moment earlier.
    let taken = std::net::TcpListener::bind(("127.0.0.1", unused_port()))
        .expect("a free test port can be bound");
    let port = taken.local_addr().expect("a bound address").port();
    let host = TestHost::start("").await;
    let nginx = Nginx::start_preferring(host.outside, port);
    assert_ne!(nginx.addr.port(), port, "nginx moved to another port");
    let health = http_get(nginx.addr, "/healthz").await;
    assert_eq!(health.status, 200, "and proxies to the host: {health:?}");
}
