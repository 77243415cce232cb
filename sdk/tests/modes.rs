//! Each mode reaches exactly the pipelines it names; shutdown flushes both; bad values are counted.
use std::time::Duration;

use dualmetrics::{DualMetrics, Mode};
use dualmetrics_testkit::{latest, OtlpGrpcReceiver, Peers, PointValue, StatsdReceiver};

const WAIT: Duration = Duration::from_secs(10);
const QUIET: Duration = Duration::from_millis(300);

/// Dual metrics sending to `peers`, exported only when the test flushes.
fn metrics(peers: &Peers, mode: Mode) -> DualMetrics {
    DualMetrics::builder()
        .ignore_env()
        // Exact line sets: no `dualmetrics.sdk.*` self-metrics.
        .with_setting("self_metrics", "false")
        .with_mode(mode)
        .with_statsd_address(&peers.statsd_address())
        .with_statsd_flush_interval(Duration::from_secs(3600))
        .with_otlp_endpoint(&peers.otlp_endpoint())
        .with_otlp_export_interval(Duration::from_secs(3600))
        .build()
        .unwrap()
}

fn emit(metrics: &DualMetrics) {
    metrics.counter("orders").build().unwrap().add(3, &[("shop", "eu")]);
    metrics.histogram("order.latency").with_unit("ms").build().unwrap().record(42.0, &[]);
}

#[test]
fn legacy_mode_sends_statsd_only() {
    let peers = Peers::start();
    let metrics = metrics(&peers, Mode::Legacy);
    emit(&metrics);
    metrics.flush().unwrap();
    assert_eq!(peers.statsd.wait_for_lines(2, WAIT).len(), 2);
    assert!(peers.otlp.points().is_empty(), "OTLP got {:?}", peers.otlp.points());
}

#[test]
fn otlp_mode_sends_otlp_only() {
    let peers = Peers::start();
    let metrics = metrics(&peers, Mode::Otlp);
    emit(&metrics);
    metrics.flush().unwrap();
    peers.otlp.wait_for(WAIT, |p| {
        latest(p, "orders", &[]).is_some() && latest(p, "order.latency", &[]).is_some()
    });
    assert!(peers.statsd.quiet(QUIET).is_empty());
}

#[test]
fn dual_mode_sends_both() {
    let peers = Peers::start();
    let metrics = metrics(&peers, Mode::Dual);
    emit(&metrics);
    metrics.flush().unwrap();
    let lines = peers.statsd.wait_for_lines(2, WAIT);
    assert!(lines.contains(&"orders:3|c|#service:unknown_service,shop:eu".to_owned()), "{lines:?}");
    assert!(
        lines.contains(&"order.latency:42|ms|#service:unknown_service".to_owned()),
        "{lines:?}"
    );
    let points = peers.otlp.wait_for(WAIT, |p| latest(p, "orders", &[]).is_some());
    assert_eq!(latest(&points, "orders", &[("shop", "eu")]).unwrap().value, PointValue::Int(3));
}

#[test]
fn runtime_switch_sends_each_measurement_to_the_pipelines_active_when_recorded() {
    let peers = Peers::start();
    let metrics = metrics(&peers, Mode::Legacy);
    let c = metrics.counter("switched").build().unwrap().bind(&[]).unwrap();
    c.add(1); // legacy
    metrics.set_mode(Mode::Dual);
    c.add(10); // both
    metrics.set_mode(Mode::Otlp);
    c.add(100); // otlp
    metrics.set_mode(Mode::Legacy);
    c.add(1000); // legacy (rollback)
    metrics.flush().unwrap();
    let lines = peers.statsd.wait_for_lines(1, WAIT);
    assert_eq!(lines, vec!["switched:1011|c|#service:unknown_service"]);
    let points = peers.otlp.wait_for(WAIT, |p| latest(p, "switched", &[]).is_some());
    assert_eq!(latest(&points, "switched", &[]).unwrap().value, PointValue::Int(110));
}

