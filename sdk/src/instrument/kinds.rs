//! What differs between the four kinds: the OpenTelemetry instrument, the StatsD cell, and how a
//! value is recorded into both.
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Weak};

use dualmetrics_model::MetricKind;
use opentelemetry::metrics::Meter;
use opentelemetry::KeyValue;
use parking_lot::Mutex;

use super::{Context, Core, Series, Spec, Table};
use crate::backend::statsd::{Cell, Samples};
use crate::config::Temporality;
use crate::cutover::{LEGACY_BIT, OTLP_BIT};

/// One instrument kind.
pub(crate) trait KindSpec: Sized + Send + Sync + 'static {
    type Value: Copy;
    type Otel: Send + Sync;
    type OtelBound: Send + Sync;
    const KIND: MetricKind;
    /// The OpenTelemetry instrument; `table` is the instrument's series (read by an observable
    /// instrument's callback).
    fn build_otel(meter: &Meter, spec: &Spec, table: &Arc<Table<Self>>) -> Self::Otel;
    /// The series' OpenTelemetry side, made at its first OTLP record; `attrs` builds the series'
    /// attributes (allocating) for the kinds that bind them.
    fn bind(
        otel: &Self::Otel,
        table: &Table<Self>,
        attrs: impl FnOnce() -> Vec<KeyValue>,
    ) -> Self::OtelBound;
    fn statsd_cell(ctx: &Context, spec: &Spec) -> Cell;
    /// Records a value already known to be valid into the pipelines `mode` names; `bind` when a
    /// bound handle records or an earlier emit made the series (see [`Core::otel_record`]).
    fn record(series: &Series<Self>, core: &Core<Self>, mode: u8, value: Self::Value, bind: bool);
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

/// A counter's OpenTelemetry instrument, chosen by its temporality at registration.
///
/// Cumulative: an observable counter whose callback observes each series' running total, kept
/// in the series ([`CounterSeries::Total`]), at every collect. An emit is one atomic add, and the
/// SDK keeps nothing per series between collects (its asynchronous aggregation drains at each
/// collect), where a bound synchronous counter costs a tracker plus a three-allocation bound
/// handle per series for the life of the process — the difference the cardinality benchmark
/// measures. Delta: a synchronous counter, whose SDK aggregation resets at each collect and which
/// the table's delta forgetting relies on (see [`Table::on_collect`]).
pub(crate) enum CounterOtel {
    Cumulative(opentelemetry::metrics::ObservableCounter<u64>),
    Delta(opentelemetry::metrics::Counter<u64>),
}

/// One counter series' OpenTelemetry side (16 bytes: the total sits beside the bound handle's
/// non-null niche).
pub(crate) enum CounterSeries {
    /// The running total of every add made while the instrument's mode included OTLP, observed
    /// at each collect (cumulative).
    Total(AtomicU64),
    /// The SDK's bound counter (delta).
    Bound(opentelemetry::metrics::BoundCounter<u64>),
}

