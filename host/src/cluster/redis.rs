//! The Redis registry: several nodes share rooms through one Redis.
//!
//! Keys are MSwoole's names under `registry.prefix`. Besides them, each node keeps
//! `WEBSOCKET_NODE_<node>` (a marker with a TTL, refreshed by [`heartbeat`]),
//! `WEBSOCKET_NODEFDS_<node>` (its fds, for cleanup) and its id in
//! `WEBSOCKET_NODES`. A frame for a connection on another node goes through
//! pub/sub (channel `<prefix>node:<node>`, or `<prefix>all` for everyone): at most
//! once, like the WebSocket itself. The same channels carry the messages by which
//! nodes move a resumable session between them ([`Peers`], `crate::cluster::handover`); a
//! moved connection's fd still names the node it was born on, so `WEBSOCKET_FDNODE`
//! records where it lives, and its fd moves to that node's fd set.
//!
//! Redis can go away. Every command has a deadline and fails as `Unavailable`
//! (modules answer 503); connections stay up. The node keeps a shadow of what its
//! own connections put into Redis (identities and set memberships) and re-asserts
//! it whenever it finds its marker missing: after a Redis restart that lost
//! everything, or after other nodes pruned it while it could not refresh.

use std::{
    collections::{HashMap, HashSet},
    sync::{
        atomic::{AtomicU64, Ordering},
        Arc, Mutex, MutexGuard,
    },
    time::Duration,
};

use async_trait::async_trait;
use futures_util::StreamExt;
use redis::{aio::ConnectionManager, Client, Cmd, FromRedisValue, Pipeline, RedisError};
use serde::{Deserialize, Serialize};
use tokio_tungstenite::tungstenite::Utf8Bytes;

use mswoole_core::close::release;

use super::Peers;
use crate::fanout::delivery::Arrivals;
use crate::registry::{
    close_keys_key, controllers_key, Registry, RegistryError, Result, FDINFO, FDNODE, UIDTOFD,
};
use crate::{identity::Identity, runtime::shutdown::Shutdown};

/// Every command must answer within this, or it counts as Redis being away.
const COMMAND_TIMEOUT: Duration = Duration::from_secs(1);
/// How often the node marker is refreshed and dead nodes are looked for.
const HEARTBEAT: Duration = Duration::from_secs(2);

/// Deletes `uid → fd` only if it still points at this fd (a newer connection wins).
const DELETE_UID_IF_OURS: &str = r"
if redis.call('HGET', KEYS[1], ARGV[1]) == ARGV[2] then
  return redis.call('HDEL', KEYS[1], ARGV[1])
end
return 0";

/// What travels over pub/sub between nodes.
#[derive(Debug, Serialize, Deserialize)]
struct Relay {
    /// The node that published it (a node ignores its own `all` messages).
    origin: String,
    /// Deliver `text` to these fds; empty with `all` means every local connection.
    #[serde(default)]
    fds: Vec<String>,
    /// The frame.
    #[serde(default)]
    text: String,
    /// Close these fds instead.
    #[serde(default)]
    close: Vec<String>,
    /// A message between session handovers ([`Peers`]), as it was sent.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    peer: String,
    /// Sent on by the node an fd was born on to where it lives now: never sent on again.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    forwarded: bool,
}

impl Relay {
    fn new(origin: &str) -> Self {
        Relay {
            origin: origin.to_string(),
            fds: Vec::new(),
            text: String::new(),
            close: Vec::new(),
            peer: String::new(),
            forwarded: false,
        }
    }
}

/// What one local connection put into Redis, to put back after an outage.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
struct Shadow {
    /// Identity JSON.
    info: String,
    /// The `wechatUser` uid.
    uid: Option<String>,
    /// `(set key, member)` pairs added for this fd (unprefixed keys).
    members: HashSet<(String, String)>,
    /// Registration order: of two local connections of one uid, the newer wins.
    #[serde(skip)]
    order: u64,
}

