//! The series table of one instrument: one [`Series`] per tag set (the StatsD cell and the
//! OpenTelemetry side of that tag set), found by a hash of the borrowed tags under a read lock.
//! The table is also what the StatsD flusher drains ([`StatsdSource`]) and, for delta
//! instruments, what forgets the interval's series at each collect ([`OnCollect`]); it builds
//! the OpenTelemetry attributes of a series from its compact tag key.
use std::sync::atomic::{AtomicU8, Ordering::Relaxed};
use std::sync::{Arc, OnceLock};

use dualmetrics_model::statsd_line::tags_suffix;
use opentelemetry::KeyValue;
use parking_lot::{Mutex, RwLock};

use super::tags::{TagKey, Tags};
use super::{Context, Core, KindSpec, Spec};
use crate::backend::otel::OnCollect;
use crate::backend::statsd::{Cell, Drain, StatsdSource};
use crate::telemetry::Telemetry;

/// One tag set of one instrument, resolved for both pipelines.
///
/// The OpenTelemetry side is made on the first OTLP record, not at creation: a bound instrument
/// (or an observed total) that never recorded still exports a zero point, which would put series
/// into the new backend that the service never sent there (in `legacy` mode, for instance). What
/// it is depends on the kind: a cumulative counter's running total, observed at collect
/// ([`kinds::CounterOtel`]); an up-down counter's attributes, built at its first observation
/// ([`kinds::UpDownSpec`]); otherwise the SDK's bound instrument, whose attributes are rebuilt
/// from the key then, not kept (OpenTelemetry keeps its own copy).
pub(crate) struct Series<K: KindSpec> {
    /// The call's tags, compact: the map's key, and the source of the attributes at binding.
    pub(super) key: TagKey,
    /// What StatsD gets at the next flush (the line's prefix, type and tags are built from the
    /// instrument and the key at that flush, not kept per series).
    pub statsd: Cell,
    pub(super) otel: OnceLock<K::OtelBound>,
}

impl<K: KindSpec> Series<K> {
    /// The bound OpenTelemetry instrument, bound now if this is the first OTLP record.
    #[inline]
    pub(crate) fn otel(&self, core: &Core<K>) -> &K::OtelBound {
        if let Some(bound) = self.otel.get() {
            return bound;
        }
        self.bind_otel(core)
    }

    #[cold]
    fn bind_otel(&self, core: &Core<K>) -> &K::OtelBound {
        self.otel.get_or_init(|| {
            K::bind(&core.otel, &core.series, || core.series.otel_attributes(&self.key))
        })
    }
}

/// The series map: a hash table of series, each holding its own key (one pointer per slot).
pub(super) type SeriesMap<K> = hashbrown::HashTable<Arc<Series<K>>>;

/// The series of one instrument. Shared with the OTLP reader's collect hook when the instrument
/// forgets idle series (delta temporality).
pub(crate) struct Table<K: KindSpec> {
    pub(super) map: RwLock<SeriesMap<K>>,
    pub(super) hasher: foldhash::fast::RandomState,
    /// The series that takes every tag set past the cardinality limit.
    pub(super) overflow: OnceLock<Arc<Series<K>>>,
    /// Series a delta collect forgot, kept for the StatsD flush that sends their last values.
    pub(super) retired: Mutex<Vec<Arc<Series<K>>>>,
    /// The instrument's mode bits, kept as they were before a shutdown closed it: what an
    /// up-down counter's collect callback reads (the shutdown's final export still observes).
    pub(super) open_mode: AtomicU8,
    /// `name:` of the StatsD lines.
    pub(super) statsd_line_prefix: Box<str>,
    pub(super) statsd_type: dualmetrics_model::statsd_line::StatsdType,
    pub(super) global_tags: Vec<(String, String)>,
    /// The global tags as OpenTelemetry attributes, built once.
    pub(super) global_attrs: Vec<KeyValue>,
    /// Tag keys seen so far, shared by every series' attributes.
    pub(super) otel_keys: Mutex<Vec<opentelemetry::Key>>,
    pub(crate) telemetry: Arc<Telemetry>,
}

/// Attributes (global tags and the call's tags) an unbound delta emit builds on the stack; more
/// spill to the heap.
pub(super) const INLINE_ATTRIBUTES: usize = 8;

/// Tag keys an instrument shares between its series' attributes (tag keys are few; past this,
/// each series gets its own copy).
const MAX_SHARED_TAG_KEYS: usize = 64;

impl<K: KindSpec> Table<K> {
    /// An empty table for the instrument `spec` describes.
    pub(super) fn new(spec: &Spec, mode_bits: u8, ctx: &Context) -> Self {
        Table {
            map: RwLock::new(SeriesMap::new()),
            hasher: foldhash::fast::RandomState::default(),
            overflow: OnceLock::new(),
            retired: Mutex::new(Vec::new()),
            open_mode: AtomicU8::new(mode_bits),
            statsd_line_prefix: format!("{}:", spec.statsd_name).into(),
            statsd_type: spec.statsd_type,
            global_tags: ctx.global_tags.clone(),
            global_attrs: ctx
                .global_tags
                .iter()
                .map(|(k, v)| {
                    KeyValue::new(
                        opentelemetry::Key::from(Arc::<str>::from(k.as_str())),
                        opentelemetry::Value::from(Arc::<str>::from(v.as_str())),
                    )
                })
                .collect(),
            otel_keys: Mutex::new(Vec::new()),
            telemetry: Arc::clone(&ctx.telemetry),
        }
    }

