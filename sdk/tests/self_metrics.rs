//! Self-metrics: the SDK's own telemetry arrives as `dualmetrics.sdk.*` metrics on both
//! pipelines, with the snapshot's values, over real receivers.
use std::time::Duration;

use dualmetrics::{DualMetrics, DualMetricsBuilder, Mode};
use dualmetrics_testkit::{latest, parse_line, OtlpGrpcReceiver, PointValue, StatsdReceiver};

const WAIT: Duration = Duration::from_secs(20);

fn dual(statsd: &StatsdReceiver, otlp: &OtlpGrpcReceiver) -> DualMetricsBuilder {
    DualMetrics::builder()
        .ignore_env()
        .with_mode(Mode::Dual)
        .with_service_name("selfm")
        .with_statsd_address(&statsd.local_addr().to_string())
        .with_otlp_endpoint(&otlp.endpoint())
        // Flushes are explicit: each one updates the self-metrics first.
        .with_statsd_flush_interval(Duration::from_secs(3600))
        .with_otlp_export_interval(Duration::from_secs(3600))
}

/// Sum of the StatsD values of `name` whose tags include `tags`.
fn statsd_sum(lines: &[String], name: &str, tags: &[(&str, &str)]) -> f64 {
    lines
        .iter()
        .map(|l| parse_line(l))
        .filter(|p| p.name == name && tags.iter().all(|(k, v)| p.tag(k) == Some(*v)))
        .map(|p| p.value_f64())
        .sum()
}

#[test]
fn three_nan_values_arrive_as_points_dropped_invalid_value_3_on_both_pipelines() {
    let statsd = StatsdReceiver::bind_udp();
    let otlp = OtlpGrpcReceiver::start();
    let metrics = dual(&statsd, &otlp).build().unwrap();
    let latency = metrics.histogram("svc.latency").with_unit("ms").build().unwrap();
    for _ in 0..3 {
        latency.record(f64::NAN, &[]);
    }
    latency.record(5.0, &[]);
    metrics.flush().unwrap();
    assert_eq!(metrics.telemetry().dropped_invalid_value, 3);

    let name = "dualmetrics.sdk.points.dropped";
    let tags = [("backend", "facade"), ("reason", "invalid_value")];
    let lines = statsd.wait_until(WAIT, |l| statsd_sum(l, name, &tags) >= 3.0);
    assert_eq!(statsd_sum(&lines, name, &tags), 3.0, "{lines:#?}");
    let points = otlp.wait_for(WAIT, |p| latest(p, name, &tags).is_some());
    assert_eq!(latest(&points, name, &tags).unwrap().value, PointValue::Int(3));
}

#[test]
fn statsd_and_otlp_counts_of_one_flush_arrive_with_the_next() {
    let statsd = StatsdReceiver::bind_udp();
    let otlp = OtlpGrpcReceiver::start();
    let metrics = dual(&statsd, &otlp).build().unwrap();
    let hits = metrics.counter("svc.hits").build().unwrap();
    hits.add(7, &[("route", "/a")]);
    hits.add(1, &[("route", "/b")]);
    metrics.flush().unwrap();
    let first = metrics.telemetry();
    assert_eq!(first.statsd.lines_sent, 2, "the two series; no self-metric moved yet");
    // The new series' zero points, then their totals.
    assert_eq!(first.otlp.exports_ok, 2);
    metrics.flush().unwrap();

    let lines = statsd.wait_until(WAIT, |l| {
        statsd_sum(l, "dualmetrics.sdk.otlp.exports", &[("result", "ok")]) >= 2.0
    });
    assert_eq!(statsd_sum(&lines, "dualmetrics.sdk.statsd.lines.sent", &[]), 2.0);
    assert_eq!(statsd_sum(&lines, "dualmetrics.sdk.statsd.packets.sent", &[]), 1.0);
    assert_eq!(statsd_sum(&lines, "dualmetrics.sdk.otlp.exports", &[("result", "ok")]), 2.0);
    assert_eq!(
        statsd_sum(&lines, "dualmetrics.sdk.otlp.points.exported", &[]),
        first.otlp.points_exported as f64
    );
    assert!(lines.iter().any(|l| l.starts_with("dualmetrics.sdk.otlp.export.latency:")));

    let points =
        otlp.wait_for(WAIT, |p| latest(p, "dualmetrics.sdk.statsd.lines.sent", &[]).is_some());
    assert_eq!(
        latest(&points, "dualmetrics.sdk.statsd.lines.sent", &[]).unwrap().value,
        PointValue::Int(2)
    );
    assert_eq!(
        latest(&points, "dualmetrics.sdk.otlp.exports", &[("result", "ok")]).unwrap().value,
        PointValue::Int(2)
    );
    let lat = latest(&points, "dualmetrics.sdk.otlp.export.latency", &[]).unwrap();
    assert_eq!(lat.unit, "ms");
    assert!(matches!(lat.value, PointValue::Double(v) if v > 0.0), "{lat:?}");
}

