//! The manager's HTTP form, for backends and Prometheus (README.md, "HTTP API" and
//! "Metrics"): `POST /api/<command>` with the WebSocket command's JSON as the body,
//! and `GET /metrics`.
//!
//! The path names the command (a body `method` is ignored, an empty body is `{}`), and
//! the answer is the WebSocket form's envelope with HTTP 200. `stop` has no HTTP form:
//! a backend should not be able to stop the host. With `manager.token` set, every
//! request — `/metrics` too — needs `Authorization: Bearer <token>`; a body `token`
//! does not count. One request per connection: the answer says `Connection: close`.
//!
//! The head is parsed with `httparse` by the reader the outside port uses
//! (`host/src/edge/handshake.rs`); a body is read by its `Content-Length` only, which is
//! what curl and backends' HTTP clients send for a JSON body, so a chunked body gets
//! 411. A body over `manager.max_message_bytes` is refused from its `Content-Length`
//! before it is read.

use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::TcpStream,
};

use serde_json::{Map, Value};

use super::access::{drain, token_matches, Manager, COMMAND_TIMEOUT};
use super::command::{self, Answer, Command};
use crate::{
    edge::handshake::{self, Head},
    envelope::Envelope,
};

/// Commands a backend may send over HTTP.
const API: [&str; 5] = ["push", "broadcast", "say", "status", "reload"];

/// What the path asks for.
enum Target {
    /// `GET /metrics`.
    Metrics,
    /// `POST /api/<command>`.
    Command(&'static str),
}

/// One HTTP request to the manager port, answered, then the connection closed.
pub async fn request(manager: &Manager, mut socket: TcpStream, head: Head, rest: Vec<u8>) {
    let bearer = head.header("authorization").and_then(bearer_token);
    if !token_matches(manager, bearer) {
        let refusal = Answer::refused(Envelope::new(401, "unauthorized", "token 错误"));
        return refuse(&mut socket, &refusal, &[("WWW-Authenticate", "Bearer")]).await;
    }
    let target = match head.path.as_str() {
        "/metrics" => Target::Metrics,
        path => match path
            .strip_prefix("/api/")
            .and_then(|name| API.iter().find(|&&api| api == name))
        {
            Some(name) => Target::Command(name),
            None => {
                let refusal = Answer::refused(Envelope::new(404, "notFound", "未知路径"));
                return refuse(&mut socket, &refusal, &[]).await;
            }
        },
    };
    let allowed = match target {
        Target::Metrics => "GET",
        Target::Command(_) => "POST",
    };
    if head.method != allowed {
        let refusal = Answer::refused(Envelope::new(405, "methodNotAllowed", "请求方法错误"));
        return refuse(&mut socket, &refusal, &[("Allow", allowed)]).await;
    }
    let name = match target {
        Target::Metrics => {
            let text = manager.metrics.render(manager.sessions.connections());
            let content_type = "text/plain; version=0.0.4; charset=utf-8";
            let _ = handshake::respond(&mut socket, 200, &[], content_type, &text).await;
            return;
        }
        Target::Command(name) => name,
    };
    let body = match read_body(manager, &mut socket, &head, rest).await {
        Ok(body) => body,
        Err(Refused {
            answer: refusal,
            drain: true,
        }) => return refuse(&mut socket, &refusal, &[]).await,
        Err(Refused {
            answer: refusal, ..
        }) => return answer(&mut socket, &refusal, &[]).await,
    };
    let reply = match Command::parse(name, &body, manager.config.limits.max_message_bytes) {
        Ok(command) => command.execute(manager).await,
        Err(refusal) => refusal,
    };
    answer(&mut socket, &reply, &[]).await;
}

/// The token of an `Authorization: Bearer <token>` header; the scheme's case does not
/// matter (RFC 7235 §2.1).
fn bearer_token(value: &str) -> Option<&str> {
    let (scheme, token) = value.trim().split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then_some(token.trim())
}

/// A request refused before its command ran.
struct Refused {
    answer: Answer,
    /// The client may still be sending its body.
    drain: bool,
}

impl From<Answer> for Refused {
    fn from(answer: Answer) -> Self {
        Refused {
            answer,
            drain: false,
        }
    }
}

/// Reads the body by its `Content-Length` and parses it as a JSON object (empty = `{}`).
async fn read_body(
    manager: &Manager,
    socket: &mut TcpStream,
    head: &Head,
    mut body: Vec<u8>,
) -> Result<Map<String, Value>, Refused> {
    if head.header("transfer-encoding").is_some() {
        return Err(
            Answer::refused(Envelope::new(411, "lengthRequired", "需要 Content-Length")).into(),
        );
    }
    let length = match head.header("content-length").map(str::trim) {
        None => 0,
        Some(value) => value
            .parse::<usize>()
            .map_err(|_| Refused::from(Answer::bad_request()))?,
    };
    let max = manager.config.manager.max_message_bytes;
    if length > max {
        return Err(Refused {
            answer: Answer::too_large(max),
            drain: true,
        });
    }
    let expects_continue = head
        .header("expect")
        .is_some_and(|expect| expect.trim().eq_ignore_ascii_case("100-continue"));
    if expects_continue && body.len() < length {
        let _ = socket.write_all(b"HTTP/1.1 100 Continue\r\n\r\n").await;
    }
    let reading = async {
        let mut chunk = [0u8; 16 * 1024];
        while body.len() < length {
            match socket.read(&mut chunk).await {
                Ok(0) | Err(_) => return false,
                Ok(read) => body.extend_from_slice(&chunk[..read]),
            }
        }
        true
    };
    if !matches!(
        tokio::time::timeout(COMMAND_TIMEOUT, reading).await,
        Ok(true)
    ) {
        return Err(Answer::bad_request().into());
    }
    body.truncate(length);
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(Map::new());
    }
    command::object(&body).map_err(Refused::from)
}

/// Answers a request whose body was not read, then reads and drops what the client
/// still sends, so that it gets the answer rather than a reset.
async fn refuse(socket: &mut TcpStream, refusal: &Answer, headers: &[(&str, &str)]) {
    answer(socket, refusal, headers).await;
    drain(socket).await;
}

/// Writes an answer as HTTP: its status, its envelope as JSON.
async fn answer(socket: &mut TcpStream, answer: &Answer, headers: &[(&str, &str)]) {
    let content_type = "application/json; charset=utf-8";
    let _ = handshake::respond(
        socket,
        answer.http,
        headers,
        content_type,
        &answer.to_json(),
    )
    .await;
}

#[cfg(test)]
mod tests {
    use super::bearer_token;

    #[test]
    fn the_bearer_scheme_ignores_case() {
        for header in [
            "Bearer s3cret",
            "bearer s3cret",
            "BEARER  s3cret ",
            " Bearer s3cret",
        ] {
            assert_eq!(bearer_token(header), Some("s3cret"), "{header:?}");
        }
        assert_eq!(bearer_token("Basic s3cret"), None);
        assert_eq!(bearer_token("Bearer"), None);
    }
}
