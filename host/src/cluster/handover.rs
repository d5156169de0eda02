//! Moves a resumable session between nodes on one Redis (README.md, "Resumable
//! sessions": several hosts).
//!
//! A phone that drops may come back through the load balancer to any node, and the
//! clients of a stopping node come back to the others. The session must follow: its
//! fd, rooms, identity, uid mapping and every frame, none lost, none doubled. The fd
//! keeps naming the node it was born on, so where it lives now is a note: in Redis
//! (`WEBSOCKET_FDNODE`, read by nodes that start later) and in every node's client
//! table (announced to all when it changes).
//!
//! The claim, between the node where the resume arrives (the *claimant*) and the node
//! that holds the session (the *holder*), over the registry's pub/sub:
//!
//! 1. `locate` to every node: the holder answers with the session's fd, every other node
//!    with `absent` (and `expired`/`overflow` when the session ended there lately).
//! 2. The claimant opens a queue for that fd in its client table, then sends `claim`.
//!    From here on, frames sent on to it are kept there.
//! 3. The holder takes the session as a local resume would (identity checked, `busy` for
//!    a second claim, a half-open socket taken over), moves the fd's records in Redis,
//!    and replaces its client-table entry by a note "lives on the claimant" under the
//!    table's lock: a frame finds either the queue, whose frames are stamped into the
//!    ring that is handed over, or the note, which sends it on to the claimant. It
//!    answers `handover` (identity, ring, registry shadow) and announces the move.
//! 4. The claimant builds the session from the handover; what it was sent on meanwhile
//!    is already in its queue, behind the ring.
//!
//! A stopping node hands its detached sessions over the same way after its drain: it
//! asks another node to `adopt` each, and that node claims it without a client. A node
//! that crashes loses its sessions; their resumes answer `unknown`.

use std::{
    collections::HashMap,
    sync::{
        atomic::{AtomicU64, Ordering},
        Arc, Mutex, MutexGuard,
    },
    time::Duration,
};

use serde::{Deserialize, Serialize};
use tokio::{sync::mpsc, time::Instant};

use super::Peers;
use crate::{
    config::Recovery,
    fanout::{
        locations::{Locations, Moved},
        outbound::{Inbox, Outbound},
    },
    identity::Identity,
    registry::{Registry, FDNODE},
    runtime::shutdown::Shutdown,
    session::{
        self, parse_last, Claimant, NotResumed, Parked, Replay, ReplayState, Resumed, Sessions,
        Taken,
    },
    telemetry::metrics,
};

/// How long the claimant waits for the nodes to answer `locate`.
const LOCATE_WAIT: Duration = Duration::from_secs(1);
/// How long the claimant waits for the handover (the holder may wait up to 5 s for a
/// half-open socket to let its session go).
const CLAIM_WAIT: Duration = Duration::from_secs(7);
/// How long a stopping node waits for other nodes to adopt its detached sessions.
const ADOPT_WAIT: Duration = Duration::from_secs(3);

/// What nodes say to each other about sessions.
#[derive(Debug, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "camelCase")]
enum Message {
    /// To every node: who holds `session`?
    Locate {
        req: u64,
        from: String,
        session: String,
    },
    /// This node (`node`) holds it, as `fd`.
    Located { req: u64, node: String, fd: String },
    /// This node does not hold it; `ended` says why when it ended here lately.
    Absent { req: u64, ended: Option<String> },
    /// Hand `session` over to `from`, for a client with the identity `claimant` that has
    /// every envelope up to `last`; without a claimant, `from` adopts it detached.
    Claim {
        req: u64,
        from: String,
        session: String,
        claimant: Option<String>,
        last: String,
    },
    /// The session: its identity record, its ring, its registry shadow, and what is left
    /// of its window when it was detached.
    Handover {
        req: u64,
        session: String,
        fd: String,
        info: String,
        replay: ReplayState,
        records: String,
        window_left_ms: Option<u64>,
    },
    /// Not handed over.
    Refused { req: u64, reason: String },
    /// From a stopping node: claim `session` (`fd`) and keep it detached.
    Adopt {
        from: String,
        session: String,
        fd: String,
    },
}

