//! Where each fd lives: here, with its outbound queue, or on another node.
//!
//! An fd names the node it was born on, which is where it lives unless its resumable
//! session moved (README.md, "Resumable sessions"). This table is the one answer to
//! "where do frames for this fd go?": [`Place::Here`] with the queue its connection task
//! reads, or [`Place::Away`] with the node it moved to. One entry per fd, under one lock,
//! so a session that moves turns from its queue into a note in one step: a frame finds
//! either, never neither, and none is lost in the move.
//!
//! It also keeps the notes in step with the cluster: the moves other nodes announce
//! ([`Moved`]), what `WEBSOCKET_FDNODE` says after a reconnect, and the end of a session
//! that lived here though born elsewhere, which every node must forget.

use std::{
    collections::HashMap,
    sync::{
        atomic::{AtomicU64, Ordering},
        RwLock, RwLockReadGuard, RwLockWriteGuard,
    },
};

use serde::{Deserialize, Serialize};
use tokio_tungstenite::tungstenite::{Message, Utf8Bytes};

use crate::{
    engine::end::CloseRequest,
    fanout::outbound::{Offer, Outbound},
    identity::node_of,
    registry::Registry,
};

/// Where an fd lives.
#[derive(Debug, Clone)]
enum Place {
    /// On this node: its outbound queue.
    Here(Outbound),
    /// On another node than its fd names (or, for an fd born here, than this one).
    Away(String),
}

/// A node's announcement that an fd moved (`node`), or that a moved fd ended (`None`):
/// what every node's table notes. It travels between nodes as `{"kind":"moved",...}`
/// beside the handover's messages.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename = "moved")]
pub struct Moved {
    /// The fd.
    pub fd: String,
    /// Where it lives now; `None`: it ended.
    pub node: Option<String>,
}

impl Moved {
    /// The announcement as it travels.
    pub fn encode(&self) -> String {
        serde_json::to_string(self).unwrap_or_default()
    }

    /// An announcement another node sent; `None` for any other message.
    pub fn decode(payload: &str) -> Option<Moved> {
        /// What the tag says, with the fields of an announcement.
        #[derive(Deserialize)]
        struct Tagged {
            kind: String,
            fd: String,
            node: Option<String>,
        }
        let tagged: Tagged = serde_json::from_str(payload).ok()?;
        (tagged.kind == "moved").then_some(Moved {
            fd: tagged.fd,
            node: tagged.node,
        })
    }

    /// Tells every node.
    pub async fn announce(&self, registry: &dyn Registry) {
        if let Err(error) = registry.send_peer(None, &self.encode()).await {
            tracing::debug!(fd = %self.fd, "a session's move or end was not announced: {error}");
        }
    }
}

/// The fds of this node and the notes of where moved ones live.
#[derive(Debug)]
pub struct Locations {
    /// This node's id.
    node: String,
    /// fd → place. A std lock: held for a lookup or an insert, never across an await.
    table: RwLock<HashMap<String, Place>>,
    /// Frames not queued because a client's queue was full, or dropped with a slow
    /// consumer's queue.
    dropped: AtomicU64,
}

impl Locations {
    /// No fds yet, on node `node`.
    pub fn new(node: String) -> Self {
        Locations {
            node,
            table: RwLock::default(),
            dropped: AtomicU64::new(0),
        }
    }

    /// This node's id.
    pub fn node(&self) -> &str {
        &self.node
    }

    fn read(&self) -> RwLockReadGuard<'_, HashMap<String, Place>> {
        self.table
            .read()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn write(&self) -> RwLockWriteGuard<'_, HashMap<String, Place>> {
        self.table
            .write()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// `fd` lives here from now on, behind `outbound` (it replaces a note of another node).
    pub fn arrive(&self, fd: &str, outbound: Outbound) {
        self.write().insert(fd.to_string(), Place::Here(outbound));
    }

    /// [`Locations::arrive`], unless a queue for `fd` is here already; `false` then.
    pub fn arrive_new(&self, fd: &str, outbound: Outbound) -> bool {
        let mut table = self.write();
        if matches!(table.get(fd), Some(Place::Here(_))) {
            return false;
        }
        table.insert(fd.to_string(), Place::Here(outbound));
        true
    }

