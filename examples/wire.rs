//! Wire efficiency on the StatsD path (issue 6): 100k counter adds/s spread over 100 series
//! (3 tags each) for 3 s, paced in 1 ms batches; cadence alone (production sink: unbounded queue
//! and 512 B buffered UDP) vs dualmetrics in `legacy` mode (in-process aggregation, 1 s flush).
//! Each sender has its own real `testkit::StatsdReceiver`, which counts datagrams and bytes and
//! keeps the lines, so the totals are checked too (sum of counts = adds sent).
//!
//! `cargo run --release --example wire`
use std::time::{Duration, Instant};

use cadence::prelude::*;
use dualmetrics::Mode;
use dualmetrics_testkit::{parse_line, OtlpGrpcReceiver, StatsdReceiver};

#[path = "../benches/support/mod.rs"]
mod support;

const RATE: u64 = 100_000;
const SERIES: usize = 100;
const SECONDS: u64 = 3;

/// Calls `add(series_index)` `RATE` times per second for `SECONDS`, round-robin over the series.
fn drive(mut add: impl FnMut(usize)) -> (u64, Duration) {
    let per_ms = RATE / 1000;
    let start = Instant::now();
    let mut sent = 0u64;
    for ms in 0..SECONDS * 1000 {
        let due = start + Duration::from_millis(ms);
        while Instant::now() < due {
            std::hint::spin_loop();
        }
        for _ in 0..per_ms {
            add(sent as usize % SERIES);
            sent += 1;
        }
    }
    (sent, start.elapsed())
}

struct Figures {
    adds: u64,
    secs: f64,
    datagrams: u64,
    bytes: u64,
    lines: usize,
    total: f64,
}

fn settle(rx: &StatsdReceiver) -> Vec<String> {
    rx.quiet(Duration::from_millis(500))
}

fn summarize(rx: &StatsdReceiver, adds: u64, secs: f64) -> Figures {
    let lines = settle(rx);
    let total = lines.iter().map(|l| parse_line(l).value_f64()).sum();
    Figures { adds, secs, datagrams: rx.datagrams(), bytes: rx.bytes(), lines: lines.len(), total }
}

fn main() {
    let values: Vec<String> = (0..SERIES).map(|i| format!("s{i:03}")).collect();

    // cadence alone.
    let rx_cadence = StatsdReceiver::bind_udp();
    let (client, q) = support::cadence_production(rx_cadence.local_addr());
    let (adds, took) = drive(|i| {
        client
            .count_with_tags("wire.counter", 1u64)
            .with_tag("route", "/cart")
            .with_tag("code", "200")
            .with_tag("series", &values[i])
            .send()
    });
    let left = support::wait_drained(&q, Duration::from_secs(30));
    let _ = client.flush();
    drop(client);
    drop(q); // the worker's buffered sink flushes its last partial datagram on drop
    let cad = summarize(&rx_cadence, adds, took.as_secs_f64());
    if left > 0 {
        eprintln!("cadence queue still held {left} metrics after 30 s");
    }

    // dualmetrics, legacy mode.
    let rx_dm = StatsdReceiver::bind_udp();
    let otlp = OtlpGrpcReceiver::start();
    let dm = support::dualmetrics(Mode::Legacy, rx_dm.local_addr(), otlp.local_addr());
    let counter = dm.counter("wire.counter").build().unwrap();
    let tagsets: Vec<[(&str, &str); 3]> = values
        .iter()
        .map(|v| [("route", "/cart"), ("code", "200"), ("series", v.as_str())])
        .collect();
    let (adds, took) = drive(|i| counter.add(1, &tagsets[i]));
    dm.shutdown(Duration::from_secs(5)).expect("shutdown flushes the last interval");
    let ours = summarize(&rx_dm, adds, took.as_secs_f64());

    // Histogram side, same rate on ONE series: every sample is one line, up to the per-series
    // buffer limit per flush interval (statsd.max_samples_per_flush); the rest is dropped.
    let rx_h = StatsdReceiver::bind_udp();
    let dmh = support::dualmetrics(Mode::Legacy, rx_h.local_addr(), otlp.local_addr());
    let h =
        dmh.histogram("wire.latency").with_unit("ms").build().unwrap().bind(&tagsets[0]).unwrap();
    let (samples, htook) = drive(|i| h.record(i as f64));
    dmh.shutdown(Duration::from_secs(5)).expect("shutdown flushes the last interval");
    let hl = settle(&rx_h);
    let ht = dmh.telemetry();

    println!("| sender | adds | secs | datagrams | datagrams/s | bytes | bytes/s | lines | sum of counts |");
    println!("|---|---:|---:|---:|---:|---:|---:|---:|---:|");
    for (name, f) in [("cadence alone (production sink)", &cad), ("dualmetrics legacy", &ours)] {
        println!(
            "| {name} | {} | {:.2} | {} | {:.1} | {} | {:.0} | {} | {} |",
            f.adds,
            f.secs,
            f.datagrams,
            f.datagrams as f64 / f.secs,
            f.bytes,
            f.bytes as f64 / f.secs,
            f.lines,
            f.total
        );
    }
    let pr = cad.datagrams as f64 / ours.datagrams.max(1) as f64;
    let br = cad.bytes as f64 / ours.bytes.max(1) as f64;
    println!();
    println!(
        "packets: cadence / dualmetrics = {pr:.0}× fewer (target ≥ 100×: {}); bytes: {br:.0}× fewer",
        if pr >= 100.0 { "met" } else { "NOT met" }
    );
    println!(
        "counts intact at the receiver: cadence {} of {} ({}), dualmetrics {} of {} ({})",
        cad.total,
        cad.adds,
        if cad.total as u64 == cad.adds { "exact" } else { "LOST some" },
        ours.total,
        ours.adds,
        if ours.total as u64 == ours.adds { "exact" } else { "LOST some" }
    );
    println!(
        "histogram, dualmetrics legacy, {RATE}/s on one series for {:.2} s: {samples} samples recorded, \
         {} lines received in {} datagrams ({} bytes), {} samples dropped as over the per-interval buffer",
        htook.as_secs_f64(),
        hl.len(),
        rx_h.datagrams(),
        rx_h.bytes(),
        ht.statsd.samples_sampled_out
    );
}