/// The Redis backend.
pub struct RedisRegistry {
    /// `registry.prefix`.
    prefix: String,
    /// This node's id.
    node: String,
    /// For the pub/sub connection.
    client: Client,
    /// The multiplexed command connection; reconnects by itself.
    conn: ConnectionManager,
    /// What this node's connections hold in Redis.
    shadow: Mutex<HashMap<String, Shadow>>,
    /// Next registration order number.
    registrations: AtomicU64,
    /// Lifetime of the node marker.
    node_ttl: Duration,
    /// Set by [`Registry::leave`]: the heartbeat must not bring the node back.
    left: std::sync::atomic::AtomicBool,
}

fn map_error(error: RedisError) -> RegistryError {
    if error.is_io_error()
        || error.is_timeout()
        || error.is_connection_dropped()
        || error.is_connection_refusal()
    {
        RegistryError::Unavailable(error.to_string())
    } else {
        RegistryError::Storage(error.to_string())
    }
}

/// Awaits a Redis reply for at most [`COMMAND_TIMEOUT`]: past that, Redis counts as away.
async fn within<T>(reply: impl std::future::Future<Output = redis::RedisResult<T>>) -> Result<T> {
    let outcome = match tokio::time::timeout(COMMAND_TIMEOUT, reply).await {
        Ok(result) => result.map_err(map_error),
        Err(_) => Err(RegistryError::Unavailable(
            "Redis did not answer in time".into(),
        )),
    };
    if outcome.is_err() {
        crate::telemetry::metrics::registry_error();
    }
    outcome
}

fn node_marker(node: &str) -> String {
    format!("WEBSOCKET_NODE_{node}")
}

fn node_fds(node: &str) -> String {
    format!("WEBSOCKET_NODEFDS_{node}")
}

const NODES: &str = "WEBSOCKET_NODES";

impl RedisRegistry {
    /// Connects, or says why not (the host does not start without its registry).
    pub async fn connect(
        url: &str,
        prefix: &str,
        node: &str,
        node_ttl: Duration,
    ) -> std::result::Result<Arc<Self>, String> {
        let client = Client::open(url).map_err(|e| format!("registry.url {url:?}: {e}"))?;
        let config = redis::aio::ConnectionManagerConfig::new()
            .set_connection_timeout(Some(COMMAND_TIMEOUT))
            .set_response_timeout(Some(COMMAND_TIMEOUT))
            .set_number_of_retries(2)
            .set_max_delay(Duration::from_millis(500));
        let conn = tokio::time::timeout(
            Duration::from_secs(5),
            client.get_connection_manager_with_config(config),
        )
        .await
        .map_err(|_| format!("registry.url {url}: Redis did not answer within 5s"))?
        .map_err(|e| format!("registry.url {url}: cannot connect to Redis: {e}"))?;
        let registry = Arc::new(RedisRegistry {
            prefix: prefix.to_string(),
            node: node.to_string(),
            client,
            conn,
            shadow: Mutex::default(),
            registrations: AtomicU64::new(0),
            node_ttl,
            left: std::sync::atomic::AtomicBool::new(false),
        });
        registry
            .ping()
            .await
            .map_err(|e| format!("registry.url {url}: {e}"))?;
        Ok(registry)
    }

    fn key(&self, key: &str) -> String {
        format!("{}{key}", self.prefix)
    }

    fn channel_of(&self, node: &str) -> String {
        format!("{}node:{node}", self.prefix)
    }

    fn channel_all(&self) -> String {
        format!("{}all", self.prefix)
    }

    fn shadow(&self) -> MutexGuard<'_, HashMap<String, Shadow>> {
        self.shadow
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    async fn query<T: FromRedisValue>(&self, cmd: &Cmd) -> Result<T> {
        let mut conn = self.conn.clone();
        within(cmd.query_async(&mut conn)).await
    }

