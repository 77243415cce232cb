//! `dualmetrics demo` end to end: the built binary runs the whole story (embedded StatsD daemon
//! and OTLP store on 127.0.0.1:0, the service through legacy → dual → otlp, the comparator over
//! the dual window) with short phases; the JSON report it writes is read back.
//!
//! The last test points the demo at the real lab instead (statsd 0.9.0 → VictoriaMetrics for
//! the legacy side, rotel → VictoriaMetrics for the new side); it runs only with
//! `DUALMETRICS_E2E=1`, like tests/sdk_dual_e2e.rs.
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::Value;

/// Shortest phases the demo accepts: each run takes about 20 s.
const PHASE_SECS: &str = "4";

/// The pairs the demo's service produces, generated from its catalog.
const PAIRS: [&str; 9] = [
    "cart.items_added",
    "cpu.temperature",
    "http.latency.count",
    "http.latency.sum",
    "http.latency.mean",
    "http.latency.upper",
    "http.latency.upper_90",
    "http.requests",
    "queue.depth",
];

fn out_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("dualmetrics-demo-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    dir
}

fn demo(out: &Path, extra: &[&str]) -> Output {
    demo_with_phases(out, PHASE_SECS, extra)
}

fn demo_with_phases(out: &Path, phase_secs: &str, extra: &[&str]) -> Output {
    let out_arg = out.to_str().expect("utf-8 temp dir");
    let mut args = vec!["demo", "--phase-secs", phase_secs, "--out", out_arg];
    args.extend_from_slice(extra);
    Command::new(env!("CARGO_BIN_EXE_dualmetrics"))
        .args(&args)
        .output()
        .expect("run the dualmetrics binary")
}

fn report(out: &Path) -> Value {
    let text = std::fs::read_to_string(out.join("report.json")).expect("report.json written");
    serde_json::from_str(&text).expect("report.json is JSON")
}

fn verdicts(report: &Value) -> Vec<(String, String, u64)> {
    report["pairs"]
        .as_array()
        .expect("pairs array")
        .iter()
        .map(|p| {
            (
                p["name"].as_str().unwrap_or_default().to_owned(),
                p["verdict"].as_str().unwrap_or_default().to_owned(),
                p["points_compared"].as_u64().unwrap_or(0),
            )
        })
        .collect()
}

