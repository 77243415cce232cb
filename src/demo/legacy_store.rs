//! The embedded legacy backend: a StatsD UDP receiver that aggregates per flush interval the way
//! the reference daemon (statsd 0.9.0) does, and keeps the Graphite series it would have written,
//! queryable through the comparator's [`QueryAdapter`] with the Graphite targets it generates.
//!
//! # What one flush writes (`legacyNamespace: false`, `globalPrefix: stats`)
//! - counter `K` (and DogStatsD `h`/`d`, which the daemon counts): `stats.counters.K.count` (the
//!   sum of `value / sample_rate` since the last flush) and `stats.counters.K.rate` (per second);
//!   a known counter without data writes 0 (the daemon's `deleteCounters: false`);
//! - gauge `K`: `stats.gauges.K`, the last value, written every flush once seen; `+n`/`-n` adjust;
//! - timer `K`: `stats.timers.K.{count,count_ps,lower,upper,mean,median,std,sum,sum_squares}` and
//!   per percentile threshold (default 90) `upper_90`, `mean_90`, `sum_90`, computed like the
//!   daemon's `process_metrics` (`round(p/100 · n)` values below the threshold); a known timer
//!   without data writes only `count` and `count_ps` (0);
//! - set `K`: `stats.sets.K.count`, the number of distinct members.
//!
//! DogStatsD tags become Graphite tags, `name;k=v;…` sorted by key
//! ([`dualmetrics_model::naming_map::graphite_tagged`]). Points are stamped with the flush time
//! in whole seconds, rounded as the daemon does.
//!
//! Names, tag keys and tag values are sanitised like the daemon's `sanitizeKeyName` (on by
//! default): whitespace runs become `_`, `/` becomes `-`, and characters outside
//! `[A-Za-z0-9_.;=-]` are removed — so a tag `route:/cart` is stored as `route=-cart`, while the
//! OTLP side keeps `/cart`. See [`sanitize`].
//!
//! # Queries answered
//! `seriesByTag('name=N'[, 'k=v' | 'k!=v', …])` (tagged series) and a plain dotted path without
//! wildcards (untagged series) — the targets `dualmetrics compare` generates. Anything else is
//! refused with [`QueryError::Rejected`] naming what is supported.
use std::collections::{BTreeMap, HashMap, HashSet};
use std::net::{SocketAddr, UdpSocket};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use dualmetrics_compare::{QueryAdapter, QueryError, Series, TimeRange};
use dualmetrics_model::naming_map::{graphite_tagged, timer_percentile_stat, GraphiteNaming};
use dualmetrics_model::statsd_line::StatsdType;
use dualmetrics_model::statsd_parse::{packet_lines, Parser, Value};

use super::error::DemoError;

/// The daemon's default `percentThreshold`.
pub const DEFAULT_PERCENTILES: [f64; 1] = [90.0];
/// Largest datagram read (bytes); the SDK's packets are far smaller.
const MAX_DATAGRAM: usize = 65_535;
/// How often the receive loop looks at the stop flag.
const POLL: Duration = Duration::from_millis(50);

/// A StatsD key with its sorted DogStatsD tags.
type Key = (String, Vec<(String, String)>);
/// One Graphite point of a flush: name without tags, the tags, the value.
type FlushRow<'a> = (String, &'a Vec<(String, String)>, f64);

#[derive(Default)]
struct Aggregates {
    counters: HashMap<Key, f64>,
    gauges: HashMap<Key, f64>,
    timers: HashMap<Key, Vec<f64>>,
    timer_counters: HashMap<Key, f64>,
    sets: HashMap<Key, HashSet<String>>,
}

/// A stored Graphite series: its name (without tags) and tags.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
struct SeriesKey {
    name: String,
    tags: BTreeMap<String, String>,
}

/// What the receiver has seen; every refused line is counted.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LegacyStats {
    /// Datagrams read.
    pub packets: u64,
    /// Lines aggregated.
    pub lines: u64,
    /// Lines refused by the parser (the daemon's `bad_lines_seen`).
    pub bad_lines: u64,
    /// Flushes done.
    pub flushes: u64,
    /// Graphite points stored.
    pub points: u64,
}

