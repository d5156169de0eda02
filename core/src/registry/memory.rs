//! The memory registry: one node, nothing to install.
//!
//! One `std::sync::Mutex` around plain maps: every operation is a few hash
//! lookups and never awaits while holding the lock, so an async mutex would only
//! add cost. Expiry is checked when a key is touched, against a [`Clock`] (the
//! module test kit moves a manual one). The kit can also make every operation
//! fail, to show a module what it gets when the registry is away.

use std::{
    collections::{HashMap, HashSet, VecDeque},
    sync::{Arc, Mutex, MutexGuard},
    time::Duration,
};

use async_trait::async_trait;

use super::{
    close_keys_key, controllers_key, list_span, Registry, RegistryError, Result, FDINFO, UIDTOFD,
};
use crate::{
    clock::{Clock, SystemClock},
    identity::Identity,
};

/// What one key holds.
#[derive(Debug)]
enum Entry {
    Set(HashSet<String>),
    Hash(HashMap<String, String>),
    List(VecDeque<String>),
    Counter(i64),
}

/// Keys and their expiry times.
#[derive(Debug, Default)]
struct Store {
    entries: HashMap<String, Entry>,
    /// When each key expires, on the registry's clock.
    expiries: HashMap<String, Duration>,
    /// The clock's reading when the lock was taken.
    now: Duration,
    /// When set, every operation fails with this error (the test kit's fault injection).
    failure: Option<RegistryError>,
}

impl Store {
    fn drop_if_expired(&mut self, key: &str) {
        if self.expiries.get(key).is_some_and(|at| *at <= self.now) {
            self.expiries.remove(key);
            self.entries.remove(key);
        }
    }

    fn get(&mut self, key: &str) -> Option<&mut Entry> {
        self.drop_if_expired(key);
        self.entries.get_mut(key)
    }

    fn remove(&mut self, key: &str) -> bool {
        self.expiries.remove(key);
        self.entries.remove(key).is_some()
    }

    /// The entry at `key`, created by `make` when missing.
    fn entry(&mut self, key: &str, make: fn() -> Entry) -> &mut Entry {
        self.drop_if_expired(key);
        self.entries.entry(key.to_string()).or_insert_with(make)
    }

    fn set(&mut self, key: &str) -> Result<&mut HashSet<String>> {
        match self.entry(key, || Entry::Set(HashSet::new())) {
            Entry::Set(set) => Ok(set),
            _ => Err(wrong_type(key)),
        }
    }

    fn hash(&mut self, key: &str) -> Result<&mut HashMap<String, String>> {
        match self.entry(key, || Entry::Hash(HashMap::new())) {
            Entry::Hash(hash) => Ok(hash),
            _ => Err(wrong_type(key)),
        }
    }

    fn list(&mut self, key: &str) -> Result<&mut VecDeque<String>> {
        match self.entry(key, || Entry::List(VecDeque::new())) {
            Entry::List(list) => Ok(list),
            _ => Err(wrong_type(key)),
        }
    }

    /// Removes `key` when an operation left its collection empty, as Redis does.
    fn drop_if_empty(&mut self, key: &str) {
        let empty = match self.entries.get(key) {
            Some(Entry::Set(set)) => set.is_empty(),
            Some(Entry::Hash(hash)) => hash.is_empty(),
            Some(Entry::List(list)) => list.is_empty(),
            Some(Entry::Counter(_)) | None => false,
        };
        if empty {
            self.remove(key);
        }
    }
}

fn wrong_type(key: &str) -> RegistryError {
    RegistryError::Storage(format!("key {key} holds another kind of value"))
}

/// The memory backend.
pub struct MemoryRegistry {
    store: Mutex<Store>,
    /// What expiry is measured against.
    clock: Arc<dyn Clock>,
}

impl Default for MemoryRegistry {
    fn default() -> Self {
        Self::new()
    }
}

impl std::fmt::Debug for MemoryRegistry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MemoryRegistry").finish_non_exhaustive()
    }
}

impl MemoryRegistry {
    /// An empty registry on the real clock.
    pub fn new() -> Self {
        Self::with_clock(Arc::new(SystemClock::new()))
    }

    /// An empty registry whose expiries follow `clock`.
    pub fn with_clock(clock: Arc<dyn Clock>) -> Self {
        MemoryRegistry {
            store: Mutex::default(),
            clock,
        }
    }

    /// Makes every later operation fail with `failure` (`None` heals it). The host
    /// never calls this; the module test kit does, to simulate an outage.
    pub fn set_failure(&self, failure: Option<RegistryError>) {
        self.lock().failure = failure;
    }