    async fn pipe<T: FromRedisValue>(&self, pipe: &Pipeline) -> Result<T> {
        let mut conn = self.conn.clone();
        within(pipe.query_async(&mut conn)).await
    }

    async fn ping(&self) -> Result<()> {
        self.query::<String>(&redis::cmd("PING")).await.map(drop)
    }

    async fn delete_uid_if_ours(&self, uid: &str, fd: &str) -> Result<()> {
        let script = redis::Script::new(DELETE_UID_IF_OURS);
        let mut invocation = script.key(self.key(UIDTOFD));
        invocation.arg(uid).arg(fd);
        let mut conn = self.conn.clone();
        within(invocation.invoke_async::<i64>(&mut conn))
            .await
            .map(drop)
    }

    /// Removes everything a node's connections left: room memberships, identities,
    /// uid mappings, their close sets, and the node itself. Each connection is released
    /// as the close sequence releases it (`mswoole_core::close::release`); its module
    /// hooks do not run, since the node that could have reached the client is gone.
    pub async fn prune_node(&self, node: &str) -> Result<usize> {
        let fds: Vec<String> = self
            .query(redis::cmd("SMEMBERS").arg(self.key(&node_fds(node))))
            .await?;
        for fd in &fds {
            let info: Option<String> = self
                .query(redis::cmd("HGET").arg(self.key(FDINFO)).arg(fd))
                .await?;
            // A connection whose identity is gone still leaves its sets.
            let identity = Identity::from_record(fd.clone(), info.as_deref().unwrap_or("{}"))
                .or_else(|| Identity::from_record(fd.clone(), "{}"));
            if let Some(identity) = identity {
                release(self, &identity).await;
            }
        }
        let mut pipe = redis::pipe();
        pipe.cmd("DEL").arg(self.key(&node_fds(node))).ignore();
        pipe.cmd("SREM").arg(self.key(NODES)).arg(node).ignore();
        self.pipe::<()>(&pipe).await?;
        Ok(fds.len())
    }

    /// Puts back what this node's connections hold, from the shadow.
    async fn reassert(&self) -> Result<usize> {
        let mut shadow: Vec<(String, Shadow)> = self
            .shadow()
            .iter()
            .map(|(fd, s)| (fd.clone(), s.clone()))
            .collect();
        // Newest first, so the first fd of a uid is its newest local connection; HSETNX
        // keeps a mapping another node made meanwhile (it is newer than our outage).
        shadow.sort_by_key(|(_, entry)| std::cmp::Reverse(entry.order));
        let mut uids = HashSet::new();
        for (fd, entry) in &shadow {
            let mut pipe = redis::pipe();
            pipe.cmd("HSET")
                .arg(self.key(FDINFO))
                .arg(fd)
                .arg(&entry.info)
                .ignore();
            if let Some(uid) = entry.uid.as_ref().filter(|uid| uids.insert((*uid).clone())) {
                pipe.cmd("HSETNX")
                    .arg(self.key(UIDTOFD))
                    .arg(uid)
                    .arg(fd)
                    .ignore();
            }
            pipe.cmd("SADD")
                .arg(self.key(&node_fds(&self.node)))
                .arg(fd)
                .ignore();
            for (key, member) in &entry.members {
                pipe.cmd("SADD").arg(self.key(key)).arg(member).ignore();
            }
            self.pipe::<()>(&pipe).await?;
        }
        Ok(shadow.len())
    }

