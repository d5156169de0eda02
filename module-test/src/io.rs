//! SQL and HTTP for modules under test: the host's own code on a private runtime.
//!
//! A module's database calls must behave in its tests as in the host (the same `?`
//! binding, JSON rows, error kinds, deadlines), so the kit does not imitate them: it
//! runs `mswoole-io`, the crate the host runs, on a one-thread tokio runtime of its
//! own. The kit's executor polls without wake-ups, so it counts the calls in flight
//! and waits for one to finish when nothing else can move ([`InFlight::wait`]).

use std::{
    collections::BTreeMap,
    path::{Path, PathBuf},
    sync::{Arc, Condvar, Mutex},
    time::Duration,
};

use mswoole_core::{
    io::{DbInfo, Executed, HttpCall, HttpReply, IoFailure, IoKind, ModuleIo, Rows},
    services::BoxFuture,
};
use mswoole_io::{DatabaseConfig, Databases, HttpClient, Io};
use serde_json::Value;

/// The calls that are running, and a signal each time one ends.
#[derive(Default)]
pub(crate) struct InFlight {
    /// Calls running, calls finished so far, and finished calls the kit has looked at.
    counts: Mutex<Counts>,
    /// Signalled when a call ends.
    ended: Condvar,
}

#[derive(Default)]
struct Counts {
    running: usize,
    finished: u64,
    seen: u64,
}

impl InFlight {
    fn counts(&self) -> std::sync::MutexGuard<'_, Counts> {
        self.counts.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// `true` once a call has ended since the last look (waiting for one while any
    /// runs); `false` at once when none runs and none ended unseen.
    pub(crate) fn wait(&self) -> bool {
        let mut counts = self.counts();
        loop {
            if counts.finished != counts.seen {
                counts.seen = counts.finished;
                return true;
            }
            if counts.running == 0 {
                return false;
            }
            counts = self
                .ended
                .wait_timeout(counts, Duration::from_millis(100))
                .unwrap_or_else(|p| p.into_inner())
                .0;
        }
    }
}

/// Counts a call as running until dropped.
struct Running(Arc<InFlight>);

impl Running {
    fn start(in_flight: &Arc<InFlight>) -> Running {
        in_flight.counts().running += 1;
        Running(in_flight.clone())
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        let mut counts = self.0.counts();
        counts.running = counts.running.saturating_sub(1);
        counts.finished += 1;
        self.0.ended.notify_all();
    }
}

/// The kit's databases and HTTP client.
pub(crate) struct KitIo {
    /// The host's code.
    io: Io,
    /// Where its futures run.
    runtime: tokio::runtime::Runtime,
    /// What is running.
    in_flight: Arc<InFlight>,
    /// The default SQLite database's directory; last, so the pools are closed before it goes.
    _scratch: Scratch,
}

/// A temporary directory, removed on drop.
struct Scratch(Option<PathBuf>);

impl Drop for Scratch {
    fn drop(&mut self) {
        if let Some(dir) = &self.0 {
            let _ = std::fs::remove_dir_all(dir);
        }
    }
}

/// A fresh directory for one kit's SQLite files.
fn scratch_dir() -> PathBuf {
    use std::sync::atomic::{AtomicU64, Ordering};
    static NEXT: AtomicU64 = AtomicU64::new(0);
    std::env::temp_dir().join(format!(
        "mswoole-kit-{}-{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    ))
}

impl KitIo {
    /// Opens `databases` (name → URL) plus `default` on a fresh SQLite file unless given.
    pub(crate) fn open(
        databases: &BTreeMap<String, String>,
        http_max_response_bytes: usize,
        in_flight: Arc<InFlight>,
    ) -> Result<KitIo, String> {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name("mswoole-kit-io")
            .enable_all()
            .build()
            .map_err(|e| format!("the kit's I/O runtime: {e}"))?;
        let mut config: BTreeMap<String, DatabaseConfig> = databases
            .iter()
            .map(|(name, url)| {
                let db = DatabaseConfig {
                    url: url.clone(),
                    ..DatabaseConfig::default()
                };
                (name.clone(), db)
            })
            .collect();
        let mut scratch = None;
        if !config.contains_key("default") {
            let dir = scratch_dir();
            let url = format!("sqlite://{}", dir.join("default.sqlite3").display());
            scratch = Some(dir);
            config.insert(
                "default".into(),
                DatabaseConfig {
                    url,
                    ..DatabaseConfig::default()
                },
            );
        }
        let (databases, http) = {
            let _entered = runtime.enter();
            (
                Databases::open(&config, Path::new("."))?,
                HttpClient::new(http_max_response_bytes)?,
            )
        };
        Ok(KitIo {
            io: Io::new(Arc::new(databases), Arc::new(http)),
            runtime,
            in_flight,
            _scratch: Scratch(scratch),
        })
    }

    /// Runs `work` on the kit's runtime, counted while it runs.
    fn spawn<T: Send + 'static>(
        &self,
        work: BoxFuture<Result<T, IoFailure>>,
    ) -> BoxFuture<Result<T, IoFailure>> {
        let running = Running::start(&self.in_flight);
        let (sender, answer) = tokio::sync::oneshot::channel();
        self.runtime.spawn(async move {
            // The answer is stored before the call counts as ended, so the kit's next
            // poll finds it.
            let _ = sender.send(work.await);
            drop(running);
        });
        Box::pin(async move {
            answer.await.unwrap_or_else(|_| {
                Err(IoFailure::new(
                    IoKind::Unreachable,
                    "the kit's I/O runtime stopped before the call ended",
                ))
            })
        })
    }
}

impl KitIo {
    /// Runs `work` to its end on the kit's runtime, from a test's thread.
    pub(crate) fn block_on<T>(&self, work: BoxFuture<T>) -> T {
        self.runtime.block_on(work)
    }
}

impl ModuleIo for KitIo {
    fn database_info(&self, db: &str) -> Result<DbInfo, IoFailure> {
        self.io.database_info(db)
    }

    fn query(
        &self,
        db: String,
        sql: String,
        params: Vec<Value>,
    ) -> BoxFuture<Result<Rows, IoFailure>> {
        self.spawn(self.io.query(db, sql, params))
    }

    fn execute(
        &self,
        db: String,
        sql: String,
        params: Vec<Value>,
    ) -> BoxFuture<Result<Executed, IoFailure>> {
        self.spawn(self.io.execute(db, sql, params))
    }

    fn transaction(
        &self,
        db: String,
        statements: Vec<(String, Vec<Value>)>,
    ) -> BoxFuture<Result<Vec<Executed>, IoFailure>> {
        self.spawn(self.io.transaction(db, statements))
    }

    fn http(&self, call: HttpCall) -> BoxFuture<Result<HttpReply, IoFailure>> {
        self.spawn(self.io.http(call))
    }
}
