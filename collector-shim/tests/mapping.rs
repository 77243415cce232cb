//! The shim with a mapping file (`[mapping] file`, `--mapping`), over real sockets: StatsD in
//! over UDP, OTLP out to a real tonic receiver; and against the real lab (gated by
//! `DUALMETRICS_E2E=1`): the mapped names and labels are what VictoriaMetrics and Prometheus
//! store, with the exact values sent.
use dualmetrics_model::naming_map::{histogram_series, otel_series_base, HistogramPart};
use dualmetrics_model::MetricKind;
use dualmetrics_shim::config::Protocol;
use dualmetrics_shim::{BuildError, RunningShim, Shim, ShimConfig, TelemetrySnapshot};
use dualmetrics_testkit::lab::{e2e_lab, poll_eq, INGEST_TIMEOUT, POLL_INTERVAL};
use dualmetrics_testkit::{latest, OtlpGrpcReceiver, PointValue};
use std::net::UdpSocket;
use std::path::Path;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

const WAIT: Duration = Duration::from_secs(15);

const RULES: &str = r#"
mappings:
- match: checkout.*.*.requests
  name: checkout_requests
  labels:
    env: "$1"
    host: "$2"
- match: checkout.*.*.latency
  match_metric_type: observer
  name: checkout_latency
  buckets: [0.01, 0.1]
  labels:
    env: "$1"
    host: "$2"
- match: debug.*
  action: drop
"#;

fn config(otlp: &str, mapping: &Path) -> ShimConfig {
    let mut c = ShimConfig::loopback();
    c.export.endpoint = otlp.to_owned();
    c.export.self_telemetry = false;
    c.mapping.file = Some(mapping.to_owned());
    c.mapping.poll_interval_ms = 50;
    c
}

fn send(addr: std::net::SocketAddr, packets: &[&str]) {
    let s = UdpSocket::bind("127.0.0.1:0").unwrap();
    for p in packets {
        s.send_to(p.as_bytes(), addr).unwrap();
    }
}

fn wait_tel(shim: &RunningShim, what: &str, cond: impl Fn(&TelemetrySnapshot) -> bool) {
    let t0 = Instant::now();
    while !cond(&shim.telemetry().snapshot()) {
        assert!(
            t0.elapsed() < WAIT,
            "timed out waiting for {what}: {:#?}",
            shim.telemetry().snapshot()
        );
        std::thread::sleep(Duration::from_millis(5));
    }
}

#[test]
fn mapped_keys_arrive_in_otlp_under_the_mapped_name_and_labels() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("m.yml");
    std::fs::write(&file, RULES).unwrap();
    let otlp = OtlpGrpcReceiver::start();
    let shim = Shim::bind(config(&otlp.endpoint(), &file)).unwrap();
    let addr = shim.udp_addr().unwrap();
    let shim = shim.spawn();
    send(
        addr,
        &[
            "checkout.prod.web-1.requests:3|c|#team:core\ncheckout.prod.web-1.requests:5|c|#team:core",
            "checkout.prod.web-2.requests:1|c|#host:ignored",
            "checkout.prod.web-1.latency:5|ms\ncheckout.prod.web-1.latency:50|ms\ncheckout.prod.web-1.latency:500|ms",
            "debug.x:1|c\ndebug.y:2|g",
            "plain.key:7|c",
        ],
    );
    let points = otlp.wait_for(WAIT, |p| {
        latest(p, "checkout_requests", &[("env", "prod"), ("host", "web-1"), ("team", "core")])
            .is_some_and(|p| p.as_f64() == Some(8.0))
            && latest(p, "checkout_requests", &[("host", "web-2")])
                .is_some_and(|p| p.as_f64() == Some(1.0))
            && latest(p, "plain.key", &[]).is_some_and(|p| p.as_f64() == Some(7.0))
            && latest(p, "checkout_latency", &[("env", "prod"), ("host", "web-1")])
                .is_some_and(|p| matches!(p.value, PointValue::Histogram { count: 3, .. }))
    });
    let h = latest(&points, "checkout_latency", &[("host", "web-1")]).unwrap();
    assert_eq!(h.unit, "ms", "a mapped timer keeps its unit");
    match &h.value {
        PointValue::Histogram { bounds, bucket_counts, sum, .. } => {
            assert_eq!(bounds, &[10.0, 100.0], "the rule's buckets (seconds) in ms");
            assert_eq!(bucket_counts, &[1, 1, 1]);
            assert_eq!(*sum, Some(555.0));
        }
        other => panic!("not a histogram: {other:?}"),
    }
    // the mapped label wins over the DogStatsD tag of the same key
    assert!(latest(&points, "checkout_requests", &[("host", "ignored")]).is_none());
    assert!(points
        .iter()
        .all(|p| !p.metric.starts_with("debug") && !p.metric.starts_with("checkout.")));
    wait_tel(&shim, "2 mapping drops", |s| s.dropped("mapping_drop") == 2);
    shim.shutdown().unwrap();
}

