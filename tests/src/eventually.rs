//! Waiting for a condition instead of sleeping for it: [`eventually`] checks until the
//! condition holds and fails the test, naming what did not happen, when it does not in time.

use std::{future::Future, time::Duration};

use tokio::time::Instant;

/// How often a condition is checked.
const EVERY: Duration = Duration::from_millis(20);

/// Waits until `check` holds, checking every 20 ms; fails the test saying `what` did not
/// happen when it still does not after `within`.
pub async fn eventually<F, Fut>(what: &str, within: Duration, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    eventually_some(what, within, || {
        let checked = check();
        async move { checked.await.then_some(()) }
    })
    .await
}

/// Waits until `check` gives a value, checking every 20 ms; fails the test saying `what`
/// did not happen when it gives none after `within`.
pub async fn eventually_some<T, F, Fut>(what: &str, within: Duration, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let started = Instant::now();
    loop {
        if let Some(value) = check().await {
            return value;
        }
        assert!(
            started.elapsed() < within,
            "{what} did not happen within {within:?}"
        );
        tokio::time::sleep(EVERY).await;
    }
}
