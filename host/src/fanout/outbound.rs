//! What other tasks send a connection: room broadcasts, pushes, `say`.
//!
//! A connection's own replies never go through here: its task writes them to the
//! socket itself, and when the client stops reading, that task waits on the socket
//! and stops reading too (back-pressure on that connection only). Frames from
//! others must not wait — a broadcast must not stall on one slow member — so they
//! are queued here, and the queue is what a client that stops reading makes the host
//! hold for it. It is bounded twice:
//!
//! - in frames (`limits.outbound_queue`): a full queue drops what is offered (and the
//!   drop is counted), as it always did;
//! - in bytes (`limits.outbound_bytes`, README "Bad input"): the bytes queued plus the
//!   bytes the task took and has not yet flushed to the socket. A frame that would go
//!   past it marks the client a *slow consumer*: what is queued is dropped at once (so
//!   the memory comes back now, not when the socket gives up) and the connection is
//!   asked to close with 1008. Counting in bytes is what bounds memory: 1,024 frames
//!   of 60 KB were 60 MB per client (issue 12), Centrifugo's 1 MiB default is ours.
//!
//! Requests to close the connection (a module's `close`, the host stopping, a slow
//! consumer) come the same way, so the connection waits on one thing instead of three;
//! they have their own signal so that a task blocked writing to a stuck socket can be
//! interrupted by one without being woken by every frame.
//!
//! A `VecDeque` behind a mutex rather than a channel: it allocates nothing until a
//! frame arrives, which matters for the idle memory per connection.

use std::{
    collections::VecDeque,
    sync::{Arc, Mutex, MutexGuard},
};

use tokio::sync::Notify;
use tokio_tungstenite::tungstenite::Message;

pub use crate::engine::end::CloseRequest;

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
    /// Payload bytes of `frames`.
    queued_bytes: usize,
    /// Payload bytes the task took and has not reported flushed.
    taken_bytes: usize,
    /// A close request, which goes before any frame still queued; the strongest wins.
    close: Option<CloseRequest>,
    /// While the connection's session is detached (no task takes frames): its bounds
    /// `(frames, bytes)`, past which the session ends instead of dropping frames.
    detached: Option<(usize, usize)>,
    /// The connection has a resumable session: a request that detaches it does not stop
    /// frames from being kept.
    resumable: bool,
}

/// The queue of one connection, shared by its senders and its task.
#[derive(Debug)]
struct Queue {
    /// Frames and a close request.
    held: Mutex<Held>,
    /// Signalled when a frame or a close request is queued (a permit is kept if nobody waits yet).
    ready: Notify,
    /// Signalled when a close request is made.
    closing: Notify,
    /// Most frames held at once.
    max_frames: usize,
    /// Most payload bytes held at once (queued plus taken and not yet flushed).
    max_bytes: usize,
}

/// The sending side. Cheap to clone.
#[derive(Debug, Clone)]
pub struct Outbound(Arc<Queue>);

/// What became of an offered frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Offer {
    /// Queued.
    Queued,
    /// The queue holds `limits.outbound_queue` frames: the frame was dropped.
    Full,
    /// The frame would have taken the queue past `limits.outbound_bytes` (or, for a detached
    /// session, past `recovery.max_frames` / `max_bytes`): it and every queued frame were
    /// dropped, and the connection is asked to close as a slow consumer.
    SlowConsumer {
        /// The queued frames dropped with it.
        dropped: usize,
        /// The session was detached: no socket to close, the session ends.
        detached: bool,
    },
    /// The connection is closing: the frame was dropped.
    Closing,
}

/// A queue holding up to `max_frames` frames and `max_bytes` bytes, as both of its ends.
pub fn queue(max_frames: usize, max_bytes: usize) -> (Outbound, Inbox) {
    let queue = Arc::new(Queue {
        held: Mutex::default(),
        ready: Notify::new(),
        closing: Notify::new(),
        max_frames: max_frames.max(1),
        max_bytes: max_bytes.max(1),
    });
    (Outbound(queue.clone()), Inbox(queue))
}

/// The bytes a frame counts for: its payload (a frame's header adds at most 14).
fn size(frame: &Message) -> usize {
    frame.len()
}

impl Queue {
    fn held(&self) -> MutexGuard<'_, Held> {
        self.held
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Records a close request (the strongest one wins) and wakes the task.
    fn request_close(&self, held: &mut Held, request: CloseRequest) {
        held.close = held.close.max(Some(request));
        self.ready.notify_one();
        self.closing.notify_one();
    }
}

