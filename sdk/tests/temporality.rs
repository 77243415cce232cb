//! Per-metric temporality against a real OTLP/gRPC receiver: delta and cumulative metrics in one
//! export, and delta instruments forgetting the series an interval did not touch.
use std::time::Duration;

use dualmetrics::{DualMetrics, Mode, Rule, Temporality};
use dualmetrics_testkit::{
    points, OtlpGrpcReceiver, Point, PointKind, PointValue, StatsdReceiver, Temporality as Wire,
};

const WAIT: Duration = Duration::from_secs(10);

fn builder(otlp: &OtlpGrpcReceiver, mode: Mode) -> dualmetrics::DualMetricsBuilder {
    DualMetrics::builder()
        .ignore_env()
        .with_mode(mode)
        .with_service_name("worker")
        .with_statsd_address("127.0.0.1:9")
        .with_otlp_endpoint(&otlp.endpoint())
        // Exports happen when the test calls flush().
        .with_otlp_export_interval(Duration::from_secs(3600))
        .with_statsd_flush_interval(Duration::from_secs(3600))
}

/// Flushes, and returns the points of whatever the flush exported: none when nothing was
/// recorded since the last export (the OpenTelemetry reader sends no empty request).
fn flush_taking_what_arrived(metrics: &DualMetrics, otlp: &OtlpGrpcReceiver) -> Vec<Point> {
    let before = otlp.request_count();
    metrics.flush().unwrap();
    // flush() returns once its exports were answered, and the receiver stores a request before
    // it answers, so every request of this flush is here.
    let requests: Vec<_> = otlp.received()[before..].iter().map(|r| r.request.clone()).collect();
    points(&requests)
}

/// Flushes something recorded, and returns the last point of each series the flush exported:
/// two exports when a new cumulative series' zero point was pending (the zero points, then the
/// totals), else one.
fn flush_export(metrics: &DualMetrics, otlp: &OtlpGrpcReceiver) -> Vec<Point> {
    let exported = flush_taking_what_arrived(metrics, otlp);
    assert!(!exported.is_empty(), "the flush exported nothing");
    let mut last: Vec<Point> = Vec::new();
    for p in exported {
        last.retain(|q| (&q.metric, &q.attributes) != (&p.metric, &p.attributes));
        last.push(p);
    }
    last
}

fn point<'a>(points: &'a [Point], metric: &str, attrs: &[(&str, &str)]) -> &'a Point {
    let found: Vec<_> = points.iter().filter(|p| p.matches(metric, attrs)).collect();
    assert_eq!(found.len(), 1, "exactly one {metric} {attrs:?} point in {points:#?}");
    found[0]
}

fn catalog_series(metrics: &DualMetrics, name: &str) -> usize {
    metrics.catalog().instruments.iter().find(|i| i.name == name).unwrap().series
}

#[test]
fn delta_and_cumulative_metrics_travel_in_one_export_with_their_own_temporality_and_values() {
    let otlp = OtlpGrpcReceiver::start();
    let metrics = builder(&otlp, Mode::Otlp)
        .with_temporality(Temporality::Cumulative)
        .with_rule(Rule::matching("jobs.*").temporality(Temporality::Delta))
        .build()
        .unwrap();
    let jobs = metrics.counter("jobs.done").build().unwrap();
    let latency = metrics.histogram("jobs.latency").with_unit("ms").build().unwrap();
    let requests = metrics.counter("http.requests").build().unwrap();
    let inflight = metrics.up_down_counter("jobs.inflight").build().unwrap();

    jobs.add(5, &[("queue", "a")]);
    latency.record(10.0, &[("queue", "a")]);
    requests.add(5, &[("route", "/")]);
    inflight.add(4, &[]);
    let first = flush_export(&metrics, &otlp);
    let p = point(&first, "jobs.done", &[("queue", "a")]);
    assert_eq!(
        (p.kind, p.temporality, &p.value),
        (PointKind::Sum { monotonic: true }, Some(Wire::Delta), &PointValue::Int(5))
    );
    let p = point(&first, "http.requests", &[("route", "/")]);
    assert_eq!((p.temporality, &p.value), (Some(Wire::Cumulative), &PointValue::Int(5)));
    let p = point(&first, "jobs.latency", &[("queue", "a")]);
    assert_eq!(p.temporality, Some(Wire::Delta));
    let p = point(&first, "jobs.inflight", &[]);
    assert_eq!(
        p.temporality,
        Some(Wire::Cumulative),
        "an up-down counter stays cumulative under a delta rule, as OpenTelemetry prefers"
    );

    jobs.add(3, &[("queue", "a")]);
    latency.record(20.0, &[("queue", "a")]);
    latency.record(30.0, &[("queue", "a")]);
    requests.add(3, &[("route", "/")]);
    inflight.add(-1, &[]);
    let second = flush_export(&metrics, &otlp);
    let p = point(&second, "jobs.done", &[("queue", "a")]);
    assert_eq!((p.temporality, &p.value), (Some(Wire::Delta), &PointValue::Int(3)), "per interval");
    let p = point(&second, "http.requests", &[("route", "/")]);
    assert_eq!(
        (p.temporality, &p.value),
        (Some(Wire::Cumulative), &PointValue::Int(8)),
        "running total"
    );
    match &point(&second, "jobs.latency", &[("queue", "a")]).value {
        PointValue::Histogram { count, sum, .. } => assert_eq!((*count, *sum), (2, Some(50.0))),
        other => panic!("histogram expected, got {other:?}"),
    }
    assert_eq!(point(&second, "jobs.inflight", &[]).value, PointValue::Int(3));
    // Each flush: one export carries both temporalities, after one with the zero points of the
    // cumulative series new since the last flush (the test's at the first, the SDK's self-metrics
    // at the second).
    assert_eq!(otlp.request_count(), 4, "one export per interval carries both temporalities");
}

