//! The owner's races, without a socket: connection tasks are simulated by what they report,
//! time is tokio's paused clock, the registry is the memory one, `onClose` is recorded.

use std::sync::Mutex;

use async_trait::async_trait;
use serde_json::{json, Value};
use tokio_tungstenite::tungstenite::{Message, Utf8Bytes};

use super::*;
use crate::{
    engine::end::ReadFailure,
    error::CallError,
    fanout::outbound::Mail,
    registry::{controllers_key, memory::MemoryRegistry},
};

/// `onClose` calls, by fd.
#[derive(Default)]
struct Hooks(Mutex<Vec<String>>);

#[async_trait]
impl CloseHooks for Hooks {
    async fn on_close(&self, _: &str, info: &Value) -> Result<bool, CallError> {
        let fd = info["fd"].as_str().unwrap_or("").to_string();
        self.0.lock().expect("hooks").push(fd);
        Ok(true)
    }
}

struct Quiet;

impl Observe for Quiet {
    fn answered(&mut self, _: Option<&Route>, _: Option<u16>, _: Option<&CallError>) {}
}

struct Node {
    sessions: Arc<Sessions>,
    locations: Arc<Locations>,
    registry: Arc<MemoryRegistry>,
    hooks: Arc<Hooks>,
}

fn node() -> Node {
    let locations = Arc::new(Locations::new("a".into()));
    let registry = Arc::new(MemoryRegistry::new());
    let hooks = Arc::new(Hooks::default());
    let settings = Settings {
        escape: true,
        recovery: Recovery::default(),
        outbound_queue: 1024,
        outbound_bytes: 1 << 20,
        call_timeout: Duration::from_secs(5),
    };
    let sessions = Sessions::new(locations.clone(), registry.clone(), hooks.clone(), settings);
    Node {
        sessions,
        locations,
        registry,
        hooks,
    }
}

fn person(fd: &str) -> Identity {
    let Value::Object(claims) = json!({"id": 1, "type": "wechatUser", "code": "demo"}) else {
        unreachable!()
    };
    Identity::from_claims(fd.into(), claims)
}

impl Node {
    /// A resumable connection `a/1/1` as session `s`, with `Live.User` to notify on close.
    async fn connect(&self) -> Opened {
        let session = Box::new(Session {
            id: "s".into(),
            replay: Replay::new(&Recovery::default()),
        });
        let opened = self.sessions.open(person("a/1/1"), Some(session)).await;
        self.registry
            .set_add(&controllers_key("a/1/1"), "Live.User")
            .await
            .expect("registered");
        opened
    }

    /// Its task ends for `end`.
    async fn drop_socket(&self, opened: Opened, end: End, echoed: Option<u16>) {
        let report = Report {
            identity: opened.identity,
            end,
            echoed,
            session: opened.session,
            call: None,
            outbound: opened.outbound,
            inbox: opened.inbox,
        };
        self.sessions.report(report, &mut Quiet).await;
    }

    fn closed(&self) -> Vec<String> {
        self.hooks.0.lock().expect("hooks").clone()
    }

    fn send(&self, text: &'static str) -> u64 {
        self.locations
            .send_many(["a/1/1"], &Utf8Bytes::from_static(text), |_, _| {})
    }
}

/// Waits until the old socket's task is asked to hand its session over, as the task sees it.
async fn takeover_asked(inbox: &Inbox) {
    loop {
        if let Mail::Close(CloseRequest::Takeover) = inbox.take().await {
            return;
        }
    }
}