impl Outbound {
    /// Queues a frame without waiting.
    pub fn offer(&self, frame: Message) -> Offer {
        let mut held = self.0.held();
        if let Some(request) = held.close {
            if !(held.resumable && request.detaches()) {
                return Offer::Closing;
            }
        }
        if let Some((max_frames, max_bytes)) = held.detached {
            // A detached session keeps every frame or ends: none may be lost silently.
            if held.frames.len() >= max_frames || held.queued_bytes + size(&frame) > max_bytes {
                let dropped = std::mem::take(&mut held.frames).len();
                held.queued_bytes = 0;
                self.0.request_close(&mut held, CloseRequest::SlowConsumer);
                return Offer::SlowConsumer {
                    dropped,
                    detached: true,
                };
            }
        }
        if held.frames.len() >= self.0.max_frames {
            return Offer::Full;
        }
        let bytes = size(&frame);
        if held.queued_bytes + held.taken_bytes + bytes > self.0.max_bytes {
            let dropped = std::mem::take(&mut held.frames).len();
            held.queued_bytes = 0;
            self.0.request_close(&mut held, CloseRequest::SlowConsumer);
            return Offer::SlowConsumer {
                dropped,
                detached: false,
            };
        }
        held.frames.push_back(frame);
        held.queued_bytes += bytes;
        drop(held);
        self.0.ready.notify_one();
        Offer::Queued
    }

    /// Whether both are the same queue.
    pub fn same(&self, other: &Outbound) -> bool {
        Arc::ptr_eq(&self.0, &other.0)
    }

    /// Asks the connection to close; a stronger request (see [`CloseRequest`]) is kept.
    pub fn close(&self, request: CloseRequest) {
        let mut held = self.0.held();
        self.0.request_close(&mut held, request);
    }

    /// Waits for a close request (what waits on a detached session).
    pub async fn close_requested(&self) -> CloseRequest {
        wait_for_close(&self.0).await
    }
}

async fn wait_for_close(queue: &Queue) -> CloseRequest {
    loop {
        let notified = queue.closing.notified();
        if let Some(request) = queue.held().close {
            return request;
        }
        notified.await;
    }
}

/// The connection task's end.
#[derive(Debug)]
pub struct Inbox(Arc<Queue>);

