//! A [`cadence::MetricSink`] that records every line a cadence `StatsdClient` writes through the
//! facade, so cadence call sites dual-emit unchanged: only the client's construction changes.
//!
//! ```no_run
//! use std::sync::Arc;
//! use cadence::prelude::*;
//! use cadence::StatsdClient;
//! use dualmetrics::{cadence_sink::DualSink, DualMetrics};
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let metrics = Arc::new(DualMetrics::builder().with_service_name("checkout").build()?);
//! // was: StatsdClient::from_sink("checkout", UdpMetricSink::from(...)?)
//! let client = StatsdClient::from_sink("", DualSink::new(Arc::clone(&metrics)));
//! client.count_with_tags("http.requests", 1).with_tag("route", "/cart").send();
//! client.time("http.latency", 12)?;
//! metrics.shutdown(std::time::Duration::from_secs(5))?;
//! # Ok(()) }
//! ```
//!
//! # Mapping
//! Each line is parsed with the shared parser ([`dualmetrics_model::statsd_parse`]); its tags
//! become the facade's tags.
//!
//! | line | facade |
//! |---|---|
//! | `c` | [`crate::Counter`]: the value divided by the sample rate, rounded (`k:1\|c\|@0.5` adds 2); a negative count cannot enter a monotonic counter and is dropped |
//! | `g` | [`crate::Gauge`]: a value sets it; `+n`/`-n` adjusts the series' current value (0 before the first value), kept by the sink as the reference daemon does |
//! | `ms` | [`crate::Histogram`] in `ms` (a StatsD timer again on the facade's side) |
//! | `h`, `d` | [`crate::Histogram`] without a unit (sent as the facade's `statsd.histogram_type`) |
//! | `s` | unsupported: OpenTelemetry has no set; dropped |
//!
//! The sample rate of a timer or histogram line is not applied: the sample is recorded once.
//! Every dropped line (unparsable, a set, a negative count, an invalid name or a name registered
//! with another kind) is counted in [`crate::TelemetrySnapshot::dropped_by_adapter`]; `emit`
//! never fails, never panics and never blocks on I/O (the facade sends from its own threads).
//!
//! # Prefixes
//! The cadence client's prefix is part of each line's name, and the facade adds its own
//! `statsd.prefix` to StatsD names. To keep a legacy name `checkout.http.requests` without a
//! double prefix, either keep the client's prefix and set no `statsd.prefix` (the OTLP name is
//! then `checkout.http.requests` too), or move it: `StatsdClient::from_sink("checkout", sink)`
//! with [`DualSink::strip_prefix`]`("checkout")` and `statsd.prefix = "checkout"`, which keeps the
//! StatsD name and gives OTLP the bare `http.requests`.
//!
//! # Cost
//! Instruments are registered once per (name, type); a line then costs a parse, a read-locked
//! lookup by the borrowed name and an unbound facade emit, without allocating. Gauge lines also
//! take the sink's gauge lock. The sink keeps one entry per metric name and, for gauges, one
//! current value per (name, tags) seen: a tag with unbounded values grows that map even though
//! the facade folds such series into its overflow series.
use std::hash::{BuildHasher, Hash, Hasher};
use std::io;
use std::sync::Arc;

use dualmetrics_model::statsd_line::StatsdType;
use dualmetrics_model::statsd_parse::{Parser, Value, DEFAULT_MAX_TAGS};
use hashbrown::HashMap;
use parking_lot::{Mutex, RwLock};

use super::{dropped, sanitize_name, telemetry_of};
use crate::telemetry::Telemetry;
use crate::{Counter, DualMetrics, Gauge, Histogram};

/// Tags per line the sink accepts (more is a dropped line): the parser's default.
pub const MAX_TAGS: usize = DEFAULT_MAX_TAGS;

type ByName<I> = RwLock<HashMap<Box<str>, Option<I>, foldhash::fast::RandomState>>;

/// A cadence sink that records into a [`DualMetrics`]; see the [module docs](self).
pub struct DualSink {
    metrics: Arc<DualMetrics>,
    telemetry: Arc<Telemetry>,
    parser: Parser,
    prefix: String,
    counters: ByName<Counter>,
    gauges: ByName<Gauge>,
    timers: ByName<Histogram>,
    histograms: ByName<Histogram>,
    /// Current gauge values by a hash of (name, tags), for `+n`/`-n` lines.
    gauge_values: Mutex<HashMap<u64, f64, foldhash::fast::RandomState>>,
    gauge_hasher: foldhash::fast::RandomState,
}

// `emit` never panics (and parking_lot locks do not poison), so a caught panic elsewhere cannot
// leave the sink in a broken state; cadence's `StatsdClient::from_sink` requires this.
impl std::panic::RefUnwindSafe for DualSink {}
impl std::panic::UnwindSafe for DualSink {}

