//! The acceptance test of the cutover: legacy → dual → otlp → dual → legacy while several threads
//! keep emitting, and every backend receives exactly what was recorded while a mode that includes
//! it was active.
//!
//! Exact attribution under concurrency needs a protocol, because "the mode at the time of the
//! emit" is only well defined if no emit straddles a switch:
//! - a shared `epoch` is even while a phase runs and odd while the controller switches;
//! - every emitter, at the top of each iteration, publishes the epoch it read (`seen[i]`), then
//!   emits only if that epoch is even and tallies the emit under phase `epoch / 2`;
//! - the controller sets the epoch odd, waits until every emitter has published that odd epoch
//!   (so each has finished its previous emit and will not start another), switches the mode, and
//!   sets the epoch to the next even value.
//!
//! Emitters are never joined between phases; they spin through the pauses. The switch itself is
//! either `set_mode` or a configuration reload (a rewritten file and `reload()`).
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::SeqCst};
use std::sync::Arc;
use std::time::{Duration, Instant};

use dualmetrics::{DualMetrics, Mode};
use dualmetrics_testkit::{latest, parse_line, OtlpGrpcReceiver, PointValue, StatsdReceiver};

const THREADS: usize = 4;
const PHASES: [Mode; 5] = [Mode::Legacy, Mode::Dual, Mode::Otlp, Mode::Dual, Mode::Legacy];
/// How long each phase runs; long enough for every thread to emit many times in each.
const PHASE: Duration = Duration::from_millis(150);
const WAIT: Duration = Duration::from_secs(20);

struct Shared {
    epoch: AtomicU64,
    stop: AtomicBool,
    seen: Vec<AtomicU64>,
    /// `tally[thread][phase]`: emits recorded by that thread in that phase.
    tally: Vec<Vec<AtomicU64>>,
}

impl Shared {
    fn new() -> Arc<Self> {
        Arc::new(Shared {
            epoch: AtomicU64::new(0),
            stop: AtomicBool::new(false),
            seen: (0..THREADS).map(|_| AtomicU64::new(0)).collect(),
            tally: (0..THREADS)
                .map(|_| (0..PHASES.len()).map(|_| AtomicU64::new(0)).collect())
                .collect(),
        })
    }

    /// Pauses every emitter: returns once none is inside an emit and none will start one.
    fn pause(&self) {
        let odd = self.epoch.fetch_add(1, SeqCst) + 1;
        assert_eq!(odd % 2, 1);
        let deadline = Instant::now() + WAIT;
        while self.seen.iter().any(|s| s.load(SeqCst) != odd) {
            assert!(Instant::now() < deadline, "an emitter did not acknowledge the pause");
            std::thread::yield_now();
        }
    }

    fn resume(&self) {
        self.epoch.fetch_add(1, SeqCst);
    }

    /// Emits in the phases whose mode includes the given backend.
    fn total_where(&self, includes: impl Fn(Mode) -> bool) -> u64 {
        self.tally
            .iter()
            .flat_map(|per_phase| per_phase.iter().enumerate())
            .filter(|(phase, _)| includes(PHASES[*phase]))
            .map(|(_, n)| n.load(SeqCst))
            .sum()
    }
}

fn emitters(metrics: &DualMetrics, shared: &Arc<Shared>) -> Vec<std::thread::JoinHandle<()>> {
    let counter = metrics.counter("cutover.orders").build().unwrap();
    (0..THREADS)
        .map(|i| {
            let shared = Arc::clone(shared);
            let counter = counter.clone();
            std::thread::spawn(move || {
                let thread = i.to_string();
                // Half the threads use a bound handle, half the unbound call.
                let bound = counter.bind(&[("t", &thread)]).unwrap();
                while !shared.stop.load(SeqCst) {
                    let epoch = shared.epoch.load(SeqCst);
                    shared.seen[i].store(epoch, SeqCst);
                    if epoch % 2 == 1 {
                        std::hint::spin_loop();
                        continue;
                    }
                    if i % 2 == 0 {
                        bound.increment();
                    } else {
                        counter.add(1, &[("t", &thread)]);
                    }
                    shared.tally[i][(epoch / 2) as usize].fetch_add(1, SeqCst);
                }
            })
        })
        .collect()
}

