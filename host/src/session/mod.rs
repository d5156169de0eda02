//! The owner of every connection's life on this node (README.md, "Resumable sessions").
//!
//! Why one owner: a connection ends in many ways — its client leaves, it idles out, a
//! module or the manager closes it, a limit ends it, the host stops, a resume takes it
//! over, its session moves to another node — and whether its session survives, who runs
//! its close sequence and where its frames go must not depend on which part noticed
//! first. So the connection task only *reports* how its socket ended ([`Report`]), and
//! this owner decides: park the session for a resume, hand it to a resume that waits for
//! it, or end it. Only this owner runs a close sequence (`mswoole_core::close`, with the
//! modules' `onClose` hooks), and only it changes where an fd lives ([`Locations`]).
//!
//! How: the rules are transitions of one state machine under one lock ([`table`]); each
//! returns the effects to carry out once the lock is released (a window to wait for, a
//! close sequence, a takeover request), which [`Sessions::apply`] does. The cluster's
//! handover claims and installs sessions through the same transitions, so a resume on
//! this node and one on another follow the same rules.

mod control;
pub mod replay;
pub mod table;

use std::{sync::Arc, time::Duration};

use mswoole_core::{
    close::{close_sequence, CloseHooks},
    future::BoxFuture,
};
use tokio::time::Instant;
use tokio_tungstenite::tungstenite::{Message, Utf8Bytes};
use tokio_util::task::TaskTracker;

use self::table::{Claim, Effect, Table};
pub use self::{
    control::{new_id, not_resumed, parse_last, resumed, started, NotResumed},
    replay::{Replay, ReplayState, Session},
    table::Parked,
};
use crate::{
    config::Recovery,
    engine::{
        end::{CloseRequest, End},
        scheduler::{self, CallFuture, Observe},
    },
    fanout::{
        locations::Locations,
        outbound::{self, Inbox, Outbound},
    },
    identity::Identity,
    registry::Registry,
    router::Route,
    telemetry::log_limit,
};

/// How long a resume waits for a half-open connection's task to hand its session over.
const TAKEOVER_WAIT: Duration = Duration::from_secs(5);

/// What the owner needs to know of the config.
#[derive(Debug, Clone)]
pub struct Settings {
    /// `protocol.escape_html`: how `onClose` sees the identity.
    pub escape: bool,
    /// `[recovery]`.
    pub recovery: Recovery,
    /// `limits.outbound_queue`.
    pub outbound_queue: usize,
    /// `limits.outbound_bytes`.
    pub outbound_bytes: usize,
    /// `limits.call_timeout_ms`: how long a detaching connection's call may still take.
    pub call_timeout: Duration,
}

/// A connection as it begins: its identity and both ends of its queue.
pub struct Opened {
    /// Who it is.
    pub identity: Arc<Identity>,
    /// Its queue, as senders reach it.
    pub outbound: Outbound,
    /// Its queue, as its task reads it.
    pub inbox: Inbox,
    /// Its resumable session, if it has one.
    pub session: Option<Box<Session>>,
}

/// A resume that succeeded: the session and the frames its client missed.
pub struct Resumed {
    /// The connection, ready for its new task.
    pub opened: Opened,
    /// The envelopes after the client's `last`, as first sent.
    pub missed: Vec<Utf8Bytes>,
}

/// A session claimed for a client or a node, with what waited for it stamped into its ring.
pub struct Taken {
    /// Its fd.
    pub fd: String,
    /// Who it is.
    pub identity: Arc<Identity>,
    /// Its ring and queue.
    pub parked: Parked,
    /// When its window would have ended, if it was detached.
    pub window_ends: Option<Instant>,
}

/// How a connection task's socket ended.
pub struct Report {
    /// Who it was.
    pub identity: Arc<Identity>,
    /// Why it ended.
    pub end: End,
    /// The code of the client's close frame, if one came.
    pub echoed: Option<u16>,
    /// Its resumable session, if it had one.
    pub session: Option<Box<Session>>,
    /// The call still running, with its route: a detaching session keeps its reply.
    pub call: Option<(CallFuture, Option<Route>)>,
    /// Its queue.
    pub outbound: Outbound,
    /// Its queue, as the task read it.
    pub inbox: Inbox,
}

/// Who claims a session.
pub enum Claimant<'a> {
    /// A resuming client with this identity, which has every envelope up to `last`
    /// (`None`: it sent something that is not a number).
    Client {
        identity: &'a Identity,
        last: Option<u64>,
    },
    /// Another node adopts it as it is (at the end of this node's drain).
    Node,
}

