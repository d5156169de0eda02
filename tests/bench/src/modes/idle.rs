//! `idle`: open N authenticated connections, hold them with a heartbeat (`2` → `3`)
//! every 20 s, and report the server's resident memory before and after, per connection.

use std::{cell::RefCell, rc::Rc, time::Duration};

use clap::Args;
use futures_util::{SinkExt, StreamExt};
use tokio::time::Instant;
use tokio_tungstenite::tungstenite::{Message, Utf8Bytes};

use crate::{
    client::{self, Ws},
    envelope::{PING, PONG},
    modes::{parse_seconds, seconds, TargetArgs},
    procfs,
    report::IdleResult,
    shard,
    stats::round3,
    token::Codec,
};

/// A heartbeat not answered within this long counts as missed.
const PONG_TIMEOUT: Duration = Duration::from_secs(10);

/// Arguments of `idle`.
#[derive(Debug, Clone, Args)]
pub struct IdleArgs {
    #[command(flatten)]
    pub target: TargetArgs,
    /// Connections to open and hold.
    #[arg(long, default_value_t = 1000)]
    pub conns: usize,
    /// Seconds to hold them once open (memory is read at the end).
    #[arg(long, default_value_t = 25.0, value_parser = parse_seconds)]
    pub hold: f64,
    /// Seconds between heartbeats of one connection (first beats are spread over one interval).
    #[arg(long, default_value_t = 20.0, value_parser = parse_seconds)]
    pub heartbeat: f64,
    /// The server's pid: report its RSS before and after.
    #[arg(long)]
    pub pid: Option<u32>,
}

/// Heartbeat counters of all connections.
#[derive(Debug, Default)]
struct Beats {
    ok: u64,
    missed: u64,
    lost: u64,
    first_error: Option<String>,
}

/// Runs `idle`.
pub fn run(args: &IdleArgs) -> Result<IdleResult, String> {
    let rss = |pid: Option<u32>| pid.map(procfs::rss_bytes).transpose();
    let rss_before = rss(args.pid)?;
    let codec = Codec::new(&args.target.key);
    let started = std::time::Instant::now();
    let (beats, held, connect_errors, connect_s, rss_after) = shard::block_on(async {
        let (open, errors) = client::connect_many(
            &args.target.url,
            0..args.conns,
            args.target.concurrency,
            |i| args.target.user_token(&codec, i),
        )
        .await;
        let connect_s = started.elapsed().as_secs_f64();
        let beats = Rc::new(RefCell::new(Beats::default()));
        if let Some(first) = errors.first() {
            beats.borrow_mut().first_error = Some(format!("connect: {first}"));
        }
        let now = Instant::now();
        let stop = now + seconds(args.hold);
        let interval = seconds(args.heartbeat).max(Duration::from_millis(10));
        let count = open.len().max(1);
        let tasks: Vec<_> = open
            .into_iter()
            .enumerate()
            .map(|(n, (_, ws))| {
                let first = now + interval.mul_f64(n as f64 / count as f64);
                tokio::task::spawn_local(hold(ws, first, interval, stop, beats.clone()))
            })
            .collect();
        let mut still_open = Vec::with_capacity(tasks.len());
        for task in tasks {
            if let Ok(Some(ws)) = task.await {
                still_open.push(ws);
            }
        }
        // Read memory while the connections are still open; they close when dropped.
        let rss_after = rss(args.pid);
        let held = still_open.len();
        drop(still_open);
        let beats = std::mem::take(&mut *beats.borrow_mut());
        (beats, held, errors.len(), connect_s, rss_after)
    })?;
    let rss_after = rss_after?;
    let bytes_per_conn = rss_before
        .zip(rss_after)
        .filter(|_| held > 0)
        .map(|(before, after)| after.saturating_sub(before) / held as u64);
    Ok(IdleResult {
        url: args.target.url.to_string(),
        conns_wanted: args.conns,
        conns_held: held,
        connect_errors,
        connect_s: round3(connect_s),
        hold_s: args.hold,
        heartbeat_s: args.heartbeat,
        heartbeats_ok: beats.ok,
        heartbeats_missed: beats.missed,
        lost: beats.lost,
        rss_before_kib: rss_before.map(|b| b / 1024),
        rss_after_kib: rss_after.map(|b| b / 1024),
        bytes_per_conn,
        first_error: beats.first_error,
    })
}

/// Holds one connection until `stop`, sending `2` every `interval` from `first` and
/// expecting `3`. Returns the connection if it was still open at `stop`.
async fn hold(
    mut ws: Ws,
    first: Instant,
    interval: Duration,
    stop: Instant,
    beats: Rc<RefCell<Beats>>,
) -> Option<Ws> {
    let mut waiting: Option<Instant> = None;
    let beat = tokio::time::sleep_until(first);
    tokio::pin!(beat);
    let end = tokio::time::sleep_until(stop);
    tokio::pin!(end);
    loop {
        tokio::select! {
            biased;
            frame = ws.next() => match frame {
                Some(Ok(Message::Text(text))) if text == PONG => {
                    if waiting.take().is_some() {
                        beats.borrow_mut().ok += 1;
                    }
                }
                Some(Ok(Message::Close(_))) | None | Some(Err(_)) => {
                    let mut beats = beats.borrow_mut();
                    beats.lost += 1;
                    if beats.first_error.is_none() {
                        beats.first_error = Some(format!("connection closed: {frame:?}"));
                    }
                    return None;
                }
                Some(Ok(_)) => {}
            },
            () = &mut beat => {
                if waiting.take().is_some() {
                    beats.borrow_mut().missed += 1;
                }
                if ws.send(Message::Text(Utf8Bytes::from_static(PING))).await.is_err() {
                    beats.borrow_mut().lost += 1;
                    return None;
                }
                let now = Instant::now();
                waiting = Some(now);
                beat.as_mut().reset(now + interval);
            }
            () = &mut end => {
                if waiting.is_some_and(|sent| sent.elapsed() > PONG_TIMEOUT) {
                    beats.borrow_mut().missed += 1;
                }
                return Some(ws);
            }
        }
    }
}
