//! A client's connection as it begins: a plain one, or a resumable session (`resume=` in
//! the query, README.md "Resumable sessions") — a new one, or the one it names, resumed
//! on this node or moved here from the node that holds it.

use std::sync::Arc;

use tokio_tungstenite::tungstenite::Utf8Bytes;

use super::Edge;
use crate::{
    identity::Identity,
    session::{self, parse_last, NotResumed, Opened, Replay, Resumed, Session},
    telemetry::metrics,
};

/// What the handshake asked for.
pub struct Asked<'a> {
    /// `resume`: `1` for a new session, or the id of the one to resume; `None`: none.
    pub resume: Option<&'a str>,
    /// `last`: the highest seq the client has.
    pub last: Option<&'a str>,
}

/// Opens the connection of a client with `identity`: its queue and, when it asked for
/// one, its session; returns what it is written first (the session's control envelope
/// and the frames it missed).
pub async fn open(
    edge: &Edge,
    identity: Identity,
    asked: Asked<'_>,
) -> Result<(Opened, Vec<Utf8Bytes>), String> {
    let Some(resume) = asked.resume else {
        return Ok((edge.sessions.open(identity, None).await, Vec::new()));
    };
    let refusal = match resume {
        "1" => None,
        id => match claim(edge, id, &identity, parse_last(asked.last)).await {
            Ok(Resumed { opened, missed }) => {
                metrics::session_resumed();
                tracing::info!(fd = %opened.identity.fd, missed = missed.len(), "session resumed");
                let mut greeting = vec![session::resumed(id, missed.len())];
                greeting.extend(missed);
                return Ok((opened, greeting));
            }
            Err(reason) => {
                metrics::session_not_resumed(reason.label());
                Some(reason)
            }
        },
    };
    let id = session::new_id()?;
    let greeting = match refusal {
        None => session::started(&id),
        Some(reason) => session::not_resumed(reason, &id),
    };
    let session = Box::new(Session {
        id,
        replay: Replay::new(edge.sessions.recovery()),
    });
    let opened = edge.sessions.open(identity, Some(session)).await;
    Ok((opened, vec![greeting]))
}

/// Claims session `id` here, or from the node holding it.
async fn claim(
    edge: &Edge,
    id: &str,
    claimant: &Identity,
    last: Option<u64>,
) -> Result<Resumed, NotResumed> {
    let sessions: &Arc<_> = &edge.sessions;
    match sessions.resume(id, claimant, last).await {
        Err(NotResumed::Unknown) => edge.handover.resume(id, claimant, last).await,
        claimed => claimed,
    }
}