/// One node's side of session handovers.
pub struct Handover {
    /// This node's id.
    node: String,
    /// The relay between nodes, and the fd records a move changes.
    registry: Arc<dyn Registry>,
    /// Where fds live (the notes of moved sessions).
    locations: Arc<Locations>,
    /// This node's sessions: claimed, kept, moved and installed by their owner's rules.
    sessions: Arc<Sessions>,
    /// `[recovery]`: the bounds of a ring that arrives.
    recovery: Recovery,
    /// A stopping node adopts nothing.
    shutdown: Shutdown,
    /// Requests this node sent, by id, and where their answers go.
    waiting: Mutex<HashMap<u64, mpsc::UnboundedSender<Message>>>,
    next: AtomicU64,
}

/// A request's answers; forgets the request when dropped.
struct Answers<'a> {
    handover: &'a Handover,
    req: u64,
    rx: mpsc::UnboundedReceiver<Message>,
}

impl Answers<'_> {
    /// The next answer, or `None` once `until` has passed.
    async fn next(&mut self, until: Instant) -> Option<Message> {
        tokio::time::timeout_at(until, self.rx.recv())
            .await
            .ok()
            .flatten()
    }
}

impl Drop for Answers<'_> {
    fn drop(&mut self) {
        self.handover.waiting().remove(&self.req);
    }
}

impl Handover {
    /// This node's handover.
    pub fn new(
        registry: Arc<dyn Registry>,
        locations: Arc<Locations>,
        sessions: Arc<Sessions>,
        recovery: Recovery,
        shutdown: Shutdown,
    ) -> Arc<Self> {
        Arc::new(Handover {
            node: locations.node().to_string(),
            registry,
            locations,
            sessions,
            recovery,
            shutdown,
            waiting: Mutex::default(),
            next: AtomicU64::new(1),
        })
    }

