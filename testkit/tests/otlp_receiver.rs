//! The OTLP receivers against the real opentelemetry-otlp 0.33 exporter, over real sockets.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use dualmetrics_testkit::{
    latest, points, sum_of_values, OtlpGrpcReceiver, OtlpHttpReceiver, PointKind, PointValue,
    Temporality,
};
use opentelemetry::metrics::MeterProvider as _;
use opentelemetry::KeyValue;
use opentelemetry_otlp::tonic_types::metadata::MetadataMap;
use opentelemetry_otlp::{
    MetricExporter, Protocol, RetryPolicy, WithExportConfig, WithHttpConfig, WithTonicConfig,
};
use opentelemetry_sdk::metrics::{SdkMeterProvider, Temporality as SdkTemporality};
use opentelemetry_sdk::Resource;

const WAIT: Duration = Duration::from_secs(10);

/// A tokio runtime the tonic exporter's channel lives on (the exporter must be built inside
/// it; the PeriodicReader exports from its own thread).
fn client_runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build().unwrap()
}

fn provider(exporter: MetricExporter) -> SdkMeterProvider {
    SdkMeterProvider::builder()
        .with_periodic_exporter(exporter)
        .with_resource(
            Resource::builder()
                .with_service_name("testkit-svc")
                .with_attributes([KeyValue::new("deployment.environment", "test")])
                .build(),
        )
        .build()
}

fn grpc_exporter(
    rt: &tokio::runtime::Runtime,
    endpoint: String,
    timeout: Duration,
    temporality: SdkTemporality,
) -> MetricExporter {
    let _guard = rt.enter();
    let mut metadata = MetadataMap::new();
    metadata.insert("x-test-tenant", "acme".parse().unwrap());
    MetricExporter::builder()
        .with_tonic()
        .with_endpoint(endpoint)
        .with_timeout(timeout)
        .with_metadata(metadata)
        .with_retry_policy(RetryPolicy::disabled())
        .with_temporality(temporality)
        .build()
        .unwrap()
}

fn http_exporter(endpoint: String) -> MetricExporter {
    // the workspace builds reqwest with rustls and no default provider (one TLS stack, chosen
    // by the application): the exporter's own client needs one installed
    let _ = rustls::crypto::ring::default_provider().install_default();
    MetricExporter::builder()
        .with_http()
        .with_protocol(Protocol::HttpBinary)
        .with_endpoint(endpoint)
        .with_timeout(Duration::from_secs(5))
        .with_headers(HashMap::from([("x-test-tenant".into(), "acme".into())]))
        .with_retry_policy(RetryPolicy::disabled())
        .build()
        .unwrap()
}

/// Records 3 on a counter and two samples in a histogram with buckets [10, 100].
fn record(provider: &SdkMeterProvider) {
    let meter = provider.meter("testkit.scope");
    let counter = meter.u64_counter("http.requests").build();
    counter.add(1, &[KeyValue::new("route", "/a")]);
    counter.add(2, &[KeyValue::new("route", "/a")]);
    counter.add(5, &[KeyValue::new("route", "/b")]);
    let histogram = meter
        .f64_histogram("http.latency")
        .with_unit("ms")
        .with_boundaries(vec![10.0, 100.0])
        .build();
    histogram.record(5.0, &[KeyValue::new("route", "/a")]);
    histogram.record(50.0, &[KeyValue::new("route", "/a")]);
}

fn assert_recorded_points(points: &[dualmetrics_testkit::Point]) {
    let hits = latest(points, "http.requests", &[("route", "/a")]).expect("counter /a");
    assert_eq!(hits.kind, PointKind::Sum { monotonic: true });
    assert_eq!(hits.temporality, Some(Temporality::Cumulative));
    assert_eq!(hits.value, PointValue::Int(3));
    assert_eq!(hits.scope, "testkit.scope");
    assert_eq!(hits.resource["service.name"], "testkit-svc");
    assert_eq!(hits.resource["deployment.environment"], "test");
    assert!(hits.time_unix_nano >= hits.start_time_unix_nano && hits.start_time_unix_nano > 0);
    assert_eq!(sum_of_values(points, "http.requests", &[]), 8.0);

    let lat = latest(points, "http.latency", &[("route", "/a")]).expect("histogram /a");
    assert_eq!(lat.kind, PointKind::Histogram);
    assert_eq!(lat.unit, "ms");
    match &lat.value {
        PointValue::Histogram { count, sum, bounds, bucket_counts, min, max } => {
            assert_eq!(*count, 2);
            assert_eq!(*sum, Some(55.0));
            assert_eq!(bounds, &[10.0, 100.0]);
            assert_eq!(bucket_counts, &[1, 1, 0]);
            assert_eq!((*min, *max), (Some(5.0), Some(50.0)));
        }
        other => panic!("not a histogram: {other:?}"),
    }
}

