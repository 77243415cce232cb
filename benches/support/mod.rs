//! Shared setup for `benches/hot_path.rs` and the `paced` / `wire` examples (included with
//! `#[path]`): the same workload and the same backend setups as `shared/PERF-ANCHORS.md`.
//!
//! - StatsD target: a UDP socket on 127.0.0.1 drained by a thread that counts packets and bytes.
//! - cadence "production": `QueuingMetricSink` (unbounded) over `BufferedUdpMetricSink` (512 B).
//! - OpenTelemetry alone: `SdkMeterProvider` + `PeriodicReader` (1 s) over a counting exporter.
//! - metrics-rs: a minimal metrics-rs → OTel recorder (instrument + attributes cached per key).
#![allow(dead_code)]

use std::collections::HashMap;
use std::net::{SocketAddr, UdpSocket};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use cadence::{BufferedUdpMetricSink, MetricSink, NopMetricSink, QueuingMetricSink, StatsdClient};
use opentelemetry::metrics::{Meter, MeterProvider as _};
use opentelemetry::KeyValue;
use opentelemetry_sdk::error::OTelSdkResult;
use opentelemetry_sdk::metrics::data::ResourceMetrics;
use opentelemetry_sdk::metrics::exporter::PushMetricExporter;
use opentelemetry_sdk::metrics::{PeriodicReader, SdkMeterProvider, Temporality};

/// The three per-call tags of every unbound case.
pub const TAGS: [(&str, &str); 3] = [("route", "/cart"), ("code", "200"), ("region", "eu-west-1")];

/// The same tags as OpenTelemetry attributes (built once, reused: `counter_add_3attrs`).
pub fn attrs() -> Vec<KeyValue> {
    TAGS.iter().map(|(k, v)| KeyValue::new(*k, *v)).collect()
}

/// A UDP socket on 127.0.0.1 and a thread that drains it, counting packets and bytes.
pub struct UdpDrain {
    addr: SocketAddr,
    packets: Arc<AtomicU64>,
    bytes: Arc<AtomicU64>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl UdpDrain {
    pub fn start() -> Self {
        let sock = UdpSocket::bind("127.0.0.1:0").expect("bind the UDP drain");
        sock.set_read_timeout(Some(Duration::from_millis(50))).unwrap();
        let addr = sock.local_addr().unwrap();
        let (packets, bytes): (Arc<AtomicU64>, Arc<AtomicU64>) = (Arc::default(), Arc::default());
        let stop = Arc::<AtomicBool>::default();
        let (p, b, s) = (Arc::clone(&packets), Arc::clone(&bytes), Arc::clone(&stop));
        let thread = std::thread::Builder::new()
            .name("udp-drain".into())
            .spawn(move || {
                let mut buf = vec![0u8; 65536];
                while !s.load(Relaxed) {
                    if let Ok(n) = sock.recv(&mut buf) {
                        p.fetch_add(1, Relaxed);
                        b.fetch_add(n as u64, Relaxed);
                    }
                }
            })
            .unwrap();
        UdpDrain { addr, packets, bytes, stop, thread: Some(thread) }
    }
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }
    pub fn packets(&self) -> u64 {
        self.packets.load(Relaxed)
    }
    pub fn bytes(&self) -> u64 {
        self.bytes.load(Relaxed)
    }
}

