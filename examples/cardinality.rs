//! Memory and collect/export time under series churn: dualmetrics (`otlp` and `dual` mode) beside
//! `opentelemetry_sdk` used directly, cumulative and delta, at several keyspace sizes.
//!
//! ```text
//! cargo run --release --example cardinality                      # N = 10k, 100k, 1M
//! cargo run --release --example cardinality -- --sizes 10k,100k  # a subset
//! ```
//!
//! # What one configuration does
//! A keyspace of `N` tag values (`key=k0 .. k{N-1}`) of one counter, over 10 export cycles. Cycle
//! `c` (0..10) adds 1 to each key of `[c*N/10, (c+1)*N/10)` — a fresh 10% of the keyspace per
//! cycle, so after the 10 cycles all `N` series were seen, and each cycle touches `N/10` of them —
//! then collects and exports (`DualMetrics::flush` / `SdkMeterProvider::force_flush`, timed).
//! Cumulative keeps every series ever seen (`N` at the end); delta only the recent ones.
//!
//! # Same settings for every implementation
//! - one `u64` counter, attributes `service=bench` and `key=k<i>` (dualmetrics adds `service` as
//!   a global tag; the direct SDK is given it explicitly), resource `service.name=bench`;
//! - the cardinality limit set above `N` (dualmetrics: `with_cardinality_limit(N)` on the
//!   instrument, which gives the SDK stream `N + 16`; the direct SDK: a view with `N + 16`);
//! - the same `opentelemetry-otlp` tonic exporter to the same local OTLP/gRPC receiver (in the
//!   parent process, which counts points and discards them), export timeout 120 s, the periodic
//!   reader's own timer out of the way (1 h);
//! - `dual` mode sends StatsD to a UDP socket of the parent that reads and discards.
//!
//! Each configuration runs in a fresh child process (this binary re-executes itself) and reports
//! its peak RSS (`VmHWM` of `/proc/self/status`) at the end; the parent prints one markdown table.
use std::io::Read;
use std::net::UdpSocket;
use std::process::Command;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::Arc;
use std::time::{Duration, Instant};

use opentelemetry::metrics::MeterProvider as _;
use opentelemetry::KeyValue;
use opentelemetry_proto::tonic::collector::metrics::v1::metrics_service_server::{
    MetricsService, MetricsServiceServer,
};
use opentelemetry_proto::tonic::collector::metrics::v1::{
    ExportMetricsServiceRequest, ExportMetricsServiceResponse,
};
use opentelemetry_proto::tonic::metrics::v1::metric::Data;

/// Counts live heap bytes (and their peak) to tell the allocator's retention apart from data.
struct Counting;

static LIVE: AtomicU64 = AtomicU64::new(0);
static PEAK: AtomicU64 = AtomicU64::new(0);
/// Live heap bytes after the last cycle's flush, while everything is still alive.
static HEAP_END: AtomicU64 = AtomicU64::new(0);

