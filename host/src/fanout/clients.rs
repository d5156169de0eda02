//! The connections this node holds, and the outbound queue of each.
//!
//! Other tasks (a room broadcast, a push, the manager) never write to a socket:
//! they put a frame on the connection's bounded [`Outbound`] queue and the
//! connection's own task does the I/O. A client whose queue goes past
//! `limits.outbound_bytes` is a slow consumer: its queue asks its task to close it.
//!
//! A resumable session whose client dropped stays in the table, *detached*: frames
//! for it are kept in its queue until the client resumes (README.md, "Resumable
//! sessions"). It counts in what a frame reached, not among the connected clients.
//!
//! A session that moved to another node (on Redis) leaves its entry for a note of where
//! it went, under the same lock: a frame looks up either, never neither, so none is lost
//! in the move. The notes also hold where sessions born elsewhere moved to.

use std::{
    collections::HashMap,
    sync::{
        atomic::{AtomicU64, Ordering},
        Arc, RwLock, RwLockReadGuard, RwLockWriteGuard,
    },
};

use tokio_tungstenite::tungstenite::{Message, Utf8Bytes};

use crate::{
    fanout::outbound::{CloseRequest, Offer, Outbound},
    identity::Identity,
};

/// What other tasks hold of a connection.
#[derive(Debug, Clone)]
pub struct ClientHandle {
    /// Its outbound queue.
    pub outbound: Outbound,
    /// Who it is.
    pub identity: Arc<Identity>,
    /// Whether a socket serves it (false: a detached session).
    pub attached: bool,
}

/// The connections of this node, and where moved sessions live.
#[derive(Debug, Default)]
struct Table {
    /// fd → handle.
    here: HashMap<String, ClientHandle>,
    /// fd → node, for sessions living on another node than their fd names (or, for fds
    /// born here, than this one).
    away: HashMap<String, String>,
}

/// The local connection table.
#[derive(Debug, Default)]
pub struct Clients {
    /// A std lock: held for a lookup or an insert, never across an await.
    table: RwLock<Table>,
    /// Frames not queued because a client's queue was full, or dropped with a slow
    /// consumer's queue.
    dropped: AtomicU64,
    /// How many entries are detached sessions.
    detached: AtomicU64,
}

impl Clients {
    /// An empty table.
    pub fn new() -> Self {
        Self::default()
    }

    fn read(&self) -> RwLockReadGuard<'_, Table> {
        self.table
            .read()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn write(&self) -> RwLockWriteGuard<'_, Table> {
        self.table
            .write()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Adds a connection.
    pub fn insert(&self, handle: ClientHandle) {
        if !handle.attached {
            self.detached.fetch_add(1, Ordering::Relaxed);
        }
        let mut table = self.write();
        table.away.remove(&handle.identity.fd);
        if let Some(old) = table.here.insert(handle.identity.fd.clone(), handle) {
            self.forget(&old);
        }
    }

    fn forget(&self, handle: &ClientHandle) {
        if !handle.attached {
            self.detached.fetch_sub(1, Ordering::Relaxed);
        }
    }

    /// Adds a connection unless one with its fd is here already; `false` then.
    pub fn insert_new(&self, handle: ClientHandle) -> bool {
        let mut table = self.write();
        if table.here.contains_key(&handle.identity.fd) {
            return false;
        }
        if !handle.attached {
            self.detached.fetch_add(1, Ordering::Relaxed);
        }
        table.away.remove(&handle.identity.fd);
        table.here.insert(handle.identity.fd.clone(), handle);
        true
    }

    /// Removes the connection of `fd` if its queue is `outbound` (not a newer one).
    pub fn remove_queue(&self, fd: &str, outbound: &Outbound) {
        let mut table = self.write();
        if table
            .here
            .get(fd)
            .is_some_and(|handle| handle.outbound.same(outbound))
        {
            if let Some(handle) = table.here.remove(fd) {
                self.forget(&handle);
            }
        }
    }

    /// Removes a connection; senders no longer reach it.
    pub fn remove(&self, fd: &str) {
        let removed = self.write().here.remove(fd);
        if let Some(handle) = removed {
            self.forget(&handle);
        }
    }