/// A cumulative counter's OTLP side is the series' running total, observed at each collect: every
/// export carries the total so far, a switch away from OTLP keeps exporting the last total (as a
/// bound SDK counter would), and a series never recorded under OTLP is never exported.
#[test]
fn a_cumulative_counter_exports_its_running_total_and_only_series_recorded_under_otlp() {
    let peers = Peers::start();
    let metrics = metrics(&peers, Mode::Dual);
    let c = metrics.counter("totals").build().unwrap();
    c.add(2, &[("k", "a")]);
    metrics.flush().unwrap();
    c.add(3, &[("k", "a")]);
    metrics.flush().unwrap();
    metrics.set_mode(Mode::Legacy);
    c.add(100, &[("k", "a")]);
    c.add(7, &[("k", "legacy-only")]);
    metrics.flush().unwrap();
    let series_a = |p: &[dualmetrics_testkit::Point]| -> Vec<PointValue> {
        p.iter().filter(|p| p.matches("totals", &[("k", "a")])).map(|p| p.value.clone()).collect()
    };
    let points = peers.otlp.wait_for(WAIT, |p| series_a(p).len() >= 4);
    // The new series' zero point, then one total per export.
    assert_eq!(series_a(&points), [0, 2, 5, 5].map(PointValue::Int), "one total per export");
    assert!(
        !points.iter().any(|p| p.matches("totals", &[("k", "legacy-only")])),
        "a series recorded only under legacy reached OTLP: {points:?}"
    );
    let mut lines = peers.statsd.wait_for_lines(4, WAIT);
    lines.sort();
    assert_eq!(
        lines,
        [
            "totals:100|c|#service:unknown_service,k:a",
            "totals:2|c|#service:unknown_service,k:a",
            "totals:3|c|#service:unknown_service,k:a",
            "totals:7|c|#service:unknown_service,k:legacy-only",
        ]
    );
}

#[test]
fn shutdown_flushes_both_pipelines_and_later_emits_are_counted_as_dropped() {
    let peers = Peers::start();
    let metrics = metrics(&peers, Mode::Dual);
    let c = metrics.counter("last.words").build().unwrap();
    c.add(9, &[]);
    metrics.shutdown(Duration::from_secs(5)).unwrap();
    assert_eq!(
        peers.statsd.wait_for_lines(1, WAIT),
        vec!["last.words:9|c|#service:unknown_service"]
    );
    let points = peers.otlp.wait_for(WAIT, |p| latest(p, "last.words", &[]).is_some());
    assert_eq!(latest(&points, "last.words", &[]).unwrap().value, PointValue::Int(9));
    c.add(1, &[]);
    assert_eq!(metrics.telemetry().dropped_after_shutdown, 1);
    assert!(matches!(
        metrics.shutdown(Duration::from_secs(1)),
        Err(dualmetrics::ShutdownError::AlreadyShutdown)
    ));
}

#[test]
fn drop_flushes_buffered_points() {
    let peers = Peers::start();
    let metrics = metrics(&peers, Mode::Dual);
    metrics.gauge("on.drop").build().unwrap().record(7.5, &[]);
    drop(metrics);
    assert_eq!(
        peers.statsd.wait_for_lines(1, WAIT),
        vec!["on.drop:7.5|g|#service:unknown_service"]
    );
    peers.otlp.wait_for(WAIT, |p| latest(p, "on.drop", &[]).is_some());
}

