//! The shim over real sockets: StatsD in over UDP/TCP/Unix, raw tee to a real `StatsdReceiver`,
//! OTLP out to a real tonic `OtlpGrpcReceiver` (and HTTP), OTLP delta in over real gRPC.
//! No sleeping until ready: everything is bound before traffic, and every wait polls with a timeout.
use dualmetrics_shim::config::Temporality;
use dualmetrics_shim::{RunningShim, Shim, ShimConfig};
use dualmetrics_testkit::{
    latest, OtlpGrpcReceiver, OtlpHttpReceiver, Point, PointKind, PointValue, StatsdReceiver,
};
use std::net::UdpSocket;
use std::time::{Duration, Instant};

const WAIT: Duration = Duration::from_secs(15);

fn config(otlp_endpoint: &str) -> ShimConfig {
    let mut c = ShimConfig::loopback();
    c.export.endpoint = otlp_endpoint.to_owned();
    c.export.self_telemetry = true;
    c
}

fn send_udp(addr: std::net::SocketAddr, packets: &[&[u8]]) {
    let s = UdpSocket::bind("127.0.0.1:0").unwrap();
    for p in packets {
        s.send_to(p, addr).unwrap();
    }
}

/// Polls `cond` on the shim's telemetry until it holds.
fn wait_tel(
    shim: &RunningShim,
    what: &str,
    cond: impl Fn(&dualmetrics_shim::TelemetrySnapshot) -> bool,
) {
    let t0 = Instant::now();
    while !cond(&shim.telemetry().snapshot()) {
        assert!(
            t0.elapsed() < WAIT,
            "timed out waiting for {what}: {:#?}",
            shim.telemetry().snapshot()
        );
        std::thread::yield_now();
        std::thread::sleep(Duration::from_millis(5));
    }
}

fn value(p: &Point) -> f64 {
    p.as_f64().unwrap()
}

fn series<'a>(points: &'a [Point], metric: &str, attrs: &[(&str, &str)]) -> Vec<&'a Point> {
    points.iter().filter(|p| p.matches(metric, attrs)).collect()
}

#[test]
fn udp_counters_are_cumulative_with_zero_injection() {
    let otlp = OtlpGrpcReceiver::start();
    let shim = Shim::bind(config(&otlp.endpoint())).unwrap();
    let addr = shim.udp_addr().unwrap();
    let shim = shim.spawn();
    send_udp(
        addr,
        &[b"app.hits:5|c|#env:prod", b"app.hits:3|c|#env:prod\napp.hits:2|c|@0.5|#env:prod"],
    );
    let points = otlp.wait_for(WAIT, |p| {
        latest(p, "app.hits", &[("env", "prod")]).is_some_and(|p| p.as_f64() == Some(12.0))
    });
    let pts = series(&points, "app.hits", &[("env", "prod")]);
    // first export: 0 at the start time, then the total, both with the same start time
    assert_eq!(pts[0].kind, PointKind::Sum { monotonic: true });
    assert_eq!(pts[0].temporality, Some(dualmetrics_testkit::Temporality::Cumulative));
    assert_eq!(value(pts[0]), 0.0);
    assert_eq!(pts[0].time_unix_nano, pts[0].start_time_unix_nano);
    assert!(pts[0].start_time_unix_nano > 0);
    let total = pts.iter().find(|p| value(p) > 0.0).unwrap();
    assert_eq!(total.start_time_unix_nano, pts[0].start_time_unix_nano);
    assert!(total.time_unix_nano > total.start_time_unix_nano);
    assert_eq!(value(total), 12.0, "5 + 3 + 2/0.5");
    // later increments keep the start time and add up
    send_udp(addr, &[b"app.hits:1|c|#env:prod"]);
    let points = otlp.wait_for(WAIT, |p| {
        latest(p, "app.hits", &[("env", "prod")]).is_some_and(|p| p.as_f64() == Some(13.0))
    });
    let last = latest(&points, "app.hits", &[("env", "prod")]).unwrap();
    assert_eq!(last.start_time_unix_nano, pts[0].start_time_unix_nano);
    assert_eq!(
        series(&points, "app.hits", &[]).iter().filter(|p| value(p) == 0.0).count(),
        1,
        "one zero only"
    );
    shim.shutdown().unwrap();
}

