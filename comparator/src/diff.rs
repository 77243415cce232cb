//! The verdict per pair: pure, from the two normalised sides.
//!
//! For each grid point `i` of each matched group, the new value is checked against the
//! **legacy band**: the smallest and largest legacy values over the cells
//! `i - back - lag ..= i + lag`. `lag` absorbs the two pipelines reporting at different
//! moments (StatsD flushes every second, an OTLP exporter every few seconds); `back` widens
//! the band to the window a new-side `increase()`/`histogram_quantile()` covers. For levels
//! this is sound: the percentile (or mean) of a union of flushes lies between the smallest and
//! the largest per-flush percentile (mean). The allowed distance outside the band is the
//! pair's tolerance, plus — for quantiles — the width of the bucket holding the new value
//! (`histogram_quantile` only knows that the value is somewhere in that bucket).
//!
//! A point where one side has data and the other has none in its band counts as missing on
//! that side and is not within tolerance. Points missing on both sides are not compared.
use std::collections::BTreeMap;

use serde::Serialize;

use crate::align::{Aligned, Cell};
use crate::pairs::{PairKind, Tolerance};

/// The outcome class of one pair.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Verdict {
    /// Every compared point is within tolerance (or the share asked for is reached).
    Equivalent,
    /// Both sides have data and it differs.
    Divergent,
    /// The legacy side returned no data.
    MissingLegacy,
    /// The new side returned no data.
    MissingNew,
    /// Neither side returned data.
    NoData,
    /// A query failed.
    Error,
}

impl Verdict {
    /// The report word (`equivalent`, `missing-new`, …).
    pub fn as_str(self) -> &'static str {
        match self {
            Verdict::Equivalent => "equivalent",
            Verdict::Divergent => "divergent",
            Verdict::MissingLegacy => "missing-legacy",
            Verdict::MissingNew => "missing-new",
            Verdict::NoData => "no-data",
            Verdict::Error => "error",
        }
    }
}

/// How strictly to compare.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct DiffOptions {
    /// Cells of timing slack on each side.
    pub lag: usize,
    /// Extra cells the band reaches back (rate window − 1 step) for quantile and mean pairs.
    pub back: usize,
    /// Share of compared points that must be within tolerance. Defaults to 1.0.
    pub min_share: f64,
    /// First cell compared: the cells before it only widen the band (they are fetched so that
    /// the band is not clipped at the start of the range).
    pub first: usize,
    /// End of the compared cells (the grid minus the skipped most recent cells).
    pub len: usize,
}

/// What the comparison found.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Outcome {
    /// The class.
    pub verdict: Verdict,
    /// Largest distance from the new value to the legacy band.
    pub max_abs_err: f64,
    /// That distance relative to the larger magnitude of the two values (at most 1 when one is 0).
    pub max_rel_err: f64,
    /// Share of compared points within tolerance (0 when nothing was compared).
    pub share_within: f64,
    /// Points compared.
    pub points_compared: usize,
    /// Points with new data but no legacy data.
    pub missing_legacy: usize,
    /// Points with legacy data but no new data.
    pub missing_new: usize,
    /// Grid index of the largest error (the report turns it into a timestamp).
    #[serde(skip)]
    pub worst_index: Option<usize>,
    /// Unix time of the largest error.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub worst_at: Option<i64>,
    /// One line saying what differs.
    pub explanation: String,
}

/// Inputs of [`diff`] that come from the pair.
#[derive(Debug, Clone, Copy)]
pub struct PairSemantics<'a> {
    /// What is measured.
    pub kind: PairKind,
    /// Allowed difference.
    pub tolerance: Tolerance,
    /// Quantile bucket bounds, already in the legacy unit.
    pub buckets: &'a [f64],
}

