//! `sql`: a database-backed action under a fixed request rate, on the host and on the bare
//! baseline calling the same driver directly, in the same run (issue 8).
//!
//! The action is the swap test fixture's `swap.io.execute` / `swap.io.query`, which hands the
//! message's statement straight to the host's SQL path (module call, plugin-api 1.2, the
//! `mswoole-io` pools: docs/DATABASES.md) and answers `{"status":200,"event":"io",...}`; the
//! baseline (`ws-bench baseline --database URL`) answers the same envelope by calling sqlx
//! itself with the same pool settings. Both servers are started here, one at a time, pinned
//! to the server CPU, with this process (the load generator) on the client CPU; runs are
//! interleaved (baseline, host, host, baseline, ...) and repeated, and the medians compared.
//!
//! Per run: a fresh table (`INSERT` keeps adding rows; the point `SELECT` reads one of
//! [`SEED`] rows by primary key), C connections sending at a fixed total rate (several may be
//! in flight per connection, so a slow server never slows the load: no coordinated omission),
//! and optionally K more connections each running a slow statement (`SELECT SLEEP(1)`, …) in a
//! closed loop: no request may wait on another connection's query, so the fast requests' p99
//! must not move while those run, as long as the pool has connections left. Pool waits count
//! toward p99 (latency is from the request's write to its reply). Figures: server CPU per
//! request (`utime + stime` of `/proc/PID/stat` over the window ÷ answered requests; on SQLite
//! this includes the database engine, which runs inside the server process), latency
//! percentiles, and, with `--db-pid`, the database server's CPU per request.

use std::{cell::RefCell, collections::VecDeque, path::PathBuf, rc::Rc, time::Duration};

use clap::{Args, ValueEnum};
use futures_util::{SinkExt, StreamExt};
use serde::Serialize;
use serde_json::json;
use tokio::time::{sleep_until, Instant};
use tokio_tungstenite::tungstenite::Message;

use crate::{
    client::{self, Endpoint, Miss, Ws},
    envelope::{self, Kind},
    modes::{parse_seconds, seconds, TargetArgs},
    procfs,
    server::{HostSetup, Registry, Server},
    shard,
    stats::{round3, LatencySummary, Tally},
    token::Codec,
};

/// Rows the table holds before the window (what the point `SELECT` reads).
pub const SEED: u64 = 1000;
/// The event of the fixture's SQL replies.
const IO: &str = "io";
/// How long a request may wait for its answer.
const REPLY_TIMEOUT: Duration = Duration::from_secs(10);
/// The `[databases.<name>]` both servers' statements go to.
const DB: &str = "bench";

/// Which statement is measured.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Statement {
    /// `INSERT INTO t (conn, seq, note) VALUES (?, ?, ?)` through `swap.io.execute`.
    Insert,
    /// `SELECT id, conn, seq, note FROM t WHERE id = ?` through `swap.io.query`.
    Select,
}

/// Which server a run measures.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Which {
    /// `ws-bench baseline --database URL`: sqlx called directly.
    Baseline,
    /// The mswoole host with the swap fixture and `[databases.bench]`.
    Host,
}

/// SQL dialect of the database under test.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Dialect {
    Sqlite,
    Mysql,
    Postgres,
}

