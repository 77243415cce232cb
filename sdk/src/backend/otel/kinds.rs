//! The OTLP pipeline's part of each instrument kind: the `opentelemetry_sdk` instrument, and what
//! one series holds (a bound instrument, a running total, a level).
//!
//! A series' OpenTelemetry side is made on its first OTLP record, not with the series: a bound
//! instrument (or an observed total) that never recorded still exports a zero point, which
//! would put series into the new backend that the service never sent there (in `legacy` mode,
//! for instance). Its attributes are built from the series' tag key then, not kept
//! (OpenTelemetry keeps its own copy).
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, OnceLock, Weak};

use opentelemetry::metrics::{AsyncInstrument, Meter};
use opentelemetry::KeyValue;

use super::attributes::Attributes;
use super::{OtelBackend, StreamPlan};
use crate::backend::{Emit, OnCollect, Pipeline, SeriesWalk};
use crate::config::Temporality;
use crate::instrument::tags::TagKey;
use crate::instrument::{CounterSpec, GaugeSpec, HistogramSpec, Spec, UpDownSpec};
use crate::telemetry::Telemetry;

/// Attributes (global tags and the call's tags) an unbound delta emit builds on the stack; more
/// spill to the heap.
const INLINE_ATTRIBUTES: usize = 8;

/// The OTLP part of one instrument.
pub struct OtelInstrument<I> {
    otel: I,
    attrs: Arc<Attributes>,
    /// Whether the instrument's table forgets its series at every collect (delta temporality),
    /// so that an emit creating a series records with attributes instead of binding.
    forgets: bool,
    telemetry: Arc<Telemetry>,
}

impl OtelBackend {
    /// The OTLP part of the instrument `spec` describes, whose SDK instrument `build` makes.
    fn part<I>(
        &self,
        spec: &Spec,
        build: impl FnOnce(&Meter, &Arc<Attributes>) -> I,
    ) -> OtelInstrument<I> {
        // Our series map bounds the tag sets (plus one overflow series); the SDK's own limit sits
        // above it so that OpenTelemetry never folds series on its own.
        self.plan(
            &spec.otel_name,
            StreamPlan {
                boundaries: spec.boundaries.clone().unwrap_or_default(),
                cardinality_limit: spec.cardinality_limit + 16,
            },
        );
        let attrs = Arc::new(Attributes::new(&self.global_tags));
        let otel = self.create(spec.temporality, |meter| build(meter, &attrs));
        OtelInstrument {
            otel,
            attrs,
            forgets: spec.forgets(),
            telemetry: Arc::clone(&self.telemetry),
        }
    }
}

fn desc_unit<B>(
    spec: &Spec,
    b: B,
    d: impl FnOnce(B, String) -> B,
    u: impl FnOnce(B, String) -> B,
) -> B {
    let b = if spec.description.is_empty() { b } else { d(b, spec.description.clone()) };
    if spec.unit.is_empty() {
        b
    } else {
        u(b, spec.unit.clone())
    }
}

/// Records into OpenTelemetry: through the series' bound instrument (bound now if needed),
/// except for the emit that creates a series of a delta instrument, which records with the
/// series' attributes instead (`unbound`). `at.seen` is set for a bound handle's records and for
/// unbound emits into a series an earlier emit made.
///
/// A delta series is forgotten at every collect (the table's [`OnCollect`]), so its bound
/// instrument lives one interval. A tag set used once in an interval (churn: the cardinality
/// benchmark's workload) records with attributes, as an unbound `opentelemetry_sdk` user does,
/// and never pays for the SDK's bound handle (three small allocations on top of the tracker). A
/// tag set used again in the same interval is bound at that second emit (its tracker is the one
/// the first emit made: one data point) and every later emit of the interval is the bound
/// instrument's atomic update, without building attributes: the hot path of a high-rate delta
/// emitter costs what a cumulative one does.
#[inline]
fn record_bound<I, B>(
    inst: &OtelInstrument<I>,
    series: &OnceLock<B>,
    at: Emit<'_>,
    bind: impl FnOnce(&OtelInstrument<I>, &TagKey) -> B,
    on_bound: impl FnOnce(&B),
    unbound: impl FnOnce(&I, &[KeyValue]),
) {
    if let Some(bound) = series.get() {
        return on_bound(bound);
    }
    if at.seen || !inst.forgets {
        on_bound(bind_cold(inst, series, at.key, bind));
    } else {
        // On the stack for up to `INLINE_ATTRIBUTES` attributes: only the tag values'
        // `Arc<str>`s allocate (the SDK keeps them when the series is new in the interval).
        let mut attrs = smallvec::SmallVec::<[KeyValue; INLINE_ATTRIBUTES]>::new();
        inst.attrs.fill(at.key, &mut attrs);
        unbound(&inst.otel, &attrs);
    }
}

#[cold]
fn bind_cold<'s, I, B>(
    inst: &OtelInstrument<I>,
    series: &'s OnceLock<B>,
    key: &TagKey,
    bind: impl FnOnce(&OtelInstrument<I>, &TagKey) -> B,
) -> &'s B {
    series.get_or_init(|| bind(inst, key))
}

