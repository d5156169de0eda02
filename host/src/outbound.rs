//! What other tasks send a connection: room broadcasts, pushes, `say`.
//!
//! A connection's own replies never go through here: its task writes them to the
//! socket itself, and when the client stops reading, that task waits on the socket
//! and stops reading too (back-pressure on that connection only). Frames from
//! others must not wait — a broadcast must not stall on one slow member — so they
//! are queued here, up to `limits.outbound_queue`. Only a client that stopped
//! reading fills that; what is sent to it then is dropped and counted, and its task
//! closes it once its socket has not drained for `STALL`.
//!
//! Requests to close the connection (a module's `close`, the host stopping) come
//! the same way, so the connection waits on one thing instead of three.
//!
//! A `VecDeque` behind a mutex rather than a channel: it allocates nothing until a
//! frame arrives, which matters for the idle memory per connection.

use std::{
    collections::VecDeque,
    sync::{Arc, Mutex, MutexGuard},
};

use tokio::sync::Notify;
use tokio_tungstenite::tungstenite::Message;

/// Why another task wants the connection closed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CloseRequest {
    /// A module or the manager closed it: 1000.
    Kick,
    /// The host is stopping: 1001.
    Shutdown,
}

/// What the connection task finds in its inbox.
#[derive(Debug, PartialEq)]
pub enum Mail {
    /// Frames to write, in order.
    Frames(VecDeque<Message>),
    /// Close the connection.
    Close(CloseRequest),
}

/// What a queue holds.
#[derive(Debug, Default)]
struct Held {
    /// Frames in arrival order.
    frames: VecDeque<Message>,
    /// A close request, which goes before any frame still queued.
    close: Option<CloseRequest>,
}

/// The queue of one connection, shared by its senders and its task.
#[derive(Debug)]
struct Queue {
    /// Frames and a close request.
    held: Mutex<Held>,
    /// Signalled when a frame is queued (a permit is kept if nobody waits yet).
    ready: Notify,
    /// Most frames held at once.
    capacity: usize,
}

/// The sending side. Cheap to clone.
#[derive(Debug, Clone)]
pub struct Outbound(Arc<Queue>);

/// What became of an offered frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Offer {
    /// Queued.
    Queued,
    /// The queue is full: the client stopped reading; the frame was dropped.
    Full,
}

/// A queue holding up to `capacity` frames, as both of its ends.
pub fn queue(capacity: usize) -> (Outbound, Inbox) {
    let queue = Arc::new(Queue {
        held: Mutex::default(),
        ready: Notify::new(),
        capacity: capacity.max(1),
    });
    (Outbound(queue.clone()), Inbox(queue))
}

impl Queue {
    fn held(&self) -> MutexGuard<'_, Held> {
        self.held
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

impl Outbound {
    /// Queues a frame without waiting.
    pub fn offer(&self, frame: Message) -> Offer {
        let mut held = self.0.held();
        if held.frames.len() >= self.0.capacity {
            return Offer::Full;
        }
        held.frames.push_back(frame);
        drop(held);
        self.0.ready.notify_one();
        Offer::Queued
    }

    /// Asks the connection to close; a shutdown outranks a kick.
    pub fn close(&self, request: CloseRequest) {
        let mut held = self.0.held();
        if held.close != Some(CloseRequest::Shutdown) {
            held.close = Some(request);
        }
        drop(held);
        self.0.ready.notify_one();
    }
}

/// The connection task's end.
#[derive(Debug)]
pub struct Inbox(Arc<Queue>);

impl Inbox {
    /// Waits until something arrives: a close request first, else every queued frame.
    pub async fn take(&self) -> Mail {
        loop {
            if let Some(mail) = self.try_take() {
                return mail;
            }
            self.0.ready.notified().await;
        }
    }

    fn try_take(&self) -> Option<Mail> {
        let mut held = self.0.held();
        if let Some(request) = held.close {
            return Some(Mail::Close(request));
        }
        (!held.frames.is_empty()).then(|| Mail::Frames(std::mem::take(&mut held.frames)))
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[tokio::test]
    async fn frames_arrive_in_order_and_a_full_queue_drops() {
        let (outbound, inbox) = queue(2);
        assert_eq!(outbound.offer(Message::text("a")), Offer::Queued);
        assert_eq!(outbound.offer(Message::text("b")), Offer::Queued);
        assert_eq!(outbound.offer(Message::text("c")), Offer::Full);
        assert_eq!(
            inbox.take().await,
            Mail::Frames([Message::text("a"), Message::text("b")].into())
        );
        let waiting = tokio::time::timeout(Duration::from_millis(20), inbox.take()).await;
        assert!(waiting.is_err(), "an empty queue waits");
        assert_eq!(outbound.offer(Message::text("d")), Offer::Queued);
        assert_eq!(
            inbox.take().await,
            Mail::Frames([Message::text("d")].into())
        );
    }

    #[tokio::test]
    async fn a_close_request_goes_first_and_shutdown_outranks_a_kick() {
        let (outbound, inbox) = queue(4);
        outbound.offer(Message::text("a"));
        outbound.close(CloseRequest::Shutdown);
        outbound.close(CloseRequest::Kick);
        assert_eq!(inbox.take().await, Mail::Close(CloseRequest::Shutdown));
    }
}
