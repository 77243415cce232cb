//! Self-metrics: the SDK's own [telemetry](crate::TelemetrySnapshot) emitted as metrics named
//! `dualmetrics.sdk.*`, through the normal registry, so they follow the mode (and rules) like
//! any other instrument and reach both pipelines in dual mode.
//!
//! A thread wakes every [`interval`](SelfMetrics::start) (the StatsD flush interval), takes a
//! snapshot and records what changed since the previous one: counters get the delta of the
//! snapshot's counter, gauges the current value. [`crate::DualMetrics::flush`] and
//! [`crate::DualMetrics::shutdown`] also update them first, so an explicit flush carries the
//! counts up to that moment. Turn them off with `self_metrics = false`.
//!
//! | name | kind | tags | from |
//! |---|---|---|---|
//! | `dualmetrics.sdk.points.dropped` | counter | `backend=facade`, `reason=invalid_value` \| `invalid_tags` \| `after_shutdown` \| `adapter` | `dropped_invalid_value`, `dropped_invalid_tags`, `dropped_after_shutdown`, `dropped_by_adapter` |
//! | `dualmetrics.sdk.points.dropped` | counter | `backend=statsd`, `reason=socket_error` \| `queue_full` \| `oversize` | `statsd.lines_dropped_socket`, `statsd.lines_dropped_queue_full`, `statsd.lines_dropped_oversize` |
//! | `dualmetrics.sdk.points.dropped` | counter | `backend=otlp`, `reason=export_failure` \| `export_timeout` | `otlp.points_failed` (split by `otlp.points_timed_out`) |
//! | `dualmetrics.sdk.cardinality.overflow` | counter | | `cardinality_overflow` |
//! | `dualmetrics.sdk.statsd.lines.sent` | counter | | `statsd.lines_sent` |
//! | `dualmetrics.sdk.statsd.packets.sent` | counter | | `statsd.packets_sent` |
//! | `dualmetrics.sdk.statsd.bytes.sent` | counter (`By`) | | `statsd.bytes_sent` |
//! | `dualmetrics.sdk.statsd.samples.sampled_out` | counter | | `statsd.samples_sampled_out` |
//! | `dualmetrics.sdk.statsd.send.errors` | counter | `reason=queue_full` (`EAGAIN`/`ENOBUFS`) \| `socket` | `statsd.send_errors_queue_full`, `statsd.send_errors_socket` (datagrams) |
//! | `dualmetrics.sdk.statsd.pacing.budget_exceeded` | counter | | `statsd.pacing_budget_exceeded` (flushes) |
//! | `dualmetrics.sdk.statsd.flush.packets` | gauge | | `statsd.last_flush_packets` |
//! | `dualmetrics.sdk.statsd.flush.bytes` | gauge (`By`) | | `statsd.last_flush_bytes` |
//! | `dualmetrics.sdk.statsd.burst.largest` | gauge | | `statsd.largest_burst_packets` |
//! | `dualmetrics.sdk.otlp.exports` | counter | `result=ok` \| `failure` \| `timeout` | `otlp.exports_ok`, `otlp.exports_failed`, `otlp.exports_timed_out` |
//! | `dualmetrics.sdk.otlp.points.exported` | counter | | `otlp.points_exported` |
//! | `dualmetrics.sdk.otlp.export.latency` | gauge (`ms`) | | `otlp.last_export_micros` / 1000 |
//! | `dualmetrics.sdk.reloads` | counter | `result=ok` \| `failed` | `reloads_ok`, `reloads_failed` |
//!
//! OTLP points of a failed export are lost with delta temporality; with cumulative the next
//! successful export carries the running total, so `backend=otlp` drops then mean "late", not
//! "lost". The self-metrics' own lines and points are counted like any other.
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use parking_lot::{Condvar, Mutex};

use crate::backend::Backend;
use crate::error::BuildError;
use crate::registry::Registry;
use crate::telemetry::{Telemetry, TelemetrySnapshot};
use crate::{Counter, Gauge, InstrumentBuilder};

/// Prefix of every self-metric name.
pub const SELF_METRICS_PREFIX: &str = "dualmetrics.sdk";

struct Instruments<L: Backend, N: Backend> {
    dropped: Counter<L, N>,
    overflow: Counter<L, N>,
    lines_sent: Counter<L, N>,
    packets_sent: Counter<L, N>,
    bytes_sent: Counter<L, N>,
    sampled_out: Counter<L, N>,
    send_errors: Counter<L, N>,
    budget_exceeded: Counter<L, N>,
    flush_packets: Gauge<L, N>,
    flush_bytes: Gauge<L, N>,
    largest_burst: Gauge<L, N>,
    exports: Counter<L, N>,
    points_exported: Counter<L, N>,
    export_latency: Gauge<L, N>,
    reloads: Counter<L, N>,
}

