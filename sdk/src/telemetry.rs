//! Self-telemetry: every point that does not leave the process is counted here, by reason.
//!
//! Counters are plain relaxed atomics updated off the hot path (by the flusher and the exporter)
//! or on its rare failure branches (an invalid value, a new series past the cardinality limit),
//! so recording a valid point touches none of them. [`crate::DualMetrics::telemetry`] returns a
//! [`TelemetrySnapshot`].
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::sync::Arc;

use parking_lot::Mutex;
use serde::Serialize;

#[derive(Debug, Default)]
pub(crate) struct Telemetry {
    pub invalid_value: AtomicU64,
    pub invalid_tags: AtomicU64,
    pub after_shutdown: AtomicU64,
    pub cardinality_overflow: AtomicU64,
    /// Overflowed emits per metric (the metric's counter, created at its first overflow).
    pub overflow_by_metric: Mutex<BTreeMap<String, Arc<AtomicU64>>>,
    /// Cumulative metrics that passed `cumulative_series_warning`, in warning order.
    pub cumulative_series_warned: Mutex<Vec<String>>,
    /// Series that delta instruments forgot after an export.
    pub series_evicted: AtomicU64,
    pub adapter_dropped: AtomicU64,
    pub reloads_ok: AtomicU64,
    pub reloads_failed: AtomicU64,
    pub last_reload_error: Mutex<Option<String>>,
    /// Cumulative series whose zero point has not been exported yet (not telemetry: what makes
    /// an explicit flush or the shutdown export twice).
    pub zero_points_pending: AtomicU64,
    /// Set while an explicit flush or the shutdown collects the export of the pending zero
    /// points (not telemetry): cumulative counters then observe only their series with a zero
    /// point pending, and every series in the export that follows.
    pub zero_points_only: AtomicBool,
    pub statsd: StatsdStats,
    pub otlp: OtlpStats,
}

#[derive(Debug, Default)]
pub(crate) struct StatsdStats {
    pub flushes: AtomicU64,
    pub lines_sent: AtomicU64,
    pub packets_sent: AtomicU64,
    pub bytes_sent: AtomicU64,
    pub lines_dropped_socket: AtomicU64,
    pub lines_dropped_queue_full: AtomicU64,
    pub samples_sampled_out: AtomicU64,
    pub samples_skipped_by_rate: AtomicU64,
    pub lines_dropped_oversize: AtomicU64,
    pub send_errors_queue_full: AtomicU64,
    pub send_errors_socket: AtomicU64,
    pub pacing_budget_exceeded: AtomicU64,
    pub last_flush_packets: AtomicU64,
    pub last_flush_bytes: AtomicU64,
    pub last_flush_send_micros: AtomicU64,
    pub max_flush_packets: AtomicU64,
    pub largest_burst_packets: AtomicU64,
    pub last_error: Mutex<Option<String>>,
}

#[derive(Debug, Default)]
pub(crate) struct OtlpStats {
    pub exports_ok: AtomicU64,
    pub exports_failed: AtomicU64,
    pub exports_timed_out: AtomicU64,
    pub exports_over_interval: AtomicU64,
    pub points_exported: AtomicU64,
    pub points_failed: AtomicU64,
    pub points_timed_out: AtomicU64,
    pub last_export_micros: AtomicU64,
    pub last_error: Mutex<Option<String>>,
}

