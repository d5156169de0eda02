//! `soak`: churning clients for minutes, and what is left afterwards (issue 12).
//!
//! N clients each run the same cycle until the time is up: connect with a phone user's
//! token, join a Live room (`live.user.join`), say something (`live.user.say`), then
//! leave — most by `live.user.out` and a close handshake, every `--abort-every`-th by
//! dropping the TCP socket with a reset, no close frame (a phone that loses its
//! network). Against one host on the memory registry, or two hosts sharing a Redis
//! (`--redis-url`), clients alternating between them.
//!
//! Sampled every `--sample` seconds: each host's RSS (from `/proc`), its client
//! connections and the registry's connection records (the manager's `status`), and with
//! Redis the number of keys under the run's prefix. At the end, once the clients have
//! stopped, the registry must hold no connection record, and the host's RSS must be
//! back within 20 % of its level after `--warmup` seconds. Any failed step of a cycle is
//! an error; errors, records left or RSS past the bound are problems (exit 2). Nothing
//! here is a timed test; it starts its own hosts.

use std::{
    cell::RefCell,
    io::{Read, Write},
    net::TcpStream as StdTcpStream,
    path::PathBuf,
    rc::Rc,
    time::Duration,
};

use clap::Args;
use futures_util::{future::join_all, SinkExt, StreamExt};
use serde::Serialize;
use serde_json::json;
use tokio::time::Instant;
use tokio_tungstenite::tungstenite::Message;

use crate::{
    client::{self, Endpoint, Ws},
    envelope, manager,
    modes::{parse_seconds, seconds},
    procfs,
    server::{HostSetup, Registry, Server},
    shard,
    token::{Claims, Codec, DEFAULT_KEY},
};

/// How long one step of a cycle (a join, a say, an out, a close) may take.
const STEP: Duration = Duration::from_secs(20);
/// How far the RSS at the end may lie above its level after the warm-up.
const RSS_TOLERANCE: f64 = 0.20;
/// How long the hosts get, after the clients stop, to clear their records.
const DRAIN: Duration = Duration::from_secs(30);
/// Errors kept word for word in the result (the rest are only counted).
const KEPT_ERRORS: usize = 5;

/// Arguments of `soak`.
#[derive(Debug, Clone, Args)]
pub struct SoakArgs {
    /// The `mswoole` binary (a release build: target/release/mswoole).
    #[arg(long)]
    pub host_bin: PathBuf,
    /// Directory of the built plugins (default: the host binary's directory).
    #[arg(long)]
    pub plugins: Option<PathBuf>,
    /// Churning clients.
    #[arg(long, default_value_t = 200)]
    pub clients: usize,
    /// Seconds the clients churn.
    #[arg(long, default_value_t = 60.0, value_parser = parse_seconds)]
    pub duration: f64,
    /// Seconds after which the RSS is taken as the level to come back to.
    #[arg(long, default_value_t = 30.0, value_parser = parse_seconds)]
    pub warmup: f64,
    /// Seconds between samples.
    #[arg(long, default_value_t = 10.0, value_parser = parse_seconds)]
    pub sample: f64,
    /// Seconds a client waits between two cycles (a phone is not a benchmark).
    #[arg(long, default_value_t = 1.0, value_parser = parse_seconds)]
    pub pause: f64,
    /// Every N-th leave of a client is an abort (a reset, no close frame); 0: none.
    #[arg(long, default_value_t = 4)]
    pub abort_every: usize,
    /// Live rooms the clients spread over.
    #[arg(long, default_value_t = 20)]
    pub rooms: usize,
    /// Two hosts on this Redis (`redis://HOST:PORT/`) instead of one on memory.
    #[arg(long)]
    pub redis_url: Option<String>,
    /// `[runtime] workers` of each host (0: one per core).
    #[arg(long, default_value_t = 1)]
    pub workers: usize,
}

/// One sample of the hosts.
#[derive(Debug, Clone, Serialize)]
pub struct Sample {
    /// Seconds since the clients started.
    pub t_s: u64,
    /// RSS of the hosts together, KiB.
    pub rss_kib: u64,
    /// Client connections of the hosts together.
    pub connections: u64,
    /// Connection records in the registry (`status`'s `registered`).
    pub registered: u64,
    /// Keys under the run's Redis prefix (Redis only).
    pub keys: Option<u64>,
    /// Cycles completed so far.
    pub cycles: u64,
}

