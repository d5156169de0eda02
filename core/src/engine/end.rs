//! Why a connection ends, what the client is told, and whether a resumable session
//! survives it (README.md, "Bad input" and "Resumable sessions").
//!
//! Every close code the host sends comes from [`CloseCode`]; every reason a connection
//! ends is an [`End`]. The host's connection driver and the module test kit map the same
//! events to the same `End`, so a module's tests see the host's close codes.

/// The close codes the host sends (RFC 6455 §7.4.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CloseCode {
    /// 1000: a normal close (idle, closed by a module or the manager).
    Normal,
    /// 1002: the client broke RFC 6455's framing rules.
    Protocol,
    /// 1003: a data type the host does not take (a binary frame).
    Unsupported,
    /// 1007: data that does not fit its type (not UTF-8, not a JSON object).
    InvalidData,
    /// 1008: a policy was broken (a slow consumer, over its rate).
    Policy,
    /// 1009: a message over `limits.max_message_bytes`.
    TooBig,
    /// 1012: the host is restarting (its stop's drain).
    Restart,
}

impl CloseCode {
    /// The number on the wire.
    pub fn code(self) -> u16 {
        match self {
            CloseCode::Normal => 1000,
            CloseCode::Protocol => 1002,
            CloseCode::Unsupported => 1003,
            CloseCode::InvalidData => 1007,
            CloseCode::Policy => 1008,
            CloseCode::TooBig => 1009,
            CloseCode::Restart => 1012,
        }
    }
}

/// How a failed read ends the connection (RFC 6455 §7.1.7: a broken frame fails it).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReadFailure {
    /// The client broke RFC 6455's framing rules: close 1002.
    Protocol,
    /// A text message (or a close reason) that is not UTF-8: close 1007.
    InvalidUtf8,
    /// A frame or message over `limits.max_message_bytes`: close 1009.
    TooBig,
    /// The client went away (reset, EOF inside a frame) or already closed: nothing to send.
    Gone,
}

impl ReadFailure {
    /// The close code and reason to send, if the client can still be told anything.
    pub fn close(self) -> Option<(CloseCode, &'static str)> {
        match self {
            ReadFailure::Protocol => Some((CloseCode::Protocol, "protocol error")),
            ReadFailure::InvalidUtf8 => Some((CloseCode::InvalidData, "invalid utf-8")),
            ReadFailure::TooBig => Some((CloseCode::TooBig, "message too big")),
            ReadFailure::Gone => None,
        }
    }
}

/// What the client sent that is not a message the host takes; it is answered 400
/// `badRequest` once the messages before it are answered, then the connection closes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BadInput {
    /// Text that is not a JSON object with a string `method` (if any): 1007.
    Text,
    /// A binary frame: 1003.
    Binary,
}

impl BadInput {
    /// The close code that follows the 400.
    pub fn code(self) -> CloseCode {
        match self {
            BadInput::Text => CloseCode::InvalidData,
            BadInput::Binary => CloseCode::Unsupported,
        }
    }
}

/// Why another part of the host wants a connection closed. Ordered by strength: when
/// several are made, the strongest wins.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum CloseRequest {
    /// A resume of its session arrived while this socket still looked open (half-open): the
    /// socket goes without a close sequence, the session moves to the new one. The weakest:
    /// any other request ends or detaches the session anyway.
    Takeover,
    /// A module or the manager closed it: 1000.
    Kick,
    /// The host is stopping (the drain, README.md "Stopping"): 1012 `service restart`.
    Shutdown,
    /// Its queue went past `limits.outbound_bytes`: 1008 `slow consumer`.
    SlowConsumer,
}

impl CloseRequest {
    /// Whether it detaches a resumable session rather than ending it: frames for it are
    /// then still kept.
    pub fn detaches(self) -> bool {
        matches!(self, CloseRequest::Takeover | CloseRequest::Shutdown)
    }
}

/// Why a connection ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum End {
    /// The client closed or went away: nothing more to send.
    ClientGone,
    /// Idle for `heartbeat.idle_s`: 1000 `idle timeout`.
    Idle,
    /// Reading failed: a broken frame (1002), text that is not UTF-8 (1007), a frame over
    /// `limits.max_message_bytes` (1009), or the client went away.
    ReadFailed(ReadFailure),
    /// Bad input: a 400 envelope (already sent), then 1003 or 1007.
    BadInput(BadInput),
    /// The host is stopping (its drain reached this client): 1012 `service restart`.
    Shutdown,
    /// A module or the manager closed it: 1000.
    Kicked,
    /// The client's queue went past `limits.outbound_bytes`, or its socket took nothing
    /// for `limits.slow_consumer_s`: 1008 `slow consumer`.
    SlowConsumer,
    /// Over `limits.messages_per_s` for `limits.rate_close_after_s`: 1008 `rate limit`.
    RateLimited,
    /// A resume of its session took it over (the socket looked open but was not): the
    /// socket goes without a word, the session lives on.
    TakenOver,
}

