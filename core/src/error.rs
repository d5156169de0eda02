//! Every way a client message can fail, and the one place each becomes an envelope.
//!
//! As in axum, an error knows its status and the text that is safe to show; the
//! detail (a panic message, a Redis error) is for the log and never reaches the
//! client. The conversion does not log: the caller does, once.

use std::fmt;

use crate::envelope::Envelope;

/// Why a message got no regular reply.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CallError {
    /// The frame is not a JSON object with a string `method`: 400 `badRequest`.
    BadRequest,
    /// No module or controller by that name: 404 `controllerNotFound`.
    ControllerNotFound,
    /// The controller has no such action and no `onMessage`: 405 `methodNotFound`.
    MethodNotFound,
    /// The module refused the request and chose what the client sees.
    Refused {
        /// Status of the envelope.
        status: u16,
        /// Event of the envelope.
        event: String,
        /// Info of the envelope.
        info: String,
    },
    /// The connection sends faster than `limits.messages_per_s` allows: 429
    /// `tooManyRequests`, and the message is dropped.
    TooManyRequests,
    /// The registry cannot be reached: 503 `unavailable`.
    Unavailable(String),
    /// The registry refused a write: 501 `storageError`.
    Storage(String),
    /// The module failed: 500 `controllerError`.
    Failed(String),
    /// The module panicked: 500 `controllerError`.
    Panicked(String),
    /// The module did not answer within `limits.call_timeout_ms`: 500 `controllerError`.
    Timeout(u64),
}

impl CallError {
    /// The envelope the client gets.
    pub fn envelope(&self) -> Envelope {
        match self {
            CallError::BadRequest => Envelope::new(400, "badRequest", "请求格式错误"),
            CallError::ControllerNotFound => {
                Envelope::new(404, "controllerNotFound", "控制器不存在")
            }
            CallError::MethodNotFound => Envelope::new(405, "methodNotFound", "方法不存在"),
            CallError::Refused {
                status,
                event,
                info,
            } => Envelope::new(*status, event, info),
            CallError::TooManyRequests => Envelope::new(429, "tooManyRequests", "请求过于频繁"),
            CallError::Unavailable(_) => Envelope::new(503, "unavailable", "服务暂不可用"),
            CallError::Storage(_) => Envelope::new(501, "storageError", "存储错误"),
            CallError::Failed(_) | CallError::Panicked(_) | CallError::Timeout(_) => {
                Envelope::new(500, "controllerError", "控制器执行错误")
            }
        }
    }

    /// Whether an operator should hear about it (the module or the registry misbehaved).
    pub fn is_internal(&self) -> bool {
        matches!(
            self,
            CallError::Unavailable(_)
                | CallError::Storage(_)
                | CallError::Failed(_)
                | CallError::Panicked(_)
                | CallError::Timeout(_)
        )
    }
}

impl fmt::Display for CallError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CallError::BadRequest => f.write_str("bad request"),
            CallError::ControllerNotFound => f.write_str("controller not found"),
            CallError::MethodNotFound => f.write_str("method not found"),
            CallError::Refused { status, event, .. } => write!(f, "refused: {status} {event}"),
            CallError::TooManyRequests => f.write_str("too many requests"),
            CallError::Unavailable(detail) => write!(f, "unavailable: {detail}"),
            CallError::Storage(detail) => write!(f, "storage error: {detail}"),
            CallError::Failed(detail) => write!(f, "module failed: {detail}"),
            CallError::Panicked(detail) => write!(f, "module panicked: {detail}"),
            CallError::Timeout(ms) => write!(f, "module did not answer within {ms} ms"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn internal_detail_never_reaches_the_envelope() {
        let error = CallError::Panicked("secret stack detail".into());
        let text = error.envelope().to_json();
        assert_eq!(
            text,
            r#"{"status":500,"event":"controllerError","info":"控制器执行错误"}"#
        );
        assert!(error.is_internal());
    }

    #[test]
    fn the_rate_limit_answers_429_and_is_not_an_operator_error() {
        let error = CallError::TooManyRequests;
        assert_eq!(
            error.envelope().to_json(),
            r#"{"status":429,"event":"tooManyRequests","info":"请求过于频繁"}"#
        );
        assert!(!error.is_internal());
    }

    #[test]
    fn a_refusal_is_shown_as_the_module_chose() {
        let error = CallError::Refused {
            status: 999,
            event: "codeIsEmpty".into(),
            info: "x".into(),
        };
        assert_eq!(
            error.envelope().to_json(),
            r#"{"status":999,"event":"codeIsEmpty","info":"x"}"#
        );
        assert!(!error.is_internal());
    }
}