#[test]
fn grpc_receives_a_real_export() {
    let otlp = OtlpGrpcReceiver::start();
    let rt = client_runtime();
    let provider = provider(grpc_exporter(
        &rt,
        otlp.endpoint(),
        Duration::from_secs(5),
        SdkTemporality::Cumulative,
    ));
    record(&provider);
    provider.force_flush().unwrap();

    let points = otlp.wait_for(WAIT, |p| latest(p, "http.latency", &[]).is_some());
    assert_recorded_points(&points);
    let received = otlp.received();
    assert_eq!(received[0].header("x-test-tenant"), Some("acme"));
    assert_eq!(received[0].header("content-type"), Some("application/grpc"));
    assert_eq!(otlp.request_count(), 1);
    assert_eq!(otlp.attempts(), 1);
    assert_eq!(points, otlp.points());
    assert_eq!(points, dualmetrics_testkit::points(&otlp.requests()));
    provider.shutdown().unwrap();
}

#[test]
fn http_receives_a_real_export() {
    let otlp = OtlpHttpReceiver::start();
    assert!(otlp.endpoint().ends_with("/v1/metrics"));
    let provider = provider(http_exporter(otlp.endpoint()));
    record(&provider);
    provider.force_flush().unwrap();

    let points = otlp.wait_for(WAIT, |p| latest(p, "http.latency", &[]).is_some());
    assert_recorded_points(&points);
    let received = otlp.wait_for_requests(1, WAIT);
    assert_eq!(received[0].header("X-Test-Tenant"), Some("acme"));
    assert_eq!(received[0].header("content-type"), Some("application/x-protobuf"));
    provider.shutdown().unwrap();
}

#[test]
fn delta_temporality_is_visible_and_sums_up() {
    let otlp = OtlpGrpcReceiver::start();
    let rt = client_runtime();
    let provider = provider(grpc_exporter(
        &rt,
        otlp.endpoint(),
        Duration::from_secs(5),
        SdkTemporality::Delta,
    ));
    let counter = provider.meter("m").u64_counter("jobs").build();
    counter.add(2, &[]);
    provider.force_flush().unwrap();
    counter.add(3, &[]);
    provider.force_flush().unwrap();

    let points = otlp.wait_for(WAIT, |p| sum_of_values(p, "jobs", &[]) == 5.0);
    assert!(points.iter().all(|p| p.temporality == Some(Temporality::Delta)));
    assert_eq!(latest(&points, "jobs", &[]).unwrap().value, PointValue::Int(3));
    provider.shutdown().unwrap();
}

#[test]
fn grpc_failing_toggle_fails_the_export_then_recovers() {
    let otlp = OtlpGrpcReceiver::start();
    let rt = client_runtime();
    let provider = provider(grpc_exporter(
        &rt,
        otlp.endpoint(),
        Duration::from_secs(5),
        SdkTemporality::Cumulative,
    ));
    let counter = provider.meter("m").u64_counter("c").build();
    counter.add(1, &[]);

    otlp.set_failing(true);
    assert!(provider.force_flush().is_err());
    assert_eq!(otlp.request_count(), 0);
    assert_eq!((otlp.attempts(), otlp.refused()), (1, 1));

    otlp.set_failing(false);
    counter.add(1, &[]);
    provider.force_flush().unwrap();
    let points = otlp.wait_for(WAIT, |p| latest(p, "c", &[]).is_some());
    assert_eq!(latest(&points, "c", &[]).unwrap().value, PointValue::Int(2));
    assert_eq!((otlp.attempts(), otlp.refused()), (2, 1));
    provider.shutdown().unwrap();
}

#[test]
fn grpc_refusal_is_retried_by_the_default_policy() {
    let otlp = OtlpGrpcReceiver::builder().with_status(tonic::Code::Unavailable).start();
    let rt = client_runtime();
    let exporter = {
        let _guard = rt.enter();
        MetricExporter::builder()
            .with_tonic()
            .with_endpoint(otlp.endpoint())
            .with_retry_policy(
                RetryPolicy::recommended()
                    .with_max_retries(2)
                    .with_initial_delay(Duration::from_millis(10))
                    .with_max_jitter(Duration::ZERO),
            )
            .build()
            .unwrap()
    };
    let provider = provider(exporter);
    provider.meter("m").u64_counter("c").build().add(1, &[]);
    assert!(provider.force_flush().is_err());
    assert_eq!(otlp.attempts(), 3, "one attempt and two retries");
    assert_eq!(otlp.refused(), 3);
    assert_eq!(otlp.request_count(), 0);
    provider.shutdown().ok();
}

#[test]
fn http_with_status_refuses_with_the_mapped_http_status() {
    let otlp = OtlpHttpReceiver::builder().with_status(tonic::Code::ResourceExhausted).start();
    let provider = provider(http_exporter(otlp.endpoint()));
    provider.meter("m").u64_counter("c").build().add(1, &[]);
    assert!(provider.force_flush().is_err());
    assert_eq!((otlp.attempts(), otlp.refused(), otlp.request_count()), (1, 1, 0));

    otlp.set_failing(false);
    provider.force_flush().unwrap();
    otlp.wait_for(WAIT, |p| latest(p, "c", &[]).is_some());
    provider.shutdown().unwrap();
}

