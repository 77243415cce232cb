//! Reads the medians of the last `cargo bench --bench hot_path` run
//! (`target/criterion/<group>/<case>/new/estimates.json`) and prints the table and the issue-6
//! target ratios as Markdown.
//!
//! `cargo bench --bench hot_path && cargo run --release --example bench_report`
use std::path::PathBuf;

fn criterion_dir() -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target"));
    target.join("criterion")
}

/// Median point estimate (ns) of `group/case`, if that case ran.
fn median(group: &str, case: &str) -> Option<f64> {
    let path = criterion_dir().join(group).join(case).join("new").join("estimates.json");
    let text = std::fs::read_to_string(path).ok()?;
    let v: serde_json::Value = serde_json::from_str(&text).ok()?;
    v["median"]["point_estimate"].as_f64()
}

const GROUPS: &[&str] = &[
    "floor",
    "cadence",
    "cadence_nop",
    "otel",
    "naive_dual",
    "naive_dual_nop",
    "fanout",
    "dm_legacy",
    "dm_otlp",
    "dm_dual",
    "otel_delta",
    "dm_dual_delta",
];
const CASES: &[&str] = &[
    "atomic_fetch_add",
    "counter_3tags",
    "gauge_3tags",
    "histogram_3tags",
    "counter_bound",
    "gauge_bound",
    "histogram_bound",
    "counter_otel_bound",
    "counter_rotating",
    "counter_2threads",
];

fn main() {
    let dir = criterion_dir();
    if !dir.exists() {
        eprintln!(
            "no criterion results under {}: run `cargo bench --bench hot_path` first",
            dir.display()
        );
        std::process::exit(2);
    }
    println!("Criterion median point estimates, ns per call ({}):\n", dir.display());
    println!("| group | case | median ns |");
    println!("|---|---|---:|");
    for g in GROUPS {
        for c in CASES {
            if let Some(m) = median(g, c) {
                println!("| {g} | {c} | {m:.2} |");
            }
        }
    }

    println!("\n| ratio | value | target |");
    println!("|---|---:|---|");
    let mut missing = false;
    let mut ratio =
        |label: &str, num: (&str, &str), den: (&str, &str), target: Option<(bool, f64)>| match (
            median(num.0, num.1),
            median(den.0, den.1),
        ) {
            (Some(a), Some(b)) => {
                let r = a / b;
                let t = match target {
                    Some((le, x)) => {
                        let ok = if le { r <= x } else { r >= x };
                        format!(
                            "{} {x}× — {}",
                            if le { "≤" } else { "≥" },
                            if ok { "met" } else { "NOT met" }
                        )
                    }
                    None => "—".into(),
                };
                println!(
                    "| {label} (`{}/{}` {a:.1} ns ÷ `{}/{}` {b:.1} ns) | {r:.2}× | {t} |",
                    num.0, num.1, den.0, den.1
                );
            }
            _ => missing = true,
        };
    ratio(
        "unbound counter 3 tags: dual / OTel alone",
        ("dm_dual", "counter_3tags"),
        ("otel", "counter_3tags"),
        Some((true, 1.15)),
    );
    ratio(
        "bound counter: dual / atomic floor",
        ("dm_dual", "counter_bound"),
        ("floor", "atomic_fetch_add"),
        Some((true, 4.0)),
    );
    ratio(
        "histogram 3 tags: dual / OTel alone",
        ("dm_dual", "histogram_3tags"),
        ("otel", "histogram_3tags"),
        Some((true, 1.3)),
    );
    ratio(
        "gauge 3 tags: dual / OTel alone",
        ("dm_dual", "gauge_3tags"),
        ("otel", "gauge_3tags"),
        None,
    );
    ratio(
        "bound counter: dual / OTel bound",
        ("dm_dual", "counter_bound"),
        ("otel", "counter_bound"),
        None,
    );
    ratio(
        "bound histogram: dual / OTel bound",
        ("dm_dual", "histogram_bound"),
        ("otel", "histogram_bound"),
        None,
    );
    ratio(
        "counter 3 tags: dual / naive dual",
        ("dm_dual", "counter_3tags"),
        ("naive_dual", "counter_3tags"),
        None,
    );
    ratio(
        "histogram 3 tags: dual / naive dual",
        ("dm_dual", "histogram_3tags"),
        ("naive_dual", "histogram_3tags"),
        None,
    );
    ratio(
        "counter 3 tags: dual / naive dual (NopMetricSink)",
        ("dm_dual", "counter_3tags"),
        ("naive_dual_nop", "counter_3tags"),
        None,
    );
    ratio(
        "counter 3 tags: dual / cadence alone",
        ("dm_dual", "counter_3tags"),
        ("cadence", "counter_3tags"),
        None,
    );
    ratio(
        "counter 3 tags: dual / cadence NopMetricSink",
        ("dm_dual", "counter_3tags"),
        ("cadence_nop", "counter_3tags"),
        None,
    );
    ratio(
        "counter 3 tags: dual / metrics-rs Fanout",
        ("dm_dual", "counter_3tags"),
        ("fanout", "counter_3tags"),
        None,
    );
    ratio(
        "counter 3 tags: legacy / cadence alone",
        ("dm_legacy", "counter_3tags"),
        ("cadence", "counter_3tags"),
        None,
    );
    ratio(
        "counter 3 tags: otlp mode / OTel alone",
        ("dm_otlp", "counter_3tags"),
        ("otel", "counter_3tags"),
        None,
    );
    ratio(
        "counter 3 tags: dual / legacy",
        ("dm_dual", "counter_3tags"),
        ("dm_legacy", "counter_3tags"),
        None,
    );
    ratio(
        "naive dual counter 3 tags / OTel alone (anchor)",
        ("naive_dual", "counter_3tags"),
        ("otel", "counter_3tags"),
        None,
    );
    ratio(
        "OTel bound counter / atomic floor (anchor)",
        ("otel", "counter_bound"),
        ("floor", "atomic_fetch_add"),
        None,
    );
    // Issue 19: delta temporality beside OpenTelemetry alone asking for delta.
    for (label, case, target) in [
        (
            "delta unbound counter 3 tags: dual / OTel delta alone",
            "counter_3tags",
            Some((true, 1.0)),
        ),
        ("delta histogram 3 tags: dual / OTel delta alone", "histogram_3tags", Some((true, 1.0))),
        (
            "delta counter, 1,000 rotating tag sets: dual / OTel delta alone",
            "counter_rotating",
            Some((true, 1.0)),
        ),
        (
            "delta counter, 2 threads on one series: dual / OTel delta alone",
            "counter_2threads",
            None,
        ),
        ("delta bound counter: dual / OTel delta bound", "counter_bound", None),
    ] {
        ratio(label, ("dm_dual_delta", case), ("otel_delta", case), target);
    }
    for (label, case) in [
        ("cumulative counter, 1,000 rotating tag sets: dual / OTel alone", "counter_rotating"),
        ("cumulative counter, 2 threads on one series: dual / OTel alone", "counter_2threads"),
    ] {
        ratio(label, ("dm_dual", case), ("otel", case), None);
    }
    ratio(
        "delta / cumulative unbound counter, dual",
        ("dm_dual_delta", "counter_3tags"),
        ("dm_dual", "counter_3tags"),
        None,
    );
    if missing {
        eprintln!("some cases have no results yet (run the whole bench)");
    }
}