#[test]
fn delta_instrument_forgets_unheld_series_at_each_export_while_bound_handles_keep_working() {
    let otlp = OtlpGrpcReceiver::start();
    let statsd = StatsdReceiver::bind_udp();
    let metrics = builder(&otlp, Mode::Dual)
        .with_statsd_address(&statsd.local_addr().to_string())
        .with_rule(Rule::matching("churn.*").temporality(Temporality::Delta))
        .build()
        .unwrap();
    let events = metrics.counter("churn.events").build().unwrap();
    let cumulative = metrics.counter("steady.events").build().unwrap();
    let held = events.bind(&[("key", "held")]).unwrap();

    // Interval 1: three series of the delta metric (one bound), one of the cumulative one.
    events.add(1, &[("key", "a")]);
    events.add(4, &[("key", "b")]);
    held.add(1);
    cumulative.add(1, &[("key", "b")]);
    assert_eq!(catalog_series(&metrics, "churn.events"), 3, "all live during interval 1");
    let first = flush_export(&metrics, &otlp);
    assert_eq!(point(&first, "churn.events", &[("key", "a")]).value, PointValue::Int(1));
    assert_eq!(point(&first, "churn.events", &[("key", "b")]).value, PointValue::Int(4));
    // The export forgot every series no handle holds, used or not, as OpenTelemetry's delta
    // aggregation does; the bound series stays.
    assert_eq!(catalog_series(&metrics, "churn.events"), 1, "a and b forgotten, held kept");
    assert_eq!(metrics.telemetry().series_evicted, 2);
    assert_eq!(catalog_series(&metrics, "steady.events"), 1, "cumulative never forgets");

    // Interval 2: only `a` is used (a new series again); forgotten again after this export.
    events.add(2, &[("key", "a")]);
    let second = flush_export(&metrics, &otlp);
    assert_eq!(point(&second, "churn.events", &[("key", "a")]).value, PointValue::Int(2));
    assert!(!second.iter().any(|p| p.matches("churn.events", &[("key", "b")])));
    assert_eq!(catalog_series(&metrics, "churn.events"), 1, "only held kept");
    assert_eq!(metrics.telemetry().series_evicted, 3);

    // The bound handle still records, and its value arrives.
    held.add(7);
    // The forgotten tag set comes back as a new series.
    events.add(9, &[("key", "b")]);
    let third = flush_export(&metrics, &otlp);
    let p = point(&third, "churn.events", &[("key", "held")]);
    assert_eq!((p.temporality, &p.value), (Some(Wire::Delta), &PointValue::Int(7)));
    assert_eq!(point(&third, "churn.events", &[("key", "b")]).value, PointValue::Int(9));

    // StatsD lost nothing to the forgetting: 4 + 9 for b, 1 + 7 for held, 1 + 2 for a.
    let lines = statsd.wait_until(WAIT, |lines| {
        let sum = |key: &str| -> f64 {
            lines
                .iter()
                .map(|l| dualmetrics_testkit::parse_line(l))
                .filter(|p| p.name == "churn.events" && p.tag("key") == Some(key))
                .map(|p| p.value_f64())
                .sum()
        };
        sum("b") == 13.0 && sum("held") == 8.0 && sum("a") == 3.0
    });
    assert!(!lines.is_empty());
}