/// `soak` results.
#[derive(Debug, Clone, Serialize)]
pub struct SoakResult {
    /// Hosts (1: memory, 2: Redis).
    pub hosts: usize,
    /// Registry backend.
    pub registry: String,
    /// Clients.
    pub clients: usize,
    /// Seconds of churn.
    pub duration_s: f64,
    /// Cycles completed (connect, join, say, leave).
    pub cycles: u64,
    /// Of those, leaves by abort.
    pub aborts: u64,
    /// Failed steps.
    pub errors: u64,
    /// The first few errors.
    pub first_errors: Vec<String>,
    /// RSS after the warm-up, KiB (the hosts together).
    pub rss_warm_kib: u64,
    /// Highest RSS sampled, KiB.
    pub rss_peak_kib: u64,
    /// RSS at the end, once the clients had gone, KiB.
    pub rss_end_kib: u64,
    /// Connections at the end.
    pub connections_end: u64,
    /// Connection records in the registry at the end.
    pub registered_end: u64,
    /// Keys under the prefix at the end (Redis only).
    pub keys_end: Option<u64>,
    /// The samples.
    pub samples: Vec<Sample>,
    /// The first problem seen.
    pub problem: Option<String>,
}

impl SoakResult {
    /// The table printed without `--json`.
    pub fn table(&self) -> String {
        let keys = |k: Option<u64>| k.map_or("-".to_string(), |k| k.to_string());
        let mut out = format!(
            "ws-bench soak: {} client(s), {} host(s) on {}, {:.0} s\n",
            self.clients, self.hosts, self.registry, self.duration_s
        );
        out.push_str(&format!(
            "  cycles {} ({} by abort), errors {}\n",
            self.cycles, self.aborts, self.errors
        ));
        for error in &self.first_errors {
            out.push_str(&format!("    error: {error}\n"));
        }
        out.push_str("  t s    RSS KiB  conns  registered  keys  cycles\n");
        for s in &self.samples {
            out.push_str(&format!(
                "  {:>4}  {:>8}  {:>5}  {:>10}  {:>4}  {:>6}\n",
                s.t_s,
                s.rss_kib,
                s.connections,
                s.registered,
                keys(s.keys),
                s.cycles
            ));
        }
        out.push_str(&format!(
            "  RSS after warm-up {} KiB, peak {} KiB, end {} KiB\n",
            self.rss_warm_kib, self.rss_peak_kib, self.rss_end_kib
        ));
        out.push_str(&format!(
            "  end: {} connections, {} registered, keys {}\n",
            self.connections_end,
            self.registered_end,
            keys(self.keys_end)
        ));
        out.push_str(&format!(
            "  problem: {}\n",
            self.problem.clone().unwrap_or_else(|| "none".into())
        ));
        out
    }

    /// The one-line JSON form.
    pub fn json(&self) -> String {
        serde_json::to_string(self).unwrap_or_else(|e| format!("{{\"error\":\"{e}\"}}"))
    }
}

/// What the clients count, shared on the bench's one thread.
#[derive(Debug, Default)]
struct Tally {
    cycles: u64,
    aborts: u64,
    errors: u64,
    first_errors: Vec<String>,
}

impl Tally {
    fn error(&mut self, error: String) {
        self.errors += 1;
        if self.first_errors.len() < KEPT_ERRORS {
            self.first_errors.push(error);
        }
    }
}

/// Runs `soak`.
pub fn run(args: &SoakArgs) -> Result<SoakResult, String> {
    if args.clients == 0 || args.rooms == 0 {
        return Err("--clients and --rooms must be at least 1".into());
    }
    let plugins = match &args.plugins {
        Some(dir) => dir.clone(),
        None => args
            .host_bin
            .parent()
            .map(PathBuf::from)
            .ok_or("--host-bin has no directory; pass --plugins")?,
    };
    let prefix = format!("soak{}:", std::process::id());
    let registry = match &args.redis_url {
        Some(url) => Registry::Redis {
            url: url.clone(),
            prefix: prefix.clone(),
        },
        None => Registry::Memory,
    };
    let setup = HostSetup {
        bin: args.host_bin.clone(),
        plugins,
        registry,
        workers: args.workers,
        max_connections: args.clients + 100,
        idle_s: 600,
        outbound_bytes: None,
        extra_plugins: Vec::new(),
    };
    let count = if args.redis_url.is_some() { 2 } else { 1 };
    let mut hosts = Vec::with_capacity(count);
    for _ in 0..count {
        match Server::host(&setup, None) {
            Ok(host) => hosts.push(host),
            Err(error) => {
                hosts.into_iter().for_each(Server::stop);
                return Err(error);
            }
        }
    }
    let redis = args.redis_url.as_deref().map(|url| (url, prefix.as_str()));
    let result = shard::block_on(soak(args, &hosts, redis));
    hosts.into_iter().for_each(Server::stop);
    result?
}

