//! `slow`: what phone users that stop reading cost the host's memory (issue 12).
//!
//! The probe's case: in each of R rooms of the Live module one phone user joins and
//! then reads nothing, while the room's big screen keeps broadcasting 60 KB frames to
//! the room's users (a reading phone says 60 KB, the screen approves it with
//! `live.wall.check`, and every user of the room gets `userSayBroadcast`; nothing is
//! stored, so the registry does not grow with the rounds). First `--warmup` rounds run
//! with every user reading, so that the baseline is the host's steady state under this
//! traffic (buffers of the connections that read, the allocator's working set); then
//! the silent users stop reading, and the rounds go on until the host has closed them
//! all, sampling the host's resident memory from `/proc` every few milliseconds; then
//! the host is watched for `--settle` seconds more.
//!
//! Reported: the host's RSS before the broadcasts (baseline), its peak, the growth
//! against the bound `R × limits.outbound_bytes`, its RSS after the users are gone, and
//! how each silent user's connection ended (a close frame and its code, or a reset) and
//! what it had received by then. A growth past the bound plus [`SLACK`] is reported as
//! a problem (exit 2). Nothing here is a timed test; it starts its own host.

use std::{
    cell::Cell,
    path::PathBuf,
    rc::Rc,
    sync::{
        atomic::{AtomicBool, AtomicU64, Ordering},
        Arc,
    },
    time::Duration,
};

use clap::Args;
use futures_util::{future::join_all, SinkExt, StreamExt};
use serde::Serialize;
use serde_json::{json, Value};
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

/// What the host may hold beyond the queues' bound and still pass: the frames in flight
/// to the connections that read, tungstenite's write buffer of each silent user (128 KiB
/// and a frame) and the allocator's slack. Measured: 1.9 MiB for 5 rooms, 6.6 MiB for 50
/// (docs/BENCHMARKS.md).
pub const SLACK: u64 = 8 * 1024 * 1024;
/// How often the sampler reads `/proc/<pid>/status`.
const SAMPLE_EVERY: Duration = Duration::from_millis(5);
/// How long one step (a say, a check, a join) may take.
const STEP: Duration = Duration::from_secs(10);

/// Arguments of `slow`.
#[derive(Debug, Clone, Args)]
pub struct SlowArgs {
    /// The `mswoole` binary (a release build: target/release/mswoole).
    #[arg(long)]
    pub host_bin: PathBuf,
    /// Directory of the built plugins (default: the host binary's directory).
    #[arg(long)]
    pub plugins: Option<PathBuf>,
    /// Rooms; each has one silent phone user, one reading phone and one big screen.
    #[arg(long, default_value_t = 5)]
    pub rooms: usize,
    /// Bytes of each broadcast message's `say`.
    #[arg(long, default_value_t = 60_000)]
    pub frame_bytes: usize,
    /// `limits.outbound_bytes` of the host; 0 leaves the key out (a host without it).
    #[arg(long, default_value_t = 1 << 20)]
    pub outbound_bytes: usize,
    /// `[runtime] workers` of the host (0: one per core).
    #[arg(long, default_value_t = 0)]
    pub workers: usize,
    /// Broadcasts per room before giving up on the silent users being closed.
    #[arg(long, default_value_t = 3000)]
    pub max_rounds: usize,
    /// Rounds with every user reading, before the baseline is taken.
    #[arg(long, default_value_t = 20)]
    pub warmup: usize,
    /// Seconds to watch the host's memory after the silent users are gone.
    #[arg(long, default_value_t = 20.0, value_parser = parse_seconds)]
    pub settle: f64,
}

/// How a silent user's connection ended, read after the broadcasts.
#[derive(Debug, Clone, Serialize)]
pub struct SilentUser {
    /// Broadcast frames it received before the end.
    pub frames: u64,
    /// How it ended: `close <code> <reason>`, `reset`, `eof` or `open`.
    pub end: String,
}