#[test]
fn gauges_timers_and_sets_translate() {
    let otlp = OtlpGrpcReceiver::start();
    let mut cfg = config(&otlp.endpoint());
    cfg.aggregate.buckets = vec![10.0, 100.0];
    let shim = Shim::bind(cfg).unwrap();
    let addr = shim.udp_addr().unwrap();
    let shim = shim.spawn();
    send_udp(
        addr,
        &[
            b"q.depth:40|g\nq.depth:+8|g\nq.depth:-5|g",
            b"rq.time:5|ms\nrq.time:50|ms|@0.5\nrq.time:500|ms",
            b"users:alice|s\nusers:bob|s\nusers:alice|s",
        ],
    );
    let points = otlp.wait_for(WAIT, |p| {
        latest(p, "q.depth", &[]).is_some()
            && latest(p, "users", &[]).is_some()
            && latest(p, "rq.time", &[])
                .is_some_and(|p| matches!(p.value, PointValue::Histogram { count: 4, .. }))
    });
    let g = latest(&points, "q.depth", &[]).unwrap();
    assert_eq!((g.kind, value(g)), (PointKind::Gauge, 43.0));
    let s = latest(&points, "users", &[]).unwrap();
    assert_eq!((s.kind, value(s)), (PointKind::Gauge, 2.0));
    let h = latest(&points, "rq.time", &[]).unwrap();
    assert_eq!(h.unit, "ms");
    match &h.value {
        PointValue::Histogram { count, sum, bounds, bucket_counts, min, max } => {
            assert_eq!(*count, 4, "the @0.5 sample counts twice");
            assert_eq!(*sum, Some(605.0));
            assert_eq!(bounds, &[10.0, 100.0]);
            assert_eq!(bucket_counts, &[1, 2, 1]);
            assert_eq!((*min, *max), (Some(5.0), Some(500.0)));
        }
        other => panic!("not a histogram: {other:?}"),
    }
    // zero injection for histograms too
    let first = series(&points, "rq.time", &[])[0];
    assert!(matches!(first.value, PointValue::Histogram { count: 0, .. }));
    shim.shutdown().unwrap();
}

#[test]
fn tee_forwards_byte_identical_datagrams() {
    let legacy = StatsdReceiver::bind_udp();
    let mut cfg = config("");
    cfg.tee.target = Some(legacy.local_addr().to_string());
    let shim = Shim::bind(cfg).unwrap();
    let addr = shim.udp_addr().unwrap();
    let shim = shim.spawn();
    let packets: [&[u8]; 4] = [
        b"a.b:1|c|#k:v|@0.5",
        b"x:1|c\ny:2|g\n",
        b"bad line \xff\xfe not statsd",
        b"t:12.5|ms|@0.1|#a:b,c",
    ];
    send_udp(addr, &packets);
    let lines = legacy.wait_for_lines(5, WAIT);
    let expected: Vec<String> = packets
        .iter()
        .flat_map(|p| {
            String::from_utf8_lossy(p)
                .split('\n')
                .filter(|l| !l.is_empty())
                .map(str::to_owned)
                .collect::<Vec<_>>()
        })
        .collect();
    assert_eq!(lines, expected);
    let _ = legacy.quiet(Duration::from_millis(100));
    assert_eq!(legacy.datagrams(), 4, "one datagram out per datagram in");
    assert_eq!(
        legacy.bytes(),
        packets.iter().map(|p| p.len() as u64).sum::<u64>(),
        "byte for byte"
    );
    let report = shim.shutdown().unwrap();
    assert_eq!(report.tee_packets, 4);
    assert_eq!(report.bad("malformed") + report.bad("non_utf8"), 1);
}

