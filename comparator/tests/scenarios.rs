//! End-to-end runs of `compare` against a fake VictoriaMetrics on 127.0.0.1:0 that answers the
//! Graphite render API from per-flush StatsD data and the Prometheus API from OTLP-style
//! cumulative series (exported every 10 s, 7 s behind the grid), both derived from one
//! simulated workload. Each injected divergence must get the right verdict; clean data none.
mod support;

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use clap::Parser;
use dualmetrics_compare::{run_code, CompareArgs, Verdict};
use serde_json::{json, Value};
use support::{serve, Request, Response, Server};

const T0: i64 = 1_700_000_000;
const SECONDS: i64 = 3_700;
const BOUNDS: [f64; 15] = [
    0.0, 5.0, 10.0, 25.0, 50.0, 75.0, 100.0, 250.0, 500.0, 750.0, 1000.0, 2500.0, 5000.0, 7500.0,
    10000.0,
];

const CATALOG: &str = r#"{"version":1,"service":"checkout","statsd_prefix":"svc",
 "global_tags":{"service":"checkout","env":"prod"},
 "instruments":[
  {"name":"http.requests","kind":"counter","unit":"1","description":"requests","statsd_name":"svc.http.requests","statsd_type":"c","otel_name":"http.requests","tag_keys":["code","route"],"mode":"dual","temporality":"cumulative","rule":null},
  {"name":"http.latency","kind":"histogram","unit":"ms","description":"latency","statsd_name":"svc.http.latency","statsd_type":"ms","otel_name":"http.latency","tag_keys":[],"mode":"dual","temporality":"cumulative","rule":null},
  {"name":"queue.depth","kind":"up_down_counter","unit":"1","description":"depth","statsd_name":"svc.queue.depth","statsd_type":"g","otel_name":"queue.depth","tag_keys":[],"mode":"dual","temporality":"cumulative","rule":null}]}"#;

/// Faults injected into the simulated pipelines.
#[derive(Default, Clone, Copy)]
struct Faults {
    new_counter_twice: bool,
    new_lacks_code_500: bool,
    new_histogram_in_seconds: bool,
    legacy_drops_one_percent: bool,
    new_lacks_gauge: bool,
}

type Labels = BTreeMap<String, String>;
type Eval = Box<dyn Fn(i64) -> Vec<(Labels, f64)> + Send + Sync>;
/// (export time, cumulative count, cumulative sum, cumulative buckets)
type Snapshot = (i64, f64, f64, Vec<f64>);

fn labels(kv: &[(&str, &str)]) -> Labels {
    kv.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect()
}

struct Raw {
    labels: Labels,
    points: Vec<(i64, f64)>,
}

#[derive(Default)]
struct Store {
    graphite: HashMap<String, Vec<Raw>>,
    /// PromQL query → function of the evaluation time.
    prom: HashMap<String, Eval>,
}

fn lcg(s: i64) -> u64 {
    (s as u64).wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407) >> 33
}

fn inc_200(s: i64) -> f64 {
    (lcg(s) % 6) as f64
}
fn inc_500(s: i64) -> f64 {
    // A series that appears mid-range: the new side must count it from 0.
    if s >= 600 && s % 7 == 0 {
        1.0
    } else {
        0.0
    }
}
fn gauge(s: i64) -> f64 {
    ((s / 30) % 17) as f64
}
fn latencies(s: i64) -> Vec<f64> {
    (0..1 + s % 3).map(|j| ((s * 37 + j * 101) % 900) as f64 + 0.5).collect()
}

/// Last sample at or before `t` within 5 minutes (Prometheus/VictoriaMetrics lookback).
fn at(points: &[(i64, f64)], t: i64) -> Option<f64> {
    points.iter().rev().find(|(ts, _)| *ts <= t && *ts > t - 300).map(|p| p.1)
}

fn exports() -> impl Iterator<Item = i64> {
    (0..).map(|k| 3 + 10 * k).take_while(|s| *s <= SECONDS)
}

