//! The baseline: a bare tokio-tungstenite server speaking the same minimal protocol as
//! the host, without plugins or a registry, so the host's numbers have a reference
//! measured on the same machine in the same run.
//!
//! Like the host it checks the token in the handshake (3DES, answered 403 when bad) and
//! keeps the decoded identity per connection, uses a 4 KiB read buffer, and runs on a
//! multi-threaded tokio runtime with `--workers` threads (0 = one per core). It answers
//! `2` with `3`; a JSON object with the `receiveMessage` ack and the `success` envelope;
//! anything else with a 400 envelope and a close. `broadcast <frame>` writes `<frame>`
//! to every connection it holds: the floor of a room broadcast (see `fanout --floor`).
//! With `--database URL` it also answers `swap.io.execute` and `swap.io.query` (the swap test
//! fixture's SQL actions) by calling sqlx directly with the host's pool settings: the
//! reference of `ws-bench sql` (see [`crate::direct_sql`]).

use std::{io::Write, net::SocketAddr, sync::Arc, time::Duration};

use futures_util::{SinkExt, StreamExt};
use serde_json::{Map, Value};
use tokio::{
    net::{TcpListener, TcpStream},
    sync::broadcast,
};
use tokio_tungstenite::{
    accept_hdr_async_with_config,
    tungstenite::{
        handshake::server::{ErrorResponse, Request, Response},
        http::StatusCode,
        protocol::{frame::coding::CloseCode, CloseFrame, WebSocketConfig},
        Message, Utf8Bytes,
    },
};

use crate::{
    direct_sql::DirectSql,
    token::{Codec, DEFAULT_KEY},
};

/// Read buffer per connection: the host's setting.
const READ_BUFFER: usize = 4 * 1024;
/// The host's default `limits.max_message_bytes`.
const MAX_MESSAGE: usize = 64 * 1024;
/// Broadcast frames a slow connection may fall behind before it skips some.
const BROADCAST_QUEUE: usize = 64;

const ACK: &str = r#"{"status":200,"event":"receiveMessage","info":"服务端已收到您的请求内容"}"#;
const SUCCESS: &str = r#"{"status":200,"event":"success","info":"执行完成"}"#;
const BAD_REQUEST: &str = r#"{"status":400,"event":"badRequest","info":"bad request"}"#;
const BROADCAST: &str = "broadcast ";

/// Arguments of `baseline`.
#[derive(Debug, Clone, clap::Args)]
pub struct BaselineArgs {
    /// Address to listen on (port 0 = any free port).
    #[arg(long, default_value = "127.0.0.1:0")]
    pub listen: SocketAddr,
    /// Runtime worker threads; 0 = one per core (as the host's `[runtime] workers`).
    #[arg(long, default_value_t = 1)]
    pub workers: usize,
    /// Token key.
    #[arg(long, default_value = DEFAULT_KEY)]
    pub key: String,
    /// Use a current-thread runtime (what the host runs with `[runtime] workers = 1`).
    #[arg(long)]
    pub current_thread: bool,
    /// Answer `swap.io.execute` / `swap.io.query` against this database through sqlx directly
    /// (`sqlite://REL` is relative to the working directory; `mysql://…`, `postgres://…`).
    #[arg(long)]
    pub database: Option<String>,
    /// The pool's most connections (the host's `[databases.<name>] max_connections`).
    #[arg(long, default_value_t = 10)]
    pub max_connections: u32,
    /// Deadline of one SQL call, pool wait included (the host's `timeout_ms`).
    #[arg(long, default_value_t = 3000)]
    pub timeout_ms: u64,
}

/// The baseline's database, shared by its connections.
#[derive(Clone)]
struct Sql {
    pool: Arc<DirectSql>,
    timeout: Duration,
}

/// Runs the baseline server until the process is killed. Prints
/// `ws-bench baseline ready outside=IP:PORT pid=PID` once it listens.
pub fn serve(args: &BaselineArgs) -> Result<(), String> {
    let mut builder = if args.current_thread {
        tokio::runtime::Builder::new_current_thread()
    } else {
        let mut builder = tokio::runtime::Builder::new_multi_thread();
        if args.workers > 0 {
            builder.worker_threads(args.workers);
        }
        builder
    };
    let runtime = builder
        .enable_all()
        .build()
        .map_err(|e| format!("cannot start the runtime: {e}"))?;
    runtime.block_on(accept_loop(args))
}