    #[inline]
    pub(super) fn get<'m>(
        map: &'m SeriesMap<K>,
        hash: u64,
        tags: Tags<'_>,
    ) -> Option<&'m Arc<Series<K>>> {
        map.find(hash, |s| s.key.matches(tags))
    }

    /// Runs `f` on every series, the overflow series included, under the map's read lock.
    pub(super) fn for_each_series(&self, mut f: impl FnMut(&Series<K>)) {
        let map = self.map.read();
        for series in map.iter().chain(self.overflow.get()) {
            f(series);
        }
    }

    /// The OpenTelemetry attributes of `key`: global tags with the key's tags over them, sorted
    /// by key as OpenTelemetry sorts them (its tracker map then keeps one key per series, not
    /// the given order and the sorted one). Global tags and tag keys are shared `Arc<str>`s, so
    /// the copy the SDK keeps allocates only the series' own tag values.
    pub(super) fn otel_attributes(&self, key: &TagKey) -> Vec<KeyValue> {
        let mut attrs = Vec::with_capacity(self.global_attrs.len() + key.len());
        self.fill_otel_attributes(key, &mut attrs);
        attrs
    }

    /// [`Self::otel_attributes`] into `attrs` (empty), which may live on the stack.
    pub(super) fn fill_otel_attributes<A>(&self, key: &TagKey, attrs: &mut A)
    where
        A: Extend<KeyValue> + std::ops::DerefMut<Target = [KeyValue]>,
    {
        attrs.extend(self.global_attrs.iter().cloned());
        let mut keys = self.otel_keys.lock();
        for (k, v) in key.pairs() {
            // An `Arc<str>`: the SDK's copy shares it instead of copying the string.
            let value = opentelemetry::Value::from(Arc::<str>::from(v));
            match attrs.iter_mut().find(|kv| kv.key.as_str() == k) {
                Some(kv) => kv.value = value,
                None => {
                    let shared = match keys.iter().find(|key| key.as_str() == k) {
                        Some(key) => key.clone(),
                        None => {
                            let key = opentelemetry::Key::from(Arc::<str>::from(k));
                            if keys.len() < MAX_SHARED_TAG_KEYS {
                                keys.push(key.clone());
                            }
                            key
                        }
                    };
                    attrs.extend(std::iter::once(KeyValue::new(shared, value)));
                }
            }
        }
        drop(keys);
        attrs.sort_unstable_by(|a, b| a.key.cmp(&b.key));
    }

    pub(super) fn drain_series(&self, series: &Series<K>, out: &mut Drain<'_>) {
        out.cell(&series.statsd, &self.statsd_line_prefix, self.statsd_type, || {
            // Global tags (a call tag with the same key wins, in the global tag's place), then
            // the call's other tags: the order `merged` gives, without building it.
            let key = &series.key;
            let global = self.global_tags.iter().map(|(gk, gv)| {
                let v = key.pairs().find(|(k, _)| k == gk).map_or(gv.as_str(), |(_, v)| v);
                (gk.as_str(), v)
            });
            let own = key.pairs().filter(|(k, _)| !self.global_tags.iter().any(|(gk, _)| gk == k));
            tags_suffix(global.chain(own))
        });
    }
}

impl<K: KindSpec> StatsdSource for Table<K> {
    /// Drains every series' cell (under the read lock: series creation for this instrument
    /// waits for the walk, emits do not), the overflow series, and the series forgotten since
    /// the last flush, which are then let go.
    fn drain(&self, out: &mut Drain<'_>) {
        for series in self.map.read().iter() {
            self.drain_series(series, out);
        }
        if let Some(series) = self.overflow.get() {
            self.drain_series(series, out);
        }
        let mut retired = std::mem::take(&mut *self.retired.lock());
        for series in &retired {
            self.drain_series(series, out);
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

impl<K: KindSpec> OnCollect for Table<K> {
    /// Delta forgetting, run at the start of every collect: every series no bound handle holds
    /// (the map holds the only reference) is dropped, used during the interval or not, as
    /// OpenTelemetry's delta aggregation drains every tracker at each collect. Emits hold the
    /// map's read lock while they record, so none is under way here. The bound OpenTelemetry
    /// instrument is dropped at once, which releases the SDK's tracker: the collect that follows
    /// exports what was recorded into it and then evicts it (opentelemetry_sdk 0.33 never evicts a
    /// tracker a bound instrument holds). A series whose StatsD cell still has something to send
    /// waits in `retired` for the next StatsD flush, which drains it once more and then lets it
    /// go, so nothing recorded is lost. A forgotten tag set that comes back is resolved again like
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
            drop(series.otel.take());
            if !series.statsd.is_empty() {
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
