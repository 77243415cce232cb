//! Per-interval aggregation of parsed StatsD lines, keyed by metric class + name + sorted tags.
//!
//! - **Key.** Tags are sorted by key; a repeated key keeps its last value. `k:1|c|#a:1,b:2` and
//!   `k:1|c|#b:2,a:1` are the same series. Counters, gauges, sets, timers (`ms`) and histograms
//!   (`h`/`d`) with the same name are different series (they become different OTLP metrics).
//! - **Counters** add `value / sample_rate`. A negative increment is a bad line
//!   (`negative_counter`): OTLP counters are monotonic. A value that is not finite once divided
//!   by its sample rate is a bad line too (`overflow`).
//! - **Gauges** take an absolute value, or adjust it with `+N`/`-N` (from 0 if unset).
//!   Sample rates are ignored, as the reference daemon does.
//! - **Timers and histograms** add each value to explicit buckets (configured bounds; a value
//!   `v` falls in the first bucket whose upper bound is `>= v`) with weight
//!   `round(1 / sample_rate)` (at least 1): OTLP bucket counts are integers.
//! - **Sets** count distinct members per interval, by a 64-bit hash of the member (no copy of
//!   the text is kept), at most `max_set_size` per set and `max_set_members_total` over all sets
//!   (`set_limit` drops beyond either).
//! - **Cardinality.** At most `max_series_per_metric` series per name: further tag sets fold
//!   into the series with the one attribute `otel.metric.overflow=true` (counted as overflow
//!   lines). At most `max_series` in total: beyond it, new series are dropped (`series_limit`).
//! - **Names** must pass `dualmetrics_model::naming::validate_metric_name` (`invalid_name`),
//!   after the reference daemon's own key sanitising when the raw key does not (whitespace runs
//!   become `_`, `/` becomes `-`, other characters outside `[A-Za-z0-9_.;=-]` are removed:
//!   `api latency:1|c` counts as `api_latency`, as the daemon stores it).
//! - **Memory** is bounded by the limits above. The hot path does not allocate for a known
//!   series with up to 32 tags.
//!
//! The DogStatsD timestamp (`|T`) and container id (`|c:`) are parsed but not used: a line counts
//! in the interval in which it arrives.
use crate::config::{AggregateConfig, Temporality};
use crate::telemetry::{BadLine, DropReason, Telemetry};
use dualmetrics_model::naming::validate_metric_name;
use dualmetrics_model::statsd_line::StatsdType;
use dualmetrics_model::statsd_parse::{StatsdLine, Value};
use hashbrown::{HashMap, HashSet, HashTable};
use std::hash::{BuildHasher, Hash, Hasher};
use std::sync::Arc;

/// The overflow attribute key (OpenTelemetry's cardinality-limit convention).
pub const OVERFLOW_KEY: &str = "otel.metric.overflow";
const OVERFLOW_TAGS: [(&str, &str); 1] = [(OVERFLOW_KEY, "true")];
const STACK_TAGS: usize = 32;

/// What an OTLP metric a series becomes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Class {
    /// `c` → monotonic Sum.
    Counter,
    /// `g` → Gauge.
    Gauge,
    /// `ms` → Histogram in unit `ms`.
    Timer,
    /// `h`, `d` → Histogram without a unit.
    Histogram,
    /// `s` → Gauge of distinct members.
    Set,
}

impl Class {
    pub(crate) fn of(ty: StatsdType) -> Class {
        match ty {
            StatsdType::Counter => Class::Counter,
            StatsdType::Gauge => Class::Gauge,
            StatsdType::Timer => Class::Timer,
            StatsdType::Histogram | StatsdType::Distribution => Class::Histogram,
            StatsdType::Set => Class::Set,
        }
    }
}

/// Explicit-bucket histogram state.
#[derive(Debug, Clone, PartialEq)]
pub struct Hist {
    /// One count per bucket (`bounds.len() + 1`).
    pub counts: Vec<u64>,
    /// Number of samples (weighted).
    pub count: u64,
    /// Sum of samples (weighted).
    pub sum: f64,
    /// Smallest sample.
    pub min: f64,
    /// Largest sample.
    pub max: f64,
}