#[test]
fn a_changed_mapping_file_applies_while_running_and_a_bad_one_keeps_the_last_good() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("m.yml");
    std::fs::write(&file, RULES).unwrap();
    let otlp = OtlpGrpcReceiver::start();
    let shim = Shim::bind(config(&otlp.endpoint(), &file)).unwrap();
    let addr = shim.udp_addr().unwrap();
    let shim = shim.spawn();

    std::fs::write(
        &file,
        "mappings:\n- match: checkout.*.*.requests\n  name: orders\n  labels:\n    host: $2\n",
    )
    .unwrap();
    wait_tel(&shim, "one reload", |s| s.mapping_reloads == 1);
    send(addr, &["checkout.prod.web-9.requests:4|c"]);
    otlp.wait_for(WAIT, |p| {
        latest(p, "orders", &[("host", "web-9")]).is_some_and(|p| p.as_f64() == Some(4.0))
    });

    std::fs::write(
        &file,
        "mappings:\n- match: checkout.*.*.requests\n  name: orders\n  labels:\n    host: $3\n",
    )
    .unwrap();
    wait_tel(&shim, "one refused reload", |s| s.mapping_reload_errors == 1);
    send(addr, &["checkout.prod.web-9.requests:2|c"]);
    otlp.wait_for(WAIT, |p| {
        latest(p, "orders", &[("host", "web-9")]).is_some_and(|p| p.as_f64() == Some(6.0))
    });
    let s = shim.telemetry().snapshot();
    assert_eq!(
        (s.mapping_reloads, s.mapping_reload_errors),
        (1, 1),
        "the bad file is counted once"
    );
    shim.shutdown().unwrap();
}

#[test]
fn a_bad_mapping_file_at_startup_fails_naming_file_rule_key_and_value() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("bad-mapping.yml");
    std::fs::write(&file, "mappings:\n- match: 'a(('\n  match_type: regex\n  name: x\n").unwrap();
    let Err(err) = Shim::bind(config("", &file)) else { panic!("bind must fail") };
    assert!(matches!(err, BuildError::Mapping(_)));
    let msg = err.to_string();
    for needle in ["bad-mapping.yml", "mappings[0].match", "\"a((\"", "bad regex"] {
        assert!(msg.contains(needle), "{msg:?} lacks {needle:?}");
    }
}

fn run_id() -> String {
    format!("m{}", SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_millis() % 100_000_000)
}

/// Two shims with the same mapping (one exports to VictoriaMetrics' OTLP endpoint, one through
/// vmagent-prom to Prometheus) receive the same dotted keys; each store has the mapped name and
/// labels with the exact values sent.
#[test]
fn lab_mapped_names_and_labels_land_in_victoriametrics_and_prometheus() {
    let Some(lab) = e2e_lab() else { return };
    let id = run_id();
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("m.yml");
    std::fs::write(
        &file,
        format!(
            "mappings:\n- match: {id}.*.*.requests\n  name: {id}_requests\n  labels:\n    env: $1\n    host: $2\n- match: {id}.*.*.latency\n  name: {id}_latency\n  labels:\n    env: $1\n    host: $2\n"
        ),
    )
    .unwrap();
    let mut shims = Vec::new();
    let mut addrs = Vec::new();
    for url in [lab.vm_otlp_url(), lab.prometheus_otlp_url()] {
        let mut c = config(&url, &file);
        c.export.protocol = Protocol::Http;
        c.aggregate.flush_interval_ms = 500;
        let s = Shim::bind(c).unwrap();
        addrs.push(s.udp_addr().unwrap());
        shims.push(s.spawn());
    }
    let packets = [
        format!("{id}.prod.web-1.requests:5|c\n{id}.prod.web-1.requests:3|c\n{id}.prod.web-2.requests:2|c"),
        format!("{id}.prod.web-1.latency:100|ms\n{id}.prod.web-1.latency:250|ms"),
    ];
    for a in &addrs {
        send(*a, &packets.iter().map(String::as_str).collect::<Vec<_>>());
    }
    let vm_prom = lab.var("VM_PROM_NAMING") == Some("1");
    for (client, prom_naming) in [(lab.vm(), vm_prom), (lab.prometheus(), true)] {
        let c = otel_series_base(&format!("{id}_requests"), "", MetricKind::Counter, prom_naming);
        let h =
            otel_series_base(&format!("{id}_latency"), "ms", MetricKind::Histogram, prom_naming);
        for (host, want) in [("web-1", 8.0), ("web-2", 2.0)] {
            let q = format!(r#"last_over_time({c}{{env="prod",host="{host}"}}[10m])"#);
            poll_eq(INGEST_TIMEOUT, POLL_INTERVAL, Some(want), || client.query_value(&q)).unwrap();
        }
        let count = histogram_series(&h, HistogramPart::Count);
        let sum = histogram_series(&h, HistogramPart::Sum);
        let q = format!(r#"last_over_time({count}{{env="prod",host="web-1"}}[10m])"#);
        poll_eq(INGEST_TIMEOUT, POLL_INTERVAL, Some(2.0), || client.query_value(&q)).unwrap();
        let q = format!(r#"last_over_time({sum}{{env="prod",host="web-1"}}[10m])"#);
        poll_eq(INGEST_TIMEOUT, POLL_INTERVAL, Some(350.0), || client.query_value(&q)).unwrap();
    }
    for s in shims {
        s.shutdown().unwrap();
    }
}
