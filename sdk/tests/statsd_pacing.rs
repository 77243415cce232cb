//! The StatsD sender at volume, over real sockets: a flush's datagrams are paced at the budget
//! (or spread over the flush window when the budget cannot carry them), series are interleaved
//! across datagrams, datagrams respect the size limit over UDP and Unix sockets, and the
//! volume-reducing settings (value packing, a timer sample rate) keep the daemon's count right.
use std::collections::{BTreeMap, BTreeSet};
use std::net::UdpSocket;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use dualmetrics::{DualMetrics, DualMetricsBuilder, Mode, Rule};

const WAIT: Duration = Duration::from_secs(20);

/// One received datagram: when it arrived and what it held.
struct Datagram {
    at: Instant,
    text: String,
}

/// A UDP receiver that keeps every datagram with its arrival time (read by a thread that does
/// nothing else, so arrival times are close to send times on loopback).
struct TimedReceiver {
    addr: String,
    got: Arc<Mutex<Vec<Datagram>>>,
}

impl TimedReceiver {
    fn bind() -> Self {
        let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
        let addr = socket.local_addr().unwrap().to_string();
        socket.set_read_timeout(Some(Duration::from_millis(100))).unwrap();
        let got: Arc<Mutex<Vec<Datagram>>> = Arc::default();
        let sink = Arc::clone(&got);
        std::thread::spawn(move || {
            let mut buf = vec![0u8; 65_536];
            loop {
                match socket.recv(&mut buf) {
                    Ok(n) => {
                        let text = String::from_utf8_lossy(&buf[..n]).into_owned();
                        sink.lock().unwrap().push(Datagram { at: Instant::now(), text });
                    }
                    Err(_) if Arc::strong_count(&sink) == 1 => return,
                    Err(_) => {}
                }
            }
        });
        TimedReceiver { addr, got }
    }

    fn lines(&self) -> usize {
        self.got.lock().unwrap().iter().map(|d| d.text.lines().count()).sum()
    }

