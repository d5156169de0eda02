//! The HTTP client against a small HTTP server on 127.0.0.1 started by each test.

use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

use super::*;

/// The test limit on answers.
const MAX: usize = 1024;

/// Reads one request head and body; returns (method, path, head text, body).
async fn read_request(socket: &mut TcpStream) -> (String, String, String, Vec<u8>) {
    let mut data = Vec::new();
    let mut buf = [0u8; 4096];
    let head_end = loop {
        let n = socket.read(&mut buf).await.unwrap_or(0);
        if n == 0 {
            break data.len();
        }
        data.extend_from_slice(&buf[..n]);
        if let Some(at) = data.windows(4).position(|w| w == b"\r\n\r\n") {
            break at + 4;
        }
    };
    let head = String::from_utf8_lossy(&data[..head_end]).to_string();
    let length: usize = head
        .lines()
        .find_map(|l| {
            l.to_ascii_lowercase()
                .strip_prefix("content-length:")
                .map(|v| v.trim().parse().unwrap_or(0))
        })
        .unwrap_or(0);
    let mut body = data[head_end..].to_vec();
    while body.len() < length {
        let n = socket.read(&mut buf).await.unwrap_or(0);
        if n == 0 {
            break;
        }
        body.extend_from_slice(&buf[..n]);
    }
    let mut first = head.lines().next().unwrap_or_default().split(' ');
    let method = first.next().unwrap_or_default().to_string();
    let path = first.next().unwrap_or_default().to_string();
    (method, path, head, body)
}

