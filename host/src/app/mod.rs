//! Start-up and the stop sequence: the host is wired here, once.

pub mod drain;
pub mod shared;
mod signals;

use std::{
    net::IpAddr,
    sync::Arc,
    time::{Duration, Instant},
};

use mswoole_io::{Databases, HttpClient, Io};
use tokio::{net::TcpListener, sync::Semaphore};
use tokio_util::task::TaskTracker;

use crate::{
    app::shared::Shared,
    cluster::handover::Handover,
    cluster::redis::RedisRegistry,
    config::{Backend, Config},
    edge::auth::{self, TokenKeys},
    edge::ip_limit::IpLimit,
    fanout::clients::Clients,
    fanout::delivery::Delivery,
    identity::FdIds,
    manager,
    plugins::timers::Timers,
    plugins::{bridge::Hook, watcher, Plugins},
    registry::{memory::MemoryRegistry, Registry},
    runtime::process::{self, RuntimeFiles},
    runtime::readiness,
    runtime::shutdown::Shutdown,
    session::closer::Closer,
    session::Sessions,
    telemetry::log_file::{self},
    telemetry::log_limit,
    telemetry::metrics::{self, Metrics},
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
        tokens: TokenKeys::new(&config.auth),
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
    tokio::spawn(signals::signals(shared.clone(), log));
    tokio::spawn(log_limit::run_summaries(shared.shutdown.clone()));
    let listener = crate::edge::listener::Listener {
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
