//! The life of every connection of this node, as one state machine under one lock.
//!
//! Each connection has one [`Entry`] from the moment it is opened (or starts arriving
//! from another node) until it ends or moves away; a connection without a resumable
//! session simply ends where a resumable one would detach. The transitions are methods
//! of [`Table`]; they change nothing outside the table and return the [`Effect`]s the
//! owner ([`super::Sessions`]) carries out once the lock is released (a window to wait
//! for, a close sequence to run, a connection task to ask for its session). So every
//! rule — who may claim, when a drop detaches, what a stop does to a detached session —
//! is written once, here, and tested here without a socket.
//!
//! ```text
//!            open                    claim (half-open)          report (detaches)
//!   ──────▶ Attached ─────────────────────▶ Claimed{handoff} ─────────────────┐
//!             │  │ report (detaches)                                        ▼
//!             │  └─────────────▶ Detached ──── claim ────▶ Claimed ──attach──▶ Attached
//!             │ report (ends)      │  window passes,          │ refused (last, overflow)
//!             ▼                    ▼  closed, overflow         ▼
//!           Ended ◀────────────── Ended                      Ended      Claimed ──moved──▶ Moved
//!   arriving (from another node) ──installed──▶ Claimed (a client resumes) | Detached (adopted)
//! ```

use std::{
    collections::{HashMap, VecDeque},
    sync::Arc,
    time::Duration,
};

use tokio::{sync::oneshot, time::Instant};
use tokio_util::sync::CancellationToken;

use super::{
    control::{same_owner, NotResumed},
    replay::Replay,
};
use crate::{
    fanout::outbound::{Inbox, Outbound},
    identity::Identity,
};

/// How long the id of a session that ended while detached is remembered, to answer
/// `expired` or `overflow` rather than `unknown`.
const ENDED_KEEP: Duration = Duration::from_secs(3600);

/// A session between two connection tasks (or two nodes): its ring and its queue.
pub struct Parked {
    /// Its seq counter and written ring.
    pub replay: Replay,
    /// Its queue, as senders reach it.
    pub outbound: Outbound,
    /// Its queue, as its task reads it.
    pub inbox: Inbox,
}

/// Where a connection is in its life.
pub enum State {
    /// A connection task serves it; `outbound` asks that task to hand its session over.
    Attached { outbound: Outbound },
    /// Its socket dropped; it waits for a resume until its window ends.
    Detached { parked: Box<Parked>, window: Window },
    /// A resume (here or on another node) is taking it; a half-open connection's task hands
    /// it over through `handoff`.
    Claimed {
        handoff: Option<oneshot::Sender<Parked>>,
    },
    /// A session moving here from another node: frames sent on meanwhile wait in
    /// `outbound`'s queue.
    Arriving { outbound: Outbound },
}

/// A detached session's window: it ends at `ends` unless claimed first.
pub struct Window {
    /// Tells this window apart from a later one of the same connection.
    pub id: u64,
    /// Cancels its waiting task.
    pub token: CancellationToken,
    /// When it ends.
    pub ends: Instant,
}

/// One connection.
pub struct Entry {
    /// Who it is (the identity it began with, kept across resumes).
    pub identity: Arc<Identity>,
    /// Its resumable session's id, if it has one.
    pub session: Option<String>,
    /// Where it is in its life.
    pub state: State,
}

/// What the owner does once the lock is released.
pub enum Effect {
    /// Wait for a detached session's window (or a close request on its queue).
    Window {
        fd: String,
        id: u64,
        token: CancellationToken,
        outbound: Outbound,
        length: Duration,
    },
    /// End the connection: it leaves this node (if `outbound` is still its queue), its close
    /// sequence runs, and other nodes forget it if it moved here.
    Close {
        identity: Arc<Identity>,
        outbound: Option<Outbound>,
    },
    /// Ask a connection task to hand its session over (a resume found it half-open).
    Takeover(Outbound),
}

/// What a claim found.
pub enum Claim {
    /// The session was detached: here it is.
    Ready {
        fd: String,
        identity: Arc<Identity>,
        parked: Parked,
        /// When its window would have ended.
        window_ends: Instant,
    },
    /// Its socket still looks open: the task was asked for it ([`Effect::Takeover`]).
    Waiting {
        fd: String,
        identity: Arc<Identity>,
        handed: oneshot::Receiver<Parked>,
        effect: Effect,
    },
}

