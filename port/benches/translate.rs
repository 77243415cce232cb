//! Translating 100,000 Graphite targets (issue 15's budget: ≤ 2 s on this machine), and where
//! the time goes: Graphite parsing alone, the `promql` check of the outputs alone (its shape
//! cache warm, as in a real run), and `promql-parser` alone on 1 in 7 outputs (7 is prime to the 12 shapes) without the cache
//! (what the check would cost if every expression had a shape of its own).
//!
//! `cargo bench -p dualmetrics-port --bench translate`
use criterion::{criterion_group, criterion_main, Criterion};
use dualmetrics_model::mapping::MappingFile;
use dualmetrics_port::{graphite, promql, translate, translate_batch, Context};
use std::hint::black_box;

/// Targets per measured iteration.
const TARGETS: usize = 100_000;
/// Targets when the bench runs as a test (`cargo test --all-targets`, nextest: one unoptimised
/// iteration that only proves the code runs; 100,000 would take minutes in a debug build).
const TEST_MODE_TARGETS: usize = 1_000;

/// Shapes of real dashboard targets; `{i}` is replaced by a number so no two targets repeat.
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

fn targets() -> Vec<String> {
    // criterion is given `--bench` by `cargo bench` only
    let n = if std::env::args().any(|a| a == "--bench") { TARGETS } else { TEST_MODE_TARGETS };
    (0..n).map(|i| SHAPES[i % SHAPES.len()].replace("{i}", &i.to_string())).collect()
}

fn context() -> Context {
    let mapping = MappingFile::parse(
        "mappings:\n- match: checkout.*.*.requests\n  name: checkout_requests\n  labels:\n    env: $1\n    host: $2\n",
        "bench.yml",
    )
    .expect("mapping");
    Context { mapping: Some(mapping), ..Context::default() }
}

fn bench(c: &mut Criterion) {
    let targets = targets();
    let ctx = context();
    let promqls: Vec<String> =
        targets.iter().filter_map(|t| translate(t, &ctx).ok().and_then(|t| t.promql)).collect();
    let mut g = c.benchmark_group("translate_100k");
    g.sample_size(10);
    g.bench_function("translate (parse + translate + promql-parser check)", |b| {
        b.iter(|| {
            for t in &targets {
                black_box(translate(black_box(t), &ctx).ok());
            }
        })
    });
    g.bench_function("translate_batch (every core)", |b| {
        b.iter(|| black_box(translate_batch(&targets, &ctx).len()))
    });
    g.bench_function("graphite parse only", |b| {
        b.iter(|| {
            for t in &targets {
                black_box(graphite::parse(black_box(t)).ok());
            }
        })
    });
    g.bench_function("promql check only (shape cache)", |b| {
        b.iter(|| {
            for p in &promqls {
                black_box(promql::check(black_box(p)).ok());
            }
        })
    });
    // as the check hands them to the parser: Grafana's interval variables replaced
    let interpolated: Vec<String> = promqls
        .iter()
        .step_by(7)
        .map(|p| {
            promql::GRAFANA_DURATION_VARIABLES
                .iter()
                .fold(p.clone(), |p, v| p.replace(v, promql::CHECK_DURATION))
        })
        .collect();
    assert!(interpolated.iter().all(|p| promql_parser::parser::parse(p).is_ok()));
    g.bench_function("promql-parser parse only, no cache (1 in 7 outputs)", |b| {
        b.iter(|| {
            for p in &interpolated {
                black_box(promql_parser::parser::parse(black_box(p)).ok());
            }
        })
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
