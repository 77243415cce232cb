//! cadence adapter: a service that already sends StatsD through a cadence `StatsdClient` keeps
//! every call site and changes only the sink it builds the client with: `DualSink` records each
//! line through the facade, so it reaches the StatsD daemon and the OTLP collector.
//!
//! ```text
//! cargo run --example cadence
//! ```
use std::sync::Arc;
use std::time::Duration;

use cadence::prelude::*;
use cadence::StatsdClient;
use dualmetrics::cadence_sink::DualSink;
use dualmetrics::{DualMetrics, Mode};
use dualmetrics_testkit::{OtlpGrpcReceiver, StatsdReceiver};

/// The service's existing instrumentation, untouched: cadence calls.
fn handle_requests(client: &StatsdClient) -> Result<(), cadence::MetricError> {
    for i in 0..10u64 {
        let code = if i % 5 == 4 { "500" } else { "200" };
        client
            .count_with_tags("http.requests", 1)
            .with_tag("route", "/cart")
            .with_tag("code", code)
            .send();
        client
            .time_with_tags("http.latency", Duration::from_millis(10 + i))
            .with_tag("route", "/cart")
            .send();
    }
    client.gauge("queue.depth", 5)?;
    client.histogram("payload.size", 512)?;
    client.set("users.seen", 42)?; // OpenTelemetry has no sets: dropped, counted
    Ok(())
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let statsd = StatsdReceiver::bind_udp();
    let otlp = OtlpGrpcReceiver::start();

    let metrics = Arc::new(
        DualMetrics::builder()
            .with_service_name("checkout")
            .with_statsd_address(&statsd.local_addr().to_string())
            // The legacy names were `checkout.*`: the facade prefixes StatsD names, the sink
            // strips the client's prefix, so OTLP gets bare names and nothing is doubled.
            .with_statsd_prefix("checkout")
            .with_otlp_endpoint(&otlp.endpoint())
            .with_mode(Mode::Dual)
            .build()?,
    );
    // was: StatsdClient::from_sink("checkout", UdpMetricSink::from(daemon, socket)?)
    let sink = DualSink::new(Arc::clone(&metrics)).strip_prefix("checkout");
    let client = StatsdClient::from_sink("checkout", sink);

    handle_requests(&client)?;
    metrics.flush()?;

    println!("-- StatsD lines (same names as before the change)");
    let mut lines = statsd.wait_for_lines(14, Duration::from_secs(5));
    lines.sort();
    for l in &lines {
        println!("  {l}");
    }
    println!("\n-- OTLP points");
    for p in otlp.wait_for(Duration::from_secs(5), |p| p.len() >= 5) {
        println!("  {p}");
    }
    println!("\ndropped by the adapter (the set): {}", metrics.telemetry().dropped_by_adapter);
    metrics.shutdown(Duration::from_secs(5))?;
    Ok(())
}