/// `slow` results.
#[derive(Debug, Clone, Serialize)]
pub struct SlowResult {
    /// Rooms (silent users).
    pub rooms: usize,
    /// Bytes of each `say`.
    pub frame_bytes: usize,
    /// The host's `limits.outbound_bytes` (0: not set).
    pub outbound_bytes: usize,
    /// Broadcast rounds until every silent user was closed.
    pub rounds: usize,
    /// Seconds from the first broadcast until the last silent user was closed.
    pub closed_after_s: f64,
    /// RSS before the broadcasts, KiB.
    pub baseline_kib: u64,
    /// Highest RSS seen until the silent users were gone, KiB.
    pub peak_kib: u64,
    /// Peak − baseline, KiB.
    pub growth_kib: u64,
    /// rooms × outbound_bytes, KiB.
    pub bound_kib: u64,
    /// RSS 1 s after the last silent user was closed, KiB.
    pub after_1s_kib: u64,
    /// RSS 5 s after, KiB.
    pub after_5s_kib: u64,
    /// RSS at the end of the settle time, KiB.
    pub after_settle_kib: u64,
    /// Seconds of settle time.
    pub settle_s: f64,
    /// Each silent user's end.
    pub silent_users: Vec<SilentUser>,
    /// The first problem seen.
    pub problem: Option<String>,
}

impl SlowResult {
    /// The table printed without `--json`.
    pub fn table(&self) -> String {
        let ends: Vec<String> = self
            .silent_users
            .iter()
            .map(|user| format!("{} after {} frames", user.end, user.frames))
            .collect();
        let rows = [
            ("rooms (silent users)", self.rooms.to_string()),
            ("frame bytes", self.frame_bytes.to_string()),
            ("outbound_bytes", self.outbound_bytes.to_string()),
            ("rounds", self.rounds.to_string()),
            ("all closed after s", format!("{:.2}", self.closed_after_s)),
            ("RSS baseline KiB", self.baseline_kib.to_string()),
            ("RSS peak KiB", self.peak_kib.to_string()),
            ("growth KiB", self.growth_kib.to_string()),
            ("bound KiB (rooms × outbound)", self.bound_kib.to_string()),
            ("RSS +1 s KiB", self.after_1s_kib.to_string()),
            ("RSS +5 s KiB", self.after_5s_kib.to_string()),
            (
                "RSS after settle KiB",
                format!("{} (+{} s)", self.after_settle_kib, self.settle_s),
            ),
            ("silent users", ends.join("; ")),
            (
                "problem",
                self.problem.clone().unwrap_or_else(|| "none".into()),
            ),
        ];
        let width = rows
            .iter()
            .map(|(k, _)| k.chars().count())
            .max()
            .unwrap_or(0);
        let mut out = String::from("ws-bench slow\n");
        for (key, value) in rows {
            let pad = width - key.chars().count();
            out.push_str(&format!("  {key}{}  {value}\n", " ".repeat(pad)));
        }
        out
    }

    /// The one-line JSON form.
    pub fn json(&self) -> String {
        serde_json::to_string(self).unwrap_or_else(|e| format!("{{\"error\":\"{e}\"}}"))
    }
}

/// The host's RSS, sampled on a thread of its own.
struct Sampler {
    /// Highest RSS since the last reset, bytes.
    peak: Arc<AtomicU64>,
    /// Tells the thread to stop.
    stop: Arc<AtomicBool>,
    /// The thread.
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Sampler {
    fn start(pid: u32) -> Sampler {
        let peak = Arc::new(AtomicU64::new(0));
        let stop = Arc::new(AtomicBool::new(false));
        let thread = {
            let (peak, stop) = (peak.clone(), stop.clone());
            std::thread::spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    if let Ok(rss) = procfs::rss_bytes(pid) {
                        peak.fetch_max(rss, Ordering::Relaxed);
                    }
                    std::thread::sleep(SAMPLE_EVERY);
                }
            })
        };
        Sampler {
            peak,
            stop,
            thread: Some(thread),
        }
    }

    fn peak(&self) -> u64 {
        self.peak.load(Ordering::Relaxed)
    }
}

