//! One room's registry keys: who is in it and the messages it keeps.
//!
//! Keys (the host puts them under `registry.prefix`), named as MSwoole operators know them:
//! - `LIVE_USER_ROOM_<code>`: set of the phone users' fds.
//! - `LIVE_WALL_ROOM_<code>`: set of the big screens' fds.
//! - `LIVE_USER_MESSAGE_<code>`: the moderation queue, a hash of id → message JSON, held to
//!   `[modules.Live] queue_max` messages by dropping the oldest ([`QueueBound`]).
//! - `LIVE_WALL_MESSAGE_<code>`: the wall messages, a hash of id → message JSON with a
//!   `recalled` flag (the flag is storage only; clients never see it).
//! - `LIVE_MESSAGE_ID`: the one counter every message id of the deployment comes from.
//!
//! None of these prefixes is a prefix of another, so two room codes never share a key.
//! Ids come from one counter, so a larger id is a newer message: a history sorts the
//! room's hash by id and needs no second list to keep in step (the field order of a
//! hash is arbitrary in both backends, and so is a set's). Checking a message claims it
//! by deleting it: of two screens checking one message at once, only one broadcasts it.

use std::{
    collections::HashMap,
    sync::{Arc, Mutex, PoisonError},
    time::{SystemTime, UNIX_EPOCH},
};

use mswoole_plugin_api::{
    serde_json::{json, Value},
    Envelope, Host, HostError, LogLevel, ModuleError,
};

use crate::{params::Page, wall_store::SqlWall, Caller};

/// The counter every message id comes from, shared by every room and node.
pub const MESSAGE_ID: &str = "LIVE_MESSAGE_ID";

/// The two member sets of a room.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Members {
    /// The phone users, `LIVE_USER_ROOM_<code>`.
    Users,
    /// The big screens, `LIVE_WALL_ROOM_<code>`.
    Walls,
}

/// Unix seconds now; a clock before 1970 reads as 0.
fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |since| since.as_secs())
}

/// How many rooms [`QueueBound`] remembers at once; past that it forgets them all (at
/// worst a room is trimmed one say early and a burst logged twice), so a flood of room
/// codes cannot grow it.
const MAX_TRACKED_ROOMS: usize = 10_000;

/// What [`QueueBound`] remembers of one room.
#[derive(Debug, Default)]
struct Tracked {
    /// This host's says into the room since it last trimmed the queue.
    says: u64,
    /// Messages dropped in the room's current overflow burst; `None`: not overflowing.
    dropped: Option<u64>,
}

/// The bound on every room's moderation queue. Finding a queue's size means listing the
/// whole hash (the module API has no hash length), which for a full queue of 1,000 is
/// ~140 KB through the registry: done on every say, two hosts on Redis spent 150–200 MB
/// of RSS on those replies and timed out registry calls (docs/BENCHMARKS.md, "Soak"). So
/// each host lists and trims a room's queue on every `every`-th say it handles there
/// (`queue_max / 16`, at least 1): the queue holds `queue_max` after a trim, and at most
/// `queue_max + hosts × (every − 1)` between two.
///
/// It also remembers which rooms are dropping messages, so that an overflow burst is
/// logged when it starts and when it ends, not per dropped message. A burst ends at the
/// first trim that finds the queue within bounds (a screen checked or cleaned it). Shared
/// by all calls of one loaded module; each host of a deployment logs its own bursts.
#[derive(Debug, Clone)]
pub struct QueueBound {
    /// The most messages a queue holds after a trim (at least 1).
    max: u64,
    /// Trim on every `every`-th say of a room (at least 1).
    every: u64,
    /// Room code → what this host knows of its queue.
    rooms: Arc<Mutex<HashMap<String, Tracked>>>,
}

impl QueueBound {
    /// At most `max` messages per queue (0 is read as 1).
    pub fn new(max: u64) -> Self {
        let max = max.max(1);
        QueueBound {
            max,
            every: (max / 16).max(1),
            rooms: Arc::default(),
        }
    }

