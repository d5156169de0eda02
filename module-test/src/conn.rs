//! Simulated connections: the host's per-connection engine (`mswoole_core::engine`),
//! driven without a socket.
//!
//! The kit does what the host's connection task does around the engine, and nothing
//! more: it hands the engine the client's frames, writes what the engine says to write,
//! polls the call in flight, and at each wait writes the frames other connections
//! queued and passes on close requests (a module's or the manager's close, the host's
//! stop). The order of what a client receives, the close codes and the 400/429 answers
//! are the engine's, so they are the host's.

use std::{
    sync::{Arc, Weak},
    task::{Context, Waker},
};

use async_trait::async_trait;
use mswoole_core::{
    boundary,
    close::{close_sequence, CloseHooks},
    engine::{
        end::End,
        scheduler::{CallFuture, Dispatch, Observe, Step},
    },
    error::CallError,
    router::{module_name, Route},
    spec::Target,
};
use mswoole_plugin_api::LogLevel;
use serde_json::Value;

use crate::{
    outlet::deadline,
    world::{poll_once, ConnState, Engine, Inner, Loaded},
};

/// A client connected to a [`crate::TestHost`].
#[derive(Clone)]
pub struct Conn {
    inner: Arc<Inner>,
    fd: String,
}

impl std::fmt::Debug for Conn {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Conn").field("fd", &self.fd).finish()
    }
}

impl Conn {
    pub(crate) fn new(inner: Arc<Inner>, fd: String) -> Self {
        Conn { inner, fd }
    }

    /// The connection's fd, as modules see it.
    pub fn fd(&self) -> &str {
        &self.fd
    }

    /// Sends a JSON message and returns every frame this client has received
    /// since the last look (acks included, parsed as JSON).
    pub fn send(&self, message: Value) -> Vec<Value> {
        self.send_text(&message.to_string())
    }

    /// Sends a text frame as is (`2` is the ping; anything but a JSON object with a
    /// string `method` is bad input: 400, then close 1007).
    pub fn send_text(&self, text: &str) -> Vec<Value> {
        self.receive(|engine| engine.text(text))
    }

    /// Sends a binary frame: 400, then close 1003.
    pub fn send_binary(&self) -> Vec<Value> {
        self.receive(|engine| {
            engine.binary();
            None
        })
    }

    /// Hands a frame to the engine (the host reads nothing more after bad input), then
    /// runs everything.
    fn receive(&self, read: impl FnOnce(&mut Engine) -> Option<End>) -> Vec<Value> {
        let ended = {
            let mut state = self.inner.state();
            match state.conns.get_mut(&self.fd) {
                Some(conn) => match conn.engine.as_deref_mut() {
                    Some(engine) if engine.reading() => read(engine),
                    _ => None,
                },
                None => None,
            }
        };
        if let Some(end) = ended {
            finish(&self.inner, &self.fd, end);
        }
        run(&self.inner);
        self.take()
    }

    /// Every frame received since the last look, parsed as JSON (the pong `3` is the number 3).
    pub fn take(&self) -> Vec<Value> {
        self.take_text()
            .iter()
            .map(|text| serde_json::from_str(text).unwrap_or_else(|_| Value::from(text.as_str())))
            .collect()
    }

    /// Every frame received since the last look, as the text the host wrote.
    pub fn take_text(&self) -> Vec<String> {
        let mut state = self.inner.state();
        state
            .conns
            .get_mut(&self.fd)
            .map(|conn| std::mem::take(&mut conn.received))
            .unwrap_or_default()
    }

    /// The client closes the connection (or it drops): a call in progress is
    /// abandoned and the close sequence runs.
    pub fn close(&self) {
        finish(&self.inner, &self.fd, End::ClientGone);
        run(&self.inner);
    }

    /// Whether the connection is still open.
    pub fn is_open(&self) -> bool {
        let state = self.inner.state();
        state.conns.get(&self.fd).is_some_and(ConnState::is_open)
    }

    /// The close code the host sent when it ended the connection (1000 closed by a
    /// module or idle, 1003 binary, 1007 bad input, 1008 over its rate, 1012 the host
    /// stopped); `None` while open or when the client closed.
    pub fn close_code(&self) -> Option<u16> {
        let state = self.inner.state();
        state
            .conns
            .get(&self.fd)
            .and_then(|conn| conn.ended.flatten())
    }
}

/// Runs every connection, timer and task until nothing moves without time passing
/// and no database or HTTP call is still running.
pub(crate) fn run(inner: &Arc<Inner>) {
    loop {
        while run_once(inner) {}
        if !inner.in_flight.wait() {
            return;
        }
    }
}

/// One round over every connection, due timer and task; `true` if anything moved.
pub(crate) fn run_once(inner: &Arc<Inner>) -> bool {
    let fds: Vec<String> = inner.state().conns.keys().cloned().collect();
    let mut moved = false;
    for fd in &fds {
        moved |= step(inner, fd);
    }
    moved |= crate::outlet::fire_timers(inner);
    moved |= run_tasks(inner);
    moved
}

