//! This node's resumable sessions, and when a dropped one ends (README.md,
//! "Resumable sessions").
//!
//! A session is *attached* while a connection task serves it. When its socket drops
//! without a close frame (a reset, an EOF, an idle timeout, the drain's 1012), the task
//! *parks* it here instead of running its close sequence: the session keeps its fd,
//! rooms, close keys and controllers, its outbound queue keeps what is sent to it
//! (bounded by `recovery.max_frames` / `max_bytes`), and a window task waits
//! `recovery.window_s`. A resume *claims* it atomically: a second resume meanwhile
//! gets `busy`. If the old socket still looks open (half-open), the claim asks its task
//! to hand the session over ([`CloseRequest::Takeover`]) and waits for it. If no resume
//! comes, or a module or the manager closes the session, or its queue overflows, the
//! window task ends it through [`Closer`]: the close sequence runs then, not at the drop.

pub mod closer;
pub mod replay;

use std::{
    collections::{HashMap, VecDeque},
    sync::{Arc, Mutex, MutexGuard},
    time::Duration,
};

use tokio::{sync::oneshot, time::Instant};
use tokio_tungstenite::tungstenite::{Message, Utf8Bytes};
use tokio_util::sync::CancellationToken;

use crate::{
    config::Recovery,
    fanout::clients::Clients,
    fanout::outbound::{CloseRequest, Inbox, Outbound},
    identity::Identity,
    session::closer::Closer,
    session::replay::{same_owner, NotResumed, Replay},
};

/// How long a resume waits for a half-open connection's task to hand its session over.
const TAKEOVER_WAIT: Duration = Duration::from_secs(5);
/// How long an expired session's id is remembered, to answer `expired` rather than `unknown`.
const EXPIRED_KEEP: Duration = Duration::from_secs(3600);

/// What a session is, between two connection tasks.
pub struct Parked {
    /// Who it is (the identity it began with, kept across resumes).
    pub identity: Arc<Identity>,
    /// Its seq counter and written ring.
    pub replay: Replay,
    /// Its queue, as senders reach it.
    pub outbound: Outbound,
    /// Its queue, as its task reads it.
    pub inbox: Inbox,
}

impl Parked {
    /// Stamps what waited in the queue into the ring, so a resume's `missed` counts it too.
    pub fn stamp_waiting(&mut self) {
        for frame in self.inbox.take_frames() {
            if let Message::Text(text) = frame {
                self.replay.stamp(text.as_str());
            }
        }
    }
}

/// Where a session is.
enum Slot {
    /// A connection task serves it; `outbound` asks that task to hand it over.
    Attached {
        identity: Arc<Identity>,
        outbound: Outbound,
    },
    /// Dropped, waiting for a resume until `ends`; `window` cancels its window task.
    Detached {
        parked: Parked,
        window: CancellationToken,
        ends: Instant,
    },
    /// A resume is taking it; `handoff` receives it from a half-open connection's task.
    Claimed {
        identity: Arc<Identity>,
        handoff: Option<oneshot::Sender<Parked>>,
    },
}

/// A resume that succeeded: the session and the frames the client missed.
pub struct Resumed {
    /// The session.
    pub parked: Parked,
    /// The envelopes after the client's `last`, as first sent.
    pub missed: Vec<Utf8Bytes>,
}

/// A session taken out of its slot ([`Sessions::take`]).
pub struct Taken {
    /// The session.
    pub parked: Parked,
    /// The highest seq its client has.
    pub last: u64,
    /// When its window would have ended, if it was detached.
    pub window_ends: Option<Instant>,
}

/// Ids of sessions that ended while detached (their window passed, or their buffer
/// overflowed), for a while, with the reason a resume of them gets.
#[derive(Default)]
struct Expired {
    ids: HashMap<String, NotResumed>,
    order: VecDeque<(Instant, String)>,
}

/// The sessions of this node.
pub struct Sessions {
    /// id → where the session is. A std lock: never held across an await.
    table: Mutex<HashMap<String, Slot>>,
    /// Recently expired ids.
    expired: Mutex<Expired>,
    /// `[recovery]`.
    recovery: Recovery,
    /// Ends sessions whose window passed.
    closer: Arc<Closer>,
    /// Marks sessions attached or detached in the client table.
    clients: Arc<Clients>,
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

impl Sessions {
    /// No sessions yet.
    pub fn new(recovery: Recovery, closer: Arc<Closer>, clients: Arc<Clients>) -> Self {
        Sessions {
            table: Mutex::default(),
            expired: Mutex::default(),
            recovery,
            closer,
            clients,
        }
    }