#[test]
fn forgotten_series_statsd_value_recorded_before_eviction_is_still_flushed() {
    let otlp = OtlpGrpcReceiver::start();
    let statsd = StatsdReceiver::bind_udp();
    // OTLP exports on its own 100 ms timer; StatsD flushes only when asked.
    let metrics = builder(&otlp, Mode::Dual)
        .with_statsd_address(&statsd.local_addr().to_string())
        .with_otlp_export_interval(Duration::from_millis(100))
        .with_temporality(Temporality::Delta)
        .build()
        .unwrap();
    let events = metrics.counter("burst.events").build().unwrap();
    events.add(6, &[("key", "once")]);
    // Wait (polling) until the exporter has forgotten the idle series.
    let deadline = std::time::Instant::now() + WAIT;
    while metrics.telemetry().series_evicted == 0 {
        assert!(std::time::Instant::now() < deadline, "series never forgotten");
        std::thread::sleep(Duration::from_millis(10));
    }
    assert_eq!(catalog_series(&metrics, "burst.events"), 0);
    metrics.flush().unwrap();
    statsd.wait_until(WAIT, |lines| lines.iter().any(|l| l.starts_with("burst.events:6|c")));
    let otlp_total: i64 = otlp
        .points()
        .iter()
        .filter(|p| p.matches("burst.events", &[("key", "once")]))
        .map(|p| match p.value {
            PointValue::Int(v) => v,
            _ => 0,
        })
        .sum();
    assert_eq!(otlp_total, 6, "the delta value was exported once before the series was forgotten");
}

#[test]
fn a_delta_export_frees_the_limit_for_the_next_interval() {
    let otlp = OtlpGrpcReceiver::start();
    let metrics = builder(&otlp, Mode::Otlp)
        .with_rule(Rule::matching("users.*").temporality(Temporality::Delta).cardinality_limit(2))
        .build()
        .unwrap();
    let logins = metrics.counter("users.logins").build().unwrap();
    logins.add(1, &[("user", "a")]);
    logins.add(1, &[("user", "b")]);
    // A third user in the same interval overflows.
    logins.add(1, &[("user", "x")]);
    let first = flush_export(&metrics, &otlp);
    assert_eq!(
        point(&first, "users.logins", &[("otel.metric.overflow", "true")]).value,
        PointValue::Int(1)
    );

    // Interval 2: a and b were forgotten by export 1, so two new users get series of their own.
    logins.add(1, &[("user", "c")]);
    logins.add(1, &[("user", "d")]);
    let second = flush_export(&metrics, &otlp);
    assert_eq!(point(&second, "users.logins", &[("user", "c")]).value, PointValue::Int(1));
    assert_eq!(point(&second, "users.logins", &[("user", "d")]).value, PointValue::Int(1));
    assert_eq!(metrics.telemetry().cardinality_overflow_by_metric["users.logins"], 1);
}

#[test]
fn series_of_a_dropped_bound_handle_is_forgotten_after_its_last_values_are_sent() {
    let otlp = OtlpGrpcReceiver::start();
    let statsd = StatsdReceiver::bind_udp();
    let metrics = builder(&otlp, Mode::Dual)
        .with_statsd_address(&statsd.local_addr().to_string())
        // Delta for this metric only: under a global delta the SDK's self-metrics (unbound,
        // forgotten at every export too) would add to `series_evicted`.
        .with_rule(Rule::matching("handle.*").temporality(Temporality::Delta))
        .build()
        .unwrap();
    let events = metrics.counter("handle.events").build().unwrap();
    let handle = events.bind(&[("key", "h")]).unwrap();
    handle.add(5);
    assert_eq!(
        point(&flush_export(&metrics, &otlp), "handle.events", &[("key", "h")]).value,
        PointValue::Int(5)
    );

    // The handle records again and is dropped: the next collect forgets the series (nobody
    // holds it) yet still exports what the handle recorded.
    handle.add(7);
    drop(handle);
    let p = point(&flush_export(&metrics, &otlp), "handle.events", &[("key", "h")]).clone();
    assert_eq!((p.temporality, p.value), (Some(Wire::Delta), PointValue::Int(7)));
    assert_eq!(catalog_series(&metrics, "handle.events"), 0);
    assert_eq!(metrics.telemetry().series_evicted, 1);
    statsd.wait_until(WAIT, |lines| {
        let total: f64 = lines
            .iter()
            .map(|l| dualmetrics_testkit::parse_line(l))
            .filter(|p| p.name == "handle.events")
            .map(|p| p.value_f64())
            .sum();
        total == 12.0
    });
}

