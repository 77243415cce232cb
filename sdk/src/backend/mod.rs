//! The pipelines behind the facade, and the contract each implements.
//!
//! An instrument ([`crate::instrument`]) owns a table of series, one per tag set, and fans every
//! valid emit out to two pipelines: the legacy one and the new one, by the instrument's mode
//! ([`crate::cutover`]). What a pipeline keeps and does for one instrument kind is the
//! [`Pipeline`] contract:
//! - at registration, [`Pipeline::instrument`] makes the pipeline's part of the instrument (its
//!   wire name, its attribute or line formatting, its SDK instrument), given a [`SeriesWalk`]
//!   over the instrument's series for the pipeline's own collect or flush;
//! - at a series' creation, [`Pipeline::series`] makes the pipeline's part of the series;
//! - on an emit, [`Pipeline::record`] records a value already known to be valid (the only call on
//!   the hot path: the instrument core is generic over its two pipelines, so each call is
//!   static and inlined, no dynamic dispatch).
//!
//! The pipelines:
//! - [`statsd`]: per-series cells (a counter sum, a last gauge value, a level, a buffer of
//!   histogram samples) that a flusher thread drains once per interval into StatsD lines, packed
//!   into datagrams and handed to a cadence sink.
//! - [`otel`]: an `opentelemetry_sdk` meter provider whose instruments aggregate (bound
//!   instruments; observable ones reading our per-series totals for cumulative counters and
//!   up-down counters), and a periodic reader that exports OTLP over gRPC or HTTP.
//! - `memory`: every value kept in memory, readable as a snapshot ([`crate::InMemory`]); the
//!   fan-out's tests (`instrument/fanout_tests.rs`) run on it, and so can a service's.
//! - `noop`: records nothing ([`crate::Noop`]).
//!
//! A whole pipeline is a [`Backend`]: the contract for every kind, plus flush and shutdown. The
//! facade is generic over its two backends (`DualMetrics<L, N>`, StatsD and OTLP by default);
//! [`crate::DualMetricsBuilder::build_with`] builds it over others.
use std::sync::{Arc, Weak};
use std::time::Duration;

use crate::error::ShutdownError;
use crate::instrument::tags::TagKey;
use crate::instrument::{CounterSpec, GaugeSpec, HistogramSpec, KindSpec, Spec, UpDownSpec};

pub(crate) mod memory;
pub(crate) mod noop;
pub(crate) mod otel;
pub(crate) mod statsd;

/// Where one emit goes: the series' tag key, and whether an earlier emit made the series (or a
/// bound handle records), as opposed to this emit creating it.
#[derive(Clone, Copy)]
pub struct Emit<'a> {
    pub key: &'a TagKey,
    pub seen: bool,
}

/// One pipeline's part in the instruments of kind `K`.
///
/// Values reach [`record`](Self::record) validated (finite, non-negative where the kind says so)
/// and only while the instrument's mode includes the pipeline; nothing here returns an error to
/// the caller, blocks, or allocates on a series' steady state.
pub trait Pipeline<K: KindSpec>: Send + Sync + Sized + 'static {
    /// What the pipeline keeps per instrument, made once at registration.
    type Instrument: Send + Sync;
    /// What the pipeline keeps per series (tag set), made with the series.
    type Series: Send + Sync;

    /// The pipeline's part of the instrument `spec` describes. `series` walks the instrument's
    /// series, for the pipeline's own collect or flush (never on an emit).
    fn instrument(
        &self,
        spec: &Spec,
        series: Arc<dyn SeriesWalk<Self::Series>>,
    ) -> Self::Instrument;

    /// A new series' part.
    fn series(instrument: &Self::Instrument) -> Self::Series;

    /// Records `value` while the instrument's mode includes this pipeline.
    fn record(instrument: &Self::Instrument, series: &Self::Series, value: K::Value, at: Emit<'_>);

    /// Records `value` while the instrument's mode leaves this pipeline out. Kinds that report a
    /// level (up-down counters) keep it in every mode, so that switching the pipeline on reports
    /// the right level; the others ignore it.
    #[inline]
    fn record_off(_instrument: &Self::Instrument, _series: &Self::Series, _value: K::Value) {}

    /// The instrument's mode now includes (`on`) or leaves out this pipeline.
    fn switched(_instrument: &Self::Instrument, _on: bool) {}

    /// Whether a series holds something the pipeline has not sent yet: a series the table forgets
    /// then waits for the pipeline's next flush ([`SeriesWalk::for_each_forgotten`]).
    fn pending(_series: &Self::Series) -> bool {
        false
    }

    /// Releases what the pipeline holds for a series the table forgets (delta temporality).
    fn release(_series: &mut Self::Series) {}

    /// Runs `hook` at the start of each of this pipeline's collects, until the hook is dropped:
    /// a delta instrument's table forgets its idle series there. A pipeline without collects
    /// never runs it.
    fn on_collect(&self, _hook: Weak<dyn OnCollect>) {}
}

/// A whole pipeline: its part in every instrument kind, and its lifecycle. Implemented by the
/// StatsD and OTLP pipelines (the facade's defaults), [`crate::InMemory`] and [`crate::Noop`];
/// sealed (its contract is the SDK's own).
pub trait Backend:
    Pipeline<CounterSpec>
    + Pipeline<UpDownSpec>
    + Pipeline<GaugeSpec>
    + Pipeline<HistogramSpec>
    + Send
    + Sync
    + 'static
{
    /// The pipeline's name in errors (`statsd`, `otlp`, `memory`, `noop`).
    const NAME: &'static str;

    /// Sends what is buffered now; returns once it was sent (or failed).
    ///
    /// # Errors
    /// The pipeline failed to send.
    fn flush(&self) -> Result<(), ShutdownError>;

    /// Sends what is buffered and stops, within `deadline`.
    ///
    /// # Errors
    /// The pipeline failed or missed the deadline.
    fn shutdown(&self, deadline: Duration) -> Result<(), ShutdownError>;
}

/// The series of one instrument, as one pipeline sees them.
pub trait SeriesWalk<S>: Send + Sync {
    /// Calls `f` with each live series' tag key and this pipeline's part (the overflow series
    /// included), under the table's read lock.
    fn for_each(&self, f: &mut dyn FnMut(&TagKey, &S));
    /// Calls `f` with each series forgotten since the last call that was still
    /// [`pending`](Pipeline::pending), then lets them go.
    fn for_each_forgotten(&self, f: &mut dyn FnMut(&TagKey, &S));
}

/// Something that runs at the start of every collect, before any instrument is read (a delta
/// instrument's series table, which forgets its idle series there). Called on the collecting
/// thread.
pub trait OnCollect: Send + Sync {
    fn on_collect(&self);
}