/// Arguments of `sql`.
#[derive(Debug, Clone, Args)]
pub struct SqlArgs {
    /// The `mswoole` binary.
    #[arg(long, default_value = "target/release/mswoole")]
    pub host_bin: PathBuf,
    /// Directory of the built `libmswoole_*.so` plugins (default: the host binary's directory).
    #[arg(long)]
    pub plugins: Option<PathBuf>,
    /// The swap test fixture built with SQL actions (see docs/BENCHMARKS.md for its release build).
    #[arg(long, default_value = "target/fixtures/release/libswap_fixture.so")]
    pub io_plugin: PathBuf,
    /// `sqlite` (a fresh file in each server's directory) or a `mysql://…` / `postgres://…`
    /// URL (a fresh table per run, dropped after it).
    #[arg(long, default_value = "sqlite")]
    pub database: String,
    /// Pool size of both servers (`[databases.bench] max_connections`).
    #[arg(long, default_value_t = 10)]
    pub max_connections: u32,
    /// Deadline of one SQL call, pool wait included (`timeout_ms`).
    #[arg(long, default_value_t = 3000)]
    pub timeout_ms: u64,
    /// Statements to measure, each in runs of its own.
    #[arg(long, value_delimiter = ',', default_value = "insert,select")]
    pub statements: Vec<Statement>,
    /// Servers to measure.
    #[arg(long, value_delimiter = ',', default_value = "baseline,host")]
    pub servers: Vec<Which>,
    /// Connections the measured load is spread over.
    #[arg(long, default_value_t = 50)]
    pub conns: usize,
    /// Measured requests per second offered, in total.
    #[arg(long, default_value_t = 1000.0)]
    pub rate: f64,
    /// Measured seconds per run.
    #[arg(long, default_value_t = 10.0, value_parser = parse_seconds)]
    pub duration: f64,
    /// Unmeasured seconds before the window.
    #[arg(long, default_value_t = 2.0, value_parser = parse_seconds)]
    pub warmup: f64,
    /// Runs per statement and server, interleaved.
    #[arg(long, default_value_t = 3)]
    pub repeat: usize,
    /// More connections, each running `--slow-sql` in a closed loop during the run.
    #[arg(long, default_value_t = 0)]
    pub slow_conns: usize,
    /// The slow statement (default: `SELECT SLEEP(1)` on MySQL/MariaDB, `pg_sleep(1)` on
    /// PostgreSQL; SQLite has no sleep).
    #[arg(long)]
    pub slow_sql: Option<String>,
    /// The database server's pid: also report its CPU per request.
    #[arg(long)]
    pub db_pid: Option<u32>,
    /// CPU the servers are pinned to (`taskset -c`).
    #[arg(long, default_value_t = 0)]
    pub server_cpu: usize,
    /// CPU this process (the load generator) is pinned to.
    #[arg(long, default_value_t = 1)]
    pub client_cpu: usize,
    /// Pin nothing (the numbers are then not comparable).
    #[arg(long)]
    pub no_pin: bool,
}

/// One run's figures.
#[derive(Debug, Clone, Serialize)]
pub struct SqlRun {
    /// The server measured.
    pub server: Which,
    /// The statement measured.
    pub statement: Statement,
    /// 1-based repeat number.
    pub repeat: usize,
    /// Requests scheduled in the window and answered with `io`.
    pub requests: u64,
    /// `requests / duration`.
    pub achieved_rps: f64,
    /// Server CPU per answered request, µs.
    pub server_cpu_us_per_req: f64,
    /// Server CPU over the window, percent of one core.
    pub server_cpu_pct: f64,
    /// The database server's CPU per answered request, µs (with `--db-pid`).
    pub db_cpu_us_per_req: Option<f64>,
    /// Write → reply latency of the measured requests.
    pub latency: LatencySummary,
    /// Requests answered with another envelope, or not at all.
    pub errors: u64,
    /// Connections lost.
    pub lost: u64,
    /// Connections that could not be opened.
    pub connect_errors: usize,
    /// Slow statements completed (started in the window or before).
    pub slow_done: u64,
    /// Their latency.
    pub slow_latency: Option<LatencySummary>,
    /// The first problem seen.
    pub first_error: Option<String>,
}

/// Medians over the repeats of one statement on one server.
#[derive(Debug, Clone, Serialize)]
pub struct SqlMedian {
    pub server: Which,
    pub statement: Statement,
    pub runs: usize,
    pub server_cpu_us_per_req: f64,
    pub p50_ms: f64,
    pub p99_ms: f64,
    pub p999_ms: f64,
    pub max_ms: f64,
    pub db_cpu_us_per_req: Option<f64>,
    /// Every run's CPU per request, in run order.
    pub all_cpu_us: Vec<f64>,
    /// Every run's p99, in run order.
    pub all_p99_ms: Vec<f64>,
}

