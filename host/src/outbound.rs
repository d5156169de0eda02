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
//! A `VecDeque` behind a mutex rather than a channel: it allocates nothing until a
//! frame arrives, which matters for the idle memory per connection.

use std::{
    collections::VecDeque,
    sync::{Arc, Mutex, MutexGuard},
};

use tokio::sync::Notify;
use tokio_tungstenite::tungstenite::Message;

/// The queue of one connection, shared by its senders and its task.
#[derive(Debug)]
struct Queue {
    /// Frames in arrival order.
    frames: Mutex<VecDeque<Message>>,
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
        frames: Mutex::new(VecDeque::new()),
        ready: Notify::new(),
        capacity: capacity.max(1),
    });
    (Outbound(queue.clone()), Inbox(queue))
}

impl Queue {
    fn frames(&self) -> MutexGuard<'_, VecDeque<Message>> {
        self.frames
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

impl Outbound {
    /// Queues a frame without waiting.
    pub fn offer(&self, frame: Message) -> Offer {
        let mut frames = self.0.frames();
        if frames.len() >= self.0.capacity {
            return Offer::Full;
        }
        frames.push_back(frame);
        drop(frames);
        self.0.ready.notify_one();
        Offer::Queued
    }
}

/// The connection task's end.
#[derive(Debug)]
pub struct Inbox(Arc<Queue>);

impl Inbox {
    /// Waits until frames are queued, then takes all of them.
    pub async fn take(&self) -> VecDeque<Message> {
        loop {
            let taken = std::mem::take(&mut *self.0.frames());
            if !taken.is_empty() {
                return taken;
            }
            self.0.ready.notified().await;
        }
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
        assert_eq!(inbox.take().await, [Message::text("a"), Message::text("b")]);
        let waiting = tokio::time::timeout(Duration::from_millis(20), inbox.take()).await;
        assert!(waiting.is_err(), "an empty queue waits");
        assert_eq!(outbound.offer(Message::text("d")), Offer::Queued);
        assert_eq!(inbox.take().await, [Message::text("d")]);
    }
}