impl Drop for UdpDrain {
    fn drop(&mut self) {
        self.stop.store(true, Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Lets the bench keep a handle on cadence's queue (to wait until it drains between cases).
pub struct SharedSink(pub Arc<QueuingMetricSink>);

impl MetricSink for SharedSink {
    fn emit(&self, metric: &str) -> std::io::Result<usize> {
        self.0.emit(metric)
    }
    fn flush(&self) -> std::io::Result<()> {
        self.0.flush()
    }
}

/// cadence's production setup from its docs: unbounded queue + one worker + 512 B buffered UDP.
pub fn cadence_production_sink(target: SocketAddr) -> Arc<QueuingMetricSink> {
    let sock = UdpSocket::bind("0.0.0.0:0").unwrap();
    sock.set_nonblocking(true).unwrap();
    let udp = BufferedUdpMetricSink::from(target, sock).unwrap();
    Arc::new(QueuingMetricSink::from(udp))
}

pub fn cadence_production(target: SocketAddr) -> (StatsdClient, Arc<QueuingMetricSink>) {
    let q = cadence_production_sink(target);
    (StatsdClient::from_sink("bench", SharedSink(Arc::clone(&q))), q)
}

pub fn cadence_nop() -> StatsdClient {
    StatsdClient::from_sink("bench", NopMetricSink)
}

/// Waits (bounded) until cadence's worker has drained its queue; returns what is still queued.
pub fn wait_drained(q: &QueuingMetricSink, limit: Duration) -> u64 {
    let until = Instant::now() + limit;
    while q.queued() > 0 && Instant::now() < until {
        std::thread::sleep(Duration::from_millis(20));
    }
    q.queued()
}

/// A `PushMetricExporter` that only counts exports and points (stands in for OTLP), declaring
/// cumulative temporality, or delta when `delta` is set.
#[derive(Clone, Default)]
pub struct CountingExporter {
    pub exports: Arc<AtomicU64>,
    pub delta: bool,
}

impl PushMetricExporter for CountingExporter {
    async fn export(&self, metrics: &ResourceMetrics) -> OTelSdkResult {
        let _ = metrics.scope_metrics().flat_map(|s| s.metrics()).count();
        self.exports.fetch_add(1, Relaxed);
        Ok(())
    }
    fn force_flush(&self) -> OTelSdkResult {
        Ok(())
    }
    fn shutdown_with_timeout(&self, _: Duration) -> OTelSdkResult {
        Ok(())
    }
    fn temporality(&self) -> Temporality {
        if self.delta {
            Temporality::Delta
        } else {
            Temporality::Cumulative
        }
    }
}

/// OpenTelemetry alone: a provider with a 1 s periodic reader over a counting exporter.
pub fn otel_provider() -> (SdkMeterProvider, Meter) {
    otel_provider_with(false)
}

/// [`otel_provider`] whose exporter asks for delta temporality (`delta`) or cumulative.
pub fn otel_provider_with(delta: bool) -> (SdkMeterProvider, Meter) {
    let reader = PeriodicReader::builder(CountingExporter { delta, ..Default::default() })
        .with_interval(Duration::from_secs(1))
        .build();
    let provider = SdkMeterProvider::builder().with_reader(reader).build();
    let meter = provider.meter("bench");
    (provider, meter)
}

/// A DualMetrics in `mode`, cumulative, StatsD to `statsd`, OTLP (gRPC) to `otlp`, both intervals 1 s,
/// isolated from the process environment (but for `DUALMETRICS_BENCH_PACING`, the StatsD
/// pacing budget, default 1432 bytes/ms).
pub fn dualmetrics(
    mode: dualmetrics::Mode,
    statsd: SocketAddr,
    otlp: SocketAddr,
) -> dualmetrics::DualMetrics {
    dualmetrics_with(mode, dualmetrics::Temporality::Cumulative, statsd, otlp)
}

/// [`dualmetrics`] with every instrument in `temporality`.
pub fn dualmetrics_with(
    mode: dualmetrics::Mode,
    temporality: dualmetrics::Temporality,
    statsd: SocketAddr,
    otlp: SocketAddr,
) -> dualmetrics::DualMetrics {
    dualmetrics::DualMetrics::builder()
        .ignore_env()
        .with_temporality(temporality)
        .with_service_name("bench")
        .with_mode(mode)
        .with_statsd_address(&statsd.to_string())
        .with_otlp_endpoint(&format!("http://{otlp}"))
        .with_otlp_export_interval(Duration::from_secs(1))
        .with_statsd_flush_interval(Duration::from_secs(1))
        // `DUALMETRICS_BENCH_PACING=0` compares with unpaced (one burst per flush) StatsD flushes.
        .with_setting(
            "statsd.pacing_bytes_per_ms",
            &std::env::var("DUALMETRICS_BENCH_PACING").unwrap_or_else(|_| "1432".into()),
        )
        .build()
        .expect("build DualMetrics")
}

/// Per-call latencies (ns) → (p50, p90, p99, mean).
pub fn percentiles(mut ns: Vec<i64>) -> (i64, i64, i64, f64) {
    ns.sort_unstable();
    let at = |q: f64| ns[((ns.len() as f64 - 1.0) * q).round() as usize];
    let mean = ns.iter().sum::<i64>() as f64 / ns.len() as f64;
    (at(0.50), at(0.90), at(0.99), mean)
}

/// A minimal metrics-rs → OpenTelemetry recorder: the instrument and the attribute list are
/// cached per `Key` (opentelemetry 0.33 ships no such recorder).
pub mod otelshim {
    use super::*;
    use metrics::{
        Counter, CounterFn, Gauge, GaugeFn, Histogram, HistogramFn, Key, KeyName, Metadata,
        Recorder, SharedString, Unit,
    };

    struct C(opentelemetry::metrics::Counter<u64>, Vec<KeyValue>);
    struct G(opentelemetry::metrics::Gauge<f64>, Vec<KeyValue>);
    struct H(opentelemetry::metrics::Histogram<f64>, Vec<KeyValue>);
    impl CounterFn for C {
        fn increment(&self, v: u64) {
            self.0.add(v, &self.1)
        }
        fn absolute(&self, _: u64) {}
    }
    impl GaugeFn for G {
        fn increment(&self, _: f64) {}
        fn decrement(&self, _: f64) {}
        fn set(&self, v: f64) {
            self.0.record(v, &self.1)
        }
    }
    impl HistogramFn for H {
        fn record(&self, v: f64) {
            self.0.record(v, &self.1)
        }
    }

    pub struct OtelRecorder {
        meter: Meter,
        counters: Mutex<HashMap<Key, Arc<C>>>,
        gauges: Mutex<HashMap<Key, Arc<G>>>,
        histograms: Mutex<HashMap<Key, Arc<H>>>,
    }

    impl OtelRecorder {
        pub fn new(meter: Meter) -> Self {
            OtelRecorder {
                meter,
                counters: Mutex::default(),
                gauges: Mutex::default(),
                histograms: Mutex::default(),
            }
        }
    }

    fn kv(key: &Key) -> Vec<KeyValue> {
        key.labels().map(|l| KeyValue::new(l.key().to_owned(), l.value().to_owned())).collect()
    }

    impl Recorder for OtelRecorder {
        fn describe_counter(&self, _: KeyName, _: Option<Unit>, _: SharedString) {}
        fn describe_gauge(&self, _: KeyName, _: Option<Unit>, _: SharedString) {}
        fn describe_histogram(&self, _: KeyName, _: Option<Unit>, _: SharedString) {}
        fn register_counter(&self, key: &Key, _: &Metadata<'_>) -> Counter {
            let mut m = self.counters.lock().unwrap();
            let c = m.entry(key.clone()).or_insert_with(|| {
                Arc::new(C(self.meter.u64_counter(key.name().to_owned()).build(), kv(key)))
            });
            Counter::from_arc(Arc::clone(c))
        }
        fn register_gauge(&self, key: &Key, _: &Metadata<'_>) -> Gauge {
            let mut m = self.gauges.lock().unwrap();
            let g = m.entry(key.clone()).or_insert_with(|| {
                Arc::new(G(self.meter.f64_gauge(key.name().to_owned()).build(), kv(key)))
            });
            Gauge::from_arc(Arc::clone(g))
        }
        fn register_histogram(&self, key: &Key, _: &Metadata<'_>) -> Histogram {
            let mut m = self.histograms.lock().unwrap();
            let h = m.entry(key.clone()).or_insert_with(|| {
                Arc::new(H(self.meter.f64_histogram(key.name().to_owned()).build(), kv(key)))
            });
            Histogram::from_arc(Arc::clone(h))
        }
    }
}

/// Number of tag sets the `*_rotating` cases cycle through.
pub const ROTATING: usize = 1_000;

/// [`ROTATING`] tag sets: [`TAGS`] with the `route` value varied (owned, borrowed per call).
pub fn rotating_tags() -> Vec<[(String, String); 3]> {
    (0..ROTATING)
        .map(|i| {
            [
                ("route".to_owned(), format!("/cart/{i}")),
                ("code".to_owned(), "200".to_owned()),
                ("region".to_owned(), "eu-west-1".to_owned()),
            ]
        })
        .collect()
}

/// The same tag sets as OpenTelemetry attribute slices, built once.
pub fn rotating_attrs(tags: &[[(String, String); 3]]) -> Vec<Vec<KeyValue>> {
    tags.iter()
        .map(|set| set.iter().map(|(k, v)| KeyValue::new(k.clone(), v.clone())).collect())
        .collect()
}

/// Wall time of `iters` calls of `f` split over two threads (one series, both contending):
/// criterion then reports the time per call of the pair.
pub fn two_threads(iters: u64, f: impl Fn() + Sync) -> Duration {
    let start = Instant::now();
    std::thread::scope(|s| {
        s.spawn(|| (0..iters / 2).for_each(|_| f()));
        (0..iters - iters / 2).for_each(|_| f());
    });
    start.elapsed()
}
