//! # dualmetrics
//!
//! One metrics facade that records every measurement into **StatsD** (the legacy pipeline, over
//! cadence) and **OpenTelemetry** (the strategic one, OTLP over gRPC or HTTP) at once, so a fleet
//! can migrate from one to the other with a configuration flag instead of a rewrite, and roll
//! back the same way.
//!
//! ## Quick start
//! ```no_run
//! use dualmetrics::{DualMetrics, Mode};
//!
//! # fn main() -> Result<(), dualmetrics::BuildError> {
//! let metrics = DualMetrics::builder()
//!     .with_service_name("checkout")
//!     .with_statsd_address("127.0.0.1:8125")
//!     .with_otlp_endpoint("http://127.0.0.1:4317")
//!     .with_mode(Mode::Dual)
//!     .build()?;
//!
//! let requests = metrics.counter("http.requests").with_unit("1").build()?;
//! requests.add(1, &[("route", "/cart"), ("code", "200")]);
//!
//! let latency = metrics.histogram("http.latency").with_unit("ms").build()?;
//! latency.record(12.5, &[("route", "/cart")]);
//!
//! // Hot paths bind their tags once: recording is then a few atomics.
//! let cart_ok = requests.bind(&[("route", "/cart"), ("code", "200")])?;
//! cart_ok.increment();
//!
//! metrics.shutdown(std::time::Duration::from_secs(5)).ok();
//! # Ok(()) }
//! ```
//!
//! ## Instruments and how each pipeline sees them
//! | facade | StatsD | OTLP |
//! |---|---|---|
//! | [`Counter`] (`u64`) | `name:v\|c`, summed per flush | monotonic Sum |
//! | [`UpDownCounter`] (`i64`) | `name:v\|g`, the absolute value | non-monotonic Sum |
//! | [`Gauge`] (`f64`) | `name:v\|g`, the last value | Gauge |
//! | [`Histogram`] (`f64`) | every sample, `\|ms` in milliseconds for time units, else `\|h`/`\|d` | Histogram (explicit buckets; exponential opt-in) |
//!
//! Tags are DogStatsD tags (`|#k:v`) on StatsD and data-point attributes on OTLP; global tags
//! (`service`, `env`, and the configured `tags`) are added to both.
//!
//! ## Modes
//! [`Mode::Legacy`] sends to StatsD only, [`Mode::Dual`] to both, [`Mode::Otlp`] to OTLP only.
//! The mode comes from configuration ([`DualMetricsBuilder`] documents the precedence) and can be
//! switched at runtime with [`DualMetrics::set_mode`]; each emit reads it with one relaxed load.
//!
//! ## Per-metric rules
//! A [`Rule`] overrides, for the metrics whose name matches a glob, the mode (a *pin*), the
//! StatsD name, the OTel name, the temporality and the cardinality limit. The first matching rule
//! wins: rules from [`DualMetricsBuilder::with_rule`] first, then `[[env.<name>.rules]]`, then
//! `[[default.rules]]`. Rules are matched once per instrument at registration, never per emit.
//! [`DualMetrics::set_mode`] moves only instruments without a pinned mode.
//! ```no_run
//! use dualmetrics::{DualMetrics, Mode, Rule};
//!
//! # fn main() -> Result<(), dualmetrics::BuildError> {
//! let metrics = DualMetrics::builder()
//!     .with_rule(Rule::matching("checkout.cart.*").mode(Mode::Otlp).otel_name("cart.items"))
//!     .build()?;
//! # Ok(()) }
//! ```
//! See [`rules`] for the TOML form and precedence.
//!
//! ## Temporality and cardinality
//! Delta and cumulative metrics share one OpenTelemetry provider and one OTLP export per
//! interval, each metric carrying its own temporality:
//! `Rule::matching("search.*").temporality(Temporality::Delta)` makes the high-cardinality
//! emitters delta while the rest stays cumulative. A delta metric forgets, at each collect, every
//! series no bound handle holds (their values are still exported and flushed), as OpenTelemetry's
//! delta aggregation drains its trackers, so its memory follows one interval's series, not every
//! series ever seen; an unbound delta emit allocates (bind the tag sets of a hot delta path). A
//! cumulative counter keeps each series' running total itself and OpenTelemetry observes it at
//! collect, so the SDK holds no per-series state between collects. Each metric keeps at most its
//! cardinality limit of tag sets (builder > rule > [`config::DEFAULT_CARDINALITY_LIMIT`]);
//! further tag sets go to one
//! [`OVERFLOW_TAG`]`=true` series on both pipelines, counted per metric in
//! [`TelemetrySnapshot::cardinality_overflow_by_metric`] and logged once per metric. A cumulative
//! metric past `cumulative_series_warning` series logs once, suggesting the delta rule.
//!
//! ## Reload
//! [`DualMetrics::reload`] re-reads the configuration file and environment and re-resolves every
//! instrument's mode (global mode and rule pins) without restart. It also runs when the file
//! changes ([`DualMetricsBuilder::watch_config`], polled every
//! [`config::DEFAULT_RELOAD_POLL_INTERVAL`]) and on `SIGHUP`
//! ([`DualMetricsBuilder::reload_on_sighup`]). A bad file keeps the configuration in force and is
//! counted in [`TelemetrySnapshot::reloads_failed`]. A mode set with [`DualMetrics::set_mode`]
//! outranks the file until the next `set_mode`, so a rollback survives reloads.
//!
//! ## Adopting without rewrites
//! Existing instrumentation keeps its call sites. `metrics_rs::install` (opt-in feature
//! `metrics-rs`) makes the `metrics` crate's `counter!`/`gauge!`/`histogram!` record into the
//! facade, labels as tags and `describe_*!` units and descriptions included; a cadence
//! `StatsdClient` built with [`cadence_sink::DualSink`] (`StatsdClient::from_sink(prefix, sink)`)
//! records every line it writes. Both dual-emit and follow modes and rules like native
//! instruments; what they cannot map is counted in [`TelemetrySnapshot::dropped_by_adapter`].
//!
//! ## Cost model
//! Registration resolves names, units and backend handles; the first use of a tag set resolves
//! its series (both pipelines). After that an unbound emit is a hash of the borrowed tags and a
//! read-locked lookup, and a bound emit is a mode load plus atomics (a cumulative counter's
//! OTLP side is one atomic add into the series' total). The StatsD pipeline
//! aggregates counters and gauges in process and formats lines on its own thread once per flush
//! interval, so the caller never formats a line nor wakes a thread.
//!
//! ## Testing with in-memory pipelines
//! [`DualMetricsBuilder::build_with`] builds the facade over [`InMemory`] (or [`Noop`])
//! pipelines instead of StatsD and OTLP: modes, rules and telemetry behave the same, and
//! [`DualMetrics::pipelines`] reads back what each side received.
//!
//! ## Code map
//! An emit goes `instrument/handles.rs` (the public handle) → `instrument/mod.rs` (`Core`: the
//! mode byte, the series lookup, the cardinality limit, the fan-out) → `instrument/table.rs`
//! (the series) → each pipeline's part, through the seam `backend/mod.rs` (`Pipeline<K>`: what a
//! pipeline keeps per instrument and per series, and how it records): `backend/statsd/` (cells,
//! lines, the flusher) and `backend/otel/` (SDK instruments, attributes, the exporter). The mode
//! and its precedence are `cutover.rs`; configuration is `config/` (sources, layers, resolve),
//! its reload `reload.rs`.
//!
//! ## Failure behaviour
//! Emitting never blocks, never panics and never returns an error. Invalid values (NaN,
//! infinities, negative histogram samples), invalid tag keys, socket refusals, failed exports and
//! emits after shutdown are counted in [`DualMetrics::telemetry`].
//!
//! ## Failure isolation and self-metrics
//! Sockets and exports run on their own threads and nothing queues while a backend is down: a
//! slow or absent OTLP collector costs neither the caller nor StatsD anything, a gone StatsD
//! daemon costs OTLP nothing. The StatsD sink is a connected socket, so a gone daemon's refusals
//! are counted line by line (`lines_dropped_socket`, `lines_dropped_queue_full`: exactly lines
//! produced − lines received); failed OTLP exports are counted with their points, and with
//! timeouts apart. The same counters are emitted as `dualmetrics.sdk.*` metrics into the active
//! pipelines (`self_metrics = false` turns them off).
//!
//! ## StatsD at production rates
//! A flush's datagrams are not sent in one burst, which a daemon with the kernel's default
//! receive buffer drops most of (silently for any sender): they leave paced at
//! `statsd.pacing_bytes_per_ms` (default 1432, chosen by measurement against statsd 0.9.0), or
//! spread over 80 % of the flush interval when that budget cannot carry them, with the series
//! interleaved so that a lost datagram never takes a whole series. Each flush's datagrams, bytes,
//! largest burst and send errors are in [`StatsdSnapshot`]. Both pipelines report every 10 s by
//! default.
//!
//! ## Zero points
//! A new cumulative counter series (first use, or a switch that brings OTLP on) exports `0`
//! first, so Prometheus' `increase()` counts its first interval.
//!
//! # Features
//! - StatsD over UDP or Unix datagram sockets, DogStatsD tags, a metric prefix; paced flushes;
//!   opt-in DogStatsD value packing (`name:1:2:3|ms`), distributions (`|d`) and per-metric timer
//!   sample rates (`|@0.1`).
//! - OTLP over tonic gRPC or HTTP/protobuf, headers, TLS, cumulative or delta temporality.
//! - TOML configuration with per-environment sections, `DUALMETRICS_*` and `OTEL_*` variables.
//! - Per-metric rules and configuration reload (call, file watch, `SIGHUP`).
//! - Adapters for `metrics` (a `Recorder`) and cadence (a `MetricSink`).
//!
//! # Missing
//! - A zero point for new cumulative *histogram* series: their first OTLP point already holds the
//!   first interval's samples, so Prometheus' `increase(…_count)` misses that interval.
//! - The sender cannot see datagrams a UDP daemon drops in its own receive buffer; compare the
//!   daemon's `statsd.metrics_received` with [`StatsdSnapshot::lines_sent`].
#![deny(missing_docs)]
#[cfg(not(any(feature = "grpc", feature = "http-proto")))]
compile_error!("dualmetrics needs an OTLP transport: the `grpc` (default) or `http-proto` feature");

