//! Every transition of a connection's life, without a socket or a runtime.

use serde_json::{json, Value};

use super::*;
use crate::{config::Recovery, fanout::outbound};

const WINDOW: Duration = Duration::from_secs(120);

fn person(fd: &str, id: u64) -> Identity {
    let Value::Object(claims) = json!({"id": id, "type": "wechatUser", "code": "demo"}) else {
        unreachable!()
    };
    Identity::from_claims(fd.into(), claims)
}

fn parked() -> Parked {
    let (outbound, inbox) = outbound::queue(16, 1 << 20);
    Parked {
        replay: Replay::new(&Recovery::default()),
        outbound,
        inbox,
    }
}

/// A table with one connection `f` of user 1, resumable as session `s` when `resumable`.
fn table(resumable: bool) -> (Table, Outbound) {
    let mut table = Table::default();
    let (outbound, _inbox) = outbound::queue(16, 1 << 20);
    let session = resumable.then(|| "s".to_string());
    table.open(Arc::new(person("f", 1)), session, outbound.clone());
    (table, outbound)
}

fn is_close(effects: &[Effect]) -> bool {
    matches!(effects, [Effect::Close { identity, .. }] if identity.fd == "f")
}

fn is_window(effects: &[Effect]) -> bool {
    matches!(effects, [Effect::Window { fd, .. }] if fd == "f")
}

fn state(table: &Table) -> &'static str {
    match table.entry("f").map(|entry| &entry.state) {
        None => "gone",
        Some(State::Attached { .. }) => "attached",
        Some(State::Detached { .. }) => "detached",
        Some(State::Claimed { handoff: Some(_) }) => "claimed, waiting for its task",
        Some(State::Claimed { handoff: None }) => "claimed",
        Some(State::Arriving { .. }) => "arriving",
    }
}

/// Claims `s` for user 1 and returns what the claim found.
fn claim(table: &mut Table) -> Result<Claim, NotResumed> {
    table.claim("s", Some(&person("other-fd", 1)))
}

#[test]
fn a_resumable_session_that_drops_waits_for_a_resume_and_stops_counting() {
    let (mut table, _) = table(true);
    assert_eq!(
        (table.attached(), table.attached_fds()),
        (1, vec!["f".to_string()])
    );
    let effects = table.dropped("f", true, parked(), WINDOW);
    assert!(is_window(&effects));
    assert_eq!(state(&table), "detached");
    assert_eq!(table.attached(), 0);
    assert_eq!(table.detached(), [("s".to_string(), "f".to_string())]);
    assert_eq!(table.locate("s").as_deref(), Some("f"));
}

#[test]
fn an_end_that_does_not_detach_runs_the_close_sequence_and_forgets_the_session() {
    let (mut table, _) = table(true);
    assert!(is_close(&table.dropped("f", false, parked(), WINDOW)));
    assert_eq!(state(&table), "gone");
    assert_eq!(table.locate("s"), None);
    assert!(matches!(claim(&mut table), Err(NotResumed::Unknown)));
}

#[test]
fn a_connection_without_a_session_simply_ends_where_one_would_detach() {
    let (mut table, _) = table(false);
    assert!(is_close(&table.dropped("f", true, parked(), WINDOW)));
    assert_eq!((state(&table), table.attached()), ("gone", 0));
}

#[test]
fn a_detached_session_is_claimed_once_by_its_owner() {
    let (mut table, _) = table(true);
    table.dropped("f", true, parked(), WINDOW);
    let stranger = table.claim("s", Some(&person("x", 2)));
    assert!(matches!(stranger, Err(NotResumed::Identity)));
    assert_eq!(
        state(&table),
        "detached",
        "a refused identity changes nothing"
    );
    let Ok(Claim::Ready { fd, .. }) = claim(&mut table) else {
        panic!("the owner claims it")
    };
    assert_eq!((fd.as_str(), state(&table)), ("f", "claimed"));
    assert!(
        matches!(claim(&mut table), Err(NotResumed::Busy)),
        "a second claim is busy"
    );
    let (outbound, _inbox) = outbound::queue(16, 1 << 20);
    assert!(table.attach("f", outbound));
    assert_eq!((state(&table), table.attached()), ("attached", 1));
}

