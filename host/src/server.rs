//! Start-up, the outside listener, and the stop sequence.
//!
//! As in mini-redis, a [`Listener`] accepts and applies the limits (a semaphore of
//! `limits.max_connections` permits, `limits.connections_per_ip` through [`IpLimit`], a
//! back-off on accept errors), and each socket
//! gets its own task: it reads the request head within
//! `limits.handshake_timeout_s`, answers plain HTTP, checks the token, and hands an
//! upgrade to [`connection::run`].

use std::{
    net::{IpAddr, SocketAddr},
    sync::Arc,
    time::{Duration, Instant, SystemTime, UNIX_EPOCH},
};

use mswoole_io::{Databases, HttpClient, Io};
use tokio::{
    net::{TcpListener, TcpStream},
    sync::Semaphore,
};
use tokio_tungstenite::{tungstenite::protocol::Role, WebSocketStream};
use tokio_util::task::TaskTracker;
use tracing::Level;

use crate::{
    auth::{self, TokenCodec},
    browser_client,
    clients::Clients,
    closer::Closer,
    config::{Backend, Config},
    connection::{self, Opening},
    delivery::Delivery,
    demo, drain,
    handover::Handover,
    handshake::{self, Head, HeadError},
    identity::{FdIds, Identity},
    ip_limit::IpLimit,
    log_file::{self, LogFile},
    log_limit, manager,
    metrics::{self, Handshake, Metrics},
    plugins::{bridge::Hook, watcher, Plugins},
    process::{self, RuntimeFiles},
    readiness,
    registry::{memory::MemoryRegistry, redis::RedisRegistry, Registry},
    session::{self, NotResumed, Replay, Session},
    sessions::{Resumed, Sessions},
    shared::Shared,
    shutdown::Shutdown,
    timers::Timers,
};

/// How long connections get to run their close sequence once the drain closed them.
const STOP_GRACE: Duration = Duration::from_secs(10);

/// Binds an address, saying which setting it came from when it fails.
async fn bind(host: &str, port: u16, setting: &str) -> Result<TcpListener, String> {
    TcpListener::bind((host, port)).await.map_err(|error| {
        if error.kind() == std::io::ErrorKind::AddrInUse {
            format!("{setting} {host}:{port}: port already in use")
        } else {
            format!("{setting} {host}:{port}: cannot listen: {error}")
        }
    })
}