impl std::fmt::Debug for DualSink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DualSink").field("prefix", &self.prefix).finish()
    }
}

impl DualSink {
    /// A sink over `metrics`. Keep a clone of the `Arc` to flush or shut down.
    pub fn new(metrics: impl Into<Arc<DualMetrics>>) -> Self {
        let metrics = metrics.into();
        DualSink {
            telemetry: telemetry_of(&metrics),
            metrics,
            parser: Parser { max_tags: MAX_TAGS, ..Parser::default() },
            prefix: String::new(),
            counters: RwLock::default(),
            gauges: RwLock::default(),
            timers: RwLock::default(),
            histograms: RwLock::default(),
            gauge_values: Mutex::default(),
            gauge_hasher: foldhash::fast::RandomState::default(),
        }
    }

    /// Removes `prefix` and the `.` after it from names that start with them (the cadence
    /// client's prefix), so the facade's names are bare. Defaults to removing nothing.
    pub fn strip_prefix(mut self, prefix: &str) -> Self {
        self.prefix = if prefix.is_empty() { String::new() } else { format!("{prefix}.") };
        self
    }

    /// The facade this sink records into.
    pub fn metrics(&self) -> &Arc<DualMetrics> {
        &self.metrics
    }

    fn record_line(&self, raw: &str) -> Result<(), ()> {
        let line = self.parser.parse(raw).map_err(|_| ())?;
        let name = line.name.strip_prefix(self.prefix.as_str()).unwrap_or(line.name);
        let mut buf = [("", ""); MAX_TAGS];
        let mut n = 0;
        for tag in line.tags() {
            *buf.get_mut(n).ok_or(())? = tag;
            n += 1;
        }
        let tags = &buf[..n];
        match line.ty {
            StatsdType::Counter => {
                let counter = self.instrument(&self.counters, name, |m, n| m.counter(n).build())?;
                for v in line.values() {
                    let Value::Number(v) = v else { return Err(()) };
                    let scaled = (v / line.sample_rate).round();
                    if !(scaled >= 0.0 && scaled.is_finite()) {
                        return Err(());
                    }
                    counter.add(scaled as u64, tags);
                }
            }
            StatsdType::Gauge => {
                let gauge = self.instrument(&self.gauges, name, |m, n| m.gauge(n).build())?;
                let mut h = self.gauge_hasher.build_hasher();
                name.hash(&mut h);
                tags.hash(&mut h);
                let series = h.finish();
                let mut values = self.gauge_values.lock();
                for v in line.values() {
                    let current = values.entry(series).or_insert(0.0);
                    let next = match v {
                        Value::Number(x) => x,
                        Value::Delta(d) => *current + d,
                        Value::Set(_) => return Err(()),
                    };
                    if next.is_finite() {
                        *current = next;
                    }
                    gauge.record(next, tags);
                }
            }
            StatsdType::Timer => {
                let timer = self.instrument(&self.timers, name, |m, n| {
                    m.histogram(n).with_unit("ms").build()
                })?;
                for v in line.values() {
                    let Value::Number(v) = v else { return Err(()) };
                    timer.record(v, tags);
                }
            }
            StatsdType::Histogram | StatsdType::Distribution => {
                let histogram =
                    self.instrument(&self.histograms, name, |m, n| m.histogram(n).build())?;
                for v in line.values() {
                    let Value::Number(v) = v else { return Err(()) };
                    histogram.record(v, tags);
                }
            }
            _ => return Err(()),
        }
        Ok(())
    }

    /// The instrument for `name`, registered with `build` on first sight (a refusal is
    /// remembered, so a bad name costs one registration attempt).
    fn instrument<I: Clone>(
        &self,
        cache: &ByName<I>,
        name: &str,
        build: impl FnOnce(&DualMetrics, &str) -> Result<I, crate::BuildError>,
    ) -> Result<I, ()> {
        if let Some(found) = cache.read().get(name) {
            return found.clone().ok_or(());
        }
        let mut w = cache.write();
        let made = w
            .entry(Box::from(name))
            .or_insert_with(|| sanitize_name(name).and_then(|n| build(&self.metrics, &n).ok()));
        made.clone().ok_or(())
    }
}

impl cadence::MetricSink for DualSink {
    /// Records the line (counted as dropped when it cannot be); always `Ok(line length)`.
    fn emit(&self, metric: &str) -> io::Result<usize> {
        // cadence sends one metric per call; a packet of several lines is accepted too.
        for raw in metric.split('\n').filter(|l| !l.trim().is_empty()) {
            if self.record_line(raw.trim_end_matches('\r')).is_err() {
                dropped(&self.telemetry);
            }
        }
        Ok(metric.len())
    }

    /// `StatsdClient::flush`: sends what both pipelines buffered now ([`DualMetrics::flush`]).
    fn flush(&self) -> io::Result<()> {
        self.metrics.flush().map_err(io::Error::other)
    }
}
