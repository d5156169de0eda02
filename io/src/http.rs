//! HTTP for modules: one request, bounded in time and in size.
//!
//! Why in the host: a module owns no socket (docs/HTTP.md), so the host makes HTTP requests for
//! it. A module can rely on three promises: the call ends by its deadline (`Timeout`), an answer
//! larger than `limits.http_max_response_bytes` is refused (`TooLarge`) rather than cut short,
//! and redirects are returned, not followed (the module decides whether to go there).
//!
//! How: `reqwest` (hyper underneath, rustls for https) with one shared connection pool; the body is
//! read chunk by chunk so an oversize answer is dropped as soon as it crosses the limit.

use std::time::Duration;

use base64::Engine;
use tokio::time::{timeout_at, Instant};

use crate::databases::redact;
pub use mswoole_core::io::{Body, HttpReply, IoFailure, IoKind};

/// Makes requests for modules; cheap to share in an `Arc`.
pub struct HttpClient {
    /// The connection pool.
    client: reqwest::Client,
    /// `limits.http_max_response_bytes`.
    max_response_bytes: usize,
}

/// A failure of `kind`.
fn fail(kind: IoKind, detail: impl Into<String>) -> IoFailure {
    IoFailure::new(kind, detail)
}

/// The kind of a reqwest error.
fn kind_of(error: &reqwest::Error) -> IoKind {
    if error.is_timeout() {
        IoKind::Timeout
    } else if error.is_builder() {
        IoKind::BadUrl
    } else {
        // Connect errors, resets, protocol errors: the other side cannot be talked to.
        IoKind::Unreachable
    }
}

impl HttpClient {
    /// A client whose answers may be at most `max_response_bytes` long.
    pub fn new(max_response_bytes: usize) -> Result<HttpClient, String> {
        let client = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|e| format!("cannot build the HTTP client: {e}"))?;
        Ok(HttpClient {
            client,
            max_response_bytes,
        })
    }

    /// Sends one request and reads the whole answer within `timeout_ms`.
    pub async fn request(
        &self,
        method: &str,
        url: &str,
        headers: &[(String, String)],
        body: Body,
        timeout_ms: u64,
    ) -> Result<HttpReply, IoFailure> {
        let deadline = Instant::now() + Duration::from_millis(timeout_ms);
        let parsed = reqwest::Url::parse(url)
            .map_err(|e| fail(IoKind::BadUrl, format!("{:?}: {e}", redact(url))))?;
        if !matches!(parsed.scheme(), "http" | "https") || parsed.host_str().is_none() {
            return Err(fail(
                IoKind::BadUrl,
                format!(
                    "{:?}: only http:// and https:// URLs with a host",
                    redact(url)
                ),
            ));
        }
        let method = reqwest::Method::from_bytes(method.trim().to_ascii_uppercase().as_bytes())
            .map_err(|_| {
                fail(
                    IoKind::BadStatement,
                    format!("{method:?} is not an HTTP method"),
                )
            })?;
        let mut request = self.client.request(method, parsed);
        for (name, value) in headers {
            let name = reqwest::header::HeaderName::from_bytes(name.as_bytes()).map_err(|_| {
                fail(
                    IoKind::BadStatement,
                    format!("{name:?} is not a header name"),
                )
            })?;
            let value = reqwest::header::HeaderValue::from_str(value).map_err(|_| {
                fail(
                    IoKind::BadStatement,
                    format!("the value of {name} is not a header value"),
                )
            })?;
            request = request.header(name, value);
        }
        request = match body {
            Body::None => request,
            Body::Text(text) => request.body(text),
            Body::Base64(encoded) => request.body(
                base64::engine::general_purpose::STANDARD
                    .decode(encoded.trim())
                    .map_err(|e| fail(IoKind::BadStatement, format!("body_base64: {e}")))?,
            ),
        };
        let work = async {
            let mut response = request
                .send()
                .await
                .map_err(|e| fail(kind_of(&e), e.without_url().to_string()))?;
            let status = response.status().as_u16();
            let headers = response
                .headers()
                .iter()
                .map(|(k, v)| {
                    (
                        k.as_str().to_string(),
                        String::from_utf8_lossy(v.as_bytes()).into_owned(),
                    )
                })
                .collect();
            if let Some(length) = response.content_length() {
                if length > u64::try_from(self.max_response_bytes).unwrap_or(u64::MAX) {
                    return Err(self.too_large(length));
                }
            }
            let mut bytes = Vec::new();
            while let Some(chunk) = response
                .chunk()
                .await
                .map_err(|e| fail(kind_of(&e), e.without_url().to_string()))?
            {
                if bytes.len() + chunk.len() > self.max_response_bytes {
                    return Err(self
                        .too_large(u64::try_from(bytes.len() + chunk.len()).unwrap_or(u64::MAX)));
                }
                bytes.extend_from_slice(&chunk);
            }
            let (body, body_base64) = match String::from_utf8(bytes) {
                Ok(text) => (text, None),
                Err(e) => (
                    String::new(),
                    Some(base64::engine::general_purpose::STANDARD.encode(e.as_bytes())),
                ),
            };
            Ok(HttpReply {
                status,
                headers,
                body,
                body_base64,
            })
        };
        timeout_at(deadline, work).await.unwrap_or_else(|_| {
            Err(fail(
                IoKind::Timeout,
                format!(
                    "{:?}: no complete answer within {timeout_ms} ms",
                    redact(url)
                ),
            ))
        })
    }

    /// `TooLarge` for an answer of (at least) `length` bytes.
    fn too_large(&self, length: u64) -> IoFailure {
        fail(
            IoKind::TooLarge,
            format!(
                "the answer has at least {length} bytes, over limits.http_max_response_bytes = {}",
                self.max_response_bytes
            ),
        )
    }
}

#[cfg(test)]
mod tests;
