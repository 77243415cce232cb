//! `dualmetrics translate` as a user runs it: the real binary, arguments and standard input,
//! text and JSON output, exit codes 0 / 1 / 2.
use std::io::Write;
use std::process::{Command, Output, Stdio};

fn run(args: &[&str], stdin: &str) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_dualmetrics"))
        .arg("translate")
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn dualmetrics");
    child.stdin.take().unwrap().write_all(stdin.as_bytes()).unwrap();
    child.wait_with_output().unwrap()
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

#[test]
fn an_exact_target_prints_promql_legend_and_status_and_exits_0() {
    let out = run(&["sumSeries(stats.counters.shop.orders.count)"], "");
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let s = text(&out.stdout);
    assert!(s.contains("status: exact"), "{s}");
    assert!(s.contains("promql: sum(rate(shop_orders_total[$__rate_interval]) * 10)"), "{s}");
    assert!(s.contains("legend: sumSeries(stats.counters.shop.orders.count)"), "{s}");
    assert!(s.contains("values: sum across series of: count per 10s"), "{s}");
}

#[test]
fn a_batch_from_stdin_translates_every_target_despite_bad_ones_and_exits_2() {
    let input = "stats.gauges.q\nsumSeriez(stats.gauges.q)\n\nsumSeries(stats.gauges.q\nholtWintersForecast(stats.gauges.q)\nmovingAverage(stats.gauges.q, 5)\n";
    let out = run(&["--format", "json"], input);
    assert_eq!(out.status.code(), Some(2));
    let lines: Vec<serde_json::Value> = text(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).expect("one JSON object per line"))
        .collect();
    assert_eq!(lines.len(), 5, "one line per non-empty target");
    assert_eq!(lines[0]["status"], "exact");
    assert_eq!(lines[0]["promql"], "q");
    assert_eq!(lines[1]["pos"], 0);
    assert!(lines[1]["error"].as_str().unwrap().contains("unknown Graphite function `sumSeriez`"));
    assert_eq!(lines[2]["pos"], 9);
    assert!(lines[2]["error"].as_str().unwrap().contains("never closed"));
    assert_eq!(lines[3]["status"], "untranslatable");
    assert_eq!(lines[3]["function"], "holtWintersForecast");
    assert_eq!(lines[4]["status"], "approximate");
    assert_eq!(lines[4]["promql"], "avg_over_time(q[50s:10s])");
}

#[test]
fn text_errors_go_to_stderr_with_target_and_caret() {
    let out = run(&["alias(stats.gauges.q, 'x'"], "");
    assert_eq!(out.status.code(), Some(2));
    let e = text(&out.stderr);
    assert!(e.contains("target `alias(stats.gauges.q, 'x'`"), "{e}");
    assert!(e.contains("`(` at byte 5 is never closed"), "{e}");
    assert!(e.contains("\n       ^"), "caret under byte 5:\n{e}");
}

#[test]
fn an_untranslatable_target_without_errors_exits_1() {
    let out = run(&["stats.gauges.q", "stats.timers.api.latency.std"], "");
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    assert!(text(&out.stdout).contains("needs the individual timings"));
}

#[test]
fn a_mapping_file_turns_path_nodes_into_labels() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("m.yml");
    std::fs::write(&path, "mappings:\n- match: checkout.*.*.requests\n  name: checkout_requests\n  labels:\n    env: $1\n    host: $2\n").unwrap();
    let out = run(
        &[
            "--mapping",
            path.to_str().unwrap(),
            "stats.counters.checkout.{prod,stage}.web-1.requests.count",
        ],
        "",
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let s = text(&out.stdout);
    assert!(
        s.contains("promql: rate(checkout_requests_total{env=~\"prod|stage\", host=\"web-1\"}[$__rate_interval]) * 10"),
        "{s}"
    );
}

#[test]
fn a_mapping_with_a_bad_regex_is_an_error_naming_the_file_and_exits_2() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bad.yml");
    std::fs::write(&path, "mappings:\n- match: 'a\\.(b'\n  match_type: regex\n  name: x\n")
        .unwrap();
    let out = run(&["--mapping", path.to_str().unwrap(), "stats.gauges.q"], "");
    assert_eq!(out.status.code(), Some(2));
    let e = text(&out.stderr);
    assert!(e.contains("bad.yml") && e.contains("mappings[0]"), "{e}");
}
