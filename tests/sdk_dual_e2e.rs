//! End to end through the real servers: the SDK in `dual` mode emits a known workload, which
//! travels SDK → StatsD daemon (statsd 0.9.0) → VictoriaMetrics and SDK → OTLP → rotel →
//! VictoriaMetrics, or SDK → OTLP/HTTP → vmagent → Prometheus. Each backend is read back.
//!
//! Runs only with `DUALMETRICS_E2E=1` (the README's test command sets it and starts the lab).
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use dualmetrics::{DualMetrics, Mode, Protocol};
use dualmetrics_testkit::lab::{
    e2e_lab, poll_eq, poll_until, Lab, PromClient, INGEST_TIMEOUT, POLL_INTERVAL,
};

/// Width of the default bucket holding 300 ms: (250, 500].
const P90_BUCKET_WIDTH: f64 = 250.0;

fn run_id() -> String {
    let nanos = SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_nanos();
    format!("e2e{}x{}", std::process::id(), nanos % 1_000_000_000)
}

fn sdk(lab: &Lab, mode: Mode, otlp_endpoint: &str, protocol: Protocol) -> DualMetrics {
    DualMetrics::builder()
        .ignore_env()
        .with_mode(mode)
        .with_service_name("e2e")
        .with_statsd_address(&lab.statsd_addr().to_string())
        .with_otlp_endpoint(otlp_endpoint)
        .with_otlp_protocol(protocol)
        .build()
        .expect("SDK config")
}

/// The workload: counters with tags, a gauge, an up-down counter, an ms histogram.
fn emit(metrics: &DualMetrics, p: &str) {
    let requests = metrics.counter(&format!("{p}.requests")).build().unwrap();
    for _ in 0..4 {
        requests.add(1, &[("route", "a")]);
    }
    requests.add(3, &[("route", "a")]);
    let bound = requests.bind(&[("route", "b")]).unwrap();
    bound.add(2);
    bound.increment();
    metrics.gauge(&format!("{p}.temp")).build().unwrap().record(21.5, &[]);
    let inflight = metrics.up_down_counter(&format!("{p}.inflight")).build().unwrap();
    inflight.add(5, &[]);
    inflight.add(-2, &[]);
    let latency = metrics.histogram(&format!("{p}.latency")).with_unit("ms").build().unwrap();
    for v in [100.0, 200.0, 300.0] {
        latency.record(v, &[]);
    }
    metrics.shutdown(Duration::from_secs(10)).expect("both pipelines flushed");
}

fn eq(client: &PromClient, promql: &str, expected: f64) {
    poll_eq(INGEST_TIMEOUT, POLL_INTERVAL, Some(expected), || client.query_value(promql))
        .unwrap_or_else(|e| panic!("{promql} on {}: {e}", client.base_url()));
}