fn histogram_quantile(q: f64, buckets: &[f64]) -> f64 {
    // buckets: cumulative counts per BOUNDS then +Inf.
    let total = *buckets.last().unwrap();
    if total <= 0.0 {
        return f64::NAN;
    }
    let rank = q * total;
    let i = buckets.iter().position(|c| *c >= rank).unwrap();
    if i == BOUNDS.len() {
        return BOUNDS[BOUNDS.len() - 1];
    }
    if i == 0 {
        return BOUNDS[0];
    }
    let (lower, below) = (BOUNDS[i - 1], buckets[i - 1]);
    lower + (BOUNDS[i] - lower) * (rank - below) / (buckets[i] - below)
}

fn build(f: Faults) -> Store {
    let mut store = Store::default();
    let seconds: Vec<i64> = (1..=SECONDS).collect();
    // ---- legacy: statsd 0.9.0 per-flush (1 s) data, DogStatsD tags as Graphite tags ----
    let global = [("env", "prod"), ("service", "checkout")];
    // Lost increments: every 100th second's counts never reach the daemon (~1 %).
    let dropped = |s: i64| f.legacy_drops_one_percent && s % 100 == 0;
    let mut counters = Vec::new();
    for (code, inc, first) in [("200", inc_200 as fn(i64) -> f64, 1), ("500", inc_500, 600)] {
        let mut l = labels(&global);
        l.insert("code".into(), code.into());
        l.insert("route".into(), "/a".into());
        let points = seconds
            .iter()
            .filter(|s| **s >= first)
            .map(|s| (T0 + s, if dropped(*s) { 0.0 } else { inc(*s) }))
            .collect();
        counters.push(Raw { labels: l, points });
    }
    store
        .graphite
        .insert("seriesByTag('name=stats.counters.svc.http.requests.count')".into(), counters);
    store.graphite.insert(
        "seriesByTag('name=stats.gauges.svc.queue.depth')".into(),
        vec![Raw {
            labels: labels(&global),
            points: seconds.iter().map(|s| (T0 + s, gauge(*s))).collect(),
        }],
    );
    let timer_stat = |stat: &str| -> Vec<(i64, f64)> {
        seconds
            .iter()
            .map(|s| {
                let mut v = latencies(*s);
                v.sort_by(f64::total_cmp);
                let n = v.len() as f64;
                let sum: f64 = v.iter().sum();
                let keep = (0.9 * n).round() as usize;
                let val = match stat {
                    "count" => n,
                    "sum" => sum,
                    "mean" => sum / n,
                    "upper" => v[v.len() - 1],
                    "upper_90" => v[keep - 1],
                    _ => unreachable!(),
                };
                (T0 + s, val)
            })
            .collect()
    };
    for stat in ["count", "sum", "mean", "upper", "upper_90"] {
        store.graphite.insert(
            format!("seriesByTag('name=stats.timers.svc.http.latency.{stat}')"),
            vec![Raw { labels: labels(&global), points: timer_stat(stat) }],
        );
    }

    // ---- new: OTLP cumulative, exported every 10 s at +3 s, resource attributes as labels ----
    let resource = [("service_name", "checkout"), ("service_instance_id", "i-1")];
    let factor = if f.new_counter_twice { 2.0 } else { 1.0 };
    let mut new_counters: Vec<Raw> = Vec::new();
    for (code, inc, first) in [("200", inc_200 as fn(i64) -> f64, 1), ("500", inc_500, 600)] {
        if code == "500" && f.new_lacks_code_500 {
            continue;
        }
        let mut l = labels(&resource);
        l.insert("code".into(), code.into());
        l.insert("route".into(), "/a".into());
        let mut total = 0.0;
        let mut cursor = 1;
        let mut points = Vec::new();
        for e in exports() {
            while cursor <= e {
                total += inc(cursor) * factor;
                cursor += 1;
            }
            if e >= first {
                points.push((T0 + e, total));
            }
        }
        new_counters.push(Raw { labels: l, points });
    }
    let new_counters = Arc::new(new_counters);
    store.prom.insert(
        "http_requests_total".into(),
        Box::new(move |t| {
            new_counters
                .iter()
                .filter_map(|r| Some((r.labels.clone(), at(&r.points, t)?)))
                .collect()
        }),
    );
    if !f.new_lacks_gauge {
        let g: Vec<(i64, f64)> = exports().map(|e| (T0 + e, gauge(e))).collect();
        store.prom.insert(
            "queue_depth".into(),
            Box::new(move |t| at(&g, t).map(|v| (Labels::new(), v)).into_iter().collect()),
        );
    }
    // Histogram: cumulative count, sum and buckets per export.
    let scale = if f.new_histogram_in_seconds { 1e-3 } else { 1.0 };
    let mut cum_count = 0.0;
    let mut cum_sum = 0.0;
    let mut cum_buckets = vec![0.0; BOUNDS.len() + 1];
    let mut snapshots: Vec<Snapshot> = Vec::new();
    let mut cursor = 1;
    for e in exports() {
        while cursor <= e {
            for v in latencies(cursor) {
                let v = v * scale;
                cum_count += 1.0;
                cum_sum += v;
                for (i, b) in BOUNDS.iter().enumerate() {
                    if v <= *b {
                        cum_buckets[i] += 1.0;
                    }
                }
                cum_buckets[BOUNDS.len()] += 1.0;
            }
            cursor += 1;
        }
        snapshots.push((T0 + e, cum_count, cum_sum, cum_buckets.clone()));
    }
    let snaps = Arc::new(snapshots);
    let snap_at = |s: &Arc<Vec<Snapshot>>, t: i64| {
        s.iter().rev().find(|x| x.0 <= t && x.0 > t - 300).cloned()
    };
    let s1 = snaps.clone();
    store.prom.insert(
        "http_latency_milliseconds_count".into(),
        Box::new(move |t| snap_at(&s1, t).map(|x| (Labels::new(), x.1)).into_iter().collect()),
    );
    let s2 = snaps.clone();
    store.prom.insert(
        "http_latency_milliseconds_sum".into(),
        Box::new(move |t| snap_at(&s2, t).map(|x| (Labels::new(), x.2)).into_iter().collect()),
    );
    let s3 = snaps.clone();
    store.prom.insert(
        "sum (increase(http_latency_milliseconds_sum[60s])) / sum (increase(http_latency_milliseconds_count[60s]))".into(),
        Box::new(move |t| {
            let (Some(a), Some(b)) = (snap_at(&s3, t), snap_at(&s3, t - 60)) else { return vec![] };
            let dc = a.1 - b.1;
            if dc <= 0.0 { vec![] } else { vec![(Labels::new(), (a.2 - b.2) / dc)] }
        }),
    );
    for (q, text) in [(1.0, "1"), (0.9, "0.9")] {
        let s4 = snaps.clone();
        store.prom.insert(
            format!("histogram_quantile({text}, sum by (le) (increase(http_latency_milliseconds_bucket[60s])))"),
            Box::new(move |t| {
                let (Some(a), Some(b)) = (snap_at(&s4, t), snap_at(&s4, t - 60)) else { return vec![] };
                let d: Vec<f64> = a.3.iter().zip(&b.3).map(|(x, y)| x - y).collect();
                let v = histogram_quantile(q, &d);
                if v.is_nan() { vec![] } else { vec![(Labels::new(), v)] }
            }),
        );
    }
    store
}

