//! Instruments: registration does the work (names, tags, backend handles), emitting reads one
//! mode byte and writes atomics.
//!
//! Every instrument is a [`Core`] shared by its handles. A core owns its OpenTelemetry instrument
//! and a map from tag set to [`Series`]; a series holds the StatsD cell and the bound OpenTelemetry
//! instrument for one tag set. An unbound emit looks its series up (a hash of the borrowed tags
//! and a read lock); a bound handle already holds it.
mod handles;
mod kinds;
pub(crate) mod tags;

pub use handles::{
    BoundCounter, BoundGauge, BoundHistogram, BoundUpDownCounter, Counter, Gauge, Histogram,
    HistogramTimer, InstrumentBuilder, UpDownCounter,
};
pub(crate) use kinds::KindSpec;

use std::sync::atomic::{AtomicBool, AtomicU8, Ordering::Relaxed};
use std::sync::{Arc, OnceLock};

use dualmetrics_model::naming::validate_tag_key;
use dualmetrics_model::statsd_line::{tags_suffix, StatsdType};
use dualmetrics_model::MetricKind;
use opentelemetry::KeyValue;
use parking_lot::{Mutex, RwLock};

use crate::backend::statsd::{StatsdBackend, StatsdSeries};
use crate::mode::CLOSED;
use crate::telemetry::Telemetry;
use tags::{Borrowed, TagKey, Tags};

/// Attribute that marks the series receiving tag sets past the cardinality limit, on both
/// pipelines (OpenTelemetry's own name for it).
pub const OVERFLOW_TAG: &str = "otel.metric.overflow";

/// What every instrument shares: the pipelines and the global settings.
pub(crate) struct Context {
    pub statsd: StatsdBackend,
    pub otel: crate::backend::otel::OtelBackend,
    pub telemetry: Arc<Telemetry>,
    pub global_tags: Vec<(String, String)>,
    pub max_samples_per_flush: usize,
}

/// Registration-time facts about an instrument.
#[derive(Debug, Clone)]
pub(crate) struct Spec {
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
    /// OTLP temporality of this instrument: its rule's, else the global `otlp.temporality`.
    pub temporality: crate::config::Temporality,
    /// Explicit OTLP bucket boundaries (histograms only).
    pub boundaries: Option<Vec<f64>>,
}

/// One tag set of one instrument, resolved for both pipelines.
///
/// The OpenTelemetry side is bound on the first OTLP record, not at creation: a bound instrument
/// that never recorded still exports a zero point, which would put series into the new backend
/// that the service never sent there (in `legacy` mode, for instance).
pub(crate) struct Series<K: KindSpec> {
    pub statsd: Arc<StatsdSeries>,
    otel: OnceLock<K::OtelBound>,
    attrs: Mutex<Option<Box<[KeyValue]>>>,
}

impl<K: KindSpec> Series<K> {
    /// The bound OpenTelemetry instrument, bound now if this is the first OTLP record.
    #[inline]
    pub(crate) fn otel(&self, instrument: &K::Otel) -> &K::OtelBound {
        if let Some(bound) = self.otel.get() {
            return bound;
        }
        self.bind_otel(instrument)
    }

    #[cold]
    fn bind_otel(&self, instrument: &K::Otel) -> &K::OtelBound {
        self.otel.get_or_init(|| {
            let attrs = self.attrs.lock().take().unwrap_or_default();
            K::bind(instrument, &attrs)
        })
    }
}

type SeriesMap<K> = hashbrown::HashMap<TagKey, Arc<Series<K>>, foldhash::fast::RandomState>;

/// The shared state of one instrument.
pub(crate) struct Core<K: KindSpec> {
    /// Mode bits (`LEGACY_BIT | OTLP_BIT`, or `CLOSED`): the one load on every emit.
    pub mode: AtomicU8,
    pub spec: Spec,
    statsd_line_prefix: String,
    pub otel: K::Otel,
    series: RwLock<SeriesMap<K>>,
    overflow: OnceLock<Arc<Series<K>>>,
    warned_invalid_tags: AtomicBool,
    pub ctx: Arc<Context>,
}

impl<K: KindSpec> Core<K> {
    pub(crate) fn new(spec: Spec, mode_bits: u8, ctx: Arc<Context>) -> Self {
        let otel = K::build_otel(ctx.otel.meter(), &spec);
        let statsd_line_prefix = format!("{}:", spec.statsd_name);
        Core {
            mode: AtomicU8::new(mode_bits),
            spec,
            statsd_line_prefix,
            otel,
            series: RwLock::new(SeriesMap::default()),
            overflow: OnceLock::new(),
            warned_invalid_tags: AtomicBool::new(false),
            ctx,
        }
    }

