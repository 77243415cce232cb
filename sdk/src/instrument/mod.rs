//! Instruments: registration does the work (names, tags, backend handles), emitting reads one
//! mode byte and writes atomics.
//!
//! Every instrument is a [`Core`] shared by its handles. A core owns each pipeline's part of the
//! instrument and a [`Table`] from tag set to [`Series`]; a series holds each pipeline's part for
//! one tag set. An unbound emit looks its series up (a hash of the borrowed tags and a read
//! lock); a bound handle already holds it. Then [`Core::record`] fans the value out by the mode
//! byte, to the pipelines' [`Pipeline::record`]: the pipelines are the core's type parameters
//! (StatsD and OTLP for every public handle), so the fan-out is static calls, inlined.
#[cfg(test)]
mod fanout_tests;
mod handles;
mod kinds;
mod table;
pub(crate) mod tags;

pub use handles::{
    BoundCounter, BoundGauge, BoundHistogram, BoundUpDownCounter, Counter, Gauge, Histogram,
    HistogramTimer, InstrumentBuilder, UpDownCounter,
};
pub(crate) use kinds::{CounterSpec, GaugeSpec, HistogramSpec, KindSpec, UpDownSpec};
pub(crate) use table::{Series, Table};

use std::sync::atomic::{AtomicBool, AtomicU64, AtomicU8, Ordering::Relaxed};
use std::sync::{Arc, OnceLock};

use dualmetrics_model::naming::validate_tag_key;
use dualmetrics_model::statsd_line::StatsdType;
use dualmetrics_model::MetricKind;

use crate::backend::otel::OtelBackend;
use crate::backend::statsd::StatsdBackend;
use crate::backend::{Emit, OnCollect, Pipeline};
use crate::config::Temporality;
use crate::cutover::{CLOSED, LEGACY_BIT, OTLP_BIT};
use crate::telemetry::Telemetry;
use tags::{hash_tags, TagKey, Tags};

/// Attribute that marks the series receiving tag sets past the cardinality limit, on both
/// pipelines (OpenTelemetry's own name for it).
pub const OVERFLOW_TAG: &str = "otel.metric.overflow";

/// What every instrument shares: its two pipelines (legacy and new) and the telemetry.
pub(crate) struct Context<L = StatsdBackend, N = OtelBackend> {
    pub legacy: L,
    pub new: N,
    pub telemetry: Arc<Telemetry>,
}

/// Registration-time facts about an instrument.
#[derive(Debug, Clone)]
pub struct Spec {
    pub name: String,
    pub description: String,
    pub unit: String,
    pub kind: MetricKind,
    pub statsd_name: String,
    /// The OpenTelemetry instrument name: the rule's `otel_name`, else `name`.
    pub otel_name: String,
    pub statsd_type: StatsdType,
    /// For histograms in a time unit: the factor to milliseconds.
    pub millis_factor: Option<f64>,
    pub cardinality_limit: usize,
    /// Series count past which a cumulative instrument logs its warning once (0: never).
    pub cumulative_series_warning: usize,
    /// OTLP temporality of this instrument: its rule's, else the global `otlp.temporality`.
    pub temporality: crate::config::Temporality,
    /// Explicit OTLP bucket boundaries (histograms only).
    pub boundaries: Option<Vec<f64>>,
    /// Share of histogram samples sent to StatsD (the rule's `statsd_sample_rate`, else 1).
    pub statsd_sample_rate: f64,
}

impl Spec {
    /// Whether the instrument's series are forgotten after each export: delta temporality,
    /// except up-down counters, which OpenTelemetry keeps cumulative and whose StatsD value is
    /// absolute.
    pub(crate) fn forgets(&self) -> bool {
        self.temporality == Temporality::Delta && self.kind != MetricKind::UpDownCounter
    }
}

/// The shared state of one instrument: its mode, its series, and its two pipelines' parts,
/// into which [`Core::record`] fans every valid emit out.
pub(crate) struct Core<K: KindSpec, L: Pipeline<K> = StatsdBackend, N: Pipeline<K> = OtelBackend> {
    /// Mode bits (`LEGACY_BIT | OTLP_BIT`, or `CLOSED`): the one load on every emit.
    pub mode: AtomicU8,
    pub spec: Spec,
    /// The legacy pipeline's part of the instrument.
    legacy: L::Instrument,
    /// The new pipeline's part of the instrument.
    new: N::Instrument,
    series: Arc<Table<K, L, N>>,
    /// Emits recorded into the overflow series, shared with the telemetry snapshot.
    overflowed: OnceLock<Arc<AtomicU64>>,
    warned_invalid_tags: AtomicBool,
    warned_series: AtomicBool,
    pub ctx: Arc<Context<L, N>>,
}

