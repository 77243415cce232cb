//! The facade over the in-memory and no-op pipelines (`DualMetricsBuilder::build_with`): what a
//! service's test reads back, by pipeline, through modes, rules, switches and shutdown.
use std::time::Duration;

use dualmetrics::{Backend, Counter, DualMetrics, InMemory, Mode, Noop, Recorded, ShutdownError};

/// Instrumentation code written once for the production facade and for tests: generic over the
/// pipelines.
fn request_counter<L: Backend, N: Backend>(metrics: &DualMetrics<L, N>) -> Counter<L, N> {
    metrics.counter("http.requests").with_unit("1").build().unwrap()
}

#[test]
fn each_in_memory_pipeline_holds_what_the_mode_sent_it() {
    let metrics = DualMetrics::builder()
        .with_env_vars(Vec::<(String, String)>::new())
        .with_mode(Mode::Legacy)
        .with_global_tag("env", "test")
        .build_with(InMemory::default(), InMemory::default())
        .unwrap();
    let requests = request_counter(&metrics);
    let latency = metrics.histogram("http.latency").with_unit("ms").build().unwrap();
    let in_flight = metrics.up_down_counter("http.in_flight").build().unwrap();
    let tags = [("route", "/cart")];
    requests.add(1, &tags);
    in_flight.add(3, &[]);
    metrics.set_mode(Mode::Dual);
    requests.add(2, &tags);
    latency.record(12.5, &tags);
    metrics.set_mode(Mode::Otlp);
    requests.add(4, &tags);
    in_flight.add(-1, &[]);

    let (legacy, new) = metrics.pipelines();
    assert_eq!(legacy.get("http.requests", &tags), Some(Recorded::Counter(3)));
    assert_eq!(new.get("http.requests", &tags), Some(Recorded::Counter(6)));
    assert_eq!(legacy.get("http.latency", &tags), Some(Recorded::Histogram(vec![12.5])));
    assert_eq!(new.get("http.latency", &tags), Some(Recorded::Histogram(vec![12.5])));
    // A level is the sum of every add on both sides, whichever side was on.
    assert_eq!(legacy.get("http.in_flight", &[]), Some(Recorded::UpDown(2)));
    assert_eq!(new.get("http.in_flight", &[]), Some(Recorded::UpDown(2)));
    metrics.shutdown(Duration::from_secs(1)).unwrap();
}

#[test]
fn a_rule_pins_one_metric_to_its_pipeline_in_memory_too() {
    let toml = r#"
        [default]
        mode = "dual"
        [[default.rules]]
        match = "legacy.*"
        mode = "legacy"
    "#;
    let metrics = DualMetrics::builder()
        .with_env_vars(Vec::<(String, String)>::new())
        .with_config_toml("test.toml", toml)
        .build_with(Noop, InMemory::default())
        .unwrap();
    metrics.counter("legacy.jobs").build().unwrap().add(5, &[]);
    metrics.counter("new.jobs").build().unwrap().add(7, &[]);
    let (_, new) = metrics.pipelines();
    assert_eq!(new.get("legacy.jobs", &[]), None);
    assert_eq!(new.get("new.jobs", &[]), Some(Recorded::Counter(7)));
}

#[test]
fn emits_after_shutdown_reach_no_pipeline_and_are_counted() {
    let metrics = DualMetrics::builder()
        .with_env_vars(Vec::<(String, String)>::new())
        .build_with(InMemory::default(), InMemory::default())
        .unwrap();
    let gauge = metrics.gauge("queue.depth").build().unwrap();
    gauge.record(4.0, &[]);
    metrics.shutdown(Duration::from_secs(1)).unwrap();
    gauge.record(9.0, &[]);
    gauge.record(f64::NAN, &[]);
    let (legacy, new) = metrics.pipelines();
    assert_eq!(legacy.get("queue.depth", &[]), Some(Recorded::Gauge(4.0)));
    assert_eq!(new.get("queue.depth", &[]), Some(Recorded::Gauge(4.0)));
    assert_eq!(metrics.telemetry().dropped_after_shutdown, 2);
    assert_eq!(metrics.shutdown(Duration::from_secs(1)), Err(ShutdownError::AlreadyShutdown));
}
