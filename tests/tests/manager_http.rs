//! README.md "HTTP API": the manager port's HTTP form for backends — the same commands
//! and answers as the WebSocket form, the bearer token, and the refusals.

use std::{process::Command, time::Duration};

use mswoole_tests::{http_raw, http_request, json, HttpResponse, TestHost, Value, VECTOR_WALL};

const QUIET: Duration = Duration::from_millis(300);

async fn post(host: &TestHost, path: &str, body: &str) -> HttpResponse {
    http_request(host.manager, "POST", path, &[], body).await
}

/// The response's envelope, after checking it is JSON with the envelope's key order.
fn envelope(response: &HttpResponse) -> Value {
    let value = response.json();
    let keys: Vec<&str> = value
        .as_object()
        .map(|o| o.keys().map(String::as_str).collect())
        .unwrap_or_default();
    assert!(
        keys.starts_with(&["status", "event", "info"]),
        "not an envelope: {}",
        response.text()
    );
    value
}

#[tokio::test]
async fn a_backend_pushes_with_one_curl() {
    let host = TestHost::start("").await;
    let mut user = host.connect_user().await;
    let fd = user.fd().await;
    let body = json!({"fd": fd, "status": 200, "event": "notice", "info": "hi", "param": {"x": 1}});
    let output = Command::new("curl")
        .args(["-s", "-w", "\n%{http_code}", "-d"])
        .arg(body.to_string())
        .arg(format!("http://{}/api/push", host.manager))
        .output()
        .expect("curl runs (tests/run.sh installs it)");
    let text = String::from_utf8_lossy(&output.stdout);
    let (answer, code) = text.rsplit_once('\n').expect("curl printed the status");
    assert_eq!(code, "200", "{text}");
    assert_eq!(
        answer,
        r#"{"status":200,"event":"pushSuccess","info":"执行完成","param":{"local":1,"nodes":0}}"#
    );
    assert_eq!(
        user.recv_text().await,
        r#"{"status":200,"event":"notice","info":"hi","param":{"x":1}}"#
    );
}