impl<K: KindSpec, L: Pipeline<K>, N: Pipeline<K>> Core<K, L, N> {
    pub(crate) fn new(spec: Spec, mode_bits: u8, ctx: Arc<Context<L, N>>) -> Self {
        let series = Arc::new(Table::new(Arc::clone(&ctx.telemetry)));
        let legacy = ctx.legacy.instrument(&spec, table::view(&series, |s| &s.legacy));
        let new = ctx.new.instrument(&spec, table::view(&series, |s| &s.new));
        L::switched(&legacy, mode_bits & LEGACY_BIT != 0);
        N::switched(&new, mode_bits & OTLP_BIT != 0);
        if spec.forgets() {
            let table: Arc<dyn OnCollect> = series.clone();
            ctx.new.on_collect(Arc::downgrade(&table));
        }
        Core {
            mode: AtomicU8::new(mode_bits),
            spec,
            legacy,
            new,
            series,
            overflowed: OnceLock::new(),
            warned_invalid_tags: AtomicBool::new(false),
            warned_series: AtomicBool::new(false),
            ctx,
        }
    }

    /// Records a valid `value` into the pipelines `mode` includes (a level kind keeps its level
    /// in the others too). `seen`: a bound handle records, or an earlier emit made the series.
    #[inline]
    pub(crate) fn record(&self, series: &Series<K, L, N>, mode: u8, value: K::Value, seen: bool) {
        let at = Emit { key: &series.key, seen };
        if mode & LEGACY_BIT != 0 {
            L::record(&self.legacy, &series.legacy, value, at);
        } else {
            L::record_off(&self.legacy, &series.legacy, value);
        }
        if mode & OTLP_BIT != 0 {
            N::record(&self.new, &series.new, value, at);
        } else {
            N::record_off(&self.new, &series.new, value);
        }
    }

    /// Runs `f` on the series for `tags`: found under a read lock, or created (validated, both
    /// pipelines resolved) on first use. Nothing runs when a tag key is invalid (counted). The
    /// flag tells `f` whether the series was found (an earlier emit made it) rather than made
    /// by this call ([`Emit::seen`]: the OTLP pipeline binds a delta series at its second emit).
    #[inline]
    pub(crate) fn with_series(&self, tags: Tags<'_>, f: impl FnOnce(&Series<K, L, N>, bool)) {
        let hash = hash_tags(&self.series.hasher, tags);
        if let Some(s) = Table::get(&self.series.map.read(), hash, tags) {
            return f(s, true);
        }
        if let Some(s) = self.create_series(hash, tags) {
            f(&s, false)
        }
    }

    #[cold]
    fn create_series(&self, hash: u64, tags: Tags<'_>) -> Option<Arc<Series<K, L, N>>> {
        if let Err(e) = self.validate_tags(tags) {
            self.ctx.telemetry.invalid_tags.fetch_add(1, Relaxed);
            if !self.warned_invalid_tags.swap(true, Relaxed) {
                tracing::error!(metric = %self.spec.name, error = %e, "dropping measurements with an invalid tag key (logged once per metric)");
            }
            return None;
        }
        // A full table stays full until a delta export forgets series: overflowed emits take
        // the read lock only.
        if self.series.map.read().len() >= self.spec.cardinality_limit {
            return Some(self.overflow_series());
        }
        let mut map = self.series.map.write();
        if let Some(s) = Table::get(&map, hash, tags) {
            return Some(Arc::clone(s));
        }
        if map.len() >= self.spec.cardinality_limit {
            drop(map);
            return Some(self.overflow_series());
        }
        let series = Arc::new(self.resolve(tags));
        let hasher = &self.series.hasher;
        map.insert_unique(hash, Arc::clone(&series), |s| s.key.hash_with(hasher));
        let len = map.len();
        drop(map);
        let threshold = self.spec.cumulative_series_warning;
        if !self.spec.forgets() && threshold > 0 && len >= threshold {
            self.warn_cumulative_series(len);
        }
        Some(series)
    }

    /// The series that takes every tag set past the cardinality limit, counted per emit and per
    /// metric; the first overflow of a metric is logged, naming the rule that raises its limit.
    #[cold]
    fn overflow_series(&self) -> Arc<Series<K, L, N>> {
        self.ctx.telemetry.cardinality_overflow.fetch_add(1, Relaxed);
        self.overflowed
            .get_or_init(|| {
                tracing::warn!(
                    metric = %self.spec.name,
                    limit = self.spec.cardinality_limit,
                    "cardinality limit reached: new tag sets of this metric go to the \
                     {OVERFLOW_TAG}=true series on both pipelines (logged once per metric; counted \
                     in telemetry cardinality_overflow_by_metric). To raise the limit: \
                     [[default.rules]] match = \"{}\" cardinality_limit = {}",
                    self.spec.name,
                    self.spec.cardinality_limit.saturating_mul(2),
                );
                self.ctx.telemetry.overflow_counter(&self.spec.name)
            })
            .fetch_add(1, Relaxed);
        Arc::clone(
            self.series.overflow.get_or_init(|| Arc::new(self.resolve(&[(OVERFLOW_TAG, "true")]))),
        )
    }