/// Runs the five phases, switching with `switch(mode)` while the emitters are paused, then
/// checks both receivers against the tallies.
fn run_cutover(
    statsd: &StatsdReceiver,
    otlp: &OtlpGrpcReceiver,
    metrics: &DualMetrics,
    switch: impl Fn(Mode),
) {
    let shared = Shared::new();
    let threads = emitters(metrics, &shared);
    for mode in &PHASES[1..] {
        std::thread::sleep(PHASE);
        shared.pause();
        switch(*mode);
        shared.resume();
    }
    std::thread::sleep(PHASE);
    shared.pause();
    shared.stop.store(true, SeqCst);
    for t in threads {
        t.join().unwrap();
    }
    metrics.flush().unwrap();

    for (i, per_phase) in shared.tally.iter().enumerate() {
        for (phase, n) in per_phase.iter().enumerate() {
            assert!(n.load(SeqCst) > 0, "thread {i} emitted nothing in phase {phase}");
        }
    }
    let want_statsd = shared.total_where(Mode::has_legacy);
    let want_otlp = shared.total_where(Mode::has_otlp);

    let statsd_total = |lines: &[String]| -> u64 {
        lines
            .iter()
            .map(|l| parse_line(l))
            .filter(|p| p.name == "cutover.orders")
            .map(|p| p.value.parse::<u64>().unwrap())
            .sum()
    };
    let lines = statsd.try_wait_until(WAIT, |l| statsd_total(l) >= want_statsd);
    let got_statsd = statsd_total(&lines.unwrap_or_else(|e| panic!("{e}")));

    let otlp_total = |points: &[dualmetrics_testkit::Point]| -> u64 {
        (0..THREADS)
            .map(|i| match latest(points, "cutover.orders", &[("t", &i.to_string())]) {
                Some(p) => match p.value {
                    PointValue::Int(v) => v as u64,
                    ref other => panic!("unexpected {other:?}"),
                },
                None => 0,
            })
            .sum()
    };
    let points = otlp.wait_for(WAIT, |p| otlp_total(p) >= want_otlp);
    let got_otlp = otlp_total(&points);

    eprintln!("cutover: StatsD {got_statsd}/{want_statsd}, OTLP {got_otlp}/{want_otlp} emits");
    assert_eq!(got_statsd, want_statsd, "StatsD total == emits in legacy + dual phases");
    assert_eq!(got_otlp, want_otlp, "OTLP total == emits in dual + otlp phases");
    assert_eq!(metrics.telemetry().statsd.lines_dropped_socket, 0);
}

fn builder(statsd: &StatsdReceiver, otlp: &OtlpGrpcReceiver) -> dualmetrics::DualMetricsBuilder {
    DualMetrics::builder()
        .ignore_env()
        .with_statsd_address(&statsd.local_addr().to_string())
        // Flushes during the run too, so the StatsD side is checked across many datagrams.
        .with_statsd_flush_interval(Duration::from_millis(50))
        .with_otlp_endpoint(&otlp.endpoint())
        .with_otlp_export_interval(Duration::from_secs(3600))
}

#[test]
fn cutover_with_set_mode_under_concurrent_emitters_attributes_every_emit_exactly() {
    let statsd = StatsdReceiver::bind_udp();
    let otlp = OtlpGrpcReceiver::start();
    let metrics = builder(&statsd, &otlp).with_mode(Mode::Legacy).build().unwrap();
    run_cutover(&statsd, &otlp, &metrics, |mode| metrics.set_mode(mode));
}

#[test]
fn cutover_with_config_reloads_under_concurrent_emitters_attributes_every_emit_exactly() {
    let statsd = StatsdReceiver::bind_udp();
    let otlp = OtlpGrpcReceiver::start();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("dualmetrics.toml");
    let write = |mode: Mode| {
        let tmp = path.with_extension("tmp");
        std::fs::write(
            &tmp,
            format!("[[default.rules]]\nmatch = \"cutover.*\"\nmode = \"{mode}\"\n"),
        )
        .unwrap();
        std::fs::rename(&tmp, &path).unwrap();
    };
    write(Mode::Legacy);
    let metrics = builder(&statsd, &otlp).with_config_file(&path).build().unwrap();
    run_cutover(&statsd, &otlp, &metrics, |mode| {
        write(mode);
        assert_eq!(metrics.reload().unwrap().mode_changes, 1);
    });
}