impl From<CloseRequest> for End {
    fn from(request: CloseRequest) -> Self {
        match request {
            CloseRequest::Kick => End::Kicked,
            CloseRequest::Shutdown => End::Shutdown,
            CloseRequest::SlowConsumer => End::SlowConsumer,
            CloseRequest::Takeover => End::TakenOver,
        }
    }
}

impl End {
    /// The close code and reason the client is sent, if it can be told anything.
    pub fn close(self) -> Option<(CloseCode, &'static str)> {
        Some(match self {
            End::ClientGone | End::TakenOver => return None,
            End::ReadFailed(failure) => return failure.close(),
            End::Idle => (CloseCode::Normal, "idle timeout"),
            End::BadInput(bad) => (bad.code(), "bad request"),
            End::Shutdown => (CloseCode::Restart, "service restart"),
            End::Kicked => (CloseCode::Normal, "closed by server"),
            End::SlowConsumer => (CloseCode::Policy, "slow consumer"),
            End::RateLimited => (CloseCode::Policy, "rate limit"),
        })
    }

    /// Whether this end detaches a resumable session instead of ending it (README.md,
    /// "Resumable sessions"): the socket went without a close frame from the client (a
    /// reset, an EOF; `echoed` is the code of one that came), it was idle, the drain
    /// closed it, or a resume took it over. A close frame from the client, a close by a
    /// module or the manager, bad input and the limits end the session.
    pub fn detaches(self, echoed: Option<u16>) -> bool {
        match self {
            End::ClientGone => echoed.is_none(),
            End::ReadFailed(failure) => failure.close().is_none() && echoed.is_none(),
            End::Idle | End::Shutdown | End::TakenOver => true,
            End::BadInput(_) | End::Kicked | End::SlowConsumer | End::RateLimited => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_end_has_its_close_code() {
        let code = |end: End| end.close().map(|(code, reason)| (code.code(), reason));
        assert_eq!(code(End::Idle), Some((1000, "idle timeout")));
        assert_eq!(code(End::Kicked), Some((1000, "closed by server")));
        assert_eq!(code(End::Shutdown), Some((1012, "service restart")));
        assert_eq!(
            code(End::BadInput(BadInput::Text)),
            Some((1007, "bad request"))
        );
        assert_eq!(
            code(End::BadInput(BadInput::Binary)),
            Some((1003, "bad request"))
        );
        assert_eq!(code(End::SlowConsumer), Some((1008, "slow consumer")));
        assert_eq!(code(End::RateLimited), Some((1008, "rate limit")));
        assert_eq!(
            code(End::ReadFailed(ReadFailure::TooBig)),
            Some((1009, "message too big"))
        );
        assert_eq!(code(End::ClientGone), None);
        assert_eq!(code(End::TakenOver), None);
    }

    #[test]
    fn only_a_silent_drop_idle_the_drain_and_a_takeover_detach() {
        assert!(End::ClientGone.detaches(None));
        assert!(
            !End::ClientGone.detaches(Some(1000)),
            "a close frame from the client ends it"
        );
        assert!(End::ReadFailed(ReadFailure::Gone).detaches(None));
        assert!(!End::ReadFailed(ReadFailure::Protocol).detaches(None));
        assert!(End::Idle.detaches(None) && End::Shutdown.detaches(None));
        assert!(End::TakenOver.detaches(None));
        for end in [
            End::Kicked,
            End::SlowConsumer,
            End::RateLimited,
            End::BadInput(BadInput::Text),
        ] {
            assert!(!end.detaches(None), "{end:?}");
        }
    }

    #[test]
    fn the_strongest_close_request_wins() {
        let mut requests = [
            CloseRequest::Kick,
            CloseRequest::SlowConsumer,
            CloseRequest::Takeover,
            CloseRequest::Shutdown,
        ];
        requests.sort();
        assert_eq!(
            requests,
            [
                CloseRequest::Takeover,
                CloseRequest::Kick,
                CloseRequest::Shutdown,
                CloseRequest::SlowConsumer
            ]
        );
        assert!(CloseRequest::Shutdown.detaches() && CloseRequest::Takeover.detaches());
        assert!(!CloseRequest::Kick.detaches() && !CloseRequest::SlowConsumer.detaches());
    }
}