    /// `fd` no longer lives here, if its queue is still `outbound` (not a newer one).
    pub fn leave(&self, fd: &str, outbound: &Outbound) {
        let mut table = self.write();
        if matches!(table.get(fd), Some(Place::Here(queue)) if queue.same(outbound)) {
            table.remove(fd);
        }
    }

    /// `fd`'s session moved to `node`: its queue turns into a note, in one step.
    pub fn move_away(&self, fd: &str, node: &str) {
        self.write()
            .insert(fd.to_string(), Place::Away(node.to_string()));
    }

    /// What another node announced: where `fd` lives now, or that it ended. A queue held
    /// here is kept (this node knows better), as is a note that means the fd's own node.
    pub fn note(&self, moved: Moved) {
        let mut table = self.write();
        if matches!(table.get(&moved.fd), Some(Place::Here(_))) {
            return;
        }
        match moved
            .node
            .filter(|node| node_of(&moved.fd) != Some(node.as_str()))
        {
            Some(node) => {
                table.insert(moved.fd, Place::Away(node));
            }
            None => {
                table.remove(&moved.fd);
            }
        }
    }

    /// Replaces every note by what `WEBSOCKET_FDNODE` says (after the relay may have missed
    /// announcements); queues held here stay.
    pub fn set_notes(&self, moved: HashMap<String, String>) {
        let mut table = self.write();
        table.retain(|_, place| matches!(place, Place::Here(_)));
        for (fd, node) in moved {
            if node_of(&fd) != Some(node.as_str()) {
                table.entry(fd).or_insert(Place::Away(node));
            }
        }
    }

    /// Whether `fd` has a queue here.
    pub fn holds(&self, fd: &str) -> bool {
        matches!(self.read().get(fd), Some(Place::Here(_)))
    }