#[test]
fn tcp_and_unix_ingest() {
    use std::io::Write;
    let otlp = OtlpGrpcReceiver::start();
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = config(&otlp.endpoint());
    cfg.ingest.tcp = Some("127.0.0.1:0".into());
    cfg.ingest.unix = Some(dir.path().join("statsd.sock"));
    let shim = Shim::bind(cfg).unwrap();
    let (tcp, unix) = (shim.tcp_addr().unwrap(), shim.unix_path().unwrap().to_owned());
    let shim = shim.spawn();
    let mut stream = std::net::TcpStream::connect(tcp).unwrap();
    // a line split across writes is reassembled
    stream.write_all(b"via.tcp:2|c\nvia.t").unwrap();
    stream.flush().unwrap();
    stream.write_all(b"cp:3|c\n").unwrap();
    drop(stream);
    let u = std::os::unix::net::UnixDatagram::unbound().unwrap();
    u.send_to(b"via.unix:7|c", &unix).unwrap();
    let points = otlp.wait_for(WAIT, |p| {
        latest(p, "via.tcp", &[]).is_some_and(|p| p.as_f64() == Some(5.0))
            && latest(p, "via.unix", &[]).is_some_and(|p| p.as_f64() == Some(7.0))
    });
    assert!(latest(&points, "via.tcp", &[]).is_some());
    let report = shim.shutdown().unwrap();
    assert!(report.packets["tcp"] >= 1 && report.packets["unix"] == 1, "{report:?}");
    assert!(!unix.exists(), "the socket file is removed on shutdown");
}

#[test]
fn bad_lines_are_counted_by_reason_and_never_stop_the_shim() {
    let otlp = OtlpGrpcReceiver::start();
    let mut cfg = config(&otlp.endpoint());
    cfg.ingest.max_tags = 4;
    cfg.ingest.max_packet_size = 1024;
    let shim = Shim::bind(cfg).unwrap();
    let addr = shim.udp_addr().unwrap();
    let shim = shim.spawn();
    let big = vec![b'x'; 2000];
    send_udp(
        addr,
        &[
            b"nocolon|c\nk:1|zz\nk:abc|c\nk:1|c|@7\nk:1|c|#a,b,c,d,e\n\xff\xfe:1|c\n_e{1,1}:a|b\nk:-1|c\n9bad:1|c",
            &big,
            b"ok.after:1|c",
        ],
    );
    wait_tel(&shim, "bad lines", |s| s.lines == 1 && s.bad_lines.values().sum::<u64>() == 9);
    let s = shim.telemetry().snapshot();
    for reason in [
        "malformed",
        "unknown_type",
        "bad_value",
        "bad_sample_rate",
        "too_many_tags",
        "non_utf8",
        "unsupported",
        "negative_counter",
        "invalid_name",
    ] {
        assert_eq!(s.bad(reason), 1, "{reason}: {s:#?}");
    }
    assert_eq!(s.dropped("oversized_packet"), 1);
    // the counters are exported as the shim's own metrics
    let points = otlp.wait_for(WAIT, |p| {
        latest(p, "dualmetrics.shim.bad_lines", &[("reason", "unknown_type")])
            .is_some_and(|p| p.as_f64() == Some(1.0))
    });
    assert!(latest(&points, "ok.after", &[]).is_some());
    shim.shutdown().unwrap();
}

#[test]
fn overflow_series_past_the_cardinality_cap() {
    let otlp = OtlpGrpcReceiver::start();
    let mut cfg = config(&otlp.endpoint());
    cfg.aggregate.max_series_per_metric = 3;
    let shim = Shim::bind(cfg).unwrap();
    let addr = shim.udp_addr().unwrap();
    let shim = shim.spawn();
    let lines: Vec<String> = (0..10).map(|i| format!("per.user:1|c|#user:u{i}")).collect();
    send_udp(addr, &[lines.join("\n").as_bytes()]);
    let points = otlp.wait_for(WAIT, |p| {
        latest(p, "per.user", &[("otel.metric.overflow", "true")])
            .is_some_and(|p| p.as_f64() == Some(7.0))
    });
    let users: std::collections::BTreeSet<_> = series(&points, "per.user", &[])
        .iter()
        .filter_map(|p| p.attr("user").map(str::to_owned))
        .collect();
    assert_eq!(users.len(), 3);
    assert_eq!(shim.telemetry().snapshot().overflow_lines, 7);
    shim.shutdown().unwrap();
}