    /// `[recovery]`.
    pub fn recovery(&self) -> &Recovery {
        &self.recovery
    }

    /// A connection task serves session `id` from now on.
    pub fn attach(&self, id: &str, identity: Arc<Identity>, outbound: Outbound) {
        self.clients.set_attached(&identity.fd, true);
        lock(&self.table).insert(id.to_string(), Slot::Attached { identity, outbound });
    }

    /// The session ended with its connection (its close sequence runs): forget it.
    pub fn forget(&self, id: &str) {
        lock(&self.table).remove(id);
    }

    /// The fd of session `id`, if this node holds it (attached, detached or being claimed).
    pub fn locate(&self, id: &str) -> Option<String> {
        lock(&self.table).get(id).map(|slot| match slot {
            Slot::Attached { identity, .. } | Slot::Claimed { identity, .. } => identity.fd.clone(),
            Slot::Detached { parked, .. } => parked.identity.fd.clone(),
        })
    }

    /// Why session `id` cannot be resumed, if it ended here lately (`expired`, `overflow`).
    pub fn ended(&self, id: &str) -> Option<NotResumed> {
        lock(&self.expired).ids.get(id).copied()
    }

    /// The detached sessions, as `(id, fd)`.
    pub fn detached(&self) -> Vec<(String, String)> {
        lock(&self.table)
            .iter()
            .filter_map(|(id, slot)| match slot {
                Slot::Detached { parked, .. } => Some((id.clone(), parked.identity.fd.clone())),
                _ => None,
            })
            .collect()
    }

    /// The connection task of session `id` lost its socket in a way that detaches it
    /// (`handled` is the close request that ended it, if one did): hand the session to a
    /// resume waiting for it, or park it for `recovery.window_s`.
    pub fn park(self: &Arc<Self>, id: &str, parked: Parked, handled: Option<CloseRequest>) {
        let window = Duration::from_secs(self.recovery.window_s);
        self.park_for(id, parked, handled, window);
    }

    /// [`Sessions::park`] for `window` (what is left of the window of a session that
    /// moved here detached).
    pub fn park_for(
        self: &Arc<Self>,
        id: &str,
        parked: Parked,
        handled: Option<CloseRequest>,
        window: Duration,
    ) {
        let recovery = &self.recovery;
        parked
            .inbox
            .detach(handled, recovery.max_frames, recovery.max_bytes);
        self.clients.set_attached(&parked.identity.fd, false);
        let mut table = lock(&self.table);
        let parked = match table.remove(id) {
            Some(Slot::Claimed {
                identity,
                handoff: Some(handoff),
            }) => match handoff.send(parked) {
                Ok(()) => {
                    table.insert(
                        id.to_string(),
                        Slot::Claimed {
                            identity,
                            handoff: None,
                        },
                    );
                    return;
                }
                // The resume gave up waiting: park it for the next one.
                Err(parked) => parked,
            },
            _ => parked,
        };
        let length = window;
        let window = CancellationToken::new();
        let outbound = parked.outbound.clone();
        table.insert(
            id.to_string(),
            Slot::Detached {
                parked,
                window: window.clone(),
                ends: Instant::now() + length,
            },
        );
        drop(table);
        tokio::spawn(
            self.clone()
                .wait_window(id.to_string(), window, outbound, length),
        );
    }

    /// A detached session's window: it ends when `window_s` passes or something asks it
    /// to close (a module's or the manager's close, an overflowing queue), unless a resume
    /// claims it first.
    async fn wait_window(
        self: Arc<Self>,
        id: String,
        window: CancellationToken,
        outbound: Outbound,
        length: Duration,
    ) {
        let remembered = tokio::select! {
            _ = window.cancelled() => return,
            _ = tokio::time::sleep(length) => Some(NotResumed::Expired),
            request = outbound.close_requested() => {
                tracing::debug!(session = %id, ?request, "detached session closed");
                (request == CloseRequest::SlowConsumer).then_some(NotResumed::Overflow)
            }
        };
        let parked = {
            let mut table = lock(&self.table);
            match table.remove(&id) {
                Some(Slot::Detached { parked, .. }) => parked,
                Some(other) => {
                    table.insert(id, other);
                    return;
                }
                None => return,
            }
        };
        if let Some(reason) = remembered {
            self.remember_ended(&id, reason);
        }
        let reason = remembered.map_or("closed", NotResumed::label);
        tracing::info!(fd = %parked.identity.fd, reason, "detached session ends: its close sequence runs");
        self.closer.end(&parked.identity).await;
    }

