//! How fast `dashboards port` is: 500 dashboards × 20 panels (one target each, a mix of the
//! corpus' kinds: counters, ratios with `#refs`, timers, gauges, tags, timeShift), written to
//! a temporary directory, then ported into another one (read, translate, write atomically).
//!
//! `cargo run --release -p dualmetrics-port --example port_speed [dashboards] [panels]`
//!
//! Prints the wall time of the port and the target of the issue (≤ 5 s for 500 × 20).
use dualmetrics_port::grafana::{port_all, PortOptions};
use serde_json::json;
use std::time::Instant;

const TARGETS: [&str; 10] = [
    "alias(perSecond(sumSeries(seriesByTag('name=stats.counters.svcN.requests.count', 'env=$env'))), 'requests/s')",
    "asPercent(sumSeries(stats.counters.svcN.errors.count), sumSeries(stats.counters.svcN.requests.count))",
    "alias(stats.timers.svcN.latency.upper_90, 'p90')",
    "alias(stats.timers.svcN.latency.median, 'p50')",
    "aliasByTags(groupByTags(seriesByTag('name=stats.counters.svcN.requests.count'), 'sum', 'host'), 'host')",
    "aliasByTags(highestAverage(groupByTags(seriesByTag('name=stats.counters.svcN.endpoint.count'), 'sum', 'endpoint'), 5), 'endpoint')",
    "stats.gauges.svcN.queue.depth",
    "alias(timeShift(sumSeries(stats.counters.svcN.requests.count), '7d'), 'last week')",
    "movingAverage(stats.gauges.svcN.queue.depth, 5)",
    "stats.timers.svcN.latency.mean",
];

fn main() {
    let mut args = std::env::args().skip(1);
    let dashboards: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(500);
    let panels: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(20);
    let input = tempfile::tempdir().expect("tempdir");
    let output = tempfile::tempdir().expect("tempdir");
    for d in 0..dashboards {
        let ps: Vec<_> = (0..panels)
            .map(|p| {
                let t = TARGETS[p % TARGETS.len()].replace("svcN", &format!("svc{d}"));
                json!({"id": p + 1, "type": "timeseries", "title": format!("panel {p}"),
                       "gridPos": {"h": 8, "w": 12, "x": (p % 2) * 12, "y": (p / 2) * 8},
                       "datasource": {"type": "graphite", "uid": "graphite"},
                       "fieldConfig": {"defaults": {"unit": "short"}, "overrides": []},
                       "targets": [{"refId": "A", "target": t}]})
            })
            .collect();
        let doc = json!({"uid": format!("d{d}"), "title": format!("Service {d}"), "panels": ps,
            "templating": {"list": [{"name": "env", "type": "query", "datasource": {"type": "graphite", "uid": "graphite"},
                                     "query": "tag_values(env)", "multi": true}]}});
        std::fs::write(
            input.path().join(format!("d{d}.json")),
            serde_json::to_vec_pretty(&doc).unwrap(),
        )
        .expect("write");
    }
    let t0 = Instant::now();
    let batch = port_all(
        &[input.path().to_path_buf()],
        output.path(),
        &PortOptions::default(),
        &mut |_, _| {},
    )
    .expect("port");
    let secs = t0.elapsed().as_secs_f64();
    let targets: usize = batch.dashboards.iter().map(|d| d.targets.len()).sum();
    assert_eq!(batch.dashboards.len(), dashboards, "{:?}", batch.failures.first());
    println!(
        "ported {dashboards} dashboards x {panels} panels ({targets} targets) in {secs:.2} s \
         ({:.0} targets/s); target <= 5 s for 500 x 20: {:.2}x of the budget",
        targets as f64 / secs,
        secs / 5.0 * (500.0 * 20.0) / (dashboards * panels) as f64
    );
}