impl Hist {
    fn new(buckets: usize) -> Hist {
        Hist {
            counts: vec![0; buckets + 1],
            count: 0,
            sum: 0.0,
            min: f64::INFINITY,
            max: f64::NEG_INFINITY,
        }
    }
    /// Records `v` with `weight`; `false` (nothing recorded) when the sum would not be finite.
    fn record(&mut self, bounds: &[f64], v: f64, weight: u64) -> bool {
        let sum = self.sum + v * weight as f64;
        if !sum.is_finite() {
            return false;
        }
        let i = bounds.partition_point(|b| *b < v);
        // saturating: a weight is at most 1/MIN_SAMPLE_RATE, but counts live for the process
        self.counts[i] = self.counts[i].saturating_add(weight);
        self.count = self.count.saturating_add(weight);
        self.sum = sum;
        self.min = self.min.min(v);
        self.max = self.max.max(v);
        true
    }
    fn merge(&mut self, other: &Hist) {
        for (a, b) in self.counts.iter_mut().zip(&other.counts) {
            *a = a.saturating_add(*b);
        }
        self.count = self.count.saturating_add(other.count);
        // a running total past f64::MAX stays at ±f64::MAX (each interval's sum is finite)
        self.sum = (self.sum + other.sum).clamp(f64::MIN, f64::MAX);
        self.min = self.min.min(other.min);
        self.max = self.max.max(other.max);
    }
    fn reset(&mut self) {
        self.counts.iter_mut().for_each(|c| *c = 0);
        self.count = 0;
        self.sum = 0.0;
        self.min = f64::INFINITY;
        self.max = f64::NEG_INFINITY;
    }
}

#[derive(Debug)]
enum State {
    Counter { interval: f64, total: f64 },
    Gauge { value: Option<f64> },
    Hist { interval: Hist, total: Hist },
    Set { members: HashSet<u64, foldhash::fast::FixedState> },
}

#[derive(Debug)]
struct Series {
    hash: u64,
    class: Class,
    name: Box<str>,
    tags: Box<[(Box<str>, Box<str>)]>,
    overflow: bool,
    start_ns: u64,
    touched: bool,
    idle_intervals: u64,
    exported: bool,
    /// Zero injection: the total is held back until this time (ns).
    hold_until_ns: u64,
    /// Histogram bounds of a mapped series whose mapping rule sets `buckets` (else the
    /// configured ones).
    bounds: Option<Arc<[f64]>>,
    state: State,
}

impl Series {
    fn same(&self, class: Class, name: &str, tags: &[(&str, &str)]) -> bool {
        self.class == class
            && &*self.name == name
            && self.tags.len() == tags.len()
            && self.tags.iter().zip(tags).all(|((k, v), (k2, v2))| &**k == *k2 && &**v == *v2)
    }
}

/// The value of a series at a flush, as [`crate::translate`] sees it.
#[derive(Debug, Clone, Copy)]
pub enum ViewValue<'a> {
    /// A counter: the total (cumulative) or the interval's sum (delta).
    Counter(f64),
    /// A gauge's current value.
    Gauge(f64),
    /// A timer or histogram: total or interval state.
    Hist(&'a Hist),
    /// A set's distinct members in the interval.
    SetCount(u64),
}

/// One series at a flush.
#[derive(Debug, Clone, Copy)]
pub struct SeriesView<'a> {
    /// Class (which OTLP metric).
    pub class: Class,
    /// Metric name.
    pub name: &'a str,
    /// Sorted tags.
    pub tags: &'a [(Box<str>, Box<str>)],
    /// Whether this is the overflow series.
    pub overflow: bool,
    /// Start time of the point (series start for cumulative, interval start for delta).
    pub start_ns: u64,
    /// Zero injection: export the zero point (value 0 at `start_ns`) for this series. Set on
    /// the first export of a new cumulative series.
    pub first_export: bool,
    /// Histogram bounds when the series has its own (a mapping rule's `buckets`).
    pub bounds: Option<&'a [f64]>,
    /// Zero injection: do not export the total yet (the zero point goes out alone, in an earlier
    /// export and with an earlier timestamp than the first total; the total follows once
    /// `zero_hold_ms` has passed, or at the final flush).
    pub hold_total: bool,
    /// The value.
    pub value: ViewValue<'a>,
}

/// The aggregation state. Owned by one thread; not `Sync`.
#[derive(Debug)]
pub struct Aggregator {
    cfg: AggregateConfig,
    hasher: foldhash::fast::FixedState,
    table: HashTable<Series>,
    per_name: HashMap<Box<str>, usize>,
    interval_start_ns: u64,
    release_held: bool,
    /// Distinct set members held this interval, all sets together (`max_set_members_total`).
    set_members: usize,
}