#[test]
fn slow_grpc_server_delays_the_export() {
    let delay = Duration::from_millis(300);
    let otlp = OtlpGrpcReceiver::builder().with_delay(delay).start();
    let rt = client_runtime();
    let provider = provider(grpc_exporter(
        &rt,
        otlp.endpoint(),
        Duration::from_secs(5),
        SdkTemporality::Cumulative,
    ));
    provider.meter("m").u64_counter("c").build().add(1, &[]);
    let start = Instant::now();
    provider.force_flush().unwrap();
    assert!(start.elapsed() >= delay, "{:?}", start.elapsed());
    assert_eq!(otlp.request_count(), 1);

    // Back to fast at run time.
    otlp.set_delay(Duration::ZERO);
    let start = Instant::now();
    provider.force_flush().unwrap();
    assert!(start.elapsed() < delay, "{:?}", start.elapsed());
    assert_eq!(otlp.request_count(), 2);
    provider.shutdown().unwrap();
}

#[test]
fn slow_grpc_server_times_out_a_short_exporter_timeout() {
    let otlp = OtlpGrpcReceiver::builder().with_delay(Duration::from_secs(3)).start();
    let rt = client_runtime();
    let provider = provider(grpc_exporter(
        &rt,
        otlp.endpoint(),
        Duration::from_millis(200),
        SdkTemporality::Cumulative,
    ));
    provider.meter("m").u64_counter("c").build().add(1, &[]);
    let start = Instant::now();
    assert!(provider.force_flush().is_err());
    assert!(start.elapsed() < Duration::from_secs(2), "{:?}", start.elapsed());
    assert_eq!(otlp.attempts(), 1);
    assert_eq!(otlp.request_count(), 0);
    provider.shutdown().ok();
}

#[test]
fn stopped_grpc_receiver_refuses_connections() {
    let otlp = OtlpGrpcReceiver::start();
    let rt = client_runtime();
    let provider = provider(grpc_exporter(
        &rt,
        otlp.endpoint(),
        Duration::from_secs(2),
        SdkTemporality::Cumulative,
    ));
    let counter = provider.meter("m").u64_counter("c").build();
    counter.add(1, &[]);
    provider.force_flush().unwrap();
    otlp.stop();
    assert!(std::net::TcpStream::connect(otlp.local_addr()).is_err());
    counter.add(1, &[]);
    assert!(provider.force_flush().is_err());
    assert_eq!(otlp.request_count(), 1);
    provider.shutdown().ok();
}

#[test]
fn http_receiver_rejects_wrong_paths_and_bodies() {
    let otlp = OtlpHttpReceiver::start();
    // rustls without a default provider in this workspace (see `http_exporter`)
    let _ = rustls::crypto::ring::default_provider().install_default();
    let client = reqwest::blocking::Client::new();
    let base = format!("http://{}", otlp.local_addr());
    let status = |r: reqwest::blocking::RequestBuilder| r.send().unwrap().status().as_u16();

    assert_eq!(status(client.get(otlp.endpoint())), 405);
    assert_eq!(status(client.post(format!("{base}/v1/traces"))), 404);
    assert_eq!(
        status(client.post(otlp.endpoint()).header("content-type", "application/json").body("{}")),
        415
    );
    assert_eq!(
        status(
            client
                .post(otlp.endpoint())
                .header("content-type", "application/x-protobuf")
                .body(vec![0xff, 0xff, 0xff])
        ),
        400
    );
    // An empty protobuf body is a valid, empty request.
    assert_eq!(
        status(
            client
                .post(otlp.endpoint())
                .header("content-type", "application/x-protobuf")
                .body(Vec::new())
        ),
        200
    );
    assert_eq!(otlp.request_count(), 1);
    assert!(otlp.points().is_empty());
}

#[test]
fn wait_for_times_out_with_what_arrived() {
    let otlp = OtlpHttpReceiver::start();
    let err = otlp.try_wait_for(Duration::from_millis(50), |p| !p.is_empty()).unwrap_err();
    assert_eq!((err.requests, err.points.len()), (0, 0));
    assert!(err.to_string().starts_with("timed out waiting for the condition"));
}

/// The receivers own their runtime, so they also work from inside an async test, including a
/// current-thread one, and can be dropped there.
#[tokio::test(flavor = "current_thread")]
async fn grpc_receiver_works_inside_a_tokio_test() {
    use opentelemetry_proto::tonic::collector::metrics::v1::metrics_service_client::MetricsServiceClient;

    let otlp = OtlpGrpcReceiver::start();
    let mut client = MetricsServiceClient::connect(otlp.endpoint()).await.unwrap();
    client.export(dualmetrics_testkit::ExportMetricsServiceRequest::default()).await.unwrap();
    otlp.set_failing(true);
    let err = client
        .export(dualmetrics_testkit::ExportMetricsServiceRequest::default())
        .await
        .unwrap_err();
    assert_eq!(err.code(), tonic::Code::Unavailable);
    assert_eq!(otlp.request_count(), 1);
    assert!(points(&otlp.requests()).is_empty());
    drop(otlp);
}