async fn accept_loop(args: &BaselineArgs) -> Result<(), String> {
    let listener = TcpListener::bind(args.listen)
        .await
        .map_err(|e| format!("listen on {}: {e}", args.listen))?;
    let addr = listener
        .local_addr()
        .map_err(|e| format!("listen on {}: {e}", args.listen))?;
    println!(
        "ws-bench baseline ready outside={addr} pid={}",
        std::process::id()
    );
    // The suite reads this line through a pipe: make sure it leaves now.
    let _ = std::io::stdout().flush();
    let sql = match &args.database {
        Some(url) => Some(Sql {
            pool: Arc::new(DirectSql::open(
                url,
                args.max_connections,
                Duration::from_millis(args.timeout_ms),
            )?),
            timeout: Duration::from_millis(args.timeout_ms.max(1)),
        }),
        None => None,
    };
    let codec = Codec::new(&args.key);
    let (room, _) = broadcast::channel::<Message>(BROADCAST_QUEUE);
    loop {
        match listener.accept().await {
            Ok((stream, _)) => {
                tokio::spawn(connection(stream, codec.clone(), room.clone(), sql.clone()));
            }
            // Out of file descriptors or similar: refuse this one, keep serving.
            Err(_) => tokio::time::sleep(std::time::Duration::from_millis(10)).await,
        }
    }
}

/// Whether `message` is one of the SQL actions [`DirectSql::answer`] serves.
fn is_sql(message: &Map<String, Value>) -> bool {
    matches!(
        message.get("method").and_then(Value::as_str),
        Some("swap.io.execute" | "swap.io.query")
    )
}

/// The token from the request's `auth` query parameter, opened.
fn identity(request: &Request, codec: &Codec) -> Option<Value> {
    let query = request.uri().query()?;
    let token = query
        .split('&')
        .find_map(|pair| pair.strip_prefix("auth="))?;
    codec.open(token)
}

/// One connection: handshake with the token check, then the message loop.
// The handshake callback's `Result<Response, ErrorResponse>` is tungstenite's signature.
#[allow(clippy::result_large_err)]
async fn connection(
    stream: TcpStream,
    codec: Codec,
    room: broadcast::Sender<Message>,
    sql: Option<Sql>,
) {
    let _ = stream.set_nodelay(true);
    let mut who: Option<Value> = None;
    let check = |request: &Request, response: Response| -> Result<Response, ErrorResponse> {
        match identity(request, &codec) {
            Some(claims) => {
                who = Some(claims);
                Ok(response)
            }
            None => {
                let mut refusal = ErrorResponse::new(Some("error auth".into()));
                *refusal.status_mut() = StatusCode::FORBIDDEN;
                if let Ok(value) = "error auth".parse() {
                    refusal.headers_mut().insert("message", value);
                }
                Err(refusal)
            }
        }
    };
    let config = WebSocketConfig::default()
        .read_buffer_size(READ_BUFFER)
        .max_message_size(Some(MAX_MESSAGE))
        .max_frame_size(Some(MAX_MESSAGE));
    let Ok(mut ws) = accept_hdr_async_with_config(stream, check, Some(config)).await else {
        return;
    };
    // Held for the connection's lifetime, as the host holds its identity.
    let _identity = who;
    let mut posts = room.subscribe();
    let ack = Message::Text(Utf8Bytes::from_static(ACK));
    let success = Message::Text(Utf8Bytes::from_static(SUCCESS));
    loop {
        tokio::select! {
            frame = ws.next() => {
                let text = match frame {
                    Some(Ok(Message::Text(text))) => text,
                    Some(Ok(Message::Binary(_))) => {
                        let _ = ws.feed(Message::text(BAD_REQUEST)).await;
                        let _ = ws.close(Some(CloseFrame { code: CloseCode::Unsupported, reason: "bad request".into() })).await;
                        return;
                    }
                    Some(Ok(Message::Close(_))) | None | Some(Err(_)) => return,
                    Some(Ok(_)) => continue,
                };
                let sent = if text.as_str() == "2" {
                    ws.send(Message::text("3")).await
                } else if let Some(frame) = text.strip_prefix(BROADCAST) {
                    let _ = room.send(Message::text(frame));
                    Ok(())
                } else if let Ok(message) = serde_json::from_str::<Map<String, Value>>(&text) {
                    match &sql {
                        // Like the host, which flushes its ack before it waits on a call
                        // that is not done at once, then writes the reply.
                        Some(sql) if is_sql(&message) => match ws.send(ack.clone()).await {
                            Ok(()) => match sql.pool.answer(&message, sql.timeout).await {
                                Some(reply) => ws.send(Message::text(reply)).await,
                                None => Ok(()),
                            },
                            Err(error) => Err(error),
                        },
                        _ => match ws.feed(ack.clone()).await {
                            Ok(()) => ws.send(success.clone()).await,
                            Err(error) => Err(error),
                        },
                    }
                } else {
                    let _ = ws.feed(Message::text(BAD_REQUEST)).await;
                    let _ = ws.close(Some(CloseFrame { code: CloseCode::Invalid, reason: "bad request".into() })).await;
                    return;
                };
                if sent.is_err() {
                    return;
                }
            }
            post = posts.recv() => match post {
                Ok(frame) => {
                    if ws.send(frame).await.is_err() {
                        return;
                    }
                }
                Err(broadcast::error::RecvError::Lagged(_)) => {}
                Err(broadcast::error::RecvError::Closed) => return,
            },
        }
    }
}
