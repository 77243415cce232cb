//! The OTLP input's memory for one large request, measured as the process's resident memory:
//! 5,000 delta series under a 256 KiB Resource. Each series used to keep its own copy of the
//! Resource (5,000 × 256 KiB = 1.25 GiB); they now share one. (Its own test binary, so nothing
//! else runs in the process while it measures.)
use dualmetrics_shim::otlp_in::DeltaToCumulative;
use dualmetrics_shim::Telemetry;
use dualmetrics_testkit::alloc::resident_kib;
use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest;
use opentelemetry_proto::tonic::common::v1::{any_value, AnyValue, KeyValue};
use opentelemetry_proto::tonic::metrics::v1::{
    metric, number_data_point, Metric, NumberDataPoint, ResourceMetrics, ScopeMetrics, Sum,
};
use opentelemetry_proto::tonic::resource::v1::Resource;
use std::time::Duration;

const SERIES: usize = 5_000;
const RESOURCE_BYTES: usize = 256 * 1024;

fn kv(k: &str, v: &str) -> KeyValue {
    KeyValue {
        key: k.to_owned(),
        value: Some(AnyValue { value: Some(any_value::Value::StringValue(v.to_owned())) }),
        ..Default::default()
    }
}

#[test]
fn one_request_of_5000_series_under_a_256_kib_resource_stays_far_below_its_copies() {
    let points: Vec<NumberDataPoint> = (0..SERIES)
        .map(|i| NumberDataPoint {
            attributes: vec![kv("route", &format!("/r{i}"))],
            start_time_unix_nano: 1,
            time_unix_nano: 2,
            value: Some(number_data_point::Value::AsInt(1)),
            ..Default::default()
        })
        .collect();
    let request = ExportMetricsServiceRequest {
        resource_metrics: vec![ResourceMetrics {
            resource: Some(Resource {
                attributes: vec![
                    kv("service.name", "big"),
                    kv("blob", &"x".repeat(RESOURCE_BYTES)),
                ],
                ..Default::default()
            }),
            scope_metrics: vec![ScopeMetrics {
                metrics: vec![Metric {
                    name: "requests".into(),
                    data: Some(metric::Data::Sum(Sum {
                        data_points: points,
                        aggregation_temporality: 1, // delta
                        is_monotonic: true,
                    })),
                    ..Default::default()
                }],
                ..Default::default()
            }],
            ..Default::default()
        }],
    };
    let tel = Telemetry::default();
    let mut state = DeltaToCumulative::new(SERIES * 2, Duration::from_secs(600));
    let before = resident_kib();
    assert_eq!(state.accept(request, &tel), 0);
    let after = resident_kib();
    let growth_mib = after.saturating_sub(before) / 1024;
    let copies_mib = (SERIES * RESOURCE_BYTES / (1024 * 1024)) as u64;
    eprintln!(
        "RSS {before} KiB → {after} KiB (+{growth_mib} MiB; per-series copies: {copies_mib} MiB)"
    );
    assert!(
        growth_mib < 64,
        "+{growth_mib} MiB for one request (copies would be {copies_mib} MiB)"
    );
    let out = state.collect(&tel);
    assert_eq!(out.len(), 1, "one resource in the export");
}