/// Width of the bucket holding `v`, bounds sorted ascending. Above the last bound: the last
/// bound's value (`histogram_quantile` answers the largest finite bound there).
pub fn bucket_width(v: f64, bounds: &[f64]) -> f64 {
    let mut lower = 0.0_f64.min(bounds.first().copied().unwrap_or(0.0));
    for &b in bounds {
        if v <= b {
            return b - lower;
        }
        lower = b;
    }
    bounds.last().map_or(0.0, |b| b.abs())
}

fn has_data(a: &[Aligned], len: usize) -> bool {
    a.iter().any(|s| s.cells.iter().take(len).any(|c| !c.is_missing()))
}

fn all_zero(a: &Aligned, len: usize) -> bool {
    a.cells.iter().take(len).all(|c| c.is_missing() || c.value == 0.0)
}

fn fmt_labels(l: &BTreeMap<String, String>) -> String {
    if l.is_empty() {
        return "{}".to_owned();
    }
    l.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>().join(",")
}

/// Tag values that one side's unmatched group has and no group of the other side has.
fn lacking(unmatched: &Aligned, other: &[Aligned]) -> String {
    let novel: Vec<String> = unmatched
        .labels
        .iter()
        .filter(|(k, v)| !other.iter().any(|o| o.labels.get(*k) == Some(*v)))
        .map(|(k, v)| format!("{k}={v}"))
        .collect();
    if novel.is_empty() {
        fmt_labels(&unmatched.labels)
    } else {
        novel.join(",")
    }
}

#[derive(Default)]
struct Tally {
    compared: usize,
    within: usize,
    missing_legacy: usize,
    missing_new: usize,
    max_abs: f64,
    max_rel: f64,
    worst: Option<usize>,
    ratios: Vec<f64>,
}

fn compare_group(
    legacy: &[Cell],
    new: &[Cell],
    sem: &PairSemantics<'_>,
    o: &DiffOptions,
    t: &mut Tally,
) {
    let len = o.len.min(legacy.len()).min(new.len());
    // The band may reach into the skipped most recent cells: they are not compared, but they
    // hold the legacy values the new side lags behind at the end of the range.
    let last = legacy.len().min(new.len()).saturating_sub(1);
    for i in o.first..len {
        let n = new[i];
        let from = i.saturating_sub(o.back + o.lag);
        let to = (i + o.lag).min(last);
        let band = legacy[from..=to].iter().filter(|c| !c.is_missing());
        let (lo, hi) = band
            .fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), c| (lo.min(c.lo), hi.max(c.hi)));
        if n.is_missing() {
            if !legacy[i].is_missing() {
                let new_near = new[from..=to].iter().any(|c| !c.is_missing());
                if !new_near {
                    t.compared += 1;
                    t.missing_new += 1;
                }
            }
            continue;
        }
        t.compared += 1;
        if lo > hi {
            t.missing_legacy += 1;
            continue;
        }
        let v = n.value;
        let (err, nearest) = if v < lo {
            (lo - v, lo)
        } else if v > hi {
            (v - hi, hi)
        } else {
            (0.0, v)
        };
        let mut tol = sem.tolerance.abs + sem.tolerance.rel * lo.abs().max(hi.abs());
        if sem.kind == PairKind::Quantile {
            tol += bucket_width(v, sem.buckets);
        }
        if err <= tol {
            t.within += 1;
        }
        let mag = nearest.abs().max(v.abs());
        let rel = if mag > 0.0 { err / mag } else { 0.0 };
        if err > t.max_abs {
            t.worst = Some(i);
        }
        t.max_abs = t.max_abs.max(err);
        t.max_rel = t.max_rel.max(rel);
        let l = legacy[i];
        if !l.is_missing() && l.value.abs() > 1e-12 && v.abs() > 1e-12 {
            t.ratios.push(v / l.value);
        }
    }
}

fn near(x: f64, target: f64) -> bool {
    (x / target - 1.0).abs() < 0.05
}