/// What `sql` measured.
#[derive(Debug, Clone, Serialize)]
pub struct SqlResult {
    /// The database, password hidden.
    pub database: String,
    pub pool: u32,
    pub conns: usize,
    pub rate: f64,
    pub duration_s: f64,
    pub slow_conns: usize,
    pub slow_sql: Option<String>,
    pub runs: Vec<SqlRun>,
    pub medians: Vec<SqlMedian>,
    /// Errors, lost connections or a run that could not be done.
    pub problem: Option<String>,
}

impl SqlResult {
    /// One JSON line.
    pub fn json(&self) -> String {
        serde_json::to_string(self).unwrap_or_default()
    }

    /// A readable table: every run, then the medians and the host ÷ baseline ratios.
    pub fn table(&self) -> String {
        let mut out = format!(
            "sql: {} (pool {}), {} conns at {} req/s, {} s windows, {} slow conns{}\n",
            self.database,
            self.pool,
            self.conns,
            self.rate,
            self.duration_s,
            self.slow_conns,
            self.slow_sql
                .as_ref()
                .map(|s| format!(" running {s:?}"))
                .unwrap_or_default()
        );
        out.push_str(
            "server    statement  run  req/s      cpu µs/req  db µs/req  p50 ms   p99 ms   p99.9 ms  max ms    errors  slow done\n",
        );
        for r in &self.runs {
            out.push_str(&format!(
                "{:<9} {:<10} {:<4} {:<10} {:<11} {:<10} {:<8} {:<8} {:<9} {:<9} {:<7} {}\n",
                format!("{:?}", r.server).to_lowercase(),
                format!("{:?}", r.statement).to_lowercase(),
                r.repeat,
                r.achieved_rps,
                r.server_cpu_us_per_req,
                r.db_cpu_us_per_req
                    .map_or_else(|| "-".to_string(), |v| v.to_string()),
                r.latency.p50_ms,
                r.latency.p99_ms,
                r.latency.p999_ms,
                r.latency.max_ms,
                r.errors + r.lost,
                r.slow_done,
            ));
        }
        out.push_str("\nmedians\nstatement  server    runs  cpu µs/req  p50 ms   p99 ms   p99.9 ms  (cpu ratio, p99 ratio to baseline)\n");
        for m in &self.medians {
            let base = self
                .medians
                .iter()
                .find(|b| b.statement == m.statement && b.server == Which::Baseline);
            let ratios = match (m.server, base) {
                (Which::Host, Some(b)) => format!(
                    "{:.2}×, {:.2}×",
                    m.server_cpu_us_per_req / b.server_cpu_us_per_req.max(1e-9),
                    m.p99_ms / b.p99_ms.max(1e-9)
                ),
                _ => String::new(),
            };
            out.push_str(&format!(
                "{:<10} {:<9} {:<5} {:<11} {:<8} {:<8} {:<9} {}\n",
                format!("{:?}", m.statement).to_lowercase(),
                format!("{:?}", m.server).to_lowercase(),
                m.runs,
                m.server_cpu_us_per_req,
                m.p50_ms,
                m.p99_ms,
                m.p999_ms,
                ratios
            ));
        }
        if let Some(problem) = &self.problem {
            out.push_str(&format!("PROBLEM: {problem}\n"));
        }
        out
    }
}

/// `url` without its password.
fn redact(url: &str) -> String {
    match (url.split_once("://"), url.rfind('@')) {
        (Some((scheme, _)), Some(at)) => format!("{scheme}://***{}", &url[at..]),
        _ => url.to_string(),
    }
}