/// This node's connections.
pub struct Sessions {
    /// Every connection's state. A std lock: never held across an await.
    table: std::sync::Mutex<Table>,
    /// Where fds live, for frames.
    locations: Arc<Locations>,
    /// Where connections' records are.
    registry: Arc<dyn Registry>,
    /// Whose `onClose` hooks run.
    hooks: Arc<dyn CloseHooks>,
    /// What the config says.
    settings: Settings,
    /// The tasks that wait for detached sessions' windows.
    windows: TaskTracker,
}

impl Sessions {
    /// The owner of this node's connections.
    pub fn new(
        locations: Arc<Locations>,
        registry: Arc<dyn Registry>,
        hooks: Arc<dyn CloseHooks>,
        settings: Settings,
    ) -> Arc<Self> {
        Arc::new(Sessions {
            table: std::sync::Mutex::default(),
            locations,
            registry,
            hooks,
            settings,
            windows: TaskTracker::new(),
        })
    }

    fn table(&self) -> std::sync::MutexGuard<'_, Table> {
        self.table
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// `[recovery]`.
    pub fn recovery(&self) -> &Recovery {
        &self.settings.recovery
    }

    /// A fresh queue within `limits.outbound_queue` and `limits.outbound_bytes`.
    fn queue(&self) -> (Outbound, Inbox) {
        outbound::queue(self.settings.outbound_queue, self.settings.outbound_bytes)
    }

    /// A new connection: recorded in the registry, reachable here, attached to its task.
    pub async fn open(&self, identity: Identity, session: Option<Box<Session>>) -> Opened {
        let identity = Arc::new(identity);
        if let Err(error) = self.registry.register(&identity).await {
            let message = format!("connection not recorded in the registry: {error}");
            if log_limit::admit(
                tracing::Level::WARN,
                "connection not recorded in the registry",
                &message,
            ) {
                tracing::warn!(fd = %identity.fd, "{message}");
            }
        }
        let (outbound, inbox) = self.queue();
        if session.is_some() {
            inbox.attach();
        }
        self.locations.arrive(&identity.fd, outbound.clone());
        let id = session.as_ref().map(|session| session.id.clone());
        self.table().open(identity.clone(), id, outbound.clone());
        Opened {
            identity,
            outbound,
            inbox,
            session,
        }
    }

    /// Resumes session `id`, held by this node, for a client with identity `claimant` that
    /// has every envelope up to `last`.
    pub async fn resume(
        self: &Arc<Self>,
        id: &str,
        claimant: &Identity,
        last: Option<u64>,
    ) -> Result<Resumed, NotResumed> {
        let taken = self
            .take(
                id,
                Claimant::Client {
                    identity: claimant,
                    last,
                },
            )
            .await?;
        self.admit(id, taken, last)
    }

    /// A claimed session goes to its resuming client: the frames it missed, and its new
    /// task attached. When `last` is not a number or above the highest seq, or frames after
    /// it are gone, the session ends instead and its client starts afresh.
    pub fn admit(
        self: &Arc<Self>,
        id: &str,
        taken: Taken,
        last: Option<u64>,
    ) -> Result<Resumed, NotResumed> {
        let Taken {
            fd,
            identity,
            mut parked,
            ..
        } = taken;
        let missed = match last {
            Some(last) => parked.replay.since(last),
            None => Err(NotResumed::Invalid),
        };
        let missed = match missed {
            Ok(missed) => missed,
            Err(reason) => {
                let effects = self.table().refuse(&fd, parked);
                self.spawn_effects(effects);
                return Err(reason);
            }
        };
        let Parked {
            replay,
            outbound,
            inbox,
        } = parked;
        inbox.attach();
        if !self.table().attach(&fd, outbound.clone()) {
            return Err(NotResumed::Unknown);
        }
        Ok(Resumed {
            opened: Opened {
                identity,
                outbound,
                inbox,
                session: Some(Box::new(Session {
                    id: id.to_string(),
                    replay,
                })),
            },
            missed,
        })
    }

