//! The shim's own metrics, namespace `dualmetrics.shim.*`: atomics (`Relaxed`) updated by every
//! stage, read through [`Telemetry::snapshot`] and exported as OTLP metrics with every flush.
//!
//! | metric | kind | attributes |
//! |---|---|---|
//! | `dualmetrics.shim.packets` | counter | `transport` = `udp`/`tcp`/`unix` |
//! | `dualmetrics.shim.lines` | counter | (accepted lines) |
//! | `dualmetrics.shim.bad_lines` | counter | `reason` = a parser reason, `invalid_name`, `negative_counter`, `overflow` |
//! | `dualmetrics.shim.drops` | counter | `reason` = `queue_full`, `oversized_packet`, `series_limit`, `set_limit`, `export_failed`, `export_queue_full`, `otlp_in_series_limit`, `otlp_in_unsupported`, `mapping_drop` (an `action: drop` rule of the mapping file), `shutdown_deadline` (points still queued for export when the shutdown deadline passed) |
//! | `dualmetrics.shim.overflow_lines` | counter | lines folded into an `otel.metric.overflow` series |
//! | `dualmetrics.shim.series` | gauge | live StatsD series |
//! | `dualmetrics.shim.otlp_in.series` | gauge | live delta→cumulative series |
//! | `dualmetrics.shim.tee.packets` / `.tee.errors` | counter | |
//! | `dualmetrics.shim.exports` / `.export.errors` | counter | |
//! | `dualmetrics.shim.mapping.reloads` / `.mapping.reload_errors` | counter | mapping file reloads applied / refused (the last good file stays) |
//! | `dualmetrics.shim.receive_errors` | counter | `transport`: socket receive errors other than "nothing to read" |
//! | `dualmetrics.shim.tcp.refused` / `.tcp.idle_closed` | counter | connections refused past `max_tcp_connections` / closed after `tcp_idle_timeout_ms` without data |
//! | `dualmetrics.shim.export.latency` | gauge, ms | last successful export |
use dualmetrics_model::statsd_parse::ParseError;
use opentelemetry_proto::tonic::common::v1::{any_value, AnyValue, KeyValue};
use opentelemetry_proto::tonic::metrics::v1::{
    metric, number_data_point, AggregationTemporality, Gauge, Metric, NumberDataPoint, Sum,
};
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Transports, in [`Telemetry::packets`] order.
pub const TRANSPORTS: [&str; 3] = ["udp", "tcp", "unix"];
/// Bad-line reasons beyond the parser's [`ParseError::REASONS`].
pub const EXTRA_BAD_LINE_REASONS: [&str; 3] = ["invalid_name", "negative_counter", "overflow"];
/// Drop reasons.
pub const DROP_REASONS: [&str; 10] = [
    "queue_full",
    "oversized_packet",
    "series_limit",
    "set_limit",
    "export_failed",
    "export_queue_full",
    "otlp_in_series_limit",
    "otlp_in_unsupported",
    "mapping_drop",
    "shutdown_deadline",
];

const N_BAD: usize = ParseError::REASONS.len() + EXTRA_BAD_LINE_REASONS.len();

/// A transport a packet came in on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transport {
    /// UDP.
    Udp = 0,
    /// TCP (one "packet" per read batch of lines).
    Tcp = 1,
    /// Unix datagram.
    Unix = 2,
}

/// Why something did not make it out (index into [`DROP_REASONS`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[allow(missing_docs)]
pub enum DropReason {
    QueueFull = 0,
    OversizedPacket = 1,
    SeriesLimit = 2,
    SetLimit = 3,
    ExportFailed = 4,
    ExportQueueFull = 5,
    OtlpInSeriesLimit = 6,
    OtlpInUnsupported = 7,
    MappingDrop = 8,
    ShutdownDeadline = 9,
}

/// A bad line: a parser error or a reason the aggregator found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BadLine {
    /// The parser refused it.
    Parse(ParseError),
    /// The name is not a valid OTel instrument name (`model::naming::validate_metric_name`).
    InvalidName,
    /// A counter increment below zero (OTLP counters are monotonic).
    NegativeCounter,
    /// A value that, weighted by its sample rate, is not a finite number.
    Overflow,
}

impl BadLine {
    fn index(self) -> usize {
        match self {
            BadLine::Parse(e) => e.index(),
            BadLine::InvalidName => ParseError::REASONS.len(),
            BadLine::NegativeCounter => ParseError::REASONS.len() + 1,
            BadLine::Overflow => ParseError::REASONS.len() + 2,
        }
    }

    /// The reason label.
    pub fn reason(self) -> &'static str {
        reason_label(self.index())
    }
}

