//! `resume`: what resuming sessions costs (README.md, "Resumable sessions"). Opens N
//! resumable connections (`resume=1`), drops them all at once without a close frame,
//! waits for the host to notice, then resumes them all at once (`resume=S&last=0`) and
//! reports how long until the last one had `sessionResumed`. With `--resume-url` the
//! resumes go to another host on the same Redis: every session moves there.

use std::time::Duration;

use clap::Args;
use futures_util::{stream, StreamExt};
use serde::Serialize;
use tokio::time::Instant;
use tokio_tungstenite::tungstenite::Message;

use crate::{
    client::{self, Endpoint, Ws},
    envelope,
    modes::TargetArgs,
    stats::round3,
    token::Codec,
};

/// How long a session's first frame may take.
const GREETING_TIMEOUT: Duration = Duration::from_secs(30);

/// Arguments of `resume`.
#[derive(Debug, Clone, Args)]
pub struct ResumeArgs {
    #[command(flatten)]
    pub target: TargetArgs,
    /// Sessions to drop and resume.
    #[arg(long, default_value_t = 1000)]
    pub conns: usize,
    /// Milliseconds between the drop and the resumes (the host must see the drops).
    #[arg(long, default_value_t = 1000)]
    pub pause_ms: u64,
    /// Resume on this host instead (`ws://HOST:PORT/PATH`, another node on the same Redis).
    #[arg(long)]
    pub resume_url: Option<Endpoint>,
}

/// `resume` results.
#[derive(Debug, Clone, Serialize)]
pub struct ResumeResult {
    /// Server URL.
    pub url: String,
    /// Sessions opened.
    pub opened: usize,
    /// Sessions resumed.
    pub resumed: usize,
    /// Resumes answered otherwise, or failed.
    pub failed: usize,
    /// Seconds from the first resume handshake until the last `sessionResumed`.
    pub resume_all_s: f64,
    /// Median seconds of one resume (handshake to `sessionResumed`).
    pub p50_s: f64,
    /// 99th percentile of one resume.
    pub p99_s: f64,
    /// The first problem seen.
    pub problem: Option<String>,
}

impl ResumeResult {
    /// The table printed without `--json`.
    pub fn table(&self) -> String {
        format!(
            "url                 {}\nsessions            {} opened, {} resumed, {} failed\nresume all s        {}\none resume p50 s    {}\none resume p99 s    {}\nproblem             {}\n",
            self.url,
            self.opened,
            self.resumed,
            self.failed,
            self.resume_all_s,
            self.p50_s,
            self.p99_s,
            self.problem.as_deref().unwrap_or("none")
        )
    }

    /// One JSON line.
    pub fn json(&self) -> String {
        serde_json::to_string(self).unwrap_or_default()
    }
}

/// The text of the next text frame, within [`GREETING_TIMEOUT`].
async fn first_text(ws: &mut Ws) -> Result<String, String> {
    let next = async {
        loop {
            match ws.next().await {
                Some(Ok(Message::Text(text))) => return Ok(text.to_string()),
                Some(Ok(_)) => continue,
                other => return Err(format!("no greeting: {other:?}")),
            }
        }
    };
    tokio::time::timeout(GREETING_TIMEOUT, next)
        .await
        .map_err(|_| "no greeting in time".to_string())?
}

/// `param.session` of a `sessionStart`.
fn session_of(text: &str) -> Option<String> {
    const KEY: &str = "\"session\":\"";
    let start = text.find(KEY)? + KEY.len();
    let len = text[start..].find('"')?;
    Some(text[start..start + len].to_string())
}

/// Runs `resume`.
pub fn run(args: &ResumeArgs) -> Result<ResumeResult, String> {
    let codec = Codec::new(&args.target.key);
    // This mode writes the `resume` parameters itself.
    let mut target = args.target.clone();
    target.resume = false;
    let target = &target;
    let resume_url = args.resume_url.as_ref().unwrap_or(&target.url);
    crate::shard::block_on(async {
        let (open, errors) =
            client::connect_many(&target.url, 0..args.conns, target.concurrency, |i| {
                format!("{}&resume=1", target.user_token(&codec, i))
            })
            .await;
        let mut problem = errors.first().map(|e| format!("connect: {e}"));
        let mut sessions = Vec::new();
        let mut sockets = Vec::new();
        for (i, mut ws) in open {
            match first_text(&mut ws).await {
                Ok(text) if envelope::event(&text) == Some("sessionStart") => {
                    match session_of(&text) {
                        Some(session) => {
                            sessions.push((i, session));
                            sockets.push(ws);
                        }
                        None => problem = problem.or(Some(format!("no session id: {text}"))),
                    }
                }
                Ok(text) => problem = problem.or(Some(format!("not a sessionStart: {text}"))),
                Err(error) => problem = problem.or(Some(error)),
            }
        }
        let opened = sessions.len();
        // All at once, without a close frame: a reset-free drop, as phones going away.
        drop(sockets);
        tokio::time::sleep(Duration::from_millis(args.pause_ms)).await;
        let started = Instant::now();
        let outcomes: Vec<Result<Duration, String>> = stream::iter(sessions)
            .map(|(i, session)| {
                let token = format!("{}&resume={session}&last=0", target.user_token(&codec, i));
                async move {
                    let since = Instant::now();
                    let mut ws =
                        client::connect(resume_url, client::source_addr(i), &token).await?;
                    let text = first_text(&mut ws).await?;
                    match envelope::event(&text) {
                        Some("sessionResumed") => Ok(since.elapsed()),
                        _ => Err(format!("not resumed: {text}")),
                    }
                }
            })
            .buffer_unordered(target.concurrency.max(1))
            .collect()
            .await;
        let resume_all_s = started.elapsed().as_secs_f64();
        let mut took: Vec<f64> = Vec::new();
        let mut failed = 0;
        for outcome in outcomes {
            match outcome {
                Ok(elapsed) => took.push(elapsed.as_secs_f64()),
                Err(error) => {
                    failed += 1;
                    problem = problem.or(Some(error));
                }
            }
        }
        took.sort_by(f64::total_cmp);
        let at = |q: f64| {
            took.get(((took.len() as f64 * q) as usize).min(took.len().saturating_sub(1)))
                .copied()
                .unwrap_or(0.0)
        };
        ResumeResult {
            url: match &args.resume_url {
                Some(other) => format!("{} then {other}", target.url),
                None => target.url.to_string(),
            },
            opened,
            resumed: took.len(),
            failed,
            resume_all_s: round3(resume_all_s),
            p50_s: round3(at(0.5)),
            p99_s: round3(at(0.99)),
            problem,
        }
    })
}
