//! Continuous mode, `dualmetrics compare --watch 60s`: the same pairs re-evaluated every cycle
//! over a sliding window (the span of `--start`..`--end`, ending now), with the results exposed
//! as Prometheus metrics on `--listen` (`GET /metrics`).
//!
//! A pair **drifts** only after [`DEFAULT_DRIFT_AFTER`] consecutive divergent cycles
//! (`--drift-after`), as reconciliation jobs do, and stops drifting at the first cycle without a
//! divergence. SIGTERM or SIGINT ends the loop after the current cycle and closes the listener.
//!
//! Metrics:
//! - `dualmetrics_compare_pairs{verdict}`: pairs per verdict in the last cycle;
//! - `dualmetrics_compare_pair_relative_error{pair}`: largest relative difference found;
//! - `dualmetrics_compare_pair_divergent_cycles{pair}`: consecutive divergent cycles;
//! - `dualmetrics_compare_pair_drift{pair}`: 1 while the pair drifts;
//! - `dualmetrics_compare_pair_gaps{pair,side}`: gaps in the window;
//! - `dualmetrics_compare_last_success_timestamp_seconds`, `dualmetrics_compare_cycles_total`.
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::diff::Verdict;
use crate::report::Report;

/// Default number of consecutive divergent cycles before a pair drifts.
pub const DEFAULT_DRIFT_AFTER: u32 = 5;

/// The state carried from cycle to cycle.
#[derive(Debug, Default)]
pub struct WatchState {
    /// Consecutive divergent cycles per pair.
    pub divergent_cycles: BTreeMap<String, u32>,
    /// Cycles run.
    pub cycles: u64,
    /// Unix time of the last cycle whose queries all answered.
    pub last_success: Option<i64>,
}

fn label(v: &str) -> String {
    v.replace('\\', "\\\\").replace('"', "\\\"").replace('\n', "\\n")
}

impl WatchState {
    /// Folds one cycle's report in and returns the metrics text.
    pub fn update(&mut self, report: &Report, now: i64, drift_after: u32) -> String {
        self.cycles += 1;
        if report.pairs.iter().all(|p| p.outcome.verdict != Verdict::Error) {
            self.last_success = Some(now);
        }
        for p in &report.pairs {
            let c = self.divergent_cycles.entry(p.name.clone()).or_default();
            *c = if p.outcome.verdict == Verdict::Divergent { *c + 1 } else { 0 };
        }
        let mut out = String::new();
        let s = report.summary();
        out.push_str("# HELP dualmetrics_compare_pairs Pairs per verdict in the last cycle.\n# TYPE dualmetrics_compare_pairs gauge\n");
        for (v, n) in [
            ("equivalent", s.equivalent),
            ("divergent", s.divergent),
            ("missing", s.missing),
            ("error", s.error),
        ] {
            let _ = writeln!(out, "dualmetrics_compare_pairs{{verdict=\"{v}\"}} {n}");
        }
        out.push_str("# TYPE dualmetrics_compare_pair_relative_error gauge\n# TYPE dualmetrics_compare_pair_divergent_cycles gauge\n# TYPE dualmetrics_compare_pair_drift gauge\n# TYPE dualmetrics_compare_pair_gaps gauge\n");
        for p in &report.pairs {
            let name = label(&p.name);
            let c = self.divergent_cycles.get(&p.name).copied().unwrap_or(0);
            let _ = writeln!(
                out,
                "dualmetrics_compare_pair_relative_error{{pair=\"{name}\"}} {}",
                p.outcome.max_rel_err
            );
            let _ =
                writeln!(out, "dualmetrics_compare_pair_divergent_cycles{{pair=\"{name}\"}} {c}");
            let _ = writeln!(
                out,
                "dualmetrics_compare_pair_drift{{pair=\"{name}\"}} {}",
                u8::from(c >= drift_after.max(1))
            );
            for side in ["legacy", "new"] {
                let n = p.outcome.gaps.iter().filter(|g| g.side == side).count();
                let _ = writeln!(
                    out,
                    "dualmetrics_compare_pair_gaps{{pair=\"{name}\",side=\"{side}\"}} {n}"
                );
            }
        }
        out.push_str("# TYPE dualmetrics_compare_last_success_timestamp_seconds gauge\n");
        let _ = writeln!(
            out,
            "dualmetrics_compare_last_success_timestamp_seconds {}",
            self.last_success.unwrap_or(0)
        );
        out.push_str("# TYPE dualmetrics_compare_cycles_total counter\n");
        let _ = writeln!(out, "dualmetrics_compare_cycles_total {}", self.cycles);
        out
    }
}