/// Session ids that ended while detached, for a while, with the reason a resume gets.
#[derive(Default)]
struct Ended {
    reasons: HashMap<String, NotResumed>,
    order: VecDeque<(Instant, String)>,
}

/// Every connection of this node.
#[derive(Default)]
pub struct Table {
    /// fd → its entry.
    entries: HashMap<String, Entry>,
    /// Session id → fd.
    sessions: HashMap<String, String>,
    /// Sessions that ended while detached, lately.
    ended: Ended,
    /// Connections a socket serves now (the `connections` gauge).
    attached: usize,
    /// The host is stopping: nothing is parked any more.
    stopping: bool,
    /// The next window's id.
    next_window: u64,
}

impl Table {
    /// A connection begins, served by a task reading `outbound`'s queue.
    pub fn open(&mut self, identity: Arc<Identity>, session: Option<String>, outbound: Outbound) {
        let fd = identity.fd.clone();
        if let Some(id) = &session {
            self.sessions.insert(id.clone(), fd.clone());
        }
        self.attached += 1;
        let state = State::Attached { outbound };
        self.entries.insert(
            fd,
            Entry {
                identity,
                session,
                state,
            },
        );
    }

    /// The task serving `fd` ended; `detaches` says whether its end would keep a resumable
    /// session (README.md, "Resumable sessions"), `parked` is what it held. The session
    /// goes to a resume waiting for it, waits for one for `window`, or ends.
    pub fn dropped(
        &mut self,
        fd: &str,
        detaches: bool,
        parked: Parked,
        window: Duration,
    ) -> Vec<Effect> {
        let Some(entry) = self.entries.get_mut(fd) else {
            return Vec::new();
        };
        let keeps = detaches && entry.session.is_some() && !self.stopping;
        match std::mem::replace(&mut entry.state, State::Claimed { handoff: None }) {
            State::Attached { .. } => {
                self.attached = self.attached.saturating_sub(1);
                match keeps {
                    true => self.park(fd, parked, window),
                    false => self.end(fd, Some(parked.outbound)),
                }
            }
            State::Claimed {
                handoff: Some(handoff),
            } => {
                self.attached = self.attached.saturating_sub(1);
                if !keeps {
                    // The resume waiting for it hears the sender go: `unknown`.
                    return self.end(fd, Some(parked.outbound));
                }
                match handoff.send(parked) {
                    Ok(()) => Vec::new(),
                    // The resume gave up waiting: it waits for the next one.
                    Err(parked) => self.park(fd, parked, window),
                }
            }
            other => {
                // No task serves it in these states: nothing to report. Put it back.
                entry.state = other;
                Vec::new()
            }
        }
    }

    /// Parks `fd`'s session for `length`.
    fn park(&mut self, fd: &str, parked: Parked, length: Duration) -> Vec<Effect> {
        let Some(entry) = self.entries.get_mut(fd) else {
            return Vec::new();
        };
        let id = self.next_window;
        self.next_window += 1;
        let token = CancellationToken::new();
        let outbound = parked.outbound.clone();
        entry.state = State::Detached {
            parked: Box::new(parked),
            window: Window {
                id,
                token: token.clone(),
                ends: Instant::now() + length,
            },
        };
        vec![Effect::Window {
            fd: fd.to_string(),
            id,
            token,
            outbound,
            length,
        }]
    }

    /// Ends `fd`: its entry goes and its close sequence is due.
    fn end(&mut self, fd: &str, outbound: Option<Outbound>) -> Vec<Effect> {
        let Some(entry) = self.entries.remove(fd) else {
            return Vec::new();
        };
        if let Some(id) = &entry.session {
            self.sessions.remove(id);
        }
        vec![Effect::Close {
            identity: entry.identity,
            outbound,
        }]
    }

