//! The same service as `../by-hand`: one counter and one histogram, to StatsD and OTLP/gRPC.
use std::time::Duration;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let metrics = dualmetrics::DualMetrics::builder().with_service_name("footprint").build()?;
    let requests = metrics.counter("http.requests").build()?;
    let latency = metrics.histogram("http.latency").with_unit("ms").build()?;
    requests.add(1, &[("route", "/cart")]);
    latency.record(12.5, &[("route", "/cart")]);
    metrics.shutdown(Duration::from_secs(1)).ok();
    Ok(())
}
