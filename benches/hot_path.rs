//! Hot-path cost per call, dualmetrics beside the anchors, in one invocation (issue 6).
//!
//! `cargo bench --bench hot_path && cargo run --release --example bench_report`
//!
//! Same workload everywhere: a counter (`add(1)`), a gauge (`record(42.0)`) and a histogram
//! (`record(12.5)`), unbound with 3 tags (`route`, `code`, `region`; borrowed, the OTel attribute
//! slice built once) and bound. Setups are those of `shared/PERF-ANCHORS.md`:
//!
//! | group | what |
//! |---|---|
//! | `floor` | `AtomicU64::fetch_add(Relaxed)` |
//! | `cadence` | cadence production sink: unbounded `QueuingMetricSink` over `BufferedUdpMetricSink` to a local UDP drain thread |
//! | `cadence_nop` | cadence with `NopMetricSink` (formatting only) |
//! | `otel` | opentelemetry_sdk alone, `PeriodicReader` (1 s) over a counting exporter; `*_bound` = experimental bound instruments |
//! | `naive_dual` | cadence production + OTel, by hand; `counter_otel_bound` uses the OTel bound counter |
//! | `naive_dual_nop` | cadence `NopMetricSink` + OTel (calling-thread CPU only) |
//! | `fanout` | metrics-rs `FanoutBuilder` over metrics-exporter-statsd (same cadence sink) + a metrics-rs→OTel recorder, macros |
//! | `dm_legacy` / `dm_otlp` / `dm_dual` | dualmetrics in each mode, StatsD to the UDP drain, OTLP gRPC to a real testkit receiver, both every 1 s |
//! | `otel_delta` / `dm_dual_delta` | opentelemetry_sdk alone with an exporter asking for delta, and dualmetrics `dual` with every instrument delta (issue 19) |
//!
//! `*_rotating` cases cycle through [`ROTATING`] tag sets (borrowed; OTel's attribute slices built
//! once), `*_2threads` cases emit into one series from two threads (time per call of the pair).
//!
//! Between cadence cases the bench waits (up to 30 s) for cadence's worker to drain its queue,
//! so that a case does not pay for the previous one's backlog.
//! Results: `target/criterion/<group>/<case>/new/estimates.json`; figures in `benches/README.md`.
use std::hint::black_box;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::Duration;

use cadence::prelude::*;
use criterion::{criterion_group, criterion_main, Criterion};
use dualmetrics::Mode;
use dualmetrics_testkit::OtlpGrpcReceiver;

#[path = "support/mod.rs"]
mod support;
use support::*;

const DRAIN_LIMIT: Duration = Duration::from_secs(30);

fn floor(c: &mut Criterion) {
    let mut g = c.benchmark_group("floor");
    let a = AtomicU64::new(0);
    g.bench_function("atomic_fetch_add", |b| b.iter(|| a.fetch_add(black_box(1), Relaxed)));
    g.finish();
}

fn cadence_groups(c: &mut Criterion, drain: &UdpDrain) {
    let mut g = c.benchmark_group("cadence");
    let (client, q) = cadence_production(drain.addr());
    let [(k1, v1), (k2, v2), (k3, v3)] = TAGS;
    g.bench_function("counter_3tags", |b| {
        b.iter(|| {
            client
                .count_with_tags("bench.counter", black_box(1u64))
                .with_tag(k1, v1)
                .with_tag(k2, v2)
                .with_tag(k3, v3)
                .send()
        })
    });
    report_drain("cadence/counter_3tags", &q);
    g.bench_function("gauge_3tags", |b| {
        b.iter(|| {
            client
                .gauge_with_tags("bench.gauge", black_box(42.0f64))
                .with_tag(k1, v1)
                .with_tag(k2, v2)
                .with_tag(k3, v3)
                .send()
        })
    });
    report_drain("cadence/gauge_3tags", &q);
    g.bench_function("histogram_3tags", |b| {
        b.iter(|| {
            client
                .histogram_with_tags("bench.histogram", black_box(12.5f64))
                .with_tag(k1, v1)
                .with_tag(k2, v2)
                .with_tag(k3, v3)
                .send()
        })
    });
    report_drain("cadence/histogram_3tags", &q);
    g.finish();

    let mut g = c.benchmark_group("cadence_nop");
    let nop = cadence_nop();
    g.bench_function("counter_3tags", |b| {
        b.iter(|| {
            nop.count_with_tags("bench.counter", black_box(1u64))
                .with_tag(k1, v1)
                .with_tag(k2, v2)
                .with_tag(k3, v3)
                .send()
        })
    });
    g.bench_function("histogram_3tags", |b| {
        b.iter(|| {
            nop.histogram_with_tags("bench.histogram", black_box(12.5f64))
                .with_tag(k1, v1)
                .with_tag(k2, v2)
                .with_tag(k3, v3)
                .send()
        })
    });
    g.finish();
}