impl Aggregator {
    /// An empty aggregator whose first interval starts at `start_ns`.
    pub fn new(cfg: AggregateConfig, start_ns: u64) -> Aggregator {
        Aggregator {
            cfg,
            hasher: foldhash::fast::FixedState::with_seed(0x5eed_d1a1),
            table: HashTable::new(),
            per_name: HashMap::new(),
            interval_start_ns: start_ns,
            release_held: false,
            set_members: 0,
        }
    }

    /// Live series.
    pub fn series_count(&self) -> usize {
        self.table.len()
    }

    /// Start of the current interval.
    pub fn interval_start_ns(&self) -> u64 {
        self.interval_start_ns
    }

    fn hash(&self, class: Class, name: &str, tags: &[(&str, &str)]) -> u64 {
        let mut h = self.hasher.build_hasher();
        class.hash(&mut h);
        name.hash(&mut h);
        for (k, v) in tags {
            k.hash(&mut h);
            v.hash(&mut h);
        }
        h.finish()
    }

    /// Adds one parsed line. Returns the reason when the line is refused (the caller counts it).
    pub fn ingest(&mut self, line: &StatsdLine<'_>, tel: &Telemetry) -> Result<(), BadLine> {
        self.ingest_as(line, line.name, &[], None, tel)
    }

    /// Adds one line under another name with extra labels (a mapping rule's result): `labels`
    /// win over the line's tags of the same key. `bounds` are the rule's histogram bounds, used
    /// when the series is created.
    pub fn ingest_as(
        &mut self,
        line: &StatsdLine<'_>,
        name: &str,
        labels: &[(Box<str>, Box<str>)],
        bounds: Option<&Arc<[f64]>>,
        tel: &Telemetry,
    ) -> Result<(), BadLine> {
        let class = Class::of(line.ty);
        if class == Class::Counter
            && line.values().any(|v| matches!(v, Value::Number(n) if n < 0.0))
        {
            return Err(BadLine::NegativeCounter);
        }
        // weighted by the sample rate, a value must stay a finite number (1.7e308 at @0.5 does
        // not): refused and counted rather than carried into a total as infinity
        if line.values().any(|v| matches!(v, Value::Number(n) | Value::Delta(n) if !(n / line.sample_rate).is_finite()))
        {
            return Err(BadLine::Overflow);
        }
        let mut stack = [("", ""); STACK_TAGS];
        let mut heap = Vec::new();
        let mut n = 0;
        let tags: &mut [(&str, &str)] = {
            for t in line.tags() {
                if n < STACK_TAGS {
                    stack[n] = t;
                } else {
                    if heap.is_empty() {
                        heap.extend_from_slice(&stack);
                    }
                    heap.push(t);
                }
                n += 1;
            }
            // mapped labels last: the stable sort + keep-last dedup lets them win
            for (k, v) in labels {
                let t = (&**k, &**v);
                if n < STACK_TAGS {
                    stack[n] = t;
                } else {
                    if heap.is_empty() {
                        heap.extend_from_slice(&stack);
                    }
                    heap.push(t);
                }
                n += 1;
            }
            if n <= STACK_TAGS {
                &mut stack[..n]
            } else {
                &mut heap[..]
            }
        };
        let tags = sort_dedup(tags);
        let hash = self.hash(class, name, tags);
        if let Some(s) = self.table.find_mut(hash, |s| s.same(class, name, tags)) {
            return apply(s, line, &self.cfg, &mut self.set_members, tel);
        }
        self.ingest_new(class, hash, line, name, tags, bounds, tel)
    }