fn dialect_of(database: &str) -> Result<Dialect, String> {
    let scheme = database.split_once(':').map_or(database, |(s, _)| s);
    match scheme {
        "sqlite" => Ok(Dialect::Sqlite),
        "mysql" | "mariadb" => Ok(Dialect::Mysql),
        "postgres" | "postgresql" => Ok(Dialect::Postgres),
        _ => Err(format!(
            "--database {database:?}: use sqlite, mysql://… or postgres://…"
        )),
    }
}

/// The table's DDL in `dialect`.
fn create_table(dialect: Dialect, table: &str) -> String {
    match dialect {
        Dialect::Sqlite => format!("CREATE TABLE {table} (id INTEGER PRIMARY KEY AUTOINCREMENT, conn INTEGER NOT NULL, seq INTEGER NOT NULL, note TEXT NOT NULL)"),
        Dialect::Mysql => format!("CREATE TABLE {table} (id BIGINT AUTO_INCREMENT PRIMARY KEY, conn BIGINT NOT NULL, seq BIGINT NOT NULL, note VARCHAR(64) NOT NULL) ENGINE=InnoDB"),
        Dialect::Postgres => format!("CREATE TABLE {table} (id BIGSERIAL PRIMARY KEY, conn BIGINT NOT NULL, seq BIGINT NOT NULL, note TEXT NOT NULL)"),
    }
}

/// The request frame of `statement` for connection `conn`'s `seq`th request.
fn request(statement: Statement, table: &str, conn: usize, seq: u64) -> String {
    match statement {
        Statement::Insert => json!({
            "method": "swap.io.execute",
            "db": DB,
            "sql": format!("INSERT INTO {table} (conn, seq, note) VALUES (?, ?, ?)"),
            "params": [conn, seq, "vote"],
        }),
        Statement::Select => json!({
            "method": "swap.io.query",
            "db": DB,
            "sql": format!("SELECT id, conn, seq, note FROM {table} WHERE id = ?"),
            "params": [(conn as u64 * 7919 + seq) % SEED + 1],
        }),
    }
    .to_string()
}

/// Pins this process to `cpu`.
fn pin_self(cpu: usize) -> Result<(), String> {
    let mut set = rustix::process::CpuSet::new();
    set.set(cpu);
    rustix::process::sched_setaffinity(None, &set)
        .map_err(|e| format!("cannot pin the load generator to CPU {cpu}: {e}"))
}

