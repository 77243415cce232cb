//! Quick start on embedded receivers: a real UDP StatsD receiver and a real tonic OTLP receiver
//! run in this process; the SDK records into both, then switches mode at runtime.
//!
//! ```text
//! cargo run --example quickstart
//! ```
use std::time::Duration;

use dualmetrics::{DualMetrics, Mode};
use dualmetrics_testkit::{OtlpGrpcReceiver, StatsdReceiver};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let statsd = StatsdReceiver::bind_udp();
    let otlp = OtlpGrpcReceiver::start();
    println!(
        "StatsD receiver on udp://{}, OTLP receiver on {}",
        statsd.local_addr(),
        otlp.endpoint()
    );

    let metrics = DualMetrics::builder()
        .with_service_name("checkout")
        .with_environment("demo")
        .with_statsd_address(&statsd.local_addr().to_string())
        .with_statsd_prefix("checkout")
        .with_otlp_endpoint(&otlp.endpoint())
        .with_mode(Mode::Dual)
        .build()?;

    let requests = metrics.counter("http.requests").with_unit("1").build()?;
    let latency = metrics.histogram("http.latency").with_unit("ms").build()?;
    let inflight = metrics.up_down_counter("http.inflight").build()?;
    let ok = requests.bind(&[("route", "/cart"), ("code", "200")])?;
    for i in 0..100u32 {
        ok.increment();
        latency.record(f64::from(5 + i % 40), &[("route", "/cart")]);
    }
    requests.add(3, &[("route", "/cart"), ("code", "500")]);
    inflight.add(4, &[]);
    metrics.flush()?;

    println!("\n-- dual mode: StatsD lines");
    let mut lines = statsd.wait_until(Duration::from_secs(5), |l| l.len() >= 103);
    lines.sort();
    lines.dedup();
    for l in lines.iter().filter(|l| !l.contains("latency")) {
        println!("  {l}");
    }
    println!(
        "  ... and {} `http.latency` timer samples",
        statsd.lines().iter().filter(|l| l.contains("latency")).count()
    );
    println!("\n-- dual mode: OTLP points");
    for p in otlp.wait_for(Duration::from_secs(5), |p| p.len() >= 4) {
        println!("  {p}");
    }

    println!("\n-- cutover: switching to otlp at runtime");
    let before = statsd.lines().len();
    metrics.set_mode(Mode::Otlp);
    ok.add(10);
    metrics.flush()?;
    let after = statsd.quiet(Duration::from_millis(300)).len();
    println!("  new StatsD lines after the switch: {} (OTLP keeps counting)", after - before);
    println!("\n-- self-telemetry\n{}", serde_json::to_string_pretty(&metrics.telemetry())?);
    println!(
        "\n-- catalog (input of `dualmetrics compare`)\n{}",
        serde_json::to_string_pretty(&metrics.catalog())?
    );
    metrics.shutdown(Duration::from_secs(5))?;
    Ok(())
}
