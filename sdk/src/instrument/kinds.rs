//! What differs between the four kinds: the OpenTelemetry instrument, the StatsD cell, and how a
//! value is recorded into both.
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64};

use dualmetrics_model::MetricKind;
use opentelemetry::metrics::Meter;
use opentelemetry::KeyValue;
use parking_lot::Mutex;

use super::{Context, Core, Series, Spec};
use crate::backend::statsd::Cell;
use crate::mode::{LEGACY_BIT, OTLP_BIT};

/// One instrument kind.
pub(crate) trait KindSpec: Sized + Send + Sync + 'static {
    type Value: Copy;
    type Otel: Send + Sync;
    type OtelBound: Send + Sync;
    const KIND: MetricKind;
    fn build_otel(meter: &Meter, spec: &Spec) -> Self::Otel;
    fn bind(otel: &Self::Otel, attrs: &[KeyValue]) -> Self::OtelBound;
    fn statsd_cell(ctx: &Context) -> Cell;
    /// Records a value already known to be valid into the pipelines `mode` names.
    fn record(series: &Series<Self>, core: &Core<Self>, mode: u8, value: Self::Value);
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

pub(crate) struct CounterSpec;
impl KindSpec for CounterSpec {
    type Value = u64;
    type Otel = opentelemetry::metrics::Counter<u64>;
    type OtelBound = opentelemetry::metrics::BoundCounter<u64>;
    const KIND: MetricKind = MetricKind::Counter;
    fn build_otel(meter: &Meter, spec: &Spec) -> Self::Otel {
        let b = meter.u64_counter(spec.otel_name.clone());
        desc_unit(spec, b, |b, d| b.with_description(d), |b, u| b.with_unit(u)).build()
    }
    fn bind(otel: &Self::Otel, attrs: &[KeyValue]) -> Self::OtelBound {
        otel.bind(attrs)
    }
    fn statsd_cell(_: &Context) -> Cell {
        Cell::Counter { value: AtomicU64::new(0), touched: AtomicBool::new(true) }
    }
    #[inline]
    fn record(series: &Series<Self>, core: &Core<Self>, mode: u8, value: u64) {
        if mode & LEGACY_BIT != 0 {
            series.statsd.add_u64(value);
        }
        if mode & OTLP_BIT != 0 {
            series.otel(core).add(value);
        }
    }
}

pub(crate) struct UpDownSpec;
impl KindSpec for UpDownSpec {
    type Value = i64;
    type Otel = opentelemetry::metrics::UpDownCounter<i64>;
    type OtelBound = opentelemetry::metrics::BoundUpDownCounter<i64>;
    const KIND: MetricKind = MetricKind::UpDownCounter;
    fn build_otel(meter: &Meter, spec: &Spec) -> Self::Otel {
        let b = meter.i64_up_down_counter(spec.otel_name.clone());
        desc_unit(spec, b, |b, d| b.with_description(d), |b, u| b.with_unit(u)).build()
    }
    fn bind(otel: &Self::Otel, attrs: &[KeyValue]) -> Self::OtelBound {
        otel.bind(attrs)
    }
    fn statsd_cell(_: &Context) -> Cell {
        Cell::UpDown {
            value: AtomicI64::new(0),
            dirty: AtomicBool::new(false),
            touched: AtomicBool::new(true),
        }
    }
    #[inline]
    fn record(series: &Series<Self>, core: &Core<Self>, mode: u8, value: i64) {
        if mode & LEGACY_BIT != 0 {
            series.statsd.add_i64(value);
        }
        if mode & OTLP_BIT != 0 {
            series.otel(core).add(value);
        }
    }
}

pub(crate) struct GaugeSpec;
impl KindSpec for GaugeSpec {
    type Value = f64;
    type Otel = opentelemetry::metrics::Gauge<f64>;
    type OtelBound = opentelemetry::metrics::BoundGauge<f64>;
    const KIND: MetricKind = MetricKind::Gauge;
    fn build_otel(meter: &Meter, spec: &Spec) -> Self::Otel {
        let b = meter.f64_gauge(spec.otel_name.clone());
        desc_unit(spec, b, |b, d| b.with_description(d), |b, u| b.with_unit(u)).build()
    }
    fn bind(otel: &Self::Otel, attrs: &[KeyValue]) -> Self::OtelBound {
        otel.bind(attrs)
    }
    fn statsd_cell(_: &Context) -> Cell {
        Cell::Gauge {
            bits: AtomicU64::new(0),
            dirty: AtomicBool::new(false),
            touched: AtomicBool::new(true),
        }
    }
    #[inline]
    fn record(series: &Series<Self>, core: &Core<Self>, mode: u8, value: f64) {
        if mode & LEGACY_BIT != 0 {
            series.statsd.set_f64(value);
        }
        if mode & OTLP_BIT != 0 {
            series.otel(core).record(value);
        }
    }
}

pub(crate) struct HistogramSpec;
impl KindSpec for HistogramSpec {
    type Value = f64;
    type Otel = opentelemetry::metrics::Histogram<f64>;
    type OtelBound = opentelemetry::metrics::BoundHistogram<f64>;
    const KIND: MetricKind = MetricKind::Histogram;
    fn build_otel(meter: &Meter, spec: &Spec) -> Self::Otel {
        let b = meter.f64_histogram(spec.otel_name.clone());
        desc_unit(spec, b, |b, d| b.with_description(d), |b, u| b.with_unit(u)).build()
    }
    fn bind(otel: &Self::Otel, attrs: &[KeyValue]) -> Self::OtelBound {
        otel.bind(attrs)
    }
    fn statsd_cell(ctx: &Context) -> Cell {
        Cell::Histogram {
            samples: Box::new(Mutex::new(Default::default())),
            max: ctx.max_samples_per_flush.min(u32::MAX as usize) as u32,
            touched: AtomicBool::new(true),
        }
    }
    #[inline]
    fn record(series: &Series<Self>, core: &Core<Self>, mode: u8, value: f64) {
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
            series.otel(core).record(value);
        }
    }
}
