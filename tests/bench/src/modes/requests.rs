//! The request engine shared by `rr`, `rate` and `swap`: open the connections, warm up,
//! then send `index.index.index` for a measured window and record send → `success`.
//!
//! Two pacings: closed loop (each connection sends its next request when the previous one
//! is answered: measures the most the server does) and a fixed offered rate (requests
//! leave on a schedule whatever the answers do, several may be in flight on one
//! connection, so a slow server cannot slow the load down: no coordinated omission).
//! Latency counts from the moment the request was written, not from its scheduled time:
//! tokio's timer fires up to a millisecond late, and that lateness is the client's, not
//! the server's.

use std::{
    cell::RefCell,
    collections::VecDeque,
    rc::Rc,
    sync::{
        atomic::{AtomicU64, Ordering},
        Arc, Barrier, OnceLock,
    },
    time::Duration,
};

use futures_util::{SinkExt, StreamExt};
use tokio::time::{sleep_until, Instant};
use tokio_tungstenite::tungstenite::{Message, Utf8Bytes};

use crate::{
    client::{self, Miss, Ws},
    envelope::{self, Kind, REQUEST, SUCCESS},
    modes::TargetArgs,
    procfs, shard,
    stats::Tally,
    token::Codec,
};

/// How long a request may wait for its answer before it counts as an error and its
/// connection is given up.
const REPLY_TIMEOUT: Duration = Duration::from_secs(10);

/// How requests are paced.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Pacing {
    /// One request in flight per connection.
    Closed,
    /// This many requests per second in total, spread evenly over the connections.
    Rate(f64),
}

/// How long after an outside event a request that overlaps it is blamed on it: the
/// host's watcher debounces and waits for a replaced file to settle before it swaps.
pub const BLAME: Duration = Duration::from_secs(1);

/// The latest outside event (a plugin file replacement), marked by the thread that causes
/// it and read by the client threads, so that each request's wait can be attributed to it
/// or to the machine's background noise. Only the latest event matters: any earlier event
/// a request overlaps, the latest one before its answer overlaps too.
#[derive(Debug)]
pub struct Events {
    base: std::time::Instant,
    /// Nanoseconds after `base` + 1 of the latest event; 0 = none yet.
    latest: AtomicU64,
}

impl Default for Events {
    fn default() -> Self {
        Events {
            base: std::time::Instant::now(),
            latest: AtomicU64::new(0),
        }
    }
}

impl Events {
    /// Records that an event happens now.
    pub fn mark(&self) {
        let ns = u64::try_from(self.base.elapsed().as_nanos()).unwrap_or(u64::MAX - 1);
        self.latest.store(ns + 1, Ordering::Release);
    }

    /// Whether a request sent at `sent` and answered now overlapped `[event, event + BLAME]`.
    fn overlaps(&self, sent: Instant) -> bool {
        match self.latest.load(Ordering::Acquire) {
            0 => false,
            ns => {
                let at = Instant::from_std(self.base + Duration::from_nanos(ns - 1));
                sent <= at + BLAME
            }
        }
    }
}

/// What to run.
#[derive(Debug, Clone)]
pub struct Plan {
    /// The server.
    pub target: TargetArgs,
    /// Connections.
    pub conns: usize,
    /// Client threads (each a current-thread runtime).
    pub threads: usize,
    /// Unmeasured time after connecting.
    pub warmup: Duration,
    /// Measured window.
    pub duration: Duration,
    /// The server's pid, to read its CPU time at the window's edges.
    pub pid: Option<u32>,
    /// Closed loop or fixed rate.
    pub pacing: Pacing,
    /// Outside events to attribute slow requests to (`swap`).
    pub events: Option<Arc<Events>>,
}

/// What a run measured.
#[derive(Debug, Clone, Default)]
pub struct Run {
    /// Latencies and errors, all threads merged.
    pub tally: Tally,
    /// Connections that could not be opened.
    pub connect_errors: usize,
    /// The load generator's CPU time over the window.
    pub client_cpu: Duration,
    /// The server's CPU time over the window.
    pub server_cpu: Option<Duration>,
}

impl Run {
    /// Answered requests in the window.
    pub fn requests(&self) -> u64 {
        self.tally.latencies.count()
    }
}

/// The measured window, as instants of the current thread's clock.
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

/// CPU readings at the window's edges.
#[derive(Debug, Default)]
struct CpuSample {
    client: Duration,
    server: Option<Duration>,
}

