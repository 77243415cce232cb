//! `dashboards validate` / `alerts validate` on live data in the lab (gated by
//! `DUALMETRICS_E2E=1`): a workload goes through the real pipelines (StatsD into the shim; its
//! tee feeds the lab's statsd daemon → VictoriaMetrics Graphite, its OTLP export with a
//! mapping file goes through vmagent-prom into Prometheus). A dashboard is ported, then
//! validated: every exact target must be equivalent. Then faults are injected into copies of
//! the ported dashboard / the rules, and each must be caught (divergent) and named:
//! a label mapped to the wrong node, ms vs s, one host missing on the new side, an alert
//! threshold off by 10 %. Wall time: ~30 s of workload plus the comparisons.
use dualmetrics_compare::{
    CompareSettings, GraphiteAdapter, HttpConfig, PrometheusAdapter, TimeRange,
};
use dualmetrics_model::mapping::MappingFile;
use dualmetrics_port::alerts::{rules, source};
use dualmetrics_port::grafana::{dashboard, PortOptions};
use dualmetrics_port::validate::{alerts::backtest, validate_dashboards, ValidateOptions, Verdict};
use dualmetrics_port::Context;
use dualmetrics_shim::config::Protocol;
use dualmetrics_shim::{Shim, ShimConfig};
use dualmetrics_testkit::lab::{e2e_lab, poll_until, INGEST_TIMEOUT, POLL_INTERVAL};
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::net::UdpSocket;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

const RUN: Duration = Duration::from_secs(30);
const TICK: Duration = Duration::from_millis(10);
/// The lab daemon's flush interval (`STATSD_FLUSH_MS=1000`).
const FLUSH_SECS: f64 = 1.0;
const STEP: i64 = 2;
const WINDOW: &str = "10s";

fn unix_now() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs() as i64
}

fn cpu(host: &str, late: bool) -> f64 {
    let base = match host {
        "web1" => 10.0,
        "web2" => 20.0,
        _ => 60.0,
    };
    if late {
        base + 5.0
    } else {
        base
    }
}

fn packet(p: &str, late: bool) -> String {
    let mut l = Vec::new();
    for h in ["web1", "web2", "web3"] {
        l.push(format!("{p}.cpu:{}|g|#host:{h}", cpu(h, late)));
        l.push(format!("{p}.hits:2|c|#host:{h}"));
    }
    for (h, e, n) in [("web1", "a", 1), ("web2", "b", 3)] {
        l.push(format!("{p}.{h}.{e}.req:{n}|c"));
    }
    l.push(format!("{p}.lat:100|ms\n{p}.lat:300|ms"));
    l.join("\n")
}

fn mapping(p: &str, swapped: bool) -> String {
    let (a, b) = if swapped { ("$2", "$1") } else { ("$1", "$2") };
    format!("mappings:\n- match: {p}.*.*.req\n  name: {p}_req\n  labels:\n    host: \"{a}\"\n    endpoint: \"{b}\"\n")
}

fn panel(id: i64, title: &str, target: &str) -> Value {
    json!({"id": id, "type": "timeseries", "title": title, "datasource": {"type": "graphite", "uid": "g"},
           "targets": [{"refId": "A", "target": target}]})
}

fn dashboard(p: &str) -> Value {
    json!({"uid": format!("{p}-dash"), "title": format!("{p} service"), "panels": [
        panel(1, "CPU per host", &format!("aliasByTags(seriesByTag('name=stats.gauges.{p}.cpu'), 'host')")),
        panel(2, "Hits", &format!("sumSeries(seriesByTag('name=stats.counters.{p}.hits.count'))")),
        panel(3, "Requests web1", &format!("sumSeries(stats.counters.{p}.web1.*.req.count)")),
        panel(4, "Latency mean", &format!("seriesByTag('name=stats.timers.{p}.lat.mean')")),
        panel(5, "Latency spread", &format!("seriesByTag('name=stats.timers.{p}.lat.std')"))
    ]})
}

fn target<'a>(
    results: &'a [dualmetrics_port::validate::DashboardResult],
    panel: &str,
) -> &'a dualmetrics_port::validate::TargetResult {
    &results[0].panels.iter().find(|p| p.title == panel).unwrap().targets[0]
}

