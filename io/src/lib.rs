//! Databases and HTTP for mswoole modules: the pools, the client, and the one
//! [`ModuleIo`] that answers a module's calls with them.
//!
//! Why a crate of its own: the host and the module test kit must run a module's SQL
//! and HTTP through the same code (docs/MODULES.md, "Testing"), and `mswoole-core`
//! opens no socket. The host awaits [`Io`]'s futures on its runtime; the kit spawns
//! them on a private one.
//!
//! - [`databases`]: one lazy pool per `[databases.<name>]`, deadlines, JSON rows (docs/DATABASES.md).
//! - [`http`]: one request bounded in time and size (docs/HTTP.md).

pub mod databases;
pub mod http;

use std::{sync::Arc, time::Duration};

use mswoole_core::{
    io::{DbInfo, Executed, HttpCall, HttpReply, IoFailure, ModuleIo, Rows},
    services::BoxFuture,
};
use serde_json::Value;

pub use databases::{DatabaseConfig, Databases, DatabasesConfig};
pub use http::HttpClient;

/// Told how long each SQL call to a database took (the host's `database_query_seconds`).
pub type QueryObserver = Arc<dyn Fn(&str, Duration) + Send + Sync>;

/// A module's databases and HTTP client.
#[derive(Clone)]
pub struct Io {
    /// The pools.
    databases: Arc<Databases>,
    /// The HTTP client.
    http: Arc<HttpClient>,
    /// Told each SQL call's duration.
    observer: Option<QueryObserver>,
}

impl Io {
    /// Answers calls with these pools and client; its futures must run inside a tokio runtime.
    pub fn new(databases: Arc<Databases>, http: Arc<HttpClient>) -> Io {
        Io {
            databases,
            http,
            observer: None,
        }
    }

    /// Tells `observer` how long each SQL call took, by database name.
    pub fn observed(mut self, observer: QueryObserver) -> Io {
        self.observer = Some(observer);
        self
    }

    /// Runs one SQL call, timed for the observer.
    fn sql<T, F>(&self, db: String, work: F) -> BoxFuture<Result<T, IoFailure>>
    where
        T: Send + 'static,
        F: std::future::Future<Output = Result<T, IoFailure>> + Send + 'static,
    {
        let observer = self.observer.clone();
        Box::pin(async move {
            let started = std::time::Instant::now();
            let result = work.await;
            if let Some(observe) = observer {
                observe(&db, started.elapsed());
            }
            result
        })
    }
}

impl ModuleIo for Io {
    fn database_info(&self, db: &str) -> Result<DbInfo, IoFailure> {
        self.databases.info(db)
    }

    fn query(
        &self,
        db: String,
        sql: String,
        params: Vec<Value>,
    ) -> BoxFuture<Result<Rows, IoFailure>> {
        let dbs = self.databases.clone();
        let name = db.clone();
        self.sql(name, async move { dbs.query(&db, &sql, &params).await })
    }

    fn execute(
        &self,
        db: String,
        sql: String,
        params: Vec<Value>,
    ) -> BoxFuture<Result<Executed, IoFailure>> {
        let dbs = self.databases.clone();
        let name = db.clone();
        self.sql(name, async move { dbs.execute(&db, &sql, &params).await })
    }

    fn transaction(
        &self,
        db: String,
        statements: Vec<(String, Vec<Value>)>,
    ) -> BoxFuture<Result<Vec<Executed>, IoFailure>> {
        let dbs = self.databases.clone();
        let name = db.clone();
        self.sql(name, async move { dbs.transaction(&db, &statements).await })
    }

    fn http(&self, call: HttpCall) -> BoxFuture<Result<HttpReply, IoFailure>> {
        let http = self.http.clone();
        Box::pin(async move {
            http.request(
                &call.method,
                &call.url,
                &call.headers,
                call.body,
                call.timeout_ms,
            )
            .await
        })
    }
}
