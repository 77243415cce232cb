//! Pairs generated from a mapping file for dotted keys, on live data through the real lab
//! pipelines (gated by `DUALMETRICS_E2E=1`): the keys go as StatsD to the collector shim, whose
//! tee feeds the lab's reference statsd daemon (→ Graphite plaintext → VictoriaMetrics) and whose
//! mapping stage sends them as OTLP (→ VictoriaMetrics). `dualmetrics compare --mapping` then
//! discovers the keys with VictoriaMetrics' Graphite `/metrics/find`, generates one pair per
//! key (counters, gauges, timer count/sum/mean/upper/percentiles) and compares through the real
//! `/render` and Prometheus APIs.
//!
//! - On clean data every generated pair is equivalent.
//! - A wrong mapping in the shim (the `src` and `dst` labels bound to each other's node) is
//!   caught: the asymmetric keys diverge, the symmetric ones (`a.a`, `b.b`) stay equivalent.
use clap::Parser;
use dualmetrics_compare::{run_code, CompareArgs};
use dualmetrics_shim::config::Protocol;
use dualmetrics_shim::{Shim, ShimConfig};
use dualmetrics_testkit::lab::{e2e_lab, poll_eq, INGEST_TIMEOUT, POLL_INTERVAL};
use std::net::UdpSocket;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

#[derive(Parser)]
struct Cli {
    #[command(flatten)]
    args: CompareArgs,
}

fn now() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs() as i64
}

/// Rules for prefix `p`; `swap` binds `src` to the second node and `dst` to the first.
fn rules(p: &str, swap: bool) -> String {
    let (s, d) = if swap { ("$2", "$1") } else { ("$1", "$2") };
    format!(
        "- match: {p}.*.*.calls\n  name: {p}_calls\n  labels:\n    src: \"{s}\"\n    dst: \"{d}\"\n\
         - match: {p}.*.*.depth\n  name: {p}_depth\n  labels:\n    src: \"{s}\"\n    dst: \"{d}\"\n\
         - match: {p}.*.*.latency\n  match_metric_type: observer\n  name: {p}_latency\n  labels:\n    src: \"{s}\"\n    dst: \"{d}\"\n"
    )
}

const ROUNDS: u32 = 14;
/// Per-round counts of `calls` for each (src, dst): asymmetric on purpose.
const CALLS: [(&str, &str, u32); 4] = [("a", "b", 5), ("b", "a", 2), ("a", "a", 1), ("b", "b", 3)];

fn round_packet(p: &str, round: u32) -> String {
    let mut lines = Vec::new();
    for (s, d, n) in CALLS {
        lines.push(format!("{p}.{s}.{d}.calls:{n}|c"));
        lines.push(format!("{p}.{s}.{d}.depth:{}|g", 10 * n + round));
    }
    // one packet: the daemon sees both samples in the same flush, so its mean is constant
    lines.push(format!("{p}.a.b.latency:100|ms\n{p}.a.b.latency:250|ms"));
    lines.join("\n")
}

fn verdicts(j: &serde_json::Value) -> Vec<(String, String, String)> {
    j["pairs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            (
                p["name"].as_str().unwrap().into(),
                p["verdict"].as_str().unwrap().into(),
                p["explanation"].as_str().unwrap().into(),
            )
        })
        .collect()
}