    fn remember_ended(&self, id: &str, reason: NotResumed) {
        let mut expired = lock(&self.expired);
        let now = Instant::now();
        while let Some((at, old)) = expired.order.front() {
            if now.duration_since(*at) < EXPIRED_KEEP {
                break;
            }
            let old = old.clone();
            expired.ids.remove(&old);
            expired.order.pop_front();
        }
        expired.ids.insert(id.to_string(), reason);
        expired.order.push_back((now, id.to_string()));
    }

    /// Claims session `id` for `claimant`, whose client has every envelope up to `last`.
    /// On a refusal after the claim (`last` above the highest seq, frames gone), the session
    /// ends: its client starts afresh.
    pub async fn claim(
        &self,
        id: &str,
        claimant: &Identity,
        last: &str,
    ) -> Result<Resumed, NotResumed> {
        let Taken {
            mut parked, last, ..
        } = self.take(id, Some(claimant), last).await?;
        match parked.replay.since(last) {
            Ok(missed) => Ok(Resumed { parked, missed }),
            Err(reason) => {
                self.forget(id);
                self.closer.end(&parked.identity).await;
                Err(reason)
            }
        }
    }

    /// Takes session `id` out of its slot for `claimant` (`None`: another node adopts it
    /// as it is, at the end of this node's drain), with what waited for it stamped into its
    /// ring; the slot stays `Claimed` until the caller attaches, parks or forgets it.
    pub async fn take(
        &self,
        id: &str,
        claimant: Option<&Identity>,
        last: &str,
    ) -> Result<Taken, NotResumed> {
        let last: Option<u64> = match claimant {
            Some(_) => last.parse().ok(),
            None => Some(0),
        };
        let waiting = {
            let mut table = lock(&self.table);
            let Some(slot) = table.get_mut(id) else {
                let ended = lock(&self.expired).ids.get(id).copied();
                return Err(ended.unwrap_or(NotResumed::Unknown));
            };
            let detached = matches!(slot, Slot::Detached { .. });
            let owner = match slot {
                Slot::Attached { identity, .. } | Slot::Claimed { identity, .. } => identity,
                Slot::Detached { parked, .. } => &parked.identity,
            };
            if claimant.is_some_and(|claimant| !same_owner(owner, claimant)) {
                return Err(NotResumed::Identity);
            }
            let Some(last) = last else {
                return Err(NotResumed::Invalid);
            };
            if claimant.is_none() && !detached {
                return Err(NotResumed::Busy);
            }
            let identity = owner.clone();
            match std::mem::replace(
                slot,
                Slot::Claimed {
                    identity,
                    handoff: None,
                },
            ) {
                Slot::Claimed { identity, handoff } => {
                    *slot = Slot::Claimed { identity, handoff };
                    return Err(NotResumed::Busy);
                }
                Slot::Detached {
                    parked,
                    window,
                    ends,
                } => {
                    window.cancel();
                    Ok((parked, last, Some(ends)))
                }
                Slot::Attached { identity, outbound } => {
                    let (handoff, handed) = oneshot::channel();
                    *slot = Slot::Claimed {
                        identity,
                        handoff: Some(handoff),
                    };
                    outbound.close(CloseRequest::Takeover);
                    Err((handed, last))
                }
            }
        };
        let (mut parked, last, window_ends) = match waiting {
            Ok(ready) => ready,
            Err((handed, last)) => match tokio::time::timeout(TAKEOVER_WAIT, handed).await {
                Ok(Ok(parked)) => (parked, last, None),
                // The old connection ended the session instead (its close sequence ran).
                Ok(Err(_)) => return Err(NotResumed::Unknown),
                Err(_) => return Err(NotResumed::Busy),
            },
        };
        parked.stamp_waiting();
        Ok(Taken {
            parked,
            last,
            window_ends,
        })
    }

    /// Ends every detached session now (a stop, after the drain): their close sequences run.
    pub async fn end_detached(&self) -> usize {
        let parked: Vec<Parked> = {
            let mut table = lock(&self.table);
            let ids: Vec<String> = table
                .iter()
                .filter(|(_, slot)| matches!(slot, Slot::Detached { .. }))
                .map(|(id, _)| id.clone())
                .collect();
            ids.iter()
                .filter_map(|id| match table.remove(id) {
                    Some(Slot::Detached { parked, window, .. }) => {
                        window.cancel();
                        Some(parked)
                    }
                    _ => None,
                })
                .collect()
        };
        for session in &parked {
            self.closer.end(&session.identity).await;
        }
        parked.len()
    }
}
