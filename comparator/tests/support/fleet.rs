//! A synthetic migration for the lab scenario tests: one service's instruments written as the
//! reference StatsD daemon writes them (Graphite plaintext, per-flush counts and timer stats,
//! `;service=S` tags, one point per flush at its own phase) and as an OTLP exporter leaves them
//! in a Prometheus-compatible store (`/api/v1/import`: cumulative `_total`, histogram
//! `_milliseconds_bucket{le}`, `service_name` resource label, one sample per export at another
//! phase). Faults and operational events (outages, lag, resets) are switches.
#![allow(dead_code)]

use std::fmt::Write as _;

/// OTel default explicit bucket bounds (ms).
pub const BOUNDS: [f64; 15] = [
    0.0, 5.0, 10.0, 25.0, 50.0, 75.0, 100.0, 250.0, 500.0, 750.0, 1000.0, 2500.0, 5000.0, 7500.0,
    10000.0,
];

/// Tag sets of the counter: (code, route, events per second ×100).
pub const TAG_SETS: [(&str, &str, u64); 4] =
    [("200", "/a", 450), ("200", "/b", 70), ("500", "/a", 12), ("500", "/b", 3)];

/// What differs from a clean dual emission.
#[derive(Debug, Clone, Default)]
pub struct Events {
    /// Phase of the StatsD flushes within the 10 s interval (s).
    pub legacy_phase: i64,
    /// Phase of the OTLP exports (s).
    pub new_phase: i64,
    /// Seconds (from t0) during which the legacy side stored nothing.
    pub legacy_outage: Option<(i64, i64)>,
    /// Seconds during which the new side stored nothing (the cumulative total kept counting).
    pub new_outage: Option<(i64, i64)>,
    /// The newest seconds of the new side not yet stored.
    pub new_lag: i64,
    /// The new side's process restarts at this second (after a final export).
    pub new_reset_at: Option<i64>,
    /// Fault: the new side counts the tag set `code=500,route=/a` twice.
    pub double_500_a: bool,
    /// Fault: the same, only during these seconds.
    pub double_500_a_between: Option<(i64, i64)>,
    /// Fault: the new side loses every 100th second's increments of `code=200,route=/a`.
    pub lose_one_percent: bool,
    /// Fault: the new side records latencies in seconds under the millisecond name.
    pub seconds_as_ms: bool,
    /// Fault: the new gauge reads 2 % high.
    pub gauge_two_percent: bool,
    /// Fault: the new side has an extra tag value `route=/c`.
    pub extra_route: bool,
    /// Fault: the new histogram counts every latency one bucket high.
    pub p90_bucket_high: bool,
}

/// One service of the fleet.
#[derive(Debug, Clone)]
pub struct Service {
    /// Instrument name prefix (shared by the services of one fleet, unique per test run).
    pub prefix: String,
    /// `service.name`.
    pub name: String,
    /// First second (Unix).
    pub t0: i64,
    /// Seconds of data.
    pub seconds: i64,
    /// Seed of the per-second workload.
    pub seed: u64,
    /// What happens.
    pub events: Events,
}

fn lcg(s: u64) -> u64 {
    s.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407) >> 33
}

impl Service {
    /// Events of tag set `i` in second `s` (1-based): rate/100 on average, spread evenly.
    fn inc(&self, i: usize, s: i64) -> f64 {
        let rate = TAG_SETS[i].2;
        let at = |x: i64| (x as u64 * rate + lcg(self.seed + i as u64) % 100) / 100;
        (at(s) - at(s - 1)) as f64
    }

    fn latencies(&self, s: i64) -> Vec<f64> {
        let k = lcg(self.seed ^ s as u64);
        (0..(k % 3)).map(|j| ((k / 7 + j * 131) % 400) as f64 + 0.5).collect()
    }

    fn gauge(&self, s: i64) -> f64 {
        (100 + ((s / 30 + self.seed as i64) % 13)) as f64
    }

    fn legacy_down(&self, s: i64) -> bool {
        self.events.legacy_outage.is_some_and(|(a, b)| s >= a && s < b)
    }

    fn new_down(&self, s: i64) -> bool {
        self.events.new_outage.is_some_and(|(a, b)| s >= a && s < b)
            || s > self.seconds - self.events.new_lag
    }