/// Runs `sql`.
pub fn run(args: &SqlArgs) -> Result<SqlResult, String> {
    if !(args.rate.is_finite() && args.rate > 0.0) {
        return Err(format!("--rate {}: must be a positive number", args.rate));
    }
    let dialect = dialect_of(&args.database)?;
    let slow_sql = match (&args.slow_sql, dialect) {
        _ if args.slow_conns == 0 => None,
        (Some(sql), _) => Some(sql.clone()),
        (None, Dialect::Mysql) => Some("SELECT SLEEP(1) AS slept".to_string()),
        (None, Dialect::Postgres) => Some("SELECT 1 AS slept FROM pg_sleep(1)".to_string()),
        (None, Dialect::Sqlite) => {
            return Err("--slow-conns on SQLite needs --slow-sql (SQLite has no sleep)".into())
        }
    };
    for (flag, path) in [
        ("--host-bin", &args.host_bin),
        ("--io-plugin", &args.io_plugin),
    ] {
        if args.servers.contains(&Which::Host) && !path.is_file() {
            return Err(format!(
                "{flag} {}: not found (docs/BENCHMARKS.md, \"SQL\", says how to build it)",
                path.display()
            ));
        }
    }
    let exe = std::env::current_exe().map_err(|e| format!("cannot find this executable: {e}"))?;
    let plugins = match &args.plugins {
        Some(dir) => dir.clone(),
        None => args
            .host_bin
            .parent()
            .map(PathBuf::from)
            .ok_or("--host-bin has no directory; pass --plugins")?,
    };
    let server_cpu = (!args.no_pin).then_some(args.server_cpu);
    if !args.no_pin {
        pin_self(args.client_cpu)?;
    }
    let url = |which: Which| match dialect {
        // Each server's own fresh file, relative to its directory.
        Dialect::Sqlite => match which {
            Which::Baseline => "sqlite://bench.sqlite3".to_string(),
            Which::Host => "sqlite://data/bench.sqlite3".to_string(),
        },
        _ => args.database.clone(),
    };
    let mut runs = Vec::new();
    let mut problems = Vec::new();
    let mut counter = 0;
    for repeat in 1..=args.repeat.max(1) {
        for (s, &statement) in args.statements.iter().enumerate() {
            // ABBA order: what drifts during the runs (caches, the machine's load) hits both.
            let mut order = args.servers.clone();
            if (repeat - 1 + s) % 2 == 1 {
                order.reverse();
            }
            for which in order {
                counter += 1;
                let table = format!("wsbench_{}_{counter}", std::process::id());
                let started = match which {
                    Which::Baseline => Server::baseline_with(
                        &exe,
                        None,
                        server_cpu,
                        &[
                            "--database".into(),
                            url(which),
                            "--max-connections".into(),
                            args.max_connections.to_string(),
                            "--timeout-ms".into(),
                            args.timeout_ms.to_string(),
                        ],
                    ),
                    Which::Host => {
                        let setup = HostSetup {
                            bin: args.host_bin.clone(),
                            plugins: plugins.clone(),
                            registry: Registry::Memory,
                            workers: 1,
                            max_connections: args.conns + args.slow_conns + 100,
                            idle_s: 600,
                            outbound_bytes: None,
                            extra_plugins: vec![args.io_plugin.clone()],
                        };
                        let extra = format!(
                            "\n[databases.{DB}]\nurl = {:?}\nmax_connections = {}\ntimeout_ms = {}\n",
                            url(which),
                            args.max_connections,
                            args.timeout_ms
                        );
                        Server::host_with(&setup, server_cpu, &extra, &[])
                    }
                };
                let server = match started {
                    Ok(server) => server,
                    Err(e) => {
                        problems.push(format!("{which:?} {statement:?} run {repeat}: {e}"));
                        continue;
                    }
                };
                let measured = measure(args, &server, dialect, statement, &table, &slow_sql);
                server.stop();
                match measured {
                    Ok(mut run) => {
                        run.server = which;
                        run.repeat = repeat;
                        if run.errors + run.lost + run.connect_errors as u64 > 0 {
                            problems.push(format!(
                                "{which:?} {statement:?} run {repeat}: {} errors, {} lost: {}",
                                run.errors + run.connect_errors as u64,
                                run.lost,
                                run.first_error.as_deref().unwrap_or("")
                            ));
                        }
                        runs.push(run);
                    }
                    Err(e) => problems.push(format!("{which:?} {statement:?} run {repeat}: {e}")),
                }
            }
        }
    }
    let mut medians = Vec::new();
    for &statement in &args.statements {
        for &which in &args.servers {
            let mine: Vec<&SqlRun> = runs
                .iter()
                .filter(|r| r.server == which && r.statement == statement)
                .collect();
            if mine.is_empty() {
                continue;
            }
            let median = |f: &dyn Fn(&SqlRun) -> f64| {
                let mut v: Vec<f64> = mine.iter().map(|r| f(r)).collect();
                v.sort_by(f64::total_cmp);
                v[v.len() / 2]
            };
            medians.push(SqlMedian {
                server: which,
                statement,
                runs: mine.len(),
                server_cpu_us_per_req: median(&|r| r.server_cpu_us_per_req),
                p50_ms: median(&|r| r.latency.p50_ms),
                p99_ms: median(&|r| r.latency.p99_ms),
                p999_ms: median(&|r| r.latency.p999_ms),
                max_ms: median(&|r| r.latency.max_ms),
                db_cpu_us_per_req: args
                    .db_pid
                    .map(|_| median(&|r| r.db_cpu_us_per_req.unwrap_or(0.0))),
                all_cpu_us: mine.iter().map(|r| r.server_cpu_us_per_req).collect(),
                all_p99_ms: mine.iter().map(|r| r.latency.p99_ms).collect(),
            });
        }
    }
    Ok(SqlResult {
        database: redact(&args.database),
        pool: args.max_connections,
        conns: args.conns,
        rate: args.rate,
        duration_s: args.duration,
        slow_conns: args.slow_conns,
        slow_sql,
        runs,
        medians,
        problem: (!problems.is_empty()).then(|| problems.join("; ")),
    })
}