#[test]
fn ported_dashboards_and_alerts_validate_and_injected_faults_are_caught_and_named() {
    let Some(lab) = e2e_lab() else { return };
    let p = format!(
        "vl{}",
        SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_millis() % 100_000_000
    );
    let dir = tempfile::tempdir().unwrap();
    let mapping_path = dir.path().join("mapping.yml");
    std::fs::write(&mapping_path, mapping(&p, false)).unwrap();

    // 1. the workload through the real pipelines
    let mut cfg = ShimConfig::loopback();
    cfg.aggregate.flush_interval_ms = 500;
    cfg.export.protocol = Protocol::Http;
    cfg.export.endpoint = lab.prometheus_otlp_url();
    cfg.export.self_telemetry = false;
    cfg.tee.target = Some(lab.statsd_addr().to_string());
    cfg.mapping.file = Some(mapping_path.clone());
    let shim = Shim::bind(cfg).unwrap();
    let addr = shim.udp_addr().unwrap();
    let shim = shim.spawn();
    let sock = UdpSocket::bind("127.0.0.1:0").unwrap();
    let t0 = unix_now();
    let started = Instant::now();
    let mut next = started;
    while started.elapsed() < RUN {
        let late = started.elapsed() >= RUN / 2;
        sock.send_to(packet(&p, late).as_bytes(), addr).unwrap();
        next += TICK;
        std::thread::sleep(next.saturating_duration_since(Instant::now()));
    }
    let t_end = unix_now();
    let (prom, vm) = (lab.prometheus(), lab.vm());
    poll_until(INGEST_TIMEOUT, POLL_INTERVAL, || -> Result<(), String> {
        let legacy = vm
            .query_value(&format!(r#"max(timestamp({{__name__="stats.gauges.{p}.cpu"}}))"#))
            .map_err(|e| e.to_string())?
            .unwrap_or(0.0);
        let new = prom
            .query_value(&format!("max(timestamp({p}_cpu))"))
            .map_err(|e| e.to_string())?
            .unwrap_or(0.0);
        let want = (t_end - 1) as f64;
        if legacy >= want && new >= want {
            Ok(())
        } else {
            Err(format!("legacy {legacy}, new {new}, want {want}"))
        }
    })
    .unwrap();
    shim.shutdown().unwrap();

    // 2. port the dashboard (and, for the wrong-node fault, once more with a swapped mapping)
    let ctx = |m: &str| Context {
        flush_interval_secs: FLUSH_SECS,
        mapping: Some(MappingFile::parse(m, "mapping.yml").unwrap()),
        ..Context::default()
    };
    let port = |m: &str| {
        let opts = PortOptions { ctx: ctx(m), ..PortOptions::default() };
        dashboard::port(&dashboard(&p), "lab", &opts).unwrap().json
    };
    let good = port(&mapping(&p, false));
    let wrong_node = port(&mapping(&p, true));
    let ms_vs_s = {
        let mut d = good.clone();
        let e = d["panels"][3]["targets"][0]["expr"].as_str().unwrap().to_owned();
        d["panels"][3]["targets"][0]["expr"] = Value::String(format!("({e}) / 1000"));
        d
    };
    let host_missing = {
        let mut d = good.clone();
        let e = d["panels"][0]["targets"][0]["expr"]
            .as_str()
            .unwrap()
            .replace(&format!("{p}_cpu"), &format!("{p}_cpu{{host!=\"web3\"}}"));
        d["panels"][0]["targets"][0]["expr"] = Value::String(e);
        d
    };
    let write = |name: &str, d: &Value| {
        let sub = dir.path().join(name);
        std::fs::create_dir_all(&sub).unwrap();
        std::fs::write(sub.join("d.json"), serde_json::to_vec_pretty(d).unwrap()).unwrap();
        sub
    };

    // 3. validate through the comparator
    let url = |u: String| url::Url::parse(&u).unwrap();
    let legacy = GraphiteAdapter::new(HttpConfig::new(url(lab.vm_url())))
        .unwrap()
        .with_storage_step(Some(format!("{}s", FLUSH_SECS as i64)));
    let new = PrometheusAdapter::new(HttpConfig::new(url(lab.prometheus_url()))).unwrap();
    let start = (t0 + 15) / STEP * STEP;
    let opts = ValidateOptions {
        ctx: ctx(&mapping(&p, false)),
        settings: CompareSettings {
            range: TimeRange { start, end: t_end, step: STEP },
            skip_recent: 0,
            window_secs: 10,
            ..CompareSettings::default()
        },
        rate_interval: WINDOW.into(),
        vars: BTreeMap::new(),
    };
    let run = |name: &str, d: &Value| {
        validate_dashboards(&[write(name, d)], &legacy, &new, &opts, &mut |_, _| {}).unwrap()
    };
    let clean = run("clean", &good);
    for pn in &clean[0].panels {
        for t in &pn.targets {
            println!(
                "{:>14} {:>14} [{}] {}: {}\n    {}",
                t.verdict.as_str(),
                pn.title,
                t.status,
                t.graphite,
                t.explanation,
                t.promql.as_deref().unwrap_or("-")
            );
        }
    }
    for panel in ["CPU per host", "Hits", "Requests web1", "Latency mean"] {
        let t = target(&clean, panel);
        assert_eq!(t.status, "exact", "{panel}");
        assert_eq!(t.verdict, Verdict::Equivalent, "{panel}: {}", t.explanation);
    }
    let spread = target(&clean, "Latency spread");
    assert_eq!(spread.verdict, Verdict::NotValidated, "untranslatable is never equivalent");
    assert_eq!(
        clean[0].verdict,
        Verdict::NotValidated,
        "a dashboard with a not-validated panel is not equivalent"
    );

    let caught = |name: &str, d: &Value, panel: &str, words: &[&str]| {
        let r = run(name, d);
        let t = target(&r, panel);
        println!("fault {name}: {} — {}", t.verdict.as_str(), t.explanation);
        assert_eq!(t.verdict, Verdict::Divergent, "{name}: {}", t.explanation);
        let e = t.explanation.to_lowercase();
        assert!(
            words.iter().any(|w| e.contains(w)),
            "{name}: explanation does not name it: {}",
            t.explanation
        );
    };
    caught("wrong-node", &wrong_node, "Requests web1", &["no data", "missing", "new side"]);
    caught("ms-vs-s", &ms_vs_s, "Latency mean", &["1000", "ms", "unit"]);
    caught("host-missing", &host_missing, "CPU per host", &["web3"]);

    // 4. alerts: web2's CPU goes 20 -> 25; an alert at 24 fires in the second half. The rule
    // with the threshold 10 % higher (26.4) never fires: the backtest names the interval.
    let yaml = format!(
        "alerts:\n- name: cpu web2 high\n  target: seriesByTag('name=stats.gauges.{p}.cpu', 'host=web2')\n  condition: '>'\n  threshold: 24\n  reduce: max\n  window: 4s\n  interval: 2s\n"
    );
    let spec = source::parse_yaml(&yaml, "lab.yml").unwrap().remove(0);
    let ropts = rules::RulesOptions { ctx: ctx(&mapping(&p, false)), rate_interval: WINDOW.into() };
    let rep = rules::port(&spec, &ropts);
    let ok = backtest(&rep, &legacy, &new, start, t_end - 2, &BTreeMap::new(), WINDOW);
    println!("alert: {} — {}", ok.verdict.as_str(), ok.explanation);
    assert_eq!(ok.verdict, Verdict::Equivalent, "{}", ok.explanation);
    assert!(
        ok.timelines.iter().any(|t| !t.legacy.is_empty()),
        "the alert fires in the window: {:?}",
        ok.timelines
    );
    let mut off = rep.clone();
    off.rules[0].expr = off.rules[0].expr.replace("> 24", "> 26.4");
    let bad = backtest(&off, &legacy, &new, start, t_end - 2, &BTreeMap::new(), WINDOW);
    println!("alert, threshold +10 %: {} — {}", bad.verdict.as_str(), bad.explanation);
    assert_eq!(bad.verdict, Verdict::Divergent);
    assert!(bad.explanation.contains("only Graphite fires at"), "{}", bad.explanation);
}