#[tokio::test(start_paused = true)]
async fn a_dropped_session_resumes_with_what_it_missed_and_its_window_ends_otherwise() {
    let node = node();
    let opened = node.connect().await;
    node.drop_socket(opened, End::ClientGone, None).await;
    assert_eq!(node.sessions.connections(), 0);
    assert_eq!(
        node.send(r#"{"n":1}"#),
        1,
        "frames for a detached session are kept"
    );
    let resumed = node
        .sessions
        .resume("s", &person("x"), Some(0))
        .await
        .expect("resumed");
    assert_eq!(
        resumed.missed,
        [Utf8Bytes::from_static(r#"{"n":1,"seq":1}"#)]
    );
    assert_eq!(node.sessions.connections(), 1);
    // Dropped again, and nobody comes back within the window: its close sequence runs.
    node.drop_socket(resumed.opened, End::Idle, None).await;
    tokio::time::sleep(Duration::from_secs(121)).await;
    tokio::task::yield_now().await;
    assert_eq!(node.closed(), ["a/1/1"]);
    assert!(!node.locations.holds("a/1/1"));
    assert!(matches!(
        node.sessions.resume("s", &person("x"), Some(1)).await,
        Err(NotResumed::Expired)
    ));
}

#[tokio::test(start_paused = true)]
async fn a_last_that_is_not_a_number_ends_the_session() {
    let node = node();
    let opened = node.connect().await;
    node.drop_socket(opened, End::ClientGone, None).await;
    let refused = node.sessions.resume("s", &person("x"), None).await;
    assert!(matches!(refused, Err(NotResumed::Invalid)));
    tokio::task::yield_now().await;
    assert_eq!(node.closed(), ["a/1/1"], "its close sequence ran");
    assert!(matches!(
        node.sessions.resume("s", &person("x"), Some(0)).await,
        Err(NotResumed::Unknown)
    ));
}

#[tokio::test(start_paused = true)]
async fn two_resumes_racing_on_one_node_one_wins_the_other_is_busy() {
    let node = node();
    let opened = node.connect().await;
    node.drop_socket(opened, End::ClientGone, None).await;
    let (x, y) = (person("x"), person("y"));
    let (one, two) = tokio::join!(
        node.sessions.resume("s", &x, Some(0)),
        node.sessions.resume("s", &y, Some(0)),
    );
    let outcomes = [one.is_ok(), two.is_ok()];
    assert_eq!(outcomes.iter().filter(|ok| **ok).count(), 1, "{outcomes:?}");
    let loser = if one.is_ok() { two.err() } else { one.err() };
    assert_eq!(loser, Some(NotResumed::Busy));
}

#[tokio::test(start_paused = true)]
async fn a_resume_takes_a_half_open_socket_over_without_the_close_sequence() {
    let node = node();
    let opened = node.connect().await;
    let Opened {
        identity,
        outbound,
        inbox,
        session,
    } = opened;
    let sessions = node.sessions.clone();
    let resume = tokio::spawn(async move { sessions.resume("s", &person("x"), Some(0)).await });
    // The old task hears the takeover, ends, and reports so.
    takeover_asked(&inbox).await;
    assert_eq!(node.send(r#"{"during":1}"#), 1);
    let report = Report {
        identity,
        end: End::TakenOver,
        echoed: None,
        session,
        call: None,
        outbound,
        inbox,
    };
    node.sessions.report(report, &mut Quiet).await;
    let resumed = resume.await.expect("joined").expect("resumed");
    assert_eq!(
        resumed.missed.len(),
        1,
        "the frame sent during the takeover"
    );
    assert!(node.closed().is_empty(), "no close sequence for a takeover");
    assert_eq!(node.sessions.connections(), 1);
}

#[tokio::test(start_paused = true)]
async fn a_client_close_during_a_claim_ends_the_session_and_the_resume_is_unknown() {
    let node = node();
    let opened = node.connect().await;
    let inbox_seen = opened.inbox.close_requested();
    let sessions = node.sessions.clone();
    let resume = tokio::spawn(async move { sessions.resume("s", &person("x"), Some(0)).await });
    assert_eq!(inbox_seen.await, CloseRequest::Takeover);
    // Its client's close frame had already arrived: the session ends, not detaches.
    node.drop_socket(opened, End::ClientGone, Some(1000)).await;
    assert!(matches!(
        resume.await.expect("joined"),
        Err(NotResumed::Unknown)
    ));
    assert_eq!(node.closed(), ["a/1/1"]);
}

#[tokio::test(start_paused = true)]
async fn an_adoption_and_a_resume_of_one_session_do_not_both_take_it() {
    let node = node();
    let opened = node.connect().await;
    node.drop_socket(opened, End::Shutdown, None).await;
    let x = person("x");
    let (adopted, resumed) = tokio::join!(
        node.sessions.take("s", Claimant::Node),
        node.sessions.resume("s", &x, Some(0)),
    );
    assert_ne!(adopted.is_ok(), resumed.is_ok(), "exactly one takes it");
    let busy = adopted.err().or(resumed.err());
    assert_eq!(busy, Some(NotResumed::Busy));
}

#[tokio::test(start_paused = true)]
async fn a_session_that_detaches_after_the_stop_ended_the_others_ends_too() {
    let node = node();
    let first = node.connect().await;
    node.drop_socket(first, End::Shutdown, None).await;
    let Value::Object(claims) = json!({"id": 2, "type": "wechatUser", "code": "demo"}) else {
        unreachable!()
    };
    let late = Box::new(Session {
        id: "t".into(),
        replay: Replay::new(&Recovery::default()),
    });
    let second = node
        .sessions
        .open(Identity::from_claims("a/1/2".into(), claims), Some(late))
        .await;
    assert_eq!(node.sessions.end_detached().await, 1);
    assert_eq!(node.closed(), ["a/1/1"]);
    // The drain reached the second one late: it is not parked for a resume nobody serves.
    node.drop_socket(second, End::Shutdown, None).await;
    assert!(node.sessions.detached().is_empty());
    assert!(!node.locations.holds("a/1/2"));
}

#[tokio::test(start_paused = true)]
async fn a_frame_during_a_move_is_either_carried_in_the_ring_or_sent_on() {
    let node = node();
    let opened = node.connect().await;
    node.drop_socket(opened, End::ClientGone, None).await;
    let mut sent_on = Vec::new();
    let mut send = |text: &'static str| {
        node.locations
            .send_many(["a/1/1"], &Utf8Bytes::from_static(text), |fd, away| {
                sent_on.push((fd.to_string(), away.map(String::from), text))
            })
    };
    assert_eq!(send(r#"{"n":1}"#), 1);
    let Ok(mut taken) = node.sessions.take("s", Claimant::Node).await else {
        panic!("taken")
    };
    assert_eq!(send(r#"{"n":2}"#), 1, "claimed, not moved yet: its queue");
    node.sessions.moved("a/1/1", "b");
    assert_eq!(send(r#"{"n":3}"#), 0, "moved: a note");
    stamp_waiting(&mut taken.parked);
    let carried: Vec<String> = taken
        .parked
        .replay
        .export()
        .frames
        .into_iter()
        .map(|(_, text, _)| text)
        .collect();
    assert_eq!(carried, [r#"{"n":1,"seq":1}"#, r#"{"n":2,"seq":2}"#]);
    assert_eq!(
        sent_on,
        [("a/1/1".to_string(), Some("b".to_string()), r#"{"n":3}"#)]
    );
    assert!(node.closed().is_empty());
}

#[tokio::test(start_paused = true)]
async fn a_detached_session_whose_frames_overflow_ends_as_overflow() {
    let node = node();
    let opened = node.connect().await;
    node.drop_socket(opened, End::ReadFailed(ReadFailure::Gone), None)
        .await;
    for _ in 0..=Recovery::default().max_frames {
        node.send(r#"{"n":1}"#);
    }
    tokio::task::yield_now().await;
    assert_eq!(node.closed(), ["a/1/1"]);
    assert!(matches!(
        node.sessions.resume("s", &person("x"), Some(0)).await,
        Err(NotResumed::Overflow)
    ));
}

#[tokio::test(start_paused = true)]
async fn a_detaching_connection_keeps_the_reply_to_the_call_it_was_waiting_for() {
    let node = node();
    let opened = node.connect().await;
    let call: CallFuture = Box::pin(async {
        tokio::time::sleep(Duration::from_millis(100)).await;
        Ok(Some(crate::envelope::Envelope::new(200, "late", "")))
    });
    let report = Report {
        identity: opened.identity,
        end: End::ClientGone,
        echoed: None,
        session: opened.session,
        call: Some((call, None)),
        outbound: opened.outbound,
        inbox: opened.inbox,
    };
    node.sessions.report(report, &mut Quiet).await;
    let resumed = node
        .sessions
        .resume("s", &person("x"), Some(0))
        .await
        .expect("resumed");
    assert_eq!(
        resumed.missed,
        [Utf8Bytes::from_static(
            r#"{"status":200,"event":"late","info":"","seq":1}"#
        )]
    );
    // And a frame queued for the new task reaches it as live traffic.
    node.send(r#"{"n":2}"#);
    assert!(matches!(
        resumed.opened.inbox.take().await,
        Mail::Frames(frames) if frames == [Message::text(r#"{"n":2}"#)]
    ));
}