    /// Runs `f` on the series for `tags`: found under a read lock, or created (validated, both
    /// pipelines resolved) on first use. Nothing runs when a tag key is invalid (counted).
    #[inline]
    pub(crate) fn with_series(&self, tags: Tags<'_>, f: impl FnOnce(&Series<K>)) {
        if let Some(s) = self.series.read().get(&Borrowed(tags)) {
            return f(s);
        }
        if let Some(s) = self.create_series(tags) {
            f(&s)
        }
    }

    #[cold]
    fn create_series(&self, tags: Tags<'_>) -> Option<Arc<Series<K>>> {
        if let Err(e) = self.validate_tags(tags) {
            self.ctx.telemetry.invalid_tags.fetch_add(1, Relaxed);
            if !self.warned_invalid_tags.swap(true, Relaxed) {
                tracing::error!(metric = %self.spec.name, error = %e, "dropping measurements with an invalid tag key (logged once per metric)");
            }
            return None;
        }
        let mut map = self.series.write();
        if let Some(s) = map.get(&Borrowed(tags)) {
            return Some(Arc::clone(s));
        }
        if map.len() >= self.spec.cardinality_limit {
            drop(map);
            self.ctx.telemetry.cardinality_overflow.fetch_add(1, Relaxed);
            return Some(Arc::clone(self.overflow.get_or_init(|| {
                tracing::warn!(metric = %self.spec.name, limit = self.spec.cardinality_limit,
                    "cardinality limit reached: new tag sets go to the {OVERFLOW_TAG}=true series");
                Arc::new(self.resolve(&[(OVERFLOW_TAG, "true")]))
            })));
        }
        let series = Arc::new(self.resolve(tags));
        map.insert(TagKey::from_borrowed(tags), Arc::clone(&series));
        Some(series)
    }

    fn validate_tags(&self, tags: Tags<'_>) -> Result<(), crate::BuildError> {
        for (k, _) in tags {
            validate_tag_key(&self.spec.name, k)?;
        }
        Ok(())
    }

    /// A bound series for `tags`, validated (the error reaches the caller of `bind`).
    pub(crate) fn bind(&self, tags: Tags<'_>) -> Result<Arc<Series<K>>, crate::BuildError> {
        self.validate_tags(tags)?;
        if let Some(s) = self.series.read().get(&Borrowed(tags)) {
            return Ok(Arc::clone(s));
        }
        Ok(self.create_series(tags).expect("validated tags always resolve"))
    }

    /// Global tags with `tags` over them (a call tag wins over a global tag with the same key),
    /// resolved into a StatsD series and a bound OpenTelemetry instrument.
    fn resolve(&self, tags: Tags<'_>) -> Series<K> {
        let mut merged: Vec<(&str, &str)> =
            self.ctx.global_tags.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        for (k, v) in tags {
            match merged.iter_mut().find(|(mk, _)| mk == k) {
                Some(slot) => slot.1 = v,
                None => merged.push((k, v)),
            }
        }
        let attrs: Vec<KeyValue> =
            merged.iter().map(|(k, v)| KeyValue::new(k.to_string(), v.to_string())).collect();
        let statsd = Arc::new(StatsdSeries::new(
            &self.statsd_line_prefix,
            tags_suffix(merged.iter().copied()),
            self.spec.statsd_type,
            K::statsd_cell(&self.ctx),
        ));
        self.ctx.statsd.register(Arc::clone(&statsd));
        Series { statsd, otel: OnceLock::new(), attrs: Mutex::new(Some(attrs.into_boxed_slice())) }
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
        self.series.read().len() + usize::from(self.overflow.get().is_some())
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

impl<K: KindSpec> AnyCore for Core<K> {
    fn spec(&self) -> &Spec {
        &self.spec
    }
    fn set_mode_bits(&self, bits: u8) {
        // Once closed, an instrument stays closed.
        let _ = self.mode.fetch_update(Relaxed, Relaxed, |m| (m != CLOSED).then_some(bits));
    }
    fn mode_bits(&self) -> u8 {
        self.mode.load(Relaxed)
    }
    fn series_count(&self) -> usize {
        Core::series_count(self)
    }
    fn tag_keys(&self) -> Vec<String> {
        let map = self.series.read();
        crate::catalog::tag_keys(map.keys().flat_map(|k| k.0.iter().map(|(k, _)| &**k)))
    }
    fn close(&self) {
        self.mode.store(CLOSED, Relaxed);
    }
    fn as_any(self: Arc<Self>) -> Arc<dyn std::any::Any + Send + Sync> {
        self
    }
}
