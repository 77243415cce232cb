//! The corpus' service overview, ported and validated on live data (gated by
//! `DUALMETRICS_E2E=1`): the dashboard under tests/corpus with `checkout` renamed to a per-run
//! prefix, a workload that emits every metric it shows through the shim (tee → statsd daemon →
//! VictoriaMetrics Graphite; OTLP with the corpus mapping file → vmagent-prom → Prometheus),
//! then `dashboards validate`'s code with `service` set and `env` left at "all". Every panel
//! whose targets are all exact must be equivalent; the week-over-week panel has no data a week
//! ago in a fresh lab and must say "not validated", never equivalent. ~30 s of workload.
use dualmetrics_compare::{
    CompareSettings, GraphiteAdapter, HttpConfig, PrometheusAdapter, TimeRange,
};
use dualmetrics_model::mapping::MappingFile;
use dualmetrics_port::grafana::{dashboard, PortOptions};
use dualmetrics_port::validate::{validate_dashboards, ValidateOptions, Verdict};
use dualmetrics_port::Context;
use dualmetrics_shim::config::Protocol;
use dualmetrics_shim::{Shim, ShimConfig};
use dualmetrics_testkit::lab::{e2e_lab, poll_until, INGEST_TIMEOUT, POLL_INTERVAL};
use std::collections::BTreeMap;
use std::net::UdpSocket;
use std::path::Path;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

const RUN: Duration = Duration::from_secs(30);
const TICK: Duration = Duration::from_millis(10);
const FLUSH_SECS: f64 = 1.0;
const STEP: i64 = 2;
const WINDOW: &str = "10s";

fn unix_now() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs() as i64
}

fn packet(p: &str, i: u64) -> String {
    let mut l = Vec::new();
    for h in ["web1", "web2", "web3"] {
        l.push(format!("{p}.requests:2|c|#service:{p},env:prod,host:{h}"));
        l.push(format!("{p}.{h}.x.requests:1|c")); // dotted: mapped env/host
    }
    l.push(format!("{p}.errors:1|c|#service:{p},env:prod,host:web1"));
    for (e, n) in [("a", 1), ("b", 2), ("c", 3), ("d", 4), ("e", 5), ("f", 6)] {
        l.push(format!("{p}.endpoint.requests:{n}|c|#endpoint:{e}"));
    }
    l.push(format!("{p}.latency:100|ms\n{p}.latency:300|ms"));
    l.push(format!("{p}.queue.depth:{}|g", 100 + (i / 100) * 10));
    l.join("\n")
}

#[test]
fn the_corpus_service_overview_validates_on_live_data() {
    let Some(lab) = e2e_lab() else { return };
    let p = format!(
        "cl{}",
        SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_millis() % 100_000_000
    );
    let corpus = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/corpus");
    let dash_text = std::fs::read_to_string(corpus.join("dashboards/service-overview.json"))
        .unwrap()
        .replace("checkout", &p);
    let mapping_text =
        std::fs::read_to_string(corpus.join("mapping.yml")).unwrap().replace("checkout", &p);
    let dir = tempfile::tempdir().unwrap();
    let mapping_path = dir.path().join("mapping.yml");
    std::fs::write(&mapping_path, &mapping_text).unwrap();

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
    let mut i = 0;
    while started.elapsed() < RUN {
        sock.send_to(packet(&p, i).as_bytes(), addr).unwrap();
        i += 1;
        next += TICK;
        std::thread::sleep(next.saturating_duration_since(Instant::now()));
    }
    let t_end = unix_now();
    let (prom, vm) = (lab.prometheus(), lab.vm());
    poll_until(INGEST_TIMEOUT, POLL_INTERVAL, || -> Result<(), String> {
        let legacy = vm
            .query_value(&format!(r#"max(timestamp({{__name__="stats.gauges.{p}.queue.depth"}}))"#))
            .map_err(|e| e.to_string())?
            .unwrap_or(0.0);
        let new = prom
            .query_value(&format!("max(timestamp({p}_queue_depth))"))
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

    let ctx = Context {
        flush_interval_secs: FLUSH_SECS,
        mapping: Some(MappingFile::parse(&mapping_text, "mapping.yml").unwrap()),
        ..Context::default()
    };
    let doc: serde_json::Value = serde_json::from_str(&dash_text).unwrap();
    let ported = dashboard::port(
        &doc,
        "corpus",
        &PortOptions { ctx: ctx.clone(), ..PortOptions::default() },
    )
    .unwrap();
    let out = dir.path().join("ported");
    std::fs::create_dir_all(&out).unwrap();
    std::fs::write(out.join("d.json"), serde_json::to_vec_pretty(&ported.json).unwrap()).unwrap();

    let url = |u: String| url::Url::parse(&u).unwrap();
    let legacy = GraphiteAdapter::new(HttpConfig::new(url(lab.vm_url())))
        .unwrap()
        .with_storage_step(Some(format!("{}s", FLUSH_SECS as i64)));
    let new = PrometheusAdapter::new(HttpConfig::new(url(lab.prometheus_url()))).unwrap();
    let mut vars = BTreeMap::new();
    vars.insert("service".to_owned(), p.clone());
    let opts = ValidateOptions {
        ctx,
        settings: CompareSettings {
            range: TimeRange { start: (t0 + 15) / STEP * STEP, end: t_end, step: STEP },
            skip_recent: 0,
            window_secs: 10,
            ..CompareSettings::default()
        },
        rate_interval: WINDOW.into(),
        vars,
    };
    let results = validate_dashboards(&[out], &legacy, &new, &opts, &mut |_, _| {}).unwrap();
    let mut failed = Vec::new();
    let mut exact = 0;
    for panel in &results[0].panels {
        println!("{:>14}  panel {}", panel.verdict.as_str(), panel.title);
        for t in &panel.targets {
            println!(
                "{:>14}    {} [{}] {}\n                  {}\n                  {}",
                t.verdict.as_str(),
                t.ref_id,
                t.status,
                t.explanation,
                t.graphite,
                t.promql.as_deref().unwrap_or("-")
            );
            if t.status != "exact" {
                continue;
            }
            exact += 1;
            // a fresh lab has no data a week ago: not validated, never equivalent
            let want = if t.graphite.contains("timeShift") {
                Verdict::NotValidated
            } else {
                Verdict::Equivalent
            };
            if t.verdict != want {
                failed.push(format!(
                    "{} / {}: {} ({})",
                    panel.title,
                    t.ref_id,
                    t.verdict.as_str(),
                    t.explanation
                ));
            }
        }
        if panel.targets.iter().all(|t| t.status == "exact")
            && !panel.title.contains("week over week")
        {
            assert_eq!(panel.verdict, Verdict::Equivalent, "exact panel {}", panel.title);
        }
    }
    assert!(failed.is_empty(), "exact targets with another verdict: {failed:#?}");
    assert!(exact >= 8, "too few exact targets compared ({exact})");
}
