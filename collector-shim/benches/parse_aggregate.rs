//! Parser + aggregator throughput on one core: lines/s through `process_packet` (parse every line
//! of a packet, aggregate it), the work the shim's aggregate thread does per packet.
//!
//! Workload: 20-line packets of a realistic mix (counters with and without sample rates and
//! tags, gauges, timers, sets) over 1,000 series. Target (issue 8): >= 2M lines/s.
//!
//! Results (2-core shared VM, `cargo bench -p dualmetrics-shim --bench parse_aggregate`):
//! see collector-shim/README.md.
//!
//! Group `shim_mapping`: the same work on dotted keys with dimensions in path nodes
//! (`svc.prod.web-12.r7.requests`), without and with a 20-rule mapping file (the matching rules
//! last), and the mapping file's own `map()` per key without the shim's result cache.
use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use dualmetrics_model::mapping::{MappingFile, MetricType};
use dualmetrics_model::statsd_parse::Parser;
use dualmetrics_shim::aggregate::Aggregator;
use dualmetrics_shim::config::AggregateConfig;
use dualmetrics_shim::mapping::Mapper;
use dualmetrics_shim::{process_packet, process_packet_mapped, Telemetry};
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

fn dotted_packets() -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    for p in 0..500 {
        let mut s = String::new();
        for i in 0..LINES_PER_PACKET {
            let n = (p * LINES_PER_PACKET + i) % 1000;
            let (env, host, route) = (["prod", "stage"][n % 2], n % 25, n % 20);
            let line = match i % 3 {
                0 => format!("svc.{env}.web-{host}.r{route}.requests:1|c"),
                1 => format!("svc.{env}.web-{host}.latency:{}.5|ms", n % 900),
                _ => format!("svc.{env}.web-{host}.queue.depth:{n}|g"),
            };
            s.push_str(&line);
            s.push('\n');
        }
        out.push(s.into_bytes());
    }
    out
}

/// 17 rules that do not match the workload, then the three that do.
fn mapping_file() -> MappingFile {
    let mut y = String::from("mappings:\n");
    for i in 0..17 {
        y.push_str(&format!(
            "- match: other{i}.*.*.requests\n  name: other{i}\n  labels:\n    a: $1\n    b: $2\n"
        ));
    }
    y.push_str(
        "- match: svc.*.*.*.requests\n  name: svc_requests\n  labels:\n    env: $1\n    host: $2\n    route: $3\n\
         - match: svc.*.*.latency\n  name: svc_latency\n  labels:\n    env: $1\n    host: $2\n\
         - match: svc.*.*.queue.depth\n  name: svc_queue_depth\n  labels:\n    env: $1\n    host: $2\n",
    );
    MappingFile::parse(&y, "bench.yml").unwrap()
}

fn bench_mapping(c: &mut Criterion) {
    let packets = dotted_packets();
    let parser = Parser::default();
    let tel = Telemetry::default();
    let lines = (packets.len() * LINES_PER_PACKET) as u64;
    let file = mapping_file();
    let mut g = c.benchmark_group("shim_mapping");
    g.throughput(Throughput::Elements(lines));
    g.bench_function("dotted_unmapped", |b| {
        let mut agg = Aggregator::new(AggregateConfig::default(), 0);
        b.iter(|| {
            for p in &packets {
                process_packet(black_box(p), &parser, &mut agg, &tel);
            }
        })
    });
    g.bench_function("dotted_mapped", |b| {
        let mut agg = Aggregator::new(AggregateConfig::default(), 0);
        let mut mapper = Mapper::from_file(file.clone(), 100_000);
        b.iter(|| {
            for p in &packets {
                process_packet_mapped(black_box(p), &parser, &mut agg, Some(&mut mapper), &tel);
            }
        })
    });
    let keys: Vec<(String, MetricType)> = packets
        .iter()
        .flat_map(|p| {
            dualmetrics_model::statsd_parse::packet_lines(p)
                .map(|l| {
                    let l = parser.parse_bytes(l).unwrap();
                    (l.name.to_owned(), MetricType::of(l.ty))
                })
                .collect::<Vec<_>>()
        })
        .collect();
    g.bench_function("mapping_file_map_uncached", |b| {
        b.iter(|| {
            for (k, t) in &keys {
                black_box(file.map(black_box(k), *t));
            }
        })
    });
    g.finish();
}

criterion_group!(benches, bench, bench_mapping);
criterion_main!(benches);