fn reason_label(i: usize) -> &'static str {
    if i < ParseError::REASONS.len() {
        ParseError::REASONS[i]
    } else {
        EXTRA_BAD_LINE_REASONS[i - ParseError::REASONS.len()]
    }
}

/// Every counter of the shim. Shared by all stages behind an `Arc`.
#[derive(Debug)]
pub struct Telemetry {
    started: Instant,
    packets: [AtomicU64; 3],
    lines: AtomicU64,
    bad_lines: [AtomicU64; N_BAD],
    drops: [AtomicU64; DROP_REASONS.len()],
    overflow_lines: AtomicU64,
    series: AtomicU64,
    otlp_in_series: AtomicU64,
    tee_packets: AtomicU64,
    tee_errors: AtomicU64,
    exports: AtomicU64,
    export_errors: AtomicU64,
    export_latency_us: AtomicU64,
    mapping_reloads: AtomicU64,
    mapping_reload_errors: AtomicU64,
    receive_errors: [AtomicU64; 3],
    tcp_refused: AtomicU64,
    tcp_idle_closed: AtomicU64,
    /// Points handed to the export queue and not yet exported or counted as dropped.
    export_pending: AtomicU64,
    last_log: Mutex<[Option<Instant>; N_BAD]>,
    last_refusal_log: Mutex<Option<Instant>>,
}

impl Default for Telemetry {
    fn default() -> Self {
        Telemetry {
            started: Instant::now(),
            packets: Default::default(),
            lines: AtomicU64::new(0),
            bad_lines: Default::default(),
            drops: Default::default(),
            overflow_lines: AtomicU64::new(0),
            series: AtomicU64::new(0),
            otlp_in_series: AtomicU64::new(0),
            tee_packets: AtomicU64::new(0),
            tee_errors: AtomicU64::new(0),
            exports: AtomicU64::new(0),
            export_errors: AtomicU64::new(0),
            export_latency_us: AtomicU64::new(0),
            mapping_reloads: AtomicU64::new(0),
            mapping_reload_errors: AtomicU64::new(0),
            receive_errors: Default::default(),
            tcp_refused: AtomicU64::new(0),
            tcp_idle_closed: AtomicU64::new(0),
            export_pending: AtomicU64::new(0),
            last_log: Mutex::new([None; N_BAD]),
            last_refusal_log: Mutex::new(None),
        }
    }
}

/// How often one bad-line reason is logged (with a sample of the line).
pub const BAD_LINE_LOG_INTERVAL: Duration = Duration::from_secs(10);

impl Telemetry {
    pub(crate) fn packet(&self, t: Transport) {
        self.packets[t as usize].fetch_add(1, Relaxed);
    }
    pub(crate) fn lines(&self, n: u64) {
        self.lines.fetch_add(n, Relaxed);
    }
    pub(crate) fn count_drop(&self, reason: DropReason, n: u64) {
        self.drops[reason as usize].fetch_add(n, Relaxed);
    }
    pub(crate) fn overflow_line(&self) {
        self.overflow_lines.fetch_add(1, Relaxed);
    }
    pub(crate) fn set_series(&self, n: usize) {
        self.series.store(n as u64, Relaxed);
    }
    pub(crate) fn set_otlp_in_series(&self, n: usize) {
        self.otlp_in_series.store(n as u64, Relaxed);
    }
    pub(crate) fn tee(&self, ok: bool) {
        if ok { &self.tee_packets } else { &self.tee_errors }.fetch_add(1, Relaxed);
    }
    pub(crate) fn export_ok(&self, latency: Duration) {
        self.exports.fetch_add(1, Relaxed);
        self.export_latency_us.store(latency.as_micros() as u64, Relaxed);
    }
    pub(crate) fn mapping_reload(&self, ok: bool) {
        if ok { &self.mapping_reloads } else { &self.mapping_reload_errors }.fetch_add(1, Relaxed);
    }
    pub(crate) fn export_error(&self) {
        self.export_errors.fetch_add(1, Relaxed);
    }
    /// Counts a receive error of a socket other than "nothing to read" (logged at debug).
    pub(crate) fn receive_error(&self, t: Transport, e: &std::io::Error) {
        self.receive_errors[t as usize].fetch_add(1, Relaxed);
        tracing::debug!(transport = TRANSPORTS[t as usize], error = %e, "receive error");
    }
    /// Counts a TCP connection refused past the limit; logs at most once per
    /// [`BAD_LINE_LOG_INTERVAL`] (a client reconnecting in a loop would flood the log).
    pub(crate) fn tcp_refused(&self, limit: usize) {
        let total = self.tcp_refused.fetch_add(1, Relaxed) + 1;
        let now = Instant::now();
        let Ok(mut last) = self.last_refusal_log.try_lock() else { return };
        if last.is_some_and(|t| now.duration_since(t) < BAD_LINE_LOG_INTERVAL) {
            return;
        }
        *last = Some(now);
        tracing::warn!(
            limit,
            total,
            "tcp connection refused: max_tcp_connections open (logged at most every \
             {BAD_LINE_LOG_INTERVAL:?})"
        );
    }
    pub(crate) fn tcp_idle_closed(&self) {
        self.tcp_idle_closed.fetch_add(1, Relaxed);
    }
    /// `n` points entered the export queue.
    pub(crate) fn export_queued(&self, n: u64) {
        self.export_pending.fetch_add(n, Relaxed);
    }
    /// `n` queued points were exported or counted as dropped.
    pub(crate) fn export_settled(&self, n: u64) {
        let _ = self.export_pending.fetch_update(Relaxed, Relaxed, |p| Some(p.saturating_sub(n)));
    }
    /// Counts every point still queued for export as a `shutdown_deadline` drop.
    pub(crate) fn drop_pending_exports(&self) -> u64 {
        let n = self.export_pending.swap(0, Relaxed);
        self.count_drop(DropReason::ShutdownDeadline, n);
        n
    }