/// A copy of the SDK's own counters at one moment.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct TelemetrySnapshot {
    /// Values dropped at the facade: NaN, infinite, or negative for a histogram.
    pub dropped_invalid_value: u64,
    /// Unbound emits dropped because a tag key is invalid.
    pub dropped_invalid_tags: u64,
    /// Emits after shutdown (dropped).
    pub dropped_after_shutdown: u64,
    /// Emits for a new tag set past the cardinality limit, recorded into the overflow series.
    pub cardinality_overflow: u64,
    /// [`cardinality_overflow`](Self::cardinality_overflow) by metric name (metrics that never
    /// overflowed are absent).
    pub cardinality_overflow_by_metric: BTreeMap<String, u64>,
    /// Cumulative metrics that passed `cumulative_series_warning` series (each logged once).
    pub cumulative_series_warnings: Vec<String>,
    /// Series forgotten by delta instruments: idle for a whole export interval and held by no
    /// bound handle (their last values were exported and flushed first).
    pub series_evicted: u64,
    /// Measurements an adapter (`metrics_rs`, [`crate::cadence_sink`]) could not map onto
    /// an instrument: an unparsable StatsD line, a StatsD set, a name that is invalid or registered
    /// with another kind, a negative counter increment (dropped).
    pub dropped_by_adapter: u64,
    /// Configuration reloads applied ([`crate::DualMetrics::reload`], file watch, SIGHUP).
    pub reloads_ok: u64,
    /// Configuration reloads refused (unreadable file, bad TOML, bad value); the last good
    /// configuration stayed in force.
    pub reloads_failed: u64,
    /// Why the last refused reload was refused, if any reload was.
    pub last_reload_error: Option<String>,
    /// StatsD pipeline.
    pub statsd: StatsdSnapshot,
    /// OTLP pipeline.
    pub otlp: OtlpSnapshot,
}

/// StatsD pipeline counters.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct StatsdSnapshot {
    /// Completed flushes.
    pub flushes: u64,
    /// Lines the socket accepted.
    pub lines_sent: u64,
    /// Datagrams the socket accepted.
    pub packets_sent: u64,
    /// Bytes the socket accepted.
    pub bytes_sent: u64,
    /// Lines lost to a socket error: the send failed, or (UDP) the daemon's port answered
    /// "unreachable" for their datagram (connection refused). With the daemon gone, this equals
    /// lines produced − lines received exactly over Unix sockets and UDP loopback.
    pub lines_dropped_socket: u64,
    /// Lines lost because the socket's send queue was full (`EAGAIN`/`ENOBUFS`: a Unix
    /// daemon that does not read fast enough, a saturated send buffer).
    pub lines_dropped_queue_full: u64,
    /// Histogram samples left out of a full interval's reservoir; the interval's lines declare
    /// the sample rate that accounts for them.
    pub samples_sampled_out: u64,
    /// Histogram samples left out by a metric's configured sample rate (`statsd_sample_rate`);
    /// the lines declare the rate, so the daemon's count is right in expectation.
    pub samples_skipped_by_rate: u64,
    /// Lines longer than `statsd.max_packet_bytes` on their own (dropped: no datagram of the
    /// configured size can carry them).
    pub lines_dropped_oversize: u64,
    /// Datagrams the socket refused with `EAGAIN`/`EWOULDBLOCK`/`ENOBUFS` (their lines are in
    /// `lines_dropped_queue_full`).
    pub send_errors_queue_full: u64,
    /// Datagrams lost to any other socket error, `ECONNREFUSED` included (their lines are in
    /// `lines_dropped_socket`).
    pub send_errors_socket: u64,
    /// Flushes whose bytes did not fit in the pacing window at `statsd.pacing_bytes_per_ms`, so
    /// they were sent faster than the budget (raise the budget or the flush interval, or reduce
    /// volume: value packing, a sample rate).
    pub pacing_budget_exceeded: u64,
    /// Datagrams the socket accepted in the last flush.
    pub last_flush_packets: u64,
    /// Bytes the socket accepted in the last flush.
    pub last_flush_bytes: u64,
    /// How long the last flush took to send its datagrams (paced), in microseconds.
    pub last_flush_send_micros: u64,
    /// The most datagrams any one flush sent.
    pub max_flush_packets: u64,
    /// The largest burst: the most datagrams sent back to back, without a pacing pause between
    /// them, in any flush so far. Unpaced, it is the largest flush.
    pub largest_burst_packets: u64,
    /// The last socket error, if any.
    pub last_error: Option<String>,
}