#[test]
fn claiming_cancels_the_window() {
    let (mut table, _) = table(true);
    let effects = table.dropped("f", true, parked(), WINDOW);
    let Some(Effect::Window { token, id, .. }) = effects.into_iter().next() else {
        panic!("a window")
    };
    assert!(matches!(claim(&mut table), Ok(Claim::Ready { .. })));
    assert!(token.is_cancelled());
    assert!(
        table
            .window_closed("f", id, Some(NotResumed::Expired))
            .is_empty(),
        "a window that fires as the claim takes the session ends nothing"
    );
}

#[test]
fn a_half_open_session_is_asked_for_and_handed_over_when_its_task_lets_go() {
    let (mut table, outbound) = table(true);
    let Ok(Claim::Waiting {
        mut handed, effect, ..
    }) = claim(&mut table)
    else {
        panic!("the socket still looks open")
    };
    assert!(matches!(&effect, Effect::Takeover(queue) if queue.same(&outbound)));
    assert_eq!(state(&table), "claimed, waiting for its task");
    assert!(matches!(claim(&mut table), Err(NotResumed::Busy)));
    assert_eq!(
        table.attached_fds(),
        ["f"],
        "the drain still reaches its task"
    );
    // The task ends as asked (taken over): the session goes to the claim, not to a window.
    assert!(table.dropped("f", true, parked(), WINDOW).is_empty());
    assert!(handed.try_recv().is_ok());
    assert_eq!((state(&table), table.attached()), ("claimed", 0));
}

#[test]
fn a_drop_that_ends_the_session_during_a_claim_leaves_the_claim_empty_handed() {
    let (mut table, _) = table(true);
    let Ok(Claim::Waiting { mut handed, .. }) = claim(&mut table) else {
        panic!("waiting")
    };
    // The client's close frame arrived before the takeover: the session ends.
    assert!(is_close(&table.dropped("f", false, parked(), WINDOW)));
    assert!(
        matches!(handed.try_recv(), Err(oneshot::error::TryRecvError::Closed)),
        "the resume answers `unknown`"
    );
    assert_eq!(state(&table), "gone");
}

#[test]
fn a_claim_that_gave_up_waiting_leaves_the_session_for_the_next_resume() {
    let (mut table, _) = table(true);
    let Ok(Claim::Waiting { handed, .. }) = claim(&mut table) else {
        panic!("waiting")
    };
    drop(handed);
    assert!(is_window(&table.dropped("f", true, parked(), WINDOW)));
    assert_eq!(state(&table), "detached");
    assert!(matches!(claim(&mut table), Ok(Claim::Ready { .. })));
}

#[test]
fn another_node_adopts_only_a_detached_session_and_not_twice() {
    let (mut table, _) = table(true);
    assert!(
        matches!(table.claim("s", None), Err(NotResumed::Busy)),
        "attached: not adoptable"
    );
    table.dropped("f", true, parked(), WINDOW);
    assert!(matches!(table.claim("s", None), Ok(Claim::Ready { .. })));
    assert!(
        matches!(claim(&mut table), Err(NotResumed::Busy)),
        "a resume that comes during the adoption is busy"
    );
    let (mut table, _) = self::table(true);
    table.dropped("f", true, parked(), WINDOW);
    assert!(matches!(claim(&mut table), Ok(Claim::Ready { .. })));
    assert!(
        matches!(table.claim("s", None), Err(NotResumed::Busy)),
        "an adoption that comes during a resume is busy"
    );
}

#[test]
fn a_claim_refused_after_all_ends_the_session() {
    let (mut table, _) = table(true);
    table.dropped("f", true, parked(), WINDOW);
    let Ok(Claim::Ready { parked, .. }) = claim(&mut table) else {
        panic!("claimed")
    };
    assert!(is_close(&table.refuse("f", parked)));
    assert_eq!(state(&table), "gone");
    assert!(matches!(claim(&mut table), Err(NotResumed::Unknown)));
}

