//! The scheduler's rules, one script each: connect, send, expect.

use std::{
    collections::VecDeque,
    sync::{Arc, Mutex},
};

use serde_json::{json, Value};

use super::*;

/// Verdicts handed out in order; `Pass` once they run out.
#[derive(Default)]
struct Verdicts(VecDeque<Verdict>);

impl Rate for Verdicts {
    fn check(&mut self) -> Verdict {
        self.0.pop_front().unwrap_or(Verdict::Pass)
    }
}

/// A call's answer that the test gives when it wants.
#[derive(Clone, Default)]
struct Gate(Arc<Mutex<Option<CallOutcome>>>);

impl Gate {
    fn open(&self, outcome: CallOutcome) {
        *self.0.lock().expect("gate") = Some(outcome);
    }
}

impl Future for Gate {
    type Output = CallOutcome;
    fn poll(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<CallOutcome> {
        match self.0.lock().expect("gate").take() {
            Some(outcome) => Poll::Ready(outcome),
            None => Poll::Pending,
        }
    }
}

/// Modules for the tests: `index.index.*` answers at once with the action as event;
/// `index.index.slow` waits for the test's gate; other modules do not exist. Every call
/// is recorded with the message the module got.
#[derive(Default)]
struct Modules {
    gate: Gate,
    calls: Mutex<Vec<Value>>,
}

impl Dispatch for Modules {
    type Target = String;

    fn resolve(&self, route: &Route) -> Result<String, CallError> {
        match route.module.as_str() {
            "Index" => Ok(route.action.clone()),
            _ => Err(CallError::ControllerNotFound),
        }
    }

    fn call(&self, action: String, _fd: &str, message: String) -> CallFuture {
        let message: Value = serde_json::from_str(&message).expect("a JSON message");
        self.calls.lock().expect("calls").push(message);
        match action.as_str() {
            "slow" => Box::pin(self.gate.clone()),
            "silent" => Box::pin(std::future::ready(Ok(None))),
            "boom" => Box::pin(std::future::ready(Err(CallError::Failed("boom".into())))),
            action => {
                let envelope = Envelope::new(200, action, "");
                Box::pin(std::future::ready(Ok(Some(envelope))))
            }
        }
    }
}

/// What the tests' observer saw: `(status, internal failure)` per answer.
#[derive(Default)]
struct Seen(Vec<(Option<u16>, bool)>);

impl Observe for Seen {
    fn answered(&mut self, _: Option<&Route>, status: Option<u16>, failure: Option<&CallError>) {
        self.0.push((status, failure.is_some()));
    }
}

struct Client {
    scheduler: Scheduler<Verdicts>,
    identity: Identity,
    modules: Modules,
    seen: Seen,
}

impl Client {
    fn new(ack: bool) -> Self {
        Self::with_rate(ack, Verdicts::default())
    }

    fn with_rate(ack: bool, rate: Verdicts) -> Self {
        let claims = json!({"id": 7, "type": "wechatUser", "code": "demo", "nickname": "<b>"});
        let Value::Object(claims) = claims else {
            unreachable!()
        };
        Client {
            scheduler: Scheduler::new(ack, true, rate),
            identity: Identity::from_claims("n/1/1".into(), claims),
            modules: Modules::default(),
            seen: Seen::default(),
        }
    }

    fn send(&mut self, text: &str) -> Option<End> {
        self.scheduler.text(text)
    }

    /// Runs the scheduler until it waits or ends: what it wrote, and how it stopped.
    fn run(&mut self) -> (Vec<String>, Step) {
        let mut written = Vec::new();
        loop {
            match self
                .scheduler
                .step(&self.identity, &self.modules, &mut self.seen)
            {
                Step::Write(text) => written.push(text.into_owned()),
                other => return (written, other),
            }
        }
    }

    fn events(&mut self) -> (Vec<String>, Step) {
        let (written, step) = self.run();
        let events = written
            .iter()
            .map(|text| match serde_json::from_str::<Value>(text) {
                Ok(envelope) => envelope["event"].as_str().unwrap_or("").to_string(),
                Err(_) => text.clone(),
            })
            .collect();
        (events, step)
    }

