//! The adapters over real sockets: the same emits through `metrics` macros and through a cadence
//! `StatsdClient` arrive on the StatsD receiver (UDP) and the OTLP receiver (tonic gRPC) with the
//! facade's names, tags, values, units and descriptions.
use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use cadence::prelude::*;
use cadence::{MetricSink, StatsdClient};
use dualmetrics::cadence_sink::DualSink;
use dualmetrics::metrics_rs::DualRecorder;
use dualmetrics::{DualMetrics, Mode};
use dualmetrics_testkit::alloc::{count_allocs, CountingAllocator};
use dualmetrics_testkit::{latest, OtlpGrpcReceiver, Point, PointKind, PointValue, StatsdReceiver};

// Counts allocations per thread for the steady-state tests at the end; other tests ignore it.
#[global_allocator]
static ALLOC: CountingAllocator = CountingAllocator;

const WAIT: Duration = Duration::from_secs(10);
/// The global tags every line carries.
const G: &str = "service:checkout,env:test";

struct Receivers {
    statsd: StatsdReceiver,
    otlp: OtlpGrpcReceiver,
}

fn dual(prefix: &str) -> (Receivers, Arc<DualMetrics>) {
    let statsd = StatsdReceiver::bind_udp();
    let otlp = OtlpGrpcReceiver::start();
    let metrics = DualMetrics::builder()
        .ignore_env()
        // Exact line sets: no `dualmetrics.sdk.*` self-metrics.
        .with_setting("self_metrics", "false")
        .with_mode(Mode::Dual)
        .with_service_name("checkout")
        .with_environment("test")
        .with_statsd_address(&statsd.local_addr().to_string())
        .with_statsd_prefix(prefix)
        .with_otlp_endpoint(&otlp.endpoint())
        // Flushes and exports are explicit in these tests.
        .with_statsd_flush_interval(Duration::from_secs(3600))
        .with_otlp_export_interval(Duration::from_secs(3600))
        .build()
        .expect("valid config");
    (Receivers { statsd, otlp }, Arc::new(metrics))
}

/// What the common scenario sends on StatsD, whichever adapter recorded it.
fn expected_lines() -> BTreeSet<String> {
    [
        format!("http_requests_total:5|c|#{G},route:/cart,code:200"),
        format!("queue.depth:7|g|#{G}"),
        format!("http.latency:250|ms|#{G},route:/cart"),
        format!("http.latency:12|ms|#{G},route:/cart"),
        format!("payload.size:512|h|#{G}"),
    ]
    .into_iter()
    .collect()
}

fn flush_and_collect(r: &Receivers, metrics: &DualMetrics) -> (BTreeSet<String>, Vec<Point>) {
    metrics.flush().expect("flush");
    let lines = r.statsd.wait_for_lines(5, WAIT).into_iter().collect();
    let points = r.otlp.wait_for(WAIT, |p| {
        ["http_requests_total", "queue.depth", "http.latency", "payload.size"]
            .iter()
            .all(|m| p.iter().any(|x| x.metric == *m))
    });
    (lines, points)
}

/// What the common scenario exports on OTLP, whichever adapter recorded it.
fn assert_common_points(points: &[Point]) {
    let p = latest(points, "http_requests_total", &[("route", "/cart"), ("code", "200")])
        .expect("counter point");
    assert_eq!(p.kind, PointKind::Sum { monotonic: true });
    assert_eq!(p.value, PointValue::Int(5));
    assert_eq!(p.attr("service"), Some("checkout"));

    let p = latest(points, "queue.depth", &[]).expect("gauge point");
    assert_eq!(p.kind, PointKind::Gauge);
    assert_eq!(p.value, PointValue::Double(7.0));

    let p = latest(points, "http.latency", &[("route", "/cart")]).expect("timer point");
    assert_eq!(p.kind, PointKind::Histogram);
    assert_eq!(p.unit, "ms");
    let PointValue::Histogram { count, sum, .. } = &p.value else { panic!("{p:?}") };
    assert_eq!((*count, *sum), (2, Some(262.0)));

    let p = latest(points, "payload.size", &[]).expect("histogram point");
    let PointValue::Histogram { count, sum, .. } = &p.value else { panic!("{p:?}") };
    assert_eq!((*count, *sum), (1, Some(512.0)));
}