    /// The rooms, whatever a panicking holder left (a count is never half-written).
    fn rooms(&self) -> std::sync::MutexGuard<'_, HashMap<String, Tracked>> {
        self.rooms.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Counts a say into room `code`; true when its queue is due for a trim.
    fn due(&self, code: &str) -> bool {
        let mut rooms = self.rooms();
        if !rooms.contains_key(code) && rooms.len() >= MAX_TRACKED_ROOMS {
            rooms.clear();
        }
        let room = rooms.entry(code.to_string()).or_default();
        room.says += 1;
        if room.says < self.every {
            return false;
        }
        room.says = 0;
        true
    }

    /// Counts `dropped` messages of room `code`; true when this starts its burst.
    fn dropped(&self, code: &str, dropped: u64) -> bool {
        let mut rooms = self.rooms();
        let room = rooms.entry(code.to_string()).or_default();
        match &mut room.dropped {
            Some(count) => {
                *count += dropped;
                false
            }
            none => {
                *none = Some(dropped);
                true
            }
        }
    }

    /// Room `code`'s queue was within bounds: how many its burst dropped, if one just ended.
    fn fits(&self, code: &str) -> Option<u64> {
        self.rooms()
            .get_mut(code)
            .and_then(|room| room.dropped.take())
    }
}

impl Default for QueueBound {
    fn default() -> Self {
        QueueBound::new(crate::DEFAULT_QUEUE_MAX)
    }
}

/// One room, by its code.
pub struct Room {
    /// The host's registry and connections.
    host: Host,
    /// The room code (never empty: [`Caller::check`] refused that).
    code: String,
    /// Seconds the message keys live after their last write; 0 keeps them.
    ttl_s: u64,
    /// The SQL table of wall messages, when `[modules.Live] database` is set.
    sql: Option<SqlWall>,
    /// The bound on the moderation queue.
    queue: QueueBound,
}

impl Room {
    /// The room `code`, keeping messages `ttl_s` seconds after their last write (0: forever),
    /// its wall messages in `sql` when given, else in the registry.
    pub fn new(host: Host, code: &str, ttl_s: u64, sql: Option<SqlWall>) -> Room {
        Room {
            host,
            code: code.to_string(),
            ttl_s,
            sql,
            queue: QueueBound::default(),
        }
    }

    /// The same room with its moderation queue held to `queue`.
    pub fn with_queue(mut self, queue: QueueBound) -> Room {
        self.queue = queue;
        self
    }

    /// The host behind the room.
    pub fn host(&self) -> &Host {
        &self.host
    }

    /// The key of a member set.
    pub fn members_key(&self, members: Members) -> String {
        match members {
            Members::Users => format!("LIVE_USER_ROOM_{}", self.code),
            Members::Walls => format!("LIVE_WALL_ROOM_{}", self.code),
        }
    }

    /// The key of the moderation queue.
    pub fn queue_key(&self) -> String {
        format!("LIVE_USER_MESSAGE_{}", self.code)
    }

    /// The key of the wall messages.
    pub fn wall_messages_key(&self) -> String {
        format!("LIVE_WALL_MESSAGE_{}", self.code)
    }

    /// `fd` enters a member set, and leaves it again when its connection closes.
    pub async fn enter(&self, members: Members, fd: &str) -> Result<(), HostError> {
        let key = self.members_key(members);
        // The close key first: a member the host could not clean up is never left behind.
        self.host.add_close_key(fd, &key).await?;
        self.host.set_add(&key, fd).await?;
        Ok(())
    }

    /// `fd` leaves a member set, and its close no longer touches that set.
    pub async fn leave(&self, members: Members, fd: &str) -> Result<(), HostError> {
        let key = self.members_key(members);
        self.host.set_remove(&key, fd).await?;
        // After the set: should this fail, the close merely removes a member already gone.
        self.host.remove_close_key(fd, &key).await?;
        Ok(())
    }

    /// Sends an envelope to every member of a set; returns how many were reached.
    pub async fn tell(&self, members: Members, envelope: Envelope) -> Result<u64, HostError> {
        self.host
            .send_to_set(&self.members_key(members), envelope)
            .await
    }

    /// [`Room::tell`] about a message that is already stored: a failure is logged, not
    /// returned, because the sender retrying would store the message twice. The members
    /// find it in the history.
    pub async fn tell_stored(&self, members: Members, envelope: Envelope) {
        let event = envelope.event.to_string();
        if let Err(error) = self.tell(members, envelope).await {
            self.host.log(
                LogLevel::Warn,
                &format!(
                    "room {}: {event} not delivered to {members:?}: {error:?}",
                    self.code
                ),
            );
        }
    }

