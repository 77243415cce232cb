//! The collector shim as a sidecar, for a service that cannot take the library: the legacy app
//! keeps sending raw StatsD (here with cadence over UDP) and only its target address changes to
//! the shim's. The shim tees every datagram unchanged to the legacy daemon and exports the same
//! measurements as cumulative OTLP.
//!
//! ```text
//!  legacy app ──StatsD/UDP──► shim ─┬─ tee (raw bytes) ──► legacy StatsD daemon
//!                                   └─ aggregate ─ OTLP ──► collector
//! cargo run --example shim_sidecar
//! ```
use std::net::UdpSocket;
use std::time::Duration;

use cadence::prelude::*;
use cadence::{StatsdClient, UdpMetricSink};
use dualmetrics_shim::{Shim, ShimConfig};
use dualmetrics_testkit::{latest, OtlpGrpcReceiver, Point, PointValue, StatsdReceiver};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    // Stand-ins for the legacy StatsD daemon and the OTLP collector.
    let daemon = StatsdReceiver::bind_udp();
    let collector = OtlpGrpcReceiver::start();

    // The shim, in process: UDP on 127.0.0.1:<any>, 100 ms aggregation windows.
    let mut config = ShimConfig::loopback();
    config.tee.target = Some(daemon.local_addr().to_string());
    config.export.endpoint = collector.endpoint();
    config.export.self_telemetry = false; // keep the printout to the app's metrics
                                          // A new counter's first export is its zero point (so rate() sees the first window); totals
                                          // follow once the hold has passed. Shortened here from its 3 s default.
    config.aggregate.zero_hold_ms = 200;
    let shim = Shim::bind(config)?;
    let shim_addr = shim.udp_addr().ok_or("the shim listens on UDP")?;
    let shim = shim.spawn();
    println!(
        "shim on udp://{shim_addr}, tee to {}, OTLP to {}",
        daemon.local_addr(),
        collector.endpoint()
    );

    // The legacy app: unchanged cadence code, pointed at the shim instead of the daemon.
    let socket = UdpSocket::bind("127.0.0.1:0")?;
    let client = StatsdClient::from_sink("legacy", UdpMetricSink::from(shim_addr, socket)?);
    for i in 0..10u64 {
        client.count_with_tags("jobs.done", 1).with_tag("queue", "mail").send();
        client.time("jobs.duration", 20 + i)?;
    }
    client.gauge("jobs.waiting", 7)?;

    println!("\n-- tee: what the legacy daemon received (byte for byte what the app sent)");
    for l in daemon.wait_for_lines(21, Duration::from_secs(5)).iter().take(4) {
        println!("  {l}");
    }
    println!("  ... 21 lines in all");

    println!("\n-- OTLP: what the collector received (cumulative totals, aggregated per window)");
    let done = |p: &[Point]| {
        let count = |m| match latest(p, m, &[]).map(|x| &x.value) {
            Some(PointValue::Histogram { count, .. }) => *count as f64,
            _ => latest(p, m, &[]).and_then(Point::as_f64).unwrap_or(0.0),
        };
        count("legacy.jobs.done") == 10.0
            && count("legacy.jobs.duration") == 10.0
            && count("legacy.jobs.waiting") == 7.0
    };
    let points = collector.wait_for(Duration::from_secs(5), done);
    for m in ["legacy.jobs.done", "legacy.jobs.duration", "legacy.jobs.waiting"] {
        println!("  {}", latest(&points, m, &[]).ok_or("no point")?);
    }

    let report = shim.shutdown()?;
    println!(
        "\nshim: {} lines, {} tee datagrams, {} exports",
        report.lines, report.tee_packets, report.exports
    );
    Ok(())
}
