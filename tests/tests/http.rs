//! docs/PROTOCOL.md "Handshake": requests that are not upgrades, and the handshake limits.

use std::time::Duration;

use mswoole_tests::{
    eventually_some, http::time_until_dropped, http_get, json, TestHost, Value, VECTOR_WECHAT_USER,
};

#[tokio::test]
async fn get_root_is_a_small_200_page() {
    let host = TestHost::start("").await;
    let response = http_get(host.outside, "/").await;
    assert_eq!(response.status, 200, "{response:?}");
    assert!(
        !response.body.is_empty() && response.body.len() < 64 * 1024,
        "{response:?}"
    );
}

#[tokio::test]
async fn get_healthz_is_200_json() {
    let host = TestHost::start("").await;
    let response = http_get(host.outside, "/healthz").await;
    assert_eq!(response.status, 200, "{response:?}");
    let body: Value = serde_json::from_slice(&response.body)
        .unwrap_or_else(|error| panic!("/healthz is not JSON ({error}): {}", response.text()));
    assert!(body.is_object(), "{body}");
}

#[tokio::test]
async fn healthz_is_503_draining_while_the_host_stops() {
    // Index's onShutdown takes 3 s (a debug setting): the host is stopping all that time.
    let mut host = TestHost::start("[modules.Index]\ndebug_shutdown_ms = 3000").await;
    let mut client = host.connect_user().await;
    assert_eq!(http_get(host.outside, "/healthz").await.status, 200);
    host.signal("TERM");
    // The client hears of the stop first: the stop has begun.
    client.expect_close(1012).await;
    let response = http_get(host.outside, "/healthz").await;
    assert_eq!(response.status, 503, "{response:?}");
    let body: Value = serde_json::from_slice(&response.body)
        .unwrap_or_else(|error| panic!("/healthz is not JSON ({error}): {}", response.text()));
    assert_eq!(body["status"], "draining", "{body}");
    let status = host.wait_exit(Duration::from_secs(15)).await;
    assert!(
        status.success(),
        "the host exits 0 after the stop: {status}"
    );
}

#[tokio::test]
async fn any_other_path_is_404() {
    let host = TestHost::start("").await;
    for path in [
        "/nope",
        "/live",
        &format!("/live?auth={VECTOR_WECHAT_USER}"),
    ] {
        let response = http_get(host.outside, path).await;
        assert_eq!(response.status, 404, "GET {path}: {response:?}");
    }
}

#[tokio::test]
async fn a_client_that_sends_nothing_is_dropped_after_handshake_timeout_s() {
    let host = TestHost::start("[limits]\nhandshake_timeout_s = 1").await;
    let dropped = time_until_dropped(host.outside, Duration::from_secs(4)).await;
    match dropped {
        Some(after) => assert!(
            after >= Duration::from_millis(800) && after < Duration::from_secs(3),
            "dropped after {after:?}"
        ),
        None => panic!("a silent client was still connected after 4 s"),
    }
}

#[tokio::test]
async fn over_max_connections_a_handshake_gets_503() {
    let host = TestHost::start("[limits]\nmax_connections = 2").await;
    let mut first = host.connect_user().await;
    let mut second = host.connect_user().await;
    first.fd().await;
    second.fd().await;
    match host
        .try_connect(&format!("/live?auth={VECTOR_WECHAT_USER}"))
        .await
    {
        Ok(_) => panic!("a third connection was accepted with max_connections = 2"),
        Err(refused) => assert_eq!(refused.status, 503, "{refused:?}"),
    }
    // A freed place can be taken again.
    first.close(1000).await;
    let _ = first.recv().await;
    let mut third = eventually_some(
        "the freed place given back",
        Duration::from_secs(3),
        || async {
            match host
                .try_connect(&format!("/live?auth={VECTOR_WECHAT_USER}"))
                .await
            {
                Ok(third) => Some(third),
                Err(refused) => {
                    assert_eq!(refused.status, 503, "{refused:?}");
                    None
                }
            }
        },
    )
    .await;
    third.call(&json!({})).await.assert_is(200, "success");
}
