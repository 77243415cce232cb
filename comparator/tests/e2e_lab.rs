//! End to end against the real lab's VictoriaMetrics 1.112 (`scripts/lab/up.sh`): the legacy
//! side written exactly as statsd 0.9.0 writes it over Graphite plaintext, the new side as OTLP
//! cumulative series with Prometheus naming. `dualmetrics compare` reads them back through the
//! real Graphite `/render` and Prometheus APIs. Gated by `DUALMETRICS_E2E=1`.
mod support;

use clap::Parser;
use dualmetrics_compare::{run_code, CompareArgs};
use dualmetrics_testkit::lab::e2e_lab;
use support::vm_load::Workload;

#[derive(Parser)]
struct Cli {
    #[command(flatten)]
    args: CompareArgs,
}

fn now() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs() as i64
}

fn run(w: &Workload, vm: &str, extra: &[&str]) -> (u8, serde_json::Value) {
    let dir = tempfile::tempdir().unwrap();
    let catalog = dir.path().join("catalog.json");
    std::fs::write(&catalog, w.catalog()).unwrap();
    let json = dir.path().join("r.json");
    let (start, end) = ((w.t0 + 60).to_string(), (w.t0 + w.seconds).to_string());
    let storage = format!("{}s", w.flush);
    let mut argv = vec![
        "x",
        "--catalog",
        catalog.to_str().unwrap(),
        "--legacy-url",
        vm,
        "--new-url",
        vm,
        "--start",
        &start,
        "--end",
        &end,
        "--step",
        "10s",
        "--storage-step",
        &storage,
        "--json",
        json.to_str().unwrap(),
    ];
    argv.extend(extra);
    let code = run_code(&Cli::parse_from(argv).args);
    (code, serde_json::from_str(&std::fs::read_to_string(json).unwrap()).unwrap())
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

fn workload(tag: &str, twice: bool) -> Workload {
    let id = format!("e2e{}{tag}", std::process::id());
    Workload {
        prefix: id,
        t0: (now() - 3 * 3600) / 10 * 10,
        seconds: 3_700,
        flush: 1,
        counters: 2,
        gauges: 1,
        timer: true,
        new_counter_twice: twice,
    }
}

#[test]
fn generated_pairs_are_equivalent_on_real_victoriametrics() {
    let Some(lab) = e2e_lab() else { return };
    let w = workload("clean", false);
    w.load(&lab.vm_url(), lab.vm_graphite_addr());
    let (code, j) = run(&w, &lab.vm_url(), &[]);
    let v = verdicts(&j);
    println!("{v:#?}");
    assert_eq!(v.len(), 8);
    for (name, verdict, why) in &v {
        assert_eq!(verdict, "equivalent", "{name}: {why}");
    }
    assert_eq!(code, 0);

    // The same data read through PromQL on the Graphite names (VictoriaMetrics serves both).
    let (_, j) = run(&w, &lab.vm_url(), &["--legacy-api", "prometheus"]);
    for (name, verdict, why) in verdicts(&j) {
        println!("legacy via PromQL: {name}: {verdict}: {why}");
        if name.starts_with('c')
            || name.starts_with('g')
            || name.ends_with(".count")
            || name.ends_with(".sum")
        {
            assert_eq!(verdict, "equivalent", "{name}: {why}");
        }
    }
}

#[test]
fn double_counting_is_caught_on_real_victoriametrics() {
    let Some(lab) = e2e_lab() else { return };
    let w = workload("twice", true);
    w.load(&lab.vm_url(), lab.vm_graphite_addr());
    let (code, j) = run(&w, &lab.vm_url(), &[]);
    let v = verdicts(&j);
    println!("{v:#?}");
    assert_eq!(code, 1);
    for (name, verdict, why) in &v {
        if name.starts_with('c') {
            assert_eq!(verdict, "divergent", "{name}");
            assert!(why.contains("counted twice?"), "{name}: {why}");
        } else {
            assert_eq!(verdict, "equivalent", "{name}: {why}");
        }
    }
}
