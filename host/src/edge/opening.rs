//! A client that asks for a resumable session at the handshake (`resume=` in the query,
//! README.md "Resumable sessions"): a new session, or the one it names.

use std::sync::Arc;

use crate::{
    app::shared::Shared,
    conn::Opening,
    identity::Identity,
    session::replay::{self, NotResumed, Replay, Session},
    session::Resumed,
    telemetry::metrics::{self},
};

/// Claims session `id` here, or from the node holding it.
async fn claim(
    shared: &Shared,
    id: &str,
    claimant: &Identity,
    last: &str,
) -> Result<Resumed, NotResumed> {
    match shared.sessions.claim(id, claimant, last).await {
        Err(NotResumed::Unknown) => shared.handover.resume(id, claimant, last).await,
        claimed => claimed,
    }
}

/// A resumable session for a client that asked for one: a new one (`resume=1`), the
/// session `resume` names when the claim succeeds, else a new one with the reason.
pub async fn open_session(
    shared: &Shared,
    fresh: Identity,
    resume: &str,
    last: &str,
) -> Result<(Arc<Identity>, Opening), String> {
    let recovery = shared.sessions.recovery();
    let refusal = match resume {
        "1" => None,
        id => match claim(shared, id, &fresh, last).await {
            Ok(Resumed { parked, missed }) => {
                metrics::session_resumed();
                tracing::info!(fd = %parked.identity.fd, missed = missed.len(), "session resumed");
                let mut greeting = vec![replay::resumed(id, missed.len())];
                greeting.extend(missed);
                let opening = Opening {
                    session: Some(Box::new(Session {
                        id: id.to_string(),
                        replay: parked.replay,
                    })),
                    queue: Some((parked.outbound, parked.inbox)),
                    greeting,
                };
                return Ok((parked.identity, opening));
            }
            Err(reason) => {
                metrics::session_not_resumed(reason.label());
                Some(reason)
            }
        },
    };
    let id = replay::new_id()?;
    let greeting = match refusal {
        None => replay::started(&id),
        Some(reason) => replay::not_resumed(reason, &id),
    };
    let opening = Opening {
        session: Some(Box::new(Session {
            id,
            replay: Replay::new(recovery),
        })),
        queue: None,
        greeting: vec![greeting],
    };
    Ok((Arc::new(fresh), opening))
}