    fn waiting(&self) -> MutexGuard<'_, HashMap<u64, mpsc::UnboundedSender<Message>>> {
        self.waiting
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn request(&self) -> Answers<'_> {
        let req = self.next.fetch_add(1, Ordering::Relaxed);
        let (tx, rx) = mpsc::unbounded_channel();
        self.waiting().insert(req, tx);
        Answers {
            handover: self,
            req,
            rx,
        }
    }

    async fn send(&self, node: Option<&str>, message: &Message) -> u64 {
        let payload = match serde_json::to_string(message) {
            Ok(payload) => payload,
            Err(error) => {
                tracing::error!("handover: cannot encode a message: {error}");
                return 0;
            }
        };
        match self.registry.send_peer(node, &payload).await {
            Ok(reached) => reached,
            Err(error) => {
                tracing::warn!("handover: {error}");
                0
            }
        }
    }

    /// Resumes session `id`, which this node does not hold, for `claimant` (whose client
    /// has every envelope up to `last`): finds the node that does and moves the session
    /// here, or says why not.
    pub async fn resume(
        &self,
        id: &str,
        claimant: &Identity,
        last: Option<u64>,
    ) -> Result<Resumed, NotResumed> {
        let (node, fd) = self.locate(id).await?;
        // The wire carries `last` as the client sent it; a `last` that is not a number
        // travels as "" and the holder refuses it by the same rule.
        let wire_last = last.map(|last| last.to_string()).unwrap_or_default();
        let taken = self
            .claim(&node, id, &fd, Some(claimant.info.clone()), wire_last)
            .await?;
        self.sessions.admit(id, taken, last)
    }

    /// The node holding session `id` and its fd.
    async fn locate(&self, id: &str) -> Result<(String, String), NotResumed> {
        let mut answers = self.request();
        let locate = Message::Locate {
            req: answers.req,
            from: self.node.clone(),
            session: id.to_string(),
        };
        let asked = self.send(None, &locate).await;
        let until = Instant::now() + LOCATE_WAIT;
        let (mut absent, mut ended) = (0, None);
        while absent < asked {
            match answers.next(until).await {
                Some(Message::Located { node, fd, .. }) => return Ok((node, fd)),
                Some(Message::Absent { ended: reason, .. }) => {
                    absent += 1;
                    ended = ended.or(reason.as_deref().and_then(NotResumed::from_label));
                }
                Some(_) => {}
                None => break,
            }
        }
        Err(ended.unwrap_or(NotResumed::Unknown))
    }

    /// Claims session `id` (`fd`) from `node` for a client with identity `claimant`
    /// (`None`: to keep it detached), and makes it this node's, claimed.
    async fn claim(
        &self,
        node: &str,
        id: &str,
        fd: &str,
        claimant: Option<String>,
        last: String,
    ) -> Result<Taken, NotResumed> {
        // Frames the holder sends on once it has let the session go wait here; another
        // claim of the same session on this node (or the fd here) is `busy`.
        let (outbound, inbox) = self.sessions.arriving(fd)?;
        let mut answers = self.request();
        let claim = Message::Claim {
            req: answers.req,
            from: self.node.clone(),
            session: id.to_string(),
            claimant,
            last,
        };
        if self.send(Some(node), &claim).await == 0 {
            // The holder is gone since it answered `locate`.
            self.sessions.arrival_failed(fd, &outbound);
            return Err(NotResumed::Unknown);
        }
        let answer = answers.next(Instant::now() + CLAIM_WAIT).await;
        match answer {
            Some(Message::Handover {
                info,
                replay,
                records,
                window_left_ms,
                ..
            }) => {
                let arrived = Arrived {
                    info,
                    replay,
                    records,
                    window_left_ms,
                };
                self.install(id, fd, arrived, outbound, inbox)
            }
            Some(Message::Refused { reason, .. }) => {
                self.sessions.arrival_failed(fd, &outbound);
                Err(NotResumed::from_label(&reason).unwrap_or(NotResumed::Unknown))
            }
            // A handover that comes after this is adopted when it arrives.
            _ => {
                self.sessions.arrival_failed(fd, &outbound);
                tracing::warn!(session = %id, %node, "handover: no answer to a claim in time");
                Err(NotResumed::Busy)
            }
        }
    }

    /// Makes a handed-over session this node's, claimed: its records, its ring, its queue.
    fn install(
        &self,
        id: &str,
        fd: &str,
        arrived: Arrived,
        outbound: Outbound,
        inbox: Inbox,
    ) -> Result<Taken, NotResumed> {
        let Some(identity) = Identity::from_record(fd.to_string(), &arrived.info) else {
            tracing::error!(%fd, "handover: the session's identity record is unreadable");
            self.sessions.arrival_failed(fd, &outbound);
            return Err(NotResumed::Unknown);
        };
        let identity = Arc::new(identity);
        self.registry.adopt(&identity, &arrived.records);
        if !self.sessions.installed(fd, identity.clone(), id) {
            return Err(NotResumed::Unknown);
        }
        Ok(Taken {
            fd: fd.to_string(),
            identity,
            parked: Parked {
                replay: Replay::import(&self.recovery, arrived.replay),
                outbound,
                inbox,
            },
            window_ends: arrived
                .window_left_ms
                .map(|left| Instant::now() + Duration::from_millis(left)),
        })
    }

    /// Answers `claim` from node `from`: hands the session over, or says why not.
    async fn answer_claim(
        &self,
        req: u64,
        from: String,
        id: String,
        claimant: Option<String>,
        last: String,
    ) {
        if let Err(reason) = self.hand_over(req, &from, id, claimant, &last).await {
            let refused = Message::Refused {
                req,
                reason: reason.label().to_string(),
            };
            self.send(Some(&from), &refused).await;
        }
    }

    /// Takes session `id` for node `from` and sends it there. Whether the client's `last`
    /// can be served is checked where the session arrives, as for a resume on this node.
    async fn hand_over(
        &self,
        req: u64,
        from: &str,
        id: String,
        claimant: Option<String>,
        last: &str,
    ) -> Result<(), NotResumed> {
        let claimant = match claimant {
            Some(info) => {
                Some(Identity::from_record(String::new(), &info).ok_or(NotResumed::Identity)?)
            }
            None => None,
        };
        let who = match &claimant {
            Some(identity) => Claimant::Client {
                identity,
                last: parse_last(Some(last)),
            },
            None => Claimant::Node,
        };
        let Taken {
            fd,
            identity,
            mut parked,
            window_ends,
        } = self.sessions.take(&id, who).await?;
        let records = match self.registry.move_fd(&fd, from).await {
            Ok(records) => records,
            Err(error) => {
                tracing::warn!(%fd, "handover: the session stays here: {error}");
                self.sessions.keep(&fd, parked, window_ends);
                return Err(NotResumed::Busy);
            }
        };
        // From here on, frames for the fd go to `from`; what came before is in the queue.
        self.sessions.moved(&fd, from);
        session::stamp_waiting(&mut parked);
        let handover = Message::Handover {
            req,
            session: id,
            fd: fd.clone(),
            info: identity.info.clone(),
            replay: parked.replay.export(),
            records,
            window_left_ms: window_ends
                .map(|ends| ends.saturating_duration_since(Instant::now()).as_millis() as u64),
        };
        if self.send(Some(from), &handover).await == 0 {
            tracing::warn!(%fd, node = %from, "handover: the claiming node is gone; the session is lost");
        }
        metrics::session_moved();
        tracing::info!(%fd, node = %from, "session moved to another node");
        let moved = Moved {
            fd,
            node: Some(from.to_string()),
        };
        moved.announce(&*self.registry).await;
        Ok(())
    }

    /// Claims `session` from a stopping node and keeps it detached for the rest of its window.
    async fn adopt(&self, from: String, id: String, fd: String) {
        if self.shutdown.is_stopping() {
            return;
        }
        match self.claim(&from, &id, &fd, None, "0".into()).await {
            Ok(taken) => {
                tracing::info!(fd = %taken.fd, "detached session adopted from a stopping node");
                self.sessions
                    .keep(&taken.fd, taken.parked, taken.window_ends);
            }
            Err(reason) => {
                tracing::info!(session = %id, reason = reason.label(), "handover: a session offered by a stopping node was not adopted")
            }
        }
    }

    /// A handover that came after its claimant gave up waiting: the session is this node's
    /// now (the holder let it go), so it is kept detached for the rest of its window.
    fn adopt_late(&self, message: Message) {
        let Message::Handover {
            session,
            fd,
            info,
            replay,
            records,
            window_left_ms,
            ..
        } = message
        else {
            return;
        };
        let Ok((outbound, inbox)) = self.sessions.arriving(&fd) else {
            tracing::warn!(%fd, "handover: a late handover for a connection held here is dropped");
            return;
        };
        let arrived = Arrived {
            info,
            replay,
            records,
            window_left_ms,
        };
        if let Ok(taken) = self.install(&session, &fd, arrived, outbound, inbox) {
            self.sessions
                .keep(&taken.fd, taken.parked, taken.window_ends);
        }
    }

    /// At the end of a stop's drain: offers every detached session to the other live nodes,
    /// in turn, and waits (up to [`ADOPT_WAIT`]) until they took them. Returns how many
    /// moved; the stop ends the rest.
    pub async fn hand_over_detached(&self) -> usize {
        let detached = self.sessions.detached();
        if detached.is_empty() {
            return 0;
        }
        let nodes: Vec<String> = match self.registry.nodes().await {
            Ok(nodes) => nodes
                .into_iter()
                .filter(|node| *node != self.node)
                .collect(),
            Err(error) => {
                tracing::warn!("handover: cannot list the other nodes: {error}");
                return 0;
            }
        };
        if nodes.is_empty() {
            return 0;
        }
        for (index, (session, fd)) in detached.iter().enumerate() {
            let adopt = Message::Adopt {
                from: self.node.clone(),
                session: session.clone(),
                fd: fd.clone(),
            };
            self.send(Some(&nodes[index % nodes.len()]), &adopt).await;
        }
        let until = Instant::now() + ADOPT_WAIT;
        let still_here = || {
            let now = self.sessions.detached();
            detached
                .iter()
                .filter(|(id, _)| now.iter().any(|(here, _)| here == id))
                .count()
        };
        while still_here() > 0 && Instant::now() < until {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        detached.len() - still_here()
    }

    /// Where moved sessions live, read again from Redis.
    async fn reload(&self) {
        match self.registry.hash_get_all(FDNODE).await {
            Ok(moved) => self.locations.set_notes(moved.into_iter().collect()),
            Err(error) => {
                tracing::warn!("handover: cannot read where moved sessions live: {error}")
            }
        }
    }
}

