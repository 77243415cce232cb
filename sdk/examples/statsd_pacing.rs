//! Measures what a StatsD daemon with default kernel buffers keeps up with: the SDK emits ms
//! histogram samples over many series at a fixed rate for a few seconds, with a given pacing
//! budget, and the run reports what the SDK sent and what the receiving socket dropped (the
//! `drops` column of `/proc/net/udp` for the daemon's port, and the host's `RcvbufErrors`).
//!
//! ```sh
//! STATSD=127.0.0.1:8125 RATE=20000 SECONDS=10 PACING=1432 FLUSH_MS=1000 \
//!   cargo run -p dualmetrics --release --example statsd_pacing
//! ```
//! Variables: `STATSD` (daemon address), `RATE` (samples/s), `SECONDS`, `SERIES` (tag sets, 40),
//! `PACING` (bytes/ms, 0 = unpaced), `FLUSH_MS` (SDK flush interval), `PACKING` (1 = DogStatsD
//! value packing, for receivers that accept it).
use std::time::{Duration, Instant};

use dualmetrics::{DualMetrics, Mode};

fn var(name: &str, default: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| default.to_owned())
}

/// The `drops` column of every UDP socket bound to `port` (`/proc/net/udp`, IPv4).
fn socket_drops(port: u16) -> u64 {
    let text = std::fs::read_to_string("/proc/net/udp").unwrap_or_default();
    let hex = format!(":{port:04X}");
    text.lines()
        .skip(1)
        .filter_map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            (f.get(1)?.ends_with(&hex)).then(|| f.last()?.parse::<u64>().ok())?
        })
        .sum()
}

/// The host's UDP `RcvbufErrors` (`/proc/net/snmp`).
fn rcvbuf_errors() -> u64 {
    let text = std::fs::read_to_string("/proc/net/snmp").unwrap_or_default();
    let mut udp = text.lines().filter(|l| l.starts_with("Udp:"));
    let (Some(h), Some(v)) = (udp.next(), udp.next()) else { return 0 };
    h.split_whitespace()
        .zip(v.split_whitespace())
        .find(|(k, _)| *k == "RcvbufErrors")
        .and_then(|(_, v)| v.parse().ok())
        .unwrap_or(0)
}

fn main() {
    let addr = var("STATSD", "127.0.0.1:8125");
    let port: u16 = addr.rsplit(':').next().unwrap().parse().expect("STATSD host:port");
    let rate: u64 = var("RATE", "20000").parse().unwrap();
    let seconds: u64 = var("SECONDS", "10").parse().unwrap();
    let series: usize = var("SERIES", "40").parse().unwrap();
    let pacing = var("PACING", "1432");
    let flush_ms = var("FLUSH_MS", "1000");
    let packing = var("PACKING", "0") == "1";
    let metrics = DualMetrics::builder()
        .ignore_env()
        .with_mode(Mode::Legacy)
        .with_statsd_address(&addr)
        .with_setting("statsd.pacing_bytes_per_ms", &pacing)
        .with_setting("statsd.flush_interval_ms", &flush_ms)
        .with_setting("statsd.value_packing", if packing { "true" } else { "false" })
        .with_setting("self_metrics", "false")
        .build()
        .expect("config");
    let run = std::process::id();
    let h = metrics.histogram(&format!("pacing{run}.latency")).with_unit("ms").build().unwrap();
    let tags: Vec<String> = (0..series).map(|i| format!("s{i:02}")).collect();
    let (drops0, rcv0) = (socket_drops(port), rcvbuf_errors());
    let start = Instant::now();
    let total = rate * seconds;
    for n in 0..total {
        // Paced by the clock: sample n is due at n / rate seconds.
        let due = Duration::from_secs_f64(n as f64 / rate as f64);
        while start.elapsed() < due {
            std::thread::sleep(Duration::from_micros(200));
        }
        let t = &tags[n as usize % series];
        h.record((n % 1000) as f64, &[("series", t.as_str())]);
    }
    metrics.shutdown(Duration::from_secs(30)).expect("flushed");
    // The daemon reads what is queued quickly; give it a moment before reading its socket.
    std::thread::sleep(Duration::from_millis(500));
    let t = metrics.telemetry().statsd;
    let (drops, rcv) = (socket_drops(port) - drops0, rcvbuf_errors() - rcv0);
    println!(
        "rate={rate}/s seconds={seconds} series={series} pacing={pacing}B/ms flush={flush_ms}ms packing={packing} \
         lines_sent={} packets={} bytes={} max_flush_packets={} largest_burst={} budget_exceeded={} \
         send_errors={}/{} socket_drops={drops} host_rcvbuf_errors={rcv} elapsed={:.1}s",
        t.lines_sent,
        t.packets_sent,
        t.bytes_sent,
        t.max_flush_packets,
        t.largest_burst_packets,
        t.pacing_budget_exceeded,
        t.send_errors_queue_full,
        t.send_errors_socket,
        start.elapsed().as_secs_f64()
    );
}