    /// Every key that holds something now, sorted (for tests: what a module left behind).
    pub fn keys(&self) -> Vec<String> {
        let mut store = self.lock();
        store.now = self.clock.now();
        let all: Vec<String> = store.entries.keys().cloned().collect();
        let mut live: Vec<String> = all
            .into_iter()
            .filter(|key| {
                store.drop_if_expired(key);
                store.entries.contains_key(key)
            })
            .collect();
        live.sort();
        live
    }

    /// The store; a panic while it was held cannot leave it half-written, so poison is ignored.
    fn lock(&self) -> MutexGuard<'_, Store> {
        self.store
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// The store with the clock read, or the injected failure.
    fn store(&self) -> Result<MutexGuard<'_, Store>> {
        let mut store = self.lock();
        if let Some(failure) = &store.failure {
            return Err(failure.clone());
        }
        store.now = self.clock.now();
        Ok(store)
    }

    /// Runs `op` on a collection, then drops the key if it became empty.
    fn with<T>(&self, key: &str, op: impl FnOnce(&mut Store) -> Result<T>) -> Result<T> {
        let mut store = self.store()?;
        let outcome = op(&mut store);
        store.drop_if_empty(key);
        outcome
    }
}

#[async_trait]
impl Registry for MemoryRegistry {
    async fn register(&self, identity: &Identity) -> Result<()> {
        let mut store = self.store()?;
        let info = identity.info.clone();
        store.hash(FDINFO)?.insert(identity.fd.clone(), info);
        if let Some(uid) = &identity.uid {
            store
                .hash(UIDTOFD)?
                .insert(uid.clone(), identity.fd.clone());
        }
        Ok(())
    }

    async fn unregister(&self, identity: &Identity) -> Result<()> {
        let mut store = self.store()?;
        store.hash(FDINFO)?.remove(&identity.fd);
        if let Some(uid) = &identity.uid {
            let map = store.hash(UIDTOFD)?;
            if map.get(uid) == Some(&identity.fd) {
                map.remove(uid);
            }
        }
        store.remove(&controllers_key(&identity.fd));
        store.remove(&close_keys_key(&identity.fd));
        Ok(())
    }

    async fn identity(&self, fd: &str) -> Result<Option<String>> {
        self.hash_get(FDINFO, fd).await
    }

    async fn uid_fd(&self, uid: &str) -> Result<Option<String>> {
        self.hash_get(UIDTOFD, uid).await
    }

    async fn set_add(&self, key: &str, member: &str) -> Result<bool> {
        self.with(key, |s| Ok(s.set(key)?.insert(member.to_string())))
    }

    async fn set_remove(&self, key: &str, member: &str) -> Result<bool> {
        self.with(key, |s| Ok(s.set(key)?.remove(member)))
    }

    async fn set_members(&self, key: &str) -> Result<Vec<String>> {
        self.with(key, |s| Ok(s.set(key)?.iter().cloned().collect()))
    }

    async fn hash_get(&self, key: &str, field: &str) -> Result<Option<String>> {
        self.with(key, |s| Ok(s.hash(key)?.get(field).cloned()))
    }

    async fn hash_set(&self, key: &str, field: &str, value: &str) -> Result<()> {
        self.with(key, |s| {
            s.hash(key)?.insert(field.to_string(), value.to_string());
            Ok(())
        })
    }

    async fn hash_delete(&self, key: &str, field: &str) -> Result<bool> {
        self.with(key, |s| Ok(s.hash(key)?.remove(field).is_some()))
    }

    async fn hash_get_all(&self, key: &str) -> Result<Vec<(String, String)>> {
        self.with(key, |s| {
            Ok(s.hash(key)?
                .iter()
                .map(|(f, v)| (f.clone(), v.clone()))
                .collect())
        })
    }

    async fn incr(&self, key: &str, by: i64) -> Result<i64> {
        let mut store = self.store()?;
        match store.entry(key, || Entry::Counter(0)) {
            Entry::Counter(value) => {
                *value = value.checked_add(by).ok_or_else(|| {
                    RegistryError::Storage(format!("counter {key} would overflow"))
                })?;
                Ok(*value)
            }
            _ => Err(wrong_type(key)),
        }
    }

    async fn list_push(&self, key: &str, value: &str) -> Result<u64> {
        self.with(key, |s| {
            let list = s.list(key)?;
            list.push_front(value.to_string());
            Ok(list.len() as u64)
        })
    }

    async fn list_range(&self, key: &str, start: i64, stop: i64) -> Result<Vec<String>> {
        self.with(key, |s| {
            let list = s.list(key)?;
            Ok(list
                .range(list_span(list.len(), start, stop))
                .cloned()
                .collect())
        })
    }

