//! Bound handles: resolve a tag set once with `bind`, then each record skips the tag hashing and
//! the series lookup (a mode load plus atomics). This example records the same counts both ways,
//! shows that both pipelines see one series, and times the two paths.
//!
//! ```text
//! cargo run --release --example bound_handles
//! ```
use std::time::{Duration, Instant};

use dualmetrics::{DualMetrics, Mode};
use dualmetrics_testkit::{latest, OtlpGrpcReceiver, StatsdReceiver};

const N: u32 = 1_000_000;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let statsd = StatsdReceiver::bind_udp();
    let otlp = OtlpGrpcReceiver::start();
    let metrics = DualMetrics::builder()
        .with_service_name("checkout")
        .with_statsd_address(&statsd.local_addr().to_string())
        .with_otlp_endpoint(&otlp.endpoint())
        .with_statsd_flush_interval(Duration::from_secs(3600)) // flushed once, below
        .with_mode(Mode::Dual)
        .build()?;
    let requests = metrics.counter("http.requests").with_unit("1").build()?;
    let latency = metrics.histogram("http.latency").with_unit("ms").build()?;

    // Unbound: tags on every call (hashed, looked up under a read lock).
    let tags = [("route", "/cart"), ("code", "200")];
    let start = Instant::now();
    for _ in 0..N {
        requests.add(1, &tags);
    }
    let unbound = start.elapsed();

    // Bound: the same series, resolved once. Keep such handles in your structs.
    let cart_ok = requests.bind(&tags)?;
    let start = Instant::now();
    for _ in 0..N {
        cart_ok.increment();
    }
    let bound = start.elapsed();

    // A bound histogram also gives a drop-guard timer.
    let cart_latency = latency.bind(&[("route", "/cart")])?;
    {
        let _timer = cart_latency.start_timer();
        std::thread::sleep(Duration::from_millis(3)); // the work being timed
    }
    metrics.flush()?;

    let per = |d: Duration| d.as_nanos() as f64 / f64::from(N);
    println!("unbound add: {:6.1} ns/emit", per(unbound));
    println!("bound   add: {:6.1} ns/emit ({:.1}x faster)", per(bound), per(unbound) / per(bound));

    // Both ways landed in one series: 2N on each pipeline.
    let total = format!("http.requests:{}|c", 2 * N);
    let lines =
        statsd.wait_until(Duration::from_secs(5), |l| l.iter().any(|l| l.starts_with(&total)));
    for l in lines.iter().filter(|l| l.starts_with("http.")) {
        println!("statsd: {l}");
    }
    let points = otlp.wait_for(Duration::from_secs(5), |p| p.len() >= 2);
    println!("otlp:   {}", latest(&points, "http.requests", &tags).ok_or("no OTLP point")?);
    println!("otlp:   {}", latest(&points, "http.latency", &[]).ok_or("no OTLP point")?);
    metrics.shutdown(Duration::from_secs(5))?;
    Ok(())
}
