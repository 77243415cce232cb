//! The pipeline for a set of pairs: query both sides → normalise → align → diff → report rows.
//!
//! Pairs run on a small pool of threads (the work is waiting on HTTP); each pair is
//! independent, so one failing query gives that pair the `error` verdict and the others go on.
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;

use crate::align::{compared_len, Aligned};
use crate::diff::{diff, DiffOptions, Outcome, PairSemantics, Verdict};
use crate::normalize::{normalize, Combine, SideSpec};
use crate::pairs::{expand, Pair, PairKind};
use crate::query::{QueryAdapter, TimeRange};
use crate::report::{Chart, PairReport};

/// Defaults of [`CompareSettings`].
pub const DEFAULT_SKIP_RECENT: usize = 2;
/// Default timing slack between the two pipelines, in seconds.
pub const DEFAULT_MAX_LAG_SECS: i64 = 20;
/// Default window of `increase()` in generated quantile/mean queries, in seconds.
pub const DEFAULT_WINDOW_SECS: i64 = 60;
/// Default number of pairs queried at once.
pub const DEFAULT_PARALLEL: usize = 8;

/// How pairs are evaluated, independent of where the backends are.
#[derive(Debug, Clone)]
pub struct CompareSettings {
    /// Range and step grid.
    pub range: TimeRange,
    /// Most recent grid points left out. Defaults to 2.
    pub skip_recent: usize,
    /// Timing slack between the two pipelines, seconds. Defaults to 20.
    pub max_lag_secs: i64,
    /// Window substituted for `$window`, seconds. Defaults to 60.
    pub window_secs: i64,
    /// Share of points that must be within tolerance. Defaults to 1.0.
    pub min_share: f64,
    /// Pairs queried at once. Defaults to 8.
    pub parallel: usize,
}

fn combine_for(kind: PairKind) -> Combine {
    match kind {
        PairKind::Counter | PairKind::Gauge => Combine::Sum,
        PairKind::Quantile | PairKind::Mean => Combine::Max,
    }
}

fn chart_line(sides: &[Aligned], n: usize) -> Vec<f64> {
    (0..n)
        .map(|i| {
            let present: Vec<f64> =
                sides.iter().map(|s| s.cells[i].value).filter(|v| !v.is_nan()).collect();
            if present.is_empty() {
                f64::NAN
            } else {
                present.iter().sum()
            }
        })
        .collect()
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
    // Fetch `lag + back` extra steps before the start, so the band of the first compared
    // points is as wide as everywhere else; only points from `start` on are compared.
    let lag = usize::try_from((s.max_lag_secs.max(0) + step - 1) / step).unwrap_or(0);
    let back = match pair.kind {
        PairKind::Quantile | PairKind::Mean => {
            usize::try_from((s.window_secs.max(step) + step - 1) / step - 1).unwrap_or(0)
        }
        _ => 0,
    };
    let first = lag + back;
    let range = TimeRange { start: range.start - first as i64 * step, ..range };
    let (l_res, n_res) = (legacy.range(&legacy_q, &range), new.range(&new_q, &range));
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
    let grid = range.grid();
    let n = grid.len();
    let running_total = pair.kind == PairKind::Counter;
    let combine = combine_for(pair.kind);
    let lspec = SideSpec {
        form: pair.legacy_form,
        running_total,
        scale: 1.0,
        keys: &pair.group_by,
        names: &pair.group_by,
        combine,
    };
    let nspec = SideSpec {
        form: pair.new_form,
        running_total,
        scale: pair.new_scale,
        keys: &pair.new_group_by,
        names: &pair.group_by,
        combine,
    };
    let l = normalize(&l_series, &lspec, &range, n);
    let nw = normalize(&n_series, &nspec, &range, n);
    let buckets: Vec<f64> = pair.buckets.iter().map(|b| b * pair.new_scale).collect();
    let sem = PairSemantics { kind: pair.kind, tolerance: pair.tolerance, buckets: &buckets };
    let len = compared_len(n, s.skip_recent);
    let opts = DiffOptions { lag, back, min_share: s.min_share, first: first.min(len), len };
    row.outcome = diff(&sem, &l, &nw, &opts);
    row.outcome.worst_at = row.outcome.worst_index.map(|i| grid[i]);
    row.chart =
        Chart { t: grid[..len].to_vec(), legacy: chart_line(&l, len), new: chart_line(&nw, len) };
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

impl Outcome {
    /// An outcome not yet computed.
    pub(crate) fn pending() -> Outcome {
        Outcome {
            verdict: Verdict::Error,
            max_abs_err: 0.0,
            max_rel_err: 0.0,
            share_within: 0.0,
            points_compared: 0,
            missing_legacy: 0,
            missing_new: 0,
            worst_index: None,
            worst_at: None,
            explanation: String::new(),
        }
    }
}
