//! `dualmetrics compare --watch` end to end against the real VictoriaMetrics: a window replayed
//! over stored data with a double count injected mid-run; the drift metric served on `/metrics`
//! turns on after `--drift-after` consecutive divergent cycles and off once the window has
//! passed the fault; SIGTERM stops the loop and closes the listener. Gated by
//! `DUALMETRICS_E2E=1`. (Its own test binary: the SIGTERM goes to this process.)
mod support;

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::time::{Duration, Instant};

use clap::Parser;
use dualmetrics_compare::{run_code, CompareArgs};
use dualmetrics_testkit::lab::e2e_lab;
use support::fleet::{Events, Service};

#[derive(Parser)]
struct Cli {
    #[command(flatten)]
    args: CompareArgs,
}

fn scrape(addr: &str) -> Option<String> {
    let mut s = TcpStream::connect(addr).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(2))).ok()?;
    write!(s, "GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n").ok()?;
    let mut out = String::new();
    s.read_to_string(&mut out).ok()?;
    Some(out)
}

fn metric(text: &str, name: &str) -> Option<f64> {
    text.lines().find(|l| l.starts_with(name)).and_then(|l| l.rsplit(' ').next()?.parse().ok())
}

#[test]
fn drift_turns_on_after_n_divergent_cycles_and_off_after_the_fault_and_sigterm_stops_it() {
    let Some(lab) = e2e_lab() else { return };
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs()
        as i64;
    let t0 = (now - 3 * 3600) / 10 * 10;
    let svc = Service {
        prefix: format!("watch{}x{}", std::process::id(), now % 100_000),
        name: "shop".to_owned(),
        t0,
        seconds: 3600,
        seed: 5,
        events: Events {
            legacy_phase: 3,
            new_phase: 7,
            double_500_a_between: Some((1800, 2100)),
            ..Events::default()
        },
    };
    let vm = lab.vm_url();
    let mut tcp = TcpStream::connect(lab.vm_graphite_addr()).unwrap();
    tcp.write_all(svc.graphite_lines().as_bytes()).unwrap();
    drop(tcp);
    let _ = rustls::crypto::ring::default_provider().install_default();
    let client = reqwest::blocking::Client::new();
    assert!(client
        .post(format!("{vm}/api/v1/import"))
        .body(svc.import_lines())
        .send()
        .unwrap()
        .status()
        .is_success());
    // Wait until the last samples of both sides are searchable.
    let store = lab.vm();
    let at = std::time::UNIX_EPOCH + Duration::from_secs((t0 + 3600) as u64);
    let deadline = Instant::now() + Duration::from_secs(120);
    for q in [
        format!(r#"count({{__name__=~"stats.counters.{}.req.count"}})"#, svc.prefix),
        format!(r#"count({}_req_total)"#, svc.prefix),
    ] {
        loop {
            let _ = client.get(format!("{vm}/internal/force_flush")).send();
            if store.query_value_at(&q, at).ok().flatten().unwrap_or(0.0) >= 4.0 {
                break;
            }
            assert!(Instant::now() < deadline, "VictoriaMetrics does not show {q}");
            std::thread::sleep(Duration::from_millis(250));
        }
    }
    let dir = tempfile::tempdir().unwrap();
    let catalog = dir.path().join("catalog.json");
    std::fs::write(&catalog, svc.catalog()).unwrap();
    let port = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap();
    let addr = port.to_string();
    let argv: Vec<String> = [
        "x",
        "--catalog",
        catalog.to_str().unwrap(),
        "--legacy-url",
        &vm,
        "--new-url",
        &vm,
        "--start",
        "-300s",
        "--end",
        "now",
        "--step",
        "10s",
        "--watch",
        "1s",
        "--listen",
        &addr,
        "--drift-after",
        "3",
        "--watch-replay-from",
        &(t0 + 1500).to_string(),
        "--watch-replay-advance",
        "60s",
    ]
    .iter()
    .map(|s| (*s).to_owned())
    .collect();
    let args = Cli::parse_from(argv).args;
    let runner = std::thread::spawn(move || run_code(&args));

    // Poll /metrics: record the drift of the faulty pair per cycle.
    let drift = r#"dualmetrics_compare_pair_drift{pair="req"}"#;
    let cycles_metric = r#"dualmetrics_compare_pair_divergent_cycles{pair="req"}"#;
    let (mut seen_on, mut seen_off_after_on, mut max_before_on) = (false, false, 0.0_f64);
    let deadline = Instant::now() + Duration::from_secs(90);
    while Instant::now() < deadline && !seen_off_after_on {
        if let Some(text) = scrape(&addr) {
            if let (Some(d), Some(c)) = (metric(&text, drift), metric(&text, cycles_metric)) {
                assert_eq!(d == 1.0, c >= 3.0, "drift iff 3 consecutive divergent cycles: {text}");
                if d == 1.0 {
                    seen_on = true;
                } else if seen_on {
                    seen_off_after_on = true;
                } else {
                    max_before_on = max_before_on.max(c);
                }
                assert!(
                    metric(&text, "dualmetrics_compare_last_success_timestamp_seconds")
                        .unwrap_or(0.0)
                        > 0.0
                );
            }
        }
        std::thread::sleep(Duration::from_millis(150));
    }
    assert!(seen_on, "the drift metric never turned on");
    assert!(max_before_on >= 1.0, "divergent cycles were seen before drift turned on");
    assert!(seen_off_after_on, "the drift metric did not turn off after the fault");

    // SIGTERM (to this process, by its PID) ends the loop; the listener closes.
    let st = std::process::Command::new("kill")
        .args(["-TERM", &std::process::id().to_string()])
        .status()
        .unwrap();
    assert!(st.success());
    let deadline = Instant::now() + Duration::from_secs(20);
    while !runner.is_finished() {
        assert!(Instant::now() < deadline, "--watch did not stop on SIGTERM");
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(runner.join().unwrap(), 0);
    assert!(TcpStream::connect(&addr).is_err(), "the /metrics listener is closed");
}