/// The query with the catalog's service matcher removed (the fake holds one service).
fn unscoped(q: &str) -> String {
    q.replace(r#"{service_name="checkout"}"#, "")
}

fn answer(store: &Store, req: &Request) -> Response {
    let p = |k: &str| req.params.get(k).cloned().unwrap_or_default();
    let q = p("query");
    if q.contains("bad((") {
        return Response::status(
            400,
            "application/json",
            r#"{"status":"error","errorType":"bad_data","error":"1:4: parse error: unexpected \"(\""}"#,
        );
    }
    if q.starts_with("gateway") {
        return Response::status(502, "text/html", "<html><title>502 Bad Gateway</title></html>");
    }
    if q.starts_with("notjson") {
        return Response::status(200, "text/plain", "OK but not json");
    }
    match req.path.as_str() {
        // The Graphite names are not on the Prometheus API (graphite-web has none): the
        // comparator falls back to /render.
        "/api/v1/query" if q.starts_with("{__name__=\"stats.") => {
            Response::status(404, "text/plain", "404 page not found")
        }
        "/api/v1/query" => {
            // Raw samples: `selector[<window>s]` at `time`, one sample per export.
            let q = p("query");
            let (sel, window) = q.trim_end_matches("s]").rsplit_once('[').unwrap();
            let (time, window): (i64, i64) = (p("time").parse().unwrap(), window.parse().unwrap());
            let mut by_labels: BTreeMap<Labels, Vec<Value>> = BTreeMap::new();
            if let Some(f) = store.prom.get(&unscoped(sel)) {
                for e in exports().map(|e| T0 + e).filter(|t| *t > time - window && *t <= time) {
                    for (l, v) in f(e) {
                        by_labels.entry(l).or_default().push(json!([e, v.to_string()]));
                    }
                }
            }
            let result: Vec<Value> =
                by_labels.into_iter().map(|(l, v)| json!({"metric": l, "values": v})).collect();
            Response::json(
                json!({"status":"success","data":{"resultType":"matrix","result":result}})
                    .to_string(),
            )
        }
        "/render" => {
            assert_eq!(
                p("storage_step"),
                "1s",
                "VictoriaMetrics needs storage_step = flush interval"
            );
            let (from, until): (i64, i64) =
                (p("from").parse().unwrap(), p("until").parse().unwrap());
            let target = p("target").replace(",'env=prod','service=checkout'", "");
            let series = store.graphite.get(&target).map(Vec::as_slice).unwrap_or(&[]);
            let out: Vec<Value> = series
                .iter()
                .map(|r| {
                    let mut tags: BTreeMap<String, String> = r.labels.clone();
                    tags.insert("name".into(), "x".into());
                    let dps: Vec<Value> = r
                        .points
                        .iter()
                        .filter(|(t, _)| *t >= from && *t <= until)
                        .map(|(t, v)| json!([v, t]))
                        .collect();
                    json!({"target": "x", "tags": tags, "datapoints": dps})
                })
                .collect();
            Response::json(Value::Array(out).to_string())
        }
        "/api/v1/query_range" => {
            let q = unscoped(&p("query"));
            let (start, end): (i64, i64) = (p("start").parse().unwrap(), p("end").parse().unwrap());
            let step: i64 = p("step").trim_end_matches('s').parse().unwrap();
            let mut by_labels: BTreeMap<Labels, Vec<Value>> = BTreeMap::new();
            if let Some(f) = store.prom.get(&q) {
                let mut t = start;
                while t <= end {
                    for (l, v) in f(t) {
                        by_labels.entry(l).or_default().push(json!([t, v.to_string()]));
                    }
                    t += step;
                }
            }
            let result: Vec<Value> =
                by_labels.into_iter().map(|(l, v)| json!({"metric": l, "values": v})).collect();
            Response::json(
                json!({"status":"success","data":{"resultType":"matrix","result":result}})
                    .to_string(),
            )
        }
        _ => Response::status(404, "text/plain", "not found"),
    }
}

fn start(f: Faults) -> Server {
    let store = Arc::new(build(f));
    serve(Arc::new(move |req| answer(&store, req)))
}

#[derive(Parser)]
struct Cli {
    #[command(flatten)]
    args: CompareArgs,
}

struct Run {
    code: u8,
    json: Value,
    html: String,
}

fn compare(server: &Server, extra: &[&str]) -> Run {
    let dir = tempfile::tempdir().unwrap();
    let catalog = dir.path().join("catalog.json");
    std::fs::write(&catalog, CATALOG).unwrap();
    let json_path = dir.path().join("r.json");
    let html_path = dir.path().join("r.html");
    let url = server.url();
    let new_url = extra
        .iter()
        .position(|a| *a == "--new-url")
        .map_or(url.clone(), |i| extra[i + 1].to_owned());
    let extra: Vec<&str> = match extra.iter().position(|a| *a == "--new-url") {
        Some(i) => extra
            .iter()
            .enumerate()
            .filter(|(j, _)| *j != i && *j != i + 1)
            .map(|(_, a)| *a)
            .collect(),
        None => extra.to_vec(),
    };
    let start = (T0 + 60).to_string();
    let end = (T0 + 3_660).to_string();
    let mut argv = vec![
        "x",
        "--legacy-url",
        &url,
        "--new-url",
        &new_url,
        "--start",
        &start,
        "--end",
        &end,
        "--step",
        "10s",
        "--retries",
        "0",
        "--storage-step",
        "1s",
        "--format",
        "markdown",
        "--out",
    ];
    let md = dir.path().join("r.md");
    let md_s = md.display().to_string();
    let json_s = json_path.display().to_string();
    let html_s = html_path.display().to_string();
    let cat_s = catalog.display().to_string();
    argv.push(&md_s);
    argv.extend(["--json", &json_s, "--html", &html_s]);
    if !extra.contains(&"--pairs") {
        argv.extend(["--catalog", &cat_s]);
    }
    argv.extend(extra.iter().copied());
    let code = run_code(&Cli::parse_from(argv).args);
    let json = serde_json::from_str(
        &std::fs::read_to_string(&json_path).unwrap_or_else(|_| "null".into()),
    )
    .unwrap();
    let html = std::fs::read_to_string(&html_path).unwrap_or_default();
    Run { code, json, html }
}

fn verdict(run: &Run, pair: &str) -> (String, String) {
    if std::env::var("SHOW").is_ok() {
        for p in run.json["pairs"].as_array().unwrap() {
            eprintln!(
                "{} {} within={} max_abs={} n={} | {}",
                p["name"],
                p["verdict"],
                p["share_within"],
                p["max_abs_err"],
                p["points_compared"],
                p["explanation"]
            );
        }
    }
    let p = run.json["pairs"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == pair)
        .unwrap_or_else(|| panic!("no pair {pair}"));
    (p["verdict"].as_str().unwrap().to_owned(), p["explanation"].as_str().unwrap().to_owned())
}

fn all_verdicts(run: &Run) -> Vec<(String, String, String)> {
    run.json["pairs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            (
                p["name"].as_str().unwrap().to_owned(),
                p["verdict"].as_str().unwrap().to_owned(),
                p["explanation"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

#[test]
fn clean_dual_data_gives_no_false_alarm() {
    let run = compare(&start(Faults::default()), &[]);
    let _ = verdict(&run, "queue.depth");
    let v = all_verdicts(&run);
    assert_eq!(v.len(), 7, "{v:#?}");
    for (name, verdict, why) in &v {
        assert_eq!(verdict, Verdict::Equivalent.as_str(), "{name}: {why}");
    }
    assert_eq!(run.code, 0);
    assert_eq!(run.json["summary"]["equivalent"], 7);
    // one chart per pair, and a counter's second chart of its increase per step
    let counters =
        run.json["pairs"].as_array().unwrap().iter().filter(|p| p["kind"] == "counter").count();
    assert!(counters > 0);
    assert_eq!(run.html.matches("<svg").count(), 7 + counters);
}

#[test]
fn counter_counted_twice_on_one_side_is_divergent() {
    let run = compare(&start(Faults { new_counter_twice: true, ..Faults::default() }), &[]);
    let (v, why) = verdict(&run, "http.requests");
    assert_eq!(v, "divergent");
    assert!(why.contains("2.0× legacy: counted twice?"), "{why}");
    assert_eq!(verdict(&run, "queue.depth").0, "equivalent");
    assert_eq!(run.code, 1);
}

#[test]
fn missing_tag_value_is_divergent_and_named() {
    let run = compare(&start(Faults { new_lacks_code_500: true, ..Faults::default() }), &[]);
    let (v, why) = verdict(&run, "http.requests");
    assert_eq!(v, "divergent");
    assert!(why.contains("legacy has tag value code=500 the new side lacks"), "{why}");
    assert_eq!(run.code, 1);
}

#[test]
fn histogram_in_seconds_on_one_side_is_divergent_by_a_thousand() {
    let run = compare(&start(Faults { new_histogram_in_seconds: true, ..Faults::default() }), &[]);
    let (v, why) = verdict(&run, "http.latency.sum");
    assert_eq!(v, "divergent");
    assert!(why.contains("×1000 (legacy side larger): unit ms vs s"), "{why}");
    assert_eq!(verdict(&run, "http.latency.mean").0, "divergent");
    assert_eq!(verdict(&run, "http.latency.upper_90").0, "divergent");
    assert_eq!(verdict(&run, "http.latency.count").0, "equivalent");
}

#[test]
fn one_percent_of_points_dropped_is_divergent() {
    let run = compare(&start(Faults { legacy_drops_one_percent: true, ..Faults::default() }), &[]);
    let (v, why) = verdict(&run, "http.requests");
    assert_eq!(v, "divergent");
    assert!(why.contains("below new: increments lost on the legacy side?"), "{why}");
}

#[test]
fn series_present_on_one_side_only_is_missing() {
    let run = compare(&start(Faults { new_lacks_gauge: true, ..Faults::default() }), &[]);
    assert_eq!(verdict(&run, "queue.depth").0, "missing-new");
    assert_eq!(run.code, 1);
}

#[test]
fn failing_queries_exit_2_and_other_pairs_are_still_reported() {
    let server = start(Faults::default());
    let dir = tempfile::tempdir().unwrap();
    let pairs = dir.path().join("pairs.toml");
    std::fs::write(
        &pairs,
        r#"
[[pair]]
name = "syntax"
kind = "gauge"
legacy = "seriesByTag('name=stats.gauges.svc.queue.depth')"
new = "bad(("

[[pair]]
name = "gateway"
kind = "gauge"
legacy = "seriesByTag('name=stats.gauges.svc.queue.depth')"
new = "gateway"

[[pair]]
name = "notjson"
kind = "gauge"
legacy = "seriesByTag('name=stats.gauges.svc.queue.depth')"
new = "notjson"

[[pair]]
name = "fine"
kind = "gauge"
legacy = "seriesByTag('name=stats.gauges.svc.queue.depth')"
new = "queue_depth"
"#,
    )
    .unwrap();
    let p = pairs.display().to_string();
    let run = compare(&server, &["--pairs", &p]);
    assert_eq!(run.code, 2);
    let (v, why) = verdict(&run, "syntax");
    assert_eq!(v, "error");
    assert!(
        why.contains("bad_data")
            && why.contains("parse error")
            && why.contains("/api/v1/query_range"),
        "{why}"
    );
    let (v, why) = verdict(&run, "gateway");
    assert_eq!(v, "error");
    assert!(why.contains("502") && why.contains("Bad Gateway"), "{why}");
    assert!(verdict(&run, "notjson").1.contains("non-JSON"));
    assert_eq!(verdict(&run, "fine").0, "equivalent");
}

#[test]
fn unreachable_backend_exits_2() {
    let dead = support::closed_port();
    let run = compare(&start(Faults::default()), &["--new-url", &dead]);
    assert_eq!(run.code, 2);
    let (v, why) = verdict(&run, "queue.depth");
    assert_eq!(v, "error");
    assert!(why.contains("unreachable"), "{why}");
}

#[test]
fn bad_arguments_exit_2() {
    let code = run_code(&Cli::parse_from(["x", "--catalog", "/nonexistent/catalog.json"]).args);
    assert_eq!(code, 2);
    let code = run_code(&Cli::parse_from(["x", "--catalog", "c.json", "--step", "0s"]).args);
    assert_eq!(code, 2);
}
