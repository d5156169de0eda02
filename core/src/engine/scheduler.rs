//! One connection's messages, in order, without the socket.
//!
//! Why a state machine: the host's connection task and the module test kit must answer
//! the same client the same way — the ack first, one call at a time in arrival order,
//! `2` answered at once, bad input answered 400 after the messages before it, a message
//! over the rate answered 429 in its turn, a close request taking effect when the
//! connection would wait. Written once here, both drive it: they feed it what the client
//! sent and what other parts asked, ask it for the next [`Step`], and do the I/O.
//!
//! How: [`Scheduler::text`] and [`Scheduler::binary`] take frames as they arrive;
//! [`Scheduler::step`] says what to write next, when to wait, and when the connection
//! ends. A call that needs nothing from the host is done on its first poll and answered
//! at once; one that waits stays in flight, and the driver polls it with
//! [`Scheduler::poll_call`] while it goes on reading (so `2` and the idle timer still
//! work) and writing what other connections queue for this one.

use std::{
    borrow::Cow,
    collections::VecDeque,
    future::Future,
    pin::Pin,
    task::{Context, Poll, Waker},
};

use serde_json::{Map, Value};

use super::{
    end::{BadInput, CloseRequest, End},
    rate::{Rate, Verdict},
};
use crate::{
    envelope::Envelope,
    error::CallError,
    identity::Identity,
    message::{self, Inbound},
    router::{self, Route},
};

/// The acknowledgement every valid message gets first (MSwoole's text), prebuilt.
pub const ACK: &str =
    r#"{"status":200,"event":"receiveMessage","info":"服务端已收到您的请求内容"}"#;

/// The answer to the application-level ping `2`.
pub const PONG: &str = "3";

/// Messages that may wait behind the call in progress before reading pauses.
pub const MAX_PENDING: usize = 32;

/// What a call comes to: a reply, nothing, or an error that becomes an envelope.
pub type CallOutcome = Result<Option<Envelope>, CallError>;

/// A call in flight.
pub type CallFuture = Pin<Box<dyn Future<Output = CallOutcome> + Send>>;

/// How a connection reaches its modules: the host through its plugin table, the kit
/// through the modules it loaded.
pub trait Dispatch {
    /// A resolved route: the module version that serves it and the names it gets.
    type Target;

    /// The version serving `route` and its names, or 404/405.
    fn resolve(&self, route: &Route) -> Result<Self::Target, CallError>;

    /// Calls the module with the prepared message (JSON text); the future is bounded by
    /// `limits.call_timeout_ms`.
    fn call(&self, target: Self::Target, fd: &str, message: String) -> CallFuture;
}

/// Where a connection's answers are recorded: the host's metrics and log, the kit's log.
pub trait Observe {
    /// A routed message was answered with `status` (`None`: the module sent no reply);
    /// `failure` is an internal error, for the operator's log (never the client's).
    fn answered(&mut self, route: Option<&Route>, status: Option<u16>, failure: Option<&CallError>);
}

/// What the driver does next.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    /// Write this text frame to the client.
    Write(Cow<'static, str>),
    /// Nothing to do until the client sends, the call in flight finishes, another part
    /// queues a frame or asks for a close.
    Wait,
    /// The connection ends.
    End(End),
}

/// A message waiting for its turn: `(method, body)`, or `None` for one over the rate.
type Pending = Option<(String, Map<String, Value>)>;

/// The call of the message being answered.
struct InFlight {
    /// The route, for the log (`None`: the message never reached a module).
    route: Option<Route>,
    /// Running, or done and not yet written.
    state: CallState,
}

enum CallState {
    Running(CallFuture),
    Done(CallOutcome),
}

/// One connection's scheduler.
pub struct Scheduler<R> {
    /// `limits.messages_per_s`, counted as messages arrive.
    rate: R,
    /// Messages waiting for the call in progress.
    pending: VecDeque<Pending>,
    /// The call in progress; boxed, as an idle connection has none.
    call: Option<Box<InFlight>>,
    /// `2`s received and not yet answered.
    pongs: u32,
    /// The ack of the message just started is due.
    ack_due: bool,
    /// Bad input seen; answered once the messages before it are.
    bad_input: Option<BadInput>,
    /// The 400 for the bad input was written: the connection ends next.
    bad_answered: bool,
    /// A close request from another part of the host; the strongest wins.
    closing: Option<CloseRequest>,
    /// `protocol.ack`.
    ack: bool,
    /// `protocol.escape_html`.
    escape: bool,
}

impl<R: Rate> Scheduler<R> {
    /// A connection's scheduler with `protocol.ack`, `protocol.escape_html` and its rate.
    pub fn new(ack: bool, escape: bool, rate: R) -> Self {
        Scheduler {
            rate,
            pending: VecDeque::new(),
            call: None,
            pongs: 0,
            ack_due: false,
            bad_input: None,
            bad_answered: false,
            closing: None,
            ack,
            escape,
        }
    }

    /// A text frame from the client; `Some` when it ends the connection at once (over its
    /// rate for too long).
    pub fn text(&mut self, text: &str) -> Option<End> {
        if self.bad_input.is_some() {
            return None;
        }
        match message::parse(text) {
            Ok(Inbound::Ping) => self.pongs += 1,
            Ok(Inbound::Message { method, body }) => match self.rate.check() {
                Verdict::Pass => self.pending.push_back(Some((method, body))),
                Verdict::Refuse => self.pending.push_back(None),
                Verdict::Close => return Some(End::RateLimited),
            },
            Err(_) => self.bad_input = Some(BadInput::Text),
        }
        None
    }

