//! End-to-end smoke of the real-backend lab (`scripts/lab/`), without the SDK: raw StatsD lines
//! and one hand-built OTLP/HTTP request go to the real servers, and exact values are read back.
//!
//! Runs only with `DUALMETRICS_E2E=1` (otherwise it prints `skipped: set DUALMETRICS_E2E=1`).
//! With `DUALMETRICS_LAB_ENV=<lab.env>` it uses that lab (what `scripts/test.sh` does); else
//! each test starts a lab of its own on free ports and stops it at the end. When e2e is
//! requested, a lab that cannot start is a test failure.

use std::collections::BTreeMap;
use std::net::UdpSocket;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use dualmetrics_testkit::lab::{
    e2e_lab, poll_eq, poll_until, post_otlp_protobuf, Lab, PromClient, RenderRequest,
    INGEST_TIMEOUT, POLL_INTERVAL,
};
use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest;
use opentelemetry_proto::tonic::common::v1::{any_value, AnyValue, InstrumentationScope, KeyValue};
use opentelemetry_proto::tonic::metrics::v1::{
    metric, number_data_point, AggregationTemporality, Gauge, Histogram, HistogramDataPoint,
    Metric, NumberDataPoint, ResourceMetrics, ScopeMetrics, Sum,
};
use opentelemetry_proto::tonic::resource::v1::Resource;
use prost::Message;

/// A run id that keeps metric names of concurrent and repeated runs apart.
fn run_id(tag: &str) -> String {
    let nanos = SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_nanos();
    format!("{tag}{}x{}", std::process::id(), nanos % 1_000_000_000_000)
}

fn send(sock: &UdpSocket, lab: &Lab, datagram: &str) {
    let n = sock.send_to(datagram.as_bytes(), lab.statsd_addr()).expect("send StatsD datagram");
    assert_eq!(n, datagram.len());
}