#[test]
fn metrics_rs_macros_arrive_on_both_pipelines_with_names_tags_values_and_units() {
    let (r, metrics) = dual("");
    let recorder = DualRecorder::new(Arc::clone(&metrics));
    metrics::with_local_recorder(&recorder, || {
        metrics::describe_counter!("http_requests_total", metrics::Unit::Count, "requests served");
        metrics::describe_histogram!(
            "http.latency",
            metrics::Unit::Milliseconds,
            "request latency"
        );
        let route = "/cart";
        metrics::counter!("http_requests_total", "route" => route, "code" => "200").increment(2);
        metrics::counter!("http_requests_total", "route" => route, "code" => "200").increment(3);
        metrics::gauge!("queue.depth").set(7.0);
        metrics::histogram!("http.latency", "route" => "/cart").record(250.0);
        metrics::histogram!("http.latency", "route" => "/cart").record(12.0);
        metrics::histogram!("payload.size").record(512.0);
    });
    let (lines, points) = flush_and_collect(&r, &metrics);
    assert_eq!(lines, expected_lines());
    assert_common_points(&points);
    let p = latest(&points, "http_requests_total", &[]).unwrap();
    assert_eq!((p.unit.as_str(), p.description.as_str()), ("1", "requests served"));
    let p = latest(&points, "http.latency", &[]).unwrap();
    assert_eq!(p.description, "request latency");
    assert_eq!(metrics.telemetry().dropped_by_adapter, 0);
}

#[test]
fn cadence_client_calls_arrive_on_both_pipelines_with_names_tags_values_and_units() {
    let (r, metrics) = dual("");
    let client = StatsdClient::from_sink("", DualSink::new(Arc::clone(&metrics)));
    client
        .count_with_tags("http_requests_total", 2)
        .with_tag("route", "/cart")
        .with_tag("code", "200")
        .send();
    client
        .count_with_tags("http_requests_total", 3)
        .with_tag("route", "/cart")
        .with_tag("code", "200")
        .send();
    client.gauge("queue.depth", 7).unwrap();
    client.time_with_tags("http.latency", 250).with_tag("route", "/cart").send();
    client
        .time_with_tags("http.latency", Duration::from_millis(12))
        .with_tag("route", "/cart")
        .send();
    client.histogram("payload.size", 512).unwrap();
    let (lines, points) = flush_and_collect(&r, &metrics);
    assert_eq!(lines, expected_lines());
    assert_common_points(&points);
    assert_eq!(metrics.telemetry().dropped_by_adapter, 0);
}

#[test]
fn metrics_rs_gauge_adjustments_absolute_counters_and_units_map_onto_the_facade() {
    let (r, metrics) = dual("svc");
    let recorder = DualRecorder::new(Arc::clone(&metrics));
    metrics::with_local_recorder(&recorder, || {
        metrics::describe_gauge!("queue.bytes", metrics::Unit::Bytes, "queued bytes");
        metrics::describe_histogram!("db.query", metrics::Unit::Seconds, "query time");
        let g = metrics::gauge!("queue.bytes", "queue" => "a");
        g.set(100.0);
        g.increment(20.0);
        g.decrement(5.0);
        let c = metrics::counter!("jobs_done_total");
        c.absolute(10);
        c.absolute(4); // lower: adds nothing
        c.absolute(15);
        metrics::histogram!("db.query").record(0.25);
    });
    metrics.flush().unwrap();
    let lines: BTreeSet<String> = r.statsd.wait_for_lines(3, WAIT).into_iter().collect();
    let expected: BTreeSet<String> = [
        format!("svc.queue.bytes:115|g|#{G},queue:a"),
        format!("svc.jobs_done_total:15|c|#{G}"),
        format!("svc.db.query:250|ms|#{G}"),
    ]
    .into_iter()
    .collect();
    assert_eq!(lines, expected);
    let points = r.otlp.wait_for(WAIT, |p| p.len() >= 3);
    let p = latest(&points, "queue.bytes", &[("queue", "a")]).expect("gauge");
    assert_eq!(p.value, PointValue::Double(115.0));
    assert_eq!((p.unit.as_str(), p.description.as_str()), ("By", "queued bytes"));
    let p = latest(&points, "jobs_done_total", &[]).expect("counter");
    assert_eq!(p.value, PointValue::Int(15));
    let p = latest(&points, "db.query", &[]).expect("histogram");
    assert_eq!(p.unit, "s");
    let PointValue::Histogram { sum, .. } = &p.value else { panic!("{p:?}") };
    assert_eq!(*sum, Some(0.25));
}

