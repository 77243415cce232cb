//! A [`metrics::Recorder`] that routes the `metrics` crate's macros into the facade, so code
//! instrumented with `metrics::counter!`, `gauge!` and `histogram!` dual-emits unchanged.
//!
//! ```no_run
//! use std::sync::Arc;
//! use dualmetrics::DualMetrics;
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let metrics = Arc::new(DualMetrics::builder().with_service_name("checkout").build()?);
//! dualmetrics::metrics_rs::install(Arc::clone(&metrics)).expect("no other recorder installed");
//!
//! metrics::describe_histogram!("http.latency", metrics::Unit::Seconds, "request latency");
//! metrics::counter!("http.requests", "route" => "/cart").increment(1);
//! metrics::histogram!("http.latency", "route" => "/cart").record(0.012);
//!
//! metrics.shutdown(std::time::Duration::from_secs(5))?; // flushes both pipelines
//! # Ok(()) }
//! ```
//!
//! # Mapping
//! | `metrics` | facade |
//! |---|---|
//! | `counter!` (`increment`) | [`crate::Counter`], bound to the labels |
//! | `counter!` (`absolute`) | the same counter, advanced by the increase over the largest absolute value seen (a lower value adds nothing) |
//! | `gauge!` (`set`) | [`crate::Gauge`] |
//! | `gauge!` (`increment`/`decrement`) | [`crate::Gauge`] set to the adjusted value: the adapter keeps each series' current value (starting at 0) and adjusts and records it under one lock, so concurrent adjustments are never lost nor recorded out of order |
//! | `histogram!` | [`crate::Histogram`] (`record_many` records the value that many times) |
//! | labels | tags (both pipelines) |
//! | `describe_*!` | the instrument's unit and description, when described before first use (the first registration fixes them, as in the facade) |
//!
//! Units map to UCUM: `Seconds` → `s`, `Milliseconds` → `ms`, `Microseconds` → `us`,
//! `Nanoseconds` → `ns`, `Bytes` → `By`, `Kibibytes` → `KiBy` (and `MiBy`, `GiBy`, `TiBy`),
//! `Count` → `1`, `Percent` → `%`, `BitsPerSecond` → `bit/s` (and `kbit/s`, `Mbit/s`, `Gbit/s`,
//! `Tbit/s`), `CountPerSecond` → `1/s`. A histogram in a time unit is a StatsD timer in
//! milliseconds, as every facade histogram is.
//!
//! # Names
//! `metrics` names such as `http_requests_total` or `http.requests` are valid facade names and
//! pass unchanged. Other characters (a space, `:`) become `_`; a name that is still invalid (not
//! starting with a letter) and a name already registered with another kind give a handle whose
//! every use is dropped and counted in [`crate::TelemetrySnapshot::dropped_by_adapter`], as is a
//! label key the facade refuses.
//!
//! # Cost
//! The macros call the recorder's `register_*` on every use. A registration is a read-locked
//! lookup of the `metrics::Key` (whose hash `metrics` computes once); the first use of a
//! (name, labels) pair builds the instrument and binds the labels. The returned handle wraps the
//! facade's bound handle, so recording costs what a [`crate::BoundCounter`] costs. Keep the
//! handle (`let c = counter!(..)`) in hot loops to skip the lookup. The recorder keeps one entry
//! per (name, labels) seen, as `metrics-util`'s registry does: a label with unbounded values
//! grows it, even though the facade folds the extra series into its overflow series, and the
//! bound handles keep their series (a delta instrument does not forget them while idle).
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::Arc;

use hashbrown::HashMap;
use metrics::{
    Counter, CounterFn, Gauge, GaugeFn, Histogram, HistogramFn, Key, KeyName, Metadata, Recorder,
    SetRecorderError, SharedString, Unit,
};
use parking_lot::{Mutex, RwLock};

use super::{dropped, sanitize_name, telemetry_of};
use crate::telemetry::Telemetry;
use crate::DualMetrics;

type Cache<V> = RwLock<HashMap<Key, V, foldhash::fast::RandomState>>;
/// Units and descriptions given by `describe_*!`, by kind and name.
type Described = RwLock<HashMap<(Kind, String), (String, String), foldhash::fast::RandomState>>;

/// A `metrics` recorder that records into a [`DualMetrics`]. Cloning is cheap and shares the
/// registrations.
#[derive(Clone)]
pub struct DualRecorder {
    inner: Arc<Inner>,
}

struct Inner {
    metrics: Arc<DualMetrics>,
    telemetry: Arc<Telemetry>,
    /// `describe_*` calls: (kind, name) → (UCUM unit, description).
    described: Described,
    counters: Cache<Counter>,
    gauges: Cache<Gauge>,
    histograms: Cache<Histogram>,
}

