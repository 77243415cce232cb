//! The two pipelines. Each turns the per-series state that instruments write into its wire
//! format, off the caller's thread:
//! - [`statsd`]: per-series cells (a counter sum, a last gauge value, a buffer of histogram
//!   samples) that a flusher thread drains once per interval into StatsD lines, packed into
//!   datagrams and handed to a cadence sink.
//! - [`otel`]: an `opentelemetry_sdk` meter provider whose instruments aggregate (bound
//!   instruments; observable ones reading our per-series totals for cumulative counters and
//!   up-down counters), and a periodic reader that exports OTLP over gRPC or HTTP.
pub(crate) mod otel;
pub(crate) mod statsd;