/// Serves `text` on `GET /metrics` at `listener` until `stop` is set.
pub fn serve_metrics(
    listener: TcpListener,
    text: Arc<Mutex<String>>,
    stop: Arc<AtomicBool>,
) -> std::thread::JoinHandle<()> {
    let _ = listener.set_nonblocking(true);
    std::thread::spawn(move || {
        while !stop.load(Ordering::Relaxed) {
            match listener.accept() {
                Ok((mut stream, _)) => {
                    let _ = stream.set_nonblocking(false);
                    let _ = stream.set_read_timeout(Some(Duration::from_secs(2)));
                    let mut buf = [0u8; 2048];
                    let n = stream.read(&mut buf).unwrap_or(0);
                    let req = String::from_utf8_lossy(&buf[..n]);
                    let (status, body) = if req.starts_with("GET /metrics") {
                        ("200 OK", text.lock().unwrap_or_else(|e| e.into_inner()).clone())
                    } else {
                        ("404 Not Found", "GET /metrics\n".to_owned())
                    };
                    let _ = write!(
                        stream,
                        "HTTP/1.1 {status}\r\nContent-Type: text/plain; version=0.0.4\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                        body.len()
                    );
                }
                Err(_) => std::thread::sleep(Duration::from_millis(20)),
            }
        }
    })
}

/// How a watch runs.
#[derive(Debug, Clone)]
pub struct WatchOptions {
    /// Time between cycle starts.
    pub every: Duration,
    /// Where `/metrics` is served.
    pub listen: SocketAddr,
    /// Consecutive divergent cycles before a pair drifts.
    pub drift_after: u32,
    /// Replay: the window's end starts here and advances by `replay_advance` seconds each
    /// cycle instead of following the clock (for tests and for re-checking a past incident).
    /// `None`: now.
    pub replay_from: Option<i64>,
    /// Seconds the replayed window advances per cycle.
    pub replay_advance: i64,
}

/// Runs cycles until `stop` is set: `cycle(end)` evaluates the window ending at `end`.
pub fn run_watch(
    opts: &WatchOptions,
    stop: Arc<AtomicBool>,
    mut cycle: impl FnMut(i64) -> Option<Report>,
) -> std::io::Result<()> {
    let listener = TcpListener::bind(opts.listen)?;
    let text = Arc::new(Mutex::new(String::new()));
    let server = serve_metrics(listener, text.clone(), stop.clone());
    let mut state = WatchState::default();
    let mut end = opts.replay_from;
    while !stop.load(Ordering::Relaxed) {
        let started = Instant::now();
        let now = crate::cli::unix_now();
        let at = end.unwrap_or(now);
        if let Some(report) = cycle(at) {
            *text.lock().unwrap_or_else(|e| e.into_inner()) =
                state.update(&report, now, opts.drift_after);
        }
        if let Some(e) = end.as_mut() {
            *e += opts.replay_advance;
        }
        while started.elapsed() < opts.every && !stop.load(Ordering::Relaxed) {
            std::thread::sleep(Duration::from_millis(20));
        }
    }
    stop.store(true, Ordering::Relaxed);
    let _ = server.join();
    Ok(())
}