#[test]
fn a_window_that_passes_ends_the_session_and_is_remembered() {
    for reason in [NotResumed::Expired, NotResumed::Overflow] {
        let (mut table, _) = table(true);
        let effects = table.dropped("f", true, parked(), WINDOW);
        let Some(Effect::Window { id, .. }) = effects.into_iter().next() else {
            panic!("a window")
        };
        assert!(
            table.window_closed("f", id + 1, Some(reason)).is_empty(),
            "another window"
        );
        assert!(is_close(&table.window_closed("f", id, Some(reason))));
        assert_eq!(table.ended("s"), Some(reason));
        assert!(matches!(claim(&mut table), Err(r) if r == reason));
    }
    // Closed by a module: it ends, and a resume of it is `unknown`.
    let (mut table, _) = table(true);
    let effects = table.dropped("f", true, parked(), WINDOW);
    let Some(Effect::Window { id, .. }) = effects.into_iter().next() else {
        panic!("a window")
    };
    assert!(is_close(&table.window_closed("f", id, None)));
    assert!(matches!(claim(&mut table), Err(NotResumed::Unknown)));
}

#[test]
fn a_stop_ends_the_detached_sessions_and_parks_nothing_after_it() {
    let (mut table, _) = table(true);
    table.dropped("f", true, parked(), WINDOW);
    let (outbound, _inbox) = outbound::queue(16, 1 << 20);
    table.open(Arc::new(person("g", 2)), Some("t".into()), outbound);
    let effects = table.stop();
    assert!(is_close(&effects), "only the detached one ends now");
    // The drain reaches `g` after that: its session ends instead of parking.
    let effects = table.dropped("g", true, parked(), WINDOW);
    assert!(matches!(&effects[..], [Effect::Close { identity, .. }] if identity.fd == "g"));
    assert!(table.detached().is_empty());
}

#[test]
fn a_claimed_session_that_cannot_move_stays_detached_but_not_once_stopping() {
    let (mut table, _) = table(true);
    table.dropped("f", true, parked(), WINDOW);
    let Ok(Claim::Ready { parked, .. }) = table.claim("s", None) else {
        panic!("claimed")
    };
    assert!(is_window(&table.keep("f", parked, WINDOW)));
    let Ok(Claim::Ready { parked, .. }) = table.claim("s", None) else {
        panic!("claimed again")
    };
    table.stop();
    assert!(is_close(&table.keep("f", parked, WINDOW)));
}

#[test]
fn a_session_that_moves_leaves_the_table() {
    let (mut table, _) = table(true);
    table.dropped("f", true, parked(), WINDOW);
    assert!(!table.moved("f"), "only a claimed session moves");
    assert!(matches!(table.claim("s", None), Ok(Claim::Ready { .. })));
    assert!(table.moved("f"));
    assert_eq!((state(&table), table.locate("s")), ("gone", None));
}

#[test]
fn a_session_arrives_once_and_is_installed_or_given_up() {
    let mut table = Table::default();
    let (outbound, _inbox) = outbound::queue(16, 1 << 20);
    assert!(table.arriving("f", outbound.clone()).is_ok());
    assert_eq!(state(&table), "arriving");
    assert_eq!(table.arriving("f", outbound.clone()), Err(NotResumed::Busy));
    assert!(table.attached_fds().is_empty() && table.detached().is_empty());
    assert!(table.installed("f", Arc::new(person("f", 1)), "s"));
    assert_eq!(
        (state(&table), table.locate("s").as_deref()),
        ("claimed", Some("f"))
    );
    assert!(table.attach("f", outbound.clone()));
    assert_eq!(table.attached(), 1);

    let mut table = Table::default();
    table.arriving("f", outbound.clone()).expect("arriving");
    let (other, _) = outbound::queue(16, 1 << 20);
    assert!(
        !table.arrival_failed("f", &other),
        "another arrival's queue"
    );
    assert!(table.arrival_failed("f", &outbound));
    assert_eq!(state(&table), "gone");
    assert!(
        !table.installed("f", Arc::new(person("f", 1)), "s"),
        "too late"
    );
}

#[test]
fn a_report_for_a_connection_no_task_serves_changes_nothing() {
    let (mut table, _) = table(true);
    table.dropped("f", true, parked(), WINDOW);
    assert!(table.dropped("f", false, parked(), WINDOW).is_empty());
    assert_eq!(state(&table), "detached");
    assert!(table.dropped("nobody", false, parked(), WINDOW).is_empty());
}