mod adapters;
mod backend;
mod builder;
pub mod catalog;
pub mod config;
mod cutover;
mod error;
mod glob;
mod instrument;
mod registry;
mod reload;
pub mod rules;
mod self_metrics;
mod telemetry;

pub use adapters::cadence as cadence_sink;
#[cfg(feature = "metrics-rs")]
pub use adapters::metrics_rs;
pub use backend::memory::{InMemory, Recorded, RecordedSeries};
pub use backend::noop::Noop;
pub use backend::Backend;
pub use builder::DualMetricsBuilder;
pub use config::{Config, Protocol, Temporality};
pub use cutover::Mode;
pub use error::{BuildError, ConfigError, NameError, ShutdownError, Source};
pub use instrument::tags::Tags;
pub use instrument::{
    BoundCounter, BoundGauge, BoundHistogram, BoundUpDownCounter, Counter, Gauge, Histogram,
    HistogramTimer, InstrumentBuilder, UpDownCounter, OVERFLOW_TAG,
};
pub use reload::ReloadOutcome;
pub use rules::Rule;
pub use telemetry::{OtlpSnapshot, StatsdSnapshot, TelemetrySnapshot};

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use backend::otel::OtelBackend;
use backend::statsd::StatsdBackend;
use registry::Registry;

/// The entry point: owns both pipelines, registers instruments, switches modes, shuts down.
///
/// `L` and `N` are the legacy and the new pipeline: StatsD and OTLP, as
/// [`DualMetrics::builder`]`.build()` starts them. [`DualMetricsBuilder::build_with`] puts other
/// [`Backend`]s there ([`InMemory`], [`Noop`]), for a test that reads back what the service
/// recorded.
///
/// Dropping it shuts down with [`config::DEFAULT_SHUTDOWN_TIMEOUT`], flushing what is buffered.
pub struct DualMetrics<L: Backend = StatsdBackend, N: Backend = OtelBackend> {
    registry: Arc<Registry<L, N>>,
    reloader: parking_lot::Mutex<reload::Reloader>,
    /// `dualmetrics.sdk.*`, unless `self_metrics = false`.
    self_metrics: Option<self_metrics::SelfMetrics<L, N>>,
    shut_down: AtomicBool,
}