    fn poll(&mut self) -> Poll<()> {
        self.scheduler
            .poll_call(&mut Context::from_waker(Waker::noop()))
    }
}

#[test]
fn a_message_gets_the_ack_then_its_reply() {
    let mut client = Client::new(true);
    client.send(r#"{"method":"index.index.hello"}"#);
    let (written, step) = client.run();
    assert_eq!(
        written,
        [ACK, r#"{"status":200,"event":"hello","info":""}"#]
    );
    assert_eq!(step, Step::Wait);
    assert_eq!(client.seen.0, [(Some(200), false)]);
}

#[test]
fn without_the_ack_only_the_reply_goes() {
    let mut client = Client::new(false);
    client.send(r#"{"method":"index.index.hello"}"#);
    assert_eq!(client.events(), (vec!["hello".into()], Step::Wait));
}

#[test]
fn the_module_sees_the_hosts_fd_code_and_auth_with_strings_escaped() {
    let mut client = Client::new(true);
    client.send(r#"{"method":"hello","fd":"forged","say":"<i>","auth":{}}"#);
    client.run();
    let calls = client.modules.calls.lock().expect("calls");
    assert_eq!(calls[0]["fd"], "n/1/1");
    assert_eq!(calls[0]["code"], "demo");
    assert_eq!(calls[0]["say"], "&lt;i&gt;");
    assert_eq!(calls[0]["auth"]["nickname"], "&lt;b&gt;");
}

#[test]
fn messages_are_answered_one_at_a_time_in_arrival_order() {
    let mut client = Client::new(true);
    client.send(r#"{"method":"index.index.slow"}"#);
    client.send(r#"{"method":"index.index.after"}"#);
    // The slow call holds back the message after it.
    assert_eq!(client.run(), (vec![ACK.to_string()], Step::Wait));
    assert!(client.scheduler.calling());
    assert_eq!(client.poll(), Poll::Pending);
    client
        .modules
        .gate
        .open(Ok(Some(Envelope::new(200, "slow", ""))));
    assert_eq!(client.poll(), Poll::Ready(()));
    let (events, step) = client.events();
    assert_eq!(events, ["slow", "receiveMessage", "after"]);
    assert_eq!(step, Step::Wait);
}

#[test]
fn a_ping_is_answered_at_once_even_behind_a_waiting_call() {
    let mut client = Client::new(true);
    client.send(r#"{"method":"index.index.slow"}"#);
    client.run();
    client.send("2");
    assert_eq!(client.run(), (vec![PONG.to_string()], Step::Wait));
    assert!(client.seen.0.is_empty(), "a ping is not a routed message");
}

#[test]
fn a_module_that_sends_nothing_leaves_only_the_ack() {
    let mut client = Client::new(true);
    client.send(r#"{"method":"index.index.silent"}"#);
    assert_eq!(client.events(), (vec!["receiveMessage".into()], Step::Wait));
    assert_eq!(client.seen.0, [(None, false)]);
}

#[test]
fn unknown_routes_and_failures_become_their_envelopes() {
    let mut client = Client::new(false);
    client.send(r#"{"method":"nope.index.index"}"#);
    client.send(r#"{"method":"a.b.c.d"}"#);
    client.send(r#"{"method":"index.index.boom"}"#);
    let (written, _) = client.run();
    let statuses: Vec<u64> = written
        .iter()
        .map(|text| {
            serde_json::from_str::<Value>(text).expect("json")["status"]
                .as_u64()
                .unwrap_or(0)
        })
        .collect();
    assert_eq!(statuses, [404, 404, 500]);
    assert_eq!(
        client.seen.0,
        [(Some(404), false), (Some(404), false), (Some(500), true)]
    );
    assert_eq!(
        client.modules.calls.lock().expect("calls").len(),
        1,
        "only the known route was called"
    );
    assert!(
        !written[2].contains("boom"),
        "internal detail never reaches the client"
    );
}

#[test]
fn bad_input_is_answered_after_the_messages_before_it_then_ends_the_connection() {
    let mut client = Client::new(true);
    client.send(r#"{"method":"index.index.slow"}"#);
    client.send("not json");
    client.send(r#"{"method":"index.index.ignored"}"#);
    assert!(
        !client.scheduler.reading(),
        "nothing more is read after bad input"
    );
    assert_eq!(client.run(), (vec![ACK.to_string()], Step::Wait));
    client
        .modules
        .gate
        .open(Ok(Some(Envelope::new(200, "slow", ""))));
    assert_eq!(client.poll(), Poll::Ready(()));
    let (events, step) = client.events();
    assert_eq!(events, ["slow", "badRequest"]);
    assert_eq!(step, Step::End(End::BadInput(BadInput::Text)));
}

#[test]
fn a_binary_frame_is_400_then_1003() {
    let mut client = Client::new(true);
    client.scheduler.binary();
    let (events, step) = client.events();
    assert_eq!(events, ["badRequest"]);
    let Step::End(end) = step else {
        panic!("{step:?}")
    };
    assert_eq!(end.close().map(|(code, _)| code.code()), Some(1003));
}

#[test]
fn over_the_rate_is_429_in_its_turn_and_too_long_over_it_ends_at_once() {
    use Verdict::*;
    let mut client = Client::with_rate(true, Verdicts([Pass, Refuse, Pass, Close].into()));
    client.send(r#"{"method":"index.index.one"}"#);
    client.send(r#"{"method":"index.index.two"}"#);
    client.send(r#"{"method":"index.index.three"}"#);
    let (events, _) = client.events();
    assert_eq!(
        events,
        [
            "receiveMessage",
            "one",
            "tooManyRequests",
            "receiveMessage",
            "three"
        ]
    );
    assert_eq!(
        client.send(r#"{"method":"index.index.four"}"#),
        Some(End::RateLimited)
    );
    assert_eq!(client.modules.calls.lock().expect("calls").len(), 2);
}

#[test]
fn a_close_request_waits_for_the_replies_already_due_and_preempts_a_waiting_call() {
    let mut client = Client::new(true);
    client.send(r#"{"method":"index.index.hello"}"#);
    client.scheduler.close(CloseRequest::Kick);
    let (events, step) = client.events();
    assert_eq!(events, ["receiveMessage", "hello"]);
    assert_eq!(step, Step::End(End::Kicked));

    let mut client = Client::new(true);
    client.send(r#"{"method":"index.index.slow"}"#);
    client.send(r#"{"method":"index.index.later"}"#);
    client.run();
    client.scheduler.close(CloseRequest::Kick);
    client.scheduler.close(CloseRequest::Shutdown);
    assert_eq!(
        client.run(),
        (vec![], Step::End(End::Shutdown)),
        "the strongest request wins"
    );
    assert!(
        client.scheduler.take_call().is_some(),
        "the call in flight is handed back"
    );
}

#[test]
fn reading_pauses_while_max_pending_messages_wait() {
    let mut client = Client::new(true);
    client.send(r#"{"method":"index.index.slow"}"#);
    client.run();
    for _ in 0..MAX_PENDING - 1 {
        client.send(r#"{"method":"index.index.x"}"#);
        assert!(client.scheduler.reading());
    }
    client.send(r#"{"method":"index.index.x"}"#);
    assert!(!client.scheduler.reading());
}
