//! Failure isolation over real sockets: a slow, absent or failing OTLP collector never slows the
//! caller nor costs the StatsD side a line; a gone StatsD daemon never costs OTLP a point; and
//! every line or point that does not arrive is counted, exactly.
use std::net::UdpSocket;
use std::os::unix::net::UnixDatagram;
use std::time::{Duration, Instant};

use dualmetrics::{DualMetrics, DualMetricsBuilder, Mode, Temporality};
use dualmetrics_testkit::{
    latest, parse_line, sum_of_values, OtlpGrpcReceiver, PointValue, StatsdReceiver,
};

const WAIT: Duration = Duration::from_secs(20);

/// Series per metric in the StatsD tests: one counter line each per flush, several datagrams.
const SERIES: usize = 60;

fn base(mode: Mode, statsd: &str, otlp: &str) -> DualMetricsBuilder {
    DualMetrics::builder()
        .ignore_env()
        .with_mode(mode)
        .with_service_name("iso")
        .with_statsd_address(statsd)
        .with_otlp_endpoint(otlp)
        // Exact line counts: the SDK's own metrics would add lines of their own.
        .with_setting("self_metrics", "false")
}

/// OTLP only, exported when the test calls `flush()` (both intervals are an hour).
fn otlp_only_flushed_by_hand(endpoint: &str, timeout: Duration, t: Temporality) -> DualMetrics {
    base(Mode::Otlp, "127.0.0.1:9", endpoint)
        .with_statsd_flush_interval(Duration::from_secs(3600))
        .with_otlp_export_interval(Duration::from_secs(3600))
        .with_otlp_timeout(timeout)
        .with_temporality(t)
        .build()
        .unwrap()
}

/// An OTLP endpoint nobody listens on: a port bound, then closed.
fn absent_endpoint() -> String {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    drop(listener);
    format!("http://127.0.0.1:{port}")
}

/// A bare UDP StatsD daemon on a fixed port, so the test can kill it and bring it back on the
/// same port.
struct UdpDaemon {
    socket: UdpSocket,
}

impl UdpDaemon {
    fn bind(port: u16) -> Self {
        let socket = UdpSocket::bind(("127.0.0.1", port)).unwrap();
        socket.set_nonblocking(true).unwrap();
        UdpDaemon { socket }
    }

    /// Lines queued on the socket now (loopback delivers before `send` returns).
    fn drain(&self) -> Vec<String> {
        let mut buf = vec![0u8; 65536];
        let mut lines = Vec::new();
        while let Ok(n) = self.socket.recv(&mut buf) {
            let text = String::from_utf8_lossy(&buf[..n]).into_owned();
            lines.extend(text.split('\n').filter(|l| !l.is_empty()).map(str::to_owned));
        }
        lines
    }
}

/// Adds 1 to each of [`SERIES`] series and flushes: exactly `SERIES` lines produced.
fn round(metrics: &DualMetrics, counter: &dualmetrics::Counter) {
    for i in 0..SERIES {
        counter.add(1, &[("shard", &i.to_string())]);
    }
    let _ = metrics.flush();
}

#[test]
fn udp_daemon_gone_then_back_drops_equal_lines_produced_minus_received() {
    let daemon = UdpDaemon::bind(0);
    let port = daemon.socket.local_addr().unwrap().port();
    let metrics = base(Mode::Legacy, &format!("127.0.0.1:{port}"), &absent_endpoint())
        .with_statsd_flush_interval(Duration::from_secs(3600))
        .with_otlp_export_interval(Duration::from_secs(3600))
        .build()
        .unwrap();
    let hits = metrics.counter("iso.hits").build().unwrap();

    let mut received = 0;
    for _ in 0..3 {
        round(&metrics, &hits);
        received += daemon.drain().len();
    }
    assert_eq!(received, 3 * SERIES, "daemon up: every line arrives");
    drop(daemon);
    for _ in 0..4 {
        round(&metrics, &hits);
    }
    let down = metrics.telemetry().statsd;
    assert_eq!(down.lines_dropped_socket, 4 * SERIES as u64, "daemon gone: every line counted");
    assert!(down.last_error.as_deref().unwrap_or("").contains("refused"), "{down:?}");

    let daemon = UdpDaemon::bind(port);
    for _ in 0..3 {
        round(&metrics, &hits);
        received += daemon.drain().len();
    }
    let t = metrics.telemetry().statsd;
    let produced = 10 * SERIES as u64;
    assert_eq!(t.lines_dropped_socket, produced - received as u64);
    assert_eq!(t.lines_sent, received as u64);
    assert_eq!(t.lines_dropped_queue_full, 0);
    assert_eq!(received, 6 * SERIES, "the socket recovers as soon as the daemon is back");
}