#[test]
fn shutdown_flushes_what_arrived() {
    let otlp = OtlpGrpcReceiver::start();
    let mut cfg = config(&otlp.endpoint());
    cfg.aggregate.flush_interval_ms = 3_600_000; // only the shutdown flush can export it
    let shim = Shim::bind(cfg).unwrap();
    let addr = shim.udp_addr().unwrap();
    let shim = shim.spawn();
    send_udp(addr, &[b"last.words:4|c"]);
    wait_tel(&shim, "the line", |s| s.lines == 1);
    let report = shim.shutdown().unwrap();
    assert_eq!(report.exports, 1);
    let p = latest(&otlp.points(), "last.words", &[]).cloned().unwrap();
    assert_eq!(p.as_f64(), Some(4.0));
}

#[test]
fn delta_temporality_is_optional() {
    let otlp = OtlpGrpcReceiver::start();
    let mut cfg = config(&otlp.endpoint());
    cfg.aggregate.temporality = Temporality::Delta;
    let shim = Shim::bind(cfg).unwrap();
    let addr = shim.udp_addr().unwrap();
    let shim = shim.spawn();
    send_udp(addr, &[b"d.hits:2|c"]);
    let points = otlp.wait_for(WAIT, |p| latest(p, "d.hits", &[]).is_some());
    let p = latest(&points, "d.hits", &[]).unwrap();
    assert_eq!((p.temporality, value(p)), (Some(dualmetrics_testkit::Temporality::Delta), 2.0));
    assert_eq!(series(&points, "d.hits", &[]).len(), 1, "no zero point in delta");
    shim.shutdown().unwrap();
}

#[test]
fn http_protobuf_export() {
    let otlp = OtlpHttpReceiver::start();
    let mut cfg = config(&otlp.endpoint());
    cfg.export.protocol = dualmetrics_shim::config::Protocol::Http;
    let shim = Shim::bind(cfg).unwrap();
    let addr = shim.udp_addr().unwrap();
    let shim = shim.spawn();
    send_udp(addr, &[b"h.hits:9|c"]);
    otlp.wait_for(WAIT, |p| latest(p, "h.hits", &[]).is_some_and(|p| p.as_f64() == Some(9.0)));
    shim.shutdown().unwrap();
}

#[test]
fn export_retries_until_the_backend_recovers() {
    let otlp = OtlpGrpcReceiver::start();
    otlp.set_failing(true);
    let mut cfg = config(&otlp.endpoint());
    cfg.export.retry_backoff_ms = 20;
    cfg.export.max_retries = 50;
    let shim = Shim::bind(cfg).unwrap();
    let addr = shim.udp_addr().unwrap();
    let shim = shim.spawn();
    send_udp(addr, &[b"r.hits:1|c"]);
    wait_tel(&shim, "failed attempts", |s| s.export_errors >= 2);
    otlp.set_failing(false);
    otlp.wait_for(WAIT, |p| latest(p, "r.hits", &[]).is_some_and(|p| p.as_f64() == Some(1.0)));
    shim.shutdown().unwrap();
}