    async fn list_trim(&self, key: &str, start: i64, stop: i64) -> Result<()> {
        self.with(key, |s| {
            let list = s.list(key)?;
            let keep = list_span(list.len(), start, stop);
            list.truncate(keep.end);
            list.drain(..keep.start);
            Ok(())
        })
    }

    async fn expire(&self, key: &str, seconds: u64) -> Result<bool> {
        let mut store = self.store()?;
        if store.get(key).is_none() {
            return Ok(false);
        }
        let at = store.now.saturating_add(Duration::from_secs(seconds));
        store.expiries.insert(key.to_string(), at);
        Ok(true)
    }

    async fn delete(&self, key: &str) -> Result<bool> {
        let mut store = self.store()?;
        store.drop_if_expired(key);
        Ok(store.remove(key))
    }

    async fn connection_count(&self) -> Result<u64> {
        self.with(FDINFO, |s| Ok(s.hash(FDINFO)?.len() as u64))
    }

    // One node, nothing shared: there is never another node to relay to.
    async fn publish_to_node(&self, _node: &str, _fds: &[String], _text: &str) -> Result<bool> {
        Ok(false)
    }

    async fn close_on_node(&self, _node: &str, _fd: &str) -> Result<bool> {
        Ok(false)
    }

    async fn publish_to_all(&self, _text: &str) -> Result<u64> {
        Ok(0)
    }

    async fn nodes(&self) -> Result<Vec<String>> {
        Ok(Vec::new())
    }

    async fn start(&self) -> Result<()> {
        Ok(())
    }

    async fn leave(&self) -> Result<()> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use serde_json::{json, Value};

    use super::*;

    fn user(fd: &str, uid: u64) -> Identity {
        let Value::Object(claims) = json!({"id": uid, "type": "wechatUser", "code": "demo"}) else {
            unreachable!()
        };
        Identity::from_claims(fd.into(), claims)
    }

    fn run<T>(future: impl std::future::Future<Output = T>) -> T {
        crate::block_on(future)
    }

    #[test]
    fn newest_connection_of_a_uid_wins_and_an_old_close_keeps_it() {
        let registry = MemoryRegistry::new();
        let (old, new) = (user("n/1/1", 7), user("n/1/2", 7));
        run(registry.register(&old)).expect("register");
        run(registry.register(&new)).expect("register");
        run(registry.unregister(&old)).expect("unregister");
        assert_eq!(run(registry.uid_fd("7")), Ok(Some("n/1/2".into())));
        assert_eq!(run(registry.identity("n/1/1")), Ok(None));
        run(registry.unregister(&new)).expect("unregister");
        assert_eq!(run(registry.uid_fd("7")), Ok(None));
        assert_eq!(run(registry.connection_count()), Ok(0));
    }

    #[test]
    fn sets_hashes_lists_and_counters() {
        let r = MemoryRegistry::new();
        assert_eq!(run(r.set_add("S", "a")), Ok(true));
        assert_eq!(run(r.set_add("S", "a")), Ok(false));
        assert_eq!(run(r.set_members("S")), Ok(vec!["a".to_string()]));
        assert_eq!(run(r.set_remove("S", "a")), Ok(true));
        assert_eq!(
            run(r.delete("S")),
            Ok(false),
            "an emptied set is gone, as in Redis"
        );
        run(r.hash_set("H", "f", "v")).expect("hset");
        assert_eq!(run(r.hash_get("H", "f")), Ok(Some("v".into())));
        assert_eq!(run(r.hash_delete("H", "f")), Ok(true));
        assert_eq!(run(r.incr("C", 2)), Ok(2));
        assert_eq!(run(r.incr("C", 3)), Ok(5));
        for value in ["1", "2", "3"] {
            run(r.list_push("L", value)).expect("push");
        }
        assert_eq!(
            run(r.list_range("L", 0, 1)),
            Ok(vec!["3".to_string(), "2".to_string()])
        );
        run(r.list_trim("L", 0, 0)).expect("trim");
        assert_eq!(run(r.list_range("L", 0, -1)), Ok(vec!["3".to_string()]));
        assert!(matches!(
            run(r.set_add("L", "x")),
            Err(RegistryError::Storage(_))
        ));
    }

    #[test]
    fn expired_keys_are_gone() {
        let r = MemoryRegistry::new();
        run(r.set_add("S", "a")).expect("sadd");
        assert_eq!(run(r.expire("S", 0)), Ok(true));
        assert_eq!(run(r.set_members("S")), Ok(vec![]));
        assert_eq!(run(r.expire("missing", 5)), Ok(false));
    }
}