fn report_drain(case: &str, q: &cadence::QueuingMetricSink) {
    let backlog = q.queued();
    let left = wait_drained(q, DRAIN_LIMIT);
    eprintln!(
        "[{case}] cadence queue after the case: {backlog} pending, {left} left after draining"
    );
}

fn otel_group(c: &mut Criterion) {
    let mut g = c.benchmark_group("otel");
    let (provider, meter) = otel_provider();
    let attrs = attrs();
    let counter = meter.u64_counter("bench.counter").build();
    let gauge = meter.f64_gauge("bench.gauge").build();
    let histogram = meter.f64_histogram("bench.histogram").build();
    g.bench_function("counter_3tags", |b| b.iter(|| counter.add(black_box(1), &attrs)));
    g.bench_function("gauge_3tags", |b| b.iter(|| gauge.record(black_box(42.0), &attrs)));
    g.bench_function("histogram_3tags", |b| b.iter(|| histogram.record(black_box(12.5), &attrs)));
    let bc = counter.bind(&attrs);
    let bg = gauge.bind(&attrs);
    let bh = histogram.bind(&attrs);
    g.bench_function("counter_bound", |b| b.iter(|| bc.add(black_box(1))));
    g.bench_function("gauge_bound", |b| b.iter(|| bg.record(black_box(42.0))));
    g.bench_function("histogram_bound", |b| b.iter(|| bh.record(black_box(12.5))));
    g.finish();
    let _ = provider.shutdown();
}

fn naive_dual_groups(c: &mut Criterion, drain: &UdpDrain) {
    let [(k1, v1), (k2, v2), (k3, v3)] = TAGS;
    let (provider, meter) = otel_provider();
    let attrs = attrs();
    let counter = meter.u64_counter("bench.counter").build();
    let gauge = meter.f64_gauge("bench.gauge").build();
    let histogram = meter.f64_histogram("bench.histogram").build();
    let bc = counter.bind(&attrs);

    let mut g = c.benchmark_group("naive_dual");
    let (client, q) = cadence_production(drain.addr());
    g.bench_function("counter_3tags", |b| {
        b.iter(|| {
            let v = black_box(1u64);
            let _ = client
                .count_with_tags("bench.counter", v)
                .with_tag(k1, v1)
                .with_tag(k2, v2)
                .with_tag(k3, v3)
                .try_send();
            counter.add(v, &attrs);
        })
    });
    report_drain("naive_dual/counter_3tags", &q);
    g.bench_function("gauge_3tags", |b| {
        b.iter(|| {
            let v = black_box(42.0f64);
            let _ = client
                .gauge_with_tags("bench.gauge", v)
                .with_tag(k1, v1)
                .with_tag(k2, v2)
                .with_tag(k3, v3)
                .try_send();
            gauge.record(v, &attrs);
        })
    });
    report_drain("naive_dual/gauge_3tags", &q);
    g.bench_function("histogram_3tags", |b| {
        b.iter(|| {
            let v = black_box(12.5f64);
            let _ = client
                .histogram_with_tags("bench.histogram", v)
                .with_tag(k1, v1)
                .with_tag(k2, v2)
                .with_tag(k3, v3)
                .try_send();
            histogram.record(v, &attrs);
        })
    });
    report_drain("naive_dual/histogram_3tags", &q);
    g.bench_function("counter_otel_bound", |b| {
        b.iter(|| {
            let v = black_box(1u64);
            let _ = client
                .count_with_tags("bench.counter", v)
                .with_tag(k1, v1)
                .with_tag(k2, v2)
                .with_tag(k3, v3)
                .try_send();
            bc.add(v);
        })
    });
    report_drain("naive_dual/counter_otel_bound", &q);
    g.finish();

    let mut g = c.benchmark_group("naive_dual_nop");
    let nop = cadence_nop();
    g.bench_function("counter_3tags", |b| {
        b.iter(|| {
            let v = black_box(1u64);
            let _ = nop
                .count_with_tags("bench.counter", v)
                .with_tag(k1, v1)
                .with_tag(k2, v2)
                .with_tag(k3, v3)
                .try_send();
            counter.add(v, &attrs);
        })
    });
    g.bench_function("histogram_3tags", |b| {
        b.iter(|| {
            let v = black_box(12.5f64);
            let _ = nop
                .histogram_with_tags("bench.histogram", v)
                .with_tag(k1, v1)
                .with_tag(k2, v2)
                .with_tag(k3, v3)
                .try_send();
            histogram.record(v, &attrs);
        })
    });
    g.finish();
    let _ = provider.shutdown();
}