    /// Claims session `id` for `claimant` (`None`: another node adopts it as it is, which
    /// only a detached session can be). The rules, in order: an unknown or lately ended
    /// session, another identity, a claim already under way (`busy`).
    pub fn claim(&mut self, id: &str, claimant: Option<&Identity>) -> Result<Claim, NotResumed> {
        let Some(fd) = self.sessions.get(id).cloned() else {
            return Err(self.ended(id).unwrap_or(NotResumed::Unknown));
        };
        let Some(entry) = self.entries.get_mut(&fd) else {
            return Err(NotResumed::Unknown);
        };
        if claimant.is_some_and(|claimant| !same_owner(&entry.identity, claimant)) {
            return Err(NotResumed::Identity);
        }
        let identity = entry.identity.clone();
        match &entry.state {
            State::Claimed { .. } | State::Arriving { .. } => Err(NotResumed::Busy),
            State::Attached { .. } if claimant.is_none() => Err(NotResumed::Busy),
            State::Attached { outbound } => {
                let outbound = outbound.clone();
                let (handoff, handed) = oneshot::channel();
                entry.state = State::Claimed {
                    handoff: Some(handoff),
                };
                Ok(Claim::Waiting {
                    fd,
                    identity,
                    handed,
                    effect: Effect::Takeover(outbound),
                })
            }
            State::Detached { .. } => {
                let State::Detached { parked, window } =
                    std::mem::replace(&mut entry.state, State::Claimed { handoff: None })
                else {
                    unreachable!("matched as detached just above");
                };
                window.token.cancel();
                Ok(Claim::Ready {
                    fd,
                    identity,
                    parked: *parked,
                    window_ends: window.ends,
                })
            }
        }
    }

    /// A claimed session is refused after all (`last` not a number or above the highest
    /// seq, frames it needs gone): it ends, and its client starts afresh.
    pub fn refuse(&mut self, fd: &str, parked: Parked) -> Vec<Effect> {
        match self.entries.get(fd).map(|entry| &entry.state) {
            Some(State::Claimed { handoff: None }) => self.end(fd, Some(parked.outbound)),
            _ => Vec::new(),
        }
    }

    /// A claimed session is served by a new task reading `outbound`'s queue.
    pub fn attach(&mut self, fd: &str, outbound: Outbound) -> bool {
        match self.entries.get_mut(fd) {
            Some(entry) if matches!(entry.state, State::Claimed { handoff: None }) => {
                entry.state = State::Attached { outbound };
                self.attached += 1;
                true
            }
            _ => false,
        }
    }

    /// A claimed session stays here detached after all (its move to another node failed,
    /// or it was adopted), for `length`.
    pub fn keep(&mut self, fd: &str, parked: Parked, length: Duration) -> Vec<Effect> {
        match self.entries.get(fd).map(|entry| &entry.state) {
            Some(State::Claimed { handoff: None }) if !self.stopping => {
                self.park(fd, parked, length)
            }
            Some(State::Claimed { handoff: None }) => self.end(fd, Some(parked.outbound)),
            _ => Vec::new(),
        }
    }

    /// Detached window `window` of `fd` passed, or its session was closed (`reason`: what a
    /// later resume of it is told; `None`: closed by a module or the manager).
    pub fn window_closed(
        &mut self,
        fd: &str,
        window: u64,
        reason: Option<NotResumed>,
    ) -> Vec<Effect> {
        let Some(entry) = self.entries.get(fd) else {
            return Vec::new();
        };
        let State::Detached {
            window: current, ..
        } = &entry.state
        else {
            return Vec::new();
        };
        if current.id != window {
            return Vec::new();
        }
        let session = entry.session.clone();
        let Some(State::Detached { parked, .. }) = self
            .entries
            .get_mut(fd)
            .map(|entry| std::mem::replace(&mut entry.state, State::Claimed { handoff: None }))
        else {
            return Vec::new();
        };
        if let (Some(id), Some(reason)) = (session, reason) {
            self.remember_ended(&id, reason);
        }
        self.end(fd, Some(parked.outbound))
    }

    /// A claimed session now lives on another node: it leaves this table (its fd becomes a
    /// note in the fanout's locations, which the owner changes).
    pub fn moved(&mut self, fd: &str) -> bool {
        match self.entries.get(fd).map(|entry| &entry.state) {
            Some(State::Claimed { handoff: None }) => {
                if let Some(entry) = self.entries.remove(fd) {
                    if let Some(id) = entry.session {
                        self.sessions.remove(&id);
                    }
                }
                true
            }
            _ => false,
        }
    }

