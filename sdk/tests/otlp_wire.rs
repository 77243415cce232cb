//! The OTLP pipeline against real receivers: a tonic MetricsService and an HTTP/protobuf server.
use std::time::Duration;

use dualmetrics::{DualMetrics, Mode, Protocol, Temporality};
use dualmetrics_testkit::{
    latest, OtlpGrpcReceiver, OtlpHttpReceiver, Point, PointKind, PointValue,
};

const WAIT: Duration = Duration::from_secs(10);

fn otlp_only(endpoint: &str, protocol: Protocol) -> dualmetrics::DualMetricsBuilder {
    DualMetrics::builder()
        .ignore_env()
        .with_mode(Mode::Otlp)
        .with_service_name("checkout")
        .with_environment("test")
        .with_resource_attribute("service.version", "1.2.3")
        .with_statsd_address("127.0.0.1:9")
        .with_otlp_endpoint(endpoint)
        .with_otlp_protocol(protocol)
        .with_otlp_header("x-api-key", "secret-1")
        .with_otlp_export_interval(Duration::from_secs(3600))
}

fn record_every_kind(metrics: &DualMetrics) {
    let requests = metrics
        .counter("http.requests")
        .with_description("requests served")
        .with_unit("1")
        .build()
        .unwrap();
    requests.add(2, &[("route", "/a")]);
    requests.add(3, &[("route", "/a")]);
    let depth = metrics.up_down_counter("queue.depth").build().unwrap();
    depth.add(5, &[]);
    depth.add(-7, &[]);
    let temp = metrics.gauge("cpu.temp").with_unit("Cel").build().unwrap();
    temp.record(21.5, &[("core", "0")]);
    let latency = metrics.histogram("http.latency").with_unit("ms").build().unwrap();
    for v in [3.0, 30.0, 300.0] {
        latency.record(v, &[("route", "/a")]);
    }
}

fn assert_every_kind(points: &[Point]) {
    let p = latest(points, "http.requests", &[("route", "/a")]).expect("counter point");
    assert_eq!(p.kind, PointKind::Sum { monotonic: true });
    assert_eq!(p.temporality, Some(dualmetrics_testkit::Temporality::Cumulative));
    assert_eq!(p.value, PointValue::Int(5));
    assert_eq!(p.unit, "1");
    assert_eq!(p.description, "requests served");
    assert_eq!(p.attr("service"), Some("checkout"), "global tags are attributes too");
    assert_eq!(p.attr("env"), Some("test"));
    assert_eq!(p.resource["service.name"], "checkout");
    assert_eq!(p.resource["service.version"], "1.2.3");
    assert_eq!(p.resource["deployment.environment.name"], "test");
    assert_eq!(p.scope, "dualmetrics");

    let p = latest(points, "queue.depth", &[]).expect("up-down point");
    assert_eq!(p.kind, PointKind::Sum { monotonic: false });
    assert_eq!(p.value, PointValue::Int(-2));

    let p = latest(points, "cpu.temp", &[("core", "0")]).expect("gauge point");
    assert_eq!(p.kind, PointKind::Gauge);
    assert_eq!(p.value, PointValue::Double(21.5));
    assert_eq!(p.unit, "Cel");

    let p = latest(points, "http.latency", &[("route", "/a")]).expect("histogram point");
    assert_eq!(p.kind, PointKind::Histogram);
    assert_eq!(p.unit, "ms");
    let PointValue::Histogram { count, sum, bounds, bucket_counts, .. } = &p.value else {
        panic!("{p:?}")
    };
    assert_eq!(*count, 3);
    assert_eq!(*sum, Some(333.0));
    assert_eq!(bounds, &dualmetrics::config::DEFAULT_HISTOGRAM_BOUNDARIES_MS.to_vec());
    // 3 ≤ 5, 30 ≤ 50, 300 ≤ 500
    let nonzero: Vec<(f64, u64)> =
        bounds.iter().zip(bucket_counts).filter(|(_, c)| **c > 0).map(|(b, c)| (*b, *c)).collect();
    assert_eq!(nonzero, vec![(5.0, 1), (50.0, 1), (500.0, 1)]);
}

#[test]
fn grpc_export_carries_names_units_attributes_resource_and_buckets() {
    let otlp = OtlpGrpcReceiver::start();
    let metrics = otlp_only(&otlp.endpoint(), Protocol::Grpc).build().unwrap();
    record_every_kind(&metrics);
    metrics.flush().unwrap();
    let points = otlp.wait_for(WAIT, |p| latest(p, "http.latency", &[]).is_some());
    assert_every_kind(&points);
    assert_eq!(otlp.received()[0].header("x-api-key"), Some("secret-1"));
}

