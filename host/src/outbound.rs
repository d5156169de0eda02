//! A connection's outbound queue: back-pressure for its own replies, room for the
//! frames others send it.
//!
//! The queue holds up to twice `limits.outbound_queue` frames. The connection's own
//! replies wait while it is more than half full: that connection stops reading
//! until its client catches up, and nobody else notices. Frames from others (room
//! broadcasts, pushes, `say`) never wait — a broadcast must not stall on one slow
//! member — and may use the other half, so a momentarily slow client loses
//! nothing. Only a client that stopped reading fills both halves; what is sent to
//! it then is dropped and counted, and its writer closes it within `STALL`.

use std::sync::Arc;

use tokio::sync::{
    mpsc::{self, error::TrySendError},
    Notify,
};
use tokio_tungstenite::tungstenite::Message;

/// The sending side of a connection's queue. Cheap to clone.
#[derive(Debug, Clone)]
pub struct Outbound {
    /// The queue, `2 × half` frames deep.
    tx: mpsc::Sender<Message>,
    /// Signalled by the writer each time it has written a batch.
    drained: Arc<Notify>,
    /// Free slots below which the connection's own replies wait.
    half: usize,
}

/// What became of a frame offered by someone else.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Offer {
    /// Queued.
    Queued,
    /// Both halves full: the client stopped reading; the frame was dropped.
    Full,
    /// The connection is closing.
    Closed,
}

/// The writer's side: the frames, and the signal it gives after each batch.
pub struct Drain {
    /// Frames in order.
    pub frames: mpsc::Receiver<Message>,
    /// To signal after each written batch.
    pub drained: Arc<Notify>,
}

/// A queue whose own-reply half holds `half` frames (`limits.outbound_queue`).
pub fn queue(half: usize) -> (Outbound, Drain) {
    let half = half.max(1);
    let (tx, frames) = mpsc::channel(half * 2);
    let drained = Arc::new(Notify::new());
    (
        Outbound {
            tx,
            drained: drained.clone(),
            half,
        },
        Drain { frames, drained },
    )
}

impl Outbound {
    /// Queues one of the connection's own frames, waiting while the queue is over half
    /// full; `false` if the connection is closing.
    pub async fn send_own(&self, frame: Message) -> bool {
        loop {
            let drained = self.drained.notified();
            if self.tx.capacity() > self.half || self.tx.is_closed() {
                break;
            }
            tokio::select! {
                _ = drained => {}
                _ = self.tx.closed() => return false,
            }
        }
        self.tx.send(frame).await.is_ok()
    }

    /// Queues a frame from someone else without waiting.
    pub fn offer(&self, frame: Message) -> Offer {
        match self.tx.try_send(frame) {
            Ok(()) => Offer::Queued,
            Err(TrySendError::Full(_)) => Offer::Full,
            Err(TrySendError::Closed(_)) => Offer::Closed,
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[tokio::test]
    async fn own_replies_wait_at_half_and_others_use_the_rest() {
        let (outbound, mut drain) = queue(2);
        assert!(outbound.send_own(Message::text("1")).await);
        assert!(outbound.send_own(Message::text("2")).await);
        let waiting = tokio::time::timeout(
            Duration::from_millis(50),
            outbound.send_own(Message::text("3")),
        )
        .await;
        assert!(waiting.is_err(), "the third own reply waits for the writer");
        assert_eq!(outbound.offer(Message::text("a")), Offer::Queued);
        assert_eq!(outbound.offer(Message::text("b")), Offer::Queued);
        assert_eq!(outbound.offer(Message::text("c")), Offer::Full);

        let own = tokio::spawn({
            let outbound = outbound.clone();
            async move { outbound.send_own(Message::text("3")).await }
        });
        for expected in ["1", "2", "a"] {
            assert_eq!(drain.frames.recv().await, Some(Message::text(expected)));
        }
        drain.drained.notify_waiters();
        assert!(
            own.await.expect("the reply task ends"),
            "a drained queue takes the reply"
        );
        assert_eq!(drain.frames.recv().await, Some(Message::text("b")));
        assert_eq!(drain.frames.recv().await, Some(Message::text("3")));
    }
}
