//! Each concept example runs to completion on its in-process receivers and prints what both
//! pipelines received. The binaries come from `cargo test` (which builds examples); when only this
//! test was selected they are built first.
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// Longest an example may run (they take about a second each).
const RUN_LIMIT: Duration = Duration::from_secs(120);

fn example_path(name: &str) -> PathBuf {
    let exe = std::env::current_exe().expect("test binary path");
    // target/<profile>/deps/examples_run-<hash> → target/<profile>/examples/<name>
    let dir = exe.parent().and_then(|d| d.parent()).expect("target profile dir").join("examples");
    dir.join(format!("{name}{}", std::env::consts::EXE_SUFFIX))
}

/// Runs example `name` and returns its stdout; fails on a non-zero exit or a hang.
fn run(name: &str) -> String {
    let path = example_path(name);
    if !path.exists() {
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
        let status = Command::new(cargo)
            .args(["build", "-p", "dualmetrics-cli", "--example", name])
            .status()
            .expect("run cargo build");
        assert!(status.success(), "building example {name} failed");
    }
    let mut child = Command::new(&path)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("start {}: {e}", path.display()));
    let deadline = Instant::now() + RUN_LIMIT;
    while child.try_wait().expect("poll example").is_none() {
        if Instant::now() > deadline {
            child.kill().ok();
            panic!("example {name} still running after {RUN_LIMIT:?}");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let out = child.wait_with_output().expect("example output");
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "example {name} exited with {}\nstdout:\n{stdout}\nstderr:\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
}

fn assert_prints(name: &str, out: &str, expected: &[&str]) {
    for e in expected {
        assert!(out.contains(e), "example {name} did not print {e:?}; it printed:\n{out}");
    }
}

#[test]
fn bound_handles_example_lands_bound_and_unbound_emits_in_one_series() {
    let out = run("bound_handles");
    assert_prints("bound_handles", &out, &["bound   add:", "http.requests:2000000|c|"]);
}

#[test]
fn cutover_example_keeps_otlp_total_through_the_rollback() {
    let out = run("cutover");
    let row = |phase: &str| {
        out.lines()
            .find(|l| l.starts_with(phase))
            .map(|l| l.split_whitespace().rev().take(2).collect::<Vec<_>>())
            .unwrap_or_else(|| panic!("no {phase} row in:\n{out}"))
    };
    // [otlp total, statsd this phase]
    assert_eq!(row("legacy "), ["-", "10"]);
    assert_eq!(row("dual "), ["Int(10)", "10"]);
    assert_eq!(row("otlp "), ["Int(20)", "0"]);
    assert_eq!(row("rollback to legacy"), ["Int(20)", "10"]);
}

#[test]
fn rules_example_pins_renames_and_sets_delta() {
    let out = run("rules");
    assert_prints(
        "rules",
        &out,
        &["old_app.queue_len:12|g", "shop.cart.items{", "Delta = 5", "rule=cart.*"],
    );
    assert!(!out.contains("cart.items:3|c"), "cart.items is pinned to OTLP:\n{out}");
}

#[test]
fn metrics_rs_example_dual_emits_macros() {
    let out = run("metrics_rs");
    assert_prints(
        "metrics_rs",
        &out,
        &[
            "http_requests_total:8|c|#service:checkout,route:/cart,code:200",
            "http.server.duration:500|ms|",
            "queue.depth{service=\"checkout\"} Gauge = 5",
            "dropped by the adapter: 0",
        ],
    );
}

#[test]
fn cadence_example_dual_emits_client_calls_without_double_prefix() {
    let out = run("cadence");
    assert_prints(
        "cadence",
        &out,
        &[
            "checkout.http.requests:8|c|#service:checkout,route:/cart,code:200",
            "http.requests{code=\"200\",route=\"/cart\",service=\"checkout\"}",
            "dropped by the adapter (the set): 1",
        ],
    );
}

#[test]
fn shim_sidecar_example_tees_and_exports_totals() {
    let out = run("shim_sidecar");
    assert_prints(
        "shim_sidecar",
        &out,
        &[
            "legacy.jobs.done:1|c|#queue:mail",
            "legacy.jobs.done{queue=\"mail\"} Sum { monotonic: true } Cumulative = 10",
            "21 lines, 21 tee datagrams",
        ],
    );
}