/// A counter's OpenTelemetry instrument, chosen by its temporality at registration.
///
/// Cumulative: an observable counter whose callback observes each series' running total, kept
/// in the series ([`CounterSeries::Total`]), at every collect. An emit is one atomic add, and the
/// SDK keeps nothing per series between collects (its asynchronous aggregation drains at each
/// collect), where a bound synchronous counter costs a tracker plus a three-allocation bound
/// handle per series for the life of the process — the difference the cardinality benchmark
/// measures. Delta: a synchronous counter, whose SDK aggregation resets at each collect and which
/// the table's delta forgetting relies on.
pub enum CounterOtel {
    Cumulative(opentelemetry::metrics::ObservableCounter<u64>),
    Delta(opentelemetry::metrics::Counter<u64>),
}

/// One counter series' OpenTelemetry side (16 bytes: the total sits beside the bound handle's
/// non-null niche).
pub enum CounterSeries {
    /// The running total of every add made while the instrument's mode included OTLP, observed
    /// at each collect (cumulative).
    Total(AtomicU64),
    /// The SDK's bound counter (delta).
    Bound(opentelemetry::metrics::BoundCounter<u64>),
}

impl Pipeline<CounterSpec> for OtelBackend {
    type Instrument = OtelInstrument<CounterOtel>;
    type Series = OnceLock<CounterSeries>;

    fn instrument(
        &self,
        spec: &Spec,
        series: Arc<dyn SeriesWalk<Self::Series>>,
    ) -> Self::Instrument {
        let telemetry = Arc::clone(&self.telemetry);
        self.part(spec, |meter, attrs| {
            if spec.temporality == Temporality::Delta {
                let b = meter.u64_counter(spec.otel_name.clone());
                let b = desc_unit(spec, b, |b, d| b.with_description(d), |b, u| b.with_unit(u));
                return CounterOtel::Delta(b.build());
            }
            let attrs = Arc::clone(attrs);
            let b = meter.u64_observable_counter(spec.otel_name.clone()).with_callback(
                move |observer| observe_totals(&*series, &attrs, &telemetry, observer),
            );
            CounterOtel::Cumulative(
                desc_unit(spec, b, |b, d| b.with_description(d), |b, u| b.with_unit(u)).build(),
            )
        })
    }

    fn series(_: &Self::Instrument) -> Self::Series {
        OnceLock::new()
    }

    #[inline]
    fn record(inst: &Self::Instrument, series: &Self::Series, value: u64, at: Emit<'_>) {
        record_bound(
            inst,
            series,
            at,
            |inst, key| match &inst.otel {
                CounterOtel::Cumulative(_) => {
                    inst.telemetry.zero_points_pending.fetch_add(1, Relaxed);
                    CounterSeries::Total(AtomicU64::new(ZERO_POINT_PENDING))
                }
                CounterOtel::Delta(counter) => {
                    CounterSeries::Bound(counter.bind(&inst.attrs.of(key)))
                }
            },
            |side| match side {
                CounterSeries::Total(total) => {
                    total.fetch_add(value, Relaxed);
                }
                CounterSeries::Bound(b) => b.add(value),
            },
            |otel, attrs| {
                if let CounterOtel::Delta(counter) = otel {
                    counter.add(value, attrs)
                }
            },
        );
    }

    fn release(series: &mut Self::Series) {
        drop(series.take());
    }

    fn on_collect(&self, hook: Weak<dyn OnCollect>) {
        self.add_collect_hook(hook);
    }
}

/// The top bit of a cumulative series' running total: set while the series' zero point has not
/// been exported yet (the total itself stays far below 2^63).
const ZERO_POINT_PENDING: u64 = 1 << 63;

/// A cumulative counter's collect callback: the running total of every series that has had an
/// OTLP record (the overflow series included), whatever the mode is now, as a bound cumulative
/// counter would keep exporting it. The attributes are built into one buffer per collect (the SDK
/// copies what it keeps).
///
/// A series' first observation is a **zero point**: `0`, whatever it has counted, and its total
/// from the next collect on. A series appears at its first OTLP record: when it is first used, or
/// when a switch to `dual`/`otlp` brings the OTLP side on for a series that had only been sent to
/// StatsD. Prometheus' `increase()`/`rate()` count from a series' first sample, so without the
/// zero point the adds of a new series' first interval would be missing there (VictoriaMetrics
/// counts a new series from 0 on its own). The adds are not lost: they are in the next export, and
/// [`crate::DualMetrics::flush`] and `shutdown` export twice when a zero point is pending.
fn observe_totals(
    series: &dyn SeriesWalk<OnceLock<CounterSeries>>,
    attributes: &Attributes,
    telemetry: &Telemetry,
    observer: &dyn AsyncInstrument<u64>,
) {
    let zero_points_only = telemetry.zero_points_only.load(Relaxed);
    // One attribute buffer for the whole collect: the SDK copies what it keeps.
    let mut attrs = Vec::new();
    series.for_each(&mut |key, side| {
        if let Some(CounterSeries::Total(total)) = side.get() {
            let mut value = total.load(Relaxed);
            if value & ZERO_POINT_PENDING != 0 {
                total.fetch_and(!ZERO_POINT_PENDING, Relaxed);
                telemetry.zero_points_pending.fetch_sub(1, Relaxed);
                value = 0;
            } else if zero_points_only {
                return;
            }
            attrs.clear();
            attributes.fill(key, &mut attrs);
            observer.observe(value, &attrs);
        }
    });
}

