//! What an operator sees of a running host: Prometheus [`metrics`], the log file and its
//! rotation ([`log_file`]), floods of one log line folded into summaries ([`log_limit`]),
//! and symbolised plugin backtraces on demand ([`backtraces`]). Every part may use these;
//! they use no other part.

pub mod backtraces;
pub mod log_file;
pub mod log_limit;
pub mod metrics;