/// A tag set used many times per interval is bound at its second emit of each interval (its
/// later emits skip building attributes) and forgotten at each export: with two threads emitting
/// into it while exports run, the delta points of every interval add up to every add, on OTLP
/// and on StatsD.
#[test]
fn delta_series_bound_on_reuse_lose_nothing_across_concurrent_exports() {
    use std::sync::atomic::{AtomicBool, Ordering};
    /// Exports that must carry the counter while the threads emit.
    const INTERVALS_WHILE_EMITTING: usize = 3;
    let otlp = OtlpGrpcReceiver::start();
    let statsd = StatsdReceiver::bind_udp();
    let metrics = builder(&otlp, Mode::Dual)
        .with_statsd_address(&statsd.local_addr().to_string())
        .with_temporality(Temporality::Delta)
        .build()
        .unwrap();
    let hits = metrics.counter("hot.hits").build().unwrap();
    let sizes = metrics.histogram("hot.sizes").build().unwrap();
    let stop = AtomicBool::new(false);
    let is_hits = |p: &Point| p.matches("hot.hits", &[("route", "/cart")]);
    let mut exported: Vec<Point> = Vec::new();
    // Each thread emits until told to stop and says how many adds it made; the main thread
    // exports meanwhile (every export forgets the series, the next emits bind it again) until
    // enough exports carried the counter. A flush may find nothing new (the threads not yet
    // started, or descheduled for its duration), so no single flush is required to export.
    let adds: Vec<u64> = std::thread::scope(|s| {
        let emitters: Vec<_> = (0..2)
            .map(|_| {
                s.spawn(|| {
                    let mut n: u64 = 0;
                    while !stop.load(Ordering::Relaxed) {
                        hits.add(1, &[("route", "/cart")]);
                        if n.is_multiple_of(100) {
                            sizes.record(2.0, &[("route", "/cart")]);
                        }
                        n += 1;
                    }
                    n
                })
            })
            .collect();
        let deadline = std::time::Instant::now() + Duration::from_secs(60);
        while exported.iter().filter(|p| is_hits(p)).count() < INTERVALS_WHILE_EMITTING
            && std::time::Instant::now() < deadline
        {
            exported.extend(flush_taking_what_arrived(&metrics, &otlp));
        }
        stop.store(true, Ordering::Relaxed);
        emitters.into_iter().map(|t| t.join().unwrap()).collect()
    });
    exported.extend(flush_taking_what_arrived(&metrics, &otlp));
    let added: u64 = adds.iter().sum();
    let intervals = exported.iter().filter(|p| is_hits(p)).count();
    assert!(
        intervals >= INTERVALS_WHILE_EMITTING,
        "exports carried the counter while the threads emitted ({intervals} intervals)"
    );
    let total: i64 = exported
        .iter()
        .filter(|p| is_hits(p))
        .map(|p| match p.value {
            PointValue::Int(v) => v,
            ref other => panic!("int expected, got {other:?}"),
        })
        .sum();
    assert_eq!(total, added as i64, "over {intervals} intervals");
    let samples: u64 = exported
        .iter()
        .filter(|p| p.matches("hot.sizes", &[("route", "/cart")]))
        .map(|p| match p.value {
            PointValue::Histogram { count, .. } => count,
            ref other => panic!("histogram expected, got {other:?}"),
        })
        .sum();
    // Each thread records a size at its adds 0, 100, 200, ...
    assert_eq!(samples, adds.iter().map(|n| n.div_ceil(100)).sum::<u64>());
    assert_eq!(catalog_series(&metrics, "hot.hits"), 0, "forgotten after the last export");
    let lines = statsd.wait_until(WAIT, |lines| {
        lines
            .iter()
            .map(|l| dualmetrics_testkit::parse_line(l))
            .filter(|p| p.name == "hot.hits")
            .map(|p| p.value_f64())
            .sum::<f64>()
            == added as f64
    });
    assert!(!lines.is_empty());
}