#[test]
fn unix_daemon_gone_then_back_drops_equal_lines_produced_minus_received() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("statsd.sock");
    let daemon = StatsdReceiver::bind_unix(&path);
    let metrics = base(Mode::Legacy, &format!("unix://{}", path.display()), &absent_endpoint())
        .with_statsd_flush_interval(Duration::from_secs(3600))
        .with_otlp_export_interval(Duration::from_secs(3600))
        .build()
        .unwrap();
    let hits = metrics.counter("iso.hits").build().unwrap();
    for _ in 0..3 {
        round(&metrics, &hits);
    }
    daemon.wait_for_lines(3 * SERIES, WAIT);
    daemon.stop();
    let first = daemon.lines().len();
    for _ in 0..4 {
        round(&metrics, &hits);
    }
    let daemon = StatsdReceiver::bind_unix(&path);
    for _ in 0..3 {
        round(&metrics, &hits);
    }
    let second = daemon.wait_for_lines(3 * SERIES, WAIT).len();
    let t = metrics.telemetry().statsd;
    let received = (first + second) as u64;
    assert_eq!(t.lines_dropped_socket, 10 * SERIES as u64 - received);
    assert_eq!(t.lines_dropped_socket, 4 * SERIES as u64);
    assert_eq!(t.lines_sent, received);
}

#[test]
fn unix_daemon_not_reading_overflows_the_queue_and_every_line_is_counted() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("statsd.sock");
    // A daemon that never reads: the kernel queues a few datagrams, then refuses with EAGAIN.
    let stalled = UnixDatagram::bind(&path).unwrap();
    let metrics = base(Mode::Legacy, &format!("unix://{}", path.display()), &absent_endpoint())
        .with_statsd_flush_interval(Duration::from_secs(3600))
        .with_otlp_export_interval(Duration::from_secs(3600))
        .build()
        .unwrap();
    let hits = metrics.counter("iso.hits").build().unwrap();
    // Until the kernel refuses (net.unix.max_dgram_qlen or the send buffer: the 12th one-datagram
    // flush on this box), then a few more.
    let mut rounds = 0;
    while metrics.telemetry().statsd.lines_dropped_queue_full == 0 && rounds < 100_000 {
        round(&metrics, &hits);
        rounds += 1;
    }
    for _ in 0..5 {
        round(&metrics, &hits);
        rounds += 1;
    }
    stalled.set_nonblocking(true).unwrap();
    let mut buf = vec![0u8; 65536];
    let mut received = 0u64;
    while let Ok(n) = stalled.recv(&mut buf) {
        received += buf[..n].split(|b| *b == b'\n').filter(|l| !l.is_empty()).count() as u64;
    }
    let t = metrics.telemetry().statsd;
    let produced = (rounds * SERIES) as u64;
    assert!(t.lines_dropped_queue_full > 0, "the queue must overflow: {t:?}");
    assert_eq!(t.lines_dropped_queue_full, produced - received);
    assert_eq!(t.lines_dropped_socket, 0);
    assert_eq!(t.lines_sent, received);
}

/// Per-emit latencies of `threads` threads each adding 1 `per_thread` times, in nanoseconds.
fn emit_latencies(counter: &dualmetrics::Counter, threads: usize, per_thread: usize) -> Vec<u64> {
    std::thread::scope(|s| {
        let handles: Vec<_> = (0..threads)
            .map(|t| {
                s.spawn(move || {
                    let tag = t.to_string();
                    let mut lat = Vec::with_capacity(per_thread);
                    for _ in 0..per_thread {
                        let start = Instant::now();
                        counter.add(1, &[("thread", &tag)]);
                        lat.push(start.elapsed().as_nanos() as u64);
                    }
                    lat
                })
            })
            .collect();
        let mut all: Vec<u64> = handles.into_iter().flat_map(|h| h.join().unwrap()).collect();
        all.sort_unstable();
        all
    })
}

fn quantile(sorted: &[u64], q: f64) -> u64 {
    sorted[((sorted.len() - 1) as f64 * q) as usize]
}

/// Sum of the StatsD counter values of `name` the receiver holds.
fn statsd_sum(lines: &[String], name: &str) -> f64 {
    lines.iter().map(|l| parse_line(l)).filter(|p| p.name == name).map(|p| p.value_f64()).sum()
}

