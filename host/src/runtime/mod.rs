//! The process around the host: its stop signals ([`shutdown`]), its files in
//! `runtime.dir` and its limits ([`process`]), and what it tells systemd
//! ([`readiness`]). Every part may use these; they use no other part.

pub mod process;
pub mod readiness;
pub mod shutdown;