    /// Refreshes this node's marker; re-asserts the shadow when the marker was gone.
    async fn beat(&self) -> Result<()> {
        let marker = self.key(&node_marker(&self.node));
        let ttl = self.node_ttl.as_millis() as u64;
        let previous: Option<String> = self
            .query(
                redis::cmd("SET")
                    .arg(&marker)
                    .arg("alive")
                    .arg("PX")
                    .arg(ttl)
                    .arg("GET"),
            )
            .await?;
        self.query::<i64>(redis::cmd("SADD").arg(self.key(NODES)).arg(&self.node))
            .await?;
        if previous.is_none() {
            let count = self.reassert().await?;
            if count > 0 {
                tracing::warn!(
                    connections = count,
                    "registry: this node's marker was gone; connections re-asserted"
                );
            }
        }
        let (_, dead) = self.nodes_by_liveness().await?;
        for node in dead.iter().filter(|node| **node != self.node) {
            let pruned = self.prune_node(node).await?;
            tracing::warn!(node = %node, pruned, "registry: node stopped refreshing its marker; its connections were pruned");
        }
        Ok(())
    }

    /// Every known node, split into those whose marker lives and those whose marker expired.
    async fn nodes_by_liveness(&self) -> Result<(Vec<String>, Vec<String>)> {
        let (mut live, mut dead) = (Vec::new(), Vec::new());
        for node in self.all_nodes().await? {
            let alive: bool = self
                .query(redis::cmd("EXISTS").arg(self.key(&node_marker(&node))))
                .await?;
            if alive {
                live.push(node);
            } else {
                dead.push(node);
            }
        }
        Ok((live, dead))
    }

    async fn all_nodes(&self) -> Result<Vec<String>> {
        self.query(redis::cmd("SMEMBERS").arg(self.key(NODES)))
            .await
    }

    /// Starts the heartbeat and the pub/sub listener, which hands what other nodes relay
    /// to `arrivals` and their handover messages to `peers`. Both run until the listeners
    /// close, after the drain: a stopping node still hands its sessions over.
    pub fn spawn_background(
        self: &Arc<Self>,
        shutdown: Shutdown,
        arrivals: Arc<dyn Arrivals>,
        peers: Arc<dyn Peers>,
    ) {
        tokio::spawn(heartbeat(self.clone(), shutdown.clone()));
        tokio::spawn(listen(self.clone(), shutdown, arrivals, peers));
    }

    /// Hands what another node relayed to this node's frame delivery, and sends frames for
    /// fds born here that live elsewhere now on to their node, in the order they came.
    async fn relay(&self, relay: Relay, arrivals: &dyn Arrivals, peers: &dyn Peers) {
        if relay.origin == self.node && relay.fds.is_empty() && relay.close.is_empty() {
            return;
        }
        if !relay.peer.is_empty() {
            peers.receive(relay.peer);
            return;
        }
        for fd in &relay.close {
            if let Some(node) = arrivals.close(fd).filter(|_| !relay.forwarded) {
                let forward = Relay {
                    close: vec![fd.clone()],
                    forwarded: true,
                    ..Relay::new(&self.node)
                };
                if let Err(error) = self.publish(self.channel_of(&node), &forward).await {
                    tracing::warn!(%node, "registry: a close for a moved session was not sent on: {error}");
                }
            }
        }
        if relay.text.is_empty() {
            return;
        }
        let text = Utf8Bytes::from(relay.text);
        if relay.fds.is_empty() {
            arrivals.to_all(&text);
            return;
        }
        let away = arrivals.to_fds(&relay.fds, &text);
        if relay.forwarded {
            return;
        }
        for (node, fds) in away {
            let forward = Relay {
                fds,
                text: text.to_string(),
                forwarded: true,
                ..Relay::new(&self.node)
            };
            if let Err(error) = self.publish(self.channel_of(&node), &forward).await {
                tracing::warn!(%node, "registry: a frame for a moved session was not sent on: {error}");
            }
        }
    }

    async fn publish(&self, channel: String, relay: &Relay) -> Result<u64> {
        let payload =
            serde_json::to_string(relay).map_err(|e| RegistryError::Storage(e.to_string()))?;
        self.query(redis::cmd("PUBLISH").arg(channel).arg(payload))
            .await
    }