    /// The session of `fd` moved to `node`: frames for it go there from now on.
    pub fn move_away(&self, fd: &str, node: &str) {
        let mut table = self.write();
        if let Some(handle) = table.here.remove(fd) {
            self.forget(&handle);
        }
        table.away.insert(fd.to_string(), node.to_string());
    }

    /// Notes where another node's session `fd` lives (`None`: where its fd says, or
    /// nowhere). A connection held here keeps its entry.
    pub fn note_away(&self, fd: &str, node: Option<&str>) {
        let mut table = self.write();
        match node {
            Some(_) if table.here.contains_key(fd) => {}
            Some(node) => {
                table.away.insert(fd.to_string(), node.to_string());
            }
            None => {
                table.away.remove(fd);
            }
        }
    }

    /// Replaces every note of where sessions live (after the relay missed announcements).
    pub fn set_away(&self, away: HashMap<String, String>) {
        let mut table = self.write();
        let away = away
            .into_iter()
            .filter(|(fd, _)| !table.here.contains_key(fd))
            .collect();
        table.away = away;
    }

    /// Whether a connection with this fd is here.
    pub fn holds(&self, fd: &str) -> bool {
        self.read().here.contains_key(fd)
    }

    /// The node a moved session `fd` lives on, if it is noted.
    pub fn away(&self, fd: &str) -> Option<String> {
        self.read().away.get(fd).cloned()
    }

    /// Marks a session attached to a socket or detached from it; `false` if it is not here.
    pub fn set_attached(&self, fd: &str, attached: bool) -> bool {
        let mut table = self.write();
        let Some(handle) = table.here.get_mut(fd) else {
            return false;
        };
        if handle.attached != attached {
            handle.attached = attached;
            match attached {
                true => self.detached.fetch_sub(1, Ordering::Relaxed),
                false => self.detached.fetch_add(1, Ordering::Relaxed),
            };
        }
        true
    }

    /// Number of local connections a socket serves (detached sessions left out).
    pub fn len(&self) -> usize {
        let table = self.read();
        table
            .here
            .len()
            .saturating_sub(self.detached.load(Ordering::Relaxed) as usize)
    }

    /// Whether no connection is open here.
    pub fn is_empty(&self) -> bool {
        self.read().here.is_empty()
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
            if let Some(handle) = table.here.get(fd) {
                self.queue(handle, text);
                reached += 1;
            } else {
                elsewhere(fd, table.away.get(fd).map(String::as_str));
            }
        }
        reached
    }

    /// The fds of every local connection a socket serves, now.
    pub fn fds(&self) -> Vec<String> {
        let table = self.read();
        table
            .here
            .values()
            .filter(|handle| handle.attached)
            .map(|handle| handle.identity.fd.clone())
            .collect()
    }

    /// Asks a connection to close for `request`; `true` if it is connected here.
    pub fn close_with(&self, fd: &str, request: CloseRequest) -> bool {
        self.read()
            .here
            .get(fd)
            .map(|handle| handle.outbound.close(request))
            .is_some()
    }

    /// Queues a frame for every local connection; returns how many.
    pub fn send_all(&self, text: &Utf8Bytes) -> u64 {
        let table = self.read();
        for handle in table.here.values() {
            self.queue(handle, text);
        }
        table.here.len() as u64
    }

    /// Asks a connection to close; `true` if it is connected here.
    pub fn close(&self, fd: &str) -> bool {
        self.close_with(fd, CloseRequest::Kick)
    }

    fn queue(&self, handle: &ClientHandle, text: &Utf8Bytes) {
        match handle.outbound.offer(Message::Text(text.clone())) {
            Offer::Queued | Offer::Closing => {}
            Offer::Full => {
                self.dropped.fetch_add(1, Ordering::Relaxed);
            }
            Offer::SlowConsumer { dropped } => {
                self.dropped
                    .fetch_add(dropped as u64 + 1, Ordering::Relaxed);
                tracing::warn!(
                    fd = %handle.identity.fd,
                    "slow consumer: its outbound queue went past limits.outbound_bytes; closing it (1008)"
                );
            }
        }
    }
}