#[test]
fn shutdown_respects_its_deadline_when_the_collector_hangs() {
    let statsd = StatsdReceiver::bind_udp();
    let otlp = OtlpGrpcReceiver::builder().with_delay(Duration::from_secs(30)).start();
    let metrics = DualMetrics::builder()
        .ignore_env()
        // Exact line sets: no `dualmetrics.sdk.*` self-metrics.
        .with_setting("self_metrics", "false")
        .with_statsd_address(&statsd.local_addr().to_string())
        .with_otlp_endpoint(&otlp.endpoint())
        .build()
        .unwrap();
    metrics.counter("slow").build().unwrap().add(1, &[]);
    let start = std::time::Instant::now();
    let result = metrics.shutdown(Duration::from_millis(500));
    assert!(start.elapsed() < Duration::from_secs(3), "took {:?}", start.elapsed());
    assert!(result.is_err());
    assert_eq!(statsd.wait_for_lines(1, WAIT).len(), 1, "StatsD still flushed");
}

#[test]
fn nan_infinite_and_negative_histogram_values_are_dropped_and_counted() {
    let peers = Peers::start();
    let metrics = metrics(&peers, Mode::Dual);
    let g = metrics.gauge("g").build().unwrap();
    let h = metrics.histogram("h").build().unwrap();
    g.record(f64::NAN, &[]);
    g.record(f64::INFINITY, &[]);
    h.record(-1.0, &[]);
    h.bind(&[]).unwrap().record(f64::NEG_INFINITY);
    g.record(-3.5, &[]); // a negative gauge is valid
    metrics.flush().unwrap();
    assert_eq!(metrics.telemetry().dropped_invalid_value, 4);
    assert_eq!(
        peers.statsd.wait_for_lines(2, WAIT),
        vec!["g:0|g|#service:unknown_service", "g:-3.5|g|#service:unknown_service"]
    );
    let points = peers.otlp.wait_for(WAIT, |p| latest(p, "g", &[]).is_some());
    assert!(latest(&points, "h", &[]).is_none(), "no histogram point was recorded");
}

#[test]
fn invalid_names_and_tag_keys_are_rejected_at_registration() {
    let peers = Peers::start();
    let metrics = metrics(&peers, Mode::Dual);
    for bad in ["", "9lives", "has space", "a|b"] {
        let err = metrics.counter(bad).build().unwrap_err();
        assert!(err.to_string().contains("metric name"), "{bad:?}: {err}");
    }
    let c = metrics.counter("ok").build().unwrap();
    let err = c.bind(&[("bad key", "v")]).unwrap_err();
    assert!(err.to_string().contains("\"bad key\""), "{err}");
    // Unbound emits cannot fail: they are dropped and counted.
    c.add(1, &[("", "v")]);
    assert_eq!(metrics.telemetry().dropped_invalid_tags, 1);
    // Same name, other kind: a conflict, not a second instrument.
    let err = metrics.gauge("ok").build().unwrap_err();
    assert!(err.to_string().contains("already registered as a counter"), "{err}");
}

#[test]
fn tag_sets_past_the_cardinality_limit_go_to_the_overflow_series_on_both_sides() {
    let peers = Peers::start();
    let metrics = metrics(&peers, Mode::Dual);
    let c = metrics.counter("users").with_cardinality_limit(2).build().unwrap();
    for id in ["a", "b", "c", "d"] {
        c.add(1, &[("id", id)]);
    }
    metrics.flush().unwrap();
    assert_eq!(metrics.telemetry().cardinality_overflow, 2);
    let mut lines = peers.statsd.wait_for_lines(3, WAIT);
    lines.sort();
    assert_eq!(
        lines,
        vec![
            "users:1|c|#service:unknown_service,id:a",
            "users:1|c|#service:unknown_service,id:b",
            "users:2|c|#service:unknown_service,otel.metric.overflow:true",
        ]
    );
    let points = peers
        .otlp
        .wait_for(WAIT, |p| latest(p, "users", &[("otel.metric.overflow", "true")]).is_some());
    assert_eq!(
        latest(&points, "users", &[("otel.metric.overflow", "true")]).unwrap().value,
        PointValue::Int(2)
    );
}