/// What another node says.
impl Peers for Arc<Handover> {
    fn receive(&self, payload: String) {
        if let Some(moved) = Moved::decode(&payload) {
            return self.locations.note(moved);
        }
        let message = match serde_json::from_str::<Message>(&payload) {
            Ok(message) => message,
            Err(error) => return tracing::warn!("handover: unreadable message: {error}"),
        };
        match message {
            Message::Locate { req, from, session } => {
                let answer = match self.sessions.locate(&session) {
                    Some(fd) => Message::Located {
                        req,
                        node: self.node.clone(),
                        fd,
                    },
                    None => Message::Absent {
                        req,
                        ended: self.sessions.ended(&session).map(|r| r.label().to_string()),
                    },
                };
                let this = self.clone();
                tokio::spawn(async move { this.send(Some(&from), &answer).await });
            }
            Message::Claim {
                req,
                from,
                session,
                claimant,
                last,
            } => {
                let this = self.clone();
                tokio::spawn(
                    async move { this.answer_claim(req, from, session, claimant, last).await },
                );
            }
            Message::Adopt { from, session, fd } => {
                let this = self.clone();
                tokio::spawn(async move { this.adopt(from, session, fd).await });
            }
            answer @ (Message::Located { req, .. }
            | Message::Absent { req, .. }
            | Message::Handover { req, .. }
            | Message::Refused { req, .. }) => {
                let unclaimed = match self.waiting().get(&req) {
                    Some(tx) => tx.send(answer).err().map(|error| error.0),
                    None => Some(answer),
                };
                if let Some(handover @ Message::Handover { .. }) = unclaimed {
                    self.adopt_late(handover);
                }
            }
        }
    }

    fn subscribed(&self) {
        let this = self.clone();
        tokio::spawn(async move { this.reload().await });
    }
}

/// A session as it arrives from the node that held it.
struct Arrived {
    /// Its identity record.
    info: String,
    /// Its ring.
    replay: ReplayState,
    /// Its registry shadow, for re-assertion after an outage.
    records: String,
    /// What was left of its window, if it was detached.
    window_left_ms: Option<u64>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_read_back_as_sent() {
        let claim = Message::Claim {
            req: 7,
            from: "b".into(),
            session: "s".into(),
            claimant: None,
            last: "3".into(),
        };
        let text = serde_json::to_string(&claim).expect("encodes");
        assert!(text.starts_with(r#"{"kind":"claim","#), "{text}");
        match serde_json::from_str::<Message>(&text).expect("decodes") {
            Message::Claim {
                req,
                last,
                claimant,
                ..
            } => {
                assert_eq!((req, last.as_str(), claimant), (7, "3", None))
            }
            other => panic!("{other:?}"),
        }
    }
}
