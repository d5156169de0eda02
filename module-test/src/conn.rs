//! Simulated connections: what the host's connection task does with a client's
//! frames, without the socket.
//!
//! The order of what a client receives follows the host's: a message's ack comes
//! first; a reply that needs nothing from the host is written at once, before
//! frames other connections queued meanwhile; while a call waits (on `sleep`, say),
//! queued frames are written as they come and the reply follows when it is done.
//! Messages of one connection run one at a time, in order. Bad input is answered
//! 400 once the messages before it are answered, then the connection is closed.

use std::{
    collections::VecDeque,
    future::Future,
    pin::Pin,
    sync::{Arc, Weak},
    task::Poll,
    time::Duration,
};

use async_trait::async_trait;
use mswoole_core::{
    boundary,
    close::{close_sequence, CloseHooks},
    envelope::Envelope,
    error::CallError,
    identity::Identity,
    message::{self, Inbound},
    router::{self, module_name},
};
use mswoole_plugin_api::LogLevel;
use serde_json::{Map, Value};

use crate::{outlet::deadline, poll_once, Inner};

/// The acknowledgement every valid message gets first, as the host writes it.
const ACK: &str = r#"{"status":200,"event":"receiveMessage","info":"服务端已收到您的请求内容"}"#;

type CallFuture = Pin<Box<dyn Future<Output = Result<Option<Envelope>, CallError>> + Send>>;

/// A call that is waiting.
pub(crate) struct InFlight {
    future: CallFuture,
    /// `Module.Controller.action`, for the log.
    label: String,
}

/// One simulated connection.
pub(crate) struct ConnState {
    identity: Arc<Identity>,
    /// Messages waiting behind the call in progress, as `(method, body)`.
    pending: VecDeque<(String, Map<String, Value>)>,
    in_flight: Option<InFlight>,
    /// Bad input seen: the close code that follows the 400.
    bad_input: Option<u16>,
    /// Frames other connections (or the module) queued for this one.
    pub(crate) mail: Vec<String>,
    /// Frames written to the client and not yet taken by the test.
    received: Vec<String>,
    /// A module or the manager closed it.
    pub(crate) kicked: bool,
    /// Ended: `Some(code)` the close code the host sent (`None` inside: none).
    ended: Option<Option<u16>>,
}

impl ConnState {
    pub(crate) fn new(identity: Identity) -> Self {
        ConnState {
            identity: Arc::new(identity),
            pending: VecDeque::new(),
            in_flight: None,
            bad_input: None,
            mail: Vec::new(),
            received: Vec::new(),
            kicked: false,
            ended: None,
        }
    }

    pub(crate) fn is_open(&self) -> bool {
        self.ended.is_none()
    }
}

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
        self.receive_frame(|conn| match message::parse(text) {
            Ok(Inbound::Ping) => conn.received.push("3".into()),
            Ok(Inbound::Message { method, body }) => conn.pending.push_back((method, body)),
            Err(_) => conn.bad_input = Some(1007),
        })
    }

    /// Sends a binary frame: 400, then close 1003.
    pub fn send_binary(&self) -> Vec<Value> {
        self.receive_frame(|conn| conn.bad_input = Some(1003))
    }

    fn receive_frame(&self, read: impl FnOnce(&mut ConnState)) -> Vec<Value> {
        {
            let mut state = self.inner.state();
            match state.conns.get_mut(&self.fd) {
                // The host stops reading once it saw bad input.
                Some(conn) if conn.is_open() && conn.bad_input.is_none() => read(conn),
                _ => {}
            }
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
        end(&self.inner, &self.fd, None);
        run(&self.inner);
    }

    /// Whether the connection is still open.
    pub fn is_open(&self) -> bool {
        let state = self.inner.state();
        state.conns.get(&self.fd).is_some_and(ConnState::is_open)
    }

    /// The close code the host sent when it ended the connection (1000 closed by a
    /// module, 1001 shutdown, 1003 binary, 1007 bad input); `None` while open or
    /// when the client closed.
    pub fn close_code(&self) -> Option<u16> {
        let state = self.inner.state();
        state
            .conns
            .get(&self.fd)
            .and_then(|conn| conn.ended.flatten())
    }
}

/// What one connection does next.
enum Step {
    Poll(InFlight),
    Start(String, Map<String, Value>),
    End(u16),
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
    moved |= fire_timers(inner);
    moved |= run_tasks(inner);
    moved
}

/// Starts `on_timer` for every timer that is due, as the host's timer tasks do:
/// on the module's current version, a repeating one re-armed, a tick skipped while
/// the previous `on_timer` of that name still runs.
fn fire_timers(inner: &Arc<Inner>) -> bool {
    let now = inner.now();
    let due: Vec<(String, String, String)> = {
        let mut state = inner.state();
        let mut due = Vec::new();
        let mut finished = Vec::new();
        for (key, armed) in state.timers.iter_mut() {
            if armed.due > now {
                continue;
            }
            let period = Duration::from_millis(armed.timer.millis.max(1));
            if armed.timer.repeat {
                while armed.due <= now {
                    armed.due += period;
                }
            } else {
                finished.push(key.clone());
            }
            if !armed.running {
                armed.running = armed.timer.repeat;
                due.push((key.0.clone(), key.1.clone(), armed.timer.payload.clone()));
            }
        }
        for key in finished {
            state.timers.remove(&key);
        }
        let next: Vec<Duration> = state.timers.values().map(|armed| armed.due).collect();
        state.wakeups.extend(next);
        due
    };
    let fired = !due.is_empty();
    for (module, name, payload) in due {
        let Some(loaded) = inner.module(&module) else {
            continue;
        };
        let hook = deadline(
            inner,
            loaded.module.on_timer(name.as_str().into(), payload.into()),
        );
        let weak = Arc::downgrade(inner);
        let task = async move {
            let outcome = hook.await;
            drop(loaded);
            let Some(inner) = weak.upgrade() else {
                return;
            };
            if let Err(error) = outcome {
                inner.log(
                    LogLevel::Error,
                    &module,
                    format!("onTimer {name} failed: {error}"),
                );
            }
            let mut state = inner.state();
            if let Some(armed) = state.timers.get_mut(&(module.clone(), name.clone())) {
                armed.running = false;
            }
        };
        inner.state().tasks.push(Box::pin(task));
    }
    fired
}

