//! README.md "Metrics": `GET /metrics` on the manager port, read after real traffic,
//! with exact counts.

use std::time::{Duration, Instant};

use mswoole_tests::{http_get, http_raw, json, paths, TestHost, VECTOR_WALL, VECTOR_WECHAT_USER};

/// The value of one series (`name{labels}` exactly as rendered) in a scrape.
fn value(scrape: &str, series: &str) -> Option<f64> {
    scrape.lines().find_map(|line| {
        let rest = line.strip_prefix(series)?.strip_prefix(' ')?;
        rest.trim().parse().ok()
    })
}

async fn scrape(host: &TestHost) -> String {
    let response = http_get(host.manager, "/metrics").await;
    assert_eq!(response.status, 200, "{}", response.text());
    assert!(
        response
            .header("content-type")
            .is_some_and(|t| t.starts_with("text/plain; version=0.0.4")),
        "{:?}",
        response.headers
    );
    response.text()
}

/// Scrapes until every series has its value (the host counts a close after the client
/// saw it); fails naming what differs after 5 s.
async fn expect(host: &TestHost, series: &[(&str, f64)]) -> String {
    let started = Instant::now();
    loop {
        let text = scrape(host).await;
        let wrong: Vec<_> = series
            .iter()
            .filter(|(name, want)| value(&text, name) != Some(*want))
            .map(|(name, want)| format!("{name}: want {want}, got {:?}", value(&text, name)))
            .collect();
        if wrong.is_empty() {
            return text;
        }
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "{wrong:#?}\nscrape:\n{text}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn a_default_start_serves_every_declared_metric() {
    let host = TestHost::start("").await;
    let text = expect(
        &host,
        &[
            ("mswoole_connections", 0.0),
            (r#"mswoole_build_info{version="0.1.0"}"#, 1.0),
            (r#"mswoole_handshakes_total{result="ok"}"#, 0.0),
            (r#"mswoole_handshakes_total{result="timeout"}"#, 0.0),
            ("mswoole_frames_sent_total", 0.0),
            ("mswoole_plugin_refusals_total", 0.0),
            ("mswoole_registry_errors_total", 0.0),
            ("mswoole_sessions_resumed_total", 0.0),
            (
                r#"mswoole_sessions_not_resumed_total{reason="expired"}"#,
                0.0,
            ),
        ],
    )
    .await;
    for help in [
        "# TYPE mswoole_module_call_seconds histogram",
        "# TYPE mswoole_messages_total counter",
    ] {
        assert!(text.contains(help), "{help} missing:\n{text}");
    }
}

#[tokio::test]
async fn traffic_is_counted_exactly() {
    let host = TestHost::start("").await;
    let mut user = host.connect_user().await;
    let wall = host.connect(&format!("/?auth={VECTOR_WALL}")).await;
    // A forged token, and a handshake that breaks RFC 6455.
    let forged = host.try_connect("/live?auth=bm90LWEtdG9rZW4_").await;
    assert!(forged.is_err(), "a forged token was accepted");
    let bad = http_raw(
        host.outside,
        "GET / HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 8\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n",
    )
    .await;
    assert_eq!(bad.status, 400);

    for _ in 0..3 {
        user.call(&json!({"method": "index.index.index"}))
            .await
            .assert_is(200, "success");
    }
    user.call(&json!({"method": "nosuch.index.index"}))
        .await
        .assert_is(404, "controllerNotFound");
    user.send_text("2").await;
    assert_eq!(user.recv_text().await, "3");
    expect(
        &host,
        &[
            ("mswoole_connections", 2.0),
            (r#"mswoole_handshakes_total{result="ok"}"#, 2.0),
            (r#"mswoole_handshakes_total{result="forbidden"}"#, 1.0),
            (r#"mswoole_handshakes_total{result="bad_request"}"#, 1.0),
            (r#"mswoole_messages_total{status="200"}"#, 3.0),
            (r#"mswoole_messages_total{status="404"}"#, 1.0),
            // Four acks, four replies and the pong.
            ("mswoole_frames_sent_total", 9.0),
            (r#"mswoole_module_call_seconds_count{module="Index"}"#, 3.0),
            (
                r#"mswoole_module_call_seconds_bucket{module="Index",le="+Inf"}"#,
                3.0,
            ),
        ],
    )
    .await;

    // The user closes (the host echoes 1000); the wall's socket just goes (1006).
    user.close(1000).await;
    drop(wall);
    let text = expect(
        &host,
        &[
            ("mswoole_connections", 0.0),
            (r#"mswoole_closes_total{code="1000"}"#, 1.0),
            (r#"mswoole_closes_total{code="1006"}"#, 1.0),
        ],
    )
    .await;
    assert!(
        text.contains(r#"mswoole_module_call_seconds_bucket{module="Index",le="0.001"}"#),
        "the histogram has real buckets:\n{text}"
    );
    assert!(
        !text.contains(VECTOR_WECHAT_USER) && !text.contains("fd="),
        "{text}"
    );
}

#[tokio::test]
async fn swaps_and_refusals_are_counted() {
    let host = TestHost::builder()
        .plugin_file("libbroken.so", b"not a library".to_vec())
        .start()
        .await;
    // The first loads are not swaps.
    expect(
        &host,
        &[
            ("mswoole_plugin_refusals_total", 1.0),
            (r#"mswoole_plugin_swaps_total{module="Index"}"#, 0.0),
            (r#"mswoole_plugin_swaps_total{module="Live"}"#, 0.0),
        ],
    )
    .await;
    // A rebuilt Index, put in place as cargo does.
    let target = host.dir().plugins_dir().join("libmswoole_index.so");
    let temporary = host.dir().plugins_dir().join("libmswoole_index.so.tmp");
    std::fs::copy(paths::index_plugin(), &temporary).expect("the plugin is copied");
    std::fs::rename(&temporary, &target).expect("the plugin is renamed into place");
    // Test hosts do not watch their plugin directory: a reload rescans it.
    host.manager(&json!({"method": "reload"}))
        .await
        .assert_is(200, "reloadSuccess");
    expect(
        &host,
        &[
            (r#"mswoole_plugin_swaps_total{module="Index"}"#, 1.0),
            ("mswoole_plugin_refusals_total", 1.0),
        ],
    )
    .await;
}

#[tokio::test]
async fn the_grafana_dashboard_uses_only_names_the_host_serves() {
    let host = TestHost::start("").await;
    let text = scrape(&host).await;
    let dashboard =
        std::fs::read_to_string(paths::workspace_root().join("docs/grafana/mswoole.json"))
            .expect("docs/grafana/mswoole.json is readable");
    let mut names: Vec<&str> = dashboard
        .match_indices("mswoole_")
        .map(|(at, _)| {
            let rest = &dashboard[at..];
            let end = rest
                .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                .unwrap_or(rest.len());
            rest[..end].trim_end_matches("_bucket")
        })
        .collect();
    names.sort_unstable();
    names.dedup();
    assert!(names.len() >= 10, "{names:?}");
    for name in names {
        // Database histograms appear with the first query of a configured database.
        if name == "mswoole_database_query_seconds" {
            continue;
        }
        assert!(
            text.contains(&format!("# TYPE {name} ")),
            "the dashboard uses {name}, which the host does not serve:\n{text}"
        );
    }
}
