//! The pipeline for a set of pairs: query both sides → normalise → diff → report rows.
//!
//! Pairs run on a small pool of threads (the work is waiting on HTTP; the pool bounds the
//! requests in flight at twice its size); each pair is independent, so one failing query gives
//! that pair the `error` verdict and the others go on.
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;

use crate::align::Stamps;
use crate::diff::{diff, DiffOptions, PairSemantics, Verdict, DEFAULT_TOP_TAG_SETS};
use crate::normalize::{normalize, Combine, SideSpec};
use crate::pairs::{expand, Pair, PairKind};
use crate::query::{QueryAdapter, Series, TimeRange};
use crate::report::{PairReport, Report};

/// Default of [`CompareSettings::skip_recent`]: the 20 seconds before *now* are left out
/// (ingestion lag: the newest samples may not be queryable yet on one side). A range that ended
/// longer ago than that is compared whole.
pub const DEFAULT_SKIP_RECENT_SECS: i64 = 20;
/// Default timing slack between the two pipelines' clocks, in seconds (timestamps are rounded
/// to the second).
pub const DEFAULT_MAX_LAG_SECS: i64 = 1;
/// Default window of `increase()` in generated quantile/mean queries, in seconds.
pub const DEFAULT_WINDOW_SECS: i64 = 60;
/// Default number of pairs queried at once.
pub const DEFAULT_PARALLEL: usize = 8;

/// How pairs are evaluated, independent of where the backends are.
#[derive(Debug, Clone)]
pub struct CompareSettings {
    /// Range and step grid.
    pub range: TimeRange,
    /// Seconds before now left out of the range (nothing when the range ended earlier).
    /// Defaults to [`DEFAULT_SKIP_RECENT_SECS`].
    pub skip_recent: i64,
    /// Clock slack between the two pipelines, seconds. Defaults to [`DEFAULT_MAX_LAG_SECS`].
    pub max_lag_secs: i64,
    /// Window substituted for `$window`, seconds. Defaults to 60.
    pub window_secs: i64,
    /// Share of compared steps that must show no difference. Defaults to 1.0.
    pub min_share: f64,
    /// Pairs queried at once. Defaults to 8.
    pub parallel: usize,
    /// Tag sets named in explanations. Defaults to [`DEFAULT_TOP_TAG_SETS`].
    pub top_tag_sets: usize,
}

impl Default for CompareSettings {
    fn default() -> Self {
        CompareSettings {
            range: TimeRange { start: 0, end: 0, step: 10 },
            skip_recent: DEFAULT_SKIP_RECENT_SECS,
            max_lag_secs: DEFAULT_MAX_LAG_SECS,
            window_secs: DEFAULT_WINDOW_SECS,
            min_share: 1.0,
            parallel: DEFAULT_PARALLEL,
            top_tag_sets: DEFAULT_TOP_TAG_SETS,
        }
    }
}

fn unix_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

fn combine_for(kind: PairKind) -> Combine {
    match kind {
        PairKind::Counter | PairKind::Gauge => Combine::Sum,
        PairKind::Quantile | PairKind::Mean => Combine::Max,
    }
}

/// Raw samples when the adapter can fetch them for this query, else the range answer.
fn fetch(
    a: &dyn QueryAdapter,
    q: &str,
    range: &TimeRange,
) -> (Result<Vec<Series>, crate::QueryError>, Stamps) {
    match a.raw(q, range) {
        Some(r) => (r, Stamps::Exact),
        None => (a.range(q, range), a.stamps()),
    }
}