    /// Queues a phone user's message for moderation; returns it, `{id, nickname, say, ctime}`.
    /// The queue is then trimmed to `queue_max` when it is due ([`QueueBound`]).
    pub async fn queue_message(&self, nickname: String, say: String) -> Result<Value, HostError> {
        let id = self.host.incr(MESSAGE_ID, 1).await?;
        let message = json!({"id": id, "nickname": nickname, "say": say, "ctime": now()});
        self.put(&self.queue_key(), id, &message).await?;
        // The message is stored: a failure to trim is logged, not returned, or the sender
        // would store it twice; the next trim catches up.
        if let Err(error) = self.bound_queue().await {
            self.host.log(
                LogLevel::Warn,
                &format!("{}: queue not trimmed: {error:?}", self.queue_key()),
            );
        }
        Ok(message)
    }

    /// On every `every`-th say ([`QueueBound`]), drops the oldest queued messages beyond
    /// `queue_max`. Ids only grow, so the oldest are the smallest; the field is the id (a
    /// field that is not one goes first). Two trims at once pick the same oldest, and
    /// deleting one twice is harmless.
    async fn bound_queue(&self) -> Result<(), HostError> {
        if !self.queue.due(&self.code) {
            return Ok(());
        }
        let key = self.queue_key();
        let fields = self.host.hash_get_all(&key).await?;
        let max = usize::try_from(self.queue.max).unwrap_or(usize::MAX);
        let excess = fields.len().saturating_sub(max);
        if excess == 0 {
            if let Some(dropped) = self.queue.fits(&self.code) {
                self.host.log(
                    LogLevel::Info,
                    &format!("{key}: the moderation queue has room again; {dropped} messages were dropped"),
                );
            }
            return Ok(());
        }
        let mut ids: Vec<(Option<i64>, &str)> = fields
            .iter()
            .map(|(field, _)| (field.parse::<i64>().ok(), field.as_str()))
            .collect();
        ids.sort_unstable();
        let mut dropped = 0;
        for (_, field) in &ids[..excess] {
            if self.host.hash_delete(&key, field).await? {
                dropped += 1;
            }
        }
        if self.queue.dropped(&self.code, dropped) {
            self.host.log(
                LogLevel::Warn,
                &format!(
                    "{key}: the moderation queue is full (queue_max {}): dropping the oldest \
                     messages until a screen checks or cleans it",
                    self.queue.max
                ),
            );
        }
        Ok(())
    }

    /// Takes message `id` out of the moderation queue; `None` if it is not (or no longer) there.
    pub async fn take_queued(&self, id: i64) -> Result<Option<Value>, HostError> {
        let key = self.queue_key();
        let field = id.to_string();
        let Some(text) = self.host.hash_get(&key, &field).await? else {
            return Ok(None);
        };
        // The delete is the claim: another screen that deleted it first has checked it.
        if !self.host.hash_delete(&key, &field).await? {
            return Ok(None);
        }
        Ok(self.parse(&key, &text).map(|(_, message)| message))
    }

    /// Puts a message taken with [`Room::take_queued`] back into the queue.
    pub async fn requeue(&self, message: &Value) -> Result<(), HostError> {
        match message.get("id").and_then(Value::as_i64) {
            Some(id) => self.put(&self.queue_key(), id, message).await,
            None => Ok(()),
        }
    }

    /// Drops the whole moderation queue.
    pub async fn clear_queue(&self) -> Result<(), HostError> {
        self.host.delete(&self.queue_key()).await?;
        Ok(())
    }

    /// One page of the moderation queue, newest first.
    pub async fn queue_page(&self, page: Page) -> Result<Vec<Value>, HostError> {
        self.page(&self.queue_key(), page, |_| true).await
    }

