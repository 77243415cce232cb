//! A pipeline that keeps every value in memory, read back as an [`InMemory::snapshot`]: what the
//! facade fanned out to one side, without a socket. The fan-out's own tests use it (modes,
//! switches, levels, overflow), and so can a service's test that wants to see what its
//! instruments recorded, through [`crate::DualMetricsBuilder::build_with`].
use std::sync::{Arc, Weak};

use dualmetrics_model::MetricKind;
use parking_lot::Mutex;

use crate::backend::{Backend, Emit, Pipeline, SeriesWalk};
use crate::error::ShutdownError;
use crate::instrument::{CounterSpec, GaugeSpec, HistogramSpec, KindSpec, Spec, UpDownSpec};

/// What one series received, by kind.
#[derive(Debug, Clone, PartialEq)]
pub enum Recorded {
    /// A counter's total.
    Counter(u64),
    /// An up-down counter's level: the sum of every add, in every mode (as the other pipelines
    /// keep it).
    UpDown(i64),
    /// A gauge's last value.
    Gauge(f64),
    /// Every histogram sample, in the order recorded.
    Histogram(Vec<f64>),
}

/// One series in a snapshot.
#[derive(Debug, Clone, PartialEq)]
pub struct RecordedSeries {
    /// The instrument's name.
    pub name: String,
    /// The instrument's kind.
    pub kind: MetricKind,
    /// The call's tags, in the order of the series' first emit (no global tags: those are a
    /// wire pipeline's business).
    pub tags: Vec<(String, String)>,
    /// What the series received.
    pub value: Recorded,
}

/// Keeps what every instrument's series recorded while the mode included this pipeline (and an
/// up-down counter's level in every mode). A series that never recorded here is not in the
/// snapshot.
#[derive(Default)]
pub struct InMemory {
    instruments: Mutex<Vec<Weak<dyn Readable>>>,
}

impl InMemory {
    /// Every recorded series of every live instrument, sorted by name, then tags.
    pub fn snapshot(&self) -> Vec<RecordedSeries> {
        let mut out = Vec::new();
        self.instruments.lock().retain(|i| match i.upgrade() {
            Some(instrument) => {
                instrument.read(&mut out);
                true
            }
            None => false,
        });
        out.sort_by(|a, b| (&a.name, &a.tags).cmp(&(&b.name, &b.tags)));
        out
    }

    /// What the series `name` with exactly `tags` recorded, if it did.
    pub fn get(&self, name: &str, tags: &[(&str, &str)]) -> Option<Recorded> {
        self.snapshot()
            .into_iter()
            .find(|p| {
                p.name == name
                    && p.tags.len() == tags.len()
                    && p.tags.iter().zip(tags).all(|((k, v), (tk, tv))| k == tk && v == tv)
            })
            .map(|p| p.value)
    }
}

/// One instrument's series, read for a snapshot.
trait Readable: Send + Sync {
    fn read(&self, out: &mut Vec<RecordedSeries>);
}

/// The in-memory part of one instrument.
pub struct MemoryInstrument {
    name: String,
    kind: MetricKind,
    series: Arc<dyn SeriesWalk<MemorySeries>>,
}

/// The in-memory part of one series: nothing until its first record.
pub type MemorySeries = Mutex<Option<Recorded>>;

impl Readable for MemoryInstrument {
    fn read(&self, out: &mut Vec<RecordedSeries>) {
        self.series.for_each(&mut |key, series| {
            if let Some(value) = series.lock().clone() {
                out.push(RecordedSeries {
                    name: self.name.clone(),
                    kind: self.kind,
                    tags: key.pairs().map(|(k, v)| (k.to_owned(), v.to_owned())).collect(),
                    value,
                });
            }
        });
    }
}

/// Applies one value of kind `K` to a series' record.
pub trait Apply: KindSpec {
    fn apply(recorded: &mut Option<Recorded>, value: Self::Value);
}

impl Apply for CounterSpec {
    fn apply(recorded: &mut Option<Recorded>, value: u64) {
        match recorded {
            Some(Recorded::Counter(total)) => *total = total.wrapping_add(value),
            _ => *recorded = Some(Recorded::Counter(value)),
        }
    }
}

impl Apply for UpDownSpec {
    fn apply(recorded: &mut Option<Recorded>, value: i64) {
        match recorded {
            Some(Recorded::UpDown(level)) => *level = level.wrapping_add(value),
            _ => *recorded = Some(Recorded::UpDown(value)),
        }
    }
}

impl Apply for GaugeSpec {
    fn apply(recorded: &mut Option<Recorded>, value: f64) {
        *recorded = Some(Recorded::Gauge(value));
    }
}

impl Apply for HistogramSpec {
    fn apply(recorded: &mut Option<Recorded>, value: f64) {
        match recorded {
            Some(Recorded::Histogram(samples)) => samples.push(value),
            _ => *recorded = Some(Recorded::Histogram(vec![value])),
        }
    }
}

impl<K: Apply> Pipeline<K> for InMemory {
    type Instrument = Arc<MemoryInstrument>;
    type Series = MemorySeries;

    fn instrument(
        &self,
        spec: &Spec,
        series: Arc<dyn SeriesWalk<MemorySeries>>,
    ) -> Self::Instrument {
        let instrument =
            Arc::new(MemoryInstrument { name: spec.name.clone(), kind: K::KIND, series });
        let readable: Arc<dyn Readable> = instrument.clone();
        self.instruments.lock().push(Arc::downgrade(&readable));
        instrument
    }

    fn series(_: &Self::Instrument) -> MemorySeries {
        Mutex::new(None)
    }

    fn record(_: &Self::Instrument, series: &MemorySeries, value: K::Value, _: Emit<'_>) {
        K::apply(&mut series.lock(), value);
    }

    fn record_off(_: &Self::Instrument, series: &MemorySeries, value: K::Value) {
        // A level is kept in every mode; other kinds record only while the mode includes us.
        if K::KIND == MetricKind::UpDownCounter {
            K::apply(&mut series.lock(), value);
        }
    }
}

impl Backend for InMemory {
    const NAME: &'static str = "memory";

    fn flush(&self) -> Result<(), ShutdownError> {
        Ok(())
    }

    fn shutdown(&self, _deadline: std::time::Duration) -> Result<(), ShutdownError> {
        Ok(())
    }
}