    /// Takes session `id` out of its place for `claimant`, with what waited for it stamped
    /// into its ring; it stays `Claimed` until it is admitted, kept or moved. A half-open
    /// connection's task is asked to hand the session over first.
    pub async fn take(
        self: &Arc<Self>,
        id: &str,
        claimant: Claimant<'_>,
    ) -> Result<Taken, NotResumed> {
        let claim = {
            let who = match &claimant {
                Claimant::Client { identity, .. } => Some(*identity),
                Claimant::Node => None,
            };
            self.table().claim(id, who)?
        };
        let (fd, identity, mut parked, window_ends) = match claim {
            Claim::Ready {
                fd,
                identity,
                parked,
                window_ends,
            } => (fd, identity, parked, Some(window_ends)),
            Claim::Waiting {
                fd,
                identity,
                handed,
                effect,
            } => {
                self.apply(vec![effect]).await;
                match tokio::time::timeout(TAKEOVER_WAIT, handed).await {
                    Ok(Ok(parked)) => (fd, identity, parked, None),
                    // The old connection ended the session instead (its close sequence ran).
                    Ok(Err(_)) => return Err(NotResumed::Unknown),
                    Err(_) => return Err(NotResumed::Busy),
                }
            }
        };
        stamp_waiting(&mut parked);
        Ok(Taken {
            fd,
            identity,
            parked,
            window_ends,
        })
    }

    /// A claimed session stays here detached after all (its move failed, or another node
    /// handed it over to keep), for what is left of its window (`window_ends`; a whole
    /// window when it was attached).
    pub fn keep(self: &Arc<Self>, fd: &str, parked: Parked, window_ends: Option<Instant>) {
        let length = window_ends.map_or(
            Duration::from_secs(self.settings.recovery.window_s),
            |ends| ends.saturating_duration_since(Instant::now()),
        );
        parked.inbox.detach(
            None,
            self.settings.recovery.max_frames,
            self.settings.recovery.max_bytes,
        );
        let effects = self.table().keep(fd, parked, length);
        self.spawn_effects(effects);
    }

    /// A claimed session lives on node `to` from now on: its queue becomes a note there, in
    /// one step (a frame finds one or the other), and it leaves this node's table. Frames
    /// that reached its queue before are in `parked`'s inbox: stamp them after this.
    pub fn moved(&self, fd: &str, to: &str) {
        self.locations.move_away(fd, to);
        self.table().moved(fd);
    }

    /// A session starts moving here as `fd`: a queue for the frames sent on meanwhile, or
    /// `busy` when this node holds `fd` already.
    pub fn arriving(&self, fd: &str) -> Result<(Outbound, Inbox), NotResumed> {
        let (outbound, inbox) = self.queue();
        inbox.detach(
            None,
            self.settings.recovery.max_frames,
            self.settings.recovery.max_bytes,
        );
        self.table().arriving(fd, outbound.clone())?;
        if !self.locations.arrive_new(fd, outbound.clone()) {
            self.table().arrival_failed(fd, &outbound);
            return Err(NotResumed::Busy);
        }
        Ok((outbound, inbox))
    }

    /// The session arriving as `fd` did not come: its queue goes.
    pub fn arrival_failed(&self, fd: &str, outbound: &Outbound) {
        if self.table().arrival_failed(fd, outbound) {
            self.locations.leave(fd, outbound);
        }
    }

    /// The session arriving as `fd` is here (`identity`, session `id`, its ring and queue):
    /// claimed, for a resume to admit or for [`Sessions::keep`].
    pub fn installed(&self, fd: &str, identity: Arc<Identity>, id: &str) -> bool {
        self.table().installed(fd, identity, id)
    }

    /// The task serving a connection ended. The owner decides: a resumable session whose
    /// socket went without a close frame detaches (the reply to a call that was running is
    /// kept for the resume) and goes to a resume waiting for it or waits for one; every
    /// other connection ends, and its close sequence runs.
    pub async fn report(self: &Arc<Self>, report: Report, observe: &mut impl Observe) {
        let Report {
            identity,
            end,
            echoed,
            mut session,
            call,
            outbound,
            inbox,
        } = report;
        let detaches = session.is_some() && end.detaches(echoed);
        if let (true, Some((call, route)), Some(session)) = (detaches, call, session.as_mut()) {
            // The client asked before it dropped: its reply is stamped and kept for the resume.
            let outcome = match tokio::time::timeout(self.settings.call_timeout, call).await {
                Ok(outcome) => outcome,
                Err(_) => Err(crate::error::CallError::Timeout(
                    self.settings.call_timeout.as_millis() as u64,
                )),
            };
            if let Some(envelope) = scheduler::reply(outcome, route.as_ref(), observe) {
                session.replay.stamp(&envelope.to_json());
            }
        }
        let handled = match end {
            End::Shutdown => Some(CloseRequest::Shutdown),
            End::TakenOver => Some(CloseRequest::Takeover),
            _ => None,
        };
        let recovery = &self.settings.recovery;
        inbox.detach(handled, recovery.max_frames, recovery.max_bytes);
        let replay = match session {
            Some(session) => session.replay,
            None => Replay::new(recovery),
        };
        let parked = Parked {
            replay,
            outbound,
            inbox,
        };
        let window = Duration::from_secs(recovery.window_s);
        let effects = self.table().dropped(&identity.fd, detaches, parked, window);
        self.apply(effects).await;
    }