impl Drop for Sampler {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// Runs `slow`.
pub fn run(args: &SlowArgs) -> Result<SlowResult, String> {
    if args.rooms == 0 || args.frame_bytes == 0 {
        return Err("--rooms and --frame-bytes must be at least 1".into());
    }
    let plugins = match &args.plugins {
        Some(dir) => dir.clone(),
        None => args
            .host_bin
            .parent()
            .map(PathBuf::from)
            .ok_or("--host-bin has no directory; pass --plugins")?,
    };
    let setup = HostSetup {
        bin: args.host_bin.clone(),
        plugins,
        registry: Registry::Memory,
        workers: args.workers,
        max_connections: 1000,
        idle_s: 600,
        outbound_bytes: (args.outbound_bytes > 0).then_some(args.outbound_bytes),
        extra_plugins: Vec::new(),
    };
    let host = Server::host(&setup, None)?;
    let result = shard::block_on(measure(args, &host));
    host.stop();
    result?
}

/// Reads frames until an envelope with event `event` arrives (skipping everything
/// else: acks, broadcasts); returns its text.
async fn wait_event(ws: &mut Ws, event: &str) -> Result<String, String> {
    let waiting = async {
        while let Some(frame) = ws.next().await {
            match frame {
                Ok(Message::Text(text)) => {
                    if envelope::event(&text) == Some(event) {
                        return Ok(text.to_string());
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

/// Connects with `claims` and sends `join` (if any), waiting for `joined`.
async fn open(
    url: &Endpoint,
    codec: &Codec,
    claims: &Claims,
    index: usize,
    join: Option<(&str, &str)>,
) -> Result<Ws, String> {
    let mut ws = client::connect(url, client::source_addr(index), &codec.mint(claims)).await?;
    if let Some((method, joined)) = join {
        ws.send(Message::text(json!({ "method": method }).to_string()))
            .await
            .map_err(|e| format!("{method}: {e}"))?;
        wait_event(&mut ws, joined).await?;
    }
    Ok(ws)
}

/// One room: its silent user, its reading phone (the speaker) and its screen.
struct Room {
    silent: Ws,
    speaker: Ws,
    wall: Ws,
}

/// Reads a user's frames until `stop` is set, then hands the connection back.
async fn read_until(mut ws: Ws, stop: Rc<Cell<bool>>) -> Result<Ws, String> {
    while !stop.get() {
        match tokio::time::timeout(Duration::from_millis(20), ws.next()).await {
            Err(_) | Ok(Some(Ok(_))) => {}
            Ok(Some(Err(error))) => return Err(format!("a user failed while reading: {error}")),
            Ok(None) => return Err("a user was closed while it was reading".into()),
        }
    }
    Ok(ws)
}

/// One broadcast in a room: the speaker says, the screen approves.
async fn broadcast(speaker: &mut Ws, wall: &mut Ws, say: &str) -> Result<(), String> {
    let message = json!({"method": "live.user.say", "say": say}).to_string();
    speaker
        .send(Message::text(message))
        .await
        .map_err(|e| format!("say: {e}"))?;
    let said = wait_event(speaker, "userSaySuccess").await?;
    let id = serde_json::from_str::<Value>(&said)
        .ok()
        .and_then(|envelope| envelope.get("param").cloned())
        .ok_or("userSaySuccess without a message id")?;
    let check = json!({"method": "live.wall.check", "id": id, "status": 1}).to_string();
    wall.send(Message::text(check))
        .await
        .map_err(|e| format!("check: {e}"))?;
    wait_event(wall, "wallCheckSuccess").await?;
    Ok(())
}

/// The host's client connections, from the manager's `status`.
async fn connections(manager_url: &str) -> Result<u64, String> {
    Ok(manager::status(manager_url).await?.connections)
}

/// Reads what a silent user received, until its connection ends.
async fn drain(ws: &mut Ws) -> SilentUser {
    let mut frames = 0;
    let end = loop {
        match tokio::time::timeout(Duration::from_secs(2), ws.next()).await {
            Err(_) => break "open".to_string(),
            Ok(None) => break "eof".to_string(),
            Ok(Some(Ok(Message::Text(_)))) => frames += 1,
            Ok(Some(Ok(Message::Close(frame)))) => {
                break match frame {
                    Some(frame) => format!("close {} {}", frame.code, frame.reason),
                    None => "close".to_string(),
                }
            }
            Ok(Some(Ok(_))) => {}
            Ok(Some(Err(error))) => {
                let text = error.to_string();
                break if text.contains("reset by peer") {
                    "reset".to_string()
                } else if text.contains("without closing handshake") {
                    "eof".to_string()
                } else {
                    text
                };
            }
        }
    };
    SilentUser { frames, end }
}

async fn measure(args: &SlowArgs, host: &Server) -> Result<SlowResult, String> {
    let url: Endpoint = host.url().parse()?;
    let manager_url = host.manager_url().ok_or("the host has no manager port")?;
    let codec = Codec::new(DEFAULT_KEY);
    let mut rooms = Vec::with_capacity(args.rooms);
    for r in 0..args.rooms {
        let code = format!("slow-{r}");
        let silent = open(
            &url,
            &codec,
            &Claims::user(1000 + r as u64, &code),
            3 * r,
            Some(("live.user.join", "userJoinSuccess")),
        )
        .await?;
        let speaker = open(
            &url,
            &codec,
            &Claims::user(2000 + r as u64, &code),
            3 * r + 1,
            None,
        )
        .await?;
        let wall = open(
            &url,
            &codec,
            &Claims::wall(&format!("w-{r}"), &code),
            3 * r + 2,
            Some(("live.wall.join", "wallJoinSuccess")),
        )
        .await?;
        rooms.push(Room {
            silent,
            speaker,
            wall,
        });
    }
    let readers = (2 * args.rooms) as u64;
    let say = "x".repeat(args.frame_bytes);
    // Warm-up: the silent users read too, for now.
    let stop = Rc::new(Cell::new(false));
    let mut reading = Vec::with_capacity(rooms.len());
    let mut others = Vec::with_capacity(rooms.len());
    for room in rooms {
        reading.push(tokio::task::spawn_local(read_until(
            room.silent,
            stop.clone(),
        )));
        others.push((room.speaker, room.wall));
    }
    for round in 0..args.warmup {
        let results = join_all(
            others
                .iter_mut()
                .map(|(speaker, wall)| broadcast(speaker, wall, &say)),
        )
        .await;
        if let Some(error) = results.into_iter().find_map(Result::err) {
            return Err(format!("warm-up round {round}: {error}"));
        }
    }
    stop.set(true);
    let mut partial = Vec::with_capacity(others.len());
    for (handle, (speaker, wall)) in reading.into_iter().zip(others) {
        let silent = handle
            .await
            .map_err(|e| format!("a reading task failed: {e}"))??;
        partial.push(Room {
            silent,
            speaker,
            wall,
        });
    }
    let mut rooms = partial;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let baseline = procfs::rss_bytes(host.pid)?;
    let sampler = Sampler::start(host.pid);
    let started = Instant::now();
    let mut rounds = 0;
    let mut problem = None;
    loop {
        if connections(&manager_url).await? <= readers {
            break;
        }
        if rounds >= args.max_rounds {
            problem = Some(format!(
                "{rounds} broadcasts per room and the silent users are still connected"
            ));
            break;
        }
        let results = join_all(
            rooms
                .iter_mut()
                .map(|room| broadcast(&mut room.speaker, &mut room.wall, &say)),
        )
        .await;
        if let Some(error) = results.into_iter().find_map(Result::err) {
            return Err(format!("round {rounds}: {error}"));
        }
        rounds += 1;
    }
    let closed_after = started.elapsed();
    let peak = sampler.peak().max(baseline);
    drop(sampler);
    tokio::time::sleep(Duration::from_secs(1)).await;
    let after_1s = procfs::rss_bytes(host.pid)?;
    tokio::time::sleep(Duration::from_secs(4)).await;
    let after_5s = procfs::rss_bytes(host.pid)?;
    let settle = seconds(args.settle).max(Duration::from_secs(5));
    tokio::time::sleep(settle - Duration::from_secs(5)).await;
    let after_settle = procfs::rss_bytes(host.pid)?;
    let mut silent_users = Vec::with_capacity(rooms.len());
    for room in &mut rooms {
        silent_users.push(drain(&mut room.silent).await);
    }
    let growth = peak.saturating_sub(baseline);
    let bound = (args.rooms * args.outbound_bytes) as u64;
    if problem.is_none() && args.outbound_bytes > 0 && growth > bound + SLACK {
        problem = Some(format!(
            "RSS grew {} KiB, more than rooms × outbound_bytes ({} KiB) + {} KiB",
            growth / 1024,
            bound / 1024,
            SLACK / 1024
        ));
    }
    Ok(SlowResult {
        rooms: args.rooms,
        frame_bytes: args.frame_bytes,
        outbound_bytes: args.outbound_bytes,
        rounds,
        closed_after_s: (closed_after.as_secs_f64() * 100.0).round() / 100.0,
        baseline_kib: baseline / 1024,
        peak_kib: peak / 1024,
        growth_kib: growth / 1024,
        bound_kib: bound / 1024,
        after_1s_kib: after_1s / 1024,
        after_5s_kib: after_5s / 1024,
        after_settle_kib: after_settle / 1024,
        settle_s: settle.as_secs_f64(),
        silent_users,
        problem,
    })
}