/// One run against a started server: the table, the load, the figures; the table is dropped
/// after it (on SQLite it goes with the server's directory).
fn measure(
    args: &SqlArgs,
    server: &Server,
    dialect: Dialect,
    statement: Statement,
    table: &str,
    slow_sql: &Option<String>,
) -> Result<SqlRun, String> {
    let endpoint: Endpoint = server.url().parse()?;
    let target = TargetArgs::new(endpoint.clone());
    let codec = Codec::new(&target.key);
    shard::block_on(async {
        let mut admin = client::connect(
            &endpoint,
            client::source_addr(0),
            &target.user_token(&codec, 0),
        )
        .await?;
        let setup = async {
            call(
                &mut admin,
                "swap.io.execute",
                &create_table(dialect, table),
                json!([]),
            )
            .await?;
            // The rows the point SELECT reads, 100 per statement.
            for chunk in 0..SEED / 100 {
                let values = vec!["(?, ?, ?)"; 100].join(", ");
                let mut params = Vec::new();
                for i in 0..100 {
                    params.extend([json!(0), json!(chunk * 100 + i), json!("seed")]);
                }
                let sql = format!("INSERT INTO {table} (conn, seq, note) VALUES {values}");
                call(&mut admin, "swap.io.execute", &sql, json!(params)).await?;
            }
            Ok::<(), String>(())
        };
        setup
            .await
            .map_err(|e| format!("setting up {table}: {e}"))?;
        let result = load(args, server, statement, table, slow_sql, &target, &codec).await;
        if dialect != Dialect::Sqlite {
            let dropped = call(
                &mut admin,
                "swap.io.execute",
                &format!("DROP TABLE {table}"),
                json!([]),
            )
            .await;
            if let Err(e) = dropped {
                eprintln!("ws-bench sql: cannot drop {table}: {e}");
            }
        }
        result
    })?
}

/// Sends one SQL action and waits for its `io` reply.
async fn call(
    ws: &mut Ws,
    method: &str,
    sql: &str,
    params: serde_json::Value,
) -> Result<(), String> {
    let message = json!({"method": method, "db": DB, "sql": sql, "params": params});
    ws.send(Message::text(message.to_string()))
        .await
        .map_err(|e| format!("send: {e}"))?;
    match tokio::time::timeout(REPLY_TIMEOUT, client::wait_for(ws, IO)).await {
        Ok(Ok(())) => Ok(()),
        Ok(Err(Miss::Other(what) | Miss::Gone(what))) => Err(format!("{sql:.60}: {what}")),
        Err(_) => Err(format!("{sql:.60}: no answer within {REPLY_TIMEOUT:?}")),
    }
}

/// The measured window.
#[derive(Debug, Clone, Copy)]
struct Window {
    start: Instant,
    end: Instant,
}

impl Window {
    fn contains(&self, at: Instant) -> bool {
        at >= self.start && at < self.end
    }
}