    /// Logs, once per metric, that a cumulative metric keeps more series than
    /// `cumulative_series_warning`, and records it in telemetry.
    #[cold]
    fn warn_cumulative_series(&self, series: usize) {
        if self.warned_series.swap(true, Relaxed) {
            return;
        }
        tracing::warn!(
            metric = %self.spec.name,
            series,
            threshold = self.spec.cumulative_series_warning,
            "cumulative metric keeps every series it has ever seen, in this process and in \
             OpenTelemetry's aggregation; delta temporality keeps only the series of recent \
             intervals: [[default.rules]] match = \"{}\" temporality = \"delta\"",
            self.spec.name,
        );
        self.ctx.telemetry.cumulative_series_warned.lock().push(self.spec.name.clone());
    }

    fn validate_tags(&self, tags: Tags<'_>) -> Result<(), crate::BuildError> {
        for (k, _) in tags {
            validate_tag_key(&self.spec.name, k)?;
        }
        Ok(())
    }

    /// A bound series for `tags`, validated (the error reaches the caller of `bind`).
    pub(crate) fn bind(&self, tags: Tags<'_>) -> Result<Arc<Series<K, L, N>>, crate::BuildError> {
        self.validate_tags(tags)?;
        let hash = hash_tags(&self.series.hasher, tags);
        if let Some(s) = Table::get(&self.series.map.read(), hash, tags) {
            return Ok(Arc::clone(s));
        }
        Ok(self.create_series(hash, tags).expect("validated tags always resolve"))
    }

    /// The series for `tags`, with each pipeline's part.
    fn resolve(&self, tags: Tags<'_>) -> Series<K, L, N> {
        Series {
            key: TagKey::from_borrowed(tags),
            legacy: L::series(&self.legacy),
            new: N::series(&self.new),
        }
    }

    /// The mode bits an emit records under, or `None` (counted) when the instrument is closed or
    /// the value is invalid: the one relaxed load of the hot path.
    #[inline]
    pub(crate) fn admit(&self, valid: bool) -> Option<u8> {
        let mode = self.mode.load(Relaxed);
        if mode == CLOSED {
            self.closed();
            return None;
        }
        if !valid {
            self.invalid();
            return None;
        }
        Some(mode)
    }

    /// Counts an emit that arrived after shutdown.
    #[cold]
    pub(crate) fn closed(&self) {
        self.ctx.telemetry.after_shutdown.fetch_add(1, Relaxed);
    }

    /// Counts a dropped invalid value.
    #[cold]
    pub(crate) fn invalid(&self) {
        self.ctx.telemetry.invalid_value.fetch_add(1, Relaxed);
    }

    /// Number of live series (tag sets) including the overflow series.
    pub(crate) fn series_count(&self) -> usize {
        self.series.map.read().len() + usize::from(self.series.overflow.get().is_some())
    }
}

/// The type-erased view of a core the registry keeps, for mode switches and catalogs.
pub(crate) trait AnyCore: Send + Sync {
    fn spec(&self) -> &Spec;
    fn set_mode_bits(&self, bits: u8);
    fn mode_bits(&self) -> u8;
    fn series_count(&self) -> usize;
    fn tag_keys(&self) -> Vec<String>;
    fn close(&self);
    fn as_any(self: Arc<Self>) -> Arc<dyn std::any::Any + Send + Sync>;
}

impl<K: KindSpec, L: Pipeline<K>, N: Pipeline<K>> AnyCore for Core<K, L, N> {
    fn spec(&self) -> &Spec {
        &self.spec
    }
    fn set_mode_bits(&self, bits: u8) {
        // Once closed, an instrument stays closed.
        let Ok(before) =
            self.mode.fetch_update(Relaxed, Relaxed, |m| (m != CLOSED).then_some(bits))
        else {
            return;
        };
        if (before ^ bits) & LEGACY_BIT != 0 {
            L::switched(&self.legacy, bits & LEGACY_BIT != 0);
        }
        if (before ^ bits) & OTLP_BIT != 0 {
            N::switched(&self.new, bits & OTLP_BIT != 0);
        }
    }
    fn mode_bits(&self) -> u8 {
        self.mode.load(Relaxed)
    }
    fn series_count(&self) -> usize {
        Core::series_count(self)
    }
    fn tag_keys(&self) -> Vec<String> {
        let map = self.series.map.read();
        crate::catalog::tag_keys(map.iter().flat_map(|s| s.key.pairs().map(|(k, _)| k)))
    }
    fn close(&self) {
        self.mode.store(CLOSED, Relaxed);
    }
    fn as_any(self: Arc<Self>) -> Arc<dyn std::any::Any + Send + Sync> {
        self
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_counter_series_takes_56_bytes() {
        // Tag key (16), StatsD cell (16), OTel side (running total or bound instrument, in a
        // `OnceLock`: 24): with the Arc header, one 72-byte allocation per series.
        assert_eq!(std::mem::size_of::<super::Series<super::CounterSpec>>(), 56);
    }
}
