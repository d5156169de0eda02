//! The per-connection engine the host and the module test kit both drive, and the
//! policies they must share: how a connection ends ([`end`]), its message rate
//! ([`rate`]), the order its messages are answered in ([`scheduler`]), the rules of
//! modules' timers ([`timers`]) and the sequence that loads or swaps a module
//! ([`loading`]).
//!
//! None of it does I/O or needs a runtime: the host feeds it from sockets and tokio
//! timers, the kit from its simulated connections and manual clock. Whatever a module's
//! tests see here is what its clients will see from the host.

pub mod end;
pub mod loading;
pub mod rate;
pub mod scheduler;
pub mod timers;