/// OTLP pipeline counters.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct OtlpSnapshot {
    /// Exports the collector accepted.
    pub exports_ok: u64,
    /// Exports that failed or timed out.
    pub exports_failed: u64,
    /// Of `exports_failed`, those that failed by a timeout (the exporter's deadline or a
    /// `DeadlineExceeded`/"Timeout expired" gRPC status).
    pub exports_timed_out: u64,
    /// Exports (successful or not) that took longer than the export interval: a slow or hanging
    /// collector stretches the export cadence by that much (the periodic reader waits; at most
    /// `otlp.timeout_ms` per export).
    pub exports_over_interval: u64,
    /// Data points in accepted exports.
    pub points_exported: u64,
    /// Data points in failed exports (lost for delta; resent in the next export for cumulative).
    pub points_failed: u64,
    /// Of `points_failed`, those in exports that timed out.
    pub points_timed_out: u64,
    /// Duration of the last export, in microseconds.
    pub last_export_micros: u64,
    /// The last export error, if any.
    pub last_error: Option<String>,
}

impl Telemetry {
    /// The overflow counter of `metric`, created on its first overflow.
    pub(crate) fn overflow_counter(&self, metric: &str) -> Arc<AtomicU64> {
        Arc::clone(self.overflow_by_metric.lock().entry(metric.to_owned()).or_default())
    }

    pub(crate) fn snapshot(&self) -> TelemetrySnapshot {
        let s = &self.statsd;
        let o = &self.otlp;
        TelemetrySnapshot {
            dropped_invalid_value: self.invalid_value.load(Relaxed),
            dropped_invalid_tags: self.invalid_tags.load(Relaxed),
            dropped_after_shutdown: self.after_shutdown.load(Relaxed),
            cardinality_overflow: self.cardinality_overflow.load(Relaxed),
            cardinality_overflow_by_metric: self
                .overflow_by_metric
                .lock()
                .iter()
                .map(|(k, v)| (k.clone(), v.load(Relaxed)))
                .collect(),
            cumulative_series_warnings: self.cumulative_series_warned.lock().clone(),
            series_evicted: self.series_evicted.load(Relaxed),
            dropped_by_adapter: self.adapter_dropped.load(Relaxed),
            reloads_ok: self.reloads_ok.load(Relaxed),
            reloads_failed: self.reloads_failed.load(Relaxed),
            last_reload_error: self.last_reload_error.lock().clone(),
            statsd: StatsdSnapshot {
                flushes: s.flushes.load(Relaxed),
                lines_sent: s.lines_sent.load(Relaxed),
                packets_sent: s.packets_sent.load(Relaxed),
                bytes_sent: s.bytes_sent.load(Relaxed),
                lines_dropped_socket: s.lines_dropped_socket.load(Relaxed),
                lines_dropped_queue_full: s.lines_dropped_queue_full.load(Relaxed),
                samples_sampled_out: s.samples_sampled_out.load(Relaxed),
                samples_skipped_by_rate: s.samples_skipped_by_rate.load(Relaxed),
                lines_dropped_oversize: s.lines_dropped_oversize.load(Relaxed),
                send_errors_queue_full: s.send_errors_queue_full.load(Relaxed),
                send_errors_socket: s.send_errors_socket.load(Relaxed),
                pacing_budget_exceeded: s.pacing_budget_exceeded.load(Relaxed),
                last_flush_packets: s.last_flush_packets.load(Relaxed),
                last_flush_bytes: s.last_flush_bytes.load(Relaxed),
                last_flush_send_micros: s.last_flush_send_micros.load(Relaxed),
                max_flush_packets: s.max_flush_packets.load(Relaxed),
                largest_burst_packets: s.largest_burst_packets.load(Relaxed),
                last_error: s.last_error.lock().clone(),
            },
            otlp: OtlpSnapshot {
                exports_ok: o.exports_ok.load(Relaxed),
                exports_failed: o.exports_failed.load(Relaxed),
                exports_timed_out: o.exports_timed_out.load(Relaxed),
                exports_over_interval: o.exports_over_interval.load(Relaxed),
                points_exported: o.points_exported.load(Relaxed),
                points_failed: o.points_failed.load(Relaxed),
                points_timed_out: o.points_timed_out.load(Relaxed),
                last_export_micros: o.last_export_micros.load(Relaxed),
                last_error: o.last_error.lock().clone(),
            },
        }
    }
}
