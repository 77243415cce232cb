//! End-to-end against the real lab (`scripts/lab/up.sh`), gated by `DUALMETRICS_E2E=1`
//! (unset: prints "skipped: set DUALMETRICS_E2E=1" and passes; set: a lab or assertion failure
//! fails the test).
//!
//! - `differential_tee_vs_otlp`: the same packets go to the shim; the tee feeds the reference
//!   statsd daemon (→ Graphite plaintext → VictoriaMetrics), the translation goes OTLP/HTTP →
//!   VictoriaMetrics. Counter totals, gauge values and timer counts/sums must be equal.
//! - `delta_sdk_through_shim_lands_and_direct_delta_is_dropped`: a delta Sum sent straight to
//!   VictoriaMetrics is dropped (HTTP 200, nothing stored); the same deltas through the shim's
//!   OTLP input arrive as a cumulative total, in VictoriaMetrics and in Prometheus.
//! - `zero_injection_gives_increase_on_prometheus`: a counter that appears once has a non-zero
//!   `increase()` on Prometheus.
use dualmetrics_model::naming_map::{
    histogram_series, otel_series_base, prometheus_name, GraphiteNaming, HistogramPart,
};
use dualmetrics_model::MetricKind;
use dualmetrics_shim::config::Protocol;
use dualmetrics_shim::{Shim, ShimConfig};
use dualmetrics_testkit::lab::{
    e2e_lab, poll_eq, post_otlp_protobuf, Lab, INGEST_TIMEOUT, POLL_INTERVAL,
};
use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest;
use opentelemetry_proto::tonic::common::v1::{any_value, AnyValue, KeyValue};
use opentelemetry_proto::tonic::metrics::v1::{
    metric, number_data_point, Metric, NumberDataPoint, ResourceMetrics, ScopeMetrics, Sum,
};
use prost::Message;
use std::net::UdpSocket;
use std::time::{SystemTime, UNIX_EPOCH};

fn run_id() -> String {
    format!("r{}", SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_millis() % 100_000_000)
}

fn vm_prom_naming(lab: &Lab) -> bool {
    lab.var("VM_PROM_NAMING") == Some("1")
}

fn shim_to(lab: &Lab, url: String) -> ShimConfig {
    let mut c = ShimConfig::loopback();
    c.aggregate.flush_interval_ms = 500;
    c.export.protocol = Protocol::Http;
    c.export.endpoint = url;
    c.export.self_telemetry = false;
    c.tee.target = Some(lab.statsd_addr().to_string());
    c
}