    /// Records a set membership of a local fd in the shadow.
    fn remember(&self, key: &str, member: &str, add: bool) {
        let mut shadow = self.shadow();
        let owner = if shadow.contains_key(member) {
            Some(member.to_string())
        } else {
            shadow
                .keys()
                .find(|fd| key == controllers_key(fd) || key == close_keys_key(fd))
                .cloned()
        };
        if let Some(entry) = owner.and_then(|fd| shadow.get_mut(&fd)) {
            let pair = (key.to_string(), member.to_string());
            if add {
                entry.members.insert(pair);
            } else {
                entry.members.remove(&pair);
            }
        }
    }
}

/// Refreshes the marker and prunes dead nodes until the host stops.
async fn heartbeat(registry: Arc<RedisRegistry>, shutdown: Shutdown) {
    let mut healthy = true;
    loop {
        if registry.left.load(Ordering::Acquire) {
            return;
        }
        match registry.beat().await {
            Ok(()) if !healthy => {
                tracing::info!("registry: Redis is back");
                healthy = true;
            }
            Ok(()) => {}
            Err(error) if healthy => {
                tracing::error!(
                    "registry: {error}; clients stay connected, actions needing Redis answer 503"
                );
                healthy = false;
            }
            Err(_) => {}
        }
        tokio::select! {
            _ = shutdown.listeners_closed() => return,
            _ = tokio::time::sleep(HEARTBEAT) => {}
        }
    }
}

/// Receives frames relayed by other nodes; resubscribes after Redis comes back.
async fn listen(
    registry: Arc<RedisRegistry>,
    shutdown: Shutdown,
    arrivals: Arc<dyn Arrivals>,
    peers: Arc<dyn Peers>,
) {
    let channels = [registry.channel_of(&registry.node), registry.channel_all()];
    loop {
        let subscribed = async {
            let mut pubsub = registry.client.get_async_pubsub().await?;
            pubsub.subscribe(&channels).await?;
            Ok::<_, RedisError>(pubsub)
        };
        match tokio::time::timeout(COMMAND_TIMEOUT * 2, subscribed).await {
            Ok(Ok(pubsub)) => {
                let mut messages = pubsub.into_on_message();
                peers.subscribed();
                loop {
                    tokio::select! {
                        _ = shutdown.listeners_closed() => return,
                        message = messages.next() => match message {
                            Some(message) => match serde_json::from_slice::<Relay>(message.get_payload_bytes()) {
                                Ok(relay) => registry.relay(relay, &*arrivals, &*peers).await,
                                Err(error) => tracing::warn!("registry: unreadable relay message: {error}"),
                            },
                            None => break,
                        }
                    }
                }
                tracing::warn!("registry: pub/sub connection lost; resubscribing");
            }
            Ok(Err(error)) => tracing::debug!("registry: cannot subscribe: {error}"),
            Err(_) => tracing::debug!("registry: subscribing timed out"),
        }
        tokio::select! {
            _ = shutdown.listeners_closed() => return,
            _ = tokio::time::sleep(Duration::from_millis(500)) => {}
        }
    }
}

#[async_trait]
impl Registry for RedisRegistry {
    async fn register(&self, identity: &Identity) -> Result<()> {
        let info = identity.info.clone();
        self.shadow().insert(
            identity.fd.clone(),
            Shadow {
                info: info.clone(),
                uid: identity.uid.clone(),
                members: HashSet::new(),
                order: self.registrations.fetch_add(1, Ordering::Relaxed),
            },
        );
        let mut pipe = redis::pipe();
        pipe.cmd("HSET")
            .arg(self.key(FDINFO))
            .arg(&identity.fd)
            .arg(&info)
            .ignore();
        if let Some(uid) = &identity.uid {
            pipe.cmd("HSET")
                .arg(self.key(UIDTOFD))
                .arg(uid)
                .arg(&identity.fd)
                .ignore();
        }
        pipe.cmd("SADD")
            .arg(self.key(&node_fds(&self.node)))
            .arg(&identity.fd)
            .ignore();
        self.pipe(&pipe).await
    }

