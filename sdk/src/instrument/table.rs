//! The series table of one instrument: one [`Series`] per tag set (each pipeline's part of that
//! tag set), found by a hash of the borrowed tags under a read lock. The pipelines walk it
//! ([`SeriesWalk`], through [`view`]) at their flush or collect, and, for instruments that forget
//! (delta temporality), the new pipeline's collect has it forget the interval's series
//! ([`OnCollect`]).
use std::sync::atomic::Ordering::Relaxed;
use std::sync::{Arc, OnceLock, Weak};

use parking_lot::{Mutex, RwLock};

use super::tags::{TagKey, Tags};
use super::KindSpec;
use crate::backend::{OnCollect, Pipeline, SeriesWalk};
use crate::telemetry::Telemetry;

/// One tag set of one instrument, resolved for both pipelines.
pub(crate) struct Series<
    K: KindSpec,
    L: Pipeline<K> = crate::backend::statsd::StatsdBackend,
    N: Pipeline<K> = crate::backend::otel::OtelBackend,
> {
    /// The call's tags, compact: the map's key, and what each pipeline builds its tags or
    /// attributes from.
    pub(super) key: TagKey,
    /// The legacy pipeline's part.
    pub(super) legacy: L::Series,
    /// The new pipeline's part.
    pub(super) new: N::Series,
}

/// The series map: a hash table of series, each holding its own key (one pointer per slot).
pub(super) type SeriesMap<K, L, N> = hashbrown::HashTable<Arc<Series<K, L, N>>>;

/// The series of one instrument. Shared with the pipelines' walks and, when the instrument
/// forgets idle series (delta temporality), with the new pipeline's collect hook.
pub(crate) struct Table<K: KindSpec, L: Pipeline<K>, N: Pipeline<K>> {
    pub(super) map: RwLock<SeriesMap<K, L, N>>,
    pub(super) hasher: foldhash::fast::RandomState,
    /// The series that takes every tag set past the cardinality limit.
    pub(super) overflow: OnceLock<Arc<Series<K, L, N>>>,
    /// Series a delta collect forgot that a pipeline has not sent yet, kept for its next flush.
    retired: Mutex<Vec<Arc<Series<K, L, N>>>>,
    telemetry: Arc<Telemetry>,
}

impl<K: KindSpec, L: Pipeline<K>, N: Pipeline<K>> Table<K, L, N> {
    /// An empty table.
    pub(super) fn new(telemetry: Arc<Telemetry>) -> Self {
        Table {
            map: RwLock::new(SeriesMap::new()),
            hasher: foldhash::fast::RandomState::default(),
            overflow: OnceLock::new(),
            retired: Mutex::new(Vec::new()),
            telemetry,
        }
    }

    #[inline]
    pub(super) fn get<'m>(
        map: &'m SeriesMap<K, L, N>,
        hash: u64,
        tags: Tags<'_>,
    ) -> Option<&'m Arc<Series<K, L, N>>> {
        map.find(hash, |s| s.key.matches(tags))
    }

    /// Runs `f` on every series, the overflow series included, under the map's read lock.
    pub(super) fn for_each_series(&self, mut f: impl FnMut(&Series<K, L, N>)) {
        let map = self.map.read();
        for series in map.iter().chain(self.overflow.get()) {
            f(series);
        }
    }

    /// Runs `f` on every series forgotten since the last call, then lets them go.
    fn for_each_retired(&self, mut f: impl FnMut(&Series<K, L, N>)) {
        let mut retired = std::mem::take(&mut *self.retired.lock());
        for series in &retired {
            f(series);
        }
        retired.clear();
        // The emptied buffer goes back for the next collect (an interval's worth of pointers,
        // not reallocated every interval), unless a collect refilled the slot meanwhile.
        let mut slot = self.retired.lock();
        if slot.is_empty() {
            *slot = retired;
        }
    }
}

/// One pipeline's view of a table: the series' keys and that pipeline's parts.
struct View<K: KindSpec, L: Pipeline<K>, N: Pipeline<K>, S> {
    table: Weak<Table<K, L, N>>,
    part: fn(&Series<K, L, N>) -> &S,
}

/// The walk over `table` that a pipeline gets at registration, seeing its own `part` of each
/// series. It holds the table weakly: a dropped instrument's walk sees nothing.
pub(super) fn view<K: KindSpec, L: Pipeline<K>, N: Pipeline<K>, S: 'static>(
    table: &Arc<Table<K, L, N>>,
    part: fn(&Series<K, L, N>) -> &S,
) -> Arc<dyn SeriesWalk<S>> {
    Arc::new(View { table: Arc::downgrade(table), part })
}

impl<K: KindSpec, L: Pipeline<K>, N: Pipeline<K>, S: 'static> SeriesWalk<S> for View<K, L, N, S> {
    fn for_each(&self, f: &mut dyn FnMut(&TagKey, &S)) {
        if let Some(table) = self.table.upgrade() {
            table.for_each_series(|s| f(&s.key, (self.part)(s)));
        }
    }

    fn for_each_forgotten(&self, f: &mut dyn FnMut(&TagKey, &S)) {
        if let Some(table) = self.table.upgrade() {
            table.for_each_retired(|s| f(&s.key, (self.part)(s)));
        }
    }
}

impl<K: KindSpec, L: Pipeline<K>, N: Pipeline<K>> OnCollect for Table<K, L, N> {
    /// Delta forgetting, run at the start of every collect: every series no bound handle holds
    /// (the map holds the only reference) is dropped, used during the interval or not, as
    /// OpenTelemetry's delta aggregation drains every tracker at each collect. Emits hold the
    /// map's read lock while they record, so none is under way here. Each pipeline releases its
    /// part at once ([`Pipeline::release`]): the OTLP one drops the bound instrument, which
    /// releases the SDK's tracker, so the collect that follows exports what was recorded into it
    /// and then evicts it (opentelemetry_sdk 0.33 never evicts a tracker a bound instrument
    /// holds). A series a pipeline has not sent yet ([`Pipeline::pending`]: a StatsD cell with a
    /// value) waits in `retired` for that pipeline's next flush, which drains it once more and
    /// then lets it go, so nothing recorded is lost. A forgotten tag set that comes back is resolved again like
    /// a new one (allocating, as OpenTelemetry's unbound delta path does).
    ///
    /// So the table holds one interval's series, like the SDK, and a tag set used in interval `n`
    /// no longer counts toward the cardinality limit in interval `n + 1`. The table keeps the
    /// capacity the interval needed (it shrinks only below a quarter of it): regrowing it from
    /// empty every interval would allocate and free ever larger blocks each time, which the
    /// cardinality benchmark measured as allocator fragmentation (peak RSS), not as live data.
    fn on_collect(&self) {
        let mut map = self.map.write();
        let interval_series = map.len();
        let mut retired = self.retired.lock();
        map.retain(|s| {
            let Some(series) = Arc::get_mut(s) else {
                return true; // a bound handle (or an emit that just created it) holds it
            };
            N::release(&mut series.new);
            L::release(&mut series.legacy);
            if L::pending(&series.legacy) || N::pending(&series.new) {
                retired.push(Arc::clone(s));
            }
            false
        });
        drop(retired);
        let evicted = interval_series - map.len();
        if map.capacity() > 64 && interval_series < map.capacity() / 4 {
            map.shrink_to(interval_series, |s| s.key.hash_with(&self.hasher));
        }
        drop(map);
        if evicted > 0 {
            self.telemetry.series_evicted.fetch_add(evicted as u64, Relaxed);
        }
    }
}