    /// The host stops: nothing is parked from now on, and every detached session ends
    /// (their close sequences run side by side). Returns how many ended.
    pub async fn end_detached(self: &Arc<Self>) -> usize {
        let effects = self.table().stop();
        let ended = effects.len();
        self.apply(effects).await;
        self.windows.close();
        self.windows.wait().await;
        ended
    }

    /// Carries out what a transition asked for; close sequences run side by side. Boxed:
    /// a window's task applies what its end asks for in turn.
    fn apply(self: &Arc<Self>, effects: Vec<Effect>) -> BoxFuture<()> {
        let this = self.clone();
        Box::pin(async move {
            let mut closes = Vec::new();
            for effect in effects {
                match effect {
                    Effect::Takeover(outbound) => outbound.close(CloseRequest::Takeover),
                    Effect::Window {
                        fd,
                        id,
                        token,
                        outbound,
                        length,
                    } => {
                        let waiting = this.clone();
                        this.windows.spawn(async move {
                            waiting.wait_window(fd, id, token, outbound, length).await
                        });
                    }
                    Effect::Close { identity, outbound } => {
                        closes.push(this.close(identity, outbound))
                    }
                }
            }
            futures_util::future::join_all(closes).await;
        })
    }

    /// [`Sessions::apply`] from a synchronous caller: in a task of its own.
    fn spawn_effects(self: &Arc<Self>, effects: Vec<Effect>) {
        if effects.is_empty() {
            return;
        }
        let this = self.clone();
        self.windows.spawn(async move { this.apply(effects).await });
    }

    /// Ends a connection for good: no frame reaches it any more, its close sequence runs,
    /// and other nodes forget it if it moved here.
    async fn close(&self, identity: Arc<Identity>, outbound: Option<Outbound>) {
        if let Some(outbound) = &outbound {
            self.locations.leave(&identity.fd, outbound);
        }
        close_sequence(
            &*self.registry,
            &*self.hooks,
            &identity,
            self.settings.escape,
        )
        .await;
        self.locations
            .announce_gone(&*self.registry, &identity.fd)
            .await;
    }

    /// A detached session's window: it ends when its length passes or something asks it to
    /// close (a module's or the manager's close, an overflowing queue), unless a resume
    /// claims it first.
    async fn wait_window(
        self: Arc<Self>,
        fd: String,
        id: u64,
        token: tokio_util::sync::CancellationToken,
        outbound: Outbound,
        length: Duration,
    ) {
        let reason = tokio::select! {
            _ = token.cancelled() => return,
            _ = tokio::time::sleep(length) => Some(NotResumed::Expired),
            request = outbound.close_requested() => {
                (request == CloseRequest::SlowConsumer).then_some(NotResumed::Overflow)
            }
        };
        let label = reason.map_or("closed", NotResumed::label);
        let effects = self.table().window_closed(&fd, id, reason);
        if !effects.is_empty() {
            tracing::info!(%fd, reason = label, "detached session ends: its close sequence runs");
        }
        self.apply(effects).await;
    }

    /// The fd of session `id`, if this node holds it.
    pub fn locate(&self, id: &str) -> Option<String> {
        self.table().locate(id)
    }

    /// Why session `id` cannot be resumed, if it ended here lately (`expired`, `overflow`).
    pub fn ended(&self, id: &str) -> Option<NotResumed> {
        self.table().ended(id)
    }

    /// The detached sessions, as `(id, fd)`.
    pub fn detached(&self) -> Vec<(String, String)> {
        self.table().detached()
    }

    /// How many connections a socket serves now (detached sessions left out).
    pub fn connections(&self) -> usize {
        self.table().attached()
    }

    /// The fds of the connections a socket serves now.
    pub fn attached_fds(&self) -> Vec<String> {
        self.table().attached_fds()
    }
}

/// Stamps what waited in a claimed session's queue into its ring, so a resume's `missed`
/// counts it too and a move carries it.
pub fn stamp_waiting(parked: &mut Parked) {
    for frame in parked.inbox.take_frames() {
        if let Message::Text(text) = frame {
            parked.replay.stamp(text.as_str());
        }
    }
}

#[cfg(test)]
mod tests;