#[test]
fn mapped_pairs_are_equivalent_on_clean_data_and_a_swapped_label_is_caught() {
    let Some(lab) = e2e_lab() else { return };
    assert_eq!(
        (lab.statsd_flush_interval(), lab.var("STATSD_LEGACY_NAMESPACE")),
        (Duration::from_secs(1), Some("false")),
        "the workload and the pairs assume the lab's default daemon (1 s flush, legacyNamespace false)"
    );
    let id = format!(
        "mp{}",
        SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_millis() % 100_000_000
    );
    let wrong = format!("{id}w");
    let dir = tempfile::tempdir().unwrap();
    let shim_rules = dir.path().join("shim.yml");
    let truth = dir.path().join("truth.yml");
    std::fs::write(&shim_rules, format!("mappings:\n{}{}", rules(&id, false), rules(&wrong, true)))
        .unwrap();
    std::fs::write(&truth, format!("mappings:\n{}{}", rules(&id, false), rules(&wrong, false)))
        .unwrap();

    let mut cfg = ShimConfig::loopback();
    cfg.aggregate.flush_interval_ms = 500;
    cfg.export.protocol = Protocol::Http;
    cfg.export.endpoint = lab.vm_otlp_url();
    cfg.export.self_telemetry = false;
    cfg.tee.target = Some(lab.statsd_addr().to_string());
    cfg.mapping.file = Some(shim_rules);
    let shim = Shim::bind(cfg).unwrap();
    let addr = shim.udp_addr().unwrap();
    let shim = shim.spawn();

    // the range starts once every series exists on both sides (a counter then has a baseline)
    let start = now() + 3;
    let sock = UdpSocket::bind("127.0.0.1:0").unwrap();
    for round in 0..ROUNDS {
        for p in [&id, &wrong] {
            sock.send_to(round_packet(p, round).as_bytes(), addr).unwrap();
        }
        std::thread::sleep(Duration::from_millis(1000));
    }
    // both sides hold every round before the comparison
    let vm = lab.vm();
    let prom_naming = lab.var("VM_PROM_NAMING") == Some("1");
    let new_total = if prom_naming { format!("{id}_calls_total") } else { format!("{id}_calls") };
    poll_eq(INGEST_TIMEOUT, POLL_INTERVAL, Some(f64::from(5 * ROUNDS)), || {
        vm.query_value(&format!(
            r#"sum(sum_over_time({{__name__="stats.counters.{id}.a.b.calls.count"}}[5m]))"#
        ))
    })
    .unwrap();
    poll_eq(INGEST_TIMEOUT, POLL_INTERVAL, Some(f64::from(5 * ROUNDS)), || {
        vm.query_value(&format!(r#"last_over_time({new_total}{{src="a",dst="b"}}[5m])"#))
    })
    .unwrap();
    std::thread::sleep(Duration::from_secs(2)); // one more daemon flush of zeros, on purpose
    shim.shutdown().unwrap();

    let json = dir.path().join("r.json");
    let (start, end) = (start.to_string(), (now() + 1).to_string());
    let vm_url = lab.vm_url();
    let argv = vec![
        "x",
        "--mapping",
        truth.to_str().unwrap(),
        "--legacy-url",
        &vm_url,
        "--new-url",
        &vm_url,
        "--new-naming",
        if prom_naming { "prometheus" } else { "otel" },
        "--percentiles",
        "90,99",
        "--start",
        &start,
        "--end",
        &end,
        "--step",
        "1s",
        "--storage-step",
        "1s",
        "--window",
        "5s",
        "--skip-recent",
        "0s",
        "--json",
        json.to_str().unwrap(),
    ];
    let code = run_code(&Cli::parse_from(argv).args);
    let j: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(json).unwrap()).unwrap();
    let v = verdicts(&j);
    for row in &v {
        println!("{row:?}");
    }
    // per prefix: 4 counters, 4 gauges, 1 timer x (count, sum, mean, upper, upper_90, upper_99)
    assert_eq!(v.iter().filter(|(n, ..)| n.starts_with(&format!("{id}."))).count(), 14);
    assert_eq!(v.iter().filter(|(n, ..)| n.starts_with(&format!("{wrong}."))).count(), 14);
    for (name, verdict, why) in &v {
        let symmetric = name.contains(".a.a.") || name.contains(".b.b.");
        if name.starts_with(&format!("{id}.")) || symmetric {
            assert_eq!(verdict, "equivalent", "{name}: {why}");
        } else {
            // the swapped rule: values of the mirrored key (divergent), or series that do not
            // exist under the right labels (the timer was only sent for a.b: missing-new)
            assert_ne!(verdict, "equivalent", "{name}: {why}");
        }
    }
    assert_eq!(code, 1, "the swapped mapping makes the run fail");
}