impl<L: Backend, N: Backend> std::fmt::Debug for DualMetrics<L, N> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DualMetrics").field("mode", &self.mode()).finish()
    }
}

impl DualMetrics {
    /// A builder; see [`DualMetricsBuilder`].
    pub fn builder() -> DualMetricsBuilder {
        DualMetricsBuilder::new()
    }
}

impl<L: Backend, N: Backend> DualMetrics<L, N> {
    pub(crate) fn from_registry(registry: Arc<Registry<L, N>>, reloader: reload::Reloader) -> Self {
        let (enabled, interval) = {
            let config = registry.config.read();
            (config.self_metrics, config.statsd.flush_interval)
        };
        let self_metrics = enabled
            .then(|| self_metrics::SelfMetrics::start(&registry, interval))
            .and_then(|started| {
                started
                    .map_err(|e| tracing::warn!(error = %e, "dualmetrics self-metrics not started"))
                    .ok()
            });
        DualMetrics {
            registry,
            reloader: parking_lot::Mutex::new(reloader),
            self_metrics,
            shut_down: AtomicBool::new(false),
        }
    }

    /// Starts building a [`Counter`].
    pub fn counter(&self, name: &str) -> InstrumentBuilder<'_, Counter<L, N>, L, N> {
        InstrumentBuilder::new(&self.registry, name)
    }

    /// Starts building an [`UpDownCounter`].
    pub fn up_down_counter(&self, name: &str) -> InstrumentBuilder<'_, UpDownCounter<L, N>, L, N> {
        InstrumentBuilder::new(&self.registry, name)
    }

    /// Starts building a [`Gauge`].
    pub fn gauge(&self, name: &str) -> InstrumentBuilder<'_, Gauge<L, N>, L, N> {
        InstrumentBuilder::new(&self.registry, name)
    }

    /// Starts building a [`Histogram`].
    pub fn histogram(&self, name: &str) -> InstrumentBuilder<'_, Histogram<L, N>, L, N> {
        InstrumentBuilder::new(&self.registry, name)
    }

    /// The global mode.
    pub fn mode(&self) -> Mode {
        self.registry.config.read().mode
    }

    /// Switches every instrument to `mode` at once, without restart. Measurements recorded
    /// before the switch still reach the pipelines that were active when they were recorded.
    ///
    /// Instruments whose [rule](crate::rules) pins a mode keep it: to move them, change the rule
    /// and [`reload`](Self::reload). The mode set here outranks every configuration layer, so a
    /// later reload does not undo it (an emergency rollback stays rolled back).
    pub fn set_mode(&self, mode: Mode) {
        self.registry.set_mode(mode);
    }

    /// The emergency switch: sends **every** instrument, including those a rule pins, to `mode`
    /// until `force_mode(None)`, which returns each to its rule's pin or the global mode. Reloads
    /// keep the forced mode in force. Like [`set_mode`](Self::set_mode), it costs emits nothing
    /// and attributes each measurement to the pipelines active when it was recorded.
    pub fn force_mode(&self, mode: Option<Mode>) {
        self.registry.force_mode(mode);
    }

    /// The mode given to [`force_mode`](Self::force_mode), if one is in force.
    pub fn forced_mode(&self) -> Option<Mode> {
        self.registry.forced_mode()
    }

    /// Re-reads the configuration the builder was given (the file, the environment unless fixed
    /// with `with_env_vars`, then the builder calls on top) and applies it without restart: the
    /// global mode (unless [`set_mode`](Self::set_mode) was called) and the per-metric rules are
    /// re-resolved for every instrument. Settings the running pipelines are built from (addresses,
    /// endpoints, prefix, tags, and the names and temporality of instruments already registered)
    /// are listed in [`ReloadOutcome::needs_restart`] and take effect at the next start.
    ///
    /// # Errors
    /// An unreadable file, bad TOML or an invalid value: the configuration in force stays, the
    /// error is logged once and counted in [`TelemetrySnapshot::reloads_failed`].
    pub fn reload(&self) -> Result<ReloadOutcome, BuildError> {
        reload::reload(&self.registry)
    }

    /// The configuration in force.
    pub fn config(&self) -> Config {
        self.registry.config.read().clone()
    }

    /// Every registered instrument with its StatsD and OTel names, kind, unit, tag keys and
    /// mode: the comparator's input.
    pub fn catalog(&self) -> catalog::Catalog {
        self.registry.catalog()
    }

    /// Writes [`catalog`](Self::catalog) as pretty JSON to `path`.
    ///
    /// # Errors
    /// The file cannot be written.
    pub fn write_catalog(&self, path: impl AsRef<std::path::Path>) -> std::io::Result<()> {
        let json = serde_json::to_string_pretty(&self.catalog()).map_err(std::io::Error::other)?;
        std::fs::write(path, json + "\n")
    }

    /// The SDK's own counters: what was sent, and what was dropped and why.
    pub fn telemetry(&self) -> TelemetrySnapshot {
        self.registry.ctx.telemetry.snapshot()
    }

    /// Sends what is buffered now: a StatsD flush and an OTLP collect-and-export.
    ///
    /// # Errors
    /// The OTLP export failed (the StatsD side counts its own socket failures).
    pub fn flush(&self) -> Result<(), ShutdownError> {
        if let Some(s) = &self.self_metrics {
            s.update();
        }
        let legacy = self.registry.ctx.legacy.flush();
        self.registry.ctx.new.flush()?;
        legacy
    }

    /// Flushes both pipelines and stops them, within `deadline` (both run in parallel).
    /// Measurements recorded afterwards are dropped and counted.
    ///
    /// # Errors
    /// [`ShutdownError::AlreadyShutdown`], or a pipeline that failed or missed the deadline.
    pub fn shutdown(&self, deadline: Duration) -> Result<(), ShutdownError> {
        if self.shut_down.swap(true, Ordering::SeqCst) {
            return Err(ShutdownError::AlreadyShutdown);
        }
        self.reloader.lock().stop();
        if let Some(s) = &self.self_metrics {
            s.stop();
        }
        self.registry.close_all();
        let start = Instant::now();
        let ctx = Arc::clone(&self.registry.ctx);
        let new = std::thread::spawn(move || ctx.new.shutdown(deadline));
        let legacy = self.registry.ctx.legacy.shutdown(deadline);
        let remaining = deadline.saturating_sub(start.elapsed());
        let until = Instant::now() + remaining;
        while !new.is_finished() && Instant::now() < until {
            std::thread::sleep(Duration::from_millis(1));
        }
        if !new.is_finished() {
            return Err(ShutdownError::Timeout { backend: N::NAME, deadline });
        }
        let new = new.join().unwrap_or_else(|_| {
            Err(ShutdownError::Internal { backend: N::NAME, reason: "shutdown panicked".into() })
        });
        legacy?;
        new
    }

    /// The two pipelines, legacy then new: with [`InMemory`] pipelines, what each received.
    pub fn pipelines(&self) -> (&L, &N) {
        (&self.registry.ctx.legacy, &self.registry.ctx.new)
    }
}

impl<L: Backend, N: Backend> Drop for DualMetrics<L, N> {
    fn drop(&mut self) {
        if !self.shut_down.load(Ordering::SeqCst) {
            if let Err(e) = self.shutdown(config::DEFAULT_SHUTDOWN_TIMEOUT) {
                tracing::warn!(error = %e, "dualmetrics shutdown on drop");
            }
        }
    }
}