/// The load: C paced connections and K slow ones, a window after the warm-up.
async fn load(
    args: &SqlArgs,
    server: &Server,
    statement: Statement,
    table: &str,
    slow_sql: &Option<String>,
    target: &TargetArgs,
    codec: &Codec,
) -> Result<SqlRun, String> {
    let slow_conns = if slow_sql.is_some() {
        args.slow_conns
    } else {
        0
    };
    // Connection 0 is the admin connection's token; the load uses 1..
    let (open, connect_errors) = client::connect_many(
        &target.url,
        1..1 + args.conns + slow_conns,
        target.concurrency,
        |i| target.user_token(codec, i),
    )
    .await;
    let start = Instant::now() + seconds(args.warmup);
    let window = Window {
        start,
        end: start + seconds(args.duration),
    };
    let sampler = tokio::task::spawn_local(sample_cpu(window, server.pid, args.db_pid));
    let tally = Rc::new(RefCell::new(Tally::default()));
    let slow_tally = Rc::new(RefCell::new(Tally::default()));
    let interval = Duration::from_secs_f64(args.conns as f64 / args.rate);
    let mut tasks = Vec::new();
    for (i, ws) in open {
        if i > args.conns {
            let sql = slow_sql.clone().unwrap_or_default();
            tasks.push(tokio::task::spawn_local(slow(
                ws,
                window,
                sql,
                slow_tally.clone(),
            )));
        } else {
            let offset = interval.mul_f64((i - 1) as f64 / args.conns.max(1) as f64);
            let first = Instant::now() + offset;
            let make = {
                let table = table.to_string();
                move |seq: u64| request(statement, &table, i, seq)
            };
            tasks.push(tokio::task::spawn_local(paced(
                ws,
                window,
                first,
                interval,
                make,
                tally.clone(),
            )));
        }
    }
    for task in tasks {
        if task.await.is_err() {
            tally
                .borrow_mut()
                .lost(|| "a connection task panicked".into());
        }
    }
    let (server_cpu, db_cpu) = sampler.await.map_err(|_| "the CPU sampler panicked")??;
    let tally = tally.borrow().clone();
    let slow_tally = slow_tally.borrow().clone();
    let window_s = seconds(args.duration).as_secs_f64().max(1e-9);
    let requests = tally.latencies.count();
    let per_req = |cpu: Duration| round3(cpu.as_secs_f64() * 1e6 / requests.max(1) as f64);
    Ok(SqlRun {
        server: Which::Host,
        statement,
        repeat: 0,
        requests,
        achieved_rps: round3(requests as f64 / window_s),
        server_cpu_us_per_req: per_req(server_cpu),
        server_cpu_pct: round3(server_cpu.as_secs_f64() * 100.0 / window_s),
        db_cpu_us_per_req: db_cpu.map(per_req),
        latency: tally.latencies.summary(),
        errors: tally.errors + slow_tally.errors,
        lost: tally.lost + slow_tally.lost,
        connect_errors: connect_errors.len(),
        slow_done: slow_tally.latencies.count(),
        slow_latency: (slow_conns > 0).then(|| slow_tally.latencies.summary()),
        first_error: tally
            .first_error
            .or(slow_tally.first_error)
            .or_else(|| connect_errors.first().map(|e| format!("connect: {e}"))),
    })
}

/// The server's (and the database server's) CPU time over the window.
async fn sample_cpu(
    window: Window,
    pid: u32,
    db_pid: Option<u32>,
) -> Result<(Duration, Option<Duration>), String> {
    let read = || -> Result<(Duration, Option<Duration>), String> {
        Ok((
            procfs::cpu_time(pid)?,
            db_pid.map(procfs::cpu_time).transpose()?,
        ))
    };
    sleep_until(window.start).await;
    let before = read()?;
    sleep_until(window.end).await;
    let after = read()?;
    Ok((
        after.0.saturating_sub(before.0),
        after.1.zip(before.1).map(|(a, b)| a.saturating_sub(b)),
    ))
}