    /// A session starts moving here from another node as `fd`: `busy` if this node holds
    /// `fd` already (another claim of it is under way, or it is here).
    pub fn arriving(&mut self, fd: &str, outbound: Outbound) -> Result<(), NotResumed> {
        if self.entries.contains_key(fd) {
            return Err(NotResumed::Busy);
        }
        self.entries.insert(
            fd.to_string(),
            Entry {
                identity: Arc::new(Identity::anonymous(fd.to_string())),
                session: None,
                state: State::Arriving { outbound },
            },
        );
        Ok(())
    }

    /// The session arriving as `fd` is here: its identity and id; it is `Claimed`, for the
    /// resume that asked for it to attach or for [`Table::keep`]. `false` if it was not
    /// arriving (any more).
    pub fn installed(&mut self, fd: &str, identity: Arc<Identity>, session: &str) -> bool {
        match self.entries.get_mut(fd) {
            Some(entry) if matches!(entry.state, State::Arriving { .. }) => {
                entry.identity = identity;
                entry.session = Some(session.to_string());
                entry.state = State::Claimed { handoff: None };
                self.sessions.insert(session.to_string(), fd.to_string());
                true
            }
            _ => false,
        }
    }

    /// The session arriving as `fd` did not come; `true` if its placeholder went.
    pub fn arrival_failed(&mut self, fd: &str, outbound: &Outbound) -> bool {
        match self.entries.get(fd).map(|entry| &entry.state) {
            Some(State::Arriving { outbound: queue }) if queue.same(outbound) => {
                self.entries.remove(fd);
                true
            }
            _ => false,
        }
    }

    /// The host stops: from now on nothing is parked, and every detached session ends.
    pub fn stop(&mut self) -> Vec<Effect> {
        self.stopping = true;
        let detached: Vec<String> = self
            .entries
            .iter()
            .filter(|(_, entry)| matches!(entry.state, State::Detached { .. }))
            .map(|(fd, _)| fd.clone())
            .collect();
        let mut effects = Vec::new();
        for fd in detached {
            if let Some(entry) = self.entries.get_mut(&fd) {
                if let State::Detached { parked, window } =
                    std::mem::replace(&mut entry.state, State::Claimed { handoff: None })
                {
                    window.token.cancel();
                    effects.extend(self.end(&fd, Some(parked.outbound)));
                }
            }
        }
        effects
    }

    fn remember_ended(&mut self, id: &str, reason: NotResumed) {
        let now = Instant::now();
        let ended = &mut self.ended;
        while let Some((at, old)) = ended.order.front() {
            if now.duration_since(*at) < ENDED_KEEP {
                break;
            }
            ended.reasons.remove(old);
            ended.order.pop_front();
        }
        ended.reasons.insert(id.to_string(), reason);
        ended.order.push_back((now, id.to_string()));
    }

    /// Why session `id` cannot be resumed, if it ended here lately (`expired`, `overflow`).
    pub fn ended(&self, id: &str) -> Option<NotResumed> {
        self.ended.reasons.get(id).copied()
    }

    /// The fd of session `id`, if this node holds it in any state.
    pub fn locate(&self, id: &str) -> Option<String> {
        self.sessions.get(id).cloned()
    }

    /// The detached sessions, as `(id, fd)`.
    pub fn detached(&self) -> Vec<(String, String)> {
        self.entries
            .iter()
            .filter(|(_, entry)| matches!(entry.state, State::Detached { .. }))
            .filter_map(|(fd, entry)| Some((entry.session.clone()?, fd.clone())))
            .collect()
    }

    /// How many connections a socket serves now.
    pub fn attached(&self) -> usize {
        self.attached
    }

    /// The fds of the connections a socket serves now.
    pub fn attached_fds(&self) -> Vec<String> {
        self.entries
            .iter()
            .filter(|(_, entry)| {
                matches!(
                    entry.state,
                    State::Attached { .. } | State::Claimed { handoff: Some(_) }
                )
            })
            .map(|(fd, _)| fd.clone())
            .collect()
    }

    /// The entry of `fd`, to look at.
    #[cfg(test)]
    pub fn entry(&self, fd: &str) -> Option<&Entry> {
        self.entries.get(fd)
    }
}

#[cfg(test)]
mod tests;