    /// A binary frame from the client: bad input.
    pub fn binary(&mut self) {
        self.bad_input.get_or_insert(BadInput::Binary);
    }

    /// Another part of the host asks the connection to close; it does when it would
    /// otherwise wait (replies already due are written first).
    pub fn close(&mut self, request: CloseRequest) {
        self.closing = self.closing.max(Some(request));
    }

    /// Whether the driver should read the client's next frame: not after bad input, and
    /// not while [`MAX_PENDING`] messages wait (back-pressure on this client only).
    pub fn reading(&self) -> bool {
        self.bad_input.is_none() && self.pending.len() < MAX_PENDING
    }

    /// Whether a call is running (the driver polls it with [`Scheduler::poll_call`]).
    pub fn calling(&self) -> bool {
        matches!(
            self.call.as_deref(),
            Some(InFlight {
                state: CallState::Running(_),
                ..
            })
        )
    }

    /// Polls the call in flight; ready once it is done (its reply is the next step).
    pub fn poll_call(&mut self, cx: &mut Context<'_>) -> Poll<()> {
        let Some(call) = self.call.as_deref_mut() else {
            return Poll::Pending;
        };
        match &mut call.state {
            CallState::Done(_) => Poll::Ready(()),
            CallState::Running(future) => match future.as_mut().poll(cx) {
                Poll::Ready(outcome) => {
                    call.state = CallState::Done(outcome);
                    Poll::Ready(())
                }
                Poll::Pending => Poll::Pending,
            },
        }
    }

    /// The next thing to do for `identity`'s connection.
    pub fn step<D: Dispatch>(
        &mut self,
        identity: &Identity,
        dispatch: &D,
        observe: &mut impl Observe,
    ) -> Step {
        loop {
            if self.pongs > 0 {
                self.pongs -= 1;
                return Step::Write(Cow::Borrowed(PONG));
            }
            if std::mem::take(&mut self.ack_due) {
                return Step::Write(Cow::Borrowed(ACK));
            }
            if let Some(call) = self.call.take() {
                match call.state {
                    CallState::Done(outcome) => {
                        match reply(outcome, call.route.as_ref(), observe) {
                            Some(envelope) => return Step::Write(Cow::Owned(envelope.to_json())),
                            None => continue,
                        }
                    }
                    CallState::Running(_) => {
                        self.call = Some(call);
                        return self.wait();
                    }
                }
            }
            if let Some(message) = self.pending.pop_front() {
                self.start(message, identity, dispatch);
                continue;
            }
            if let Some(bad) = self.bad_input {
                if std::mem::replace(&mut self.bad_answered, true) {
                    return Step::End(End::BadInput(bad));
                }
                return Step::Write(Cow::Owned(CallError::BadRequest.envelope().to_json()));
            }
            return self.wait();
        }
    }

    /// Nothing is due: wait, or end when a close was asked for.
    fn wait(&self) -> Step {
        match self.closing {
            Some(request) => Step::End(End::from(request)),
            None => Step::Wait,
        }
    }

    /// Acknowledges a message and starts its call; a call that needs nothing from the host
    /// is done on its first poll.
    fn start<D: Dispatch>(&mut self, message: Pending, identity: &Identity, dispatch: &D) {
        let Some((method, body)) = message else {
            self.call = Some(Box::new(InFlight {
                route: None,
                state: CallState::Done(Err(CallError::TooManyRequests)),
            }));
            return;
        };
        self.ack_due = self.ack;
        let resolved = router::route(&method).and_then(|route| {
            let target = dispatch.resolve(&route)?;
            Ok((route, target))
        });
        let (route, state) = match resolved {
            Err(error) => (None, CallState::Done(Err(error))),
            Ok((route, target)) => {
                let escape = self.escape;
                let prepared = message::prepare(body, identity.injection(escape), escape);
                let mut future = dispatch.call(target, &identity.fd, prepared);
                let mut cx = Context::from_waker(Waker::noop());
                match future.as_mut().poll(&mut cx) {
                    Poll::Ready(outcome) => (Some(route), CallState::Done(outcome)),
                    Poll::Pending => (Some(route), CallState::Running(future)),
                }
            }
        };
        self.call = Some(Box::new(InFlight { route, state }));
    }

    /// The call still running when the connection ended, and its route: a resumable
    /// session that detaches keeps its reply for the resume.
    pub fn take_call(&mut self) -> Option<(CallFuture, Option<Route>)> {
        let call = self.call.take()?;
        match call.state {
            CallState::Running(future) => Some((future, call.route)),
            CallState::Done(outcome) => Some((Box::pin(std::future::ready(outcome)), call.route)),
        }
    }
}

/// What a call's outcome sends the client: its reply, or the envelope of its error (the
/// one place an error becomes an envelope is [`CallError::envelope`]).
pub fn reply(
    outcome: CallOutcome,
    route: Option<&Route>,
    observe: &mut impl Observe,
) -> Option<Envelope> {
    match outcome {
        Ok(Some(envelope)) => {
            observe.answered(route, Some(envelope.status), None);
            Some(envelope)
        }
        Ok(None) => {
            observe.answered(route, None, None);
            None
        }
        Err(error) => {
            let envelope = error.envelope();
            let failure = error.is_internal().then_some(&error);
            observe.answered(route, Some(envelope.status), failure);
            Some(envelope)
        }
    }
}

#[cfg(test)]
mod tests;