impl Inbox {
    /// Waits until something arrives: a close request first, else every queued frame.
    /// The frames' bytes count against the limit until [`Inbox::flushed`].
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
        if held.frames.is_empty() {
            return None;
        }
        held.taken_bytes += std::mem::take(&mut held.queued_bytes);
        Some(Mail::Frames(std::mem::take(&mut held.frames)))
    }

    /// Takes the frames waiting, leaving any close request where it is (a resume stamps
    /// what waited for a detached session, so the client learns how many it missed).
    pub fn take_frames(&self) -> VecDeque<Message> {
        let mut held = self.0.held();
        held.queued_bytes = 0;
        std::mem::take(&mut held.frames)
    }

    /// The task flushed everything it took to the socket: those bytes no longer count.
    pub fn flushed(&self) {
        self.0.held().taken_bytes = 0;
    }

    /// Waits for a close request (used while the task is blocked writing).
    pub async fn close_requested(&self) -> CloseRequest {
        wait_for_close(&self.0).await
    }

    /// The task that held this queue let its session go detached: frames are kept from now
    /// on within `(max_frames, max_bytes)` (past them the session ends), and `handled`, the
    /// request that detached it, is forgotten (a stronger one made meanwhile stays), as is
    /// a takeover, which the detached session now satisfies whatever ended its socket.
    pub fn detach(&self, handled: Option<CloseRequest>, max_frames: usize, max_bytes: usize) {
        let mut held = self.0.held();
        if held.close == Some(CloseRequest::Takeover)
            || (handled.is_some() && held.close == handled)
        {
            held.close = None;
        }
        held.taken_bytes = 0;
        held.detached = Some((max_frames.max(1), max_bytes.max(1)));
    }

    /// A (resumed) session's task holds this queue: the connection's own bounds apply, and
    /// a request that detaches the session keeps frames coming.
    pub fn attach(&self) {
        let mut held = self.0.held();
        held.detached = None;
        held.resumable = true;
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    fn text(n: usize) -> Message {
        Message::text("x".repeat(n))
    }

    #[tokio::test]
    async fn frames_arrive_in_order_and_a_full_queue_drops() {
        let (outbound, inbox) = queue(2, 1 << 20);
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
    async fn a_close_request_goes_first_and_the_strongest_wins() {
        let (outbound, inbox) = queue(4, 1 << 20);
        outbound.offer(Message::text("a"));
        outbound.close(CloseRequest::Shutdown);
        outbound.close(CloseRequest::Kick);
        assert_eq!(inbox.take().await, Mail::Close(CloseRequest::Shutdown));
        outbound.close(CloseRequest::SlowConsumer);
        assert_eq!(inbox.take().await, Mail::Close(CloseRequest::SlowConsumer));
        assert_eq!(outbound.offer(Message::text("b")), Offer::Closing);
    }

    #[tokio::test]
    async fn bytes_taken_count_until_flushed() {
        let (outbound, inbox) = queue(100, 1000);
        assert_eq!(outbound.offer(text(400)), Offer::Queued);
        assert_eq!(outbound.offer(text(400)), Offer::Queued);
        assert!(matches!(inbox.take().await, Mail::Frames(frames) if frames.len() == 2));
        // Taken, not flushed: the 800 bytes still count, so 201 more are too many.
        assert_eq!(
            outbound.offer(text(201)),
            Offer::SlowConsumer {
                dropped: 0,
                detached: false
            }
        );
        let (outbound, inbox) = queue(100, 1000);
        outbound.offer(text(400));
        outbound.offer(text(400));
        assert!(matches!(inbox.take().await, Mail::Frames(frames) if frames.len() == 2));
        inbox.flushed();
        // Flushed: nothing counts any more.
        assert_eq!(outbound.offer(text(1000)), Offer::Queued);
    }

    #[tokio::test]
    async fn going_past_the_bytes_drops_the_queue_and_asks_for_a_slow_consumer_close() {
        let (outbound, inbox) = queue(100, 1000);
        assert_eq!(outbound.offer(text(600)), Offer::Queued);
        assert_eq!(outbound.offer(text(400)), Offer::Queued);
        // 1000 held: one more byte is too many.
        assert_eq!(
            outbound.offer(text(1)),
            Offer::SlowConsumer {
                dropped: 2,
                detached: false
            }
        );
        {
            let held = inbox.0.held();
            assert!(
                held.frames.is_empty(),
                "a slow consumer's frames are dropped at once"
            );
            assert_eq!(held.queued_bytes, 0);
        }
        assert_eq!(inbox.take().await, Mail::Close(CloseRequest::SlowConsumer));
        assert_eq!(outbound.offer(text(1)), Offer::Closing);
    }

    #[tokio::test]
    async fn a_detached_queue_keeps_frames_within_its_bounds_or_ends_the_session() {
        let (outbound, inbox) = queue(100, 1000);
        outbound.close(CloseRequest::Shutdown);
        inbox.detach(Some(CloseRequest::Shutdown), 2, 1000);
        assert_eq!(
            outbound.offer(text(1)),
            Offer::Queued,
            "the drain's request is forgotten"
        );
        assert_eq!(outbound.offer(text(1)), Offer::Queued);
        assert_eq!(
            outbound.offer(text(1)),
            Offer::SlowConsumer {
                dropped: 2,
                detached: true
            }
        );
        assert_eq!(outbound.close_requested().await, CloseRequest::SlowConsumer);

        let (outbound, inbox) = queue(100, 1000);
        inbox.detach(None, 10, 10);
        assert_eq!(
            outbound.offer(text(11)),
            Offer::SlowConsumer {
                dropped: 0,
                detached: true
            }
        );

        let (outbound, inbox) = queue(100, 1000);
        outbound.close(CloseRequest::Takeover);
        outbound.close(CloseRequest::Kick);
        inbox.detach(Some(CloseRequest::Takeover), 10, 1000);
        assert_eq!(
            inbox.take().await,
            Mail::Close(CloseRequest::Kick),
            "a stronger request stays"
        );
        inbox.attach();
    }

    #[tokio::test]
    async fn a_blocked_task_hears_a_close_request_and_no_frame() {
        let (outbound, inbox) = queue(100, 1000);
        let waiting = tokio::spawn(async move { inbox.close_requested().await });
        tokio::time::sleep(Duration::from_millis(10)).await;
        outbound.offer(text(10));
        tokio::time::sleep(Duration::from_millis(10)).await;
        assert!(!waiting.is_finished(), "a frame is not a close request");
        outbound.close(CloseRequest::Kick);
        let heard = tokio::time::timeout(Duration::from_secs(1), waiting).await;
        assert!(matches!(heard, Ok(Ok(CloseRequest::Kick))), "{heard:?}");
    }
}