struct Inner {
    naming: GraphiteNaming,
    percentiles: Vec<f64>,
    flush_interval: Duration,
    agg: Mutex<Aggregates>,
    series: Mutex<BTreeMap<SeriesKey, Vec<(i64, f64)>>>,
    stop: AtomicBool,
    packets: AtomicU64,
    lines: AtomicU64,
    bad_lines: AtomicU64,
    flushes: AtomicU64,
    points: AtomicU64,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// The embedded StatsD daemon and Graphite store. Stops its threads when dropped.
pub struct LegacyStore {
    inner: Arc<Inner>,
    addr: SocketAddr,
    threads: Vec<JoinHandle<()>>,
}

impl LegacyStore {
    /// Binds `127.0.0.1:0` and starts receiving and flushing every `flush_interval`.
    ///
    /// # Errors
    /// The socket cannot be bound or configured.
    pub fn start(flush_interval: Duration) -> Result<LegacyStore, DemoError> {
        let socket = UdpSocket::bind(("127.0.0.1", 0))
            .map_err(|e| DemoError::Setup(format!("bind the StatsD receiver: {e}")))?;
        socket
            .set_read_timeout(Some(POLL))
            .map_err(|e| DemoError::Setup(format!("StatsD receiver read timeout: {e}")))?;
        let addr = socket
            .local_addr()
            .map_err(|e| DemoError::Setup(format!("StatsD receiver address: {e}")))?;
        let inner = Arc::new(Inner {
            naming: GraphiteNaming::default(),
            percentiles: DEFAULT_PERCENTILES.to_vec(),
            flush_interval: flush_interval.max(Duration::from_millis(100)),
            agg: Mutex::new(Aggregates::default()),
            series: Mutex::new(BTreeMap::new()),
            stop: AtomicBool::new(false),
            packets: AtomicU64::new(0),
            lines: AtomicU64::new(0),
            bad_lines: AtomicU64::new(0),
            flushes: AtomicU64::new(0),
            points: AtomicU64::new(0),
        });
        let rx = Arc::clone(&inner);
        let receiver = std::thread::Builder::new()
            .name("demo-statsd-rx".into())
            .spawn(move || rx.receive(&socket))
            .map_err(|e| DemoError::Setup(format!("start the StatsD receiver: {e}")))?;
        let fl = Arc::clone(&inner);
        let flusher = std::thread::Builder::new()
            .name("demo-statsd-flush".into())
            .spawn(move || fl.flush_loop())
            .map_err(|e| DemoError::Setup(format!("start the StatsD flusher: {e}")))?;
        Ok(LegacyStore { inner, addr, threads: vec![receiver, flusher] })
    }

    /// The bound UDP address.
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// Counters of what was received and stored.
    pub fn stats(&self) -> LegacyStats {
        let i = &self.inner;
        LegacyStats {
            packets: i.packets.load(Relaxed),
            lines: i.lines.load(Relaxed),
            bad_lines: i.bad_lines.load(Relaxed),
            flushes: i.flushes.load(Relaxed),
            points: i.points.load(Relaxed),
        }
    }

    /// Every stored series as its Graphite tagged name (`name;k=v`), for inspection.
    pub fn series_names(&self) -> Vec<String> {
        lock(&self.inner.series)
            .keys()
            .map(|k| {
                let tags: Vec<(&str, &str)> =
                    k.tags.iter().map(|(a, b)| (a.as_str(), b.as_str())).collect();
                graphite_tagged(&k.name, &tags)
            })
            .collect()
    }
}

impl Drop for LegacyStore {
    fn drop(&mut self) {
        self.inner.stop.store(true, Relaxed);
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
    }
}

fn unix_now() -> f64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0.0, |d| d.as_secs_f64())
}

impl Inner {
    fn receive(&self, socket: &UdpSocket) {
        let parser = Parser::default();
        let mut buf = vec![0u8; MAX_DATAGRAM];
        while !self.stop.load(Relaxed) {
            let n = match socket.recv(&mut buf) {
                Ok(n) => n,
                Err(_) => continue, // timeout: look at the stop flag again
            };
            self.packets.fetch_add(1, Relaxed);
            let mut agg = lock(&self.agg);
            for raw in packet_lines(&buf[..n]) {
                match parser.parse_bytes(raw) {
                    Ok(line) => {
                        self.lines.fetch_add(1, Relaxed);
                        let mut tags: Vec<(String, String)> =
                            line.tags().map(|(k, v)| (sanitize(k), sanitize(v))).collect();
                        tags.sort();
                        let key: Key = (sanitize(line.name), tags);
                        let rate = line.sample_rate;
                        for value in line.values() {
                            agg.add(&key, line.ty, value, rate);
                        }
                    }
                    Err(_) => {
                        self.bad_lines.fetch_add(1, Relaxed);
                    }
                }
            }
        }
    }