#[test]
fn otlp_delta_in_becomes_cumulative_out() {
    use dualmetrics_testkit::ExportMetricsServiceRequest;
    use opentelemetry_proto::tonic::collector::metrics::v1::metrics_service_client::MetricsServiceClient;
    use opentelemetry_proto::tonic::common::v1::{any_value, AnyValue, KeyValue};
    use opentelemetry_proto::tonic::metrics::v1::{
        metric, number_data_point, Metric, NumberDataPoint, ResourceMetrics, ScopeMetrics, Sum,
    };
    use opentelemetry_proto::tonic::resource::v1::Resource;

    let otlp = OtlpGrpcReceiver::start();
    let mut cfg = config(&otlp.endpoint());
    cfg.otlp_in.listen = Some("127.0.0.1:0".into());
    let shim = Shim::bind(cfg).unwrap();
    let otlp_in = shim.otlp_in_addr().unwrap();
    let shim = shim.spawn();
    let kv = |k: &str, v: &str| KeyValue {
        key: k.into(),
        value: Some(AnyValue { value: Some(any_value::Value::StringValue(v.into())) }),
        ..Default::default()
    };
    let req = |v: i64, start: u64, time: u64| ExportMetricsServiceRequest {
        resource_metrics: vec![ResourceMetrics {
            resource: Some(Resource {
                attributes: vec![kv("service.name", "deltasvc")],
                ..Default::default()
            }),
            scope_metrics: vec![ScopeMetrics {
                metrics: vec![Metric {
                    name: "sdk.requests".into(),
                    data: Some(metric::Data::Sum(Sum {
                        data_points: vec![NumberDataPoint {
                            attributes: vec![kv("route", "/a")],
                            start_time_unix_nano: start,
                            time_unix_nano: time,
                            value: Some(number_data_point::Value::AsInt(v)),
                            ..Default::default()
                        }],
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
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    rt.block_on(async {
        let mut client = MetricsServiceClient::connect(format!("http://{otlp_in}")).await.unwrap();
        client.export(req(5, 1_000, 2_000)).await.unwrap();
        client.export(req(3, 2_000, 3_000)).await.unwrap();
    });
    let points = otlp.wait_for(WAIT, |p| {
        latest(p, "sdk.requests", &[("route", "/a")]).is_some_and(|p| p.as_f64() == Some(8.0))
    });
    let p = latest(&points, "sdk.requests", &[("route", "/a")]).unwrap();
    assert_eq!(p.temporality, Some(dualmetrics_testkit::Temporality::Cumulative));
    assert_eq!(p.start_time_unix_nano, 1_000);
    assert_eq!(p.resource["service.name"], "deltasvc");
    assert_eq!(shim.telemetry().snapshot().otlp_in_series, 1);
    shim.shutdown().unwrap();
}

#[test]
fn udp_datagrams_read_as_one_batch_keep_their_line_boundaries() {
    // Everything is sent before the shim runs, so the socket holds it all and the UDP thread
    // reads it in full batches (up to UDP_BATCH_DATAGRAMS datagrams joined into one queue item).
    let otlp = OtlpGrpcReceiver::start();
    let mut cfg = config(&otlp.endpoint());
    cfg.ingest.max_packet_size = 100;
    let shim = Shim::bind(cfg).unwrap();
    let addr = shim.udp_addr().unwrap();
    let oversized = format!("b.hits:1000|c|#pad:{}", "x".repeat(120));
    let mut packets: Vec<Vec<u8>> = Vec::new();
    for i in 0..1000 {
        // no trailing newline, a trailing newline, and two lines in one datagram
        packets.push(match i % 3 {
            0 => b"b.hits:1|c".to_vec(),
            1 => b"b.hits:1|c\n".to_vec(),
            _ => b"b.hits:1|c\nb.gauge:7|g".to_vec(),
        });
        if i == 500 {
            packets.push(oversized.clone().into_bytes());
        }
    }
    let refs: Vec<&[u8]> = packets.iter().map(Vec::as_slice).collect();
    send_udp(addr, &refs);
    let shim = shim.spawn();
    let two_line = (0..1000).filter(|i| i % 3 == 2).count() as u64;
    wait_tel(&shim, "every line and the oversized drop", |t| {
        t.lines == 1000 + two_line && t.dropped("oversized_packet") == 1
    });
    let t = shim.telemetry().snapshot();
    assert_eq!(t.packets["udp"], 1001);
    assert_eq!(t.bad_lines.values().sum::<u64>(), 0, "a join never merges two lines: {t:#?}");
    assert_eq!(t.dropped("queue_full"), 0);
    otlp.wait_for(WAIT, |p| latest(p, "b.hits", &[]).is_some_and(|p| p.as_f64() == Some(1000.0)));
    shim.shutdown().unwrap();
}