    #[cold]
    #[allow(clippy::too_many_arguments)]
    fn ingest_new(
        &mut self,
        class: Class,
        hash: u64,
        line: &StatsdLine<'_>,
        name: &str,
        tags: &[(&str, &str)],
        bounds: Option<&Arc<[f64]>>,
        tel: &Telemetry,
    ) -> Result<(), BadLine> {
        if validate_metric_name(name).is_err() {
            // The reference daemon stores `api latency` as `api_latency` (its sanitizeKeyName):
            // so does the shim, when that makes a valid name. Such lines take this cold path
            // every time (the table holds the clean name).
            let clean = dualmetrics_model::naming_map::graphite_sanitize(name);
            if clean == name || validate_metric_name(&clean).is_err() {
                return Err(BadLine::InvalidName);
            }
            let hash = self.hash(class, &clean, tags);
            if let Some(s) = self.table.find_mut(hash, |s| s.same(class, &clean, tags)) {
                return apply(s, line, &self.cfg, &mut self.set_members, tel);
            }
            return self.ingest_new(class, hash, line, &clean, tags, bounds, tel);
        }
        let per_name = self.per_name.get(name).copied().unwrap_or(0);
        let (hash, tags, overflow) = if per_name >= self.cfg.max_series_per_metric {
            tel.overflow_line();
            let tags: &[(&str, &str)] = &OVERFLOW_TAGS;
            let h = self.hash(class, name, tags);
            if let Some(s) = self.table.find_mut(h, |s| s.same(class, name, tags)) {
                return apply(s, line, &self.cfg, &mut self.set_members, tel);
            }
            (h, tags, true)
        } else {
            (hash, tags, false)
        };
        if self.table.len() >= self.cfg.max_series {
            tel.count_drop(DropReason::SeriesLimit, 1);
            return Ok(());
        }
        let bounds = bounds.filter(|_| matches!(class, Class::Timer | Class::Histogram)).cloned();
        let buckets = bounds.as_ref().map_or(self.cfg.buckets.len(), |b| b.len());
        let state = match class {
            Class::Counter => State::Counter { interval: 0.0, total: 0.0 },
            Class::Gauge => State::Gauge { value: None },
            Class::Timer | Class::Histogram => {
                State::Hist { interval: Hist::new(buckets), total: Hist::new(buckets) }
            }
            Class::Set => State::Set { members: HashSet::with_hasher(self.hasher.clone()) },
        };
        let mut s = Series {
            hash,
            class,
            name: name.into(),
            tags: tags.iter().map(|(k, v)| (Box::from(*k), Box::from(*v))).collect(),
            overflow,
            start_ns: self.interval_start_ns,
            touched: false,
            idle_intervals: 0,
            exported: false,
            hold_until_ns: 0,
            bounds,
            state,
        };
        apply(&mut s, line, &self.cfg, &mut self.set_members, tel)?;
        if !overflow {
            *self.per_name.entry_ref(name).or_insert(0) += 1;
        }
        self.table.insert_unique(hash, s, |s| s.hash);
        tel.set_series(self.table.len());
        Ok(())
    }

    /// From now on, export totals held back by zero injection (the final flush calls this so
    /// that no total is lost; a never-exported series then gets its zero point and its total in
    /// the same export).
    pub fn release_held_totals(&mut self) {
        self.release_held = true;
    }