struct Inner<L: Backend, N: Backend> {
    instruments: Instruments<L, N>,
    telemetry: Arc<Telemetry>,
    /// The snapshot the last update recorded up to.
    last: Mutex<TelemetrySnapshot>,
    stop: Mutex<bool>,
    wake: Condvar,
}

/// The self-metrics instruments and the thread that updates them.
pub(crate) struct SelfMetrics<L: Backend, N: Backend> {
    inner: Arc<Inner<L, N>>,
    thread: Mutex<Option<JoinHandle<()>>>,
}

/// Cardinality limit of every self-metric: they have at most eight tag sets (`points.dropped`), and
/// opentelemetry_sdk preallocates each instrument's tracker table to its limit, so the global
/// limit (10 000 by default) would cost about 6 MB for nothing.
const SELF_METRICS_CARDINALITY_LIMIT: usize = 16;

fn gauge<L: Backend, N: Backend>(
    registry: &Arc<Registry<L, N>>,
    name: &str,
    unit: &str,
    description: &str,
) -> Result<Gauge<L, N>, BuildError> {
    InstrumentBuilder::<Gauge<L, N>, L, N>::new(registry, &format!("{SELF_METRICS_PREFIX}.{name}"))
        .with_unit(unit)
        .with_description(description)
        .with_cardinality_limit(SELF_METRICS_CARDINALITY_LIMIT)
        .build()
}

fn counter<L: Backend, N: Backend>(
    registry: &Arc<Registry<L, N>>,
    name: &str,
    unit: &str,
    description: &str,
) -> Result<Counter<L, N>, BuildError> {
    InstrumentBuilder::<Counter<L, N>, L, N>::new(
        registry,
        &format!("{SELF_METRICS_PREFIX}.{name}"),
    )
    .with_unit(unit)
    .with_description(description)
    .with_cardinality_limit(SELF_METRICS_CARDINALITY_LIMIT)
    .build()
}

impl<L: Backend, N: Backend> SelfMetrics<L, N> {
    /// Registers the self-metrics and starts the thread that updates them every `interval`.
    pub(crate) fn start(
        registry: &Arc<Registry<L, N>>,
        interval: Duration,
    ) -> Result<Self, BuildError> {
        let instruments = Instruments {
            dropped: counter(
                registry,
                "points.dropped",
                "1",
                "points or lines that did not leave the process, by backend and reason",
            )?,
            overflow: counter(
                registry,
                "cardinality.overflow",
                "1",
                "emits folded into the overflow series past the cardinality limit",
            )?,
            lines_sent: counter(registry, "statsd.lines.sent", "1", "StatsD lines sent")?,
            packets_sent: counter(registry, "statsd.packets.sent", "1", "StatsD datagrams sent")?,
            bytes_sent: counter(registry, "statsd.bytes.sent", "By", "StatsD bytes sent")?,
            sampled_out: counter(
                registry,
                "statsd.samples.sampled_out",
                "1",
                "histogram samples represented by a declared sample rate",
            )?,
            send_errors: counter(
                registry,
                "statsd.send.errors",
                "1",
                "StatsD datagrams the socket refused, by reason",
            )?,
            budget_exceeded: counter(
                registry,
                "statsd.pacing.budget_exceeded",
                "1",
                "StatsD flushes sent faster than the pacing budget to end within the window",
            )?,
            flush_packets: gauge(
                registry,
                "statsd.flush.packets",
                "1",
                "datagrams of the last StatsD flush",
            )?,
            flush_bytes: gauge(
                registry,
                "statsd.flush.bytes",
                "By",
                "bytes of the last StatsD flush",
            )?,
            largest_burst: gauge(
                registry,
                "statsd.burst.largest",
                "1",
                "most StatsD datagrams sent back to back without a pacing pause",
            )?,
            exports: counter(registry, "otlp.exports", "1", "OTLP exports by result")?,
            points_exported: counter(
                registry,
                "otlp.points.exported",
                "1",
                "OTLP data points in accepted exports",
            )?,
            export_latency: InstrumentBuilder::<Gauge<L, N>, L, N>::new(
                registry,
                &format!("{SELF_METRICS_PREFIX}.otlp.export.latency"),
            )
            .with_unit("ms")
            .with_description("duration of the last OTLP export")
            .with_cardinality_limit(SELF_METRICS_CARDINALITY_LIMIT)
            .build()?,
            reloads: counter(registry, "reloads", "1", "configuration reloads by result")?,
        };
        let telemetry = Arc::clone(&registry.ctx.telemetry);
        let inner = Arc::new(Inner {
            instruments,
            telemetry,
            last: Mutex::new(TelemetrySnapshot::default()),
            stop: Mutex::new(false),
            wake: Condvar::new(),
        });
        let worker = Arc::clone(&inner);
        let thread = std::thread::Builder::new()
            .name("dualmetrics-self".into())
            .spawn(move || loop {
                {
                    let mut stop = worker.stop.lock();
                    if !*stop {
                        worker.wake.wait_for(&mut stop, interval);
                    }
                    if *stop {
                        break;
                    }
                }
                worker.update();
            })
            .map_err(|e| BuildError::Backend { backend: "self_metrics", reason: e.to_string() })?;
        Ok(SelfMetrics { inner, thread: Mutex::new(Some(thread)) })
    }

