//! How fast `dashboards validate` is: 1,000 targets over 24 h at a 60 s step against the lab's
//! VictoriaMetrics (render API for the Graphite side, `query_range` for the PromQL side).
//!
//! `DUALMETRICS_LAB_ENV=/tmp/devlab/lab.env cargo run --release -p dualmetrics-port --example validate_speed [targets] [parallel]`
//!
//! 24 h of data (a point a minute for 50 gauges with a host tag) is written with past
//! timestamps through VictoriaMetrics' Graphite plaintext listener; then 20 dashboards × 50
//! targets (20 kinds of target per gauge: plain, sums, scales, offsets, aliases…), written as a
//! port would write them (Graphite text + PromQL over the same series), are validated through
//! the comparator with bounded concurrency (`parallel`, default 8 queries in flight). Prints the
//! wall time and the verdict counts; the target is ≤ 60 s.
use dualmetrics_compare::{
    CompareSettings, GraphiteAdapter, HttpConfig, PrometheusAdapter, TimeRange,
};
use dualmetrics_port::validate::{target_counts, validate_dashboards, ValidateOptions};
use dualmetrics_testkit::lab::{poll_until, Lab, INGEST_TIMEOUT, POLL_INTERVAL};
use serde_json::json;
use std::collections::BTreeMap;
use std::io::Write;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

const GAUGES: usize = 50;
const DAY: i64 = 86_400;
const STEP: i64 = 60;

fn main() {
    let mut args = std::env::args().skip(1);
    let targets: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(1000);
    let parallel: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(8);
    let lab = Lab::from_env().expect("set DUALMETRICS_LAB_ENV to a running lab's lab.env");
    let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs() as i64 / STEP * STEP;
    let p = format!("vs{}", now % 100_000_000);
    // 1. 24 h of points, one a minute, through the Graphite plaintext listener
    let mut conn = std::net::TcpStream::connect(lab.vm_graphite_addr()).expect("VM graphite port");
    let mut buf = String::new();
    for g in 0..GAUGES {
        for i in 0..=(DAY / STEP) {
            let t = now - DAY + i * STEP;
            let v = 50.0 + 40.0 * ((i as f64) / 60.0 + g as f64).sin();
            buf.push_str(&format!("stats.gauges.{p}.g{g};host=web{} {v:.3} {t}\n", g % 3));
        }
        conn.write_all(buf.as_bytes()).unwrap();
        buf.clear();
    }
    drop(conn);
    let vm = lab.vm();
    let last = format!("{{__name__=\"stats.gauges.{p}.g{}\"}}", GAUGES - 1);
    poll_until(INGEST_TIMEOUT, POLL_INTERVAL, || -> Result<(), String> {
        let n = vm.query(&format!("count_over_time({last}[25h])")).map_err(|e| e.to_string())?;
        let got = n.first().map_or(0.0, |s| s.value);
        if got >= (DAY / STEP) as f64 {
            Ok(())
        } else {
            Err(format!("{got} points so far"))
        }
    })
    .expect("ingested");

    // 2. dashboards as a port writes them: Graphite text beside PromQL over the same series
    let kinds = |g: usize| -> Vec<(String, String, &'static str)> {
        let s = format!("seriesByTag('name=stats.gauges.{p}.g{g}')");
        let m = format!("{{__name__=\"stats.gauges.{p}.g{g}\"}}");
        vec![
            (s.clone(), m.clone(), ""),
            (format!("scale({s}, 2)"), format!("{m} * 2"), ""),
            (format!("offset({s}, 5)"), format!("{m} + 5"), ""),
            (format!("sumSeries({s})"), format!("sum({m})"), ""),
            (format!("averageSeries({s})"), format!("avg({m})"), ""),
            (format!("maxSeries({s})"), format!("max({m})"), ""),
            (format!("minSeries({s})"), format!("min({m})"), ""),
            (format!("aliasByTags({s}, 'host')"), m.clone(), "{{host}}"),
            (format!("alias({s}, 'g')"), m.clone(), "g"),
            (format!("absolute(offset({s}, -50))"), format!("abs({m} - 50)"), ""),
            (format!("scale({s}, 0.5)"), format!("{m} * 0.5"), ""),
            (format!("offset({s}, -1)"), format!("{m} - 1"), ""),
            (format!("scale(offset({s}, 1), 3)"), format!("({m} + 1) * 3"), ""),
            (format!("sumSeries(scale({s}, 2))"), format!("sum({m} * 2)"), ""),
            (
                format!("groupByTags({s}, 'sum', 'host')"),
                format!("sum by (host) ({m})"),
                "{{host}}",
            ),
            (format!("removeBelowValue({s}, 0)"), format!("{m} >= 0"), ""),
            (format!("removeAboveValue({s}, 1000)"), format!("{m} <= 1000"), ""),
            (format!("scale({s}, 10)"), format!("{m} * 10"), ""),
            (format!("offset({s}, 100)"), format!("{m} + 100"), ""),
            (format!("averageSeries(scale({s}, 4))"), format!("avg({m} * 4)"), ""),
        ]
    };
    let dir = tempfile::tempdir().unwrap();
    let mut written = 0;
    let mut d = 0;
    while written < targets {
        let mut panels = Vec::new();
        for k in 0..50.min(targets - written) {
            let n = written + k;
            let (g, kind) = (n % GAUGES, n / GAUGES % 20);
            let (graphite, promql, legend) = kinds(g).swap_remove(kind);
            panels.push(json!({"id": k + 1, "title": format!("t{n}"), "type": "timeseries",
                "datasource": {"type": "prometheus", "uid": "p"},
                "targets": [{"refId": "A", "expr": promql, "legendFormat": legend,
                             "dualmetricsGraphite": graphite, "dualmetricsStatus": "exact"}]}));
        }
        written += panels.len();
        let doc = json!({"title": format!("bench {d}"), "panels": panels});
        std::fs::write(dir.path().join(format!("d{d}.json")), doc.to_string()).unwrap();
        d += 1;
    }

    // 3. validate through the comparator
    let url = url::Url::parse(&lab.vm_url()).unwrap();
    let legacy = GraphiteAdapter::new(HttpConfig::new(url.clone()))
        .unwrap()
        .with_storage_step(Some("60s".into()));
    let new = PrometheusAdapter::new(HttpConfig::new(url)).unwrap();
    let opts = ValidateOptions {
        ctx: dualmetrics_port::Context::default(),
        settings: CompareSettings {
            range: TimeRange { start: now - DAY + 600, end: now - 120, step: STEP },
            skip_recent: 0,
            parallel,
            ..CompareSettings::default()
        },
        rate_interval: "5m".into(),
        vars: BTreeMap::new(),
    };
    let t0 = Instant::now();
    let results =
        validate_dashboards(&[dir.path().to_path_buf()], &legacy, &new, &opts, &mut |_, _| {})
            .unwrap();
    let secs = t0.elapsed().as_secs_f64();
    let counts = target_counts(&results);
    println!(
        "validated {targets} targets over 24 h at a {STEP} s step ({parallel} in flight) in {secs:.1} s \
         (target <= 60 s: {:.2}x of the budget); verdicts {counts:?}",
        secs / 60.0
    );
    for t in results
        .iter()
        .flat_map(|d| &d.panels)
        .flat_map(|p| &p.targets)
        .filter(|t| t.verdict.as_str() != "equivalent")
        .take(3)
    {
        println!("  {} {}: {}", t.verdict.as_str(), t.graphite, t.explanation);
    }
}