/// Answers one request according to its path.
async fn answer(mut socket: TcpStream) {
    let (method, path, head, body) = read_request(&mut socket).await;
    let plain = |status: &str, headers: &str, body: &[u8]| {
        let mut out = format!(
            "HTTP/1.1 {status}\r\ncontent-length: {}\r\n{headers}connection: close\r\n\r\n",
            body.len()
        )
        .into_bytes();
        out.extend_from_slice(body);
        out
    };
    let reply = match path.as_str() {
        "/text" => plain(
            "200 OK",
            "x-test: yes\r\nx-test: again\r\n",
            "héllo".as_bytes(),
        ),
        "/binary" => plain("201 Created", "", &[0, 255, 1]),
        "/big" => plain("200 OK", "", &vec![b'a'; MAX + 1]),
        "/exact" => plain("200 OK", "", &vec![b'a'; MAX]),
        "/redirect" => plain("302 Found", "location: /text\r\n", b""),
        "/echo" => {
            let mut text = format!("{method}\n{}\n", head.to_ascii_lowercase()).into_bytes();
            text.extend_from_slice(&body);
            plain("200 OK", "", &text)
        }
        "/slow" => {
            tokio::time::sleep(Duration::from_secs(3)).await;
            plain("200 OK", "", b"late")
        }
        "/chunked-big" => {
            // No length: the client only learns the size while reading.
            let _ = socket
                .write_all(b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n")
                .await;
            for _ in 0..8 {
                let _ = socket.write_all(b"100\r\n").await;
                let _ = socket.write_all(&[b'b'; 256]).await;
                let _ = socket.write_all(b"\r\n").await;
            }
            let _ = socket.write_all(b"0\r\n\r\n").await;
            return;
        }
        _ => plain("404 Not Found", "", b"no"),
    };
    let _ = socket.write_all(&reply).await;
    let _ = socket.shutdown().await;
}

/// A server on 127.0.0.1 answering every connection; returns its base URL.
async fn server() -> String {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("address");
    tokio::spawn(async move {
        while let Ok((socket, _)) = listener.accept().await {
            tokio::spawn(answer(socket));
        }
    });
    format!("http://{addr}")
}

fn client() -> HttpClient {
    HttpClient::new(MAX).expect("client")
}

#[tokio::test]
async fn text_binary_headers_and_redirects() {
    let base = server().await;
    let http = client();
    let reply = http
        .request("get", &format!("{base}/text"), &[], Body::None, 2000)
        .await
        .expect("text");
    assert_eq!(
        (
            reply.status,
            reply.body.as_str(),
            reply.body_base64.as_deref()
        ),
        (200, "héllo", None)
    );
    let tests: Vec<&str> = reply
        .headers
        .iter()
        .filter(|(k, _)| k == "x-test")
        .map(|(_, v)| v.as_str())
        .collect();
    assert_eq!(
        tests,
        vec!["yes", "again"],
        "repeated headers kept in order"
    );
    let reply = http
        .request("GET", &format!("{base}/binary"), &[], Body::None, 2000)
        .await
        .expect("binary");
    assert_eq!(
        (
            reply.status,
            reply.body.as_str(),
            reply.body_base64.as_deref()
        ),
        (201, "", Some("AP8B"))
    );
    let reply = http
        .request("GET", &format!("{base}/redirect"), &[], Body::None, 2000)
        .await
        .expect("redirect");
    assert_eq!(reply.status, 302, "redirects are not followed");
    assert!(reply.headers.contains(&("location".into(), "/text".into())));
    let reply = http
        .request("GET", &format!("{base}/exact"), &[], Body::None, 2000)
        .await
        .expect("exactly the limit");
    assert_eq!(reply.body.len(), MAX);
}

#[tokio::test]
async fn request_headers_and_bodies_arrive() {
    let base = server().await;
    let http = client();
    let headers = vec![("X-Module".to_string(), "Vote".to_string())];
    let reply = http
        .request(
            "post",
            &format!("{base}/echo"),
            &headers,
            Body::Text("a=1&b=é".into()),
            2000,
        )
        .await
        .expect("echo");
    assert!(reply.body.starts_with("POST\n"), "{}", reply.body);
    assert!(reply.body.contains("x-module: vote"), "{}", reply.body);
    assert!(reply.body.ends_with("a=1&b=é"), "{}", reply.body);
    let reply = http
        .request(
            "PUT",
            &format!("{base}/echo"),
            &[],
            Body::Base64("AP8B".into()),
            2000,
        )
        .await
        .expect("bytes");
    let echoed = base64::engine::general_purpose::STANDARD
        .decode(reply.body_base64.expect("the echo holds bytes"))
        .expect("base64");
    assert!(echoed.starts_with(b"PUT\n") && echoed.ends_with(&[0, 255, 1]));
}

#[tokio::test]
async fn failures_have_kinds() {
    let base = server().await;
    let http = client();
    let e = http
        .request("GET", &format!("{base}/big"), &[], Body::None, 2000)
        .await
        .expect_err("big");
    assert_eq!(e.kind, IoKind::TooLarge, "{e}");
    let e = http
        .request("GET", &format!("{base}/chunked-big"), &[], Body::None, 2000)
        .await
        .expect_err("chunked");
    assert_eq!(e.kind, IoKind::TooLarge, "{e}");
    let started = Instant::now();
    let e = http
        .request("GET", &format!("{base}/slow"), &[], Body::None, 300)
        .await
        .expect_err("slow");
    assert_eq!(e.kind, IoKind::Timeout, "{e}");
    assert!(
        started.elapsed() < Duration::from_millis(2500),
        "waited for the answer"
    );
    let refused = format!("http://127.0.0.1:{}/", mswoole_tests::unused_port());
    let e = http
        .request("GET", &refused, &[], Body::None, 2000)
        .await
        .expect_err("refused");
    assert_eq!(e.kind, IoKind::Unreachable, "{e}");
    for url in ["not a url", "ftp://127.0.0.1/x", "http://", "mailto:a@b.c"] {
        let e = http
            .request("GET", url, &[], Body::None, 2000)
            .await
            .expect_err(url);
        assert_eq!(e.kind, IoKind::BadUrl, "{url}: {e}");
    }
    let e = http
        .request(
            "GET",
            &format!("http://user:hunter2@{}/text", &base[7..]),
            &[("bad name".into(), "x".into())],
            Body::None,
            2000,
        )
        .await
        .expect_err("header");
    assert_eq!(e.kind, IoKind::BadStatement, "{e}");
    let e = http
        .request("GE T", &format!("{base}/text"), &[], Body::None, 2000)
        .await
        .expect_err("method");
    assert_eq!(e.kind, IoKind::BadStatement, "{e}");
    let e = http
        .request(
            "POST",
            &format!("{base}/echo"),
            &[],
            Body::Base64("***".into()),
            2000,
        )
        .await
        .expect_err("base64");
    assert_eq!(e.kind, IoKind::BadStatement, "{e}");
}