/// A `metrics` key resolved for the facade.
struct Resolved<'k> {
    name: String,
    unit: String,
    description: String,
    tags: Vec<(&'k str, &'k str)>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Kind {
    Counter,
    Gauge,
    Histogram,
}

impl std::fmt::Debug for DualRecorder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DualRecorder").field("metrics", &self.inner.metrics).finish()
    }
}

/// Installs a [`DualRecorder`] over `metrics` as the process-wide `metrics` recorder.
///
/// Pass an `Arc` and keep a clone to [`flush`](DualMetrics::flush) or
/// [`shutdown`](DualMetrics::shutdown) later: the global recorder is never dropped, so a
/// `DualMetrics` moved in whole is never shut down (what it buffered at exit is lost).
///
/// # Errors
/// A recorder is already installed; the error gives the recorder back.
pub fn install(metrics: impl Into<Arc<DualMetrics>>) -> Result<(), SetRecorderError<DualRecorder>> {
    metrics::set_global_recorder(DualRecorder::new(metrics))
}

impl DualRecorder {
    /// A recorder over `metrics`, not installed: use it with `metrics::with_local_recorder` (tests)
    /// or wrap it in `metrics-util` layers before `metrics::set_global_recorder`.
    pub fn new(metrics: impl Into<Arc<DualMetrics>>) -> Self {
        let metrics = metrics.into();
        DualRecorder {
            inner: Arc::new(Inner {
                telemetry: telemetry_of(&metrics),
                metrics,
                described: RwLock::default(),
                counters: RwLock::default(),
                gauges: RwLock::default(),
                histograms: RwLock::default(),
            }),
        }
    }

    /// The facade this recorder records into.
    pub fn metrics(&self) -> &Arc<DualMetrics> {
        &self.inner.metrics
    }

    fn describe(&self, kind: Kind, key: KeyName, unit: Option<Unit>, description: SharedString) {
        let unit = unit.map(ucum).unwrap_or_default().to_owned();
        self.inner
            .described
            .write()
            .insert((kind, key.as_str().to_owned()), (unit, description.into_owned()));
    }

    /// What a first registration needs, or `None` for a name the facade cannot take (counted
    /// by the caller's rejecting handle).
    fn resolve<'k>(&self, kind: Kind, key: &'k Key) -> Option<Resolved<'k>> {
        let name = sanitize_name(key.name())?;
        let (unit, description) = self
            .inner
            .described
            .read()
            .get(&(kind, key.name().to_owned()))
            .cloned()
            .unwrap_or_default();
        let tags = key.labels().map(|l| (l.key(), l.value())).collect();
        Some(Resolved { name, unit, description, tags })
    }

    fn rejected(&self) -> Arc<Rejected> {
        Arc::new(Rejected(Arc::clone(&self.inner.telemetry)))
    }

    fn new_counter(&self, key: &Key) -> Counter {
        let bound = self.resolve(Kind::Counter, key).and_then(|r| {
            let c = self
                .inner
                .metrics
                .counter(&r.name)
                .with_unit(r.unit)
                .with_description(r.description);
            c.build().ok()?.bind(&r.tags).ok()
        });
        match bound {
            Some(bound) => {
                Counter::from_arc(Arc::new(CounterHandle { bound, absolute: AtomicU64::new(0) }))
            }
            None => Counter::from_arc(self.rejected()),
        }
    }

    fn new_gauge(&self, key: &Key) -> Gauge {
        let bound = self.resolve(Kind::Gauge, key).and_then(|r| {
            let g =
                self.inner.metrics.gauge(&r.name).with_unit(r.unit).with_description(r.description);
            g.build().ok()?.bind(&r.tags).ok()
        });
        match bound {
            Some(bound) => Gauge::from_arc(Arc::new(GaugeHandle { bound, value: Mutex::new(0.0) })),
            None => Gauge::from_arc(self.rejected()),
        }
    }

    fn new_histogram(&self, key: &Key) -> Histogram {
        let bound = self.resolve(Kind::Histogram, key).and_then(|r| {
            let h = self
                .inner
                .metrics
                .histogram(&r.name)
                .with_unit(r.unit)
                .with_description(r.description);
            h.build().ok()?.bind(&r.tags).ok()
        });
        match bound {
            Some(bound) => Histogram::from_arc(Arc::new(HistogramHandle(bound))),
            None => Histogram::from_arc(self.rejected()),
        }
    }
}