    /// Ends the interval at `now_ns`: calls `visit` for every series to export, then resets the
    /// interval state and forgets series idle for `series_ttl_intervals`.
    ///
    /// Cumulative: every counter and histogram (their totals), every gauge with a value, sets
    /// touched in the interval. Delta: only series touched in the interval.
    pub fn flush(&mut self, now_ns: u64, tel: &Telemetry, mut visit: impl FnMut(SeriesView<'_>)) {
        self.set_members = 0; // every set is cleared below
        let cumulative = self.cfg.temporality == Temporality::Cumulative;
        let interval_start = self.interval_start_ns;
        for s in self.table.iter_mut() {
            if let State::Hist { interval, total } = &mut s.state {
                total.merge(interval);
            }
            let touched = s.touched;
            let start_ns = if cumulative { s.start_ns } else { interval_start };
            let value = match &s.state {
                State::Counter { interval, total } => (cumulative || touched)
                    .then_some(ViewValue::Counter(if cumulative { *total } else { *interval })),
                State::Gauge { value } => {
                    value.filter(|_| cumulative || touched).map(ViewValue::Gauge)
                }
                State::Hist { interval, total } => (cumulative || touched)
                    .then_some(ViewValue::Hist(if cumulative { total } else { interval })),
                State::Set { members } => {
                    touched.then_some(ViewValue::SetCount(members.len() as u64))
                }
            };
            if let Some(value) = value {
                let zero_injected = cumulative
                    && matches!(s.class, Class::Counter | Class::Timer | Class::Histogram);
                let first_export = cumulative && !s.exported;
                if zero_injected && first_export {
                    s.hold_until_ns = now_ns.saturating_add(self.cfg.zero_hold_ms * 1_000_000);
                }
                let hold_total = zero_injected
                    && !self.release_held
                    && (first_export || now_ns < s.hold_until_ns);
                // during the hold (after the zero point went out) the series is not exported
                if first_export || !hold_total {
                    visit(SeriesView {
                        class: s.class,
                        name: &s.name,
                        tags: &s.tags,
                        overflow: s.overflow,
                        start_ns,
                        first_export,
                        hold_total,
                        bounds: s.bounds.as_deref(),
                        value,
                    });
                }
                s.exported = true;
            }
            match &mut s.state {
                State::Counter { interval, .. } => *interval = 0.0,
                State::Hist { interval, .. } => interval.reset(),
                State::Set { members } => members.clear(),
                State::Gauge { .. } => {}
            }
            s.idle_intervals = if touched { 0 } else { s.idle_intervals + 1 };
            s.touched = false;
        }
        let ttl = self.cfg.series_ttl_intervals;
        if ttl > 0 {
            let per_name = &mut self.per_name;
            self.table.retain(|s| {
                let keep = s.idle_intervals < ttl;
                if !keep && !s.overflow {
                    if let Some(n) = per_name.get_mut(&s.name) {
                        *n -= 1;
                        if *n == 0 {
                            per_name.remove(&s.name);
                        }
                    }
                }
                keep
            });
        }
        self.interval_start_ns = now_ns;
        tel.set_series(self.table.len());
    }
}

/// Sorts by key (stable) and keeps the last value of a repeated key.
fn sort_dedup<'t, 'a>(tags: &'t mut [(&'a str, &'a str)]) -> &'t [(&'a str, &'a str)] {
    // already sorted with distinct keys (what the SDK and most clients send): nothing to do
    if tags.windows(2).all(|w| w[0].0 < w[1].0) {
        return tags;
    }
    tags.sort_by(|a, b| a.0.cmp(b.0));
    let mut w = 0;
    for r in 0..tags.len() {
        if r + 1 < tags.len() && tags[r + 1].0 == tags[r].0 {
            continue;
        }
        tags[w] = tags[r];
        w += 1;
    }
    &tags[..w]
}

/// Applies one line to its series. A value that would make a running number infinite (two
/// `1e308|c` lines, a gauge pushed past `f64::MAX`, a histogram sum) is not applied and the
/// line is a bad line (`overflow`), so nothing non-finite is ever exported.
fn apply(
    s: &mut Series,
    line: &StatsdLine<'_>,
    cfg: &AggregateConfig,
    set_members: &mut usize,
    tel: &Telemetry,
) -> Result<(), BadLine> {
    s.touched = true;
    match &mut s.state {
        State::Counter { interval, total } => {
            for v in line.values() {
                if let Value::Number(n) = v {
                    let n = n / line.sample_rate;
                    if !(*interval + n).is_finite() || !(*total + n).is_finite() {
                        return Err(BadLine::Overflow);
                    }
                    *interval += n;
                    *total += n;
                }
            }
        }
        State::Gauge { value } => {
            for v in line.values() {
                let next = match v {
                    Value::Number(n) => n,
                    Value::Delta(d) => value.unwrap_or(0.0) + d,
                    Value::Set(_) => continue,
                };
                if !next.is_finite() {
                    return Err(BadLine::Overflow);
                }
                *value = Some(next);
            }
        }
        State::Hist { interval, total } => {
            let weight = ((1.0 / line.sample_rate).round() as u64).max(1);
            for v in line.values() {
                if let Value::Number(n) = v {
                    let bounds = s.bounds.as_deref().unwrap_or(&cfg.buckets);
                    if !interval.record(bounds, n, weight) {
                        return Err(BadLine::Overflow);
                    }
                }
            }
            let _ = total; // merged at flush: one record per sample on the hot path
        }
        State::Set { members } => {
            if let Value::Set(m) = line.value {
                let h = members.hasher().hash_one(m);
                if members.contains(&h) {
                } else if members.len() < cfg.max_set_size
                    && *set_members < cfg.max_set_members_total
                {
                    members.insert(h);
                    *set_members += 1;
                } else {
                    tel.count_drop(DropReason::SetLimit, 1);
                }
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use dualmetrics_model::statsd_parse::Parser;

    type Row = (String, Vec<(String, String)>, String, bool);

    fn agg(cfg: AggregateConfig) -> (Aggregator, Telemetry) {
        (Aggregator::new(cfg, 1_000), Telemetry::default())
    }

    fn feed(a: &mut Aggregator, t: &Telemetry, lines: &[&str]) -> Vec<Result<(), BadLine>> {
        lines.iter().map(|l| a.ingest(&Parser::default().parse(l).unwrap(), t)).collect()
    }

    fn collect(a: &mut Aggregator, t: &Telemetry) -> Vec<Row> {
        let mut out = Vec::new();
        a.flush(2_000, t, |v| {
            let tags = v.tags.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
            let val = match v.value {
                ViewValue::Counter(x) | ViewValue::Gauge(x) => x.to_string(),
                ViewValue::Hist(h) => format!("{}/{}/{:?}", h.count, h.sum, h.counts),
                ViewValue::SetCount(n) => n.to_string(),
            };
            out.push((v.name.to_owned(), tags, val, v.first_export));
        });
        out.sort();
        out
    }

    #[test]
    fn sampled_counter_scales_by_inverse_rate() {
        let (mut a, t) = agg(AggregateConfig::default());
        feed(&mut a, &t, &["k:5|c", "k:3|c", "k:2|c|@0.5"]);
        assert_eq!(collect(&mut a, &t)[0].2, "12");
    }

    #[test]
    fn tag_order_does_not_split_series() {
        let (mut a, t) = agg(AggregateConfig::default());
        feed(&mut a, &t, &["k:1|c|#a:1,b:2", "k:1|c|#b:2,a:1", "k:1|c|#b:2,a:0,a:1"]);
        let out = collect(&mut a, &t);
        assert_eq!(out.len(), 1);
        assert_eq!(out[0].2, "3");
    }

    #[test]
    fn gauge_deltas_adjust() {
        let (mut a, t) = agg(AggregateConfig::default());
        feed(&mut a, &t, &["g:+2|g", "g:40|g", "g:+8|g", "g:-5|g"]);
        assert_eq!(collect(&mut a, &t)[0].2, "43");
    }

    #[test]
    fn timers_fill_buckets_with_sample_weight() {
        let cfg = AggregateConfig { buckets: vec![10.0, 100.0], ..Default::default() };
        let (mut a, t) = agg(cfg);
        feed(&mut a, &t, &["t:5|ms", "t:10|ms", "t:50|ms|@0.5", "t:500|ms"]);
        assert_eq!(collect(&mut a, &t)[0].2, "5/615/[2, 2, 1]");
    }

    #[test]
    fn sets_count_distinct_members_per_interval() {
        let (mut a, t) = agg(AggregateConfig::default());
        feed(&mut a, &t, &["u:alice|s", "u:bob|s", "u:alice|s"]);
        assert_eq!(collect(&mut a, &t)[0].2, "2");
        assert!(collect(&mut a, &t).is_empty(), "an untouched set is not exported");
    }

    #[test]
    fn set_members_are_bounded_over_all_sets_and_the_bound_resets_each_interval() {
        let cfg = AggregateConfig { max_set_members_total: 3, ..Default::default() };
        let (mut a, t) = agg(cfg);
        feed(&mut a, &t, &["u:a|s", "u:b|s", "v:c|s", "v:d|s", "v:c|s", "w:e|s"]);
        assert_eq!(t.snapshot().dropped("set_limit"), 2, "d and e: 3 members held already");
        let sizes: Vec<String> = collect(&mut a, &t).into_iter().map(|r| r.2).collect();
        assert_eq!(sizes.iter().map(|s| s.parse::<u64>().unwrap()).sum::<u64>(), 3);
        feed(&mut a, &t, &["w:e|s", "w:f|s"]);
        assert_eq!(t.snapshot().dropped("set_limit"), 2, "a new interval has room again");
    }

    #[test]
    fn cumulative_counters_keep_totals_and_flag_first_export() {
        // zero_hold_ms 0: the total goes out on the flush after the zero point's
        let (mut a, t) = agg(AggregateConfig { zero_hold_ms: 0, ..Default::default() });
        feed(&mut a, &t, &["k:2|c"]);
        assert!(collect(&mut a, &t)[0].3);
        feed(&mut a, &t, &["k:3|c"]);
        let second = collect(&mut a, &t);
        assert_eq!((second[0].2.as_str(), second[0].3), ("5", false));
    }

    #[test]
    fn delta_exports_only_touched_intervals() {
        let cfg = AggregateConfig { temporality: Temporality::Delta, ..Default::default() };
        let (mut a, t) = agg(cfg);
        feed(&mut a, &t, &["k:2|c"]);
        assert_eq!(collect(&mut a, &t)[0].2, "2");
        assert!(collect(&mut a, &t).is_empty());
    }

    #[test]
    fn overflow_series_past_the_cap() {
        let cfg = AggregateConfig { max_series_per_metric: 2, ..Default::default() };
        let (mut a, t) = agg(cfg);
        feed(&mut a, &t, &["k:1|c|#i:1", "k:1|c|#i:2", "k:1|c|#i:3", "k:1|c|#i:4", "k:1|c|#i:1"]);
        let out = collect(&mut a, &t);
        assert_eq!(out.len(), 3);
        let of: Vec<_> =
            out.iter().filter(|s| s.1 == [(OVERFLOW_KEY.to_owned(), "true".to_owned())]).collect();
        assert_eq!(of[0].2, "2");
        assert_eq!(t.snapshot().overflow_lines, 2);
    }

    #[test]
    fn total_series_limit_drops_new_series() {
        let cfg = AggregateConfig { max_series: 1, ..Default::default() };
        let (mut a, t) = agg(cfg);
        feed(&mut a, &t, &["a:1|c", "b:1|c"]);
        assert_eq!(a.series_count(), 1);
        assert_eq!(t.snapshot().dropped("series_limit"), 1);
    }

    #[test]
    fn a_running_number_that_would_become_infinite_is_a_bad_line_not_infinity() {
        let (mut a, t) = agg(AggregateConfig::default());
        let r = feed(
            &mut a,
            &t,
            &["k:1e308|c", "k:1e308|c", "g:1e308|g", "g:+1e308|g", "h:1e308|ms", "h:1e308|ms"],
        );
        let overflow = Err(BadLine::Overflow);
        assert_eq!(r, [Ok(()), overflow, Ok(()), overflow, Ok(()), overflow]);
        for row in collect(&mut a, &t) {
            assert!(!row.2.contains("inf"), "{row:?}");
        }
    }

    #[test]
    fn keys_are_sanitised_as_the_reference_daemon_stores_them() {
        let (mut a, t) = agg(AggregateConfig::default());
        let r = feed(&mut a, &t, &["api latency:1|c", "api  latency:2|c", "a/b:1|c", "é:1|c"]);
        assert_eq!(r, [Ok(()), Ok(()), Ok(()), Err(BadLine::InvalidName)]);
        // `api latency` and `api  latency` are one series, `api_latency`, and `a/b` is `a-b`
        assert_eq!(a.series_count(), 2);
    }

    #[test]
    fn negative_counter_and_invalid_name_are_bad_lines() {
        let (mut a, t) = agg(AggregateConfig::default());
        let r = feed(&mut a, &t, &["k:-1|c", "1bad:1|c"]);
        assert_eq!(r, [Err(BadLine::NegativeCounter), Err(BadLine::InvalidName)]);
    }

    #[test]
    fn a_value_that_overflows_with_its_sample_rate_is_a_bad_line_not_infinity() {
        let (mut a, t) = agg(AggregateConfig::default());
        let r = feed(&mut a, &t, &["k:1.7e308|c|@0.5", "h:1.7e308|ms|@0.5", "k:1|c|@0.5"]);
        assert_eq!(r, [Err(BadLine::Overflow), Err(BadLine::Overflow), Ok(())]);
        // the smallest accepted rate weighs a sample a million times, and counts saturate
        let mut h = super::Hist::new(2);
        h.record(&[1.0, 10.0], 5.0, u64::MAX);
        h.record(&[1.0, 10.0], 5.0, 1_000_000);
        assert_eq!((h.count, h.counts[1]), (u64::MAX, u64::MAX));
    }

    #[test]
    fn idle_series_expire_after_ttl() {
        let cfg = AggregateConfig { series_ttl_intervals: 2, ..Default::default() };
        let (mut a, t) = agg(cfg);
        feed(&mut a, &t, &["k:1|c"]);
        collect(&mut a, &t);
        collect(&mut a, &t);
        assert_eq!(a.series_count(), 1);
        collect(&mut a, &t);
        assert_eq!(a.series_count(), 0);
    }
}