pub(crate) struct CounterSpec;
impl KindSpec for CounterSpec {
    type Value = u64;
    type Otel = CounterOtel;
    type OtelBound = CounterSeries;
    const KIND: MetricKind = MetricKind::Counter;
    fn build_otel(meter: &Meter, spec: &Spec, table: &Arc<Table<Self>>) -> Self::Otel {
        if spec.temporality == Temporality::Delta {
            let b = meter.u64_counter(spec.otel_name.clone());
            let b = desc_unit(spec, b, |b, d| b.with_description(d), |b, u| b.with_unit(u));
            return CounterOtel::Delta(b.build());
        }
        let table = Arc::downgrade(table);
        let b = meter
            .u64_observable_counter(spec.otel_name.clone())
            .with_callback(move |observer| observe_totals(&table, observer));
        CounterOtel::Cumulative(
            desc_unit(spec, b, |b, d| b.with_description(d), |b, u| b.with_unit(u)).build(),
        )
    }
    fn bind(
        otel: &Self::Otel,
        table: &Table<Self>,
        attrs: impl FnOnce() -> Vec<KeyValue>,
    ) -> Self::OtelBound {
        match otel {
            CounterOtel::Cumulative(_) => {
                table.telemetry.zero_points_pending.fetch_add(1, Relaxed);
                CounterSeries::Total(AtomicU64::new(ZERO_POINT_PENDING))
            }
            CounterOtel::Delta(counter) => CounterSeries::Bound(counter.bind(&attrs())),
        }
    }
    fn statsd_cell(_: &Context, _: &Spec) -> Cell {
        Cell::Counter { value: AtomicU64::new(0) }
    }
    #[inline]
    fn record(series: &Series<Self>, core: &Core<Self>, mode: u8, value: u64, bind: bool) {
        if mode & LEGACY_BIT != 0 {
            series.statsd.add_u64(value);
        }
        if mode & OTLP_BIT != 0 {
            core.otel_record(
                series,
                bind,
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
    table: &Weak<Table<CounterSpec>>,
    observer: &dyn opentelemetry::metrics::AsyncInstrument<u64>,
) {
    let Some(table) = table.upgrade() else { return };
    let zero_points_only = table.telemetry.zero_points_only.load(Relaxed);
    // One attribute buffer for the whole collect: the SDK copies what it keeps.
    let mut attrs = Vec::new();
    table.for_each_series(|series| {
        if let Some(CounterSeries::Total(total)) = series.otel.get() {
            let mut value = total.load(Relaxed);
            if value & ZERO_POINT_PENDING != 0 {
                total.fetch_and(!ZERO_POINT_PENDING, Relaxed);
                table.telemetry.zero_points_pending.fetch_sub(1, Relaxed);
                value = 0;
            } else if zero_points_only {
                return;
            }
            attrs.clear();
            table.fill_otel_attributes(&series.key, &mut attrs);
            observer.observe(value, &attrs);
        }
    });
}

/// An up-down counter is a level. Both pipelines report the series' level, the sum of every add
/// ever made in any mode, whenever they are active for the instrument: the level lives in the
/// StatsD cell and accumulates in every mode (marked for sending only while StatsD is active, and
/// all series are marked when StatsD becomes active), and the OpenTelemetry side is an observable
/// up-down counter whose callback observes each series' level at collect time while the
/// instrument's mode includes OTLP. A switch therefore never loses nor double counts an add, and an
/// emit is one atomic add (no OpenTelemetry record).
pub(crate) struct UpDownSpec;
impl KindSpec for UpDownSpec {
    type Value = i64;
    type Otel = opentelemetry::metrics::ObservableUpDownCounter<i64>;
    /// The series' attributes, built at its first observation.
    type OtelBound = Box<[KeyValue]>;
    const KIND: MetricKind = MetricKind::UpDownCounter;
    fn build_otel(meter: &Meter, spec: &Spec, table: &Arc<Table<Self>>) -> Self::Otel {
        let table = Arc::downgrade(table);
        let b = meter
            .i64_observable_up_down_counter(spec.otel_name.clone())
            .with_callback(move |observer| observe_levels(&table, observer));
        desc_unit(spec, b, |b, d| b.with_description(d), |b, u| b.with_unit(u)).build()
    }
    fn bind(
        _: &Self::Otel,
        _: &Table<Self>,
        attrs: impl FnOnce() -> Vec<KeyValue>,
    ) -> Self::OtelBound {
        attrs().into_boxed_slice()
    }
    fn statsd_cell(_: &Context, _: &Spec) -> Cell {
        Cell::UpDown { value: AtomicI64::new(0), dirty: AtomicBool::new(false) }
    }
    #[inline]
    fn record(series: &Series<Self>, _: &Core<Self>, mode: u8, value: i64, _: bool) {
        series.statsd.add_i64(value, mode & LEGACY_BIT != 0);
    }
}

/// The up-down counter's collect callback: every series' level (the overflow series included),
/// if the instrument's mode includes OTLP. It reads the mode the instrument had before a shutdown
/// closed it, so the final export still carries the levels.
fn observe_levels(
    table: &Weak<Table<UpDownSpec>>,
    observer: &dyn opentelemetry::metrics::AsyncInstrument<i64>,
) {
    let Some(table) = table.upgrade() else { return };
    if table.open_mode.load(Relaxed) & OTLP_BIT == 0 {
        return;
    }
    table.for_each_series(|series| {
        let attrs =
            series.otel.get_or_init(|| table.otel_attributes(&series.key).into_boxed_slice());
        observer.observe(series.statsd.level(), attrs);
    });
}

pub(crate) struct GaugeSpec;
impl KindSpec for GaugeSpec {
    type Value = f64;
    type Otel = opentelemetry::metrics::Gauge<f64>;
    type OtelBound = opentelemetry::metrics::BoundGauge<f64>;
    const KIND: MetricKind = MetricKind::Gauge;
    fn build_otel(meter: &Meter, spec: &Spec, _: &Arc<Table<Self>>) -> Self::Otel {
        let b = meter.f64_gauge(spec.otel_name.clone());
        desc_unit(spec, b, |b, d| b.with_description(d), |b, u| b.with_unit(u)).build()
    }
    fn bind(
        otel: &Self::Otel,
        _: &Table<Self>,
        attrs: impl FnOnce() -> Vec<KeyValue>,
    ) -> Self::OtelBound {
        otel.bind(&attrs())
    }
    fn statsd_cell(_: &Context, _: &Spec) -> Cell {
        Cell::Gauge { bits: AtomicU64::new(0), dirty: AtomicBool::new(false) }
    }
    #[inline]
    fn record(series: &Series<Self>, core: &Core<Self>, mode: u8, value: f64, bind: bool) {
        if mode & LEGACY_BIT != 0 {
            series.statsd.set_f64(value);
        }
        if mode & OTLP_BIT != 0 {
            core.otel_record(series, bind, |b| b.record(value), |o, a| o.record(value, a));
        }
    }
}

pub(crate) struct HistogramSpec;
impl KindSpec for HistogramSpec {
    type Value = f64;
    type Otel = opentelemetry::metrics::Histogram<f64>;
    type OtelBound = opentelemetry::metrics::BoundHistogram<f64>;
    const KIND: MetricKind = MetricKind::Histogram;
    fn build_otel(meter: &Meter, spec: &Spec, _: &Arc<Table<Self>>) -> Self::Otel {
        let b = meter.f64_histogram(spec.otel_name.clone());
        desc_unit(spec, b, |b, d| b.with_description(d), |b, u| b.with_unit(u)).build()
    }
    fn bind(
        otel: &Self::Otel,
        _: &Table<Self>,
        attrs: impl FnOnce() -> Vec<KeyValue>,
    ) -> Self::OtelBound {
        otel.bind(&attrs())
    }
    fn statsd_cell(ctx: &Context, spec: &Spec) -> Cell {
        Cell::Histogram {
            samples: Box::new(Mutex::new(Samples::new(spec.statsd_sample_rate))),
            max: ctx.max_samples_per_flush.min(u32::MAX as usize) as u32,
        }
    }
    #[inline]
    fn record(series: &Series<Self>, core: &Core<Self>, mode: u8, value: f64, bind: bool) {
        if mode & LEGACY_BIT != 0 {
            let statsd_value = value * core.spec.millis_factor.unwrap_or(1.0);
            if !series.statsd.push_sample(statsd_value) {
                core.ctx
                    .telemetry
                    .statsd
                    .samples_sampled_out
                    .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            }
        }
        if mode & OTLP_BIT != 0 {
            core.otel_record(series, bind, |b| b.record(value), |o, a| o.record(value, a));
        }
    }
}
