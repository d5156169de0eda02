//! A fake host for a module's own unit tests: an in-memory store, a record of what
//! was sent, and a tiny executor. Every callback completes at once, as the host's
//! memory registry does, so `block_on` needs no runtime.

use std::{
    collections::{BTreeMap, BTreeSet, HashMap},
    future::Future,
    pin::pin,
    sync::{Arc, Mutex, MutexGuard},
    task::{Context, Poll, Wake, Waker},
    thread::{self, Thread},
};

use abi_stable::{
    sabi_trait::TD_Opaque,
    std_types::{RArc, ROption, RResult, RString, RVec, Tuple2},
};
use async_ffi::FutureExt as _;
use serde_json::Value;

use crate::{
    author::{Host, Module, Outcome, Request},
    ffi::{Envelope, HostApi, HostApi_TO, HostError, HostFuture, LogLevel},
    PLUGIN_API_VERSION,
};

/// Everything the fake host holds.
#[derive(Default, Debug)]
pub struct FakeState {
    /// Envelopes sent with `send` or `send_to_set`, as `(fd, envelope)`.
    pub sent: Vec<(String, Envelope)>,
    /// Sets by key.
    pub sets: HashMap<String, BTreeSet<String>>,
    /// Hashes by key.
    pub hashes: HashMap<String, BTreeMap<String, String>>,
    /// Lists by key, head first.
    pub lists: HashMap<String, Vec<String>>,
    /// Counters by key.
    pub counters: HashMap<String, i64>,
    /// Identities by fd, as JSON.
    pub identities: HashMap<String, Value>,
    /// Close keys by fd.
    pub close_keys: HashMap<String, BTreeSet<String>>,
    /// Controllers to notify by fd.
    pub close_controllers: HashMap<String, BTreeSet<String>>,
    /// Closed fds, in order.
    pub closed: Vec<String>,
    /// Log lines.
    pub log: Vec<(LogLevel, String)>,
    /// When set, every storage callback fails with `HostError::Unavailable`.
    pub unavailable: bool,
}

/// A host that keeps everything in memory; clone it to inspect what a module did.
#[derive(Clone, Default)]
pub struct FakeHost(Arc<Mutex<FakeState>>);

fn ready<T: Send + 'static>(value: Result<T, HostError>) -> HostFuture<T> {
    std::future::ready(RResult::from(value)).into_ffi()
}

fn range(len: usize, start: i64, stop: i64) -> std::ops::Range<usize> {
    let len = len as i64;
    let at = |index: i64| {
        if index < 0 {
            (len + index).max(0)
        } else {
            index.min(len)
        }
    };
    let (from, to) = (at(start), at(stop).saturating_add(1).min(len));
    if from >= to {
        0..0
    } else {
        from as usize..to as usize
    }
}

impl FakeHost {
    /// A fake host with nothing in it.
    pub fn new() -> Self {
        Self::default()
    }

    /// The state, to inspect or arrange.
    pub fn state(&self) -> MutexGuard<'_, FakeState> {
        self.0
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// The handle a module's constructor receives.
    pub fn handle(&self) -> Host {
        Host::new(HostApi_TO::from_ptr(RArc::new(self.clone()), TD_Opaque))
    }

    /// Envelopes sent to `fd`, in order.
    pub fn sent_to(&self, fd: &str) -> Vec<Envelope> {
        let state = self.state();
        state
            .sent
            .iter()
            .filter(|(to, _)| to == fd)
            .map(|(_, e)| e.clone())
            .collect()
    }

    fn storage<T: Send + 'static>(&self, op: impl FnOnce(&mut FakeState) -> T) -> HostFuture<T> {
        let mut state = self.state();
        if state.unavailable {
            return ready(Err(HostError::Unavailable("fake host: unavailable".into())));
        }
        ready(Ok(op(&mut state)))
    }
}