    /// Stores a screen's message; returns it, `{id, code, nickname, say, user_id, ctime}`.
    /// A failed write is 501 `insertDbError` (503 when the store cannot be reached).
    pub async fn store_wall_message(
        &self,
        caller: &Caller,
        say: String,
    ) -> Result<Value, ModuleError> {
        if let Some(sql) = &self.sql {
            return sql
                .insert(
                    &self.host,
                    &self.code,
                    caller.nickname(),
                    say,
                    &caller.user_id(),
                    now(),
                )
                .await
                .map_err(|error| crate::wall_store::insert_error(&self.host, sql.table(), error));
        }
        let stored = async {
            let id = self.host.incr(MESSAGE_ID, 1).await?;
            let message = json!({
                "id": id,
                "code": caller.code.clone(),
                "nickname": caller.nickname(),
                "say": say,
                "user_id": caller.user_id(),
                "ctime": now(),
            });
            self.put(&self.wall_messages_key(), id, &stored(&message, false))
                .await?;
            Ok(message)
        };
        stored
            .await
            .map_err(|error| crate::wall::insert_error(self, error))
    }

    /// Marks wall message `id` recalled; `false` if the room has no such message.
    pub async fn recall(&self, id: i64) -> Result<bool, ModuleError> {
        if let Some(sql) = &self.sql {
            return Ok(sql.recall(&self.host, &self.code, id, now()).await?);
        }
        let key = self.wall_messages_key();
        let Some(text) = self.host.hash_get(&key, &id.to_string()).await? else {
            return Ok(false);
        };
        let Some((_, record)) = self.parse(&key, &text) else {
            return Ok(false);
        };
        self.put(&key, id, &stored(&shown(record), true)).await?;
        Ok(true)
    }

    /// One page of the wall messages that were not recalled, newest first.
    pub async fn wall_page(&self, page: Page) -> Result<Vec<Value>, ModuleError> {
        if let Some(sql) = &self.sql {
            return Ok(sql.page(&self.host, &self.code, page).await?);
        }
        let key = self.wall_messages_key();
        let messages = self
            .page(&key, page, |record| {
                record.get("recalled") != Some(&Value::Bool(true))
            })
            .await?;
        Ok(messages.into_iter().map(shown).collect())
    }

    /// Writes message `id` into the hash `key`, then renews the key's expiry.
    async fn put(&self, key: &str, id: i64, message: &Value) -> Result<(), HostError> {
        self.host
            .hash_set(key, &id.to_string(), &message.to_string())
            .await?;
        if self.ttl_s > 0 {
            // The message is stored: failing now would make the sender store it twice.
            if let Err(error) = self.host.expire(key, self.ttl_s).await {
                self.host.log(
                    LogLevel::Warn,
                    &format!("{key}: expiry not renewed: {error:?}"),
                );
            }
        }
        Ok(())
    }

    /// One page of the messages of the hash `key` that `keep` accepts, newest first.
    async fn page(
        &self,
        key: &str,
        page: Page,
        keep: impl Fn(&Value) -> bool,
    ) -> Result<Vec<Value>, HostError> {
        let mut messages: Vec<(i64, Value)> = self
            .host
            .hash_get_all(key)
            .await?
            .iter()
            .filter_map(|(_, text)| self.parse(key, text))
            .filter(|(_, message)| keep(message))
            .collect();
        messages.sort_unstable_by(|(a, _), (b, _)| b.cmp(a));
        Ok(page.of_items(messages.into_iter().map(|(_, message)| message)))
    }

    /// A stored message and its id; a record that is not one is logged and skipped.
    fn parse(&self, key: &str, text: &str) -> Option<(i64, Value)> {
        let message = mswoole_plugin_api::serde_json::from_str::<Value>(text).ok();
        match message
            .as_ref()
            .and_then(|m| m.get("id"))
            .and_then(Value::as_i64)
        {
            Some(id) => message.map(|message| (id, message)),
            None => {
                self.host.log(
                    LogLevel::Warn,
                    &format!("{key}: skipping a record that is not a message"),
                );
                None
            }
        }
    }
}

/// A wall message as it is stored: the message with its `recalled` flag.
fn stored(message: &Value, recalled: bool) -> Value {
    let mut record = message.clone();
    if let Value::Object(fields) = &mut record {
        fields.insert("recalled".into(), recalled.into());
    }
    record
}

/// A stored wall message as clients see it: without the `recalled` flag.
fn shown(mut record: Value) -> Value {
    if let Value::Object(fields) = &mut record {
        fields.shift_remove("recalled");
    }
    record
}