fn assert_legacy(vm: &PromClient, p: &str) {
    let c = format!("stats.counters.{p}.requests.count");
    eq(vm, &format!(r#"sum(sum_over_time({{__name__="{c}",route="a"}}[15m]))"#), 7.0);
    eq(vm, &format!(r#"sum(sum_over_time({{__name__="{c}",route="b"}}[15m]))"#), 3.0);
    eq(vm, &format!(r#"last_over_time({{__name__="stats.gauges.{p}.temp"}}[15m])"#), 21.5);
    eq(vm, &format!(r#"last_over_time({{__name__="stats.gauges.{p}.inflight"}}[15m])"#), 3.0);
    let t = format!("stats.timers.{p}.latency");
    eq(vm, &format!(r#"sum_over_time({{__name__="{t}.count"}}[15m])"#), 3.0);
    eq(vm, &format!(r#"sum_over_time({{__name__="{t}.sum"}}[15m])"#), 600.0);
    eq(vm, &format!(r#"max_over_time({{__name__="{t}.upper_90"}}[15m])"#), 300.0);
}

/// `names`: (counter, gauge, up-down, histogram base) as the backend names them.
fn assert_new(store: &PromClient, names: [&str; 4]) {
    let [counter, gauge, updown, hist] = names;
    eq(store, &format!(r#"sum(last_over_time({{__name__="{counter}",route="a"}}[15m]))"#), 7.0);
    eq(store, &format!(r#"sum(last_over_time({{__name__="{counter}",route="b"}}[15m]))"#), 3.0);
    eq(store, &format!(r#"sum(last_over_time({{__name__="{gauge}"}}[15m]))"#), 21.5);
    eq(store, &format!(r#"sum(last_over_time({{__name__="{updown}"}}[15m]))"#), 3.0);
    eq(store, &format!(r#"sum(last_over_time({{__name__="{hist}_count"}}[15m]))"#), 3.0);
    eq(store, &format!(r#"sum(last_over_time({{__name__="{hist}_sum"}}[15m]))"#), 600.0);
    let q = format!(
        r#"histogram_quantile(0.9, sum by (le) (last_over_time({{__name__="{hist}_bucket"}}[15m])))"#
    );
    let p90 = poll_until(INGEST_TIMEOUT, POLL_INTERVAL, || {
        store
            .query_value(&q)
            .map_err(|e| e.to_string())
            .and_then(|v| v.ok_or("no value".to_string()))
    })
    .unwrap_or_else(|e| panic!("{q}: {e}"));
    // the legacy upper_90 of 100, 200, 300 is 300
    assert!((p90 - 300.0).abs() <= P90_BUCKET_WIDTH, "p90 {p90} vs upper_90 300");
}

#[test]
fn dual_mode_reaches_statsd_and_victoriametrics_through_rotel_with_equal_numbers() {
    let Some(lab) = e2e_lab() else { return };
    println!("{}", lab.summary());
    let p = run_id();
    emit(&sdk(&lab, Mode::Dual, &lab.rotel_grpc_endpoint(), Protocol::Grpc), &p);
    let vm = lab.vm();
    assert_legacy(&vm, &p);
    // VictoriaMetrics' default OTLP naming keeps dots
    assert_new(
        &vm,
        [
            &format!("{p}.requests"),
            &format!("{p}.temp"),
            &format!("{p}.inflight"),
            &format!("{p}.latency"),
        ],
    );
}

#[test]
fn dual_mode_reaches_prometheus_through_vmagent_with_equal_numbers() {
    let Some(lab) = e2e_lab() else { return };
    let p = run_id();
    emit(&sdk(&lab, Mode::Dual, &lab.prometheus_otlp_url(), Protocol::HttpProtobuf), &p);
    assert_legacy(&lab.vm(), &p);
    let q = p.replace('.', "_");
    assert_new(
        &lab.prometheus(),
        [
            &format!("{q}_requests_total"),
            &format!("{q}_temp"),
            &format!("{q}_inflight"),
            &format!("{q}_latency_milliseconds"),
        ],
    );
}

fn series_count(store: &PromClient, selector: &str) -> usize {
    store.series_names(selector).unwrap_or_else(|e| panic!("{selector}: {e}")).len()
}

#[test]
fn legacy_and_otlp_modes_leave_the_other_store_empty() {
    let Some(lab) = e2e_lab() else { return };
    let vm = lab.vm();
    let legacy = run_id();
    emit(&sdk(&lab, Mode::Legacy, &lab.rotel_grpc_endpoint(), Protocol::Grpc), &legacy);
    let otlp = format!("{}o", run_id());
    emit(&sdk(&lab, Mode::Otlp, &lab.rotel_grpc_endpoint(), Protocol::Grpc), &otlp);
    // both arrive where they were sent...
    assert_legacy(&vm, &legacy);
    eq(&vm, &format!(r#"sum(last_over_time({{__name__="{otlp}.requests"}}[15m]))"#), 10.0);
    // ...and nowhere else: the legacy run's OTLP names and the otlp run's StatsD names are absent
    assert_eq!(series_count(&vm, &format!(r#"{{__name__=~"{legacy}[.].*"}}"#)), 0);
    assert_eq!(series_count(&vm, &format!(r#"{{__name__=~"stats[.].*[.]{otlp}[.].*"}}"#)), 0);
}

#[derive(clap::Parser)]
struct CompareCli {
    #[command(flatten)]
    args: dualmetrics_compare::cli::CompareArgs,
}

#[test]
fn comparator_finds_every_pair_generated_from_the_catalog_equivalent() {
    use clap::Parser as _;
    let Some(lab) = e2e_lab() else { return };
    let p = run_id();
    let metrics = DualMetrics::builder()
        .ignore_env()
        .with_mode(Mode::Dual)
        .with_service_name("e2e")
        .with_statsd_address(&lab.statsd_addr().to_string())
        // both sides every second, as the lab's daemon flushes: a 10 s SDK flush (the default)
        // would put the legacy side up to 10 s behind, past --max-lag
        .with_statsd_flush_interval(Duration::from_secs(1))
        .with_otlp_endpoint(&lab.rotel_grpc_endpoint())
        .with_otlp_export_interval(Duration::from_secs(1))
        .build()
        .unwrap();
    let requests = metrics.counter(&format!("{p}.requests")).build().unwrap();
    let temp = metrics.gauge(&format!("{p}.temp")).build().unwrap();
    let latency = metrics.histogram(&format!("{p}.latency")).with_unit("ms").build().unwrap();
    // A service's traffic over 12 s: the workload is paced, the assertions below poll.
    for round in 0..12u32 {
        requests.add(u64::from(round + 1), &[("route", "a")]);
        temp.record(f64::from(round), &[]);
        latency.record(f64::from(50 + 10 * round), &[]);
        std::thread::sleep(Duration::from_secs(1));
    }
    let dir = std::env::temp_dir().join(format!("dualmetrics-{p}"));
    std::fs::create_dir_all(&dir).unwrap();
    let catalog = dir.join("catalog.json");
    metrics.write_catalog(&catalog).unwrap();
    metrics.shutdown(Duration::from_secs(10)).unwrap();
    let vm = lab.vm();
    eq(
        &vm,
        &format!(r#"sum(sum_over_time({{__name__="stats.counters.{p}.requests.count"}}[15m]))"#),
        78.0,
    );
    eq(&vm, &format!(r#"sum(last_over_time({{__name__="{p}.requests"}}[15m]))"#), 78.0);

    let html = dir.join("report.html");
    let cli = CompareCli::parse_from([
        "compare",
        "--catalog",
        catalog.to_str().unwrap(),
        "--legacy-url",
        &lab.vm_url(),
        "--new-url",
        &lab.vm_url(),
        "--new-naming",
        "otel",
        "--start",
        "-90s",
        "--step",
        "1s",
        // both sides stamp within a second or two of the add (SDK flush 1 s + daemon flush 1 s
        // on the legacy side, export interval 1 s on the new one); max-lag widens every point
        // of both sides, so 12 s of data must outlast 2 x max-lag + a step at each edge
        "--max-lag",
        "2s",
        // windows of three 1 s exports: a 60 s window would hold the series' first export
        // (its warm-up, not compared) for the whole 12 s
        "--window",
        "3s",
        // the polls above waited until both backends hold the totals: nothing is still in flight
        "--skip-recent",
        "0s",
        "--storage-step",
        "1s",
        "--html",
        html.to_str().unwrap(),
    ]);
    assert_eq!(
        dualmetrics_compare::cli::run_code(&cli.args),
        0,
        "comparator found a difference (table above)"
    );
    assert!(std::fs::read_to_string(&html).unwrap().contains("<svg"));
    std::fs::remove_dir_all(&dir).ok();
}

/// A legacy → dual switch brings the OTLP side of a counter on; its first OTLP point is a zero
/// point, so Prometheus' `increase()` over a window that starts before the switch counts every
/// add made after it — what the StatsD side counts over the same window. (Without the zero point
/// Prometheus starts from the first non-zero total and the first interval is missing.) OTLP
/// reaches Prometheus through vmagent-prom.
#[test]
fn prometheus_increase_across_a_legacy_to_dual_switch_equals_the_statsd_count_of_the_window() {
    let Some(lab) = e2e_lab() else { return };
    let p = run_id();
    let metrics = DualMetrics::builder()
        .ignore_env()
        .with_mode(Mode::Legacy)
        .with_service_name("e2e")
        .with_statsd_address(&lab.statsd_addr().to_string())
        .with_statsd_flush_interval(Duration::from_secs(1))
        .with_otlp_endpoint(&lab.prometheus_otlp_url())
        .with_otlp_protocol(Protocol::HttpProtobuf)
        .with_otlp_export_interval(Duration::from_secs(1))
        .build()
        .unwrap();
    let requests = metrics.counter(&format!("{p}.requests")).build().unwrap();
    // Legacy only: StatsD counts these, before the window.
    for _ in 0..5 {
        requests.add(100, &[("route", "a")]);
        std::thread::sleep(Duration::from_millis(200));
    }
    // A quiet gap: the legacy adds' StatsD samples (flushed within ~2 s) fall before the window.
    std::thread::sleep(Duration::from_secs(4));
    let window_start = SystemTime::now();
    std::thread::sleep(Duration::from_secs(1));
    metrics.set_mode(Mode::Dual);
    // Most of the count in the first interval after the switch: Prometheus' extrapolation toward
    // zero cannot make up for a missing first interval then.
    let mut after_switch = 0u64;
    for i in 0..25u64 {
        let n = if i == 0 { 1000 } else { 1 };
        requests.add(n, &[("route", "a")]);
        after_switch += n;
        std::thread::sleep(Duration::from_millis(200));
    }
    metrics.shutdown(Duration::from_secs(10)).unwrap();

    let prom = lab.prometheus();
    let name = format!("{}_requests_total", p.replace('.', "_"));
    let series = format!(r#"{name}{{route="a"}}"#);
    // Wait until the final total has arrived, then read the last sample's time.
    eq(&prom, &format!("max_over_time({series}[5m])"), after_switch as f64);
    let last = prom.query_value(&format!("timestamp({series})")).unwrap().expect("a sample");
    let at = UNIX_EPOCH + Duration::from_secs_f64(last);
    let window = (last - window_start.duration_since(UNIX_EPOCH).unwrap().as_secs_f64()).ceil();
    let increase = prom
        .query_at(&format!("increase({series}[{window}s])"), at)
        .unwrap()
        .first()
        .map(|s| s.value)
        .expect("increase() has a value");
    // The StatsD side over the same window: from the window's start to now, recomputed at every
    // poll (its last flushes come after the OTLP one, and ingestion into VictoriaMetrics may lag
    // under load: a window of fixed length evaluated at a later "now" would slide past them).
    let vm = lab.vm();
    let c = format!("stats.counters.{p}.requests.count");
    let legacy_since_window_start = || {
        let span = SystemTime::now().duration_since(window_start).unwrap().as_secs_f64();
        let range = (span + 1.0).ceil();
        vm.query_value(&format!(r#"sum(sum_over_time({{__name__="{c}",route="a"}}[{range}s]))"#))
    };
    poll_eq(INGEST_TIMEOUT, POLL_INTERVAL, Some(after_switch as f64), legacy_since_window_start)
        .unwrap_or_else(|e| {
            let all = vm
                .query_value(&format!(r#"sum(sum_over_time({{__name__="{c}",route="a"}}[15m]))"#));
            panic!(
                "StatsD count since the window start on {}: {e} (whole run: {all:?})",
                vm.base_url()
            )
        });
    assert!(
        (increase - after_switch as f64).abs() < 1e-6,
        "Prometheus increase() over {window}s at {last}: {increase}, StatsD counted {after_switch}"
    );
    eq(&prom, &format!("min_over_time({series}[5m])"), 0.0); // the zero point reached Prometheus
}