/// An up-down counter's OTLP part: an observable up-down counter whose callback observes each
/// series' level while the instrument's mode includes OTLP. An emit is one atomic add in every
/// mode (no OpenTelemetry record), so a switch never loses nor double counts an add.
pub struct UpDownOtel {
    _otel: opentelemetry::metrics::ObservableUpDownCounter<i64>,
    /// Whether the mode includes OTLP. A shutdown closes the instrument without switching, so
    /// the final export still observes the levels.
    on: Arc<AtomicBool>,
}

/// One up-down series' OTLP side: its level, and its attributes, built at its first observation.
pub struct UpDownLevel {
    level: AtomicI64,
    attrs: OnceLock<Box<[KeyValue]>>,
}

impl Pipeline<UpDownSpec> for OtelBackend {
    type Instrument = UpDownOtel;
    type Series = UpDownLevel;

    fn instrument(
        &self,
        spec: &Spec,
        series: Arc<dyn SeriesWalk<Self::Series>>,
    ) -> Self::Instrument {
        let on = Arc::new(AtomicBool::new(false));
        let observing = Arc::clone(&on);
        let part = self.part(spec, |meter, attrs| {
            let attrs = Arc::clone(attrs);
            let b = meter.i64_observable_up_down_counter(spec.otel_name.clone()).with_callback(
                move |observer| {
                    if observing.load(Relaxed) {
                        observe_levels(&*series, &attrs, observer)
                    }
                },
            );
            desc_unit(spec, b, |b, d| b.with_description(d), |b, u| b.with_unit(u)).build()
        });
        UpDownOtel { _otel: part.otel, on }
    }

    fn series(_: &Self::Instrument) -> Self::Series {
        UpDownLevel { level: AtomicI64::new(0), attrs: OnceLock::new() }
    }

    #[inline]
    fn record(_: &Self::Instrument, series: &Self::Series, value: i64, _: Emit<'_>) {
        series.level.fetch_add(value, Relaxed);
    }

    #[inline]
    fn record_off(_: &Self::Instrument, series: &Self::Series, value: i64) {
        series.level.fetch_add(value, Relaxed);
    }

    fn switched(inst: &Self::Instrument, on: bool) {
        inst.on.store(on, Relaxed);
    }
}

/// The up-down counter's collect callback: every series' level (the overflow series included).
fn observe_levels(
    series: &dyn SeriesWalk<UpDownLevel>,
    attributes: &Attributes,
    observer: &dyn AsyncInstrument<i64>,
) {
    series.for_each(&mut |key, side| {
        let attrs = side.attrs.get_or_init(|| attributes.of(key).into_boxed_slice());
        observer.observe(side.level.load(Relaxed), attrs);
    });
}

/// Gauges and histograms: a synchronous instrument, bound per series.
macro_rules! bound_kind {
    ($spec:ty, $otel:ty, $bound:ty, $make:ident) => {
        impl Pipeline<$spec> for OtelBackend {
            type Instrument = OtelInstrument<$otel>;
            type Series = OnceLock<$bound>;

            fn instrument(
                &self,
                spec: &Spec,
                _: Arc<dyn SeriesWalk<Self::Series>>,
            ) -> Self::Instrument {
                self.part(spec, |meter, _| {
                    let b = meter.$make(spec.otel_name.clone());
                    desc_unit(spec, b, |b, d| b.with_description(d), |b, u| b.with_unit(u)).build()
                })
            }

            fn series(_: &Self::Instrument) -> Self::Series {
                OnceLock::new()
            }

            #[inline]
            fn record(inst: &Self::Instrument, series: &Self::Series, value: f64, at: Emit<'_>) {
                record_bound(
                    inst,
                    series,
                    at,
                    |inst, key| inst.otel.bind(&inst.attrs.of(key)),
                    |b| b.record(value),
                    |o, a| o.record(value, a),
                );
            }

            fn release(series: &mut Self::Series) {
                drop(series.take());
            }

            fn on_collect(&self, hook: Weak<dyn OnCollect>) {
                self.add_collect_hook(hook);
            }
        }
    };
}

bound_kind!(
    GaugeSpec,
    opentelemetry::metrics::Gauge<f64>,
    opentelemetry::metrics::BoundGauge<f64>,
    f64_gauge
);
bound_kind!(
    HistogramSpec,
    opentelemetry::metrics::Histogram<f64>,
    opentelemetry::metrics::BoundHistogram<f64>,
    f64_histogram
);
