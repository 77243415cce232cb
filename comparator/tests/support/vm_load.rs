//! Writes a synthetic dual-pipeline workload into a real VictoriaMetrics: the legacy side as
//! the reference StatsD daemon writes it (Graphite plaintext, `stats.*` names, DogStatsD tags as
//! `;k=v`, one point per flush), the new side as OTLP cumulative series stored with Prometheus
//! naming (`/api/v1/import`: `_total`, `_milliseconds_bucket{le}`, resource attributes as
//! labels), exported every 10 s, 3 s after the flush grid.
#![allow(dead_code)]

use std::fmt::Write as _;
use std::io::Write as _;
use std::net::{SocketAddr, TcpStream};

/// OTel default explicit bucket bounds (ms).
pub const BOUNDS: [f64; 15] = [
    0.0, 5.0, 10.0, 25.0, 50.0, 75.0, 100.0, 250.0, 500.0, 750.0, 1000.0, 2500.0, 5000.0, 7500.0,
    10000.0,
];

/// What to write.
#[derive(Debug, Clone)]
pub struct Workload {
    /// StatsD prefix = OTel name prefix (unique per run).
    pub prefix: String,
    /// First second of data (Unix seconds).
    pub t0: i64,
    /// Seconds of data.
    pub seconds: i64,
    /// StatsD flush interval (s).
    pub flush: i64,
    /// Number of counter instruments (`c0`, `c1`, …; tags code=200/500, route=/a).
    pub counters: usize,
    /// Number of gauge instruments (`g0`, …; no tags).
    pub gauges: usize,
    /// Write one timer instrument `lat` (unit ms).
    pub timer: bool,
    /// Fault: the new side counts every counter twice.
    pub new_counter_twice: bool,
}

fn lcg(s: i64) -> u64 {
    (s as u64).wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407) >> 33
}
fn inc(i: usize, code: &str, s: i64) -> f64 {
    if code == "200" {
        ((lcg(s + i as i64 * 7919) % 6) as f64).max(0.0)
    } else if s >= 600 && s % 7 == 0 {
        1.0
    } else {
        0.0
    }
}
fn gauge(i: usize, s: i64) -> f64 {
    (((s / 30) + i as i64) % 17) as f64
}
fn latencies(s: i64) -> Vec<f64> {
    (0..1 + s % 3).map(|j| ((s * 37 + j * 101) % 900) as f64 + 0.5).collect()
}

impl Workload {
    /// The SDK catalog JSON describing the instruments.
    pub fn catalog(&self) -> String {
        let mut inst = Vec::new();
        for i in 0..self.counters {
            inst.push(format!(
                r#"{{"name":"c{i}","kind":"counter","unit":"1","statsd_name":"{p}.c{i}","statsd_type":"c","otel_name":"{p}.c{i}","tag_keys":["code","route"],"mode":"dual","temporality":"cumulative","rule":null}}"#,
                p = self.prefix
            ));
        }
        for i in 0..self.gauges {
            inst.push(format!(
                r#"{{"name":"g{i}","kind":"gauge","unit":"1","statsd_name":"{p}.g{i}","statsd_type":"g","otel_name":"{p}.g{i}","tag_keys":[],"mode":"dual","temporality":"cumulative","rule":null}}"#,
                p = self.prefix
            ));
        }
        if self.timer {
            inst.push(format!(
                r#"{{"name":"lat","kind":"histogram","unit":"ms","statsd_name":"{p}.lat","statsd_type":"ms","otel_name":"{p}.lat","tag_keys":[],"mode":"dual","temporality":"cumulative","rule":null}}"#,
                p = self.prefix
            ));
        }
        format!(
            r#"{{"version":1,"service":"bench","statsd_prefix":"{}","global_tags":{{"env":"lab"}},"instruments":[{}]}}"#,
            self.prefix,
            inst.join(",")
        )
    }

