//! The StatsD pipeline over real sockets: exact lines for every kind, with tags, prefix and units.
use std::collections::BTreeSet;
use std::time::Duration;

use dualmetrics::{DualMetrics, Mode};
use dualmetrics_testkit::StatsdReceiver;

const WAIT: Duration = Duration::from_secs(10);

fn legacy(address: &str) -> DualMetrics {
    DualMetrics::builder()
        .ignore_env()
        // Exact line sets: no `dualmetrics.sdk.*` self-metrics.
        .with_setting("self_metrics", "false")
        .with_mode(Mode::Legacy)
        .with_service_name("checkout")
        .with_environment("test")
        .with_global_tag("region", "eu")
        .with_statsd_address(address)
        .with_statsd_prefix("svc")
        // Flushes are explicit in these tests.
        .with_statsd_flush_interval(Duration::from_secs(3600))
        .with_otlp_endpoint("http://127.0.0.1:9")
        .build()
        .expect("valid config")
}

const G: &str = "service:checkout,env:test,region:eu";

fn record_every_kind(metrics: &DualMetrics) {
    let requests = metrics.counter("http.requests").with_unit("1").build().unwrap();
    requests.add(2, &[("route", "/a")]);
    requests.add(3, &[("route", "/a")]);
    requests.increment(&[("route", "/b|c")]);
    let depth = metrics.up_down_counter("queue.depth").build().unwrap();
    depth.add(5, &[]);
    depth.add(-2, &[]);
    let temp = metrics.gauge("cpu.temp").with_unit("Cel").build().unwrap();
    temp.record(21.5, &[("core", "0")]);
    temp.record(22.25, &[("core", "0")]);
    let latency = metrics.histogram("http.latency").with_unit("s").build().unwrap();
    latency.record(0.25, &[("route", "/a")]);
    latency.record_duration(Duration::from_millis(12), &[("route", "/a")]);
    let size = metrics.histogram("payload.size").with_unit("By").build().unwrap();
    size.record(512.0, &[]);
}

fn expected_lines() -> BTreeSet<String> {
    [
        format!("svc.http.requests:5|c|#{G},route:/a"),
        format!("svc.http.requests:1|c|#{G},route:/b_c"),
        format!("svc.queue.depth:3|g|#{G}"),
        format!("svc.cpu.temp:22.25|g|#{G},core:0"),
        format!("svc.http.latency:250|ms|#{G},route:/a"),
        format!("svc.http.latency:12|ms|#{G},route:/a"),
        format!("svc.payload.size:512|h|#{G}"),
    ]
    .into_iter()
    .collect()
}

#[test]
fn udp_lines_for_every_kind_carry_prefix_tags_and_millisecond_timers() {
    let statsd = StatsdReceiver::bind_udp();
    let metrics = legacy(&statsd.local_addr().to_string());
    record_every_kind(&metrics);
    let _ = metrics.flush(); // the OTLP side has no collector here
    let lines: BTreeSet<String> = statsd.wait_for_lines(7, WAIT).into_iter().collect();
    assert_eq!(lines, expected_lines());
}

#[test]
fn unix_datagram_lines_for_every_kind() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("statsd.sock");
    let statsd = StatsdReceiver::bind_unix(&path);
    let metrics = legacy(&format!("unix://{}", path.display()));
    record_every_kind(&metrics);
    let _ = metrics.flush(); // the OTLP side has no collector here
    let lines: BTreeSet<String> = statsd.wait_for_lines(7, WAIT).into_iter().collect();
    assert_eq!(lines, expected_lines());
}

#[test]
fn counters_are_summed_per_flush_and_idle_series_send_nothing() {
    let statsd = StatsdReceiver::bind_udp();
    let metrics = legacy(&statsd.local_addr().to_string());
    let c = metrics.counter("jobs").build().unwrap().bind(&[("q", "x")]).unwrap();
    for _ in 0..1000 {
        c.increment();
    }
    let _ = metrics.flush(); // the OTLP side has no collector here
    assert_eq!(statsd.wait_for_lines(1, WAIT), vec![format!("svc.jobs:1000|c|#{G},q:x")]);
    let _ = metrics.flush(); // the OTLP side has no collector here
    c.add(7);
    let _ = metrics.flush(); // the OTLP side has no collector here
    let lines = statsd.wait_for_lines(2, WAIT);
    assert_eq!(lines[1], format!("svc.jobs:7|c|#{G},q:x"));
    assert_eq!(statsd.quiet(Duration::from_millis(200)).len(), 2, "an idle counter sends no line");
}