/// The OTLP collector sleeps 5 s per request, or is absent: emitting stays fast, the StatsD
/// daemon gets every value, and shutdown keeps its deadline.
fn slow_or_absent_otlp_case(otlp_endpoint: &str, label: &str) {
    const THREADS: usize = 2;
    const PER_THREAD: usize = 50_000;
    let statsd = StatsdReceiver::bind_udp();
    let metrics = base(Mode::Dual, &statsd.local_addr().to_string(), otlp_endpoint)
        .with_statsd_flush_interval(Duration::from_millis(50))
        .with_otlp_export_interval(Duration::from_millis(100))
        .with_otlp_timeout(Duration::from_secs(10))
        .build()
        .unwrap();
    let emits = metrics.counter("iso.emits").build().unwrap();
    let lat = emit_latencies(&emits, THREADS, PER_THREAD);
    let (p50, p99, p999, max) =
        (quantile(&lat, 0.5), quantile(&lat, 0.99), quantile(&lat, 0.999), lat[lat.len() - 1]);
    eprintln!("{label}: emit p50 {p50} ns, p99 {p99} ns, p99.9 {p999} ns, max {max} ns");
    // Generous: an emit is tens of nanoseconds in release; a blocked caller would be seconds.
    assert!(p999 < 5_000_000, "{label}: p99.9 emit latency {p999} ns");
    assert!(max < 500_000_000, "{label}: max emit latency {max} ns");

    let deadline = Duration::from_secs(1);
    let start = Instant::now();
    let _ = metrics.shutdown(deadline);
    let took = start.elapsed();
    assert!(took < deadline + Duration::from_millis(500), "{label}: shutdown took {took:?}");

    let total = (THREADS * PER_THREAD) as f64;
    let lines = statsd.wait_until(WAIT, |lines| statsd_sum(lines, "iso.emits") >= total);
    assert_eq!(statsd_sum(&lines, "iso.emits"), total, "{label}: StatsD gets 100%");
    let t = metrics.telemetry().statsd;
    assert_eq!((t.lines_dropped_socket, t.lines_dropped_queue_full), (0, 0), "{label}");
}

#[test]
fn otlp_collector_sleeping_5s_per_request_costs_the_caller_and_statsd_nothing() {
    let otlp = OtlpGrpcReceiver::builder().with_delay(Duration::from_secs(5)).start();
    slow_or_absent_otlp_case(&otlp.endpoint(), "slow OTLP");
}

#[test]
fn absent_otlp_collector_costs_the_caller_and_statsd_nothing() {
    slow_or_absent_otlp_case(&absent_endpoint(), "absent OTLP");
}

#[test]
fn statsd_daemon_stopped_mid_run_leaves_otlp_totals_exact() {
    let statsd = StatsdReceiver::bind_udp();
    let otlp = OtlpGrpcReceiver::start();
    let metrics = base(Mode::Dual, &statsd.local_addr().to_string(), &otlp.endpoint())
        .with_statsd_flush_interval(Duration::from_secs(3600))
        .with_otlp_export_interval(Duration::from_secs(3600))
        .build()
        .unwrap();
    let hits = metrics.counter("iso.hits").build().unwrap();
    for r in 0..6 {
        if r == 2 {
            statsd.stop();
        }
        round(&metrics, &hits);
    }
    let t = metrics.telemetry();
    assert_eq!(t.statsd.lines_dropped_socket, 4 * SERIES as u64, "{t:?}");
    assert_eq!(t.otlp.exports_failed, 0);
    let points = otlp.wait_for(WAIT, |p| {
        (0..SERIES).all(|i| {
            latest(p, "iso.hits", &[("shard", &i.to_string())])
                .is_some_and(|p| p.value == PointValue::Int(6))
        })
    });
    assert!(!points.is_empty());
}

/// Exports refused for two of six flushes, delta temporality: the points of the failed exports
/// are counted as lost and are exactly those missing at the collector.
#[test]
fn delta_points_of_failed_exports_are_counted_and_equal_what_the_collector_misses() {
    let otlp = OtlpGrpcReceiver::start();
    let metrics =
        otlp_only_flushed_by_hand(&otlp.endpoint(), Duration::from_secs(2), Temporality::Delta);
    let hits = metrics.counter("iso.delta").build().unwrap();
    for r in 0..6 {
        otlp.set_failing(r == 2 || r == 3);
        round(&metrics, &hits);
    }
    let t = metrics.telemetry().otlp;
    assert_eq!(t.exports_failed, 2, "{t:?}");
    let expected_points = 6 * SERIES as u64;
    let points = otlp.points();
    let received: Vec<_> = points.iter().filter(|p| p.metric == "iso.delta").collect();
    assert_eq!(t.points_failed, 2 * SERIES as u64);
    assert_eq!(t.points_failed, expected_points - received.len() as u64);
    assert_eq!(
        sum_of_values(&points, "iso.delta", &[]),
        (expected_points - t.points_failed) as f64,
        "every delta point carried 1"
    );
    assert_eq!(t.exports_ok, 4);
    assert_eq!(t.points_exported, received.len() as u64);
}