/// Runs `plan`; `on_window(start, end)` is called once, as soon as the window is fixed
/// (after every connection is open), e.g. to schedule plugin swaps inside it.
pub fn run(
    plan: &Plan,
    on_window: &(dyn Fn(std::time::Instant, std::time::Instant) + Sync),
) -> Result<Run, String> {
    let threads = plan.threads.clamp(1, plan.conns.max(1));
    let barrier = Barrier::new(threads);
    let window_start: OnceLock<std::time::Instant> = OnceLock::new();
    let per_shard = shard::run(threads, |shard| {
        let barrier = &barrier;
        let window_start = &window_start;
        async move {
            let first = shard * plan.conns / threads;
            let last = (shard + 1) * plan.conns / threads;
            let codec = Codec::new(&plan.target.key);
            let (open, errors) = client::connect_many(
                &plan.target.url,
                first..last,
                plan.target.concurrency.div_ceil(threads),
                |i| plan.target.user_token(&codec, i),
            )
            .await;
            // Every thread waits for the others to finish connecting (nothing else runs
            // on this thread meanwhile), then they share one window.
            barrier.wait();
            let start = *window_start.get_or_init(|| std::time::Instant::now() + plan.warmup);
            let window = Window {
                start: Instant::from_std(start),
                end: Instant::from_std(start + plan.duration),
            };
            let sampler = (shard == 0).then(|| {
                on_window(start, start + plan.duration);
                tokio::task::spawn_local(sample_cpu(window, plan.pid))
            });
            let tally = Rc::new(RefCell::new(Tally::default()));
            let mut tasks = Vec::with_capacity(open.len());
            for (i, ws) in open {
                let tally = tally.clone();
                tasks.push(match plan.pacing {
                    Pacing::Closed => {
                        tokio::task::spawn_local(closed(ws, window, plan.events.clone(), tally))
                    }
                    Pacing::Rate(rps) => {
                        let interval = Duration::from_secs_f64(plan.conns as f64 / rps.max(0.001));
                        // Spread first sends evenly over one interval.
                        let offset = interval.mul_f64(i as f64 / plan.conns as f64);
                        let first = Instant::now() + offset;
                        tokio::task::spawn_local(paced(ws, window, first, interval, tally))
                    }
                });
            }
            for task in tasks {
                if task.await.is_err() {
                    tally
                        .borrow_mut()
                        .lost(|| "a connection task panicked".into());
                }
            }
            let cpu = match sampler {
                Some(handle) => Some(handle.await.map_err(|_| "the CPU sampler panicked")??),
                None => None,
            };
            let tally = tally.borrow().clone();
            Ok::<_, String>((tally, errors, cpu))
        }
    })?;
    let mut run = Run::default();
    for result in per_shard {
        let (tally, errors, cpu) = result?;
        run.tally.merge(&tally);
        run.connect_errors += errors.len();
        if let Some(first) = errors.first() {
            if run.tally.first_error.is_none() {
                run.tally.first_error = Some(format!("connect: {first}"));
            }
        }
        if let Some(cpu) = cpu {
            run.client_cpu = cpu.client;
            run.server_cpu = cpu.server;
        }
    }
    Ok(run)
}

/// Reads the client's and the server's CPU time at the window's start and end.
async fn sample_cpu(window: Window, pid: Option<u32>) -> Result<CpuSample, String> {
    let read = || -> Result<CpuSample, String> {
        Ok(CpuSample {
            client: procfs::own_cpu_time()?,
            server: pid.map(procfs::cpu_time).transpose()?,
        })
    };
    sleep_until(window.start).await;
    let before = read()?;
    sleep_until(window.end).await;
    let after = read()?;
    Ok(CpuSample {
        client: after.client.saturating_sub(before.client),
        server: after
            .server
            .zip(before.server)
            .map(|(a, b)| a.saturating_sub(b)),
    })
}

/// The request frame (a cheap clone of static bytes).
fn request() -> Message {
    Message::Text(Utf8Bytes::from_static(REQUEST))
}

/// Closed loop: send, wait for `success`, repeat until the window ends. Records how
/// many requests this connection had answered in the window (a fairness figure).
async fn closed(
    mut ws: Ws,
    window: Window,
    events: Option<Arc<Events>>,
    tally: Rc<RefCell<Tally>>,
) {
    let mut answered = 0;
    closed_loop(&mut ws, window, events, &tally, &mut answered).await;
    tally.borrow_mut().per_conn.push(answered);
}

/// The loop of [`closed`]; returns when the window ends or the connection is lost.
async fn closed_loop(
    ws: &mut Ws,
    window: Window,
    events: Option<Arc<Events>>,
    tally: &RefCell<Tally>,
    answered: &mut u64,
) {
    loop {
        let sent = Instant::now();
        if sent >= window.end {
            return;
        }
        if let Err(error) = ws.send(request()).await {
            tally.borrow_mut().lost(|| format!("send failed: {error}"));
            return;
        }
        match tokio::time::timeout(REPLY_TIMEOUT, client::wait_for(ws, SUCCESS)).await {
            Ok(Ok(())) => {
                if window.contains(sent) {
                    let near = events.as_ref().is_some_and(|e| e.overlaps(sent));
                    tally.borrow_mut().answered(sent.elapsed(), near);
                    *answered += 1;
                }
            }
            Ok(Err(Miss::Other(what))) => tally
                .borrow_mut()
                .error(|| format!("index.index.index answered {what}")),
            Ok(Err(Miss::Gone(why))) => {
                tally.borrow_mut().lost(|| why);
                return;
            }
            Err(_) => {
                let mut tally = tally.borrow_mut();
                tally.error(|| format!("no answer within {REPLY_TIMEOUT:?}"));
                tally.lost += 1;
                return;
            }
        }
    }
}

/// Fixed rate: send on schedule every `interval` from `first` until the window ends,
/// matching answers to sends in order (the host answers one connection in order).
async fn paced(
    mut ws: Ws,
    window: Window,
    first: Instant,
    interval: Duration,
    tally: Rc<RefCell<Tally>>,
) {
    // (scheduled, written) of each request in flight, oldest first.
    let mut outstanding: VecDeque<(Instant, Instant)> = VecDeque::new();
    let mut next = first;
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
                match envelope::classify(&text, SUCCESS) {
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
                        tally.borrow_mut().error(|| {
                            format!("index.index.index answered {}", envelope::describe(&text))
                        });
                    }
                }
            }
            () = &mut tick, if sending => {
                let written = Instant::now();
                if let Err(error) = ws.send(request()).await {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blames_requests_that_overlap_the_latest_event() {
        let events = Events::default();
        let now = Instant::now();
        assert!(!events.overlaps(now), "no event yet");
        events.mark();
        assert!(
            events.overlaps(now),
            "sent before the event, answered after it"
        );
        assert!(events.overlaps(Instant::now() + BLAME / 2));
        assert!(!events.overlaps(Instant::now() + BLAME * 2));
    }
}