fn explain(output: &Output) -> String {
    format!(
        "exit {:?}\nstdout:\n{}\nstderr:\n{}",
        output.status.code(),
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

#[test]
fn demo_on_embedded_backends_exits_0_with_every_pair_equivalent() {
    let out = out_dir("clean");
    let output = demo(&out, &[]);
    assert_eq!(output.status.code(), Some(0), "{}", explain(&output));
    let r = report(&out);
    let rows = verdicts(&r);
    let names: Vec<&str> = rows.iter().map(|(n, _, _)| n.as_str()).collect();
    assert_eq!(names, PAIRS, "{}", explain(&output));
    for (name, verdict, points) in &rows {
        assert_eq!(verdict, "equivalent", "{name}: {}", explain(&output));
        assert!(*points > 0, "{name} compared no point: {}", explain(&output));
    }
    assert_eq!(r["summary"]["equivalent"], 9);
    assert_eq!(r["exit_code"], 0);
    // The story is told: phases, the table, where the reports are.
    let stdout = String::from_utf8_lossy(&output.stdout);
    for needle in ["phase legacy", "phase dual", "phase otlp", "9 equivalent", "HTML report:"] {
        assert!(stdout.contains(needle), "missing {needle:?} in\n{stdout}");
    }
    let html = std::fs::read_to_string(out.join("report.html")).expect("report.html written");
    assert!(html.contains("http.requests") && html.contains("<svg"), "HTML report has charts");
    let catalog: Value = serde_json::from_str(
        &std::fs::read_to_string(out.join("catalog.json")).expect("catalog.json written"),
    )
    .expect("catalog is JSON");
    assert_eq!(catalog["instruments"].as_array().map(Vec::len), Some(5));
    // The sample dashboard and alert are ported; the embedded stores cannot validate them.
    let ported: Value = serde_json::from_str(
        &std::fs::read_to_string(out.join("ported/dashboards/service-overview.json"))
            .expect("ported dashboard written"),
    )
    .expect("ported dashboard is JSON");
    let exprs: Vec<&str> = ported["panels"]
        .as_array()
        .expect("panels")
        .iter()
        .flat_map(|p| p["targets"].as_array().into_iter().flatten())
        .filter_map(|t| t["expr"].as_str())
        .collect();
    assert_eq!(exprs.len(), 6, "{exprs:?}");
    assert!(exprs.iter().any(|e| e.contains("histogram_quantile(0.9")), "{exprs:?}");
    let rules = std::fs::read_to_string(out.join("ported/alerts/checkout.rules.yml"))
        .expect("ported rules written");
    assert!(rules.contains("alert: CheckoutErrorRatioHigh"), "{rules}");
    for needle in ["5 exact, 1 approximate", "not validated on the embedded stores"] {
        assert!(stdout.contains(needle), "missing {needle:?} in\n{stdout}");
    }
}

#[test]
fn injected_double_count_shows_http_requests_divergent_and_exits_1() {
    let out = out_dir("double");
    let output = demo(&out, &["--inject-fault", "double-count"]);
    assert_eq!(output.status.code(), Some(1), "{}", explain(&output));
    let r = report(&out);
    let requests = r["pairs"]
        .as_array()
        .and_then(|p| p.iter().find(|p| p["name"] == "http.requests"))
        .expect("http.requests pair");
    assert_eq!(requests["verdict"], "divergent", "{}", explain(&output));
    let why = requests["explanation"].as_str().unwrap_or_default();
    // "new side is 2.0× legacy": the factor is measured over the window, so a flush landing on
    // the window's edge moves it a little off 2 on a loaded machine (2.1× seen in CI).
    let factor: f64 = why
        .split_once("new side is ")
        .and_then(|(_, rest)| rest.split_once('×'))
        .and_then(|(f, _)| f.trim().parse().ok())
        .unwrap_or_else(|| panic!("explanation {why:?} names a factor"));
    assert!((1.8..=2.2).contains(&factor), "explanation {why:?} names the doubling");
    // Only the faulty instrument diverges.
    for (name, verdict, _) in verdicts(&r) {
        if name != "http.requests" {
            assert_eq!(verdict, "equivalent", "{name}: {}", explain(&output));
        }
    }
}

#[test]
fn injected_unit_fault_shows_latency_pairs_divergent_by_a_thousand() {
    let out = out_dir("unit");
    let output = demo(&out, &["--inject-fault", "unit"]);
    assert_eq!(output.status.code(), Some(1), "{}", explain(&output));
    let r = report(&out);
    for (name, verdict, _) in verdicts(&r) {
        let expected = match name.as_str() {
            "http.latency.sum" | "http.latency.mean" | "http.latency.upper" => "divergent",
            "http.latency.upper_90" => "divergent",
            _ => "equivalent",
        };
        assert_eq!(verdict, expected, "{name}: {}", explain(&output));
    }
    let mean = r["pairs"]
        .as_array()
        .and_then(|p| p.iter().find(|p| p["name"] == "http.latency.mean"))
        .expect("mean pair");
    let why = mean["explanation"].as_str().unwrap_or_default();
    assert!(why.contains("1000"), "explanation {why:?} points at units");
}

#[test]
fn real_statsd_without_its_query_api_is_refused_with_exit_2() {
    let out = out_dir("badflags");
    let output = demo(&out, &["--statsd", "127.0.0.1:8125"]);
    assert_eq!(output.status.code(), Some(2), "{}", explain(&output));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("--statsd") && stderr.contains("--legacy-query"), "{stderr}");
}

#[test]
fn demo_against_the_real_lab_finds_every_pair_equivalent() {
    let Some(lab) = dualmetrics_testkit::lab::e2e_lab() else { return };
    let out = out_dir("lab");
    let vm = lab.vm_url();
    let statsd = lab.statsd_addr().to_string();
    let otlp = lab.rotel_grpc_endpoint();
    let output = demo_with_phases(
        &out,
        "20",
        &[
            "--statsd",
            &statsd,
            "--legacy-query",
            &vm,
            // PromQL over the Graphite names: VictoriaMetrics' render API repeats the last
            // value of a series that stopped (a timer's `sum` after the service pauses) for a
            // few steps, which per-flush `sum` pairs would count again.
            "--legacy-api",
            "prometheus",
            "--otlp",
            &otlp,
            "--new-query",
            &vm,
            // VictoriaMetrics behind rotel keeps OTel names as they are.
            "--new-naming",
            "otel",
        ],
    );
    assert_eq!(output.status.code(), Some(0), "{}", explain(&output));
    for (name, verdict, points) in verdicts(&report(&out)) {
        assert_eq!(verdict, "equivalent", "{name}: {}", explain(&output));
        assert!(points > 0, "{name}");
    }
    // The sample dashboard, ported, validates on the dual window: every exact target
    // equivalent, none divergent; the alert's backtest agrees.
    let read = |f: &str| -> Value {
        serde_json::from_str(&std::fs::read_to_string(out.join(f)).expect(f)).expect(f)
    };
    let dashboards = read("dashboards-validation.json");
    let targets: Vec<(String, String)> = dashboards["dashboards"][0]["panels"]
        .as_array()
        .expect("panels")
        .iter()
        .flat_map(|p| p["targets"].as_array().into_iter().flatten())
        .map(|t| {
            (
                t["status"].as_str().unwrap_or("").to_owned(),
                t["verdict"].as_str().unwrap_or("").to_owned(),
            )
        })
        .collect();
    assert_eq!(targets.len(), 6, "{}", explain(&output));
    for (status, verdict) in &targets {
        assert_ne!(verdict, "divergent", "{}", explain(&output));
        if status == "exact" {
            assert_eq!(verdict, "equivalent", "{}", explain(&output));
        }
    }
    let alerts = read("alerts-validation.json");
    assert_eq!(alerts["alerts"][0]["verdict"], "equivalent", "{}", explain(&output));
}