    fn flushes(&self) -> impl Iterator<Item = i64> + '_ {
        (1..=self.seconds / self.flush).map(|k| k * self.flush)
    }

    fn exports(&self) -> impl Iterator<Item = i64> + '_ {
        (0..).map(|k| 3 + 10 * k).take_while(|e| *e <= self.seconds)
    }

    /// Graphite plaintext lines, as statsd 0.9.0 (legacyNamespace=false) writes them.
    pub fn graphite_lines(&self) -> String {
        let mut out = String::new();
        let p = &self.prefix;
        for f in self.flushes() {
            let ts = self.t0 + f;
            let secs = (f - self.flush + 1)..=f;
            for i in 0..self.counters {
                for code in ["200", "500"] {
                    if code == "500" && f < 600 {
                        continue;
                    }
                    let v: f64 = secs.clone().map(|s| inc(i, code, s)).sum();
                    let _ = writeln!(
                        out,
                        "stats.counters.{p}.c{i}.count;code={code};env=lab;route=/a {v} {ts}"
                    );
                }
            }
            for i in 0..self.gauges {
                let _ = writeln!(out, "stats.gauges.{p}.g{i};env=lab {} {ts}", gauge(i, f));
            }
            if self.timer {
                let mut v: Vec<f64> = secs.clone().flat_map(latencies).collect();
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
                    let _ = writeln!(out, "stats.timers.{p}.lat.{stat};env=lab {val} {ts}");
                }
            }
        }
        out
    }

    /// `/api/v1/import` JSON lines for the new side.
    pub fn import_lines(&self) -> String {
        let mut out = String::new();
        let p = self.prefix.replace('.', "_");
        let res = r#""service_name":"bench","service_instance_id":"i-1""#;
        let ts: Vec<i64> = self.exports().map(|e| (self.t0 + e) * 1000).collect();
        let ts_json = format!("{ts:?}");
        let factor = if self.new_counter_twice { 2.0 } else { 1.0 };
        for i in 0..self.counters {
            for code in ["200", "500"] {
                let mut total = 0.0;
                let mut cursor = 1;
                let mut vals = Vec::new();
                let mut times = Vec::new();
                for e in self.exports() {
                    while cursor <= e {
                        total += inc(i, code, cursor) * factor;
                        cursor += 1;
                    }
                    if code == "500" && e < 600 {
                        continue;
                    }
                    vals.push(total);
                    times.push((self.t0 + e) * 1000);
                }
                let _ = writeln!(
                    out,
                    r#"{{"metric":{{"__name__":"{p}_c{i}_total","code":"{code}","route":"/a",{res}}},"values":{vals:?},"timestamps":{times:?}}}"#
                );
            }
        }
        for i in 0..self.gauges {
            let vals: Vec<f64> = self.exports().map(|e| gauge(i, e)).collect();
            let _ = writeln!(
                out,
                r#"{{"metric":{{"__name__":"{p}_g{i}",{res}}},"values":{vals:?},"timestamps":{ts_json}}}"#
            );
        }
        if self.timer {
            let (mut count, mut sum) = (0.0, 0.0);
            let mut buckets = vec![0.0; BOUNDS.len() + 1];
            let mut series: Vec<Vec<f64>> = vec![Vec::new(); BOUNDS.len() + 3];
            let mut cursor = 1;
            for e in self.exports() {
                while cursor <= e {
                    for v in latencies(cursor) {
                        count += 1.0;
                        sum += v;
                        for (b, bound) in BOUNDS.iter().enumerate() {
                            if v <= *bound {
                                buckets[b] += 1.0;
                            }
                        }
                        buckets[BOUNDS.len()] += 1.0;
                    }
                    cursor += 1;
                }
                for (b, c) in buckets.iter().enumerate() {
                    series[b].push(*c);
                }
                series[BOUNDS.len() + 1].push(count);
                series[BOUNDS.len() + 2].push(sum);
            }
            for (b, vals) in series.iter().enumerate() {
                let (name, le) = match b {
                    b if b < BOUNDS.len() => ("bucket", format!(r#","le":"{}""#, BOUNDS[b])),
                    b if b == BOUNDS.len() => ("bucket", r#","le":"+Inf""#.to_owned()),
                    b if b == BOUNDS.len() + 1 => ("count", String::new()),
                    _ => ("sum", String::new()),
                };
                let _ = writeln!(
                    out,
                    r#"{{"metric":{{"__name__":"{p}_lat_milliseconds_{name}"{le},{res}}},"values":{vals:?},"timestamps":{ts_json}}}"#
                );
            }
        }
        out
    }

    fn legacy_series(&self) -> usize {
        self.counters * 2 + self.gauges + if self.timer { 5 } else { 0 }
    }

    fn new_series(&self) -> usize {
        self.counters * 2 + self.gauges + if self.timer { BOUNDS.len() + 3 } else { 0 }
    }

    /// Writes both sides and waits until VictoriaMetrics can search the last samples.
    pub fn load(&self, vm_http: &str, vm_graphite: SocketAddr) {
        let mut tcp = TcpStream::connect(vm_graphite).expect("VictoriaMetrics Graphite listener");
        tcp.write_all(self.graphite_lines().as_bytes()).unwrap();
        drop(tcp);
        let _ = rustls::crypto::ring::default_provider().install_default();
        let client = reqwest::blocking::Client::new();
        let resp = client
            .post(format!("{vm_http}/api/v1/import"))
            .body(self.import_lines())
            .send()
            .unwrap();
        assert!(resp.status().is_success(), "import: {}", resp.status());
        // Poll until the newest legacy and new samples are searchable.
        let store = dualmetrics_testkit::lab::PromClient::new(vm_http);
        let last =
            std::time::UNIX_EPOCH + std::time::Duration::from_secs((self.t0 + self.seconds) as u64);
        let p = &self.prefix;
        let u = p.replace('.', "_");
        let probes = [
            (
                format!(
                    r#"count(count_over_time({{__name__=~"stats[.](counters|gauges|timers)[.]{p}[.].*"}}[2h]))"#
                ),
                self.legacy_series(),
            ),
            (format!(r#"count(count_over_time({{__name__=~"{u}_.*"}}[2h]))"#), self.new_series()),
        ];
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(180);
        for (q, want) in probes {
            loop {
                let _ = client.get(format!("{vm_http}/internal/force_flush")).send();
                let n = store.query_value_at(&q, last).ok().flatten().unwrap_or(0.0) as usize;
                if n >= want {
                    break;
                }
                assert!(
                    std::time::Instant::now() < deadline,
                    "VictoriaMetrics shows {n} of {want} series for {q}"
                );
                std::thread::sleep(std::time::Duration::from_millis(250));
            }
        }
    }
}
