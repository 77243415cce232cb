//! Paced per-call latency (issue 6): emits at 10k/s and 100k/s (busy-wait pacing, 20,000 calls
//! per case), times every call on its own and prints p50/p90/p99/mean in ns (timer overhead,
//! the p50 of an empty timed call, subtracted), then the target ratios.
//!
//! `cargo run --release --example paced`
//!
//! Contenders, counter with 3 tags: cadence alone (production sink: unbounded queue + buffered
//! UDP to a local drain thread), OpenTelemetry alone (unbound 3 attributes, and bound; periodic
//! reader 1 s), naive dual (cadence production + OTel unbound), dualmetrics `dual` (unbound
//! borrowed tags, and bound; StatsD to the drain, OTLP to a real testkit gRPC receiver).
use std::hint::black_box;
use std::time::{Duration, Instant};

use cadence::prelude::*;
use dualmetrics::Mode;
use dualmetrics_testkit::OtlpGrpcReceiver;

#[path = "../benches/support/mod.rs"]
mod support;
use support::*;

const CALLS: usize = 20_000;
const WARMUP: usize = 2_000;

/// Runs `f` `CALLS` times at `rate` per second, each call timed; returns raw ns per call.
fn paced(rate: u64, mut f: impl FnMut()) -> Vec<i64> {
    let period = Duration::from_nanos(1_000_000_000 / rate);
    for _ in 0..WARMUP {
        f();
    }
    let mut out = Vec::with_capacity(CALLS);
    let mut next = Instant::now();
    for _ in 0..CALLS {
        next += period;
        while Instant::now() < next {
            std::hint::spin_loop();
        }
        let t = Instant::now();
        f();
        out.push(t.elapsed().as_nanos() as i64);
    }
    out
}

struct Row {
    rate: u64,
    case: &'static str,
    p50: i64,
    p90: i64,
    p99: i64,
    mean: f64,
}

fn main() {
    let drain = UdpDrain::start();
    let otlp = OtlpGrpcReceiver::start();
    let [(k1, v1), (k2, v2), (k3, v3)] = TAGS;
    let tags: &[(&str, &str)] = &TAGS;

    let (provider, meter) = otel_provider();
    let attrs = attrs();
    let ocounter = meter.u64_counter("paced.counter").build();
    let obound = ocounter.bind(&attrs);

    let dm = dualmetrics(Mode::Dual, drain.addr(), otlp.local_addr());
    let dcounter = dm.counter("paced.counter").build().unwrap();
    let dbound = dcounter.bind(tags).unwrap();

    let mut rows: Vec<Row> = Vec::new();
    for rate in [10_000u64, 100_000] {
        let overhead = percentiles(paced(rate, || {})).0;
        let mut push = |case: &'static str, ns: Vec<i64>| {
            let ns: Vec<i64> = ns.into_iter().map(|n| n - overhead).collect();
            let (p50, p90, p99, mean) = percentiles(ns);
            println!("{rate:>7}/s  {case:<34} p50 {p50:>7}  p90 {p90:>7}  p99 {p99:>7}  mean {mean:>9.1}");
            rows.push(Row { rate, case, p50, p90, p99, mean });
        };
        println!("{rate:>7}/s  timer overhead (p50 of an empty call, subtracted): {overhead} ns");

        let (client, q) = cadence_production(drain.addr());
        push(
            "cadence count_3tags (production)",
            paced(rate, || {
                client
                    .count_with_tags("paced.counter", black_box(1u64))
                    .with_tag(k1, v1)
                    .with_tag(k2, v2)
                    .with_tag(k3, v3)
                    .send()
            }),
        );
        wait_drained(&q, Duration::from_secs(30));
        push("otel counter_add_3attrs", paced(rate, || ocounter.add(black_box(1), &attrs)));
        push("otel counter_bound", paced(rate, || obound.add(black_box(1))));
        push(
            "naive dual cadence+otel 3tags",
            paced(rate, || {
                let v = black_box(1u64);
                client
                    .count_with_tags("paced.counter", v)
                    .with_tag(k1, v1)
                    .with_tag(k2, v2)
                    .with_tag(k3, v3)
                    .send();
                ocounter.add(v, &attrs);
            }),
        );
        wait_drained(&q, Duration::from_secs(30));
        drop(client);
        push("dualmetrics dual counter_3tags", paced(rate, || dcounter.add(black_box(1), tags)));
        push("dualmetrics dual counter_bound", paced(rate, || dbound.add(black_box(1))));
    }

    let get =
        |rate: u64, case: &str| rows.iter().find(|r| r.rate == rate && r.case == case).unwrap();
    println!();
    println!("| rate | case | p50 ns | p90 ns | p99 ns | mean ns |");
    println!("|---|---|---:|---:|---:|---:|");
    for r in &rows {
        println!(
            "| {}k/s | {} | {} | {} | {} | {:.0} |",
            r.rate / 1000,
            r.case,
            r.p50,
            r.p90,
            r.p99,
            r.mean
        );
    }
    println!();
    println!("| rate | ratio | value | target |");
    println!("|---|---|---:|---|");
    // Per-call figures near the 10 ns timer granularity: clamp the denominator at 10 ns.
    let ratio = |a: i64, b: i64| a.max(1) as f64 / b.max(10) as f64;
    for rate in [10_000u64, 100_000] {
        let k = rate / 1000;
        let dual = get(rate, "dualmetrics dual counter_3tags");
        let dualb = get(rate, "dualmetrics dual counter_bound");
        let otel = get(rate, "otel counter_add_3attrs");
        let otelb = get(rate, "otel counter_bound");
        let naive = get(rate, "naive dual cadence+otel 3tags");
        let cad = get(rate, "cadence count_3tags (production)");
        // The issue sets the paced targets at 10k/s; 100k/s is shown for reference.
        let t = |ok: bool, want: &str| {
            if rate == 10_000 {
                format!("{want} {}", if ok { "met" } else { "NOT met" })
            } else {
                format!("(reference; {want} is set at 10k/s)")
            }
        };
        let r = ratio(dual.p50, otel.p50);
        println!(
            "| {k}k/s | dual 3 tags p50 / OTel alone p50 | {r:.2}× | {} |",
            t(r <= 1.2, "≤ 1.2×")
        );
        let r = ratio(dual.p99, otel.p99);
        println!(
            "| {k}k/s | dual 3 tags p99 / OTel alone p99 | {r:.2}× | {} |",
            t(r <= 1.2, "≤ 1.2×")
        );
        let r = naive.p50 as f64 / dual.p50.max(10) as f64;
        println!(
            "| {k}k/s | naive dual p50 / dual 3 tags p50 (times better) | {r:.1}× | {} |",
            t(r >= 20.0, "≥ 20×")
        );
        let r = naive.p99 as f64 / dual.p99.max(10) as f64;
        println!("| {k}k/s | naive dual p99 / dual 3 tags p99 (times better) | {r:.1}× | — |");
        let r = cad.p50 as f64 / dual.p50.max(10) as f64;
        println!("| {k}k/s | cadence alone p50 / dual 3 tags p50 (times better) | {r:.1}× | — |");
        let r = ratio(dualb.p50, otelb.p50);
        println!("| {k}k/s | dual bound p50 / OTel bound p50 | {r:.2}× | — |");
        let r = ratio(dualb.p99, otelb.p99);
        println!("| {k}k/s | dual bound p99 / OTel bound p99 | {r:.2}× | — |");
    }
    let _ = provider.shutdown();
    let _ = dm.shutdown(Duration::from_secs(5));
}