    /// Counts a bad line and logs it, at most once per [`BAD_LINE_LOG_INTERVAL`] per reason,
    /// with a sample of the line (first 200 bytes, lossily decoded).
    pub(crate) fn bad_line(&self, why: BadLine, line: &[u8]) {
        let i = why.index();
        self.bad_lines[i].fetch_add(1, Relaxed);
        let now = Instant::now();
        let Ok(mut last) = self.last_log.try_lock() else { return };
        if last[i].is_some_and(|t| now.duration_since(t) < BAD_LINE_LOG_INTERVAL) {
            return;
        }
        last[i] = Some(now);
        drop(last);
        let sample = String::from_utf8_lossy(&line[..line.len().min(200)]);
        tracing::warn!(
            reason = why.reason(),
            total = self.bad_lines[i].load(Relaxed),
            sample = %sample,
            "bad statsd line (logged at most every {BAD_LINE_LOG_INTERVAL:?} per reason)"
        );
    }

    /// A point-in-time copy of every counter.
    pub fn snapshot(&self) -> TelemetrySnapshot {
        let by = |arr: &[AtomicU64], label: &dyn Fn(usize) -> &'static str| {
            arr.iter()
                .enumerate()
                .map(|(i, v)| (label(i).to_owned(), v.load(Relaxed)))
                .collect::<BTreeMap<_, _>>()
        };
        TelemetrySnapshot {
            packets: by(&self.packets, &|i| TRANSPORTS[i]),
            lines: self.lines.load(Relaxed),
            bad_lines: by(&self.bad_lines, &reason_label),
            drops: by(&self.drops, &|i| DROP_REASONS[i]),
            overflow_lines: self.overflow_lines.load(Relaxed),
            series: self.series.load(Relaxed),
            otlp_in_series: self.otlp_in_series.load(Relaxed),
            tee_packets: self.tee_packets.load(Relaxed),
            tee_errors: self.tee_errors.load(Relaxed),
            exports: self.exports.load(Relaxed),
            export_errors: self.export_errors.load(Relaxed),
            export_latency: Duration::from_micros(self.export_latency_us.load(Relaxed)),
            mapping_reloads: self.mapping_reloads.load(Relaxed),
            mapping_reload_errors: self.mapping_reload_errors.load(Relaxed),
            receive_errors: by(&self.receive_errors, &|i| TRANSPORTS[i]),
            tcp_refused: self.tcp_refused.load(Relaxed),
            tcp_idle_closed: self.tcp_idle_closed.load(Relaxed),
        }
    }

    /// The counters as OTLP metrics (cumulative since the shim started).
    pub(crate) fn to_otlp(&self, start_ns: u64, now_ns: u64) -> Vec<Metric> {
        let s = self.snapshot();
        let _ = self.started;
        let point = |attrs: Vec<KeyValue>, v: f64| NumberDataPoint {
            attributes: attrs,
            start_time_unix_nano: start_ns,
            time_unix_nano: now_ns,
            value: Some(number_data_point::Value::AsInt(v as i64)),
            ..Default::default()
        };
        let counter = |name: &str, unit: &str, points: Vec<NumberDataPoint>| Metric {
            name: format!("dualmetrics.shim.{name}"),
            unit: unit.to_owned(),
            data: Some(metric::Data::Sum(Sum {
                data_points: points,
                aggregation_temporality: AggregationTemporality::Cumulative as i32,
                is_monotonic: true,
            })),
            ..Default::default()
        };
        let gauge = |name: &str, unit: &str, v: f64| Metric {
            name: format!("dualmetrics.shim.{name}"),
            unit: unit.to_owned(),
            data: Some(metric::Data::Gauge(Gauge {
                data_points: vec![NumberDataPoint {
                    time_unix_nano: now_ns,
                    value: Some(number_data_point::Value::AsDouble(v)),
                    ..Default::default()
                }],
            })),
            ..Default::default()
        };
        let labelled = |key: &str, m: &BTreeMap<String, u64>| {
            m.iter().map(|(k, v)| point(vec![kv(key, k)], *v as f64)).collect::<Vec<_>>()
        };
        vec![
            counter("packets", "{packet}", labelled("transport", &s.packets)),
            counter("lines", "{line}", vec![point(vec![], s.lines as f64)]),
            counter("bad_lines", "{line}", labelled("reason", &s.bad_lines)),
            counter("drops", "1", labelled("reason", &s.drops)),
            counter("overflow_lines", "{line}", vec![point(vec![], s.overflow_lines as f64)]),
            counter("tee.packets", "{packet}", vec![point(vec![], s.tee_packets as f64)]),
            counter("tee.errors", "1", vec![point(vec![], s.tee_errors as f64)]),
            counter("exports", "1", vec![point(vec![], s.exports as f64)]),
            counter("export.errors", "1", vec![point(vec![], s.export_errors as f64)]),
            counter("mapping.reloads", "1", vec![point(vec![], s.mapping_reloads as f64)]),
            counter(
                "mapping.reload_errors",
                "1",
                vec![point(vec![], s.mapping_reload_errors as f64)],
            ),
            counter("receive_errors", "1", labelled("transport", &s.receive_errors)),
            counter("tcp.refused", "{connection}", vec![point(vec![], s.tcp_refused as f64)]),
            counter(
                "tcp.idle_closed",
                "{connection}",
                vec![point(vec![], s.tcp_idle_closed as f64)],
            ),
            gauge("series", "{series}", s.series as f64),
            gauge("otlp_in.series", "{series}", s.otlp_in_series as f64),
            gauge("export.latency", "ms", s.export_latency.as_secs_f64() * 1000.0),
        ]
    }
}