#[test]
fn metrics_rs_names_the_facade_refuses_are_dropped_and_counted() {
    let (_r, metrics) = dual("");
    let recorder = DualRecorder::new(Arc::clone(&metrics));
    metrics::with_local_recorder(&recorder, || {
        metrics::counter!("9lives").increment(1); // cannot start with a digit
        metrics::counter!("shared.name").increment(1);
        metrics::gauge!("shared.name").set(1.0); // registered as a counter already
        metrics::counter!("bad.label", "1st" => "x").increment(1); // invalid tag key
        metrics::counter!("db query:count").increment(1); // sanitised, recorded
    });
    assert_eq!(metrics.telemetry().dropped_by_adapter, 3);
    assert!(serde_json::to_string(&metrics.catalog()).unwrap().contains("\"db_query_count\""));
}

#[test]
fn cadence_sample_rates_gauge_deltas_and_bad_lines() {
    let (r, metrics) = dual("");
    let sink = DualSink::new(Arc::clone(&metrics));
    for line in [
        "hits:1|c|@0.25|#route:/a",
        "temp:20|g",
        "temp:+5|g",
        "temp:-2.5|g",
        "users:alice|s",     // sets: unsupported
        "not a statsd line", // unparsable
        "hits:-1|c",         // a negative count
        "hits:1|g",          // hits is a counter
    ] {
        assert_eq!(sink.emit(line).unwrap(), line.len());
    }
    assert_eq!(metrics.telemetry().dropped_by_adapter, 4);
    metrics.flush().unwrap();
    let lines: BTreeSet<String> = r.statsd.wait_for_lines(2, WAIT).into_iter().collect();
    let expected: BTreeSet<String> =
        [format!("hits:4|c|#{G},route:/a"), format!("temp:22.5|g|#{G}")].into_iter().collect();
    assert_eq!(lines, expected);
    let points = r.otlp.wait_for(WAIT, |p| p.len() >= 2);
    assert_eq!(latest(&points, "hits", &[("route", "/a")]).unwrap().value, PointValue::Int(4));
    assert_eq!(latest(&points, "temp", &[]).unwrap().value, PointValue::Double(22.5));
}

#[test]
fn cadence_prefix_moves_to_the_facade_without_doubling_and_client_flush_flushes_both() {
    let (r, metrics) = dual("checkout");
    let sink = DualSink::new(Arc::clone(&metrics)).strip_prefix("checkout");
    let client = StatsdClient::from_sink("checkout", sink);
    client.count("orders", 2).unwrap();
    client.flush().unwrap(); // the sink's flush flushes both pipelines
    assert_eq!(r.statsd.wait_for_lines(1, WAIT), [format!("checkout.orders:2|c|#{G}")]);
    let points = r.otlp.wait_for(WAIT, |p| !p.is_empty());
    assert_eq!(latest(&points, "orders", &[]).unwrap().value, PointValue::Int(2));
}

/// Warms `emit` up across flushes (series created, buffers at their steady size), then counts
/// the calling thread's allocations over 1000 more emits.
fn steady_state_allocs(metrics: &DualMetrics, mut emit: impl FnMut()) -> usize {
    assert!(dualmetrics_testkit::alloc::is_installed(), "the counting allocator is in use");
    for _ in 0..3 {
        for _ in 0..1000 {
            emit();
        }
        metrics.flush().expect("flush");
    }
    count_allocs(|| {
        for _ in 0..1000 {
            emit();
        }
    })
}

#[test]
fn metrics_rs_macros_with_static_labels_do_not_allocate_per_emit() {
    let (_r, metrics) = dual("");
    let recorder = DualRecorder::new(Arc::clone(&metrics));
    metrics::with_local_recorder(&recorder, || {
        let n = steady_state_allocs(&metrics, || {
            metrics::counter!("http_requests_total", "route" => "/cart").increment(1);
            metrics::gauge!("queue.depth").increment(1.0);
            metrics::histogram!("http.latency", "route" => "/cart").record(12.0);
        });
        assert_eq!(n, 0, "allocations over 1000 macro emits of each kind");
    });
}

#[test]
fn cadence_sink_lines_do_not_allocate_per_emit() {
    let (_r, metrics) = dual("");
    let sink = DualSink::new(Arc::clone(&metrics));
    let n = steady_state_allocs(&metrics, || {
        sink.emit("http.requests:1|c|@0.5|#route:/cart,code:200").unwrap();
        sink.emit("queue.depth:+1|g").unwrap();
        sink.emit("http.latency:12|ms|#route:/cart").unwrap();
        sink.emit("payload.size:512|d").unwrap();
    });
    assert_eq!(n, 0, "allocations over 1000 lines of each type");
}
