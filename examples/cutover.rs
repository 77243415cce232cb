//! Cutover at runtime: one process moves legacy → dual → otlp with `set_mode`, then rolls back to
//! legacy, without a restart and without re-registering anything. After each phase it prints
//! what each pipeline received.
//!
//! ```text
//! cargo run --example cutover
//! ```
use std::time::Duration;

use dualmetrics::{DualMetrics, Mode};
use dualmetrics_testkit::{latest, OtlpGrpcReceiver, PointValue, StatsdReceiver};

const PER_PHASE: u64 = 10;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let statsd = StatsdReceiver::bind_udp();
    let otlp = OtlpGrpcReceiver::start();
    let metrics = DualMetrics::builder()
        .with_service_name("checkout")
        .with_statsd_address(&statsd.local_addr().to_string())
        .with_otlp_endpoint(&otlp.endpoint())
        .with_mode(Mode::Legacy) // where a fleet starts: StatsD only
        .build()?;
    // Registered once; its bound handle follows every switch (one relaxed load per emit).
    let orders = metrics.counter("orders.placed").build()?.bind(&[("shop", "eu")])?;

    println!("{:<22} {:>18} {:>22}", "phase", "statsd this phase", "otlp cumulative total");
    let phases = [
        ("legacy", Mode::Legacy),
        ("dual", Mode::Dual),
        ("otlp", Mode::Otlp),
        ("rollback to legacy", Mode::Legacy),
    ];
    for (label, mode) in phases {
        metrics.set_mode(mode);
        for _ in 0..PER_PHASE {
            orders.increment();
        }
        let seen = statsd.lines().len();
        metrics.flush()?;
        // StatsD: the flushed lines of this phase (none once StatsD is off).
        let lines = statsd.quiet(Duration::from_millis(300));
        let statsd_sum: u64 = lines[seen..]
            .iter()
            .filter_map(|l| {
                l.strip_prefix("orders.placed:")?.split('|').next()?.parse::<u64>().ok()
            })
            .sum();
        // OTLP: the cumulative total (unchanged while OTLP is off; no gap, no reset).
        let otlp_total = match latest(&otlp.points(), "orders.placed", &[("shop", "eu")]) {
            Some(p) if p.value != PointValue::Empty => format!("{:?}", p.value),
            _ => "-".to_owned(),
        };
        println!("{label:<22} {statsd_sum:>18} {otlp_total:>22}");
    }
    println!("\nmode now: {:?}; telemetry: {:?}", metrics.mode(), metrics.telemetry().statsd);
    metrics.shutdown(Duration::from_secs(5))?;
    Ok(())
}