fn is_loopback(host: &str) -> bool {
    host == "localhost"
        || host
            .trim_matches(['[', ']'])
            .parse::<IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

/// Starts the host and runs it until it is stopped.
pub async fn run(config: Config) -> Result<(), String> {
    let config = Arc::new(config);
    let runtime = config.runtime.dir.clone();
    std::fs::create_dir_all(&runtime)
        .map_err(|e| format!("runtime.dir {}: {e}", runtime.display()))?;
    // Before the ports: a second `start` should name the host it collides with, not
    // only the port (README.md, "Console and manager port").
    if let Some(pid) = process::running_pid(&runtime) {
        return Err(format!(
            "already running, pid {pid} (see {})",
            runtime.join(process::PID_FILE).display()
        ));
    }
    let log = log_file::init(&runtime, &config.log)?;
    let metrics = Metrics::install()?;
    let open_files = process::raise_open_files();

    if config.auth.key == auth::DEFAULT_KEY && !is_loopback(&config.outside.host) {
        tracing::warn!(
            host = %config.outside.host,
            "auth.key is the public default key and outside.host is not loopback: anyone can mint tokens"
        );
    }
    // A bad URL stops start-up here, naming its key; a server that is down does not (lazy pools).
    let databases = Arc::new(Databases::open(&config.databases, &config.dir)?);
    tokio::spawn(probe_databases(databases.clone()));
    let http = Arc::new(HttpClient::new(config.limits.http_max_response_bytes)?);
    let io = Io::new(databases, http).observed(Arc::new(metrics::database_query));
    if config.log.plugin_backtraces {
        // docs/MODULES.md, "Panics": a debugging switch, with a cost that stays.
        tracing::warn!(
            "log.plugin_backtraces = true: each plugin version that panics keeps its symbolised \
             debug info (~145 MiB for a debug build) until the host restarts"
        );
    }
    let outside = bind(&config.outside.host, config.outside.port, "outside").await?;
    let manager_listener = bind(&config.manager.host, config.manager.port, "manager").await?;
    let outside_addr = outside.local_addr().map_err(|e| format!("outside: {e}"))?;
    let manager_addr = manager_listener
        .local_addr()
        .map_err(|e| format!("manager: {e}"))?;

    let node_id = config.node_id(outside_addr.port());
    let clients = Arc::new(Clients::new());
    let shutdown = Shutdown::new();
    let mut redis = None;
    let registry: Arc<dyn Registry> = match config.registry.backend {
        Backend::Memory => Arc::new(MemoryRegistry::new()),
        Backend::Redis => {
            let ttl = Duration::from_secs(config.registry.node_ttl_s);
            let connected = RedisRegistry::connect(
                &config.registry.url,
                &config.registry.prefix,
                &node_id,
                ttl,
            )
            .await?;
            redis = Some(connected.clone());
            connected
        }
    };
    let delivery = Arc::new(Delivery::new(
        node_id.clone(),
        clients.clone(),
        registry.clone(),
    ));
    // Before any client: a node restarting after a crash clears what its last run left.
    registry
        .start()
        .await
        .map_err(|e| format!("registry: {e}"))?;
    let plugin_dir = match &config.plugins.dir {
        Some(dir) => dir.clone(),
        None => std::env::current_exe()
            .ok()
            .and_then(|exe| exe.parent().map(|p| p.to_path_buf()))
            .ok_or("plugins.dir is not set and the executable's directory is unknown")?,
    };
    let timers = Timers::new(
        config.limits.timers_per_module,
        Duration::from_millis(config.limits.call_timeout_ms),
    );
    let plugins = Arc::new(Plugins::new(
        plugin_dir,
        runtime.join("plugins"),
        registry.clone(),
        delivery.clone(),
        config.clone(),
        timers.clone(),
        Arc::new(io),
    ));
    timers.attach(&plugins);
    let max_connections = match config.limits.max_connections {
        0 => (open_files as usize).saturating_sub(64).max(16),
        n => n,
    };
    let closer = Arc::new(Closer::new(
        node_id.clone(),
        clients.clone(),
        registry.clone(),
        plugins.clone(),
        config.protocol.escape_html,
    ));
    let sessions = Arc::new(Sessions::new(
        config.recovery.clone(),
        closer.clone(),
        clients.clone(),
    ));
    let handover = Handover::new(
        node_id.clone(),
        registry.clone(),
        clients.clone(),
        sessions.clone(),
        closer.clone(),
        config.clone(),
        shutdown.clone(),
    );
    if let Some(redis) = redis {
        // Frames other nodes relay come in through the one delivery path; what they say
        // about sessions, through the handover.
        redis.spawn_background(
            shutdown.clone(),
            delivery.clone(),
            Arc::new(handover.clone()),
        );
    }
    let shared = Arc::new(Shared {
        codec: TokenCodec::new(
            &config.auth.key,
            config.auth.cipher,
            config.auth.iv.as_deref(),
        ),
        config: config.clone(),
        node_id: node_id.clone(),
        sessions,
        handover,
        closer,
        registry,
        clients,
        delivery,
        plugins,
        ids: FdIds::new(&config.node_id(outside_addr.port())),
        shutdown,
        started: Instant::now(),
        max_connections,
    });
    let loaded = shared.plugins.scan().await;
    tracing::info!(dir = %shared.plugins.dir().display(), loaded, refused = shared.plugins.refusals().len(), "plugins scanned");

    let _watcher = match config.plugins.watch {
        true => Some(watcher::spawn(
            shared.plugins.clone(),
            shared.shutdown.clone(),
        )?),
        false => None,
    };
    let files = RuntimeFiles::write(&runtime, manager_addr)?;
    tracing::info!(
        outside = %outside_addr, manager = %manager_addr, node = %shared.node_id, max_connections,
        registry = ?config.registry.backend, prefix = %config.registry.prefix,
        "mswoole started"
    );
    println!(
        "mswoole ready outside={outside_addr} manager={manager_addr} pid={}",
        std::process::id()
    );

    let tracker = TaskTracker::new();
    tokio::spawn(manager::serve(shared.clone(), metrics, manager_listener));
    tokio::spawn(signals(shared.clone(), log));
    tokio::spawn(log_limit::run_summaries(shared.shutdown.clone()));
    let listener = Listener {
        shared: shared.clone(),
        listener: outside,
        limit: Arc::new(Semaphore::new(max_connections)),
        per_ip: IpLimit::new(config.limits.connections_per_ip),
        tracker: tracker.clone(),
    };
    let accepting = tokio::spawn(listener.run());
    // Both listeners are bound and served from here on.
    readiness::ready(&format!("outside {outside_addr}, manager {manager_addr}"));

    shared.shutdown.stopping().await;
    readiness::stopping();
    let drain_s = config.shutdown.drain_s;
    tracing::info!(
        clients = shared.clients.len(),
        drain_s,
        "stopping: draining clients"
    );
    drain::run(
        &shared.clients,
        Duration::from_secs(drain_s),
        &shared.shutdown,
    )
    .await;
    tracker.close();
    if tokio::time::timeout(STOP_GRACE, tracker.wait())
        .await
        .is_err()
    {
        tracing::warn!("some connections did not finish their close sequence in time");
    }
    // The drain detached the resumable sessions: other nodes may adopt them (on Redis);
    // nothing resumes the rest here any more.
    let moved = shared.handover.hand_over_detached().await;
    if moved > 0 {
        tracing::info!(
            sessions = moved,
            "detached sessions handed over to other nodes"
        );
    }
    let ended = shared.sessions.end_detached().await;
    if ended > 0 {
        tracing::info!(sessions = ended, "detached sessions ended");
    }
    let hook_timeout = Duration::from_millis(config.limits.call_timeout_ms);
    // Timers run while clients drain and end just before onShutdown.
    timers.stop();
    shared.plugins.hook_all(Hook::Shutdown, hook_timeout).await;
    crate::plugins::keep_libraries_mapped();
    if let Err(error) = shared.registry.leave().await {
        tracing::warn!("registry: could not remove this node's records: {error}");
    }
    shared.shutdown.close_listeners();
    let _ = accepting.await;
    tracing::info!("stopped");
    files.remove();
    Ok(())
}

/// Tries each database once at start: one WARN line (password hidden) for each that cannot be
/// reached. Nothing waits on it; the pools retry on use.
async fn probe_databases(databases: Arc<Databases>) {
    for name in databases.names() {
        let url = databases.shown_url(&name).unwrap_or_default();
        match databases.probe(&name).await {
            Ok(()) => tracing::info!(database = %name, url = %url, "database reachable"),
            Err(failure) => tracing::warn!(
                database = %name, url = %url,
                "database unreachable at start, retried on use: {failure}"
            ),
        }
    }
}

/// SIGTERM and SIGINT stop (a second one skips the rest of the drain); SIGHUP reloads;
/// SIGUSR1 reopens the log file (logrotate).
async fn signals(shared: Arc<Shared>, log: Arc<LogFile>) {
    use tokio::signal::unix::{signal, SignalKind};
    let (Ok(mut term), Ok(mut int), Ok(mut hup), Ok(mut usr1)) = (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
        signal(SignalKind::hangup()),
        signal(SignalKind::user_defined1()),
    ) else {
        tracing::error!("cannot install signal handlers");
        return;
    };
    loop {
        tokio::select! {
            _ = term.recv() => { tracing::info!("SIGTERM"); shared.shutdown.stop_or_hurry(); }
            _ = int.recv() => { tracing::info!("SIGINT"); shared.shutdown.stop_or_hurry(); }
            _ = hup.recv() => { tracing::info!("SIGHUP: reloading"); manager::reload(&shared).await; }
            _ = usr1.recv() => match log.reopen() {
                Ok(()) => tracing::info!(file = %log.path().display(), "SIGUSR1: log file reopened"),
                Err(error) => tracing::error!("SIGUSR1: {error}; logging to stdout only until the next try"),
            },
        }
    }
}

/// Accepts client sockets until the listeners close.
struct Listener {
    shared: Arc<Shared>,
    listener: TcpListener,
    /// One permit per WebSocket connection.
    limit: Arc<Semaphore>,
    /// Connections per client address.
    per_ip: Arc<IpLimit>,
    /// Every socket task, so the stop sequence can wait for them.
    tracker: TaskTracker,
}

impl Listener {
    async fn run(self) {
        let mut backoff = Duration::from_millis(10);
        loop {
            let accepted = tokio::select! {
                _ = self.shared.shutdown.listeners_closed() => return,
                accepted = self.listener.accept() => accepted,
            };
            match accepted {
                Ok((socket, peer)) => {
                    backoff = Duration::from_millis(10);
                    let _ = socket.set_nodelay(true);
                    let (shared, limit) = (self.shared.clone(), self.limit.clone());
                    let per_ip = self.per_ip.clone();
                    self.tracker
                        .spawn(handle(shared, limit, per_ip, socket, peer));
                }
                Err(error) => {
                    // Out of file descriptors, mostly: wait, and the others keep running.
                    tracing::error!("accept failed: {error}; retrying in {backoff:?}");
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(Duration::from_secs(1));
                }
            }
        }
    }
}

/// The client's address: `X-Real-IP` when the peer is a trusted proxy.
fn client_ip(shared: &Shared, head: &Head, peer: SocketAddr) -> IpAddr {
    let trusted = shared.config.outside.trusted_proxies.contains(&peer.ip());
    head.header("x-real-ip")
        .filter(|_| trusted)
        .and_then(|ip| ip.trim().parse().ok())
        .unwrap_or(peer.ip())
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// Checks the handshake's token; an error means 403.
fn identify(shared: &Shared, head: &Head, fd: String) -> Result<Identity, auth::AuthError> {
    let auth = &shared.config.auth;
    match head.query_param("auth").filter(|token| !token.is_empty()) {
        None if !auth.required => Ok(Identity::anonymous(fd)),
        None => Err(auth::AuthError::Missing),
        Some(token) => {
            let claims = shared.codec.decode(&token)?;
            auth::check_age(&claims, auth.max_age_s, unix_now())?;
            Ok(Identity::from_claims(fd, claims))
        }
    }
}

/// One socket: HTTP answers, or the upgrade and the connection.
async fn handle(
    shared: Arc<Shared>,
    limit: Arc<Semaphore>,
    per_ip: Arc<IpLimit>,
    mut socket: TcpStream,
    peer: SocketAddr,
) {
    let timeout = Duration::from_secs(shared.config.limits.handshake_timeout_s);
    let (head, rest) = match tokio::time::timeout(timeout, handshake::read_head(&mut socket)).await
    {
        Err(_) => {
            metrics::handshake(Handshake::Timeout);
            return tracing::debug!(%peer, "handshake timeout");
        }
        Ok(Err(HeadError::Io(error))) => {
            return tracing::debug!(%peer, "gone before its request: {error}")
        }
        Ok(Err(HeadError::Malformed)) => {
            metrics::handshake(Handshake::BadRequest);
            let _ = handshake::respond(&mut socket, 400, &[], "text/plain", "bad request\n").await;
            return;
        }
        Ok(Ok(parsed)) => parsed,
    };
    if !head.is_upgrade() {
        return plain_http(&shared, &mut socket, &head).await;
    }
    // An invalid handshake is a 400 whatever else it carries (RFC 6455 §4.2.1).
    if let Err(bad) = handshake::check_upgrade(&head) {
        tracing::debug!(%peer, "bad handshake: {}", bad.reason());
        metrics::handshake(Handshake::BadRequest);
        let _ = handshake::reject_upgrade(&mut socket, bad).await;
        return;
    }
    if shared.shutdown.is_stopping() {
        metrics::handshake(Handshake::Unavailable);
        let _ = handshake::respond(&mut socket, 503, &[], "text/plain", "server stopping\n").await;
        return;
    }
    let Ok(_permit) = limit.try_acquire_owned() else {
        let message = "limits.max_connections reached: 503";
        if log_limit::admit(Level::WARN, message, message) {
            tracing::warn!(%peer, "{message}");
        }
        metrics::handshake(Handshake::Unavailable);
        let _ = handshake::respond(
            &mut socket,
            503,
            &[],
            "text/plain",
            "too many connections\n",
        )
        .await;
        return;
    };
    let ip = client_ip(&shared, &head, peer);
    let Some(_slot) = per_ip.admit(ip) else {
        let message = "limits.connections_per_ip reached: 503";
        if log_limit::admit(Level::WARN, message, message) {
            tracing::warn!(%ip, "{message}");
        }
        let body = "too many connections from this address\n";
        let _ = handshake::respond(&mut socket, 503, &[], "text/plain", body).await;
        return;
    };
    let identity = match identify(&shared, &head, shared.ids.next()) {
        Ok(identity) => identity,
        Err(error) => {
            tracing::info!(%ip, "handshake refused: {error}");
            metrics::handshake(Handshake::Forbidden);
            let _ = handshake::respond(
                &mut socket,
                403,
                &[("message", "error auth")],
                "text/plain",
                "error auth\n",
            )
            .await;
            return;
        }
    };
    match handshake::accept_upgrade(&mut socket, &head).await {
        Ok(true) => metrics::handshake(Handshake::Ok),
        Ok(false) | Err(_) => return,
    }
    // The connection's first and last lines name its fd and client address (README.md,
    // "Deploying": what to watch in the logs); its other lines name the fd. Not a span:
    // entering one on every poll would cost the per-message path. The path is logged,
    // never the query: it holds the token.
    // README.md "Resumable sessions": `resume=1` asks for one, `resume=S&last=n` resumes S.
    let resume = match shared.config.recovery.enabled {
        true => head
            .query_param("resume")
            .filter(|resume| !resume.is_empty()),
        false => None,
    };
    let last = head.query_param("last").unwrap_or_default();
    // The head is not needed any more; the connection lives long, its memory should not.
    let path = head.path.clone();
    drop(head);
    let (identity, opening) = match resume {
        None => (Arc::new(identity), Opening::default()),
        Some(resume) => match open_session(&shared, identity, &resume, &last).await {
            Ok(opened) => opened,
            Err(error) => {
                tracing::error!(%ip, "{error}");
                return;
            }
        },
    };
    let fd = identity.fd.clone();
    tracing::info!(%fd, %ip, path = %path, resumable = opening.session.is_some(), "connected");
    let config = shared.websocket_config();
    let since = Instant::now();
    let socket =
        WebSocketStream::from_partially_read(socket, rest, Role::Server, Some(config)).await;
    connection::run(shared, socket, identity, opening).await;
    tracing::info!(%fd, %ip, seconds = since.elapsed().as_secs(), "disconnected");
}

/// Claims session `id` here, or from the node holding it.
async fn claim(
    shared: &Shared,
    id: &str,
    claimant: &Identity,
    last: &str,
) -> Result<Resumed, NotResumed> {
    match shared.sessions.claim(id, claimant, last).await {
        Err(NotResumed::Unknown) => shared.handover.resume(id, claimant, last).await,
        claimed => claimed,
    }
}

/// A resumable session for a client that asked for one: a new one (`resume=1`), the
/// session `resume` names when the claim succeeds, else a new one with the reason.
async fn open_session(
    shared: &Shared,
    fresh: Identity,
    resume: &str,
    last: &str,
) -> Result<(Arc<Identity>, Opening), String> {
    let recovery = shared.sessions.recovery();
    let refusal = match resume {
        "1" => None,
        id => match claim(shared, id, &fresh, last).await {
            Ok(Resumed { parked, missed }) => {
                metrics::session_resumed();
                tracing::info!(fd = %parked.identity.fd, missed = missed.len(), "session resumed");
                let mut greeting = vec![session::resumed(id, missed.len())];
                greeting.extend(missed);
                let opening = Opening {
                    session: Some(Box::new(Session {
                        id: id.to_string(),
                        replay: parked.replay,
                    })),
                    queue: Some((parked.outbound, parked.inbox)),
                    greeting,
                };
                return Ok((parked.identity, opening));
            }
            Err(reason) => {
                metrics::session_not_resumed(reason.label());
                Some(reason)
            }
        },
    };
    let id = session::new_id()?;
    let greeting = match refusal {
        None => session::started(&id),
        Some(reason) => session::not_resumed(reason, &id),
    };
    let opening = Opening {
        session: Some(Box::new(Session {
            id,
            replay: Replay::new(recovery),
        })),
        queue: None,
        greeting: vec![greeting],
    };
    Ok((Arc::new(fresh), opening))
}

/// `GET /`, `GET /healthz`, the demo pages when `[demo] enabled`, and 404 for the rest.
async fn plain_http(shared: &Shared, socket: &mut TcpStream, head: &Head) {
    if shared.config.demo.enabled {
        if let Some(reply) = demo::reply(&shared.codec, head, unix_now()) {
            let no_store = [("Cache-Control", "no-store")];
            let _ = handshake::respond(
                socket,
                reply.status,
                &no_store,
                reply.content_type,
                &reply.body,
            )
            .await;
            return;
        }
    }
    let _ = match (head.method.as_str(), head.path.as_str()) {
        ("GET", "/") => {
            let page = "<!doctype html><title>mswoole</title><p>mswoole WebSocket host. Connect with <code>ws://HOST/?auth=TOKEN</code>.</p>\n";
            handshake::respond(socket, 200, &[], "text/html; charset=utf-8", page).await
        }
        ("GET", path) if browser_client::file(path).is_some() => {
            let body = browser_client::file(path).unwrap_or_default();
            let cache = [("Cache-Control", "no-cache")];
            let kind = "text/javascript; charset=utf-8";
            handshake::respond(socket, 200, &cache, kind, body).await
        }
        ("GET", "/healthz") => {
            let stopping = shared.shutdown.is_stopping();
            let body = serde_json::json!({
                "status": if stopping { "draining" } else { "ok" },
                "node": shared.node_id,
                "connections": shared.clients.len(),
                "plugins": shared.plugins.all().len(),
            });
            handshake::respond(
                socket,
                if stopping { 503 } else { 200 },
                &[],
                "application/json",
                &body.to_string(),
            )
            .await
        }
        _ => handshake::respond(socket, 404, &[], "text/plain", "not found\n").await,
    };
}
