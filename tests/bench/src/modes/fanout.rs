//! `fanout`: M phone users join one Live room (on one host, or spread over several hosts
//! sharing a Redis), a big screen posts, and every member waits for `wallSayBroadcast`.
//! Reported: the time from the post until the last member has it, and deliveries/s.
//!
//! With `--floor` the same measurement runs against the baseline server, whose
//! `broadcast <frame>` command writes one prebuilt frame to every connection it holds:
//! the least any server can do for a room of that size.
//!
//! Every wait has a deadline, so a host whose Live module does not answer yet fails with
//! a message saying so instead of hanging.

use std::{cell::RefCell, rc::Rc, time::Duration};

use clap::Args;
use futures_util::{stream, SinkExt, StreamExt};
use serde_json::json;
use tokio::{
    sync::mpsc,
    time::{timeout_at, Instant},
};
use tokio_tungstenite::tungstenite::Message;

use crate::{
    client::{self, Endpoint, Miss, Ws},
    envelope::{self, WALL_SAY_BROADCAST},
    modes::{parse_seconds, seconds},
    procfs,
    report::FanoutResult,
    shard,
    stats::round3,
    token::{Claims, Codec, DEFAULT_KEY},
};

/// Marks a post so members can tell rounds apart: `wsbench-round-<n>`.
const MARKER: &str = "wsbench-round-";
/// Pause between rounds, so one round's stragglers never overlap the next.
const BETWEEN_ROUNDS: Duration = Duration::from_millis(500);

/// Arguments of `fanout`.
#[derive(Debug, Clone, Args)]
pub struct FanoutArgs {
    /// Server URL; repeat it to spread the members over several hosts (the wall is on the first).
    #[arg(long = "url", required = true)]
    pub urls: Vec<Endpoint>,
    /// Token key (the servers' `auth.key`).
    #[arg(long, default_value = DEFAULT_KEY)]
    pub key: String,
    /// The room code.
    #[arg(long, default_value = "fanout")]
    pub code: String,
    /// Handshakes and joins in flight at once.
    #[arg(long, default_value_t = 256)]
    pub concurrency: usize,
    /// Room members.
    #[arg(long, default_value_t = 1000)]
    pub members: usize,
    /// Posts to measure.
    #[arg(long, default_value_t = 5)]
    pub rounds: usize,
    /// Measure the floor: use the baseline's `broadcast` command instead of the Live protocol.
    #[arg(long)]
    pub floor: bool,
    /// Server pid(s): also report the servers' CPU time per post (repeat for several hosts).
    #[arg(long = "pid")]
    pub pids: Vec<u32>,
    /// Seconds any single step (a join, a delivery round) may take.
    #[arg(long, default_value_t = 10.0, value_parser = parse_seconds)]
    pub timeout: f64,
}

/// What a member task reports.
enum Arrival {
    /// The post of this round arrived at this instant.
    Post(u64, Instant),
    /// The member's connection ended.
    Lost(String),
}

/// Runs `fanout`.
pub fn run(args: &FanoutArgs) -> Result<FanoutResult, String> {
    if args.members == 0 || args.rounds == 0 {
        return Err("--members and --rounds must be at least 1".into());
    }
    shard::block_on(measure(args))?
}