/// Reads frames until an envelope with event `event` arrives, skipping acks and
/// broadcasts; an envelope with another status is an error.
async fn wait_event(ws: &mut Ws, event: &str) -> Result<(), String> {
    let waiting = async {
        while let Some(frame) = ws.next().await {
            match frame {
                Ok(Message::Text(text)) => {
                    if envelope::event(&text) == Some(event) {
                        return Ok(());
                    }
                    if envelope::status(&text).is_some_and(|status| status != 200) {
                        return Err(format!(
                            "waiting for {event}: {}",
                            envelope::describe(&text)
                        ));
                    }
                }
                Ok(Message::Close(frame)) => {
                    return Err(format!("waiting for {event}: closed ({frame:?})"))
                }
                Ok(_) => {}
                Err(error) => return Err(format!("waiting for {event}: {error}")),
            }
        }
        Err(format!("waiting for {event}: connection ended"))
    };
    tokio::time::timeout(STEP, waiting)
        .await
        .map_err(|_| format!("no {event} within {STEP:?}"))?
}

/// Sends a command and waits for its success event.
async fn step(ws: &mut Ws, body: serde_json::Value, success: &str) -> Result<(), String> {
    ws.send(Message::text(body.to_string()))
        .await
        .map_err(|e| format!("sending for {success}: {e}"))?;
    wait_event(ws, success).await
}

/// One cycle: connect, join, say, leave (by `out` and a close, or by a reset).
async fn cycle(url: &Endpoint, index: usize, token: &str, abort: bool) -> Result<(), String> {
    let mut ws = client::connect(url, client::source_addr(index), token).await?;
    step(
        &mut ws,
        json!({"method": "live.user.join"}),
        "userJoinSuccess",
    )
    .await?;
    step(
        &mut ws,
        json!({"method": "live.user.say", "say": format!("soak {index}")}),
        "userSaySuccess",
    )
    .await?;
    if abort {
        // A reset, no close frame: the host must clean up after onClose alone.
        ws.get_ref()
            .set_zero_linger()
            .map_err(|e| format!("SO_LINGER: {e}"))?;
        drop(ws);
        return Ok(());
    }
    step(
        &mut ws,
        json!({"method": "live.user.out"}),
        "userOutSuccess",
    )
    .await?;
    ws.close(None).await.map_err(|e| format!("close: {e}"))?;
    let closing = async { while let Some(Ok(_)) = ws.next().await {} };
    tokio::time::timeout(STEP, closing)
        .await
        .map_err(|_| format!("no end of the close handshake within {STEP:?}"))
}

/// One client: cycles until `deadline`.
async fn client(
    index: usize,
    urls: Rc<Vec<Endpoint>>,
    args: SoakArgs,
    deadline: Instant,
    tally: Rc<RefCell<Tally>>,
) {
    let codec = Codec::new(DEFAULT_KEY);
    let code = format!("soak-{}", index % args.rooms);
    let token = codec.mint(&Claims::user(100_000 + index as u64, &code));
    // Spread the first connects over the first pause.
    let offset = seconds(args.pause).mul_f64((index % 100) as f64 / 100.0);
    tokio::time::sleep(offset).await;
    let mut round = 0usize;
    while Instant::now() < deadline {
        let url = &urls[(index + round) % urls.len()];
        let abort = args.abort_every > 0 && (index + round).is_multiple_of(args.abort_every);
        let outcome = cycle(url, index, &token, abort).await;
        {
            let mut tally = tally.borrow_mut();
            match outcome {
                Ok(()) => {
                    tally.cycles += 1;
                    tally.aborts += u64::from(abort);
                }
                Err(error) => tally.error(error),
            }
        }
        round += 1;
        tokio::time::sleep(seconds(args.pause)).await;
    }
}

/// Samples the hosts once.
async fn sample(
    hosts: &[Server],
    redis: Option<(&str, &str)>,
    t: Duration,
    cycles: u64,
) -> Result<Sample, String> {
    let mut rss = 0;
    let mut connections = 0;
    let mut registered = 0;
    for host in hosts {
        rss += procfs::rss_bytes(host.pid)?;
        let url = host.manager_url().ok_or("a host has no manager port")?;
        let status = manager::status(&url).await?;
        connections += status.connections;
        // One registry for all the hosts: every host counts the same records.
        registered = status
            .registered
            .ok_or("status without registered: the registry is away")?;
    }
    let keys = match redis {
        Some((url, prefix)) => Some(redis_keys(url, prefix)?),
        None => None,
    };
    Ok(Sample {
        t_s: t.as_secs(),
        rss_kib: rss / 1024,
        connections,
        registered,
        keys,
        cycles,
    })
}

