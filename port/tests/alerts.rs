//! `alerts port` over the corpus: the rules it writes, and the real checkers — Prometheus
//! 2.53 loading every generated rule file (it refuses to start on a rule it rejects) and
//! `vmalert -dryRun` — on every file (lab binaries, gated like the other e2e tests).
use dualmetrics_port::alerts::cli::{exit_code, run_port, AlertsPortArgs};
use dualmetrics_port::alerts::rules::{self, RulesOptions};
use dualmetrics_port::alerts::{port_all, source, AlertError};
use dualmetrics_port::grafana::cli::ContextArgs;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

fn corpus(p: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/corpus").join(p)
}

fn port_corpus(out: &Path) -> dualmetrics_port::alerts::AlertsBatch {
    port_all(
        &[corpus("alerts"), corpus("dashboards/team/checkout-export.json")],
        out,
        &RulesOptions::default(),
    )
    .unwrap()
}

fn rule<'a>(b: &'a dualmetrics_port::alerts::AlertsBatch, name: &str) -> &'a rules::Rule {
    b.files
        .iter()
        .flat_map(|f| &f.alerts)
        .flat_map(|a| &a.rules)
        .find(|r| r.alert == name)
        .unwrap_or_else(|| panic!("no rule {name}"))
}

#[test]
fn rate_ratio_latency_and_absence_alerts_become_rules() {
    let out = tempfile::tempdir().unwrap();
    let b = port_corpus(out.path());
    assert!(b.failures.is_empty(), "{:?}", b.failures);
    let r = rule(&b, "CheckoutRequestRateLow");
    assert_eq!(
        r.expr,
        "avg_over_time((sum(rate(checkout_requests_total{env=\"prod\"}[1m]) * 10))[5m:10s]) < 5"
    );
    assert_eq!(r.for_.as_deref(), Some("10m"));
    assert_eq!(r.labels["team"], "payments");
    assert_eq!(r.annotations["summary"], "Checkout gets fewer requests than usual");
    assert!(r.annotations["graphite_target"].starts_with("sumSeries(seriesByTag("));
    let r = rule(&b, "CheckoutErrorRatioHigh");
    assert!(
        r.expr.starts_with("avg_over_time((100 * ") && r.expr.ends_with(")[5m:10s]) > 5"),
        "{}",
        r.expr
    );
    let r = rule(&b, "CheckoutLatencyP90High");
    assert!(
        r.expr.starts_with("max_over_time((histogram_quantile(0.9, ")
            && r.expr.ends_with("[10m:10s]) >= 250"),
        "{}",
        r.expr
    );
    let r = rule(&b, "CheckoutQueueDepthOutOfRange");
    assert_eq!(r.expr, "(checkout_queue_depth < 0) or (checkout_queue_depth > 800)");
    let r = rule(&b, "CheckoutRequestsMissing");
    assert_eq!(r.expr, "absent_over_time((sum(rate(checkout_requests_total[1m]) * 10))[10m:10s])");
    // untranslatable: listed with the reason, no rule
    let spread = b
        .files
        .iter()
        .flat_map(|f| &f.alerts)
        .find(|a| a.spec.name == "Checkout latency spread")
        .unwrap();
    assert_eq!(spread.status, "untranslatable");
    assert!(spread.rules.is_empty());
    assert!(spread.reasons[0].contains("needs the individual timings"), "{:?}", spread.reasons);
    // grouped by evaluation interval
    let text = std::fs::read_to_string(out.path().join("checkout-alerts.rules.yml")).unwrap();
    assert!(
        text.contains("name: checkout-alerts-1m") && text.contains("name: checkout-alerts-30s"),
        "{text}"
    );
}

#[test]
fn grafana_panel_alerts_keep_reducer_evaluator_for_frequency_and_no_data() {
    let out = tempfile::tempdir().unwrap();
    let b = port_corpus(out.path());
    let r = rule(&b, "QueueDepthHigh");
    assert_eq!(r.expr, "max_over_time((checkout_queue_depth{env=\"prod\"})[5m:10s]) > 800");
    let f = b.files.iter().find(|f| f.source.ends_with("checkout-export.json")).unwrap();
    let q = f.alerts.iter().find(|a| a.spec.name == "Queue depth high").unwrap();
    assert_eq!(
        q.spec.origin,
        "dashboard \"Checkout (exported)\", panel \"Queue depth per host\" (id 1)"
    );
    assert_eq!(q.spec.frequency, "1m");
    let ratio = rule(&b, "CheckoutErrorRatio");
    assert!(
        ratio.expr.starts_with("avg_over_time((sum(rate(checkout_errors_total[1m]) * 10) / "),
        "{}",
        ratio.expr
    );
    assert!(ratio.expr.ends_with(")[10m:10s]) > 0.05"), "{}", ratio.expr);
    assert_eq!(ratio.for_.as_deref(), Some("2m"));
    assert_eq!(ratio.annotations["grafana_execution_error_state"], "keep_state");
    // noDataState no_data on the queue alert: a NoData rule of its own
    let nd = rule(&b, "QueueDepthHighNoData");
    assert!(nd.expr.starts_with("absent_over_time(("), "{}", nd.expr);
    assert_eq!(nd.labels["grafana_state"], "no_data");
}

