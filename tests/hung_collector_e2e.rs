//! A hung OTLP collector (it accepts connections and never answers) for 60 s under 10,000
//! points/s, through the real lab: the SDK dual-emits into the reference statsd daemon, and the
//! shim receives StatsD and tees it to the same daemon, both exporting OTLP to the hung
//! endpoint. Both StatsD paths must stay exact, every OTLP export must fail and be counted with
//! its points, the process's memory must stay bounded, and both must shut down within their
//! deadlines. Runs only with `DUALMETRICS_E2E=1`; `DUALMETRICS_E2E_SECONDS` shortens it.
use std::net::{TcpListener, UdpSocket};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use dualmetrics::{DualMetrics, Mode};
use dualmetrics_shim::{Shim, ShimConfig};
use dualmetrics_testkit::alloc::resident_kib;
use dualmetrics_testkit::lab::{e2e_lab, poll_eq, INGEST_TIMEOUT, POLL_INTERVAL};

/// Accepts and holds every connection, reads nothing, answers nothing.
fn hung_collector() -> String {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    std::thread::spawn(move || {
        let mut held = Vec::new();
        for s in listener.incoming().flatten() {
            held.push(s);
        }
    });
    format!("http://{addr}")
}

#[test]
fn a_hung_collector_for_a_minute_loses_nothing_uncounted_and_bounds_memory() {
    let Some(lab) = e2e_lab() else { return };
    let seconds: u64 =
        std::env::var("DUALMETRICS_E2E_SECONDS").ok().and_then(|v| v.parse().ok()).unwrap_or(60);
    let id = format!(
        "hung{}",
        SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_millis() % 100_000_000
    );
    let otlp = hung_collector();
    let metrics = DualMetrics::builder()
        .ignore_env()
        .with_mode(Mode::Dual)
        .with_service_name("hung")
        .with_statsd_address(&lab.statsd_addr().to_string())
        .with_statsd_flush_interval(Duration::from_secs(1))
        .with_otlp_endpoint(&otlp)
        .with_otlp_timeout(Duration::from_secs(2))
        .with_otlp_export_interval(Duration::from_secs(1))
        .with_setting("self_metrics", "false")
        .build()
        .unwrap();
    let sdk_hits = metrics.counter(&format!("{id}.sdk.hits")).build().unwrap();
    let mut cfg = ShimConfig::loopback();
    cfg.tee.target = Some(lab.statsd_addr().to_string());
    cfg.export.endpoint = otlp.clone();
    cfg.export.timeout_ms = 2_000;
    cfg.export.self_telemetry = false;
    cfg.aggregate.flush_interval_ms = 1_000;
    cfg.shutdown_timeout_ms = Some(5_000);
    let bound = Shim::bind(cfg).unwrap();
    let (shim_addr, shim_tel) = (bound.udp_addr().unwrap(), bound.telemetry());
    let shim = bound.spawn();
    let udp = UdpSocket::bind("127.0.0.1:0").unwrap();
    let shim_line = format!("{id}.shim.hits:1|c");

    // 10,000 points/s for `seconds`: 5,000 SDK adds and 5,000 shim lines (in packets of 50)
    // per second, paced in 10 ms slices.
    let rss_start = resident_kib();
    let mut rss_max = rss_start;
    let start = Instant::now();
    let slices = seconds * 100;
    for slice in 0..slices {
        for _ in 0..50 {
            sdk_hits.add(1, &[]);
        }
        let packet = vec![shim_line.as_str(); 50].join("\n");
        udp.send_to(packet.as_bytes(), shim_addr).unwrap();
        if slice % 100 == 0 {
            rss_max = rss_max.max(resident_kib());
        }
        let due = start + Duration::from_millis(10 * (slice + 1));
        if let Some(wait) = due.checked_duration_since(Instant::now()) {
            std::thread::sleep(wait);
        }
    }
    let per_path = (slices * 50) as f64;

    // Shutdown within the deadlines, the hung exports counted.
    let t = Instant::now();
    let _ = metrics.shutdown(Duration::from_secs(5));
    assert!(t.elapsed() < Duration::from_secs(8), "SDK shutdown took {:?}", t.elapsed());
    let t = Instant::now();
    let _ = shim.shutdown();
    assert!(t.elapsed() < Duration::from_secs(8), "shim shutdown took {:?}", t.elapsed());
    let o = metrics.telemetry().otlp;
    assert_eq!(o.exports_ok, 0, "{o:?}");
    assert!(o.exports_failed >= 1 && o.points_failed >= 1, "no failed export counted: {o:?}");
    let s = shim_tel.snapshot();
    assert_eq!(s.exports, 0);
    let shim_dropped = s.dropped("export_failed")
        + s.dropped("export_queue_full")
        + s.dropped("shutdown_deadline");
    assert!(shim_dropped >= 1, "the shim counted no lost export: {:?}", s.drops);
    assert_eq!(s.lines as f64, per_path, "the shim accepted every line: {s:?}");

    // Memory bounded: a minute of failed exports does not pile up.
    let growth_mib = (rss_max.saturating_sub(rss_start)) / 1024;
    eprintln!("RSS start {rss_start} KiB, max {rss_max} KiB (+{growth_mib} MiB)");
    assert!(growth_mib < 100, "RSS grew {growth_mib} MiB in {seconds} s of a hung collector");

    // Both StatsD paths exact in the daemon's store.
    let vm = lab.vm();
    for path in ["sdk", "shim"] {
        let q = format!(
            r#"sum(sum_over_time({{__name__="stats.counters.{id}.{path}.hits.count"}}[15m]))"#
        );
        poll_eq(INGEST_TIMEOUT, POLL_INTERVAL, Some(per_path), || vm.query_value(&q))
            .unwrap_or_else(|e| panic!("{path}: {e}"));
    }
}