#[test]
fn differential_tee_vs_otlp() {
    let Some(lab) = e2e_lab() else { return };
    let id = run_id();
    let (k, g, t) =
        (format!("shim.{id}.hits"), format!("shim.{id}.depth"), format!("shim.{id}.latency"));
    let shim = Shim::bind(shim_to(&lab, lab.vm_otlp_url())).unwrap();
    let addr = shim.udp_addr().unwrap();
    let shim = shim.spawn();
    let s = UdpSocket::bind("127.0.0.1:0").unwrap();
    for p in [
        format!("{k}:5|c\n{k}:3|c"),
        format!("{k}:2|c|@0.5\n{g}:42|g"),
        format!("{g}:+8|g\n{g}:-3|g"),
        format!("{t}:100|ms\n{t}:250|ms\n{t}:40|ms"),
    ] {
        s.send_to(p.as_bytes(), addr).unwrap();
    }
    let vm = lab.vm();
    let graphite = GraphiteNaming::default();
    let q = |name: &str, f: &str| format!(r#"sum({f}({{__name__="{name}"}}[10m]))"#);
    // legacy side: tee → statsd → Graphite → VM
    poll_eq(INGEST_TIMEOUT, POLL_INTERVAL, Some(12.0), || {
        vm.query_value(&q(&graphite.counter_count(&k), "sum_over_time"))
    })
    .unwrap();
    poll_eq(INGEST_TIMEOUT, POLL_INTERVAL, Some(47.0), || {
        vm.query_value(&q(&graphite.gauge(&g), "last_over_time"))
    })
    .unwrap();
    poll_eq(INGEST_TIMEOUT, POLL_INTERVAL, Some(3.0), || {
        vm.query_value(&q(&graphite.timer(&t, "count"), "sum_over_time"))
    })
    .unwrap();
    poll_eq(INGEST_TIMEOUT, POLL_INTERVAL, Some(390.0), || {
        vm.query_value(&q(&graphite.timer(&t, "sum"), "sum_over_time"))
    })
    .unwrap();
    // new side: shim → OTLP → VM, the same numbers. (Timers are unsampled here on purpose: with
    // `@rate` the daemon weights the count but not the sum; the shim weights both.)
    let prom = vm_prom_naming(&lab);
    let kc = otel_series_base(&k, "", MetricKind::Counter, prom);
    let gg = otel_series_base(&g, "", MetricKind::Gauge, prom);
    let th = otel_series_base(&t, "ms", MetricKind::Histogram, prom);
    poll_eq(INGEST_TIMEOUT, POLL_INTERVAL, Some(12.0), || {
        vm.query_value(&q(&kc, "last_over_time"))
    })
    .unwrap();
    poll_eq(INGEST_TIMEOUT, POLL_INTERVAL, Some(47.0), || {
        vm.query_value(&q(&gg, "last_over_time"))
    })
    .unwrap();
    poll_eq(INGEST_TIMEOUT, POLL_INTERVAL, Some(3.0), || {
        vm.query_value(&q(&histogram_series(&th, HistogramPart::Count), "last_over_time"))
    })
    .unwrap();
    poll_eq(INGEST_TIMEOUT, POLL_INTERVAL, Some(390.0), || {
        vm.query_value(&q(&histogram_series(&th, HistogramPart::Sum), "last_over_time"))
    })
    .unwrap();
    shim.shutdown().unwrap();
}

fn delta_request(name: &str, v: i64, start: u64, time: u64) -> ExportMetricsServiceRequest {
    let kv = |k: &str, v: &str| KeyValue {
        key: k.into(),
        value: Some(AnyValue { value: Some(any_value::Value::StringValue(v.into())) }),
        ..Default::default()
    };
    ExportMetricsServiceRequest {
        resource_metrics: vec![ResourceMetrics {
            resource: Some(opentelemetry_proto::tonic::resource::v1::Resource {
                attributes: vec![kv("service.name", "e2e-delta")],
                ..Default::default()
            }),
            scope_metrics: vec![ScopeMetrics {
                metrics: vec![Metric {
                    name: name.into(),
                    data: Some(metric::Data::Sum(Sum {
                        data_points: vec![NumberDataPoint {
                            start_time_unix_nano: start,
                            time_unix_nano: time,
                            value: Some(number_data_point::Value::AsInt(v)),
                            ..Default::default()
                        }],
                        aggregation_temporality: 1,
                        is_monotonic: true,
                    })),
                    ..Default::default()
                }],
                ..Default::default()
            }],
            ..Default::default()
        }],
    }
}

#[test]
fn delta_sdk_through_shim_lands_and_direct_delta_is_dropped() {
    use opentelemetry_proto::tonic::collector::metrics::v1::metrics_service_client::MetricsServiceClient;
    let Some(lab) = e2e_lab() else { return };
    let id = run_id();
    let direct = format!("direct.{id}.requests");
    let via = format!("via.{id}.requests");
    let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_nanos() as u64;
    // direct: accepted (200) and dropped
    post_otlp_protobuf(
        &lab.vm_otlp_url(),
        delta_request(&direct, 5, now - 2_000_000_000, now - 1_000_000_000).encode_to_vec(),
    )
    .unwrap();
    for (url, store) in
        [(lab.vm_otlp_url(), lab.vm()), (lab.prometheus_otlp_url(), lab.prometheus())]
    {
        let mut cfg = shim_to(&lab, url);
        cfg.tee.target = None;
        cfg.otlp_in.listen = Some("127.0.0.1:0".into());
        let shim = Shim::bind(cfg).unwrap();
        let otlp_in = shim.otlp_in_addr().unwrap();
        let shim = shim.spawn();
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        rt.block_on(async {
            let mut c = MetricsServiceClient::connect(format!("http://{otlp_in}")).await.unwrap();
            c.export(delta_request(&via, 5, now - 2_000_000_000, now - 1_000_000_000))
                .await
                .unwrap();
            c.export(delta_request(&via, 3, now - 1_000_000_000, now)).await.unwrap();
        });
        let prom_store = store.base_url() == lab.prometheus().base_url();
        let name =
            otel_series_base(&via, "", MetricKind::Counter, prom_store || vm_prom_naming(&lab));
        poll_eq(INGEST_TIMEOUT, POLL_INTERVAL, Some(8.0), || {
            store.query_value(&format!(r#"max(last_over_time({{__name__="{name}"}}[10m]))"#))
        })
        .unwrap();
        shim.shutdown().unwrap();
    }
    let name = otel_series_base(&direct, "", MetricKind::Counter, vm_prom_naming(&lab));
    assert_eq!(
        lab.vm()
            .query_value(&format!(r#"count(last_over_time({{__name__="{name}"}}[10m]))"#))
            .unwrap(),
        None
    );
}

#[test]
fn zero_injection_gives_increase_on_prometheus() {
    let Some(lab) = e2e_lab() else { return };
    let k = format!("once.{}.hits", run_id());
    let mut cfg = shim_to(&lab, lab.prometheus_otlp_url());
    cfg.tee.target = None;
    let shim = Shim::bind(cfg).unwrap();
    let addr = shim.udp_addr().unwrap();
    let shim = shim.spawn();
    UdpSocket::bind("127.0.0.1:0").unwrap().send_to(format!("{k}:5|c").as_bytes(), addr).unwrap();
    let name = prometheus_name(&k, "", MetricKind::Counter);
    let prom = lab.prometheus();
    let q = format!("sum(increase({name}[5m]))");
    // without the zero point Prometheus would take the first sample (5) as the baseline: 0
    dualmetrics_testkit::lab::poll_until(INGEST_TIMEOUT, POLL_INTERVAL, || {
        match prom.query_value(&q) {
            Ok(Some(v)) if v >= 4.99 => Ok(v),
            other => Err(format!("{other:?}")),
        }
    })
    .unwrap_or_else(|e| panic!("increase() never saw the first increment: {e}"));
    shim.shutdown().unwrap();
}

/// `GET path` on the shim's admin endpoint: (status line, body).
fn http_get(addr: std::net::SocketAddr, path: &str) -> (String, String) {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(std::time::Duration::from_secs(10))).unwrap();
    write!(s, "GET {path} HTTP/1.1\r\nHost: shim\r\nConnection: close\r\n\r\n").unwrap();
    let mut text = String::new();
    s.read_to_string(&mut text).unwrap();
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    (head.lines().next().unwrap_or_default().to_owned(), body.to_owned())
}

/// One sample of `/metrics` (`name` with its labels as printed, e.g. `x_total{reason="a"}`).
fn sample(metrics: &str, series: &str) -> Option<f64> {
    metrics.lines().find_map(|l| l.strip_prefix(series)?.strip_prefix(' ')?.trim().parse().ok())
}

/// The shim put in front of the reference daemon with only the legacy address set (its tee):
/// every line the daemon would have had still reaches it (its totals equal the lines sent), a
/// key with a space is stored under the daemon's own spelling on both sides, and the admin
/// endpoint's counters match what was sent, bad lines by reason included.
#[test]
fn the_shim_in_front_of_the_daemon_keeps_every_line_and_its_admin_endpoint_counts_them() {
    let Some(lab) = e2e_lab() else { return };
    let id = run_id();
    let hits = format!("dropin.{id}.hits");
    let spaced = format!("dropin.{id} spaced");
    let mut cfg = shim_to(&lab, lab.vm_otlp_url());
    cfg.admin.listen = Some("127.0.0.1:0".to_owned());
    let shim = Shim::bind(cfg).unwrap();
    let (addr, admin) = (shim.udp_addr().unwrap(), shim.admin_addr().unwrap());
    let shim = shim.spawn();
    let s = UdpSocket::bind("127.0.0.1:0").unwrap();
    let mut packets = 0;
    for _ in 0..20 {
        let p: Vec<String> = (0..10).map(|_| format!("{hits}:1|c")).collect();
        s.send_to(p.join("\n").as_bytes(), addr).unwrap();
        packets += 1;
    }
    for p in
        [format!("{spaced}:4|c"), "nocolon".to_owned(), format!("{hits}:abc|c"), "é:1|c".into()]
    {
        s.send_to(p.as_bytes(), addr).unwrap();
        packets += 1;
    }
    let vm = lab.vm();
    let graphite = GraphiteNaming::default();
    let q = |name: &str, f: &str| format!(r#"sum({f}({{__name__="{name}"}}[10m]))"#);
    // the daemon got every good line: 200 hits, and the spaced key under its sanitised name
    poll_eq(INGEST_TIMEOUT, POLL_INTERVAL, Some(200.0), || {
        vm.query_value(&q(&graphite.counter_count(&hits), "sum_over_time"))
    })
    .unwrap();
    let clean = dualmetrics_model::naming_map::graphite_sanitize(&spaced);
    assert_eq!(clean, format!("dropin.{id}_spaced"));
    poll_eq(INGEST_TIMEOUT, POLL_INTERVAL, Some(4.0), || {
        vm.query_value(&q(&graphite.counter_count(&clean), "sum_over_time"))
    })
    .unwrap();
    // the shim exports the same name
    let prom = vm_prom_naming(&lab);
    let otel = otel_series_base(&clean, "", MetricKind::Counter, prom);
    poll_eq(INGEST_TIMEOUT, POLL_INTERVAL, Some(4.0), || {
        vm.query_value(&q(&otel, "last_over_time"))
    })
    .unwrap();
    // the admin endpoint
    let (status, body) = http_get(admin, "/healthz");
    assert!(status.contains("200"), "{status}");
    assert_eq!(body, "ok\n");
    let (status, metrics) = http_get(admin, "/metrics");
    assert!(status.contains("200"), "{status}");
    assert_eq!(sample(&metrics, "dualmetrics_shim_lines_total"), Some(201.0), "{metrics}");
    assert_eq!(
        sample(&metrics, "dualmetrics_shim_packets_total{transport=\"udp\"}"),
        Some(packets as f64)
    );
    assert_eq!(sample(&metrics, "dualmetrics_shim_tee_packets_total"), Some(packets as f64));
    assert_eq!(sample(&metrics, "dualmetrics_shim_tee_errors_total"), Some(0.0));
    for (reason, n) in [("malformed", 1.0), ("bad_value", 1.0), ("invalid_name", 1.0)] {
        let series = format!("dualmetrics_shim_bad_lines_total{{reason=\"{reason}\"}}");
        assert_eq!(sample(&metrics, &series), Some(n), "{reason}: {metrics}");
    }
    let (status, _) = http_get(admin, "/nothing");
    assert!(status.contains("404"), "{status}");
    shim.shutdown().unwrap();
}