/// Exports refused for three flushes, cumulative temporality: once the collector is back, the
/// next export carries the running total, so nothing is lost.
#[test]
fn cumulative_total_reaches_the_collector_once_it_is_back() {
    let otlp = OtlpGrpcReceiver::start();
    let metrics = otlp_only_flushed_by_hand(
        &otlp.endpoint(),
        Duration::from_secs(2),
        Temporality::Cumulative,
    );
    let hits = metrics.counter("iso.cumulative").build().unwrap();
    round(&metrics, &hits);
    otlp.set_failing(true);
    for _ in 0..3 {
        round(&metrics, &hits);
    }
    assert_eq!(metrics.telemetry().otlp.exports_failed, 3);
    otlp.set_failing(false);
    round(&metrics, &hits);
    let points = otlp.wait_for(WAIT, |p| {
        (0..SERIES).all(|i| {
            latest(p, "iso.cumulative", &[("shard", &i.to_string())])
                .is_some_and(|p| p.value == PointValue::Int(5))
        })
    });
    // Before the outage: the new series' zero points, then their totals; one export after it.
    assert_eq!(otlp.request_count(), 3, "two exports before the outage, one after");
    assert!(!points.is_empty());
}

/// An export the collector answers after the exporter's timeout is counted as a failure *and*
/// as a timeout, with its points.
#[test]
fn export_past_the_timeout_is_counted_as_timed_out_with_its_points() {
    let otlp = OtlpGrpcReceiver::builder().with_delay(Duration::from_secs(3)).start();
    let metrics =
        otlp_only_flushed_by_hand(&otlp.endpoint(), Duration::from_millis(300), Temporality::Delta);
    let hits = metrics.counter("iso.timeout").build().unwrap();
    let start = Instant::now();
    round(&metrics, &hits);
    assert!(start.elapsed() < Duration::from_secs(3), "the exporter gave up at its timeout");
    let t = metrics.telemetry().otlp;
    assert_eq!((t.exports_failed, t.exports_timed_out), (1, 1), "{t:?}");
    assert_eq!((t.points_failed, t.points_timed_out), (SERIES as u64, SERIES as u64));
    assert_eq!(t.exports_ok, 0);
}

/// A Unix daemon that reads, but slower than a flush's burst (the kernel queues 10 datagrams
/// here): the flusher waits for the queue instead of dropping, and every line arrives.
#[test]
fn unix_daemon_slower_than_a_flush_burst_loses_nothing() {
    const KEYS: usize = 2_000;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("statsd.sock");
    let slow = UnixDatagram::bind(&path).unwrap();
    slow.set_read_timeout(Some(WAIT)).unwrap();
    let metrics = base(Mode::Legacy, &format!("unix://{}", path.display()), &absent_endpoint())
        .with_statsd_flush_interval(Duration::from_secs(3600))
        .with_otlp_export_interval(Duration::from_secs(3600))
        .with_statsd_max_packet_bytes(512)
        .build()
        .unwrap();
    let hits = metrics.counter("slow.hits").build().unwrap();
    for i in 0..KEYS {
        hits.add(1, &[("key", i.to_string().as_str())]);
    }
    let reader = std::thread::spawn(move || {
        let mut buf = vec![0u8; 65536];
        let (mut lines, mut datagrams) = (0usize, 0usize);
        while lines < KEYS {
            let Ok(n) = slow.recv(&mut buf) else { break };
            datagrams += 1;
            lines += buf[..n].split(|b| *b == b'\n').filter(|l| !l.is_empty()).count();
            std::thread::sleep(Duration::from_micros(300)); // a daemon busy with each datagram
        }
        (lines, datagrams)
    });
    let _ = metrics.flush();
    let (lines, datagrams) = reader.join().unwrap();
    let t = metrics.telemetry().statsd;
    assert_eq!(t.lines_dropped_queue_full, 0, "{t:?}");
    assert_eq!(lines, KEYS, "{datagrams} datagrams");
    assert!(datagrams > 10, "the burst must exceed the kernel's queue: {datagrams} datagrams");
    assert_eq!(t.lines_sent, KEYS as u64);
}
