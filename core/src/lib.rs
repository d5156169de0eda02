//! The behaviour of an mswoole host that does not need a socket.
//!
//! The host binary and the module test kit (`mswoole-module-test`) are built on
//! this crate, so a module's unit tests see exactly what the host would do: the
//! same message preparation, routing, errors, memory registry, close sequence and
//! host API. Nothing here opens a socket or needs a runtime; time comes from a
//! [`clock::Clock`] and frames leave through an [`services::Outlet`], which the host
//! backs with its connections and the kit with its simulated ones.
//!
//! - [`message`]: classifying a client's frame and preparing what a module sees.
//! - [`router`]: `method` → module, controller, action.
//! - [`spec`]: what a module declared, normalised; which call a route becomes.
//! - [`error`]: every way a message can fail, and its envelope (the one place).
//! - [`envelope`]: the frame text `{"status","event","info","param"}`.
//! - [`identity`]: fds and decoded tokens.
//! - [`registry`]: the registry trait, key names, and the memory backend.
//! - [`io`]: databases and HTTP as a module reaches them (the work is the host's or the kit's).
//! - [`services`]: the host API a module calls, on top of a registry and an outlet.
//! - [`close`]: the close sequence every connection ends with.
//! - [`engine`]: one connection's scheduler, its end and rate, timer rules, module loading.
//! - [`boundary`]: values into and out of a module, converted once.
//! - [`clock`]: time, real or simulated.

pub mod boundary;
pub mod clock;
pub mod close;
pub mod engine;
pub mod envelope;
pub mod error;
pub mod future;
pub mod identity;
pub mod io;
pub mod message;
pub mod registry;
pub mod router;
pub mod services;
pub mod spec;

use std::{
    future::Future,
    pin::pin,
    sync::Arc,
    task::{Context, Poll, Wake, Waker},
    thread::{self, Thread},
};

/// Wakes the thread that waits in [`block_on`].
struct ThreadWaker(Thread);

impl Wake for ThreadWaker {
    fn wake(self: Arc<Self>) {
        self.0.unpark();
    }
}

/// Runs a future to completion on this thread, without a runtime. Meant for
/// futures that need no reactor (the memory registry's, a module's calls under the
/// test kit); a future waiting on I/O would park this thread until it is woken.
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
