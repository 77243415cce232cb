//! Failure isolation, measured (issue 4): per-emit latency of a `dual` counter while the OTLP
//! collector is healthy, answers every request 5 s late, or is absent (a port bound, then
//! closed), printed as p50/p99/p99.9 in ns and as ratios to the healthy case; plus the share of
//! the values the StatsD receiver got.
//!
//! `cargo run --release --example isolation`
//!
//! Each case: 2 emitting threads × 200,000 unbound `add(1, [("thread", t)])`, every call timed
//! on its own (the timer's own cost is included, equally in every case); StatsD flushes every
//! 100 ms to a real testkit UDP receiver, OTLP exports every 100 ms over gRPC with a 10 s
//! timeout. Shutdown gets a 1 s deadline, which the slow case uses up.
use std::time::{Duration, Instant};

use dualmetrics::{DualMetrics, Mode};
use dualmetrics_testkit::{parse_line, OtlpGrpcReceiver, StatsdReceiver};

const THREADS: usize = 2;
const PER_THREAD: usize = 200_000;

struct Figures {
    p50: u64,
    p99: u64,
    p999: u64,
    statsd_share: f64,
    shutdown: Duration,
}

fn run(otlp_endpoint: &str) -> Figures {
    let statsd = StatsdReceiver::bind_udp();
    let metrics = DualMetrics::builder()
        .with_env_vars(Vec::<(String, String)>::new())
        .with_mode(Mode::Dual)
        .with_service_name("isolation")
        .with_statsd_address(&statsd.local_addr().to_string())
        .with_statsd_flush_interval(Duration::from_millis(100))
        .with_otlp_endpoint(otlp_endpoint)
        .with_otlp_export_interval(Duration::from_millis(100))
        .with_otlp_timeout(Duration::from_secs(10))
        .with_setting("self_metrics", "false")
        .build()
        .expect("valid config");
    let counter = metrics.counter("isolation.emits").build().expect("counter");
    let mut lat: Vec<u64> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..THREADS)
            .map(|t| {
                let counter = &counter;
                s.spawn(move || {
                    let tag = t.to_string();
                    let mut lat = Vec::with_capacity(PER_THREAD);
                    for _ in 0..PER_THREAD {
                        let start = Instant::now();
                        counter.add(1, &[("thread", &tag)]);
                        lat.push(start.elapsed().as_nanos() as u64);
                    }
                    lat
                })
            })
            .collect();
        handles.into_iter().flat_map(|h| h.join().expect("emitter")).collect()
    });
    lat.sort_unstable();
    let q = |q: f64| lat[((lat.len() - 1) as f64 * q) as usize];
    let start = Instant::now();
    let _ = metrics.shutdown(Duration::from_secs(1));
    let shutdown = start.elapsed();
    let total = (THREADS * PER_THREAD) as f64;
    let sum = |lines: &[String]| -> f64 {
        lines
            .iter()
            .map(|l| parse_line(l))
            .filter(|p| p.name == "isolation.emits")
            .map(|p| p.value_f64())
            .sum()
    };
    let lines = statsd
        .try_wait_until(Duration::from_secs(10), |l| sum(l) >= total)
        .unwrap_or_else(|_| statsd.lines());
    Figures {
        p50: q(0.5),
        p99: q(0.99),
        p999: q(0.999),
        statsd_share: sum(&lines) / total,
        shutdown,
    }
}

fn main() {
    let healthy = OtlpGrpcReceiver::start();
    let slow = OtlpGrpcReceiver::builder().with_delay(Duration::from_secs(5)).start();
    let absent = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let port = listener.local_addr().expect("addr").port();
        drop(listener);
        format!("http://127.0.0.1:{port}")
    };
    let cases = [
        ("healthy OTLP", run(&healthy.endpoint())),
        ("OTLP 5 s per request", run(&slow.endpoint())),
        ("OTLP absent", run(&absent)),
    ];
    let base = &cases[0].1;
    println!(
        "{:<22} {:>8} {:>8} {:>9} {:>10} {:>10} {:>12} {:>9}",
        "case",
        "p50 ns",
        "p99 ns",
        "p99.9 ns",
        "p50 ratio",
        "p99 ratio",
        "StatsD share",
        "shutdown"
    );
    for (name, f) in &cases {
        println!(
            "{:<22} {:>8} {:>8} {:>9} {:>10.2} {:>10.2} {:>11.2}% {:>8.0?}",
            name,
            f.p50,
            f.p99,
            f.p999,
            f.p50 as f64 / base.p50 as f64,
            f.p99 as f64 / base.p99 as f64,
            f.statsd_share * 100.0,
            f.shutdown,
        );
    }
}
