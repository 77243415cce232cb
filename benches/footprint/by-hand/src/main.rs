//! One counter and one histogram, to StatsD (cadence, UDP) and OTLP/gRPC (opentelemetry-otlp),
//! wired by hand.
use cadence::{Counted, Histogrammed, StatsdClient, UdpMetricSink};
use opentelemetry::metrics::MeterProvider as _;
use opentelemetry::KeyValue;
use opentelemetry_otlp::WithExportConfig;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let rt = tokio::runtime::Runtime::new()?;
    let _guard = rt.enter();
    let socket = std::net::UdpSocket::bind("0.0.0.0:0")?;
    let statsd = StatsdClient::from_sink("", UdpMetricSink::from("127.0.0.1:8125", socket)?);
    let exporter = opentelemetry_otlp::MetricExporter::builder()
        .with_tonic()
        .with_endpoint("http://127.0.0.1:4317")
        .build()?;
    let reader = opentelemetry_sdk::metrics::PeriodicReader::builder(exporter).build();
    let provider = opentelemetry_sdk::metrics::SdkMeterProvider::builder().with_reader(reader).build();
    let meter = provider.meter("footprint");
    let requests = meter.u64_counter("http.requests").build();
    let latency = meter.f64_histogram("http.latency").with_unit("ms").build();
    let attrs = [KeyValue::new("route", "/cart")];
    requests.add(1, &attrs);
    latency.record(12.5, &attrs);
    let _ = statsd.count_with_tags("http.requests", 1).with_tag("route", "/cart").try_send();
    let _ = statsd.histogram_with_tags("http.latency", 12.5).with_tag("route", "/cart").try_send();
    let _ = provider.shutdown();
    Ok(())
}
