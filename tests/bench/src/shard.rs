//! Running the load generator on one or more current-thread runtimes.
//!
//! Each client thread ("shard") is a tokio current-thread runtime with a `LocalSet`, so
//! the tasks of one shard share state through `Rc<RefCell<_>>` without locks or atomics,
//! and no work-stealing scheduler wakes other threads. One shard is the default: the load
//! generator is pinned to one core, and a single thread is what the figures assume.

use std::future::Future;

use tokio::{runtime, task::LocalSet};

/// Runs `work(shard)` for each shard `0..threads`, one OS thread each (the first on the
/// calling thread), and returns the results in shard order.
pub fn run<T, F, Fut>(threads: usize, work: F) -> Result<Vec<T>, String>
where
    T: Send,
    F: Fn(usize) -> Fut + Sync,
    Fut: Future<Output = T>,
{
    let threads = threads.max(1);
    std::thread::scope(|scope| {
        let work = &work;
        let others: Vec<_> = (1..threads)
            .map(|shard| scope.spawn(move || block_on(work(shard))))
            .collect();
        let mut results = vec![block_on(work(0))?];
        for handle in others {
            results.push(
                handle
                    .join()
                    .map_err(|_| "a client thread panicked".to_string())??,
            );
        }
        Ok(results)
    })
}

/// Runs one future to completion on a fresh current-thread runtime with a `LocalSet`.
pub fn block_on<Fut: Future>(future: Fut) -> Result<Fut::Output, String> {
    let rt = runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| format!("cannot start a tokio runtime: {e}"))?;
    Ok(LocalSet::new().block_on(&rt, future))
}