pub(crate) fn kv(key: &str, value: &str) -> KeyValue {
    KeyValue {
        key: key.to_owned(),
        value: Some(AnyValue { value: Some(any_value::Value::StringValue(value.to_owned())) }),
        ..Default::default()
    }
}

/// A copy of the shim's counters (see the module table).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
#[non_exhaustive]
pub struct TelemetrySnapshot {
    /// Packets by transport.
    pub packets: BTreeMap<String, u64>,
    /// Accepted lines.
    pub lines: u64,
    /// Bad lines by reason.
    pub bad_lines: BTreeMap<String, u64>,
    /// Drops by reason.
    pub drops: BTreeMap<String, u64>,
    /// Lines folded into an overflow series.
    pub overflow_lines: u64,
    /// Live StatsD series.
    pub series: u64,
    /// Live OTLP-in series.
    pub otlp_in_series: u64,
    /// Datagrams forwarded to the legacy daemon.
    pub tee_packets: u64,
    /// Datagrams the tee failed to send.
    pub tee_errors: u64,
    /// Successful exports.
    pub exports: u64,
    /// Failed export attempts.
    pub export_errors: u64,
    /// Latency of the last successful export.
    pub export_latency: Duration,
    /// Mapping file reloads applied.
    pub mapping_reloads: u64,
    /// Mapping file reloads refused (bad file; the last good one stays).
    pub mapping_reload_errors: u64,
    /// Socket receive errors by transport (other than "nothing to read").
    pub receive_errors: BTreeMap<String, u64>,
    /// TCP connections refused past `max_tcp_connections`.
    pub tcp_refused: u64,
    /// TCP connections closed after `tcp_idle_timeout_ms` without data.
    pub tcp_idle_closed: u64,
}

impl TelemetrySnapshot {
    /// Bad lines for one reason (0 when unknown).
    pub fn bad(&self, reason: &str) -> u64 {
        self.bad_lines.get(reason).copied().unwrap_or(0)
    }
    /// Drops for one reason (0 when unknown).
    pub fn dropped(&self, reason: &str) -> u64 {
        self.drops.get(reason).copied().unwrap_or(0)
    }
}