/// Evaluates one pair.
pub fn compare_pair(
    pair: &Pair,
    legacy: &dyn QueryAdapter,
    new: &dyn QueryAdapter,
    s: &CompareSettings,
) -> PairReport {
    let range = s.range;
    let step = range.step.max(1);
    let legacy_q = expand(&pair.legacy, step, s.window_secs);
    let new_q = expand(&pair.new, step, s.window_secs);
    let mut row = PairReport::new(pair, &legacy_q, &new_q);
    let windowed = matches!(pair.kind, PairKind::Quantile | PairKind::Mean);
    // A new-side window value at t covers (t - window, t], plus one export before it.
    let back = if windowed { s.window_secs.max(step) + step } else { 0 };
    // Fetch enough before the start that the first compared instant has data on both sides.
    // A whole number of steps: grid answers must land on the compared instants.
    let margin = (back + s.max_lag_secs.max(0) + 4 * step - 1) / step * step;
    let fetch_range = TimeRange { start: range.start - margin, ..range };
    let (l_res, l_stamps) = fetch(legacy, &legacy_q, &fetch_range);
    let (n_res, n_stamps) = fetch(new, &new_q, &fetch_range);
    let mut errors = Vec::new();
    if let Err(e) = &l_res {
        errors.push(format!("legacy: {e}"));
    }
    if let Err(e) = &n_res {
        errors.push(format!("new: {e}"));
    }
    let (Ok(l_series), Ok(n_series)) = (l_res, n_res) else {
        row.outcome.verdict = Verdict::Error;
        row.outcome.explanation = errors.join("; ");
        row.error = Some(row.outcome.explanation.clone());
        return row;
    };
    let running_total = pair.kind == PairKind::Counter;
    let combine = combine_for(pair.kind);
    let lag = s.max_lag_secs.max(0);
    let lspec = SideSpec {
        form: pair.legacy_form,
        running_total,
        scale: 1.0,
        keys: &pair.group_by,
        names: &pair.group_by,
        combine,
        stamps: l_stamps,
        step,
        slack: lag,
    };
    let nspec = SideSpec {
        form: pair.new_form,
        running_total,
        scale: pair.new_scale,
        keys: &pair.new_group_by,
        names: &pair.group_by,
        combine,
        stamps: n_stamps,
        step,
        slack: lag,
    };
    let l = normalize(&l_series, &lspec);
    let nw = normalize(&n_series, &nspec);
    let buckets: Vec<f64> = pair.buckets.iter().map(|b| b * pair.new_scale).collect();
    let sem = PairSemantics { kind: pair.kind, tolerance: pair.tolerance, buckets: &buckets };
    let opts = DiffOptions {
        start: range.start,
        end: range.end.min(unix_now() - s.skip_recent.max(0)).max(range.start),
        step,
        back,
        fetched_from: fetch_range.start,
        min_share: s.min_share,
        top: s.top_tag_sets,
    };
    let (outcome, chart) = diff(&sem, &l, &nw, &opts);
    row.outcome = outcome;
    row.chart = chart;
    row
}

/// Evaluates every pair on `settings.parallel` threads; rows keep the pairs' order.
pub fn compare_all(
    pairs: &[Pair],
    legacy: &dyn QueryAdapter,
    new: &dyn QueryAdapter,
    s: &CompareSettings,
) -> Vec<PairReport> {
    let next = AtomicUsize::new(0);
    let rows: Mutex<Vec<Option<PairReport>>> = Mutex::new(vec![None; pairs.len()]);
    let threads = s.parallel.clamp(1, 64).min(pairs.len().max(1));
    std::thread::scope(|scope| {
        for _ in 0..threads {
            scope.spawn(|| loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                let Some(pair) = pairs.get(i) else { break };
                let row = compare_pair(pair, legacy, new, s);
                rows.lock().unwrap_or_else(|e| e.into_inner())[i] = Some(row);
            });
        }
    });
    rows.into_inner().unwrap_or_else(|e| e.into_inner()).into_iter().flatten().collect()
}

/// Compares every pair ([`compare_all`]) and assembles the report: the rows, warnings about
/// settings the data contradicts ([`step_warnings`]) before `notes`, and both backends'
/// descriptions. What `dualmetrics compare` (once or each `--watch` cycle) and the demo report.
pub fn compare_report(
    pairs: &[Pair],
    notes: &[String],
    legacy: &dyn QueryAdapter,
    new: &dyn QueryAdapter,
    s: &CompareSettings,
) -> Report {
    let rows = compare_all(pairs, legacy, new, s);
    let r = s.range;
    let mut all_notes = step_warnings(&rows, r.step);
    all_notes.extend(notes.iter().cloned());
    Report {
        legacy_backend: legacy.describe(),
        new_backend: new.describe(),
        start: r.start,
        end: r.end,
        step: r.step,
        notes: all_notes,
        pairs: rows,
    }
}

/// Warnings about settings the data contradicts: a grid step finer than a side's storage step
/// (steps inside one storage interval tell nothing new).
pub fn step_warnings(rows: &[PairReport], step: i64) -> Vec<String> {
    let mut out = Vec::new();
    for (side, get) in [
        ("legacy", (|r: &PairReport| r.outcome.legacy_step) as fn(&PairReport) -> Option<i64>),
        ("new", |r: &PairReport| r.outcome.new_step),
    ] {
        let mut steps: Vec<i64> = rows.iter().filter_map(get).collect();
        if steps.is_empty() {
            continue;
        }
        steps.sort_unstable();
        let typical = steps[steps.len() / 2];
        if step < typical {
            out.push(format!(
                "--step {step}s is finer than the {side} side's storage step {typical}s (spacing of its timestamps): use --step {typical}s or more"
            ));
        }
    }
    out
}