    /// The other node frames for an `fd` not held here go to: where it moved (`away`), else
    /// where it was born; `None` when that is this node (it is gone).
    pub fn elsewhere<'a>(&'a self, fd: &'a str, away: Option<&'a str>) -> Option<&'a str> {
        away.or_else(|| node_of(fd))
            .filter(|node| *node != self.node)
    }

    /// The node an fd that is not held here lives on, if it is noted.
    pub fn away(&self, fd: &str) -> Option<String> {
        match self.read().get(fd) {
            Some(Place::Away(node)) => Some(node.clone()),
            _ => None,
        }
    }

    /// Frames dropped so far because a client stopped reading.
    pub fn dropped(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }

    /// Queues a frame for each fd in `fds` held here; returns how many. Each other fd goes
    /// to `elsewhere` with the node it is noted to live on, under the same lock.
    pub fn send_many<'a>(
        &self,
        fds: impl IntoIterator<Item = &'a str>,
        text: &Utf8Bytes,
        mut elsewhere: impl FnMut(&'a str, Option<&str>),
    ) -> u64 {
        let table = self.read();
        let mut reached = 0;
        for fd in fds {
            match table.get(fd) {
                Some(Place::Here(outbound)) => {
                    self.queue(fd, outbound, text);
                    reached += 1;
                }
                Some(Place::Away(node)) => elsewhere(fd, Some(node)),
                None => elsewhere(fd, None),
            }
        }
        reached
    }

    /// Queues a frame for every fd held here; returns how many.
    pub fn send_all(&self, text: &Utf8Bytes) -> u64 {
        let table = self.read();
        let mut reached = 0;
        for (fd, place) in table.iter() {
            if let Place::Here(outbound) = place {
                self.queue(fd, outbound, text);
                reached += 1;
            }
        }
        reached
    }

    /// Asks the connection of `fd` to close for `request`; `true` if it is held here.
    pub fn close(&self, fd: &str, request: CloseRequest) -> bool {
        match self.read().get(fd) {
            Some(Place::Here(outbound)) => {
                outbound.close(request);
                true
            }
            _ => false,
        }
    }

    fn queue(&self, fd: &str, outbound: &Outbound, text: &Utf8Bytes) {
        match outbound.offer(Message::Text(text.clone())) {
            Offer::Queued | Offer::Closing => {}
            Offer::Full => {
                self.dropped.fetch_add(1, Ordering::Relaxed);
            }
            Offer::SlowConsumer { dropped, detached } => {
                self.dropped
                    .fetch_add(dropped as u64 + 1, Ordering::Relaxed);
                match detached {
                    true => tracing::warn!(
                        %fd,
                        frames = dropped + 1,
                        "detached session: its frames went past recovery.max_frames or recovery.max_bytes; the session ends"
                    ),
                    false => tracing::warn!(
                        %fd,
                        "slow consumer: its outbound queue went past limits.outbound_bytes; closing it (1008)"
                    ),
                }
            }
        }
    }

    /// Tells every node that `fd` ended, if it lived here though born on another node, so
    /// they forget where it lived.
    pub async fn announce_gone(&self, registry: &dyn Registry, fd: &str) {
        if node_of(fd).is_some_and(|born| born != self.node) {
            let gone = Moved {
                fd: fd.to_string(),
                node: None,
            };
            gone.announce(registry).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fanout::outbound;

    fn text(t: &'static str) -> Utf8Bytes {
        Utf8Bytes::from_static(t)
    }

    #[test]
    fn a_frame_finds_the_queue_or_the_note_never_neither() {
        let here = Locations::new("a".into());
        let (queue, _inbox) = outbound::queue(8, 1 << 20);
        here.arrive("a/1/1", queue);
        let mut elsewhere = Vec::new();
        assert_eq!(
            here.send_many(["a/1/1"], &text("x"), |fd, node| elsewhere
                .push((fd, node.map(String::from)))),
            1
        );
        here.move_away("a/1/1", "b");
        assert_eq!(
            here.send_many(["a/1/1"], &text("y"), |fd, node| elsewhere
                .push((fd, node.map(String::from)))),
            0
        );
        assert_eq!(elsewhere, [("a/1/1", Some("b".to_string()))]);
        assert!(!here.holds("a/1/1"));
    }

    #[test]
    fn notes_follow_announcements_and_a_queue_here_wins() {
        let here = Locations::new("a".into());
        here.note(Moved {
            fd: "b/1/1".into(),
            node: Some("c".into()),
        });
        assert_eq!(here.away("b/1/1").as_deref(), Some("c"));
        assert_eq!(here.elsewhere("b/1/1", Some("c")), Some("c"));
        here.note(Moved {
            fd: "b/1/1".into(),
            node: Some("b".into()),
        });
        assert_eq!(
            here.away("b/1/1"),
            None,
            "back on its own node: no note needed"
        );
        assert_eq!(here.elsewhere("b/1/1", None), Some("b"));
        let (queue, _inbox) = outbound::queue(8, 1 << 20);
        here.arrive("b/1/2", queue.clone());
        here.note(Moved {
            fd: "b/1/2".into(),
            node: Some("c".into()),
        });
        assert!(
            here.holds("b/1/2"),
            "this node holds it: an old announcement does not move it"
        );
        here.leave("b/1/2", &queue);
        assert!(!here.holds("b/1/2"));
        assert_eq!(here.elsewhere("a/1/9", None), None, "born here and gone");
    }

    #[test]
    fn announcements_read_back_and_nothing_else_reads_as_one() {
        let moved = Moved {
            fd: "a/1/1".into(),
            node: Some("b".into()),
        };
        let text = moved.encode();
        assert_eq!(text, r#"{"kind":"moved","fd":"a/1/1","node":"b"}"#);
        assert_eq!(Moved::decode(&text), Some(moved));
        assert_eq!(
            Moved::decode(r#"{"kind":"claim","fd":"a/1/1","node":"b"}"#),
            None
        );
    }

    #[test]
    fn a_newer_queue_is_not_removed_by_an_older_ones_end() {
        let here = Locations::new("a".into());
        let (old, _i1) = outbound::queue(8, 1 << 20);
        let (new, _i2) = outbound::queue(8, 1 << 20);
        here.arrive("a/1/1", old.clone());
        assert!(!here.arrive_new("a/1/1", new.clone()));
        here.arrive("a/1/1", new.clone());
        here.leave("a/1/1", &old);
        assert!(here.holds("a/1/1"));
    }
}