fn fanout_group(c: &mut Criterion, drain: &UdpDrain) {
    let (provider, meter) = otel_provider();
    let q = cadence_production_sink(drain.addr());
    let statsd = metrics_exporter_statsd::StatsdBuilder::from("127.0.0.1", drain.addr().port())
        .with_sink(SharedSink(std::sync::Arc::clone(&q)))
        .build(Some("bench"))
        .expect("metrics-exporter-statsd recorder");
    let fanout = metrics_util::layers::FanoutBuilder::default()
        .add_recorder(statsd)
        .add_recorder(otelshim::OtelRecorder::new(meter))
        .build();
    let mut g = c.benchmark_group("fanout");
    metrics::with_local_recorder(&fanout, || {
        g.bench_function("counter_3tags", |b| {
            b.iter(|| {
                metrics::counter!("bench.counter", "route" => "/cart", "code" => "200", "region" => "eu-west-1")
                    .increment(black_box(1))
            })
        });
        report_drain("fanout/counter_3tags", &q);
        g.bench_function("gauge_3tags", |b| {
            b.iter(|| {
                metrics::gauge!("bench.gauge", "route" => "/cart", "code" => "200", "region" => "eu-west-1")
                    .set(black_box(42.0))
            })
        });
        report_drain("fanout/gauge_3tags", &q);
        g.bench_function("histogram_3tags", |b| {
            b.iter(|| {
                metrics::histogram!("bench.histogram", "route" => "/cart", "code" => "200", "region" => "eu-west-1")
                    .record(black_box(12.5))
            })
        });
        report_drain("fanout/histogram_3tags", &q);
    });
    g.finish();
    let _ = provider.shutdown();
}

fn dualmetrics_groups(c: &mut Criterion, drain: &UdpDrain, otlp: &OtlpGrpcReceiver) {
    for (group, mode) in
        [("dm_legacy", Mode::Legacy), ("dm_otlp", Mode::Otlp), ("dm_dual", Mode::Dual)]
    {
        let m = dualmetrics(mode, drain.addr(), otlp.local_addr());
        let counter = m.counter("bench.counter").build().unwrap();
        let gauge = m.gauge("bench.gauge").build().unwrap();
        let histogram = m.histogram("bench.histogram").build().unwrap();
        let tags: &[(&str, &str)] = &TAGS;
        let bc = counter.bind(tags).unwrap();
        let bg = gauge.bind(tags).unwrap();
        let bh = histogram.bind(tags).unwrap();
        let mut g = c.benchmark_group(group);
        g.bench_function("counter_3tags", |b| b.iter(|| counter.add(black_box(1), tags)));
        g.bench_function("gauge_3tags", |b| b.iter(|| gauge.record(black_box(42.0), tags)));
        g.bench_function("histogram_3tags", |b| b.iter(|| histogram.record(black_box(12.5), tags)));
        g.bench_function("counter_bound", |b| b.iter(|| bc.add(black_box(1))));
        g.bench_function("gauge_bound", |b| b.iter(|| bg.record(black_box(42.0))));
        g.bench_function("histogram_bound", |b| b.iter(|| bh.record(black_box(12.5))));
        g.finish();
        let _ = m.flush();
        let t = m.telemetry();
        eprintln!("[{group}] telemetry: {}", serde_json::to_string(&t).unwrap_or_default());
        let _ = m.shutdown(Duration::from_secs(5));
    }
}