    /// The SDK catalog JSON.
    pub fn catalog(&self) -> String {
        let p = &self.prefix;
        format!(
            r#"{{"version":1,"service":"{s}","statsd_prefix":"{p}","global_tags":{{"service":"{s}"}},"instruments":[
{{"name":"req","kind":"counter","unit":"1","statsd_name":"{p}.req","statsd_type":"c","otel_name":"{p}.req","tag_keys":["code","route"],"mode":"dual"}},
{{"name":"depth","kind":"gauge","unit":"1","statsd_name":"{p}.depth","statsd_type":"g","otel_name":"{p}.depth","tag_keys":[],"mode":"dual"}},
{{"name":"lat","kind":"histogram","unit":"ms","statsd_name":"{p}.lat","statsd_type":"ms","otel_name":"{p}.lat","tag_keys":[],"mode":"dual"}}]}}"#,
            s = self.name
        )
    }

    /// Graphite plaintext lines of the legacy side (statsd 0.9.0, legacyNamespace=false).
    pub fn graphite_lines(&self) -> String {
        let (p, svc) = (&self.prefix, &self.name);
        let mut out = String::new();
        let mut f = 10 + self.events.legacy_phase;
        while f <= self.seconds {
            let secs = (f - 9)..=f;
            if !self.legacy_down(f) {
                let ts = self.t0 + f;
                for (i, (code, route, _)) in TAG_SETS.iter().enumerate() {
                    let v: f64 = secs.clone().map(|s| self.inc(i, s)).sum();
                    let _ = writeln!(
                        out,
                        "stats.counters.{p}.req.count;code={code};route={};service={svc} {v} {ts}",
                        route.replace('/', "-")
                    );
                }
                let _ =
                    writeln!(out, "stats.gauges.{p}.depth;service={svc} {} {ts}", self.gauge(f));
                let mut v: Vec<f64> = secs.clone().flat_map(|s| self.latencies(s)).collect();
                if !v.is_empty() {
                    v.sort_by(f64::total_cmp);
                    let n = v.len() as f64;
                    let sum: f64 = v.iter().sum();
                    let keep = ((0.9 * n).round() as usize).max(1);
                    for (stat, val) in [
                        ("count", n),
                        ("sum", sum),
                        ("mean", sum / n),
                        ("upper", v[v.len() - 1]),
                        ("upper_90", v[keep - 1]),
                    ] {
                        let _ =
                            writeln!(out, "stats.timers.{p}.lat.{stat};service={svc} {val} {ts}");
                    }
                }
            }
            f += 10;
        }
        out
    }

    /// `/api/v1/import` JSON lines of the new side.
    pub fn import_lines(&self) -> String {
        let p = self.prefix.replace('.', "_");
        let res = format!(r#""service_name":"{}","service_instance_id":"i-1""#, self.name);
        let e = &self.events;
        // Cumulative state, advanced second by second.
        let n_sets = TAG_SETS.len() + usize::from(e.extra_route);
        let mut totals = vec![0.0; n_sets];
        let (mut count, mut sum) = (0.0, 0.0);
        let mut buckets = vec![0.0; BOUNDS.len() + 1];
        let mut counter_pts: Vec<Vec<(i64, f64)>> = vec![Vec::new(); n_sets];
        let mut gauge_pts = Vec::new();
        let mut hist_pts: Vec<Vec<(i64, f64)>> = vec![Vec::new(); BOUNDS.len() + 3];
        let mut cursor = 1;
        let mut x = e.new_phase.max(1);
        while x <= self.seconds {
            while cursor <= x {
                if e.new_reset_at == Some(cursor - 1) {
                    // Restart: a final export at shutdown, then the new process counts from 0.
                    for (i, t) in totals.iter_mut().enumerate() {
                        counter_pts[i].push((self.t0 + cursor - 1, *t));
                        *t = 0.0;
                    }
                }
                for (i, t) in totals.iter_mut().enumerate() {
                    let mut d =
                        if i < TAG_SETS.len() { self.inc(i, cursor) } else { self.inc(3, cursor) };
                    let during =
                        e.double_500_a_between.is_some_and(|(a, b)| cursor >= a && cursor < b);
                    if (e.double_500_a || during) && i == 2 {
                        d *= 2.0;
                    }
                    if e.lose_one_percent && i == 0 && cursor % 100 == 0 {
                        d = 0.0;
                    }
                    *t += d;
                }
                for v in self.latencies(cursor) {
                    let v = if e.seconds_as_ms { v / 1000.0 } else { v };
                    count += 1.0;
                    sum += v;
                    let mut idx = BOUNDS.iter().position(|b| v <= *b).unwrap_or(BOUNDS.len());
                    if e.p90_bucket_high {
                        idx = (idx + 1).min(BOUNDS.len());
                    }
                    for b in buckets.iter_mut().skip(idx) {
                        *b += 1.0;
                    }
                }
                cursor += 1;
            }
            if !self.new_down(x) {
                let ts = self.t0 + x;
                for (i, t) in totals.iter().enumerate() {
                    counter_pts[i].push((ts, *t));
                }
                let g = self.gauge(x) * if e.gauge_two_percent { 1.02 } else { 1.0 };
                gauge_pts.push((ts, g));
                for (b, c) in buckets.iter().enumerate() {
                    hist_pts[b].push((ts, *c));
                }
                hist_pts[BOUNDS.len() + 1].push((ts, count));
                hist_pts[BOUNDS.len() + 2].push((ts, sum));
            }
            x += 10;
        }
        let mut out = String::new();
        let line = |out: &mut String, name: &str, extra: &str, pts: &[(i64, f64)]| {
            let vals: Vec<f64> = pts.iter().map(|p| p.1).collect();
            let ts: Vec<i64> = pts.iter().map(|p| p.0 * 1000).collect();
            let _ = writeln!(
                out,
                r#"{{"metric":{{"__name__":"{name}"{extra},{res}}},"values":{vals:?},"timestamps":{ts:?}}}"#
            );
        };
        for (i, pts) in counter_pts.iter().enumerate() {
            let (code, route) = match TAG_SETS.get(i) {
                Some((c, r, _)) => (*c, *r),
                None => ("500", "/c"),
            };
            let extra = format!(r#","code":"{code}","route":"{route}""#);
            line(&mut out, &format!("{p}_req_total"), &extra, pts);
        }
        line(&mut out, &format!("{p}_depth"), "", &gauge_pts);
        for (b, pts) in hist_pts.iter().enumerate() {
            let (name, le) = match b {
                b if b < BOUNDS.len() => ("bucket", format!(r#","le":"{}""#, BOUNDS[b])),
                b if b == BOUNDS.len() => ("bucket", r#","le":"+Inf""#.to_owned()),
                b if b == BOUNDS.len() + 1 => ("count", String::new()),
                _ => ("sum", String::new()),
            };
            line(&mut out, &format!("{p}_lat_milliseconds_{name}"), &le, pts);
        }
        out
    }
}
