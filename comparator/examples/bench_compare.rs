//! Benchmark: 1,000 generated pairs (700 tagged counters, 300 gauges) over 1 h at a 10 s step
//! against the lab's VictoriaMetrics, both sides, through the real HTTP APIs.
//!
//! ```text
//! bash scripts/lab/up.sh            # or LAB_PORTS=auto LAB_DIR=... ; writes $LAB_DIR/lab.env
//! DUALMETRICS_LAB_ENV=/tmp/lab/lab.env cargo run --release -p dualmetrics-compare --example bench_compare
//! ```
//! Loads the data (StatsD flush 10 s: 612,000 Graphite lines + 1,700 imported series), then
//! times `Plan::from_args` + `Plan::execute` (all 1,000 pairs, 2,000 range queries) and prints
//! the time and the verdict counts. Target: ≤ 30 s.
#[path = "../tests/support/vm_load.rs"]
mod vm_load;

use std::time::Instant;

use clap::Parser;
use dualmetrics_compare::{CompareArgs, Plan};
use dualmetrics_testkit::lab::Lab;

#[derive(Parser)]
struct Cli {
    #[command(flatten)]
    args: CompareArgs,
}

fn main() {
    let lab = Lab::from_env().expect("set DUALMETRICS_LAB_ENV to a running lab's lab.env");
    let vm = lab.vm_url();
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs()
        as i64;
    let w = vm_load::Workload {
        prefix: format!("bench{}", std::process::id()),
        t0: (now - 2 * 3600) / 10 * 10,
        seconds: 3_700,
        flush: 10,
        counters: 700,
        gauges: 300,
        timer: false,
        new_counter_twice: false,
    };
    let t = Instant::now();
    w.load(&vm, lab.vm_graphite_addr());
    println!("loaded {} in {:.1} s", w.prefix, t.elapsed().as_secs_f64());

    let dir = std::env::temp_dir().join(format!("{}-catalog.json", w.prefix));
    std::fs::write(&dir, w.catalog()).unwrap();
    let parallel = std::env::var("BENCH_PARALLEL").unwrap_or_else(|_| "8".into());
    let (start, end) = ((w.t0 + 60).to_string(), (w.t0 + 3_660).to_string());
    let cli = Cli::parse_from([
        "bench",
        "--catalog",
        dir.to_str().unwrap(),
        "--legacy-url",
        &vm,
        "--new-url",
        &vm,
        "--start",
        &start,
        "--end",
        &end,
        "--step",
        "10s",
        "--storage-step",
        "10s",
        "--parallel",
        &parallel,
    ]);
    let t = Instant::now();
    let plan = Plan::from_args(&cli.args).unwrap();
    let report = plan.execute().unwrap();
    let took = t.elapsed().as_secs_f64();
    let s = report.summary();
    println!(
        "compare: {} pairs over 1 h at 10 s step, parallel {parallel}: {took:.2} s ({} equivalent, {} divergent, {} missing, {} error)",
        report.pairs.len(),
        s.equivalent,
        s.divergent,
        s.missing,
        s.error
    );
    for p in report
        .pairs
        .iter()
        .filter(|p| p.outcome.verdict != dualmetrics_compare::Verdict::Equivalent)
        .take(5)
    {
        println!("  {}: {} {}", p.name, p.outcome.verdict.as_str(), p.outcome.explanation);
    }
    let _ = std::fs::remove_file(dir);
    assert_eq!(report.pairs.len(), 1000);
}