/// A new cumulative series starts with a zero point in OTLP, so Prometheus' `increase()` counts
/// its first interval: when it is first used, and when a legacy -> dual switch brings the OTLP
/// side on for a series that had only been sent to StatsD. A series that already had its zero
/// point does not get another one when OTLP comes back.
#[test]
fn a_new_cumulative_series_exports_zero_first_also_when_a_switch_brings_otlp_on() {
    let peers = Peers::start();
    let metrics = metrics(&peers, Mode::Legacy);
    let c = metrics.counter("zeros").build().unwrap();
    c.add(4, &[("k", "old")]); // legacy only: no OTLP series yet
    metrics.flush().unwrap();
    metrics.set_mode(Mode::Dual);
    c.add(3, &[("k", "old")]);
    metrics.flush().unwrap();
    metrics.set_mode(Mode::Legacy);
    metrics.set_mode(Mode::Dual);
    c.add(2, &[("k", "old")]);
    metrics.flush().unwrap();
    let series = |p: &[dualmetrics_testkit::Point]| -> Vec<PointValue> {
        p.iter().filter(|p| p.matches("zeros", &[("k", "old")])).map(|p| p.value.clone()).collect()
    };
    let points = peers.otlp.wait_for(WAIT, |p| series(p).len() >= 3);
    assert_eq!(series(&points), [0, 3, 5].map(PointValue::Int));
}

/// A flush with a zero point pending exports twice; the first export carries only the new
/// series' zero points (a counter's other series are not collected twice, which at 1M series made
/// a flush cost two full collects), the second every series' total.
#[test]
fn a_flush_with_a_new_series_exports_its_zero_point_alone_then_every_total() {
    let peers = Peers::start();
    let metrics = metrics(&peers, Mode::Otlp);
    let c = metrics.counter("flushed").build().unwrap();
    c.add(5, &[("k", "old")]);
    metrics.flush().unwrap();
    let before = peers.otlp.request_count();
    c.add(1, &[("k", "old")]);
    c.add(7, &[("k", "new")]);
    metrics.flush().unwrap();
    // flush() returns once its exports were answered; the receiver stores a request first.
    let requests: Vec<_> =
        peers.otlp.received()[before..].iter().map(|r| r.request.clone()).collect();
    assert_eq!(requests.len(), 2, "a zero-point export, then the totals");
    let values = |request, k| -> Vec<PointValue> {
        dualmetrics_testkit::points(std::slice::from_ref(request))
            .into_iter()
            .filter(|p| p.matches("flushed", &[("k", k)]))
            .map(|p| p.value)
            .collect()
    };
    assert_eq!(values(&requests[0], "new"), [PointValue::Int(0)], "the zero point");
    assert_eq!(values(&requests[0], "old"), [], "an old series is not collected twice");
    assert_eq!(values(&requests[1], "new"), [PointValue::Int(7)]);
    assert_eq!(values(&requests[1], "old"), [PointValue::Int(6)]);
}

/// Two threads flushing at once, each after adding to a new series: when a flush returns, its
/// series' total has been exported, even though the other flush's zero-point export (which
/// leaves totals out) ran meanwhile.
#[test]
fn concurrent_flushes_each_return_after_their_totals_are_exported() {
    let peers = Peers::start();
    let metrics = metrics(&peers, Mode::Otlp);
    let c = metrics.counter("racing").build().unwrap();
    for round in 0..30 {
        std::thread::scope(|s| {
            for thread in 0..2 {
                let (c, metrics, peers) = (&c, &metrics, &peers);
                s.spawn(move || {
                    let k = format!("r{round}t{thread}");
                    c.add(3, &[("k", &k)]);
                    metrics.flush().unwrap();
                    let points = peers.otlp.points();
                    let total = latest(&points, "racing", &[("k", &k)]).map(|p| p.value.clone());
                    assert_eq!(total, Some(PointValue::Int(3)), "{k}: the total after flush()");
                });
            }
        });
    }
}