    /// Records what changed since the last update.
    pub(crate) fn update(&self) {
        self.inner.update();
    }

    /// Stops the thread after one last update.
    pub(crate) fn stop(&self) {
        *self.inner.stop.lock() = true;
        self.inner.wake.notify_all();
        if let Some(handle) = self.thread.lock().take() {
            let _ = handle.join();
        }
        self.inner.update();
    }
}

impl<L: Backend, N: Backend> Inner<L, N> {
    fn update(&self) {
        let mut last = self.last.lock();
        let now = self.telemetry.snapshot();
        let i = &self.instruments;
        let add = |c: &Counter<L, N>, new: u64, old: u64, tags: &[(&str, &str)]| {
            if new > old {
                c.add(new - old, tags);
            }
        };
        let facade = |reason| [("backend", "facade"), ("reason", reason)];
        add(
            &i.dropped,
            now.dropped_invalid_value,
            last.dropped_invalid_value,
            &facade("invalid_value"),
        );
        add(
            &i.dropped,
            now.dropped_invalid_tags,
            last.dropped_invalid_tags,
            &facade("invalid_tags"),
        );
        add(
            &i.dropped,
            now.dropped_after_shutdown,
            last.dropped_after_shutdown,
            &facade("after_shutdown"),
        );
        add(&i.dropped, now.dropped_by_adapter, last.dropped_by_adapter, &facade("adapter"));
        let (s, ls) = (&now.statsd, &last.statsd);
        add(
            &i.dropped,
            s.lines_dropped_socket,
            ls.lines_dropped_socket,
            &[("backend", "statsd"), ("reason", "socket_error")],
        );
        add(
            &i.dropped,
            s.lines_dropped_queue_full,
            ls.lines_dropped_queue_full,
            &[("backend", "statsd"), ("reason", "queue_full")],
        );
        add(
            &i.dropped,
            s.lines_dropped_oversize,
            ls.lines_dropped_oversize,
            &[("backend", "statsd"), ("reason", "oversize")],
        );
        add(
            &i.send_errors,
            s.send_errors_queue_full,
            ls.send_errors_queue_full,
            &[("reason", "queue_full")],
        );
        add(&i.send_errors, s.send_errors_socket, ls.send_errors_socket, &[("reason", "socket")]);
        add(&i.budget_exceeded, s.pacing_budget_exceeded, ls.pacing_budget_exceeded, &[]);
        if s.flushes > ls.flushes {
            i.flush_packets.record(s.last_flush_packets as f64, &[]);
            i.flush_bytes.record(s.last_flush_bytes as f64, &[]);
            i.largest_burst.record(s.largest_burst_packets as f64, &[]);
        }
        let (o, lo) = (&now.otlp, &last.otlp);
        add(
            &i.dropped,
            o.points_failed.saturating_sub(o.points_timed_out),
            lo.points_failed.saturating_sub(lo.points_timed_out),
            &[("backend", "otlp"), ("reason", "export_failure")],
        );
        add(
            &i.dropped,
            o.points_timed_out,
            lo.points_timed_out,
            &[("backend", "otlp"), ("reason", "export_timeout")],
        );
        add(&i.overflow, now.cardinality_overflow, last.cardinality_overflow, &[]);
        add(&i.lines_sent, s.lines_sent, ls.lines_sent, &[]);
        add(&i.packets_sent, s.packets_sent, ls.packets_sent, &[]);
        add(&i.bytes_sent, s.bytes_sent, ls.bytes_sent, &[]);
        add(&i.sampled_out, s.samples_sampled_out, ls.samples_sampled_out, &[]);
        add(&i.exports, o.exports_ok, lo.exports_ok, &[("result", "ok")]);
        add(
            &i.exports,
            o.exports_failed.saturating_sub(o.exports_timed_out),
            lo.exports_failed.saturating_sub(lo.exports_timed_out),
            &[("result", "failure")],
        );
        add(&i.exports, o.exports_timed_out, lo.exports_timed_out, &[("result", "timeout")]);
        add(&i.points_exported, o.points_exported, lo.points_exported, &[]);
        let exports = o.exports_ok + o.exports_failed;
        if exports > lo.exports_ok + lo.exports_failed {
            i.export_latency.record(o.last_export_micros as f64 / 1000.0, &[]);
        }
        add(&i.reloads, now.reloads_ok, last.reloads_ok, &[("result", "ok")]);
        add(&i.reloads, now.reloads_failed, last.reloads_failed, &[("result", "failed")]);
        *last = now;
    }
}