/// A one-line reading of the median new/legacy ratio, or `None` when it says nothing.
pub fn explain_ratio(ratio: f64) -> Option<String> {
    if !ratio.is_finite() || ratio <= 0.0 {
        return None;
    }
    for (factor, unit) in [(1e3, "ms vs s"), (1e6, "us vs s"), (6e4, "ms vs min")] {
        if near(ratio, factor) {
            return Some(format!("values differ by ×{factor} (new side larger): unit {unit}?"));
        }
        if near(1.0 / ratio, factor) {
            return Some(format!("values differ by ×{factor} (legacy side larger): unit {unit}?"));
        }
    }
    if ratio >= 1.5 {
        let hint = if near(ratio, 2.0) { ": counted twice?" } else { "" };
        return Some(format!("new side is {ratio:.1}× legacy{hint}"));
    }
    if ratio <= 1.0 / 1.5 {
        let r = 1.0 / ratio;
        let hint = if near(r, 2.0) { ": counted twice on the legacy side?" } else { "" };
        return Some(format!("legacy side is {r:.1}× new{hint}"));
    }
    if (ratio - 1.0).abs() >= 0.001 {
        return Some(if ratio < 1.0 {
            format!(
                "new side is {:.1}% below legacy: points dropped on the new side?",
                (1.0 - ratio) * 100.0
            )
        } else {
            format!(
                "legacy side is {:.1}% below new: points dropped on the legacy side?",
                (1.0 - 1.0 / ratio) * 100.0
            )
        });
    }
    None
}

fn median(v: &mut [f64]) -> Option<f64> {
    if v.is_empty() {
        return None;
    }
    v.sort_by(f64::total_cmp);
    Some(v[v.len() / 2])
}