    /// Polls until `n` lines arrived (or the deadline passes, then fails).
    fn wait_lines(&self, n: usize) {
        let deadline = Instant::now() + WAIT;
        while self.lines() < n {
            assert!(Instant::now() < deadline, "{} of {n} lines after {WAIT:?}", self.lines());
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    fn take(&self) -> Vec<Datagram> {
        std::mem::take(&mut *self.got.lock().unwrap())
    }
}

fn builder(address: &str) -> DualMetricsBuilder {
    DualMetrics::builder()
        .ignore_env()
        .with_setting("self_metrics", "false")
        .with_mode(Mode::Legacy)
        .with_statsd_address(address)
        .with_otlp_endpoint("http://127.0.0.1:9")
}

/// `series` tag sets × `per_series` ms samples into `metric`.
fn record(metrics: &DualMetrics, metric: &str, series: usize, per_series: usize) {
    let h = metrics.histogram(metric).with_unit("ms").build().unwrap();
    for i in 0..per_series {
        for s in 0..series {
            h.record((i % 500) as f64, &[("s", format!("{s:02}").as_str())]);
        }
    }
}

fn series_of(line: &str) -> &str {
    line.rsplit("s:").next().unwrap()
}

#[test]
fn a_flush_is_paced_at_the_byte_budget_and_never_sends_early() {
    let rx = TimedReceiver::bind();
    let budget = 200.0; // bytes per millisecond
    let metrics = builder(&rx.addr)
        .with_statsd_flush_interval(Duration::from_secs(3600))
        .with_setting("statsd.pacing_bytes_per_ms", "200")
        .build()
        .unwrap();
    record(&metrics, "pace.latency", 40, 40);
    let started = Instant::now();
    let _ = metrics.flush();
    let flush_took = started.elapsed();
    rx.wait_lines(1600);
    let got = rx.take();
    let total: usize = got.iter().map(|d| d.text.len()).sum();
    assert!(got.len() > 20, "{} datagrams", got.len());
    // Datagram i leaves no earlier than (bytes before it) / budget after the first one.
    let first = got[0].at;
    let mut before = 0usize;
    for d in &got {
        let due = Duration::from_secs_f64(before as f64 / budget / 1000.0);
        let slack = Duration::from_millis(20);
        assert!(d.at + slack >= first + due, "datagram after {before} bytes arrived early");
        before += d.text.len();
    }
    let expected =
        Duration::from_secs_f64((total - got.last().unwrap().text.len()) as f64 / budget / 1000.0);
    assert!(flush_took >= expected, "flush took {flush_took:?}, budget needs {expected:?}");
    let t = metrics.telemetry().statsd;
    assert_eq!(t.last_flush_packets as usize, got.len());
    assert_eq!(t.last_flush_bytes as usize, total);
    assert_eq!(t.pacing_budget_exceeded, 0);
    assert!(t.largest_burst_packets <= 17, "largest burst {}", t.largest_burst_packets);
    assert!(t.last_flush_send_micros >= expected.as_micros() as u64);
}

#[test]
fn a_flush_the_budget_cannot_carry_in_time_is_spread_over_the_window_and_counted() {
    let rx = TimedReceiver::bind();
    // 1 byte/ms would need over a minute for these ~100 kB: the flush is spread over 80 % of
    // its 1 s interval instead.
    let metrics = builder(&rx.addr)
        .with_statsd_flush_interval(Duration::from_secs(1))
        .with_setting("statsd.pacing_bytes_per_ms", "1")
        .build()
        .unwrap();
    record(&metrics, "window.latency", 40, 60);
    rx.wait_lines(2400);
    let got = rx.take();
    let span = got.last().unwrap().at - got[0].at;
    assert!(span >= Duration::from_millis(400), "sent within {span:?}: not spread");
    assert!(span <= Duration::from_millis(1500), "took {span:?}: past the window");
    assert!(metrics.telemetry().statsd.pacing_budget_exceeded >= 1);
}

#[test]
fn unpaced_budget_zero_sends_the_flush_as_one_burst() {
    let rx = TimedReceiver::bind();
    let metrics = builder(&rx.addr)
        .with_statsd_flush_interval(Duration::from_secs(3600))
        .with_setting("statsd.pacing_bytes_per_ms", "0")
        .build()
        .unwrap();
    record(&metrics, "burst.latency", 10, 100);
    let _ = metrics.flush();
    rx.wait_lines(1000);
    let t = metrics.telemetry().statsd;
    assert_eq!(t.largest_burst_packets, t.last_flush_packets);
}

#[test]
fn series_are_interleaved_so_every_datagram_carries_a_line_of_each_series_in_turn() {
    let rx = TimedReceiver::bind();
    let metrics = builder(&rx.addr)
        .with_statsd_flush_interval(Duration::from_secs(3600))
        .with_setting("statsd.pacing_bytes_per_ms", "0")
        .build()
        .unwrap();
    record(&metrics, "mix.latency", 40, 50);
    let _ = metrics.flush();
    rx.wait_lines(2000);
    let got = rx.take();
    let mut per_series: BTreeMap<&str, BTreeSet<usize>> = BTreeMap::new();
    for (i, d) in got.iter().enumerate() {
        let lines: Vec<&str> = d.text.lines().collect();
        let distinct: BTreeSet<&str> = lines.iter().map(|l| series_of(l)).collect();
        assert_eq!(distinct.len(), lines.len().min(40), "datagram {i}: {lines:?}");
        for l in lines {
            per_series.entry(series_of(l)).or_default().insert(i);
        }
    }
    // Losing any one datagram takes at most a few samples of a series, never a whole series.
    assert_eq!(per_series.len(), 40);
    for (s, datagrams) in per_series {
        assert!(datagrams.len() >= 10, "series {s} in only {} datagrams", datagrams.len());
    }
}

#[test]
fn unix_datagrams_respect_the_size_limit_and_an_oversize_line_is_dropped_and_counted() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("statsd.sock");
    let rx = dualmetrics_testkit::StatsdReceiver::bind_unix(&path);
    let metrics = builder(&format!("unix://{}", path.display()))
        .with_statsd_flush_interval(Duration::from_secs(3600))
        .with_statsd_max_packet_bytes(512)
        .build()
        .unwrap();
    record(&metrics, "unix.latency", 20, 20);
    let long = "x".repeat(600);
    metrics.counter("unix.requests").build().unwrap().add(1, &[("long", long.as_str())]);
    let _ = metrics.flush();
    let lines = rx.wait_for_lines(400, WAIT);
    assert_eq!(lines.len(), 400);
    assert!(
        rx.bytes() <= rx.datagrams() * 512,
        "{} bytes in {} datagrams",
        rx.bytes(),
        rx.datagrams()
    );
    assert!(rx.datagrams() >= (400 * 25 / 512) as u64);
    let t = metrics.telemetry().statsd;
    assert_eq!(t.lines_dropped_oversize, 1);
    assert_eq!(t.lines_sent, 400);
}

#[test]
fn value_packing_carries_many_samples_per_line_within_the_datagram_limit() {
    let rx = TimedReceiver::bind();
    let metrics = builder(&rx.addr)
        .with_statsd_flush_interval(Duration::from_secs(3600))
        .with_statsd_max_packet_bytes(400)
        .with_setting("statsd.value_packing", "true")
        .build()
        .unwrap();
    record(&metrics, "packed.latency", 4, 500);
    let _ = metrics.flush();
    let deadline = Instant::now() + WAIT;
    let mut values: BTreeMap<String, Vec<f64>> = BTreeMap::new();
    let mut datagrams = 0;
    while values.values().map(Vec::len).sum::<usize>() < 2000 {
        assert!(Instant::now() < deadline, "values missing: {values:?}");
        std::thread::sleep(Duration::from_millis(10));
        for d in rx.take() {
            datagrams += 1;
            assert!(d.text.len() <= 400, "datagram of {} bytes", d.text.len());
            for line in d.text.lines() {
                // packed.latency:v1:v2:...|ms|#service:...,s:NN
                let (head, rest) = line.split_once('|').unwrap();
                assert!(rest.starts_with("ms|#"), "{line}");
                let mut parts = head.split(':');
                assert_eq!(parts.next(), Some("packed.latency"));
                let vs: Vec<f64> = parts.map(|v| v.parse().unwrap()).collect();
                assert!(vs.len() > 1, "one value on a packed line: {line}");
                values.entry(series_of(line).to_owned()).or_default().extend(vs);
            }
        }
    }
    assert_eq!(values.len(), 4);
    for (s, vs) in &values {
        let mut vs = vs.clone();
        vs.sort_by(f64::total_cmp);
        let mut expected: Vec<f64> = (0..500).map(|i| (i % 500) as f64).collect();
        expected.sort_by(f64::total_cmp);
        assert_eq!(vs, expected, "series {s}");
    }
    // 2000 samples in a few datagrams, not one line per sample.
    assert!(datagrams < 40, "{datagrams} datagrams");
}

#[test]
fn a_timer_sample_rate_sends_that_share_of_samples_and_the_declared_rate_restores_the_count() {
    let rx = TimedReceiver::bind();
    let metrics = builder(&rx.addr)
        .with_statsd_flush_interval(Duration::from_secs(3600))
        .with_setting("statsd.pacing_bytes_per_ms", "0")
        .with_rule(Rule::matching("sampled.*").statsd_sample_rate(0.1))
        .build()
        .unwrap();
    let n = 20_000usize;
    record(&metrics, "sampled.latency", 1, n);
    let _ = metrics.flush();
    let t = metrics.telemetry().statsd;
    let sent = t.lines_sent as usize;
    rx.wait_lines(sent);
    assert_eq!(sent as u64 + t.samples_skipped_by_rate, n as u64);
    // Binomial(20000, 0.1): sd 42; 5 sd either side.
    assert!((1790..=2210).contains(&sent), "{sent} lines for 20000 samples at 0.1");
    let mut count = 0.0;
    for d in rx.take() {
        for line in d.text.lines() {
            let rate: f64 =
                line.split("|@").nth(1).unwrap().split('|').next().unwrap().parse().unwrap();
            assert_eq!(rate, 0.1, "{line}");
            count += 1.0 / rate;
        }
    }
    // What the daemon counts: each line for 1/rate samples.
    assert!((count - n as f64).abs() <= 2100.0, "daemon count {count} for {n} samples");
}

#[test]
fn a_sample_rate_outside_0_to_1_fails_at_startup_naming_the_rule() {
    let Err(err) =
        builder("127.0.0.1:9").with_rule(Rule::matching("x.*").statsd_sample_rate(1.5)).build()
    else {
        panic!("a sample rate of 1.5 was accepted");
    };
    let text = err.to_string();
    assert!(text.contains("statsd_sample_rate") && text.contains("1.5"), "{text}");
}

#[test]
fn distributions_are_sent_as_d_when_the_timer_type_says_so() {
    let rx = TimedReceiver::bind();
    let metrics = builder(&rx.addr)
        .with_statsd_flush_interval(Duration::from_secs(3600))
        .with_setting("statsd.timer_type", "d")
        .build()
        .unwrap();
    record(&metrics, "dist.latency", 1, 3);
    let _ = metrics.flush();
    rx.wait_lines(3);
    for d in rx.take() {
        for line in d.text.lines() {
            assert!(line.starts_with("dist.latency:") && line.contains("|d|#"), "{line}");
        }
    }
}
