//! The StatsD pipeline's part of each instrument kind: one [`Cell`] per series, and the
//! instrument's line prefix, type and tags, from which its lines are formatted at each flush.
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Weak};

use dualmetrics_model::statsd_line::{tags_suffix, StatsdType};
use dualmetrics_model::MetricKind;
use parking_lot::Mutex;

use super::{Cell, Drain, Samples, StatsdBackend, StatsdSource};
use crate::backend::{Emit, Pipeline, SeriesWalk};
use crate::config::StatsdConfig;
use crate::instrument::tags::TagKey;
use crate::instrument::{CounterSpec, GaugeSpec, HistogramSpec, Spec, UpDownSpec};
use crate::telemetry::Telemetry;

/// The StatsD type of an instrument's lines: `c` for counters, `g` for gauges and up-down
/// counters (their absolute value), and for histograms the configured `timer_type` when the
/// unit is a time unit (`ms` by default), else `histogram_type` (`h` by default).
pub(crate) fn line_type(kind: MetricKind, time_unit: bool, config: &StatsdConfig) -> StatsdType {
    match kind {
        MetricKind::Counter => StatsdType::Counter,
        MetricKind::UpDownCounter | MetricKind::Gauge => StatsdType::Gauge,
        MetricKind::Histogram if time_unit => config.timer_type,
        MetricKind::Histogram => config.histogram_type,
    }
}

/// The StatsD part of one instrument.
pub struct StatsdInstrument {
    /// What the flusher drains (registered with it while the instrument lives).
    lines: Arc<Lines>,
    /// Histograms in a time unit: the factor to milliseconds (`1.0` otherwise).
    millis_factor: f64,
    /// Histograms: the share of samples sent, and the samples kept per series and flush.
    sample_rate: f64,
    max_samples: u32,
    telemetry: Arc<Telemetry>,
}

/// An instrument's lines: formats every series' cell at each flush.
struct Lines {
    /// `name:` of the lines.
    prefix: Box<str>,
    ty: StatsdType,
    global_tags: Vec<(String, String)>,
    series: Arc<dyn SeriesWalk<Cell>>,
}

impl Lines {
    fn drain_cell(&self, key: &TagKey, cell: &Cell, out: &mut Drain<'_>) {
        out.cell(cell, &self.prefix, self.ty, || {
            // Global tags (a call tag with the same key wins, in the global tag's place), then
            // the call's other tags: the order `merged` gives, without building it.
            let global = self.global_tags.iter().map(|(gk, gv)| {
                let v = key.pairs().find(|(k, _)| k == gk).map_or(gv.as_str(), |(_, v)| v);
                (gk.as_str(), v)
            });
            let own = key.pairs().filter(|(k, _)| !self.global_tags.iter().any(|(gk, _)| gk == k));
            tags_suffix(global.chain(own))
        });
    }
}

impl StatsdSource for Lines {
    /// Drains every series' cell (under the table's read lock: series creation for this
    /// instrument waits for the walk, emits do not), the overflow series, and the series forgotten
    /// since the last flush, which are then let go.
    fn drain(&self, out: &mut Drain<'_>) {
        self.series.for_each(&mut |key, cell| self.drain_cell(key, cell, out));
        self.series.for_each_forgotten(&mut |key, cell| self.drain_cell(key, cell, out));
    }
}

impl StatsdBackend {
    fn part(&self, spec: &Spec, series: Arc<dyn SeriesWalk<Cell>>) -> StatsdInstrument {
        let lines = Arc::new(Lines {
            prefix: format!("{}:", spec.statsd_name).into(),
            ty: spec.statsd_type,
            global_tags: self.global_tags.clone(),
            series,
        });
        let source: Arc<dyn StatsdSource> = lines.clone();
        self.register(Arc::downgrade(&source) as Weak<dyn StatsdSource>);
        StatsdInstrument {
            lines,
            millis_factor: spec.millis_factor.unwrap_or(1.0),
            sample_rate: spec.statsd_sample_rate,
            max_samples: self.max_samples_per_flush.min(u32::MAX as usize) as u32,
            telemetry: Arc::clone(&self.telemetry),
        }
    }
}

/// The trait's methods every kind shares: the instrument, forgetting.
macro_rules! common {
    () => {
        type Instrument = StatsdInstrument;
        type Series = Cell;

        fn instrument(&self, spec: &Spec, series: Arc<dyn SeriesWalk<Cell>>) -> StatsdInstrument {
            self.part(spec, series)
        }

        fn pending(series: &Cell) -> bool {
            !series.is_empty()
        }
    };
}

/// Counters: the sum of the adds since the last flush, one `c` line per series.
impl Pipeline<CounterSpec> for StatsdBackend {
    common!();

    fn series(_: &StatsdInstrument) -> Cell {
        Cell::Counter { value: AtomicU64::new(0) }
    }

    #[inline]
    fn record(_: &StatsdInstrument, cell: &Cell, value: u64, _: Emit<'_>) {
        cell.add_u64(value);
    }
}

/// Up-down counters: the series' level, one `g` line per series that changed while StatsD was
/// active, and every series when StatsD becomes active.
impl Pipeline<UpDownSpec> for StatsdBackend {
    common!();

    fn series(_: &StatsdInstrument) -> Cell {
        Cell::UpDown { value: AtomicI64::new(0), dirty: Default::default() }
    }

    #[inline]
    fn record(_: &StatsdInstrument, cell: &Cell, value: i64, _: Emit<'_>) {
        cell.add_i64(value, true);
    }

    #[inline]
    fn record_off(_: &StatsdInstrument, cell: &Cell, value: i64) {
        cell.add_i64(value, false);
    }

    fn switched(inst: &StatsdInstrument, on: bool) {
        if on {
            inst.lines.series.for_each(&mut |_, cell| cell.mark_dirty());
        }
    }
}

/// Gauges: the last value, one `g` line per series that changed.
impl Pipeline<GaugeSpec> for StatsdBackend {
    common!();

    fn series(_: &StatsdInstrument) -> Cell {
        Cell::Gauge { bits: AtomicU64::new(0), dirty: Default::default() }
    }

    #[inline]
    fn record(_: &StatsdInstrument, cell: &Cell, value: f64, _: Emit<'_>) {
        cell.set_f64(value);
    }
}

/// Histograms: every sample (in milliseconds for a time unit), up to a reservoir per flush.
impl Pipeline<HistogramSpec> for StatsdBackend {
    common!();

    fn series(inst: &StatsdInstrument) -> Cell {
        Cell::Histogram {
            samples: Box::new(Mutex::new(Samples::new(inst.sample_rate))),
            max: inst.max_samples,
        }
    }

    #[inline]
    fn record(inst: &StatsdInstrument, cell: &Cell, value: f64, _: Emit<'_>) {
        if !cell.push_sample(value * inst.millis_factor) {
            inst.telemetry.statsd.samples_sampled_out.fetch_add(1, Relaxed);
        }
    }
}