impl HostApi for FakeHost {
    fn api_version(&self) -> u32 {
        PLUGIN_API_VERSION
    }
    fn send(&self, fd: RString, envelope: Envelope) -> HostFuture<bool> {
        let mut state = self.state();
        let known = state.identities.contains_key(fd.as_str());
        state.sent.push((fd.into_string(), envelope));
        ready(Ok(known))
    }
    fn send_to_set(&self, key: RString, envelope: Envelope) -> HostFuture<u64> {
        self.storage(|state| {
            let members: Vec<String> = state
                .sets
                .get(key.as_str())
                .map(|set| set.iter().cloned().collect())
                .unwrap_or_default();
            for fd in &members {
                state.sent.push((fd.clone(), envelope.clone()));
            }
            members.len() as u64
        })
    }
    fn close(&self, fd: RString) -> HostFuture<bool> {
        let mut state = self.state();
        let known = state.identities.remove(fd.as_str()).is_some();
        state.closed.push(fd.into_string());
        ready(Ok(known))
    }
    fn identity(&self, fd: RString) -> HostFuture<ROption<RString>> {
        let state = self.state();
        let found = state
            .identities
            .get(fd.as_str())
            .map(|value| RString::from(value.to_string()));
        ready(Ok(found.into()))
    }
    fn uid_fd(&self, uid: RString) -> HostFuture<ROption<RString>> {
        let state = self.state();
        let found = state.identities.iter().find_map(|(fd, identity)| {
            let id = match identity.get("id") {
                Some(Value::String(text)) => text.clone(),
                Some(other) => other.to_string(),
                None => return None,
            };
            (id == uid.as_str() && identity.get("type") == Some(&Value::from("wechatUser")))
                .then(|| RString::from(fd.as_str()))
        });
        ready(Ok(found.into()))
    }
    fn set_add(&self, key: RString, member: RString) -> HostFuture<bool> {
        self.storage(|s| {
            s.sets
                .entry(key.into_string())
                .or_default()
                .insert(member.into_string())
        })
    }
    fn set_remove(&self, key: RString, member: RString) -> HostFuture<bool> {
        self.storage(|s| {
            s.sets
                .get_mut(key.as_str())
                .is_some_and(|set| set.remove(member.as_str()))
        })
    }
    fn set_members(&self, key: RString) -> HostFuture<RVec<RString>> {
        self.storage(|s| {
            s.sets
                .get(key.as_str())
                .map(|set| set.iter().map(|m| m.as_str().into()).collect())
                .unwrap_or_default()
        })
    }
    fn hash_get(&self, key: RString, field: RString) -> HostFuture<ROption<RString>> {
        self.storage(|s| {
            s.hashes
                .get(key.as_str())
                .and_then(|hash| hash.get(field.as_str()))
                .map(|v| v.as_str().into())
                .into()
        })
    }
    fn hash_set(&self, key: RString, field: RString, value: RString) -> HostFuture<()> {
        self.storage(|s| {
            s.hashes
                .entry(key.into_string())
                .or_default()
                .insert(field.into_string(), value.into_string());
        })
    }
    fn hash_delete(&self, key: RString, field: RString) -> HostFuture<bool> {
        self.storage(|s| {
            s.hashes
                .get_mut(key.as_str())
                .is_some_and(|hash| hash.remove(field.as_str()).is_some())
        })
    }
    fn hash_get_all(&self, key: RString) -> HostFuture<RVec<Tuple2<RString, RString>>> {
        self.storage(|s| {
            s.hashes
                .get(key.as_str())
                .map(|hash| {
                    hash.iter()
                        .map(|(f, v)| Tuple2(f.as_str().into(), v.as_str().into()))
                        .collect()
                })
                .unwrap_or_default()
        })
    }
    fn incr(&self, key: RString, by: i64) -> HostFuture<i64> {
        self.storage(|s| {
            let counter = s.counters.entry(key.into_string()).or_default();
            *counter += by;
            *counter
        })
    }
    fn list_push(&self, key: RString, value: RString) -> HostFuture<u64> {
        self.storage(|s| {
            let list = s.lists.entry(key.into_string()).or_default();
            list.insert(0, value.into_string());
            list.len() as u64
        })
    }
    fn list_range(&self, key: RString, start: i64, stop: i64) -> HostFuture<RVec<RString>> {
        self.storage(|s| {
            s.lists
                .get(key.as_str())
                .map(|list| {
                    list[range(list.len(), start, stop)]
                        .iter()
                        .map(|v| v.as_str().into())
                        .collect()
                })
                .unwrap_or_default()
        })
    }
    fn list_trim(&self, key: RString, start: i64, stop: i64) -> HostFuture<()> {
        self.storage(|s| {
            if let Some(list) = s.lists.get_mut(key.as_str()) {
                let keep = range(list.len(), start, stop);
                *list = list[keep].to_vec();
            }
        })
    }
    fn expire(&self, key: RString, _seconds: u64) -> HostFuture<bool> {
        self.storage(|s| {
            let key = key.as_str();
            s.sets.contains_key(key)
                || s.hashes.contains_key(key)
                || s.lists.contains_key(key)
                || s.counters.contains_key(key)
        })
    }
    fn delete(&self, key: RString) -> HostFuture<bool> {
        self.storage(|s| {
            let key = key.as_str();
            let removed = [
                s.sets.remove(key).is_some(),
                s.hashes.remove(key).is_some(),
                s.lists.remove(key).is_some(),
                s.counters.remove(key).is_some(),
            ];
            removed.contains(&true)
        })
    }
    fn add_close_key(&self, fd: RString, key: RString) -> HostFuture<()> {
        self.storage(|s| {
            s.close_keys
                .entry(fd.into_string())
                .or_default()
                .insert(key.into_string());
        })
    }
    fn add_close_controller(&self, fd: RString, controller: RString) -> HostFuture<()> {
        self.storage(|s| {
            s.close_controllers
                .entry(fd.into_string())
                .or_default()
                .insert(controller.into_string());
        })
    }
    fn sleep(&self, _millis: u64) -> HostFuture<()> {
        ready(Ok(()))
    }
    fn log(&self, level: LogLevel, message: RString) {
        self.state().log.push((level, message.into_string()));
    }
}

struct ThreadWaker(Thread);

impl Wake for ThreadWaker {
    fn wake(self: Arc<Self>) {
        self.0.unpark();
    }
}

/// Runs a future to completion on this thread.
pub fn block_on<F: Future>(future: F) -> F::Output {
    let waker = Waker::from(Arc::new(ThreadWaker(thread::current())));
    let mut cx = Context::from_waker(&waker);
    let mut future = pin!(future);
    loop {
        if let Poll::Ready(output) = future.as_mut().poll(&mut cx) {
            return output;
        }
        thread::park();
    }
}

/// Builds a request as the host would route it: `fd`, `code` and `auth` injected from `identity`.
pub fn request(
    fd: &str,
    controller: &str,
    action: &str,
    mut message: Value,
    identity: &Value,
) -> Request {
    if let Value::Object(map) = &mut message {
        let mut auth = identity.clone();
        if let Value::Object(auth) = &mut auth {
            auth.remove("ctime");
        }
        map.insert("fd".into(), fd.into());
        map.insert(
            "code".into(),
            identity.get("code").cloned().unwrap_or_else(|| "".into()),
        );
        map.insert("auth".into(), auth);
    }
    Request::new(
        fd.into(),
        controller.into(),
        action.into(),
        message.to_string(),
    )
}

/// Calls one action of a module and waits for its outcome.
pub fn call<M: Module>(module: &M, request: Request) -> Outcome {
    block_on(module.call(request))
}