#[test]
fn reducers_and_evaluators_have_their_promql() {
    let spec =
        |reducer: &str, evaluator: &str, params: Vec<f64>, end: Option<&str>| source::AlertSpec {
            name: "x".into(),
            origin: "t".into(),
            conditions: vec![source::Condition {
                target: "stats.gauges.q".into(),
                ref_id: Some("A".into()),
                reducer: reducer.into(),
                window: "5m".into(),
                end_offset: end.map(str::to_owned),
                evaluator: evaluator.into(),
                params,
                operator: "and".into(),
            }],
            for_: None,
            frequency: "1m".into(),
            no_data: None,
            exec_error: None,
            labels: Default::default(),
            annotations: Default::default(),
            refs: Default::default(),
        };
    let o = RulesOptions::default();
    let e = |s: source::AlertSpec| {
        let r = rules::port(&s, &o);
        r.rules.first().unwrap_or_else(|| panic!("{:?}", r.reasons)).expr.clone()
    };
    assert_eq!(e(spec("min", "lt", vec![1.0], None)), "min_over_time((q)[5m:10s]) < 1");
    assert_eq!(
        e(spec("sum", "gt", vec![1.0], Some("1m"))),
        "sum_over_time((q)[5m:10s] offset 1m) > 1"
    );
    assert_eq!(e(spec("count", "gt", vec![1.0], None)), "count_over_time((q)[5m:10s]) > 1");
    assert_eq!(
        e(spec("median", "gt", vec![2.5], None)),
        "quantile_over_time(0.5, (q)[5m:10s]) > 2.5"
    );
    assert_eq!(e(spec("last", "within_range", vec![5.0, 1.0], None)), "q > 1 < 5");
    assert_eq!(
        e(spec("diff", "gt", vec![0.0], None)),
        "(q) - last_over_time((q)[10s:10s] offset 5m) > 0"
    );
    assert_eq!(rules::port(&spec("diff", "gt", vec![0.0], None), &o).status, "approximate");
    assert_eq!(e(spec("avg", "absent", vec![], None)), "absent_over_time((q)[5m:10s])");
    let bad = rules::port(&spec("percent_diff", "gt", vec![0.0], None), &o);
    assert_eq!(bad.status, "untranslatable");
    assert!(bad.reasons[0].starts_with("refId A: the reducer `percent_diff`"), "{:?}", bad.reasons);
    assert_eq!(rules::alert_name("5xx rate / host"), "Alert5xxRateHost");
}

#[test]
fn a_bad_alerts_file_is_named_and_exits_2_when_nothing_was_written() {
    let e = dualmetrics_port::alerts::read(&corpus("bad/bad-alerts.yml")).unwrap_err();
    assert!(matches!(&e, AlertError::Invalid { alert, .. } if alert == "Wrong condition"));
    assert!(e.to_string().contains("bad-alerts.yml: alert Wrong condition: condition `~>`"), "{e}");
    let e = source::parse_yaml("alerts: [ {name: x", "f.yml").unwrap_err();
    assert!(e.to_string().starts_with("f.yml: "), "{e}");
    let out = tempfile::tempdir().unwrap();
    let args = |inputs: Vec<PathBuf>| AlertsPortArgs {
        inputs,
        out: out.path().to_path_buf(),
        rate_interval: "1m".into(),
        report: None,
        context: ContextArgs {
            catalog: None,
            flush_interval: 10.0,
            legacy_namespace: false,
            global_prefix: "stats".into(),
            no_prometheus_naming: false,
            mapping: None,
        },
    };
    let (mut o, mut er) = (Vec::new(), Vec::new());
    assert_eq!(run_port(&args(vec![corpus("bad/bad-alerts.yml")]), &mut o, &mut er), 2);
    let (mut o, mut er) = (Vec::new(), Vec::new());
    let code = run_port(
        &args(vec![corpus("bad/bad-alerts.yml"), corpus("alerts/checkout-alerts.yml")]),
        &mut o,
        &mut er,
    );
    assert_eq!(code, 1, "{}", String::from_utf8_lossy(&o));
    let b = port_corpus(out.path());
    assert_eq!(exit_code(&b), 1, "one alert is untranslatable");
}