    fn flush_loop(&self) {
        let mut next = std::time::Instant::now() + self.flush_interval;
        while !self.stop.load(Relaxed) {
            let now = std::time::Instant::now();
            if now < next {
                std::thread::sleep((next - now).min(POLL));
                continue;
            }
            next += self.flush_interval;
            self.flush();
        }
    }

    /// One flush: the daemon's `process_metrics` and graphite backend, stored instead of sent.
    fn flush(&self) {
        let ts = unix_now().round() as i64;
        let secs = self.flush_interval.as_secs_f64();
        let mut out: Vec<FlushRow<'_>> = Vec::new();
        let mut agg = lock(&self.agg);
        let n = &self.naming;
        for (key, v) in &agg.counters {
            out.push((n.counter_count(&key.0), &key.1, *v));
            out.push((n.counter_rate(&key.0), &key.1, *v / secs));
        }
        for (key, v) in &agg.gauges {
            out.push((n.gauge(&key.0), &key.1, *v));
        }
        for (key, values) in &agg.timers {
            let count = agg.timer_counters.get(key).copied().unwrap_or(0.0);
            for (stat, v) in timer_stats(values, count, secs, &self.percentiles) {
                out.push((n.timer(&key.0, &stat), &key.1, v));
            }
        }
        for (key, members) in &agg.sets {
            let name = format!("{}.sets.{}.count", n.global_prefix, key.0);
            out.push((name, &key.1, members.len() as f64));
        }
        let written = out.len() as u64;
        let mut series = lock(&self.series);
        for (name, tags, v) in out {
            let key = SeriesKey { name, tags: tags.iter().cloned().collect() };
            series.entry(key).or_default().push((ts, v));
        }
        drop(series);
        self.points.fetch_add(written, Relaxed);
        agg.reset_for_next_flush();
        self.flushes.fetch_add(1, Relaxed);
    }
}

impl Aggregates {
    fn add(&mut self, key: &Key, ty: StatsdType, value: Value<'_>, rate: f64) {
        let rate = if rate > 0.0 { rate } else { 1.0 };
        match (ty, value) {
            (StatsdType::Counter | StatsdType::Histogram | StatsdType::Distribution, v) => {
                let x = match v {
                    Value::Number(x) | Value::Delta(x) => x,
                    Value::Set(_) => return,
                };
                *self.counters.entry(key.clone()).or_insert(0.0) += x / rate;
            }
            (StatsdType::Gauge, Value::Number(x)) => {
                self.gauges.insert(key.clone(), x);
            }
            (StatsdType::Gauge, Value::Delta(x)) => {
                *self.gauges.entry(key.clone()).or_insert(0.0) += x;
            }
            (StatsdType::Timer, Value::Number(x) | Value::Delta(x)) => {
                self.timers.entry(key.clone()).or_default().push(x);
                *self.timer_counters.entry(key.clone()).or_insert(0.0) += 1.0 / rate;
            }
            (StatsdType::Set, v) => {
                let member = match v {
                    Value::Set(s) => s.to_owned(),
                    Value::Number(x) | Value::Delta(x) => x.to_string(),
                };
                self.sets.entry(key.clone()).or_default().insert(member);
            }
            _ => {}
        }
    }

    /// The daemon's defaults: counters and timers are kept at zero, gauges keep their value,
    /// sets are emptied.
    fn reset_for_next_flush(&mut self) {
        self.counters.values_mut().for_each(|v| *v = 0.0);
        self.timers.values_mut().for_each(Vec::clear);
        self.timer_counters.values_mut().for_each(|v| *v = 0.0);
        self.sets.values_mut().for_each(HashSet::clear);
    }
}

pub use dualmetrics_model::naming_map::graphite_sanitize as sanitize;