/// The cached handle for `key`, or one made by `make` under the write lock.
fn cached<V: Clone>(cache: &Cache<V>, key: &Key, make: impl FnOnce() -> V) -> V {
    if let Some(v) = cache.read().get(key) {
        return v.clone();
    }
    let mut w = cache.write();
    if let Some(v) = w.get(key) {
        return v.clone();
    }
    let v = make();
    w.insert(key.clone(), v.clone());
    v
}

impl Recorder for DualRecorder {
    fn describe_counter(&self, key: KeyName, unit: Option<Unit>, description: SharedString) {
        self.describe(Kind::Counter, key, unit, description);
    }

    fn describe_gauge(&self, key: KeyName, unit: Option<Unit>, description: SharedString) {
        self.describe(Kind::Gauge, key, unit, description);
    }

    fn describe_histogram(&self, key: KeyName, unit: Option<Unit>, description: SharedString) {
        self.describe(Kind::Histogram, key, unit, description);
    }

    fn register_counter(&self, key: &Key, _metadata: &Metadata<'_>) -> Counter {
        cached(&self.inner.counters, key, || self.new_counter(key))
    }

    fn register_gauge(&self, key: &Key, _metadata: &Metadata<'_>) -> Gauge {
        cached(&self.inner.gauges, key, || self.new_gauge(key))
    }

    fn register_histogram(&self, key: &Key, _metadata: &Metadata<'_>) -> Histogram {
        cached(&self.inner.histograms, key, || self.new_histogram(key))
    }
}

/// The UCUM unit for a `metrics` unit.
pub fn ucum(unit: Unit) -> &'static str {
    match unit {
        Unit::Count => "1",
        Unit::Percent => "%",
        Unit::Seconds => "s",
        Unit::Milliseconds => "ms",
        Unit::Microseconds => "us",
        Unit::Nanoseconds => "ns",
        Unit::Tebibytes => "TiBy",
        Unit::Gibibytes => "GiBy",
        Unit::Mebibytes => "MiBy",
        Unit::Kibibytes => "KiBy",
        Unit::Bytes => "By",
        Unit::TerabitsPerSecond => "Tbit/s",
        Unit::GigabitsPerSecond => "Gbit/s",
        Unit::MegabitsPerSecond => "Mbit/s",
        Unit::KilobitsPerSecond => "kbit/s",
        Unit::BitsPerSecond => "bit/s",
        Unit::CountPerSecond => "1/s",
    }
}

struct CounterHandle {
    bound: crate::BoundCounter,
    /// The largest `absolute` value seen.
    absolute: AtomicU64,
}

impl CounterFn for CounterHandle {
    fn increment(&self, value: u64) {
        self.bound.add(value);
    }

    fn absolute(&self, value: u64) {
        let before = self.absolute.fetch_max(value, Relaxed);
        if value > before {
            self.bound.add(value - before);
        }
    }
}

struct GaugeHandle {
    bound: crate::BoundGauge,
    /// The current value, for `increment`/`decrement`; recording happens under this lock so
    /// that the last recorded value is the last adjusted one.
    value: Mutex<f64>,
}

impl GaugeHandle {
    fn update(&self, f: impl FnOnce(f64) -> f64) {
        let mut value = self.value.lock();
        let next = f(*value);
        if next.is_finite() {
            *value = next;
        }
        self.bound.record(next); // a non-finite value is dropped and counted by the facade
    }
}

impl GaugeFn for GaugeHandle {
    fn increment(&self, value: f64) {
        self.update(|v| v + value);
    }

    fn decrement(&self, value: f64) {
        self.update(|v| v - value);
    }

    fn set(&self, value: f64) {
        self.update(|_| value);
    }
}

struct HistogramHandle(crate::BoundHistogram);

impl HistogramFn for HistogramHandle {
    fn record(&self, value: f64) {
        self.0.record(value);
    }

    fn record_many(&self, value: f64, count: usize) {
        for _ in 0..count {
            self.0.record(value);
        }
    }
}

/// The handle of a metric the facade refused: every use is counted as dropped.
struct Rejected(Arc<Telemetry>);

impl CounterFn for Rejected {
    fn increment(&self, _: u64) {
        dropped(&self.0);
    }
    fn absolute(&self, _: u64) {
        dropped(&self.0);
    }
}

impl GaugeFn for Rejected {
    fn increment(&self, _: f64) {
        dropped(&self.0);
    }
    fn decrement(&self, _: f64) {
        dropped(&self.0);
    }
    fn set(&self, _: f64) {
        dropped(&self.0);
    }
}

impl HistogramFn for Rejected {
    fn record(&self, _: f64) {
        dropped(&self.0);
    }
}
