//! Per-metric rules: one glob, several overrides. Here the `cart.*` metrics are pinned to OTLP
//! only and renamed there, `legacy.*` keeps its old StatsD name, and `http.*` gets delta
//! temporality, while the global mode stays `dual`. Rules come from code (`with_rule`) or from
//! `[[default.rules]]` / `[[env.<name>.rules]]` in the configuration file, first match wins.
//!
//! ```text
//! cargo run --example rules
//! ```
use std::time::Duration;

use dualmetrics::rules::Rule;
use dualmetrics::{DualMetrics, Mode};
use dualmetrics_testkit::{OtlpGrpcReceiver, StatsdReceiver};

/// The same rules as a configuration file would give them.
const CONFIG: &str = r#"
[default]
mode = "dual"

[[default.rules]]
match = "legacy.*"
statsd_name = "old_app.queue_len"   # the name dashboards already use

[[default.rules]]
match = "http.*"
temporality = "delta"
"#;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let statsd = StatsdReceiver::bind_udp();
    let otlp = OtlpGrpcReceiver::start();
    let metrics = DualMetrics::builder()
        .with_config_toml("rules.toml", CONFIG)
        // Code rules come first: this one moves the cart metrics to OTLP only, renamed.
        .with_rule(Rule::matching("cart.*").mode(Mode::Otlp).otel_name("shop.cart.items"))
        .with_service_name("checkout")
        .with_statsd_address(&statsd.local_addr().to_string())
        .with_otlp_endpoint(&otlp.endpoint())
        .build()?;

    metrics.counter("cart.items").build()?.add(3, &[]);
    metrics.gauge("legacy.queue").build()?.record(12.0, &[]);
    metrics.counter("http.requests").build()?.add(5, &[("route", "/cart")]);
    metrics.flush()?;

    println!("-- StatsD (cart.items is OTLP-only; legacy.queue keeps its old name)");
    let mut lines = statsd.wait_for_lines(2, Duration::from_secs(5));
    lines.sort();
    for l in &lines {
        println!("  {l}");
    }
    println!("\n-- OTLP (cart.items renamed; http.requests is delta)");
    for p in otlp.wait_for(Duration::from_secs(5), |p| p.len() >= 3) {
        println!("  {p}");
    }
    println!("\n-- catalog: each instrument with the rule that decided it");
    for i in metrics.catalog().instruments {
        println!(
            "  {:<14} statsd={:<18} otel={:<16} mode={:<6} temporality={} rule={}",
            i.name,
            i.statsd_name.as_deref().unwrap_or("-"),
            i.otel_name_or_name(),
            i.mode,
            i.temporality.as_deref().unwrap_or("-"),
            i.rule.as_deref().unwrap_or("-")
        );
    }
    metrics.shutdown(Duration::from_secs(5))?;
    Ok(())
}