/// Drives one connection's engine until it waits or ends; `true` if anything happened.
fn step(inner: &Arc<Inner>, fd: &str) -> bool {
    let (mut engine, identity) = {
        let mut state = inner.state();
        let Some(conn) = state.conns.get_mut(fd).filter(|conn| conn.is_open()) else {
            return false;
        };
        let Some(engine) = conn.engine.take() else {
            return false;
        };
        (engine, conn.identity.clone())
    };
    let dispatch = KitDispatch { inner };
    let mut observe = KitObserve { inner };
    let mut moved = false;
    let ended = loop {
        if engine.calling() {
            let mut cx = Context::from_waker(Waker::noop());
            moved |= engine.poll_call(&mut cx).is_ready();
        }
        match engine.step(&identity, &dispatch, &mut observe) {
            Step::Write(text) => {
                moved = true;
                received(inner, fd, vec![text.into_owned()]);
            }
            Step::End(end) => break Some(end),
            Step::Wait => {
                // What waits for a connection that waits: close requests, then frames.
                let (mail, closing) = {
                    let mut state = inner.state();
                    match state.conns.get_mut(fd) {
                        Some(conn) => (std::mem::take(&mut conn.mail), conn.closing.take()),
                        None => (Vec::new(), None),
                    }
                };
                if let Some(request) = closing {
                    engine.close(request);
                    continue;
                }
                if mail.is_empty() {
                    break None;
                }
                moved = true;
                received(inner, fd, mail);
            }
        }
    };
    match ended {
        Some(end) => {
            drop(engine);
            finish(inner, fd, end);
            true
        }
        None => {
            if let Some(conn) = inner.state().conns.get_mut(fd) {
                conn.engine = Some(engine);
            }
            moved
        }
    }
}

/// Frames written to `fd`'s client.
fn received(inner: &Inner, fd: &str, frames: Vec<String>) {
    if let Some(conn) = inner.state().conns.get_mut(fd) {
        conn.received.extend(frames);
    }
}

/// Ends a connection for `end` (its close code is what the host would send) and starts
/// its close sequence; a call in progress is abandoned.
pub(crate) fn finish(inner: &Arc<Inner>, fd: &str, end: End) {
    let (engine, identity) = {
        let mut state = inner.state();
        let Some(conn) = state.conns.get_mut(fd).filter(|c| c.is_open()) else {
            return;
        };
        conn.ended = Some(end.close().map(|(code, _)| code.code()));
        (conn.engine.take(), conn.identity.clone())
    };
    // Dropped outside the lock: the module's future may log while it is dropped.
    drop(engine);
    let registry = inner.registry.clone();
    let hooks = KitHooks {
        inner: Arc::downgrade(inner),
    };
    let escape = inner.options.escape_html;
    let sequence = async move {
        close_sequence(&*registry, &hooks, &identity, escape).await;
    };
    inner.state().tasks.push(Box::pin(sequence));
}

/// Polls every task once; `true` if one finished.
fn run_tasks(inner: &Arc<Inner>) -> bool {
    let tasks = std::mem::take(&mut inner.state().tasks);
    let mut finished = false;
    let mut waiting = Vec::new();
    for mut task in tasks {
        match poll_once(&mut task) {
            std::task::Poll::Ready(()) => finished = true,
            std::task::Poll::Pending => waiting.push(task),
        }
    }
    inner.state().tasks.extend(waiting);
    finished
}

/// The kit's modules, as a connection's engine reaches them.
struct KitDispatch<'a> {
    inner: &'a Arc<Inner>,
}

impl Dispatch for KitDispatch<'_> {
    type Target = (Arc<Loaded>, Target);

    fn resolve(&self, route: &Route) -> Result<Self::Target, CallError> {
        let loaded = self
            .inner
            .module(&route.module)
            .ok_or(CallError::ControllerNotFound)?;
        let target = loaded.spec.target(route)?;
        Ok((loaded, target))
    }

    fn call(&self, (loaded, target): Self::Target, fd: &str, message: String) -> CallFuture {
        let reply = deadline(
            self.inner,
            loaded.module.call(boundary::call(fd, target, message)),
        );
        Box::pin(async move {
            // The version that serves the call stays loaded until it returns.
            let _serving = loaded;
            let reply = reply.await?;
            reply
                .into_option()
                .map(boundary::render)
                .transpose()
                .map_err(CallError::Failed)
        })
    }
}

/// Where the kit records a failed call: its log, as the host's log would say it.
struct KitObserve<'a> {
    inner: &'a Arc<Inner>,
}

impl Observe for KitObserve<'_> {
    fn answered(&mut self, route: Option<&Route>, _: Option<u16>, failure: Option<&CallError>) {
        let (Some(error), Some(route)) = (failure, route) else {
            return;
        };
        // The module and names as it declared them, as the host's log line has them.
        let declared = self.inner.module(&route.module).and_then(|loaded| {
            let target = loaded.spec.target(route).ok()?;
            let label = format!(
                "{}.{}.{}",
                loaded.spec.name, target.controller, target.action
            );
            Some((loaded.spec.name.clone(), label))
        });
        let (module, label) = declared.unwrap_or_else(|| {
            let label = format!("{}.{}.{}", route.module, route.controller, route.action);
            (route.module.clone(), label)
        });
        self.inner.log(
            LogLevel::Error,
            &module,
            format!("call {label} failed: {error}"),
        );
    }
}

/// `onClose` through the loaded modules, as the host's plugin table does it.
struct KitHooks {
    inner: Weak<Inner>,
}

#[async_trait]
impl CloseHooks for KitHooks {
    async fn on_close(&self, registered: &str, info: &Value) -> Result<bool, CallError> {
        let Some(inner) = self.inner.upgrade() else {
            return Ok(false);
        };
        let (module, controller) = registered.split_once('.').unwrap_or(("", registered));
        let Some(loaded) = inner.module(&module_name(module)) else {
            return Ok(false);
        };
        let controller = loaded.spec.close_controller(controller);
        let hook = loaded
            .module
            .on_close(controller.as_str().into(), info.to_string().into());
        let outcome = deadline(&inner, hook);
        drop(inner);
        outcome.await.map(|()| true)
    }
}