    async fn unregister(&self, identity: &Identity) -> Result<()> {
        self.shadow().remove(&identity.fd);
        let fd = &identity.fd;
        let mut pipe = redis::pipe();
        pipe.cmd("HDEL").arg(self.key(FDINFO)).arg(fd).ignore();
        pipe.cmd("DEL")
            .arg(self.key(&controllers_key(fd)))
            .arg(self.key(&close_keys_key(fd)))
            .ignore();
        pipe.cmd("SREM")
            .arg(self.key(&node_fds(&self.node)))
            .arg(fd)
            .ignore();
        pipe.cmd("HDEL").arg(self.key(FDNODE)).arg(fd).ignore();
        self.pipe::<()>(&pipe).await?;
        if let Some(uid) = &identity.uid {
            self.delete_uid_if_ours(uid, fd).await?;
        }
        Ok(())
    }

    async fn identity(&self, fd: &str) -> Result<Option<String>> {
        self.query(redis::cmd("HGET").arg(self.key(FDINFO)).arg(fd))
            .await
    }

    async fn uid_fd(&self, uid: &str) -> Result<Option<String>> {
        self.query(redis::cmd("HGET").arg(self.key(UIDTOFD)).arg(uid))
            .await
    }

    async fn set_add(&self, key: &str, member: &str) -> Result<bool> {
        self.remember(key, member, true);
        self.query(redis::cmd("SADD").arg(self.key(key)).arg(member))
            .await
    }

    async fn set_remove(&self, key: &str, member: &str) -> Result<bool> {
        self.remember(key, member, false);
        self.query(redis::cmd("SREM").arg(self.key(key)).arg(member))
            .await
    }

    async fn set_members(&self, key: &str) -> Result<Vec<String>> {
        self.query(redis::cmd("SMEMBERS").arg(self.key(key))).await
    }

    async fn hash_get(&self, key: &str, field: &str) -> Result<Option<String>> {
        self.query(redis::cmd("HGET").arg(self.key(key)).arg(field))
            .await
    }

    async fn hash_set(&self, key: &str, field: &str, value: &str) -> Result<()> {
        self.query::<i64>(redis::cmd("HSET").arg(self.key(key)).arg(field).arg(value))
            .await
            .map(drop)
    }

    async fn hash_delete(&self, key: &str, field: &str) -> Result<bool> {
        self.query(redis::cmd("HDEL").arg(self.key(key)).arg(field))
            .await
    }

    async fn hash_get_all(&self, key: &str) -> Result<Vec<(String, String)>> {
        let map: HashMap<String, String> =
            self.query(redis::cmd("HGETALL").arg(self.key(key))).await?;
        Ok(map.into_iter().collect())
    }

    async fn incr(&self, key: &str, by: i64) -> Result<i64> {
        self.query(redis::cmd("INCRBY").arg(self.key(key)).arg(by))
            .await
    }

    async fn list_push(&self, key: &str, value: &str) -> Result<u64> {
        self.query(redis::cmd("LPUSH").arg(self.key(key)).arg(value))
            .await
    }

    async fn list_range(&self, key: &str, start: i64, stop: i64) -> Result<Vec<String>> {
        self.query(redis::cmd("LRANGE").arg(self.key(key)).arg(start).arg(stop))
            .await
    }

    async fn list_trim(&self, key: &str, start: i64, stop: i64) -> Result<()> {
        self.query::<()>(redis::cmd("LTRIM").arg(self.key(key)).arg(start).arg(stop))
            .await
    }

    async fn expire(&self, key: &str, seconds: u64) -> Result<bool> {
        self.query(redis::cmd("EXPIRE").arg(self.key(key)).arg(seconds))
            .await
    }