/// The statistics the daemon writes for one timer in one flush.
fn timer_stats(values: &[f64], count: f64, secs: f64, pcts: &[f64]) -> Vec<(String, f64)> {
    let mut out = vec![("count".to_owned(), count), ("count_ps".to_owned(), count / secs)];
    if values.is_empty() {
        return out;
    }
    let mut v = values.to_vec();
    v.sort_by(f64::total_cmp);
    let n = v.len();
    let mut cumulative = Vec::with_capacity(n);
    let mut cumulative_sq = Vec::with_capacity(n);
    let (mut s, mut sq) = (0.0, 0.0);
    for x in &v {
        s += x;
        sq += x * x;
        cumulative.push(s);
        cumulative_sq.push(sq);
    }
    for &p in pcts {
        // JavaScript's Math.round: halves go up.
        let in_threshold = (p.abs() / 100.0 * n as f64 + 0.5).floor() as usize;
        if in_threshold == 0 || p <= 0.0 {
            continue;
        }
        let i = in_threshold.min(n) - 1;
        let stat = timer_percentile_stat(p);
        let suffix = stat.trim_start_matches("upper_");
        out.push((stat.clone(), v[i]));
        out.push((format!("sum_{suffix}"), cumulative[i]));
        out.push((format!("mean_{suffix}"), cumulative[i] / (i + 1) as f64));
    }
    let sum = cumulative[n - 1];
    let mean = sum / n as f64;
    let var = v.iter().map(|x| (x - mean) * (x - mean)).sum::<f64>() / n as f64;
    let mid = n / 2;
    let median = if n % 2 == 1 { v[mid] } else { (v[mid - 1] + v[mid]) / 2.0 };
    out.extend([
        ("lower".to_owned(), v[0]),
        ("upper".to_owned(), v[n - 1]),
        ("sum".to_owned(), sum),
        ("sum_squares".to_owned(), cumulative_sq[n - 1]),
        ("mean".to_owned(), mean),
        ("median".to_owned(), median),
        ("std".to_owned(), var.sqrt()),
    ]);
    out
}

/// A parsed Graphite target of the supported subset.
#[derive(Debug, PartialEq)]
enum Target {
    /// `seriesByTag(...)`: `(tag, equal?, value)` expressions; one of them is on `name`.
    ByTag(Vec<(String, bool, String)>),
    /// A plain path (untagged series).
    Path(String),
}

fn unsupported(target: &str, why: &str) -> QueryError {
    QueryError::Rejected {
        url: "embedded graphite store".to_owned(),
        error_type: "unsupported".to_owned(),
        message: format!(
            "{why} in {target:?}; the demo store answers seriesByTag('name=…', 'k=v', 'k!=v') \
             and plain paths without wildcards"
        ),
    }
}

fn parse_target(target: &str) -> Result<Target, QueryError> {
    let t = target.trim();
    if let Some(args) = t.strip_prefix("seriesByTag(").and_then(|r| r.strip_suffix(')')) {
        let mut exprs = Vec::new();
        for arg in args.split(',') {
            let arg = arg.trim();
            let inner = arg
                .strip_prefix('\'')
                .and_then(|a| a.strip_suffix('\''))
                .or_else(|| arg.strip_prefix('"').and_then(|a| a.strip_suffix('"')))
                .ok_or_else(|| unsupported(target, "an unquoted seriesByTag argument"))?;
            let (tag, eq, value) = if let Some((k, v)) = inner.split_once("!=") {
                (k, false, v)
            } else if let Some((k, v)) = inner.split_once('=') {
                if k.ends_with('~') || v.starts_with('~') {
                    return Err(unsupported(target, "a regular expression tag match"));
                }
                (k, true, v)
            } else {
                return Err(unsupported(target, "a tag expression without = or !="));
            };
            exprs.push((tag.trim().to_owned(), eq, value.trim().to_owned()));
        }
        if !exprs.iter().any(|(k, eq, _)| k == "name" && *eq) {
            return Err(unsupported(target, "seriesByTag without 'name=…'"));
        }
        return Ok(Target::ByTag(exprs));
    }
    let plain = !t.is_empty()
        && t.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-' | ':'));
    if plain {
        Ok(Target::Path(t.to_owned()))
    } else {
        Err(unsupported(target, "a function or wildcard"))
    }
}

impl Target {
    fn matches(&self, key: &SeriesKey) -> bool {
        match self {
            Target::Path(p) => key.tags.is_empty() && key.name == *p,
            Target::ByTag(exprs) => exprs.iter().all(|(k, eq, v)| {
                let actual = if k == "name" { Some(&key.name) } else { key.tags.get(k) };
                let actual = actual.map_or("", String::as_str);
                (actual == v) == *eq
            }),
        }
    }
}

impl QueryAdapter for LegacyStore {
    fn describe(&self) -> String {
        format!("embedded statsd+graphite udp://{}", self.addr)
    }