// ---- the real checkers -------------------------------------------------------------------

fn lab_bin(name: &str) -> Option<PathBuf> {
    let lab = dualmetrics_testkit::lab::e2e_lab()?;
    let prefix = lab.var("LAB_PREFIX").unwrap_or("/opt/dualmetrics-lab").to_owned();
    let p = Path::new(&prefix).join("root/usr/bin").join(name);
    assert!(p.exists(), "the lab's {name} is missing at {}", p.display());
    Some(p)
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

fn http_get(port: u16, path: &str) -> Option<String> {
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    write!(s, "GET {path} HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n").ok()?;
    let mut text = String::new();
    s.read_to_string(&mut text).ok()?;
    text.split_once("\r\n\r\n").map(|(_, b)| b.to_owned())
}

struct Proc(Child);
impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.0.kill(); // by its own handle (PID), never by name
        let _ = self.0.wait();
    }
}

/// Starts Prometheus with `files` as rule files; returns the loaded rule count, or the
/// error Prometheus exits with.
fn prometheus_loads(bin: &Path, files: &[PathBuf]) -> Result<usize, String> {
    let dir = tempfile::tempdir().unwrap();
    let list: Vec<String> = files.iter().map(|f| format!("  - {}", f.display())).collect();
    let cfg = dir.path().join("prometheus.yml");
    std::fs::write(
        &cfg,
        format!("global:\n  evaluation_interval: 1m\nrule_files:\n{}\n", list.join("\n")),
    )
    .unwrap();
    let port = free_port();
    let log = dir.path().join("log");
    let mut p = Proc(
        Command::new(bin)
            .arg(format!("--config.file={}", cfg.display()))
            .arg(format!("--storage.tsdb.path={}", dir.path().join("data").display()))
            .arg(format!("--web.listen-address=127.0.0.1:{port}"))
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .unwrap(),
    );
    let deadline = Instant::now() + Duration::from_secs(60);
    while Instant::now() < deadline {
        if let Some(status) = p.0.try_wait().unwrap() {
            let text = std::fs::read_to_string(&log).unwrap_or_default();
            let err =
                text.lines().filter(|l| l.contains("level=error")).collect::<Vec<_>>().join("\n");
            return Err(format!("prometheus exited ({status}): {err}"));
        }
        if let Some(body) = http_get(port, "/api/v1/rules") {
            if let Ok(v) = serde_json::from_str::<serde_json::Value>(&body) {
                let groups = v["data"]["groups"].as_array().cloned().unwrap_or_default();
                if !groups.is_empty() {
                    return Ok(groups
                        .iter()
                        .map(|g| g["rules"].as_array().map_or(0, Vec::len))
                        .sum());
                }
            }
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    Err("prometheus did not answer /api/v1/rules within 60 s".into())
}

#[test]
fn prometheus_and_vmalert_accept_every_generated_rule_file() {
    let (Some(prom), Some(vmalert)) = (lab_bin("prometheus"), lab_bin("vmalert")) else {
        eprintln!("skipped: DUALMETRICS_E2E not set");
        return;
    };
    let out = tempfile::tempdir().unwrap();
    let b = port_corpus(out.path());
    let files: Vec<PathBuf> =
        b.files.iter().filter_map(|f| f.output.as_ref().map(PathBuf::from)).collect();
    assert_eq!(files.len(), 2);
    let expected: usize = b.files.iter().flat_map(|f| &f.alerts).map(|a| a.rules.len()).sum();
    assert_eq!(prometheus_loads(&prom, &files), Ok(expected));
    for f in &files {
        let o = Command::new(&vmalert)
            .arg("-dryRun")
            .arg(format!("-rule={}", f.display()))
            .output()
            .unwrap();
        assert!(
            o.status.success(),
            "vmalert rejects {}: {}",
            f.display(),
            String::from_utf8_lossy(&o.stderr)
        );
    }
    // the checks have teeth: a rule Prometheus rejects stops it, vmalert fails too
    let bad = out.path().join("bad.rules.yml");
    std::fs::write(&bad, "groups:\n- name: g\n  rules:\n  - alert: Bad Name\n    expr: up > \n")
        .unwrap();
    let e = prometheus_loads(&prom, std::slice::from_ref(&bad)).unwrap_err();
    assert!(e.contains("bad.rules.yml"), "{e}");
    let o = Command::new(&vmalert)
        .arg("-dryRun")
        .arg(format!("-rule={}", bad.display()))
        .output()
        .unwrap();
    assert!(!o.status.success());
}