unsafe impl std::alloc::GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: std::alloc::Layout) -> *mut u8 {
        let p = unsafe { std::alloc::System.alloc(layout) };
        if !p.is_null() {
            let now = LIVE.fetch_add(layout.size() as u64, Relaxed) + layout.size() as u64;
            PEAK.fetch_max(now, Relaxed);
        }
        p
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: std::alloc::Layout) {
        LIVE.fetch_sub(layout.size() as u64, Relaxed);
        unsafe { std::alloc::System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: std::alloc::Layout, new: usize) -> *mut u8 {
        let p = unsafe { std::alloc::System.realloc(ptr, layout, new) };
        if !p.is_null() {
            let old = layout.size() as u64;
            let new = new as u64;
            let now = if new >= old {
                LIVE.fetch_add(new - old, Relaxed) + (new - old)
            } else {
                LIVE.fetch_sub(old - new, Relaxed) - (old - new)
            };
            PEAK.fetch_max(now, Relaxed);
        }
        p
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

const CYCLES: usize = 10;
const EXPORT_TIMEOUT: Duration = Duration::from_secs(120);
const IMPLS: [&str; 3] = ["otel", "otlp", "dual"];
const TEMPORALITIES: [&str; 2] = ["cumulative", "delta"];

// ---------------------------------------------------------------------------------------------
// Parent: receivers, children, table.

/// An OTLP/gRPC receiver that counts data points and keeps nothing.
#[derive(Default, Clone)]
struct Discard {
    points: Arc<AtomicU64>,
}

#[tonic::async_trait]
impl MetricsService for Discard {
    async fn export(
        &self,
        request: tonic::Request<ExportMetricsServiceRequest>,
    ) -> Result<tonic::Response<ExportMetricsServiceResponse>, tonic::Status> {
        let n: usize = request
            .get_ref()
            .resource_metrics
            .iter()
            .flat_map(|r| &r.scope_metrics)
            .flat_map(|s| &s.metrics)
            .map(|m| match &m.data {
                Some(Data::Sum(s)) => s.data_points.len(),
                Some(Data::Gauge(g)) => g.data_points.len(),
                Some(Data::Histogram(h)) => h.data_points.len(),
                _ => 0,
            })
            .sum();
        self.points.fetch_add(n as u64, Relaxed);
        Ok(tonic::Response::new(ExportMetricsServiceResponse::default()))
    }
}

fn parse_size(s: &str) -> usize {
    let s = s.trim().to_ascii_lowercase();
    let (num, mult) = if let Some(n) = s.strip_suffix('m') {
        (n, 1_000_000)
    } else if let Some(n) = s.strip_suffix('k') {
        (n, 1_000)
    } else {
        (s.as_str(), 1)
    };
    num.parse::<usize>().unwrap_or_else(|_| panic!("bad size {s:?}: use e.g. 10k, 100k, 1M")) * mult
}

fn label(n: usize) -> String {
    match n {
        n if n >= 1_000_000 && n % 1_000_000 == 0 => format!("{}M", n / 1_000_000),
        n if n >= 1_000 && n % 1_000 == 0 => format!("{}k", n / 1_000),
        n => n.to_string(),
    }
}

struct Outcome {
    peak_kb: u64,
    heap_peak_kb: u64,
    heap_end_kb: u64,
    flush_ms: Vec<f64>,
    emit_ms: Vec<f64>,
}

fn parent(args: &[String]) {
    let mut sizes = vec![10_000, 100_000, 1_000_000];
    let mut impls: Vec<String> = IMPLS.iter().map(|s| s.to_string()).collect();
    let mut temporalities: Vec<String> = TEMPORALITIES.iter().map(|s| s.to_string()).collect();
    let mut it = args.iter();
    while let Some(a) = it.next() {
        let mut list = || -> Vec<String> {
            it.next().expect("a value").split(',').map(|s| s.trim().to_owned()).collect()
        };
        match a.as_str() {
            "--sizes" => sizes = list().iter().map(|s| parse_size(s)).collect(),
            "--impls" => impls = list(),
            "--temporalities" => temporalities = list(),
            "-h" | "--help" => {
                println!(
                    "cargo run --release --example cardinality -- [--sizes 10k,100k,1M] \
                     [--impls otel,otlp,dual] [--temporalities cumulative,delta]"
                );
                return;
            }
            other => panic!("unknown argument {other:?} (try --help)"),
        }
    }

    let runtime =
        tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build().unwrap();
    let discard = Discard::default();
    let listener = runtime.block_on(tokio::net::TcpListener::bind("127.0.0.1:0")).unwrap();
    let endpoint = format!("http://{}", listener.local_addr().unwrap());
    let service = MetricsServiceServer::new(discard.clone())
        .max_decoding_message_size(usize::MAX)
        .max_encoding_message_size(usize::MAX);
    runtime.spawn(
        tonic::transport::Server::builder()
            .add_service(service)
            .serve_with_incoming(tonic::transport::server::TcpIncoming::from(listener)),
    );
    let statsd = UdpSocket::bind("127.0.0.1:0").unwrap();
    let statsd_addr = statsd.local_addr().unwrap().to_string();
    std::thread::spawn(move || {
        let mut buf = [0u8; 65536];
        while statsd.recv(&mut buf).is_ok() {}
    });

    let exe = std::env::current_exe().unwrap();
    println!(
        "| N | temporality | implementation | peak RSS (MB) | peak heap (MB) | heap at end (MB) | flush per cycle, mean / max (ms) | emit per cycle, mean (ms) |"
    );
    println!("|---:|---|---|---:|---:|---:|---:|---:|");
    let mut results = Vec::new();
    for &n in &sizes {
        for t in &temporalities {
            for i in &impls {
                let before = discard.points.load(Relaxed);
                let out = Command::new(&exe)
                    .args(["--child", i, t, &n.to_string(), &endpoint, &statsd_addr])
                    .output()
                    .expect("spawn child");
                assert!(
                    out.status.success(),
                    "child {i} {t} {n} failed: {}",
                    String::from_utf8_lossy(&out.stderr)
                );
                let o = parse_outcome(&String::from_utf8_lossy(&out.stdout));
                let points = discard.points.load(Relaxed) - before;
                let mean = |v: &[f64]| v.iter().sum::<f64>() / v.len() as f64;
                let max = |v: &[f64]| v.iter().cloned().fold(0.0, f64::max);
                println!(
                    "| {} | {t} | {} | {:.0} | {:.0} | {:.0} | {:.0} / {:.0} | {:.0} |",
                    label(n),
                    impl_name(i),
                    o.peak_kb as f64 / 1024.0,
                    o.heap_peak_kb as f64 / 1024.0,
                    o.heap_end_kb as f64 / 1024.0,
                    mean(&o.flush_ms),
                    max(&o.flush_ms),
                    mean(&o.emit_ms),
                );
                eprintln!("  ({} {t} {}: {points} points received)", label(n), impl_name(i));
                results.push((n, t.clone(), i.clone(), o));
            }
        }
    }

    let find = |n: usize, t: &str, i: &str| {
        results.iter().find(|(rn, rt, ri, _)| *rn == n && rt == t && ri == i).map(|r| &r.3)
    };
    println!();
    println!("| N | ratio | peak RSS | mean flush |");
    println!("|---:|---|---:|---:|");
    let mean = |v: &[f64]| v.iter().sum::<f64>() / v.len() as f64;
    for &n in &sizes {
        for t in &temporalities {
            for i in ["dual", "otlp"] {
                if let (Some(a), Some(b)) = (find(n, t, i), find(n, t, "otel")) {
                    println!(
                        "| {} | {} / OTel alone, {t} | {:.2}× | {:.2}× |",
                        label(n),
                        impl_name(i),
                        a.peak_kb as f64 / b.peak_kb as f64,
                        mean(&a.flush_ms) / mean(&b.flush_ms),
                    );
                }
            }
        }
        for i in &impls {
            if let (Some(d), Some(c)) = (find(n, "delta", i), find(n, "cumulative", i)) {
                println!(
                    "| {} | delta / cumulative, {} | {:.2}× | {:.2}× |",
                    label(n),
                    impl_name(i),
                    d.peak_kb as f64 / c.peak_kb as f64,
                    mean(&d.flush_ms) / mean(&c.flush_ms),
                );
            }
        }
    }
}

fn impl_name(i: &str) -> &'static str {
    match i {
        "otel" => "opentelemetry_sdk alone",
        "otlp" => "dualmetrics otlp",
        "dual" => "dualmetrics dual",
        _ => "?",
    }
}

fn parse_outcome(text: &str) -> Outcome {
    let line = text.lines().find(|l| l.starts_with("RESULT ")).expect("child RESULT line");
    let mut parts = line["RESULT ".len()..].split(' ');
    let peak_kb = parts.next().unwrap().parse().unwrap();
    let heap_peak_kb = parts.next().unwrap().parse().unwrap();
    let heap_end_kb = parts.next().unwrap().parse().unwrap();
    let list = |s: &str| s.split(',').map(|x| x.parse::<f64>().unwrap()).collect::<Vec<_>>();
    Outcome {
        peak_kb,
        heap_peak_kb,
        heap_end_kb,
        flush_ms: list(parts.next().unwrap()),
        emit_ms: list(parts.next().unwrap()),
    }
}

// ---------------------------------------------------------------------------------------------
// Child: one configuration.

fn vm_hwm_kb() -> u64 {
    let mut s = String::new();
    std::fs::File::open("/proc/self/status").unwrap().read_to_string(&mut s).unwrap();
    s.lines()
        .find(|l| l.starts_with("VmHWM:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
        .expect("VmHWM in /proc/self/status")
}

/// Runs the 10 cycles: `emit(i)` for each key of the cycle's slice, then `flush()` (timed).
fn cycles(n: usize, mut emit: impl FnMut(usize), mut flush: impl FnMut()) -> (Vec<f64>, Vec<f64>) {
    let (mut flush_ms, mut emit_ms) = (Vec::new(), Vec::new());
    for c in 0..CYCLES {
        let start = Instant::now();
        for i in c * n / CYCLES..(c + 1) * n / CYCLES {
            emit(i);
        }
        emit_ms.push(start.elapsed().as_secs_f64() * 1e3);
        let start = Instant::now();
        flush();
        flush_ms.push(start.elapsed().as_secs_f64() * 1e3);
    }
    HEAP_END.store(LIVE.load(Relaxed), Relaxed);
    (flush_ms, emit_ms)
}

fn child(which: &str, temporality: &str, n: usize, endpoint: &str, statsd: &str) {
    let (flush_ms, emit_ms) = match which {
        "otel" => child_otel(temporality, n, endpoint),
        "otlp" | "dual" => child_dualmetrics(which, temporality, n, endpoint, statsd),
        other => panic!("unknown implementation {other:?}"),
    };
    let join = |v: &[f64]| v.iter().map(|x| format!("{x:.3}")).collect::<Vec<_>>().join(",");
    println!(
        "RESULT {} {} {} {} {}",
        vm_hwm_kb(),
        PEAK.load(Relaxed) / 1024,
        HEAP_END.load(Relaxed) / 1024,
        join(&flush_ms),
        join(&emit_ms)
    );
}

fn child_dualmetrics(
    mode: &str,
    temporality: &str,
    n: usize,
    endpoint: &str,
    statsd: &str,
) -> (Vec<f64>, Vec<f64>) {
    use dualmetrics::{DualMetrics, Mode, Temporality};
    let metrics = DualMetrics::builder()
        .with_env_vars(Vec::<(String, String)>::new())
        .with_mode(if mode == "dual" { Mode::Dual } else { Mode::Otlp })
        .with_service_name("bench")
        .with_statsd_address(statsd)
        .with_statsd_flush_interval(Duration::from_secs(3600))
        .with_otlp_endpoint(endpoint)
        .with_otlp_export_interval(Duration::from_secs(3600))
        .with_otlp_timeout(EXPORT_TIMEOUT)
        .with_temporality(if temporality == "delta" {
            Temporality::Delta
        } else {
            Temporality::Cumulative
        })
        .with_setting("cumulative_series_warning", "0")
        .build()
        .expect("dualmetrics");
    // The limit on the measured instrument only: a global limit of N would also size every
    // self-metric instrument's SDK table for N series.
    let counter = metrics.counter("bench.requests").with_cardinality_limit(n).build().unwrap();
    let mut key = String::new();
    let out = cycles(
        n,
        |i| {
            use std::fmt::Write;
            key.clear();
            write!(key, "k{i}").unwrap();
            counter.add(1, &[("key", &key)]);
        },
        || metrics.flush().expect("flush"),
    );
    assert_eq!(metrics.telemetry().otlp.exports_failed, 0, "every export accepted");
    out
}

fn child_otel(temporality: &str, n: usize, endpoint: &str) -> (Vec<f64>, Vec<f64>) {
    use opentelemetry_otlp::{WithExportConfig, WithTonicConfig as _};
    use opentelemetry_sdk::metrics::{Instrument, PeriodicReader, SdkMeterProvider, Stream};
    let runtime =
        tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build().unwrap();
    let exporter = {
        let _guard = runtime.enter();
        opentelemetry_otlp::MetricExporter::builder()
            .with_tonic()
            .with_endpoint(endpoint)
            .with_timeout(EXPORT_TIMEOUT)
            .with_metadata(tonic::metadata::MetadataMap::new())
            .with_temporality(if temporality == "delta" {
                opentelemetry_sdk::metrics::Temporality::Delta
            } else {
                opentelemetry_sdk::metrics::Temporality::Cumulative
            })
            .build()
            .unwrap()
    };
    let reader = PeriodicReader::builder(exporter).with_interval(Duration::from_secs(3600)).build();
    let limit = n + 16;
    let provider = SdkMeterProvider::builder()
        .with_resource(
            opentelemetry_sdk::Resource::builder_empty()
                .with_attributes([KeyValue::new("service.name", "bench")])
                .build(),
        )
        .with_reader(reader)
        .with_view(move |_: &Instrument| {
            Stream::builder().with_cardinality_limit(limit).build().ok()
        })
        .build();
    let counter = provider.meter("dualmetrics").u64_counter("bench.requests").build();
    let out = cycles(
        n,
        |i| {
            counter
                .add(1, &[KeyValue::new("key", format!("k{i}")), KeyValue::new("service", "bench")])
        },
        || provider.force_flush().expect("flush"),
    );
    provider.shutdown().ok();
    runtime.shutdown_background();
    out
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.first().map(String::as_str) == Some("--child") {
        let n = args[3].parse().unwrap();
        child(&args[1], &args[2], n, &args[4], &args[5]);
    } else {
        parent(&args);
    }
}
