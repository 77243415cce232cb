//! Parser + aggregator throughput on one core: lines/s through `process_packet` (parse every line
//! of a packet, aggregate it), the work the shim's aggregate thread does per packet.
//!
//! Workload: 20-line packets of a realistic mix (counters with and without sample rates and
//! tags, gauges, timers, sets) over 1,000 series. Target (issue 8): >= 2M lines/s.
//!
//! Results (2-core shared VM, `cargo bench -p dualmetrics-shim --bench parse_aggregate`):
//! see collector-shim/README.md.
use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use dualmetrics_model::statsd_parse::Parser;
use dualmetrics_shim::aggregate::Aggregator;
use dualmetrics_shim::config::AggregateConfig;
use dualmetrics_shim::{process_packet, Telemetry};
use std::hint::black_box;

const LINES_PER_PACKET: usize = 20;

fn packets() -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    for p in 0..500 {
        let mut s = String::new();
        for i in 0..LINES_PER_PACKET {
            let n = (p * LINES_PER_PACKET + i) % 1000;
            let line = match i % 5 {
                0 => format!("svc.http.requests:1|c|#route:/r{},method:GET,status:200", n % 50),
                1 => format!("svc.http.latency:{}.5|ms|@0.5|#route:/r{}", n % 900, n % 50),
                2 => format!("svc.queue.depth:{}|g|#queue:q{}", n, n % 20),
                3 => format!("svc.jobs.done:{}|c|@0.1", n % 7),
                _ => format!("svc.users:user{}|s|#region:eu", n),
            };
            s.push_str(&line);
            s.push('\n');
        }
        out.push(s.into_bytes());
    }
    out
}

fn bench(c: &mut Criterion) {
    let packets = packets();
    let parser = Parser::default();
    let tel = Telemetry::default();
    let lines = (packets.len() * LINES_PER_PACKET) as u64;

    let mut g = c.benchmark_group("shim");
    g.throughput(Throughput::Elements(lines));
    g.bench_function("parse_only", |b| {
        b.iter(|| {
            let mut n = 0usize;
            for p in &packets {
                for l in dualmetrics_model::statsd_parse::packet_lines(p) {
                    n += parser.parse_bytes(l).is_ok() as usize;
                }
            }
            black_box(n)
        })
    });
    g.bench_function("parse_aggregate", |b| {
        let mut agg = Aggregator::new(AggregateConfig::default(), 0);
        let mut i = 0u64;
        b.iter(|| {
            for p in &packets {
                process_packet(black_box(p), &parser, &mut agg, &tel);
            }
            // a flush per 10 batches keeps sets and intervals realistic
            i += 1;
            if i.is_multiple_of(10) {
                agg.flush(i, &tel, |v| {
                    black_box(v.name);
                });
            }
        })
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
