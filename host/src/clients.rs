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

use std::{
    collections::HashMap,
    sync::{
        atomic::{AtomicU64, Ordering},
        Arc, RwLock, RwLockReadGuard, RwLockWriteGuard,
    },
    time::Duration,
};

use tokio_tungstenite::tungstenite::{Message, Utf8Bytes};

use crate::{
    identity::Identity,
    outbound::{CloseRequest, Offer, Outbound},
};

/// How long a client's socket may take nothing before it is closed as a slow consumer.
pub const STALL: Duration = Duration::from_secs(10);

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

/// The local connection table.
#[derive(Debug, Default)]
pub struct Clients {
    /// fd → handle. A std lock: held for a lookup or an insert, never across an await.
    table: RwLock<HashMap<String, ClientHandle>>,
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

    fn read(&self) -> RwLockReadGuard<'_, HashMap<String, ClientHandle>> {
        self.table
            .read()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn write(&self) -> RwLockWriteGuard<'_, HashMap<String, ClientHandle>> {
        self.table
            .write()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Adds a connection.
    pub fn insert(&self, handle: ClientHandle) {
        if !handle.attached {
            self.detached.fetch_add(1, Ordering::Relaxed);
        }
        if let Some(old) = self.write().insert(handle.identity.fd.clone(), handle) {
            self.forget(&old);
        }
    }

    fn forget(&self, handle: &ClientHandle) {
        if !handle.attached {
            self.detached.fetch_sub(1, Ordering::Relaxed);
        }
    }

    /// Removes a connection; senders no longer reach it.
    pub fn remove(&self, fd: &str) {
        let removed = self.write().remove(fd);
        if let Some(handle) = removed {
            self.forget(&handle);
        }
    }

    /// Marks a session attached to a socket or detached from it; `false` if it is not here.
    pub fn set_attached(&self, fd: &str, attached: bool) -> bool {
        let mut table = self.write();
        let Some(handle) = table.get_mut(fd) else {
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
            .len()
            .saturating_sub(self.detached.load(Ordering::Relaxed) as usize)
    }

    /// Whether no connection is open here.
    pub fn is_empty(&self) -> bool {
        self.read().is_empty()
    }

    /// Frames dropped so far because a client stopped reading.
    pub fn dropped(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }

    /// Queues a frame for each connected fd in `fds`; returns how many are connected here.
    pub fn send_many<'a>(&self, fds: impl IntoIterator<Item = &'a str>, text: &Utf8Bytes) -> u64 {
        let table = self.read();
        let mut reached = 0;
        for fd in fds {
            if let Some(handle) = table.get(fd) {
                self.queue(handle, text);
                reached += 1;
            }
        }
        reached
    }

    /// The fds of every local connection a socket serves, now.
    pub fn fds(&self) -> Vec<String> {
        let table = self.read();
        table
            .values()
            .filter(|handle| handle.attached)
            .map(|handle| handle.identity.fd.clone())
            .collect()
    }

    /// Asks a connection to close for `request`; `true` if it is connected here.
    pub fn close_with(&self, fd: &str, request: CloseRequest) -> bool {
        self.read()
            .get(fd)
            .map(|handle| handle.outbound.close(request))
            .is_some()
    }

    /// Queues a frame for every local connection; returns how many.
    pub fn send_all(&self, text: &Utf8Bytes) -> u64 {
        let table = self.read();
        for handle in table.values() {
            self.queue(handle, text);
        }
        table.len() as u64
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
