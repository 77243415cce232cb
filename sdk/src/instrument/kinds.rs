//! The four instrument kinds, as types: what each records. What each pipeline does with them is
//! its [`Pipeline`](crate::backend::Pipeline) implementation (`backend/statsd/kinds.rs`,
//! `backend/otel/kinds.rs`, ...).
use dualmetrics_model::MetricKind;

/// One instrument kind.
pub trait KindSpec: Sized + Send + Sync + 'static {
    /// What an emit records.
    type Value: Copy;
    const KIND: MetricKind;
}

/// A monotonic `u64` counter.
pub struct CounterSpec;
impl KindSpec for CounterSpec {
    type Value = u64;
    const KIND: MetricKind = MetricKind::Counter;
}

/// An `i64` counter that can go down: a level, the sum of every add ever made. Every pipeline
/// keeps the level in every mode ([`Pipeline::record_off`](crate::backend::Pipeline::record_off))
/// and reports it while the mode includes it, so a switch never loses nor double counts an add.
pub struct UpDownSpec;
impl KindSpec for UpDownSpec {
    type Value = i64;
    const KIND: MetricKind = MetricKind::UpDownCounter;
}

/// A last-value `f64` gauge.
pub struct GaugeSpec;
impl KindSpec for GaugeSpec {
    type Value = f64;
    const KIND: MetricKind = MetricKind::Gauge;
}

/// An `f64` distribution.
pub struct HistogramSpec;
impl KindSpec for HistogramSpec {
    type Value = f64;
    const KIND: MetricKind = MetricKind::Histogram;
}