#[test]
fn negative_up_down_value_is_sent_as_reset_then_decrement() {
    let statsd = StatsdReceiver::bind_udp();
    let metrics = legacy(&statsd.local_addr().to_string());
    let inflight = metrics.up_down_counter("inflight").build().unwrap();
    inflight.add(-4, &[]);
    let _ = metrics.flush(); // the OTLP side has no collector here
    let lines = statsd.wait_for_lines(2, WAIT);
    assert_eq!(lines, vec![format!("svc.inflight:0|g|#{G}"), format!("svc.inflight:-4|g|#{G}")]);
    assert_eq!(statsd.datagrams(), 1, "reset and decrement travel in one datagram");
}

#[test]
fn lines_are_packed_into_datagrams_no_larger_than_the_limit() {
    let statsd = StatsdReceiver::bind_udp();
    let metrics = DualMetrics::builder()
        .ignore_env()
        // Exact line sets: no `dualmetrics.sdk.*` self-metrics.
        .with_setting("self_metrics", "false")
        .with_mode(Mode::Legacy)
        .with_statsd_address(&statsd.local_addr().to_string())
        .with_statsd_max_packet_bytes(200)
        .with_statsd_flush_interval(Duration::from_secs(3600))
        .build()
        .unwrap();
    let c = metrics.counter("packed").build().unwrap();
    let ids: Vec<String> = (0..50).map(|i| i.to_string()).collect();
    for id in &ids {
        c.add(1, &[("id", id)]);
    }
    let _ = metrics.flush(); // the OTLP side has no collector here
    let lines = statsd.wait_for_lines(50, WAIT);
    assert_eq!(lines.len(), 50);
    assert!(statsd.datagrams() > 1);
    assert!(statsd.bytes() / statsd.datagrams() <= 200);
    let t = metrics.telemetry();
    assert_eq!(t.statsd.lines_sent, 50);
    assert_eq!(t.statsd.packets_sent, statsd.datagrams());
}

#[test]
fn flusher_thread_sends_on_its_interval_without_explicit_flush() {
    let statsd = StatsdReceiver::bind_udp();
    let metrics = DualMetrics::builder()
        .ignore_env()
        // Exact line sets: no `dualmetrics.sdk.*` self-metrics.
        .with_setting("self_metrics", "false")
        .with_mode(Mode::Legacy)
        .with_statsd_address(&statsd.local_addr().to_string())
        .with_statsd_flush_interval(Duration::from_millis(50))
        .build()
        .unwrap();
    metrics.gauge("ticks").build().unwrap().record(3.0, &[]);
    assert_eq!(statsd.wait_for_lines(1, WAIT), vec!["ticks:3|g|#service:unknown_service"]);
}

#[test]
fn histogram_past_the_sample_buffer_sends_a_reservoir_with_a_declared_sample_rate() {
    let statsd = StatsdReceiver::bind_udp();
    let metrics = DualMetrics::builder()
        .ignore_env()
        // Exact line sets: no `dualmetrics.sdk.*` self-metrics.
        .with_setting("self_metrics", "false")
        .with_mode(Mode::Legacy)
        .with_statsd_address(&statsd.local_addr().to_string())
        .with_statsd_flush_interval(Duration::from_secs(3600))
        .with_setting("statsd.max_samples_per_flush", "10")
        .build()
        .unwrap();
    let h = metrics.histogram("lat").with_unit("ms").build().unwrap().bind(&[]).unwrap();
    for i in 0..1000 {
        h.record(f64::from(i));
    }
    let _ = metrics.flush(); // the OTLP side has no collector here
    let lines = statsd.wait_for_lines(10, WAIT);
    assert_eq!(statsd.quiet(Duration::from_millis(200)).len(), 10);
    // the daemon counts each line as 1/rate: 10 lines at @0.01 count 1000, every sample
    let counted: f64 = lines
        .iter()
        .map(|l| dualmetrics_testkit::parse_line(l).sample_rate.map_or(1.0, |r| 1.0 / r))
        .sum();
    assert_eq!(counted, 1000.0, "{lines:?}");
    let out = metrics.telemetry().statsd.samples_sampled_out;
    assert!(out > 0 && out <= 990, "{out} draws missed the reservoir");
}
