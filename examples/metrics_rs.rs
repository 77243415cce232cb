//! metrics-rs adapter: a service instrumented with the `metrics` crate's macros dual-emits after
//! one added line, `dualmetrics::metrics_rs::install(..)`. Its call sites do not change.
//!
//! ```text
//! cargo run --example metrics_rs
//! ```
use std::sync::Arc;
use std::time::Duration;

use dualmetrics::{DualMetrics, Mode};
use dualmetrics_testkit::{OtlpGrpcReceiver, StatsdReceiver};

/// The service's existing instrumentation, untouched: plain `metrics` macros.
fn handle_requests() {
    metrics::describe_counter!("http_requests_total", metrics::Unit::Count, "requests served");
    metrics::describe_histogram!(
        "http.server.duration",
        metrics::Unit::Seconds,
        "time to serve a request"
    );
    for i in 0..10u32 {
        let code = if i % 5 == 4 { "500" } else { "200" };
        metrics::counter!("http_requests_total", "route" => "/cart", "code" => code).increment(1);
        metrics::histogram!("http.server.duration", "route" => "/cart")
            .record(0.5 / f64::from(1u32 << (i % 4))); // 500, 250, 125, 62.5 ms
    }
    // metrics-rs gauges can be adjusted: the adapter keeps the current value (see the docs).
    metrics::gauge!("queue.depth").set(3.0);
    metrics::gauge!("queue.depth").increment(2.0);
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    // Stand-ins for the StatsD daemon and the OTLP collector, in this process.
    let statsd = StatsdReceiver::bind_udp();
    let otlp = OtlpGrpcReceiver::start();

    let metrics = Arc::new(
        DualMetrics::builder()
            .with_service_name("checkout")
            .with_statsd_address(&statsd.local_addr().to_string())
            .with_otlp_endpoint(&otlp.endpoint())
            .with_mode(Mode::Dual)
            .build()?,
    );
    // The one-line change. Keep an Arc clone to flush and shut down at exit.
    dualmetrics::metrics_rs::install(Arc::clone(&metrics))
        .map_err(|_| "another metrics recorder is already installed")?;

    handle_requests();
    metrics.flush()?;

    println!("-- StatsD lines (labels became DogStatsD tags, seconds became ms timers)");
    let mut lines = statsd.wait_for_lines(13, Duration::from_secs(5));
    lines.sort();
    for l in &lines {
        println!("  {l}");
    }
    println!("\n-- OTLP points (units and descriptions from describe_*!)");
    for p in otlp.wait_for(Duration::from_secs(5), |p| p.len() >= 4) {
        println!("  {p}");
    }
    println!("\ndropped by the adapter: {}", metrics.telemetry().dropped_by_adapter);
    metrics.shutdown(Duration::from_secs(5))?;
    Ok(())
}
