//! The comparator against the real lab (VictoriaMetrics 1.112 and Prometheus 2.53.3) on a
//! scenario set: clean migrations with the two clocks at different phases, an outage on either
//! side, ingestion lag, a counter reset and a fleet of services sharing instrument names must
//! give no false alarm; each injected fault must be caught with its cause named. Synthetic data
//! is written with explicit timestamps (fast: no waiting for flushes). Gated by
//! `DUALMETRICS_E2E=1`.
mod support;

use std::io::Write as _;
use std::net::TcpStream;
use std::time::{Duration, Instant};

use clap::Parser;
use dualmetrics_compare::{run_code, CompareArgs};
use dualmetrics_testkit::lab::{e2e_lab, PromClient};
use serde_json::Value;
use support::fleet::{Events, Service};

#[derive(Parser)]
struct Cli {
    #[command(flatten)]
    args: CompareArgs,
}

const PAIRS: [&str; 7] =
    ["req", "depth", "lat.count", "lat.sum", "lat.mean", "lat.upper", "lat.upper_90"];

fn now() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs() as i64
}

fn run_id() -> String {
    format!("lab{}x{}", std::process::id(), now() % 100_000)
}

/// Writes every service's legacy side into VictoriaMetrics (Graphite plaintext) and its new
/// side through `import_url` (`/api/v1/import` of VictoriaMetrics or of the vmagent in front of
/// Prometheus), then waits until `new_query_url` and VictoriaMetrics show every series.
fn load(
    family: &str,
    services: &[Service],
    vm: &str,
    graphite: std::net::SocketAddr,
    import_url: &str,
    new_query_url: &str,
) {
    let mut tcp = TcpStream::connect(graphite).expect("VictoriaMetrics Graphite listener");
    for s in services {
        tcp.write_all(s.graphite_lines().as_bytes()).unwrap();
    }
    drop(tcp);
    let _ = rustls::crypto::ring::default_provider().install_default();
    let client = reqwest::blocking::Client::new();
    let body: String = services.iter().map(Service::import_lines).collect();
    let resp = client.post(import_url).body(body.clone()).send().unwrap();
    assert!(resp.status().is_success(), "import: {}", resp.status());
    let new_series = body.lines().count();
    let legacy_series: usize = services
        .iter()
        .map(|s| {
            let g = s.graphite_lines();
            let mut names: Vec<&str> = g.lines().filter_map(|l| l.split(' ').next()).collect();
            names.sort_unstable();
            names.dedup();
            names.len()
        })
        .sum();
    // Every service's prefix is the run id followed by letters and digits.
    let prefix = format!("{family}[a-z0-9]*");
    let end = services.iter().map(|s| s.t0 + s.seconds).max().unwrap();
    let end = std::time::UNIX_EPOCH + Duration::from_secs(end as u64);
    let probes = [
        (
            vm,
            format!(r#"count(count_over_time({{__name__=~"stats[.].*[.]{prefix}[.].*"}}[3h]))"#),
            legacy_series,
        ),
        // Every new series has a sample in the last five minutes (Prometheus' count_over_time
        // drops the names, and equal label sets collide).
        (new_query_url, format!(r#"count({{__name__=~"{prefix}_.*"}})"#), new_series),
    ];
    let deadline = Instant::now() + Duration::from_secs(120);
    for (base, q, want) in probes {
        loop {
            let _ = client.get(format!("{vm}/internal/force_flush")).send();
            let n = PromClient::new(base).query_value_at(&q, end).ok().flatten().unwrap_or(0.0);
            if n as usize >= want {
                break;
            }
            assert!(Instant::now() < deadline, "{base} shows {n} of {want} series for {q}");
            std::thread::sleep(Duration::from_millis(250));
        }
    }
}

/// Runs `dualmetrics compare` on one service's catalog; returns name → (verdict, explanation).
fn compare(s: &Service, legacy: &str, new: &str) -> Vec<(String, String, String)> {
    let dir = tempfile::tempdir().unwrap();
    let catalog = dir.path().join("catalog.json");
    std::fs::write(&catalog, s.catalog()).unwrap();
    let json = dir.path().join("r.json");
    let (start, end) = ((s.t0 + 300).to_string(), (s.t0 + s.seconds).to_string());
    let argv = [
        "x",
        "--catalog",
        catalog.to_str().unwrap(),
        "--legacy-url",
        legacy,
        "--new-url",
        new,
        "--start",
        &start,
        "--end",
        &end,
        "--step",
        "10s",
        "--json",
        json.to_str().unwrap(),
    ];
    run_code(&Cli::parse_from(argv).args);
    let j: Value = serde_json::from_str(&std::fs::read_to_string(json).unwrap()).unwrap();
    j["pairs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            (
                p["name"].as_str().unwrap().to_owned(),
                p["verdict"].as_str().unwrap().to_owned(),
                p["explanation"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

/// A scenario: the events, and the pairs that must diverge with a phrase their explanation
/// must contain (every other pair must be equivalent).
struct Scenario {
    name: &'static str,
    events: Events,
    divergent: Vec<(&'static str, &'static str)>,
    /// A phrase an equivalent pair's explanation must contain (gap reports).
    note: Option<(&'static str, &'static str)>,
}

fn scenarios() -> Vec<Scenario> {
    let e = Events::default;
    let clean = |name, events| Scenario { name, events, divergent: vec![], note: None };
    vec![
        clean("clocks in phase", Events { legacy_phase: 0, new_phase: 0, ..e() }),
        clean("clocks 3 s / 7 s", Events { legacy_phase: 3, new_phase: 7, ..e() }),
        clean("clocks 9 s / 1 s", Events { legacy_phase: 9, new_phase: 1, ..e() }),
        Scenario {
            name: "legacy outage",
            events: Events {
                legacy_phase: 2,
                new_phase: 6,
                legacy_outage: Some((1800, 2100)),
                ..e()
            },
            divergent: vec![],
            note: Some(("req", "legacy side had no data")),
        },
        Scenario {
            name: "new outage",
            events: Events { legacy_phase: 2, new_phase: 6, new_outage: Some((1800, 2100)), ..e() },
            divergent: vec![],
            note: Some(("req", "totals across the gap agree")),
        },
        Scenario {
            name: "ingestion lag",
            events: Events { legacy_phase: 4, new_phase: 8, new_lag: 60, ..e() },
            divergent: vec![],
            note: Some(("req", "new side had no data")),
        },
        clean(
            "counter reset",
            Events { legacy_phase: 1, new_phase: 5, new_reset_at: Some(3000), ..e() },
        ),
        Scenario {
            name: "double count on one tag set",
            events: Events { legacy_phase: 3, new_phase: 7, double_500_a: true, ..e() },
            divergent: vec![("req", "tag sets: code=500,route=-a")],
            note: None,
        },
        Scenario {
            name: "1 % lost increments",
            events: Events { legacy_phase: 3, new_phase: 7, lose_one_percent: true, ..e() },
            divergent: vec![("req", "below legacy: increments lost on the new side?")],
            note: None,
        },
        Scenario {
            name: "ms vs s",
            events: Events { legacy_phase: 3, new_phase: 7, seconds_as_ms: true, ..e() },
            divergent: vec![
                ("lat.sum", "unit ms vs s"),
                ("lat.mean", "unit ms vs s"),
                ("lat.upper", "legacy side higher"),
                ("lat.upper_90", "legacy side higher"),
            ],
            note: None,
        },
        Scenario {
            name: "gauge off by 2 %",
            events: Events { legacy_phase: 3, new_phase: 7, gauge_two_percent: true, ..e() },
            divergent: vec![("depth", "values differ at")],
            note: None,
        },
        Scenario {
            name: "tag value on one side only",
            events: Events { legacy_phase: 3, new_phase: 7, extra_route: true, ..e() },
            divergent: vec![("req", "new side has tag value route=-c the legacy side lacks")],
            note: None,
        },
        Scenario {
            name: "p90 one bucket high",
            events: Events { legacy_phase: 3, new_phase: 7, p90_bucket_high: true, ..e() },
            divergent: vec![
                ("lat.upper_90", "bucket misses the legacy values"),
                ("lat.upper", "bucket misses"),
            ],
            note: None,
        },
    ]
}

/// Checks one service's verdicts; returns (false alarms, missed faults, failures text).
fn check(
    label: &str,
    rows: &[(String, String, String)],
    sc: &Scenario,
    out: &mut Vec<String>,
) -> (usize, usize) {
    let (mut false_alarms, mut missed) = (0, 0);
    assert_eq!(rows.len(), PAIRS.len(), "{label}: {rows:#?}");
    for (name, verdict, why) in rows {
        match sc.divergent.iter().find(|(p, _)| p == name) {
            Some((_, phrase)) => {
                if verdict != "divergent" || !why.contains(phrase) {
                    missed += 1;
                    out.push(format!(
                        "{label}: {name} should diverge naming {phrase:?}: {verdict}: {why}"
                    ));
                }
            }
            None => {
                if verdict != "equivalent" {
                    false_alarms += 1;
                    out.push(format!("{label}: {name} false alarm: {verdict}: {why}"));
                }
                if let Some((p, phrase)) = sc.note {
                    if p == name && !why.contains(phrase) {
                        out.push(format!("{label}: {name} should report {phrase:?}: {why}"));
                    }
                }
            }
        }
    }
    (false_alarms, missed)
}

#[test]
fn scenario_set_on_real_victoriametrics_has_no_false_alarm_and_names_every_fault() {
    let Some(lab) = e2e_lab() else { return };
    let id = run_id();
    // Two hours: 1 % of two hours' increments exceeds the uncertainty of a flush and an export
    // at each end of the span.
    let t0 = (now() - 3 * 3600) / 10 * 10;
    let list = scenarios();
    let services: Vec<Service> = list
        .iter()
        .enumerate()
        .map(|(i, sc)| Service {
            prefix: format!("{id}s{i}"),
            name: "shop".to_owned(),
            t0,
            seconds: 7200,
            seed: 17 + i as u64,
            events: sc.events.clone(),
        })
        .collect();
    let vm = lab.vm_url();
    load(&id, &services, &vm, lab.vm_graphite_addr(), &format!("{vm}/api/v1/import"), &vm);
    let (mut fa, mut missed, mut faults) = (0, 0, 0);
    let mut failures = Vec::new();
    let started = Instant::now();
    for (sc, s) in list.iter().zip(&services) {
        let rows = compare(s, &vm, &vm);
        for r in &rows {
            println!("{}: {} {}: {}", sc.name, r.0, r.1, r.2);
        }
        let (f, m) = check(sc.name, &rows, sc, &mut failures);
        fa += f;
        missed += m;
        faults += sc.divergent.len();
    }
    println!(
        "{} scenarios: {fa} false alarms, {} of {faults} faults caught with the cause named ({:.1} s of comparisons)",
        list.len(),
        faults - missed,
        started.elapsed().as_secs_f64()
    );
    assert!(failures.is_empty(), "{failures:#?}");
}

#[test]
fn fleet_of_services_sharing_instrument_names_is_compared_service_by_service() {
    let Some(lab) = e2e_lab() else { return };
    let id = run_id();
    let t0 = (now() - 3 * 3600) / 10 * 10;
    let mk = |name: &str, seed, events| Service {
        prefix: format!("{id}f"),
        name: name.to_owned(),
        t0,
        seconds: 3600,
        seed,
        events,
    };
    let fleet = [
        mk("cart", 1, Events { legacy_phase: 3, new_phase: 7, ..Events::default() }),
        mk(
            "pay",
            2,
            Events { legacy_phase: 5, new_phase: 1, double_500_a: true, ..Events::default() },
        ),
        mk("ship", 3, Events { legacy_phase: 8, new_phase: 8, ..Events::default() }),
    ];
    let vm = lab.vm_url();
    load(&id, &fleet, &vm, lab.vm_graphite_addr(), &format!("{vm}/api/v1/import"), &vm);
    let mut failures = Vec::new();
    for s in &fleet {
        let rows = compare(s, &vm, &vm);
        for r in &rows {
            println!("{}: {} {}: {}", s.name, r.0, r.1, r.2);
        }
        let sc = Scenario {
            name: "fleet",
            events: s.events.clone(),
            divergent: if s.name == "pay" { vec![("req", "code=500,route=-a")] } else { vec![] },
            note: None,
        };
        check(&s.name, &rows, &sc, &mut failures);
    }
    assert!(failures.is_empty(), "{failures:#?}");
}

#[test]
fn new_side_in_real_prometheus_is_compared_without_false_alarm_and_faults_are_named() {
    let Some(lab) = e2e_lab() else { return };
    if !lab.has_component("prometheus") || !lab.has_component("vmagent-prom") {
        eprintln!("lab has no prometheus + vmagent-prom: skipped");
        return;
    }
    let id = run_id();
    // Prometheus' head only takes samples from the last hour.
    let t0 = (now() - 50 * 60) / 10 * 10;
    let list = [
        Scenario {
            name: "clean 3 s / 7 s",
            events: Events { legacy_phase: 3, new_phase: 7, ..Events::default() },
            divergent: vec![],
            note: None,
        },
        Scenario {
            name: "double count",
            events: Events {
                legacy_phase: 6,
                new_phase: 2,
                double_500_a: true,
                ..Events::default()
            },
            divergent: vec![("req", "code=500,route=-a")],
            note: None,
        },
        Scenario {
            name: "gauge 2 %",
            events: Events {
                legacy_phase: 6,
                new_phase: 2,
                gauge_two_percent: true,
                ..Events::default()
            },
            divergent: vec![("depth", "values differ at")],
            note: None,
        },
    ];
    let services: Vec<Service> = list
        .iter()
        .enumerate()
        .map(|(i, sc)| Service {
            prefix: format!("{id}p{i}"),
            name: "shop".to_owned(),
            t0,
            seconds: 2700,
            seed: 40 + i as u64,
            events: sc.events.clone(),
        })
        .collect();
    let (vm, prom) = (lab.vm_url(), lab.prometheus_url());
    let import = format!("{}/api/v1/import", lab.vmagent_prom_url());
    load(&id, &services, &vm, lab.vm_graphite_addr(), &import, &prom);
    let mut failures = Vec::new();
    for (sc, s) in list.iter().zip(&services) {
        let rows = compare(s, &vm, &prom);
        for r in &rows {
            println!("{}: {} {}: {}", sc.name, r.0, r.1, r.2);
        }
        check(sc.name, &rows, sc, &mut failures);
    }
    assert!(failures.is_empty(), "{failures:#?}");
}