#[tokio::test]
async fn each_command_answers_as_its_websocket_form_does() {
    let host = TestHost::start("").await;
    let mut user = host.connect_user().await;
    let mut wall = host.connect(&format!("/?auth={VECTOR_WALL}")).await;
    user.call(&json!({"method": "live.user.join"}))
        .await
        .assert_is(200, "userJoinSuccess");

    let said = post(&host, "/api/say", r#"{"say":"hello"}"#).await;
    assert_eq!(said.status, 200);
    assert_eq!(
        said.text(),
        host.manager(&json!({"method": "say", "say": "hello"}))
            .await
            .text
    );
    for client in [&mut user, &mut wall] {
        for _ in 0..2 {
            let got = client.expect_envelope(200, "serverBroadcast").await;
            assert_eq!(got.param(), Some(&json!("hello")));
        }
    }

    // The path names the command: a body `method` is ignored.
    let broadcast =
        json!({"method": "say", "key": "LIVE_USER_ROOM_demo", "event": "x", "info": "y"});
    let reply = post(&host, "/api/broadcast", &broadcast.to_string()).await;
    assert_eq!(reply.status, 200);
    assert_eq!(
        envelope(&reply),
        json!({"status": 200, "event": "broadcastSuccess", "info": "执行完成", "param": {"local": 1, "nodes": 0, "members": 1}})
    );
    user.expect_envelope(200, "x").await;
    wall.expect_silence(QUIET).await;

    // An empty body is `{}`.
    let status = envelope(&post(&host, "/api/status", "").await);
    assert_eq!(status["event"], json!("statusSuccess"), "{status}");
    assert_eq!(status["param"]["connections"], json!(2), "{status}");
    let reload = envelope(&post(&host, "/api/reload", "").await);
    assert_eq!(reload["event"], json!("reloadSuccess"), "{reload}");
    // A command's own refusal is an envelope with HTTP 200, as on the WebSocket.
    let reply = post(&host, "/api/say", "").await;
    assert_eq!(reply.status, 200);
    assert_eq!(
        (
            envelope(&reply)["status"].clone(),
            envelope(&reply)["event"].clone()
        ),
        (json!(401), json!("badParameter"))
    );
}

#[tokio::test]
async fn bad_json_is_400_and_unknown_paths_and_methods_are_refused() {
    let host = TestHost::start("").await;
    for body in ["{not json", "[1,2]", "\"say\""] {
        let reply = post(&host, "/api/say", body).await;
        assert_eq!(reply.status, 400, "{body}: {}", reply.text());
        assert_eq!(envelope(&reply)["event"], json!("badRequest"), "{body}");
    }
    // There is no stop over HTTP, and no other command or path.
    for path in [
        "/api/stop",
        "/api/dance",
        "/api/",
        "/api",
        "/",
        "/metrics/x",
    ] {
        let reply = post(&host, path, "{}").await;
        assert_eq!(reply.status, 404, "{path}: {}", reply.text());
    }
    let reply = http_request(host.manager, "GET", "/api/status", &[], "").await;
    assert_eq!(reply.status, 405, "{}", reply.text());
    assert_eq!(reply.header("allow"), Some("POST"));
    let reply = post(&host, "/metrics", "").await;
    assert_eq!(reply.status, 405, "{}", reply.text());
    assert_eq!(reply.header("allow"), Some("GET"));
    let reply = http_request(
        host.manager,
        "POST",
        "/api/status",
        &[("Origin", "http://example.com")],
        "{}",
    )
    .await;
    assert_eq!(reply.status, 403, "{}", reply.text());
    // Still alive and answering.
    assert_eq!(post(&host, "/api/status", "").await.status, 200);
}

#[tokio::test]
async fn a_body_over_the_limit_is_400_too_large_and_a_chunked_one_411() {
    let host = TestHost::start("[manager]\nmax_message_bytes = 1000").await;
    let mut user = host.connect_user().await;
    let say = json!({"say": "x".repeat(1000)}).to_string();
    let reply = post(&host, "/api/say", &say).await;
    assert_eq!(reply.status, 400, "{}", reply.text());
    assert_eq!(envelope(&reply)["event"], json!("tooLarge"));
    // 32 MiB, which the client is still sending when the answer comes.
    let huge = json!({"say": "x".repeat(32 * 1024 * 1024)}).to_string();
    let reply = post(&host, "/api/say", &huge).await;
    assert_eq!(reply.status, 400, "{}", reply.text());
    assert_eq!(envelope(&reply)["event"], json!("tooLarge"));
    user.expect_silence(QUIET).await;
    let fits = json!({"say": "x".repeat(900)}).to_string();
    assert_eq!(
        envelope(&post(&host, "/api/say", &fits).await)["event"],
        json!("saySuccess")
    );
    user.expect_envelope(200, "serverBroadcast").await;

    let chunked = "POST /api/status HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n2\r\n{}\r\n0\r\n\r\n";
    let reply = http_raw(host.manager, chunked).await;
    assert_eq!(reply.status, 411, "{}", reply.text());
}

#[tokio::test]
async fn a_frame_larger_than_clients_may_receive_is_400_too_large() {
    let host = TestHost::start("[limits]\nmax_message_bytes = 1000").await;
    let mut user = host.connect_user().await;
    let fd = user.fd().await;
    for (path, body) in [
        ("/api/say", json!({"say": "x".repeat(1000)})),
        (
            "/api/push",
            json!({"fd": fd, "event": "e", "param": "x".repeat(1000)}),
        ),
        (
            "/api/broadcast",
            json!({"key": "LIVE_USER_ROOM_demo", "param": "x".repeat(1000)}),
        ),
    ] {
        let reply = post(&host, path, &body.to_string()).await;
        assert_eq!(reply.status, 400, "{path}: {}", reply.text());
        assert_eq!(envelope(&reply)["event"], json!("tooLarge"), "{path}");
    }
    user.expect_silence(QUIET).await;
}

#[tokio::test]
async fn with_a_token_every_request_needs_the_bearer_header() {
    let host = TestHost::start("[manager]\ntoken = \"s3cret\"").await;
    let wrong: [&[(&str, &str)]; 4] = [
        &[],
        &[("Authorization", "Bearer wrong")],
        &[("Authorization", "s3cret")],
        &[("Authorization", "Basic czNjcmV0")],
    ];
    for headers in wrong {
        for (method, path) in [("POST", "/api/status"), ("GET", "/metrics")] {
            let reply = http_request(host.manager, method, path, headers, "").await;
            assert_eq!(
                reply.status,
                401,
                "{method} {path} {headers:?}: {}",
                reply.text()
            );
            assert_eq!(reply.header("www-authenticate"), Some("Bearer"));
        }
    }
    // Refused before its body is read, a client still gets the answer, not a reset.
    let big = json!({"say": "x".repeat(32 * 1024 * 1024)}).to_string();
    let reply = post(&host, "/api/say", &big).await;
    assert_eq!(reply.status, 401, "{}", reply.text());
    // A body token is not accepted over HTTP.
    let reply = post(&host, "/api/status", r#"{"token":"s3cret"}"#).await;
    assert_eq!(reply.status, 401, "{}", reply.text());

    let bearer = [("Authorization", "Bearer s3cret")];
    let reply = http_request(host.manager, "POST", "/api/status", &bearer, "").await;
    assert_eq!(reply.status, 200, "{}", reply.text());
    assert_eq!(envelope(&reply)["event"], json!("statusSuccess"));
    let metrics = http_request(host.manager, "GET", "/metrics", &bearer, "").await;
    assert_eq!(metrics.status, 200);
    assert!(
        metrics.text().contains("mswoole_connections 0"),
        "{}",
        metrics.text()
    );
    // The scheme is case-insensitive (RFC 7235 §2.1): backends send `bearer` too.
    for scheme in ["bearer", "BEARER"] {
        let header = [("Authorization", format!("{scheme} s3cret"))];
        let header = [(header[0].0, header[0].1.as_str())];
        let reply = http_request(host.manager, "POST", "/api/status", &header, "").await;
        assert_eq!(reply.status, 200, "{scheme}: {}", reply.text());
    }
}