#[test]
fn http_protobuf_export_carries_the_same_points() {
    let otlp = OtlpHttpReceiver::start();
    let metrics = otlp_only(&otlp.endpoint(), Protocol::HttpProtobuf).build().unwrap();
    record_every_kind(&metrics);
    metrics.flush().unwrap();
    let points = otlp.wait_for(WAIT, |p| latest(p, "http.latency", &[]).is_some());
    assert_every_kind(&points);
    assert_eq!(otlp.received()[0].header("x-api-key"), Some("secret-1"));
}

#[test]
fn http_base_endpoint_from_otel_variable_gets_the_metrics_path() {
    let otlp = OtlpHttpReceiver::start();
    let base = otlp.endpoint().trim_end_matches("/v1/metrics").to_owned();
    let metrics = DualMetrics::builder()
        .with_env_vars([
            ("OTEL_EXPORTER_OTLP_ENDPOINT", base.as_str()),
            ("OTEL_EXPORTER_OTLP_PROTOCOL", "http/protobuf"),
            ("OTEL_SERVICE_NAME", "from-otel-env"),
            ("DUALMETRICS_MODE", "otlp"),
        ])
        .build()
        .unwrap();
    metrics.counter("c").build().unwrap().add(1, &[]);
    metrics.flush().unwrap();
    let points = otlp.wait_for(WAIT, |p| latest(p, "c", &[]).is_some());
    assert_eq!(latest(&points, "c", &[]).unwrap().resource["service.name"], "from-otel-env");
}

#[test]
fn delta_temporality_exports_changes_since_last_export() {
    let otlp = OtlpGrpcReceiver::start();
    let metrics = otlp_only(&otlp.endpoint(), Protocol::Grpc)
        .with_temporality(Temporality::Delta)
        .build()
        .unwrap();
    let c = metrics.counter("jobs").build().unwrap().bind(&[]).unwrap();
    c.add(4);
    metrics.flush().unwrap();
    c.add(6);
    metrics.flush().unwrap();
    let points = otlp.wait_for(WAIT, |p| p.iter().filter(|p| p.metric == "jobs").count() == 2);
    let jobs: Vec<&Point> = points.iter().filter(|p| p.metric == "jobs").collect();
    assert!(jobs.iter().all(|p| p.temporality == Some(dualmetrics_testkit::Temporality::Delta)));
    assert_eq!(jobs[0].value, PointValue::Int(4));
    assert_eq!(jobs[1].value, PointValue::Int(6));
}

#[test]
fn seconds_histograms_get_default_boundaries_scaled_to_seconds() {
    let otlp = OtlpGrpcReceiver::start();
    let metrics = otlp_only(&otlp.endpoint(), Protocol::Grpc).build().unwrap();
    let h = metrics.histogram("rpc.duration").with_unit("s").build().unwrap();
    h.record_duration(Duration::from_millis(30), &[]);
    metrics.flush().unwrap();
    let points = otlp.wait_for(WAIT, |p| latest(p, "rpc.duration", &[]).is_some());
    let PointValue::Histogram { bounds, sum, .. } =
        &latest(&points, "rpc.duration", &[]).unwrap().value
    else {
        panic!()
    };
    assert_eq!(bounds[1], 0.005);
    assert_eq!(bounds.last(), Some(&10.0));
    assert!((sum.unwrap() - 0.03).abs() < 1e-9);
}

#[test]
fn custom_and_exponential_histograms() {
    let otlp = OtlpGrpcReceiver::start();
    let metrics = otlp_only(&otlp.endpoint(), Protocol::Grpc).build().unwrap();
    let h = metrics.histogram("sized").with_boundaries(vec![1.0, 10.0]).build().unwrap();
    h.record(5.0, &[]);
    metrics.flush().unwrap();
    let points = otlp.wait_for(WAIT, |p| latest(p, "sized", &[]).is_some());
    let PointValue::Histogram { bounds, bucket_counts, .. } =
        &latest(&points, "sized", &[]).unwrap().value
    else {
        panic!()
    };
    assert_eq!((bounds.clone(), bucket_counts.clone()), (vec![1.0, 10.0], vec![0, 1, 0]));

    let otlp = OtlpGrpcReceiver::start();
    let metrics = otlp_only(&otlp.endpoint(), Protocol::Grpc)
        .with_histogram_aggregation(dualmetrics::config::HistogramAggregation::Exponential)
        .build()
        .unwrap();
    metrics.histogram("expo").with_unit("ms").build().unwrap().record(117.0, &[]);
    metrics.flush().unwrap();
    let points = otlp.wait_for(WAIT, |p| latest(p, "expo", &[]).is_some());
    assert_eq!(latest(&points, "expo", &[]).unwrap().kind, PointKind::ExpHistogram);
}