/// Sends `make(seq)` every `interval` from `first` until the window ends, matching replies to
/// requests in order (both servers answer one connection's messages in order).
async fn paced(
    mut ws: Ws,
    window: Window,
    first: Instant,
    interval: Duration,
    make: impl Fn(u64) -> String,
    tally: Rc<RefCell<Tally>>,
) {
    // (scheduled, written) of each request in flight, oldest first.
    let mut outstanding: VecDeque<(Instant, Instant)> = VecDeque::new();
    let mut next = first;
    let mut seq = 0;
    let tick = tokio::time::sleep_until(next);
    tokio::pin!(tick);
    let deadline = tokio::time::sleep_until(window.end + REPLY_TIMEOUT);
    tokio::pin!(deadline);
    loop {
        let sending = next < window.end;
        if !sending && outstanding.is_empty() {
            return;
        }
        tokio::select! {
            biased;
            frame = ws.next() => {
                let text = match frame {
                    Some(Ok(Message::Text(text))) => text,
                    Some(Ok(Message::Close(_))) | None => {
                        tally.borrow_mut().lost(|| "connection closed by the server".into());
                        return;
                    }
                    Some(Err(error)) => {
                        tally.borrow_mut().lost(|| format!("connection failed: {error}"));
                        return;
                    }
                    Some(Ok(_)) => continue,
                };
                match envelope::classify(&text, IO) {
                    Kind::Ack => {}
                    Kind::Expected => {
                        if let Some((scheduled, written)) = outstanding.pop_front() {
                            if window.contains(scheduled) {
                                tally.borrow_mut().answered(written.elapsed(), false);
                            }
                        }
                    }
                    Kind::Other => {
                        outstanding.pop_front();
                        tally.borrow_mut().error(|| format!("answered {}", envelope::describe(&text)));
                    }
                }
            }
            () = &mut tick, if sending => {
                let written = Instant::now();
                seq += 1;
                if let Err(error) = ws.send(Message::text(make(seq))).await {
                    tally.borrow_mut().lost(|| format!("send failed: {error}"));
                    return;
                }
                outstanding.push_back((next, written));
                next += interval;
                tick.as_mut().reset(next);
            }
            () = &mut deadline => {
                let missing = outstanding.len() as u64;
                let mut tally = tally.borrow_mut();
                tally.errors += missing;
                if tally.first_error.is_none() {
                    tally.first_error = Some(format!("{missing} request(s) unanswered {REPLY_TIMEOUT:?} after the window"));
                }
                return;
            }
        }
    }
}

/// Runs `sql` in a closed loop until the window ends; every completion is recorded.
async fn slow(mut ws: Ws, window: Window, sql: String, tally: Rc<RefCell<Tally>>) {
    let message =
        json!({"method": "swap.io.query", "db": DB, "sql": sql, "params": []}).to_string();
    while Instant::now() < window.end {
        let sent = Instant::now();
        if let Err(error) = ws.send(Message::text(message.clone())).await {
            tally
                .borrow_mut()
                .lost(|| format!("slow: send failed: {error}"));
            return;
        }
        match tokio::time::timeout(REPLY_TIMEOUT, client::wait_for(&mut ws, IO)).await {
            Ok(Ok(())) => tally.borrow_mut().answered(sent.elapsed(), false),
            Ok(Err(Miss::Other(what))) => tally
                .borrow_mut()
                .error(|| format!("slow: answered {what}")),
            Ok(Err(Miss::Gone(why))) => {
                tally.borrow_mut().lost(|| format!("slow: {why}"));
                return;
            }
            Err(_) => {
                tally
                    .borrow_mut()
                    .error(|| format!("slow: no answer within {REPLY_TIMEOUT:?}"));
                return;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builds_requests_and_hides_passwords() {
        let insert = request(Statement::Insert, "t", 3, 9);
        assert!(
            insert.contains("swap.io.execute") && insert.contains("[3,9,\"vote\"]"),
            "{insert}"
        );
        let select: serde_json::Value =
            serde_json::from_str(&request(Statement::Select, "t", 1, 1)).expect("json");
        let id = select["params"][0].as_u64().expect("id");
        assert!((1..=SEED).contains(&id));
        assert_eq!(
            redact("mysql://u:secret@127.0.0.1:3/db"),
            "mysql://***@127.0.0.1:3/db"
        );
        assert_eq!(redact("sqlite"), "sqlite");
        assert_eq!(dialect_of("postgres://x").ok(), Some(Dialect::Postgres));
        assert!(dialect_of("redis://x").is_err());
    }
}