#[test]
fn statsd_lines_reach_victoriametrics_with_exact_values() {
    let Some(mut lab) = e2e_lab() else { return };
    assert!(!lab.statsd_delete_idle(), "these assertions assume STATSD_DELETE_IDLE=false");
    let p = format!("lab_smoke.{}", run_id("s"));
    let sock = UdpSocket::bind("127.0.0.1:0").unwrap();

    // counters with DogStatsD tags, in separate datagrams (they may land in different flushes:
    // totals are summed over flushes); the sample rate comes before the tags
    send(&sock, &lab, &format!("{p}.hits:5|c|#env:prod,region:eu"));
    send(&sock, &lab, &format!("{p}.hits:3|c|#env:prod,region:eu"));
    send(&sock, &lab, &format!("{p}.hits:2|c|@0.5|#env:prod,region:us")); // counts 4
    send(&sock, &lab, &format!("{p}.plain:7|c"));
    send(&sock, &lab, &format!("{p}.plain:1|c"));
    // gauge set + relative adjustment in one datagram (one flush): 50
    send(&sock, &lab, &format!("{p}.queue:42|g\n{p}.queue:+8|g"));
    // timer samples in one datagram (one flush): count 3, sum 600, upper 300, upper_90 300
    send(&sock, &lab, &format!("{p}.lat:100|ms\n{p}.lat:200|ms\n{p}.lat:300|ms"));

    let vm = lab.vm();
    let w = "[15m]";
    let counters = format!("stats.counters.{p}");

    // PromQL over the raw per-flush samples (statsd flushes idle counters as 0: sum, don't read last)
    let by_region = poll_eq(
        INGEST_TIMEOUT,
        POLL_INTERVAL,
        BTreeMap::from([("eu".to_string(), 8.0), ("us".to_string(), 4.0)]),
        || {
            vm.query_by_label(
                &format!(r#"sum by (region) (sum_over_time({{__name__="{counters}.hits.count",env="prod"}}{w}))"#),
                "region",
            )
        },
    )
    .unwrap();
    println!("VM tagged counter totals by region: {by_region:?}");
    let one = |q: String, expected: f64| {
        poll_eq(INGEST_TIMEOUT, POLL_INTERVAL, Some(expected), || vm.query_value(&q))
            .unwrap_or_else(|e| panic!("{q}: {e}"));
        println!("VM {q} = {expected}");
    };
    one(format!(r#"sum_over_time({{__name__="{counters}.plain.count"}}{w})"#), 8.0);
    one(format!(r#"last_over_time({{__name__="stats.gauges.{p}.queue"}}{w})"#), 50.0);
    one(format!(r#"sum_over_time({{__name__="stats.timers.{p}.lat.count"}}{w})"#), 3.0);
    one(format!(r#"sum_over_time({{__name__="stats.timers.{p}.lat.sum"}}{w})"#), 600.0);
    one(format!(r#"max_over_time({{__name__="stats.timers.{p}.lat.upper_90"}}{w})"#), 300.0);
    one(format!(r#"min_over_time({{__name__="stats.timers.{p}.lat.lower"}}{w})"#), 100.0);

    // the raw stored samples: one non-zero flush total per flush that had data, zeros after it
    let raw = vm.export(&format!(r#"{{__name__="{counters}.plain.count"}}"#)).unwrap();
    assert_eq!(raw.len(), 1, "{raw:?}");
    assert_eq!(raw[0].sum(), 8.0, "{raw:?}");
    assert!(raw[0].values.iter().all(|v| *v >= 0.0), "{raw:?}");

    // Graphite render API of VictoriaMetrics (storage step = flush interval, set by up.sh)
    let graphite = lab.graphite();
    let render_sum = |req: RenderRequest, expected: f64| {
        let got = poll_eq(INGEST_TIMEOUT, POLL_INTERVAL, expected, || {
            graphite.render_request(&req).map(|s| s.iter().map(|s| s.sum()).sum::<f64>())
        })
        .unwrap_or_else(|e| panic!("render {:?}: {e}", req.targets));
        println!("VM /render {:?} sums to {got}", req.targets);
    };
    render_sum(RenderRequest::new(format!("{counters}.plain.count"), "-15min"), 8.0);
    render_sum(
        RenderRequest::new(format!("summarize({counters}.plain.count,'1h','sum')"), "-15min"),
        8.0,
    );
    render_sum(
        RenderRequest::new(
            format!("seriesByTag('name={counters}.hits.count','region=eu')"),
            "-15min",
        ),
        8.0,
    );
    let tagged = graphite
        .render(&format!("seriesByTag('name={counters}.hits.count','env=prod')"), "-15min")
        .unwrap();
    let mut regions: Vec<(String, f64)> = tagged
        .iter()
        .map(|s| (s.tags.get("region").cloned().unwrap_or_default(), s.sum()))
        .collect();
    regions.sort_by(|a, b| a.0.cmp(&b.0));
    assert_eq!(regions, vec![("eu".to_string(), 8.0), ("us".to_string(), 4.0)]);
    let upper = graphite.render(&format!("stats.timers.{p}.lat.upper_90"), "-15min").unwrap();
    assert_eq!(upper.len(), 1);
    assert_eq!(upper[0].max(), Some(300.0));
    let gauge = graphite.render(&format!("stats.gauges.{p}.queue"), "-15min").unwrap();
    assert_eq!(gauge[0].last(), Some(50.0));

    lab.stop().expect("lab stops cleanly");
}

fn kv(key: &str, value: &str) -> KeyValue {
    KeyValue {
        key: key.into(),
        value: Some(AnyValue { value: Some(any_value::Value::StringValue(value.into())) }),
        ..Default::default()
    }
}

/// One cumulative request: counter `lab_smoke.requests` = 8, gauge `lab_smoke.temperature` = 21.5
/// (unit Cel), histogram `lab_smoke.latency` (ms) with 4 samples 3, 40, 80, 700 (sum 823).
fn otlp_request(run: &str) -> ExportMetricsServiceRequest {
    let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_nanos() as u64;
    let start = now - 10_000_000_000;
    let attrs = vec![kv("route", "/a"), kv("run", run)];
    let number = |v: number_data_point::Value| NumberDataPoint {
        attributes: attrs.clone(),
        start_time_unix_nano: start,
        time_unix_nano: now,
        value: Some(v),
        ..Default::default()
    };
    let cumulative = AggregationTemporality::Cumulative as i32;
    let metrics = vec![
        Metric {
            name: "lab_smoke.requests".into(),
            unit: "1".into(),
            data: Some(metric::Data::Sum(Sum {
                data_points: vec![number(number_data_point::Value::AsInt(8))],
                aggregation_temporality: cumulative,
                is_monotonic: true,
            })),
            ..Default::default()
        },
        Metric {
            name: "lab_smoke.temperature".into(),
            unit: "Cel".into(),
            data: Some(metric::Data::Gauge(Gauge {
                data_points: vec![number(number_data_point::Value::AsDouble(21.5))],
            })),
            ..Default::default()
        },
        Metric {
            name: "lab_smoke.latency".into(),
            unit: "ms".into(),
            data: Some(metric::Data::Histogram(Histogram {
                data_points: vec![HistogramDataPoint {
                    attributes: attrs.clone(),
                    start_time_unix_nano: start,
                    time_unix_nano: now,
                    count: 4,
                    sum: Some(823.0),
                    // buckets (-inf,5] (5,50] (50,100] (100,1000] (1000,+inf)
                    explicit_bounds: vec![5.0, 50.0, 100.0, 1000.0],
                    bucket_counts: vec![1, 1, 1, 1, 0],
                    min: Some(3.0),
                    max: Some(700.0),
                    ..Default::default()
                }],
                aggregation_temporality: cumulative,
            })),
            ..Default::default()
        },
    ];
    ExportMetricsServiceRequest {
        resource_metrics: vec![ResourceMetrics {
            resource: Some(Resource {
                attributes: vec![kv("service.name", "lab-smoke")],
                ..Default::default()
            }),
            scope_metrics: vec![ScopeMetrics {
                scope: Some(InstrumentationScope {
                    name: "lab_smoke".into(),
                    version: "0.1".into(),
                    ..Default::default()
                }),
                metrics,
                ..Default::default()
            }],
            ..Default::default()
        }],
    }
}

#[test]
fn otlp_request_reaches_victoriametrics_via_rotel_and_prometheus_via_vmagent() {
    let Some(mut lab) = e2e_lab() else { return };
    let run = run_id("o");
    let body = otlp_request(&run).encode_to_vec();

    // rotel's OTLP/HTTP receiver -> rotel -> OTLP/HTTP -> VictoriaMetrics (default ROTEL_TARGET)
    assert_eq!(lab.var("ROTEL_TARGET"), Some("vm"), "this test reads rotel's output from VM");
    post_otlp_protobuf(&lab.rotel_otlp_http_url(), body.clone()).expect("rotel accepts OTLP/HTTP");
    // vmagent-prom (Prometheus naming) -> remote write -> Prometheus
    post_otlp_protobuf(&lab.prometheus_otlp_url(), body).expect("vmagent-prom accepts OTLP/HTTP");

    let vm = lab.vm();
    let prom = lab.prometheus();
    let check = |who: &str, client: &PromClient, q: String, want: f64| {
        poll_eq(INGEST_TIMEOUT, POLL_INTERVAL, Some(want), || client.query_value(&q))
            .unwrap_or_else(|e| panic!("{who} {q}: {e}"));
        println!("{who} {q} = {want}");
    };
    // VictoriaMetrics keeps the OTel names (dots) and adds resource attributes as labels
    let sel = format!(r#"run="{run}",route="/a""#);
    check(
        "VM",
        &vm,
        format!(r#"{{__name__="lab_smoke.requests",{sel},service.name="lab-smoke"}}"#),
        8.0,
    );
    check("VM", &vm, format!(r#"{{__name__="lab_smoke.temperature",{sel}}}"#), 21.5);
    check("VM", &vm, format!(r#"{{__name__="lab_smoke.latency_count",{sel}}}"#), 4.0);
    check("VM", &vm, format!(r#"{{__name__="lab_smoke.latency_sum",{sel}}}"#), 823.0);
    check("VM", &vm, format!(r#"{{__name__="lab_smoke.latency_bucket",{sel},le="+Inf"}}"#), 4.0);
    // Prometheus naming: _total for monotonic sums, unit suffixes, dots to underscores
    check(
        "Prometheus",
        &prom,
        format!(r#"lab_smoke_requests_total{{{sel},service_name="lab-smoke"}}"#),
        8.0,
    );
    check("Prometheus", &prom, format!(r#"lab_smoke_temperature_celsius{{{sel}}}"#), 21.5);
    check("Prometheus", &prom, format!(r#"lab_smoke_latency_milliseconds_count{{{sel}}}"#), 4.0);
    check("Prometheus", &prom, format!(r#"lab_smoke_latency_milliseconds_sum{{{sel}}}"#), 823.0);

    // histogram_quantile over the explicit buckets agrees on both stores: the 0.9 rank (3.6 of 4)
    // lies in the (100, 1000] bucket, linearly interpolated: 100 + 900 * 0.6 = 640
    let q90 = |client: &PromClient, buckets: String| {
        let q = format!("histogram_quantile(0.9, sum by (le) ({buckets}))");
        poll_until(INGEST_TIMEOUT, POLL_INTERVAL, || match client.query_value(&q) {
            Ok(Some(v)) if v.is_finite() => Ok(v),
            other => Err(format!("{other:?}")),
        })
        .unwrap_or_else(|e| panic!("{q}: {e}"))
    };
    let vm_q90 = q90(&vm, format!(r#"{{__name__="lab_smoke.latency_bucket",{sel}}}"#));
    let prom_q90 = q90(&prom, format!("lab_smoke_latency_milliseconds_bucket{{{sel}}}"));
    println!("histogram_quantile(0.9): VM {vm_q90}, Prometheus {prom_q90}");
    assert!((vm_q90 - 640.0).abs() < 1e-9, "VM q90 {vm_q90}");
    assert!((prom_q90 - 640.0).abs() < 1e-9, "Prometheus q90 {prom_q90}");

    // rotel's gRPC port is open too (the SDK e2e tests export to it)
    let grpc = lab.rotel_grpc_endpoint();
    let addr = grpc.trim_start_matches("http://");
    std::net::TcpStream::connect_timeout(&addr.parse().unwrap(), Duration::from_secs(2))
        .unwrap_or_else(|e| panic!("rotel gRPC {grpc}: {e}"));

    lab.stop().expect("lab stops cleanly");
}