    fn range(&self, query: &str, range: &TimeRange) -> Result<Vec<Series>, QueryError> {
        let target = parse_target(query)?;
        let series = lock(&self.inner.series);
        Ok(series
            .iter()
            .filter(|(k, _)| target.matches(k))
            .map(|(k, pts)| Series {
                labels: k.tags.clone(),
                points: pts
                    .iter()
                    .copied()
                    .filter(|(ts, _)| *ts >= range.start && *ts <= range.end)
                    .collect(),
            })
            .collect())
    }

    fn instant(&self, query: &str, at: i64) -> Result<Vec<Series>, QueryError> {
        let target = parse_target(query)?;
        let series = lock(&self.inner.series);
        Ok(series
            .iter()
            .filter(|(k, _)| target.matches(k))
            .filter_map(|(k, pts)| {
                let last = pts.iter().rev().find(|(ts, _)| *ts <= at)?;
                Some(Series { labels: k.tags.clone(), points: vec![*last] })
            })
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timer_statistics_follow_the_daemon() {
        let stats: BTreeMap<String, f64> =
            timer_stats(&[300.0, 100.0, 200.0], 3.0, 1.0, &[90.0]).into_iter().collect();
        assert_eq!(stats["count"], 3.0);
        assert_eq!(stats["upper"], 300.0);
        assert_eq!(stats["lower"], 100.0);
        assert_eq!(stats["mean"], 200.0);
        assert_eq!(stats["sum"], 600.0);
        // round(0.9 * 3) = 3 values under the threshold
        assert_eq!(stats["upper_90"], 300.0);
        assert_eq!(stats["median"], 200.0);
    }

    #[test]
    fn keys_and_tags_are_sanitised_like_the_daemon() {
        assert_eq!(sanitize("/cart"), "-cart");
        assert_eq!(sanitize("a b\t c"), "a_b_c");
        assert_eq!(sanitize("héllo:x"), "hllox");
    }

    #[test]
    fn statsd_lines_over_udp_become_graphite_series_at_the_next_flush() {
        let store = LegacyStore::start(Duration::from_millis(200)).unwrap();
        let sock = UdpSocket::bind(("127.0.0.1", 0)).unwrap();
        let lines = "svc.hits:2|c|#route:/cart\nsvc.hits:3|c|@0.5|#route:/cart\nsvc.t:10|ms\nsvc.t:30|ms\nbad";
        sock.send_to(lines.as_bytes(), store.local_addr()).unwrap();
        let deadline = std::time::Instant::now() + Duration::from_secs(5);
        let range = |now: i64| TimeRange { start: now - 60, end: now + 60, step: 1 };
        let now = unix_now() as i64;
        let hits = loop {
            let s = store.range("seriesByTag('name=stats.counters.svc.hits.count')", &range(now));
            let s = s.unwrap();
            let total: f64 = s.iter().flat_map(|s| s.points.iter()).map(|p| p.1).sum();
            if total > 0.0 || std::time::Instant::now() > deadline {
                break s;
            }
            std::thread::sleep(Duration::from_millis(20));
        };
        assert_eq!(hits.len(), 1);
        assert_eq!(hits[0].labels.get("route").map(String::as_str), Some("-cart"));
        let total: f64 = hits[0].points.iter().map(|p| p.1).sum();
        assert_eq!(total, 8.0, "2 + 3 at rate 0.5");
        let upper = store.range("stats.timers.svc.t.upper", &range(now)).unwrap();
        assert!(upper[0].points.iter().any(|p| p.1 == 30.0), "{upper:?}");
        assert_eq!(store.stats().bad_lines, 1);
    }

    #[test]
    fn empty_timer_writes_only_its_count() {
        let stats = timer_stats(&[], 0.0, 1.0, &[90.0]);
        assert_eq!(stats, vec![("count".to_owned(), 0.0), ("count_ps".to_owned(), 0.0)]);
    }

    #[test]
    fn targets_of_the_comparator_parse_and_others_are_refused() {
        assert_eq!(
            parse_target("seriesByTag('name=stats.counters.a.count')").unwrap(),
            Target::ByTag(vec![("name".into(), true, "stats.counters.a.count".into())])
        );
        assert_eq!(parse_target("stats.gauges.q").unwrap(), Target::Path("stats.gauges.q".into()));
        assert!(parse_target("sumSeries(stats.*)").is_err());
        assert!(parse_target("seriesByTag('route=~a.*')").is_err());
    }
}
