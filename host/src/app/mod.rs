//! Start-up and the stop sequence: the host is wired here, once.
//!
//! [`run`] is the composition root: it builds every part from the config, hands each task
//! the few handles it uses (the [`Edge`] for sockets that arrive, a [`conn::Context`] for
//! each connection, the [`Manager`] for the manager port), starts the listeners, and then
//! runs the stop sequence ([`stop`]) when a stop signal comes. No part reaches another
//! through a shared bag of everything.

pub mod drain;
mod signals;
mod stop;

use std::{net::IpAddr, sync::Arc, time::Duration};

use mswoole_io::{Databases, HttpClient, Io};
use tokio::{net::TcpListener, sync::mpsc, sync::Semaphore};
use tokio_util::task::TaskTracker;

use crate::{
    cluster::{handover::Handover, redis::RedisRegistry},
    config::{Backend, Config, DEFAULT_KEY},
    conn,
    edge::{auth::TokenKeys, ip_limit::IpLimit, listener::Listener, Edge},
    fanout::{delivery::Delivery, locations::Locations},
    identity::FdIds,
    manager::{self, Manager},
    plugins::{timers::Timers, watcher, Plugins},
    registry::{memory::MemoryRegistry, Registry},
    runtime::{
        process::{self, RuntimeFiles},
        readiness,
        shutdown::Shutdown,
    },
    session::{self, Sessions},
    telemetry::{
        log_file, log_limit,
        metrics::{self, Metrics},
    },
};

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

    if config.auth.key == DEFAULT_KEY && !is_loopback(&config.outside.host) {
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
    let locations = Arc::new(Locations::new(node_id.clone()));
    let delivery = Arc::new(Delivery::new(locations.clone(), registry.clone()));
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
    let (ticks, due) = mpsc::unbounded_channel();
    let timers = Timers::new(config.limits.timers_per_module, ticks);
    let plugins = Arc::new(Plugins::new(
        plugin_dir,
        runtime.join("plugins"),
        registry.clone(),
        delivery.clone(),
        config.clone(),
        timers.clone(),
        Arc::new(io),
    ));
    tokio::spawn(plugins.clone().serve_timers(timers.clone(), due));
    let max_connections = match config.limits.max_connections {
        0 => (open_files as usize).saturating_sub(64).max(16),
        n => n,
    };
    let sessions = Sessions::new(
        locations.clone(),
        registry.clone(),
        plugins.clone(),
        session::Settings {
            escape: config.protocol.escape_html,
            recovery: config.recovery.clone(),
            outbound_queue: config.limits.outbound_queue,
            outbound_bytes: config.limits.outbound_bytes,
            call_timeout: Duration::from_millis(config.limits.call_timeout_ms),
        },
    );
    let handover = Handover::new(
        registry.clone(),
        locations.clone(),
        sessions.clone(),
        config.recovery.clone(),
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
    let loaded = plugins.scan().await;
    tracing::info!(dir = %plugins.dir().display(), loaded, refused = plugins.refusals().len(), "plugins scanned");
    let _watcher = match config.plugins.watch {
        true => Some(watcher::spawn(plugins.clone(), shutdown.clone())?),
        false => None,
    };
    let files = RuntimeFiles::write(&runtime, manager_addr)?;
    tracing::info!(
        outside = %outside_addr, manager = %manager_addr, node = %node_id, max_connections,
        registry = ?config.registry.backend, prefix = %config.registry.prefix,
        "mswoole started"
    );
    println!(
        "mswoole ready outside={outside_addr} manager={manager_addr} pid={}",
        std::process::id()
    );

    let connections = conn::Context {
        settings: Arc::new(conn::Settings::from(&*config)),
        plugins: plugins.clone(),
        sessions: sessions.clone(),
        shutdown: shutdown.clone(),
    };
    let tokens = Arc::new(TokenKeys::new(&config.auth));
    let edge = Arc::new(Edge {
        tokens: tokens.clone(),
        ids: FdIds::new(&node_id),
        node: node_id.clone(),
        sessions: sessions.clone(),
        handover: handover.clone(),
        conn: connections,
        shutdown: shutdown.clone(),
        config: config.clone(),
    });
    let manager = Arc::new(Manager {
        config: config.clone(),
        plugins: plugins.clone(),
        tokens,
        registry: registry.clone(),
        delivery,
        sessions: sessions.clone(),
        locations: locations.clone(),
        shutdown: shutdown.clone(),
        metrics,
        started: std::time::Instant::now(),
        max_connections,
    });
    tokio::spawn(manager::serve(manager.clone(), manager_listener));
    tokio::spawn(signals::signals(manager, log));
    tokio::spawn(log_limit::run_summaries(shutdown.clone()));
    let tracker = TaskTracker::new();
    let listener = Listener {
        edge,
        listener: outside,
        limit: Arc::new(Semaphore::new(max_connections)),
        per_ip: IpLimit::new(config.limits.connections_per_ip),
        tracker: tracker.clone(),
    };
    let accepting = tokio::spawn(listener.run());
    // Both listeners are bound and served from here on.
    readiness::ready(&format!("outside {outside_addr}, manager {manager_addr}"));

    shutdown.stopping().await;
    stop::Stop {
        shutdown,
        drain: Duration::from_secs(config.shutdown.drain_s),
        hook_timeout: Duration::from_millis(config.limits.call_timeout_ms),
        connections: tracker,
        sessions,
        locations,
        handover,
        timers,
        plugins,
        registry,
    }
    .run()
    .await;
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
