//! Configuration: built-in defaults < TOML `[default]` < TOML `[env.<name>]` < environment
//! variables < builder calls. Later layers win key by key; tables (`tags`, `otlp.headers`,
//! `otlp.resource`) merge entry by entry.
//!
//! This module is the only place the SDK reads environment variables. Every value is validated
//! once, in `resolve`, and an invalid one fails with a [`crate::ConfigError`] naming the key, the value
//! and its [`crate::Source`].
//!
//! # TOML
//! ```toml
//! [default]
//! mode = "dual"                      # legacy | dual | otlp
//! service = "checkout"
//! tags = { region = "eu" }           # global tags, on every measurement, both pipelines
//! cardinality_limit = 10000          # series per metric
//! cumulative_series_warning = 5000   # warn (once) when a cumulative metric passes this many series
//!
//! [default.statsd]
//! address = "127.0.0.1:8125"         # host:port (UDP) or unix:///path/to/socket
//! prefix = "checkout"
//! flush_interval_ms = 10000         # as the reference daemon flushes, and as OTLP exports
//! pacing_bytes_per_ms = 1432        # datagrams of a flush leave at this rate (0: one burst)
//!
//! [default.otlp]
//! endpoint = "http://127.0.0.1:4317"
//! protocol = "grpc"                  # grpc | http/protobuf
//! temporality = "cumulative"         # cumulative | delta
//! export_interval_ms = 10000
//!
//! [default.reload]
//! watch = true                       # poll this file and reload when it changes
//! poll_interval_ms = 1000
//!
//! [[default.rules]]                  # per-metric rules; the first match wins
//! match = "checkout.cart.*"
//! mode = "otlp"
//!
//! [env.staging]                      # selected by DUALMETRICS_ENV=staging
//! mode = "legacy"
//!
//! [[env.staging.rules]]              # checked before [[default.rules]]
//! match = "checkout.payment.*"
//! mode = "dual"
//! ```
//! See [`crate::rules`] for the rule fields and the match order.
//! See the README for every key with its environment variable and default.
mod layer;
mod resolve;
mod sources;

pub use resolve::{
    Config, Headers, HistogramAggregation, OtlpConfig, Protocol, ReloadConfig, StatsdAddress,
    StatsdConfig, Temporality,
};

pub(crate) use layer::{from_env as layer_from_env, toml_text, Layer, Value};
pub(crate) use resolve::resolve;
pub(crate) use sources::{ConfigDoc, Sources};

use std::time::Duration;

/// Default mode: both pipelines.
pub const DEFAULT_MODE: crate::Mode = crate::Mode::Dual;
/// Default service name, as OpenTelemetry names an unknown service.
pub const DEFAULT_SERVICE: &str = "unknown_service";
/// Default StatsD address: the local agent.
pub const DEFAULT_STATSD_ADDRESS: &str = "127.0.0.1:8125";
/// Default StatsD flush interval: counters and gauges are aggregated in process and sent every
/// 10 s (one line per series per flush), the reference daemon's own flush interval and the same
/// as [`DEFAULT_OTLP_EXPORT_INTERVAL`], so both pipelines report on the same cadence. A flush's
/// datagrams are paced over up to 80 % of the interval (see
/// [`DEFAULT_STATSD_PACING_BYTES_PER_MS`]).
pub const DEFAULT_STATSD_FLUSH_INTERVAL: Duration = Duration::from_secs(10);
/// Default largest UDP datagram: fits a 1500-byte Ethernet MTU with IP and UDP headers.
pub const DEFAULT_STATSD_MAX_PACKET_BYTES: usize = 1432;
/// Default largest Unix datagram.
pub const DEFAULT_STATSD_MAX_UNIX_PACKET_BYTES: usize = 8192;
/// Default number of histogram samples buffered per series between two flushes; samples beyond
/// are reservoir-sampled and sent with a declared sample rate (counted as `samples_sampled_out`).
pub const DEFAULT_STATSD_MAX_SAMPLES_PER_FLUSH: usize = 65_536;
/// Default StatsD pacing budget, in bytes per millisecond (1.43 MB/s, one default-size datagram
/// per millisecond, about 20,000 timer lines a second): a flush's datagrams leave at this rate,
/// or faster when the flush would not fit in 80 % of the flush interval at it (counted as
/// `pacing_budget_exceeded`). Chosen by measurement against the reference daemon (statsd 0.9.0)
/// with Linux's default receive buffer; see the README's "StatsD pacing" section.
pub const DEFAULT_STATSD_PACING_BYTES_PER_MS: u64 = 1432;
/// Default OTLP/gRPC endpoint.
pub const DEFAULT_OTLP_GRPC_ENDPOINT: &str = "http://127.0.0.1:4317";
/// Default OTLP/HTTP endpoint.
pub const DEFAULT_OTLP_HTTP_ENDPOINT: &str = "http://127.0.0.1:4318/v1/metrics";
/// Default OTLP export timeout.
pub const DEFAULT_OTLP_TIMEOUT: Duration = Duration::from_secs(10);
/// Default interval of the HTTP/2 keepalive PINGs on the OTLP/gRPC connection (`otlp.keepalive_ms`;
/// `0` turns them off): 30 s. A connection whose PING is not answered within the export timeout
/// (at most 10 s) is dropped and the next export connects again, so a collector path that died
/// without closing the connection (a frozen proxy, a partition) costs at most about 40 s of
/// failed exports instead of every export after it.
pub const DEFAULT_OTLP_KEEPALIVE: Duration = Duration::from_secs(30);
/// Largest value any `*_ms` setting accepts: one day (a larger one is a configuration error
/// naming the key, never an overflow in time arithmetic).
pub const MAX_DURATION_MS: u64 = 86_400_000;
/// Default OTLP export interval (OpenTelemetry's 60 s is shortened to the StatsD flush
/// interval, so that both pipelines report on the same cadence).
pub const DEFAULT_OTLP_EXPORT_INTERVAL: Duration = Duration::from_secs(10);
/// Default series per metric before new tag sets go to the overflow series. Five times
/// OpenTelemetry's 2000, which folds real traffic of a busy HTTP service into overflow; see the
/// README's cardinality section.
pub const DEFAULT_CARDINALITY_LIMIT: usize = 10_000;
/// Default series count past which a cumulative metric logs a warning (once) suggesting a delta
/// rule: half the default cardinality limit, early enough to act before the limit folds series.
pub const DEFAULT_CUMULATIVE_SERIES_WARNING: usize = 5_000;
/// Default explicit histogram boundaries for millisecond histograms (OpenTelemetry's defaults);
/// histograms in other time units get these scaled to their unit.
pub const DEFAULT_HISTOGRAM_BOUNDARIES_MS: [f64; 15] = [
    0.0, 5.0, 10.0, 25.0, 50.0, 75.0, 100.0, 250.0, 500.0, 750.0, 1000.0, 2500.0, 5000.0, 7500.0,
    10000.0,
];
/// Default interval at which a watched configuration file is polled for changes
/// (`reload.poll_interval_ms`). A change is applied within one interval.
pub const DEFAULT_RELOAD_POLL_INTERVAL: Duration = Duration::from_secs(1);
/// Default deadline for [`crate::DualMetrics::shutdown`] when called from `Drop`.
pub const DEFAULT_SHUTDOWN_TIMEOUT: Duration = Duration::from_secs(5);
/// Default of `self_metrics`: the SDK emits its own telemetry as `dualmetrics.sdk.*` metrics.
pub const DEFAULT_SELF_METRICS: bool = true;