/// The temporality comparison: the cases of one group for OTel alone (`otel_prefix`) and
/// dualmetrics `dual` in `temporality` (`dm_prefix`), rotating tag sets and two threads
/// included.
fn temporality_groups(
    c: &mut Criterion,
    drain: &UdpDrain,
    otlp: &OtlpGrpcReceiver,
    temporality: dualmetrics::Temporality,
) {
    let delta = temporality == dualmetrics::Temporality::Delta;
    let (otel_group, dm_group) =
        if delta { ("otel_delta", "dm_dual_delta") } else { ("otel", "dm_dual") };
    let rotating = rotating_tags();
    let rotating_attrs = rotating_attrs(&rotating);
    {
        let (provider, meter) = otel_provider_with(delta);
        let attrs = attrs();
        let counter = meter.u64_counter("bench.counter").build();
        let histogram = meter.f64_histogram("bench.histogram").build();
        let mut g = c.benchmark_group(otel_group);
        if delta {
            g.bench_function("counter_3tags", |b| b.iter(|| counter.add(black_box(1), &attrs)));
            g.bench_function("histogram_3tags", |b| {
                b.iter(|| histogram.record(black_box(12.5), &attrs))
            });
            let bc = counter.bind(&attrs);
            g.bench_function("counter_bound", |b| b.iter(|| bc.add(black_box(1))));
        }
        let mut i = 0usize;
        g.bench_function("counter_rotating", |b| {
            b.iter(|| {
                i = (i + 1) % ROTATING;
                counter.add(black_box(1), &rotating_attrs[i])
            })
        });
        g.bench_function("counter_2threads", |b| {
            b.iter_custom(|n| two_threads(n, || counter.add(black_box(1), &attrs)))
        });
        g.finish();
        let _ = provider.shutdown();
    }
    let m = dualmetrics_with(Mode::Dual, temporality, drain.addr(), otlp.local_addr());
    let counter = m.counter("bench.counter").build().unwrap();
    let histogram = m.histogram("bench.histogram").build().unwrap();
    let tags: &[(&str, &str)] = &TAGS;
    let borrowed: Vec<[(&str, &str); 3]> = rotating
        .iter()
        .map(|[(k1, v1), (k2, v2), (k3, v3)]| {
            [(k1.as_str(), v1.as_str()), (k2.as_str(), v2.as_str()), (k3.as_str(), v3.as_str())]
        })
        .collect();
    let mut g = c.benchmark_group(dm_group);
    if delta {
        g.bench_function("counter_3tags", |b| b.iter(|| counter.add(black_box(1), tags)));
        g.bench_function("histogram_3tags", |b| b.iter(|| histogram.record(black_box(12.5), tags)));
        let bc = counter.bind(tags).unwrap();
        g.bench_function("counter_bound", |b| b.iter(|| bc.add(black_box(1))));
    }
    let mut i = 0usize;
    g.bench_function("counter_rotating", |b| {
        b.iter(|| {
            i = (i + 1) % ROTATING;
            counter.add(black_box(1), &borrowed[i])
        })
    });
    g.bench_function("counter_2threads", |b| {
        b.iter_custom(|n| two_threads(n, || counter.add(black_box(1), tags)))
    });
    g.finish();
    let _ = m.flush();
    eprintln!(
        "[{dm_group}] telemetry: {}",
        serde_json::to_string(&m.telemetry()).unwrap_or_default()
    );
    let _ = m.shutdown(Duration::from_secs(5));
}

fn all(c: &mut Criterion) {
    let drain = UdpDrain::start();
    let otlp = OtlpGrpcReceiver::start();
    floor(c);
    otel_group(c);
    dualmetrics_groups(c, &drain, &otlp);
    temporality_groups(c, &drain, &otlp, dualmetrics::Temporality::Cumulative);
    temporality_groups(c, &drain, &otlp, dualmetrics::Temporality::Delta);
    cadence_groups(c, &drain);
    naive_dual_groups(c, &drain);
    fanout_group(c, &drain);
    eprintln!(
        "[udp drain] {} packets, {} bytes received; OTLP receiver: {} requests",
        drain.packets(),
        drain.bytes(),
        otlp.request_count()
    );
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3))
        .sample_size(100);
    targets = all
}
criterion_main!(benches);