/// Opens every member and, for the Live protocol, joins it to the room.
async fn open_members(args: &FanoutArgs, codec: &Codec) -> Result<Vec<Ws>, String> {
    let hosts = args.urls.len();
    let mut members = Vec::with_capacity(args.members);
    for (h, url) in args.urls.iter().enumerate() {
        let range = h * args.members / hosts..(h + 1) * args.members / hosts;
        let wanted = range.len();
        let (open, errors) = client::connect_many(url, range, args.concurrency, |i| {
            codec.mint(&Claims::user(i as u64 + 1, &args.code))
        })
        .await;
        if let Some(first) = errors.first() {
            return Err(format!(
                "{} of {wanted} members could not connect to {url}: {first}",
                errors.len()
            ));
        }
        members.extend(open.into_iter().map(|(_, ws)| ws));
    }
    if args.floor {
        return Ok(members);
    }
    let deadline = seconds(args.timeout);
    let joins: Vec<Result<(), String>> = stream::iter(members.iter_mut())
        .map(|ws| async move {
            let join = async {
                ws.send(Message::text(r#"{"method":"live.user.join"}"#))
                    .await
                    .map_err(|e| format!("send failed: {e}"))?;
                client::wait_for(ws, "userJoinSuccess")
                    .await
                    .map_err(|miss| match miss {
                        Miss::Other(what) => format!("answered {what}"),
                        Miss::Gone(why) => why,
                    })
            };
            tokio::time::timeout(deadline, join)
                .await
                .map_err(|_| format!("no userJoinSuccess within {deadline:?}"))?
        })
        .buffer_unordered(args.concurrency.max(1))
        .collect()
        .await;
    let failed: Vec<&String> = joins.iter().filter_map(|j| j.as_ref().err()).collect();
    if let Some(first) = failed.first() {
        return Err(format!(
            "live.user.join failed for {} of {} members ({first}): the Live module does not \
             serve room joins on this host, so fanout cannot be measured against it",
            failed.len(),
            args.members
        ));
    }
    Ok(members)
}

/// Opens the big screen on the first host and joins it to the room (Live protocol).
async fn open_wall(args: &FanoutArgs, codec: &Codec) -> Result<Ws, String> {
    let token = if args.floor {
        codec.mint(&Claims::user(0, &args.code))
    } else {
        codec.mint(&Claims::wall("w-1", &args.code))
    };
    let mut wall = client::connect(&args.urls[0], client::source_addr(args.members), &token)
        .await
        .map_err(|e| format!("wall: {e}"))?;
    if !args.floor {
        wall.send(Message::text(r#"{"method":"live.wall.join"}"#))
            .await
            .map_err(|e| format!("wall: send failed: {e}"))?;
        let deadline = seconds(args.timeout);
        match tokio::time::timeout(deadline, client::wait_for(&mut wall, "wallJoinSuccess")).await {
            Ok(Ok(())) => {}
            Ok(Err(Miss::Other(what))) => {
                return Err(format!(
                "live.wall.join answered {what}: the Live module does not serve walls on this host"
            ))
            }
            Ok(Err(Miss::Gone(why))) => return Err(format!("wall: {why}")),
            Err(_) => {
                return Err(format!(
                    "live.wall.join: no wallJoinSuccess within {deadline:?}"
                ))
            }
        }
    }
    Ok(wall)
}

/// The frame the wall sends in round `round`.
fn post(args: &FanoutArgs, round: u64) -> Message {
    let say = format!("{MARKER}{round}");
    if args.floor {
        // What the Live module would send, prebuilt; the baseline relays it verbatim.
        let envelope = json!({
            "status": 200, "event": WALL_SAY_BROADCAST, "info": "wall message",
            "param": {"id": round, "code": args.code, "nickname": "bench-w-1", "say": say,
                      "user_id": "w-1", "ctime": 1_764_115_200u64},
        });
        Message::text(format!("broadcast {envelope}"))
    } else {
        Message::text(json!({"method": "live.wall.say", "say": say}).to_string())
    }
}

/// The round number in a `wallSayBroadcast` envelope.
fn round_of(text: &str) -> Option<u64> {
    if envelope::event(text) != Some(WALL_SAY_BROADCAST) {
        return None;
    }
    let at = text.find(MARKER)? + MARKER.len();
    let digits: String = text[at..]
        .chars()
        .take_while(char::is_ascii_digit)
        .collect();
    digits.parse().ok()
}

/// Reads one member's frames, reporting every post's arrival.
async fn listen(mut ws: Ws, arrivals: mpsc::UnboundedSender<Arrival>) {
    while let Some(frame) = ws.next().await {
        match frame {
            Ok(Message::Text(text)) => {
                if let Some(round) = round_of(&text) {
                    let _ = arrivals.send(Arrival::Post(round, Instant::now()));
                }
            }
            Ok(Message::Close(_)) => break,
            Ok(_) => {}
            Err(error) => {
                let _ = arrivals.send(Arrival::Lost(format!("member connection failed: {error}")));
                return;
            }
        }
    }
    let _ = arrivals.send(Arrival::Lost(
        "member connection closed by the server".into(),
    ));
}

/// Drains the wall's frames, remembering the first envelope that is not a success.
async fn drain_wall(
    mut frames: futures_util::stream::SplitStream<Ws>,
    complaint: Rc<RefCell<Option<String>>>,
) {
    while let Some(Ok(frame)) = frames.next().await {
        if let Message::Text(text) = frame {
            let fine = matches!(
                envelope::event(&text),
                Some(envelope::ACK | "wallSaySuccess" | WALL_SAY_BROADCAST)
            );
            if !fine && complaint.borrow().is_none() {
                *complaint.borrow_mut() = Some(format!(
                    "the wall's post was answered {}",
                    envelope::describe(&text)
                ));
            }
        }
    }
}

/// The median of sorted values.
fn median(sorted: &[f64]) -> f64 {
    sorted.get(sorted.len() / 2).copied().unwrap_or(0.0)
}

async fn measure(args: &FanoutArgs) -> Result<FanoutResult, String> {
    let codec = Codec::new(&args.key);
    let members = open_members(args, &codec).await?;
    let wall = open_wall(args, &codec).await?;
    let (mut post_sink, wall_frames) = wall.split();
    let complaint = Rc::new(RefCell::new(None));
    tokio::task::spawn_local(drain_wall(wall_frames, complaint.clone()));
    let (tx, mut rx) = mpsc::unbounded_channel();
    for ws in members {
        tokio::task::spawn_local(listen(ws, tx.clone()));
    }
    drop(tx);

    let mut lasts = Vec::new();
    let mut firsts = Vec::new();
    let mut medians = Vec::new();
    let mut missing = 0u64;
    let mut first_error: Option<String> = None;
    let mut server_cpu = Some(Duration::ZERO);
    let mut client_cpu = Duration::ZERO;
    for round in 0..args.rounds as u64 {
        let frame = post(args, round);
        let cpu_before = cpu_times(&args.pids);
        let posted = Instant::now();
        post_sink
            .send(frame)
            .await
            .map_err(|e| format!("wall: send failed: {e}"))?;
        let deadline = posted + seconds(args.timeout);
        let mut times: Vec<f64> = Vec::with_capacity(args.members);
        while times.len() < args.members {
            match timeout_at(deadline, rx.recv()).await {
                Ok(Some(Arrival::Post(r, at))) if r == round => {
                    times.push((at - posted).as_secs_f64() * 1000.0);
                }
                Ok(Some(Arrival::Post(..))) => {}
                Ok(Some(Arrival::Lost(why))) => {
                    first_error.get_or_insert(why);
                }
                Ok(None) | Err(_) => break,
            }
        }
        let cpu_after = cpu_times(&args.pids);
        client_cpu += cpu_after.0.saturating_sub(cpu_before.0);
        server_cpu = server_cpu
            .zip(cpu_after.1.zip(cpu_before.1))
            .map(|(sum, (after, before))| sum + after.saturating_sub(before));
        missing += (args.members - times.len()) as u64;
        if times.len() < args.members {
            let why = complaint.borrow().clone().unwrap_or_else(|| {
                format!(
                    "round {round}: {} of {} members had no {WALL_SAY_BROADCAST} within {:?}",
                    args.members - times.len(),
                    args.members,
                    seconds(args.timeout)
                )
            });
            if times.is_empty() {
                return Err(why);
            }
            first_error.get_or_insert(why);
        }
        times.sort_by(f64::total_cmp);
        firsts.push(times.first().copied().unwrap_or(0.0));
        medians.push(median(&times));
        lasts.push(times.last().copied().unwrap_or(0.0));
        tokio::time::sleep(BETWEEN_ROUNDS).await;
    }
    if first_error.is_none() {
        first_error = complaint.borrow().clone();
    }
    for list in [&mut lasts, &mut firsts, &mut medians] {
        list.sort_by(f64::total_cmp);
    }
    let last = median(&lasts);
    Ok(FanoutResult {
        urls: args.urls.iter().map(ToString::to_string).collect(),
        floor: args.floor,
        members: args.members,
        rounds: args.rounds,
        last_ms: round3(last),
        last_ms_best: round3(lasts.first().copied().unwrap_or(0.0)),
        last_ms_worst: round3(lasts.last().copied().unwrap_or(0.0)),
        first_ms: round3(median(&firsts)),
        p50_ms: round3(median(&medians)),
        deliveries_per_s: round3(args.members as f64 / (last / 1000.0).max(1e-9)),
        missing,
        server_cpu_ms_per_post: server_cpu
            .filter(|_| !args.pids.is_empty())
            .map(|cpu| round3(cpu.as_secs_f64() * 1000.0 / args.rounds as f64)),
        client_cpu_ms_per_post: round3(client_cpu.as_secs_f64() * 1000.0 / args.rounds as f64),
        first_error,
    })
}

/// This process's CPU time and the servers' summed (`None` if one cannot be read).
fn cpu_times(pids: &[u32]) -> (Duration, Option<Duration>) {
    let client = procfs::own_cpu_time().unwrap_or_default();
    let server = pids
        .iter()
        .map(|&pid| procfs::cpu_time(pid).ok())
        .sum::<Option<Duration>>();
    (client, server)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_the_round_of_a_broadcast() {
        let text = r#"{"status":200,"event":"wallSayBroadcast","info":"","param":{"say":"wsbench-round-12"}}"#;
        assert_eq!(round_of(text), Some(12));
        let other = r#"{"status":200,"event":"wallSaySuccess","info":"","param":{"say":"wsbench-round-1"}}"#;
        assert_eq!(round_of(other), None);
    }
}