/// Counts the keys under `prefix` with `KEYS prefix*` over a plain RESP exchange (the
/// bench has no Redis client; a private test Redis is small enough for KEYS).
fn redis_keys(url: &str, prefix: &str) -> Result<u64, String> {
    let address = url
        .strip_prefix("redis://")
        .map(|rest| rest.split('/').next().unwrap_or(rest))
        .ok_or_else(|| format!("--redis-url {url:?}: expected redis://HOST:PORT/"))?;
    let mut stream = StdTcpStream::connect(address).map_err(|e| format!("redis {address}: {e}"))?;
    stream
        .set_read_timeout(Some(Duration::from_secs(5)))
        .map_err(|e| format!("redis: {e}"))?;
    let pattern = format!("{prefix}*");
    let request = format!("*2\r\n$4\r\nKEYS\r\n${}\r\n{pattern}\r\n", pattern.len());
    stream
        .write_all(request.as_bytes())
        .map_err(|e| format!("redis: {e}"))?;
    // The answer starts `*<count>\r\n`; the count is all that is needed.
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n") {
        stream
            .read_exact(&mut byte)
            .map_err(|e| format!("redis: {e}"))?;
        head.push(byte[0]);
    }
    let text = String::from_utf8_lossy(&head);
    text.trim()
        .strip_prefix('*')
        .and_then(|n| n.parse().ok())
        .ok_or_else(|| format!("redis: unexpected answer {text:?}"))
}

async fn soak(
    args: &SoakArgs,
    hosts: &[Server],
    redis: Option<(&str, &str)>,
) -> Result<SoakResult, String> {
    let urls: Vec<Endpoint> = hosts
        .iter()
        .map(|host| host.url().parse())
        .collect::<Result<_, _>>()?;
    let urls = Rc::new(urls);
    let tally = Rc::new(RefCell::new(Tally::default()));
    let started = Instant::now();
    let deadline = started + seconds(args.duration);
    let clients: Vec<_> = (0..args.clients)
        .map(|index| {
            tokio::task::spawn_local(client(
                index,
                urls.clone(),
                args.clone(),
                deadline,
                tally.clone(),
            ))
        })
        .collect();
    let mut samples = Vec::new();
    let mut rss_warm = None;
    let every = seconds(args.sample).max(Duration::from_secs(1));
    let mut next = started;
    while next < deadline {
        next += every;
        tokio::time::sleep_until(next.min(deadline)).await;
        let cycles = tally.borrow().cycles;
        let s = sample(hosts, redis, started.elapsed(), cycles).await?;
        if rss_warm.is_none() && started.elapsed() >= seconds(args.warmup) {
            rss_warm = Some(s.rss_kib);
        }
        samples.push(s);
    }
    for done in join_all(clients).await {
        done.map_err(|e| format!("a client task failed: {e}"))?;
    }
    // The clients are gone: the records must follow, within DRAIN.
    let drained = Instant::now();
    let cycles = tally.borrow().cycles;
    let mut last = sample(hosts, redis, started.elapsed(), cycles).await?;
    while (last.connections > 0 || last.registered > 0) && drained.elapsed() < DRAIN {
        tokio::time::sleep(Duration::from_millis(500)).await;
        last = sample(hosts, redis, started.elapsed(), cycles).await?;
    }
    // jemalloc's background thread returns freed pages within seconds.
    tokio::time::sleep(Duration::from_secs(5)).await;
    let end = sample(hosts, redis, started.elapsed(), cycles).await?;
    samples.push(end.clone());
    let rss_warm = rss_warm.unwrap_or_else(|| samples.first().map_or(0, |s| s.rss_kib));
    let rss_peak = samples.iter().map(|s| s.rss_kib).max().unwrap_or(0);
    let tally = tally.take();
    let problem = if tally.errors > 0 {
        Some(format!("{} failed steps", tally.errors))
    } else if end.connections > 0 || end.registered > 0 {
        Some(format!(
            "{} connections and {} registry records left after the clients were gone",
            end.connections, end.registered
        ))
    } else if end.rss_kib as f64 > rss_warm as f64 * (1.0 + RSS_TOLERANCE) {
        Some(format!(
            "RSS at the end {} KiB is more than {:.0} % above its level after the warm-up ({} KiB)",
            end.rss_kib,
            RSS_TOLERANCE * 100.0,
            rss_warm
        ))
    } else if tally.cycles == 0 {
        Some("no cycle completed".into())
    } else {
        None
    };
    Ok(SoakResult {
        hosts: hosts.len(),
        registry: if redis.is_some() { "redis" } else { "memory" }.into(),
        clients: args.clients,
        duration_s: args.duration,
        cycles: tally.cycles,
        aborts: tally.aborts,
        errors: tally.errors,
        first_errors: tally.first_errors,
        rss_warm_kib: rss_warm,
        rss_peak_kib: rss_peak,
        rss_end_kib: end.rss_kib,
        connections_end: end.connections,
        registered_end: end.registered,
        keys_end: end.keys,
        samples,
        problem,
    })
}