#[test]
fn statsd_socket_errors_arrive_over_otlp_as_points_dropped_socket_error() {
    let statsd = StatsdReceiver::bind_udp();
    let otlp = OtlpGrpcReceiver::start();
    let metrics = dual(&statsd, &otlp).build().unwrap();
    statsd.stop();
    let hits = metrics.counter("svc.hits").build().unwrap();
    for i in 0..5 {
        hits.increment(&[("shard", &i.to_string())]);
    }
    let _ = metrics.flush();
    let dropped = metrics.telemetry().statsd.lines_dropped_socket;
    assert_eq!(dropped, 5);
    metrics.flush().unwrap();
    let tags = [("backend", "statsd"), ("reason", "socket_error")];
    let points =
        otlp.wait_for(WAIT, |p| latest(p, "dualmetrics.sdk.points.dropped", &tags).is_some());
    // The second flush's StatsD lines (self-metrics included) were dropped too, and counted at
    // the next update; the export carried the count up to the second flush's update.
    assert_eq!(
        latest(&points, "dualmetrics.sdk.points.dropped", &tags).unwrap().value,
        PointValue::Int(5)
    );
}

#[test]
fn self_metrics_false_emits_no_sdk_metric() {
    let statsd = StatsdReceiver::bind_udp();
    let otlp = OtlpGrpcReceiver::start();
    let metrics = dual(&statsd, &otlp).with_setting("self_metrics", "false").build().unwrap();
    assert!(!metrics.config().self_metrics);
    let hits = metrics.counter("svc.hits").build().unwrap();
    hits.add(1, &[]);
    metrics.flush().unwrap();
    hits.add(1, &[]);
    metrics.flush().unwrap();
    let lines = statsd.wait_for_lines(2, WAIT);
    assert!(lines.iter().all(|l| l.starts_with("svc.hits:")), "{lines:#?}");
    assert!(otlp.points().iter().all(|p| !p.metric.starts_with("dualmetrics.sdk.")));
    assert!(metrics.catalog().instruments.iter().all(|i| !i.name.starts_with("dualmetrics.sdk.")));
}

#[test]
fn self_metrics_follow_the_mode() {
    let statsd = StatsdReceiver::bind_udp();
    let otlp = OtlpGrpcReceiver::start();
    let metrics = dual(&statsd, &otlp).with_mode(Mode::Legacy).build().unwrap();
    let hits = metrics.counter("svc.hits").build().unwrap();
    hits.add(1, &[]);
    let _ = metrics.flush();
    let _ = metrics.flush();
    statsd.wait_until(WAIT, |l| statsd_sum(l, "dualmetrics.sdk.statsd.lines.sent", &[]) >= 1.0);
    assert!(otlp.points().iter().all(|p| !p.metric.starts_with("dualmetrics.sdk.")));
}
