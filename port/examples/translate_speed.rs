//! Timed passes over 100,000 targets (the bench's shapes), single thread from a cold start (the
//! check's shape cache empty), again, the share of the check, and through `translate_batch` on
//! every core: `cargo run --release -p dualmetrics-port --example translate_speed`.
use dualmetrics_port::{promql, translate, translate_batch, Context};
use std::time::Instant;

const SHAPES: &[&str] = &[
    "stats.counters.svc{i}.http.requests.count",
    "sumSeries(stats.counters.svc{i}.*.count)",
    "aliasByNode(stats.gauges.queue{i}.depth, 2)",
    "stats.timers.api{i}.latency.upper_90",
    "stats.timers.api{i}.latency.mean",
    "movingAverage(stats.gauges.cpu{i}.load, 5)",
    "summarize(stats.counters.orders{i}.count, '1h', 'sum')",
    "asPercent(stats.counters.errors{i}.count, stats.counters.requests{i}.count)",
    "groupByNode(stats.counters.checkout.*.web-{i}.requests.count, 3, 'sum')",
    "seriesByTag('name=stats.counters.http{i}.count', 'env=prod', 'host=~web-.*')",
    "timeShift(scale(stats.gauges.mem{i}.used, 0.001), '1d')",
    "divideSeries(stats.counters.a{i}.count, stats.counters.b{i}.count)",
];

fn main() {
    let targets: Vec<String> =
        (0..100_000).map(|i| SHAPES[i % SHAPES.len()].replace("{i}", &i.to_string())).collect();
    let ctx = Context::default();
    let t0 = Instant::now();
    let mut ok = 0;
    let mut out = Vec::with_capacity(targets.len());
    for t in &targets {
        if let Ok(tr) = translate(t, &ctx) {
            ok += 1;
            out.extend(tr.promql);
        }
    }
    let all = t0.elapsed();
    let t3 = Instant::now();
    for t in &targets {
        let _ = translate(t, &ctx);
    }
    let warm = t3.elapsed();
    let t1 = Instant::now();
    for p in &out {
        let _ = promql::check(p);
    }
    let check = t1.elapsed();
    let t2 = Instant::now();
    let batch = translate_batch(&targets, &ctx);
    let par = t2.elapsed();
    assert_eq!(batch.iter().filter(|r| r.is_ok()).count(), ok);
    println!(
        "translate_batch on {} threads: {:.3} s",
        std::thread::available_parallelism().map_or(1, usize::from),
        par.as_secs_f64()
    );
    println!(
        "{ok} targets translated in {:.3} s (a second pass: {:.3} s); the promql check alone {:.3} s ({:.0}% of it)",
        all.as_secs_f64(),
        warm.as_secs_f64(),
        check.as_secs_f64(),
        100.0 * check.as_secs_f64() / all.as_secs_f64()
    );
}