/// Compares two normalised sides of one pair.
pub fn diff(
    sem: &PairSemantics<'_>,
    legacy: &[Aligned],
    new: &[Aligned],
    o: &DiffOptions,
) -> Outcome {
    let mut out = Outcome { verdict: Verdict::Equivalent, ..Outcome::pending() };
    let (l_data, n_data) = (has_data(legacy, o.len), has_data(new, o.len));
    let counter = sem.kind == PairKind::Counter;
    let counter_empty = |a: &[Aligned]| counter && a.iter().all(|s| all_zero(s, o.len));
    if !l_data || !n_data || (counter_empty(legacy) && counter_empty(new)) {
        (out.verdict, out.explanation) = match (l_data, n_data) {
            (false, true) => {
                (Verdict::MissingLegacy, "the legacy query returned no data".to_owned())
            }
            (true, false) => (Verdict::MissingNew, "the new query returned no data".to_owned()),
            _ => (Verdict::NoData, "neither query returned data".to_owned()),
        };
        return out;
    }

    // Match groups: by labels, or the single group of each side whatever its labels.
    let mut matched: Vec<(&Aligned, &Aligned)> = Vec::new();
    let mut only_legacy: Vec<&Aligned> = Vec::new();
    let mut only_new: Vec<&Aligned> = Vec::new();
    if legacy.len() == 1 && new.len() == 1 {
        matched.push((&legacy[0], &new[0]));
    } else {
        for l in legacy {
            match new.iter().find(|n| n.labels == l.labels) {
                Some(n) => matched.push((l, n)),
                None => only_legacy.push(l),
            }
        }
        only_new.extend(new.iter().filter(|n| !legacy.iter().any(|l| l.labels == n.labels)));
    }
    // A counter group that never counted anything is no difference (deleteIdleStats=false
    // keeps flushing zeros for keys that once existed).
    let len = o.len;
    only_legacy
        .retain(|a| !(counter && all_zero(a, len)) && has_data(std::slice::from_ref(*a), len));
    only_new.retain(|a| !(counter && all_zero(a, len)) && has_data(std::slice::from_ref(*a), len));

    let mut t = Tally::default();
    for (l, n) in &matched {
        compare_group(&l.cells, &n.cells, sem, o, &mut t);
    }
    out.points_compared = t.compared;
    out.missing_legacy = t.missing_legacy;
    out.missing_new = t.missing_new;
    out.max_abs_err = t.max_abs;
    out.max_rel_err = t.max_rel;
    out.worst_index = t.worst;
    out.share_within = if t.compared == 0 { 0.0 } else { t.within as f64 / t.compared as f64 };

    let mut reasons: Vec<String> = Vec::new();
    if let Some(l) = only_legacy.first() {
        reasons.push(format!("legacy has tag value {} the new side lacks", lacking(l, new)));
    }
    if let Some(n) = only_new.first() {
        reasons
            .push(format!("new side has tag value {} the legacy side lacks", lacking(n, legacy)));
    }
    let below = t.compared > 0 && out.share_within < o.min_share;
    if below || t.compared == 0 {
        if t.missing_new > 0 {
            reasons.push(format!("new side lacks {} of {} points", t.missing_new, t.compared));
        }
        if t.missing_legacy > 0 {
            reasons
                .push(format!("legacy side lacks {} of {} points", t.missing_legacy, t.compared));
        }
        if let Some(text) = median(&mut t.ratios).and_then(explain_ratio) {
            reasons.push(text);
        }
        if reasons.is_empty() {
            reasons.push(format!(
                "{:.1}% of points within tolerance; max error {:.4} ({:.2}%)",
                out.share_within * 100.0,
                out.max_abs_err,
                out.max_rel_err * 100.0
            ));
        }
    }
    if reasons.is_empty() {
        out.explanation =
            format!("{} points within tolerance (max error {:.4})", t.compared, out.max_abs_err);
    } else {
        out.verdict = Verdict::Divergent;
        out.explanation = reasons.join("; ");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn side(labels: &[(&str, &str)], values: &[f64]) -> Aligned {
        Aligned {
            labels: labels.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect(),
            cells: values.iter().map(|v| Cell::exact(*v)).collect(),
        }
    }

    const COUNTER: PairSemantics<'static> = PairSemantics {
        kind: PairKind::Counter,
        tolerance: Tolerance { abs: 0.5, rel: 1e-3 },
        buckets: &[],
    };

    fn opts(len: usize) -> DiffOptions {
        DiffOptions { lag: 0, back: 0, min_share: 1.0, first: 0, len }
    }

    #[test]
    fn identical_sides_are_equivalent() {
        let a = side(&[], &[0.0, 1.0, 3.0]);
        let o = diff(&COUNTER, std::slice::from_ref(&a), std::slice::from_ref(&a), &opts(3));
        assert_eq!(o.verdict, Verdict::Equivalent, "{}", o.explanation);
        assert_eq!(o.share_within, 1.0);
    }

    #[test]
    fn doubled_counter_is_divergent_and_explained() {
        let l = side(&[], &[0.0, 10.0, 20.0, 30.0]);
        let n = side(&[], &[0.0, 20.0, 40.0, 60.0]);
        let o = diff(&COUNTER, &[l], &[n], &opts(4));
        assert_eq!(o.verdict, Verdict::Divergent);
        assert!(o.explanation.contains("2.0× legacy: counted twice?"), "{}", o.explanation);
    }

    #[test]
    fn lag_absorbs_reporting_delay() {
        let l = side(&[], &[0.0, 10.0, 20.0, 20.0]);
        let n = side(&[], &[0.0, 0.0, 10.0, 20.0]);
        let mut o = opts(4);
        assert_eq!(
            diff(&COUNTER, std::slice::from_ref(&l), std::slice::from_ref(&n), &o).verdict,
            Verdict::Divergent
        );
        o.lag = 1;
        assert_eq!(diff(&COUNTER, &[l], &[n], &o).verdict, Verdict::Equivalent);
    }

    #[test]
    fn thousandfold_values_point_at_units() {
        let gauge = PairSemantics { kind: PairKind::Gauge, ..COUNTER };
        let o = diff(&gauge, &[side(&[], &[250.0, 300.0])], &[side(&[], &[0.25, 0.3])], &opts(2));
        assert!(
            o.explanation.contains("×1000 (legacy side larger): unit ms vs s"),
            "{}",
            o.explanation
        );
    }

    #[test]
    fn quantile_tolerance_is_the_bucket_width() {
        let bounds = [0.0, 5.0, 10.0, 25.0, 50.0];
        let q = PairSemantics {
            kind: PairKind::Quantile,
            tolerance: Tolerance { abs: 0.0, rel: 0.0 },
            buckets: &bounds,
        };
        let o = diff(&q, &[side(&[], &[12.0])], &[side(&[], &[24.0])], &opts(1));
        assert_eq!(o.verdict, Verdict::Equivalent, "{}", o.explanation);
        let o = diff(&q, &[side(&[], &[4.0])], &[side(&[], &[24.0])], &opts(1));
        assert_eq!(o.verdict, Verdict::Divergent);
    }

    #[test]
    fn bucket_width_of_values() {
        let b = [0.0, 5.0, 10.0];
        assert_eq!(bucket_width(3.0, &b), 5.0);
        assert_eq!(bucket_width(10.0, &b), 5.0);
        assert_eq!(bucket_width(50.0, &b), 10.0);
    }

    #[test]
    fn missing_tag_value_is_named() {
        let l = [side(&[("code", "200")], &[0.0, 5.0]), side(&[("code", "500")], &[0.0, 2.0])];
        let n = [side(&[("code", "200")], &[0.0, 5.0])];
        let o = diff(&COUNTER, &l, &n, &opts(2));
        assert_eq!(o.verdict, Verdict::Divergent);
        assert!(
            o.explanation.contains("legacy has tag value code=500 the new side lacks"),
            "{}",
            o.explanation
        );
    }

    #[test]
    fn zero_counter_group_on_one_side_is_no_difference() {
        let l = [side(&[("code", "200")], &[0.0, 5.0]), side(&[("code", "500")], &[0.0, 0.0])];
        let n = [side(&[("code", "200")], &[0.0, 5.0])];
        assert_eq!(diff(&COUNTER, &l, &n, &opts(2)).verdict, Verdict::Equivalent);
    }

    #[test]
    fn empty_side_is_missing() {
        let a = side(&[], &[0.0, 1.0]);
        assert_eq!(
            diff(&COUNTER, &[], std::slice::from_ref(&a), &opts(2)).verdict,
            Verdict::MissingLegacy
        );
        assert_eq!(diff(&COUNTER, &[a], &[], &opts(2)).verdict, Verdict::MissingNew);
        assert_eq!(diff(&COUNTER, &[], &[], &opts(2)).verdict, Verdict::NoData);
    }

    #[test]
    fn missing_new_points_are_counted() {
        let gauge = PairSemantics { kind: PairKind::Gauge, ..COUNTER };
        let l = side(&[], &[1.0, 1.0, 1.0, 1.0]);
        let mut n = side(&[], &[1.0, 1.0, 1.0, 1.0]);
        n.cells[2] = Cell::MISSING;
        let o = diff(&gauge, &[l], &[n], &opts(4));
        assert_eq!(o.missing_new, 1);
        assert!(o.explanation.contains("new side lacks 1 of 4 points"), "{}", o.explanation);
    }

    #[test]
    fn small_shortfall_reads_as_dropped_points() {
        assert!(explain_ratio(0.99).unwrap().contains("1.0% below legacy"));
        assert!(explain_ratio(1.0).is_none());
    }

    #[test]
    fn min_share_allows_a_few_outliers() {
        let gauge = PairSemantics { kind: PairKind::Gauge, ..COUNTER };
        let l = side(&[], &[1.0, 1.0, 1.0, 1.0]);
        let n = side(&[], &[1.0, 1.0, 1.0, 9.0]);
        let mut o = opts(4);
        o.min_share = 0.75;
        assert_eq!(diff(&gauge, &[l], &[n], &o).verdict, Verdict::Equivalent);
    }
}