    async fn delete(&self, key: &str) -> Result<bool> {
        for entry in self.shadow().values_mut() {
            entry.members.retain(|(k, _)| k != key);
        }
        self.query(redis::cmd("DEL").arg(self.key(key))).await
    }

    async fn connection_count(&self) -> Result<u64> {
        self.query(redis::cmd("HLEN").arg(self.key(FDINFO))).await
    }

    async fn publish_to_node(&self, node: &str, fds: &[String], text: &str) -> Result<bool> {
        let relay = Relay {
            fds: fds.to_vec(),
            text: text.to_string(),
            ..Relay::new(&self.node)
        };
        Ok(self.publish(self.channel_of(node), &relay).await? > 0)
    }

    async fn close_on_node(&self, node: &str, fd: &str) -> Result<bool> {
        let relay = Relay {
            close: vec![fd.to_string()],
            ..Relay::new(&self.node)
        };
        Ok(self.publish(self.channel_of(node), &relay).await? > 0)
    }

    async fn publish_to_all(&self, text: &str) -> Result<u64> {
        let relay = Relay {
            text: text.to_string(),
            ..Relay::new(&self.node)
        };
        // Every node subscribes to the `all` channel, this one too.
        Ok(self
            .publish(self.channel_all(), &relay)
            .await?
            .saturating_sub(1))
    }

    async fn nodes(&self) -> Result<Vec<String>> {
        let (mut live, _) = self.nodes_by_liveness().await?;
        live.sort();
        Ok(live)
    }

    async fn start(&self) -> Result<()> {
        let pruned = self.prune_node(&self.node).await?;
        if pruned > 0 {
            tracing::warn!(
                pruned,
                "registry: removed connections a previous run of this node left behind"
            );
        }
        self.beat().await
    }

    async fn leave(&self) -> Result<()> {
        self.left.store(true, Ordering::Release);
        self.prune_node(&self.node).await?;
        self.query::<i64>(redis::cmd("DEL").arg(self.key(&node_marker(&self.node))))
            .await
            .map(drop)
    }

    async fn send_peer(&self, node: Option<&str>, payload: &str) -> Result<u64> {
        let relay = Relay {
            peer: payload.to_string(),
            ..Relay::new(&self.node)
        };
        match node {
            Some(node) => self.publish(self.channel_of(node), &relay).await,
            // Every node subscribes to the `all` channel, this one too.
            None => Ok(self
                .publish(self.channel_all(), &relay)
                .await?
                .saturating_sub(1)),
        }
    }

    async fn move_fd(&self, fd: &str, to: &str) -> Result<String> {
        let records = self.shadow().get(fd).cloned().unwrap_or_default();
        let records =
            serde_json::to_string(&records).map_err(|e| RegistryError::Storage(e.to_string()))?;
        let mut pipe = redis::pipe();
        pipe.atomic()
            .cmd("SMOVE")
            .arg(self.key(&node_fds(&self.node)))
            .arg(self.key(&node_fds(to)))
            .arg(fd)
            .ignore();
        if crate::identity::node_of(fd) == Some(to) {
            pipe.cmd("HDEL").arg(self.key(FDNODE)).arg(fd).ignore();
        } else {
            pipe.cmd("HSET")
                .arg(self.key(FDNODE))
                .arg(fd)
                .arg(to)
                .ignore();
        }
        self.pipe::<()>(&pipe).await?;
        self.shadow().remove(fd);
        Ok(records)
    }

    fn adopt(&self, identity: &Identity, records: &str) {
        let mut shadow: Shadow = serde_json::from_str(records).unwrap_or_default();
        if shadow.info.is_empty() {
            shadow.info = identity.info.clone();
            shadow.uid = identity.uid.clone();
        }
        shadow.order = self.registrations.fetch_add(1, Ordering::Relaxed);
        self.shadow().insert(identity.fd.clone(), shadow);
    }
}