/// Advances one connection as far as it goes; `true` if anything happened.
fn step(inner: &Arc<Inner>, fd: &str) -> bool {
    let mut moved = false;
    loop {
        let next = {
            let mut state = inner.state();
            let Some(conn) = state.conns.get_mut(fd).filter(|c| c.is_open()) else {
                return moved;
            };
            if let Some(call) = conn.in_flight.take() {
                Step::Poll(call)
            } else if let Some((method, body)) = conn.pending.pop_front() {
                if inner.options.ack {
                    conn.received.push(ACK.into());
                }
                Step::Start(method, body)
            } else if let Some(code) = conn.bad_input {
                conn.received
                    .push(CallError::BadRequest.envelope().to_json());
                Step::End(code)
            } else if !conn.mail.is_empty() {
                let mail = std::mem::take(&mut conn.mail);
                conn.received.extend(mail);
                moved = true;
                continue;
            } else if conn.kicked {
                Step::End(1000)
            } else {
                return moved;
            }
        };
        let call = match next {
            Step::Start(method, body) => {
                moved = true;
                start(inner, fd, &method, body)
            }
            Step::Poll(call) => call,
            Step::End(code) => {
                end(inner, fd, Some(code));
                return true;
            }
        };
        if finish(inner, fd, call) {
            moved = true;
        } else {
            // Waiting: frames queued meanwhile are written, the reply follows later.
            return deliver_mail(inner, fd) || moved;
        }
    }
}

/// Writes the frames queued for `fd`; `true` if there were any.
fn deliver_mail(inner: &Inner, fd: &str) -> bool {
    let mut state = inner.state();
    let Some(conn) = state.conns.get_mut(fd) else {
        return false;
    };
    let mail = std::mem::take(&mut conn.mail);
    let any = !mail.is_empty();
    conn.received.extend(mail);
    any
}

/// Routes a message and starts its call, as the host's connection task does.
fn start(inner: &Arc<Inner>, fd: &str, method: &str, body: Map<String, Value>) -> InFlight {
    let escape = inner.options.escape_html;
    let identity = inner.state().conns.get(fd).map(|c| c.identity.clone());
    let resolved = router::route(method).and_then(|route| {
        let loaded = inner
            .module(&route.module)
            .ok_or(CallError::ControllerNotFound)?;
        let target = loaded.spec.target(&route)?;
        Ok((loaded, target))
    });
    let (loaded, target, identity) = match (resolved, identity) {
        (Ok((loaded, target)), Some(identity)) => (loaded, target, identity),
        (Err(error), _) => {
            return InFlight {
                future: Box::pin(std::future::ready(Err(error))),
                label: method.into(),
            }
        }
        (Ok(_), None) => {
            return InFlight {
                future: Box::pin(std::future::ready(Ok(None))),
                label: method.into(),
            }
        }
    };
    let label = format!(
        "{}.{}.{}",
        loaded.spec.name, target.controller, target.action
    );
    let prepared = message::prepare(body, identity.injection(escape), escape);
    let call = boundary::call(fd, target, prepared);
    let reply = deadline(inner, loaded.module.call(call));
    let future = async move {
        // The version that serves the call stays loaded until it returns.
        let _serving = loaded;
        let reply = reply.await?;
        reply
            .into_option()
            .map(boundary::render)
            .transpose()
            .map_err(CallError::Failed)
    };
    InFlight {
        future: Box::pin(future),
        label,
    }
}

/// Polls a call once; writes its reply and returns `true` when it is done,
/// otherwise puts it back and returns `false`.
fn finish(inner: &Arc<Inner>, fd: &str, mut call: InFlight) -> bool {
    let Poll::Ready(outcome) = poll_once(&mut call.future) else {
        if let Some(conn) = inner.state().conns.get_mut(fd) {
            conn.in_flight = Some(call);
        }
        return false;
    };
    let envelope = match outcome {
        Ok(Some(envelope)) => Some(envelope),
        Ok(None) => None,
        Err(error) => {
            if error.is_internal() {
                let module = call.label.split('.').next().unwrap_or("").to_string();
                inner.log(
                    LogLevel::Error,
                    &module,
                    format!("call {} failed: {error}", call.label),
                );
            }
            Some(error.envelope())
        }
    };
    if let (Some(envelope), Some(conn)) = (envelope, inner.state().conns.get_mut(fd)) {
        conn.received.push(envelope.to_json());
    }
    true
}

/// Ends a connection (`code`: the close code the host sends, `None` when the
/// client went away) and starts its close sequence.
pub(crate) fn end(inner: &Arc<Inner>, fd: &str, code: Option<u16>) {
    let (abandoned, identity) = {
        let mut state = inner.state();
        let Some(conn) = state.conns.get_mut(fd).filter(|c| c.is_open()) else {
            return;
        };
        conn.ended = Some(code);
        conn.pending.clear();
        (conn.in_flight.take(), conn.identity.clone())
    };
    // Dropped outside the lock: the module's future may log while it is dropped.
    drop(abandoned);
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
            Poll::Ready(()) => finished = true,
            Poll::Pending => waiting.push(task),
        }
    }
    inner.state().tasks.extend(waiting);
    finished
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
