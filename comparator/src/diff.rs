//! The verdict per pair, from the two normalised sides: **divergent only on evidence**.
//!
//! Both sides are asked the same question at each grid instant `t` and answer with bounds
//! ([`crate::align`]):
//! - **counters**: the increase from a common baseline instant to `t`. Each side's increase
//!   lies in `[total_lo(t) - total_hi(base), total_hi(t) - total_lo(base)]`; the pair diverges
//!   at `t` when the two intervals are further apart than the tolerance. The baseline is the
//!   first instant both sides know; it moves past a gap of a per-flush (delta) side, whose
//!   counts are lost, but not past a gap of a cumulative side, whose total carries across.
//! - **gauges**: the hulls of each side's values around `t`; divergent when disjoint beyond
//!   the tolerance.
//! - **means**: the new value (a rate window ending at `t`) against the hull of legacy
//!   per-flush means over that window.
//! - **quantiles**: the `histogram_quantile` bucket holding the new value must meet the hull
//!   of legacy per-flush percentiles over the window (the true quantile of the window lies in
//!   that bucket, and between the smallest and largest per-flush percentile).
//!
//! Instants where either side is in a gap are not compared; gaps are listed per side. The
//! explanation names which side is higher and by how much, the first instant of divergence and
//! the tag sets contributing most.
use std::collections::BTreeMap;

use serde::Serialize;

use crate::normalize::{Group, Side};
use crate::pairs::{PairKind, Tolerance};
use crate::report::{utc, Chart};

/// The outcome class of one pair.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Verdict {
    /// No evidence of a difference (or the share asked for is reached).
    Equivalent,
    /// Both sides have data and it differs.
    Divergent,
    /// The legacy side returned no data.
    MissingLegacy,
    /// The new side returned no data.
    MissingNew,
    /// Neither side returned data, or they never overlap in time.
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

/// Share of compared steps a mean or quantile pair must differ at to be divergent: a flush
/// only partly inside the new side's rate window holds values its per-flush statistic does not
/// bound, so isolated steps at window edges (and next to gaps) are no evidence. 1 %.
pub const WINDOWED_MIN_DIFFERING_SHARE: f64 = 0.01;

/// Default number of tag sets named in an explanation.
pub const DEFAULT_TOP_TAG_SETS: usize = 3;

/// How strictly and where to compare.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct DiffOptions {
    /// First instant compared (Unix seconds).
    pub start: i64,
    /// Last instant compared.
    pub end: i64,
    /// Spacing of the compared instants, seconds.
    pub step: i64,
    /// Window a new-side quantile or mean value covers, seconds (0 for other kinds).
    pub back: i64,
    /// First instant the sides were fetched from (at or before `start`). A windowed new series
    /// whose first value comes later began within the fetch: its values within `back` of that
    /// first one are a **warm-up** and not compared. Their windows hold the series' first
    /// export, which carries its first interval's samples without a zero point before it, and
    /// backends disagree on what `increase()` makes of that (Prometheus leaves the first
    /// sample's contents out; VictoriaMetrics counts a small first value from 0 and a large one
    /// not, so `sum/count` of the same window mixes both readings).
    pub fetched_from: i64,
    /// Share of compared instants that must show no difference. Defaults to 1.0.
    pub min_share: f64,
    /// Tag sets named in the explanation. Defaults to [`DEFAULT_TOP_TAG_SETS`].
    pub top: usize,
}

impl DiffOptions {
    fn instants(&self) -> impl Iterator<Item = i64> + '_ {
        let step = self.step.max(1);
        (0..).map(move |i| self.start + i * step).take_while(move |t| *t <= self.end)
    }
}

/// A hole in one side's data.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SideGap {
    /// `legacy` or `new`.
    pub side: &'static str,
    /// Last instant with data before the hole (Unix seconds).
    pub from: i64,
    /// First instant with data after it.
    pub to: i64,
}

/// How one tag set differs.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TagSetDiff {
    /// `k=v,k=v`.
    pub tags: String,
    /// Legacy value (increase over the compared span, or the level where it differed most).
    pub legacy: f64,
    /// New value, same meaning.
    pub new: f64,
    /// Share of the pair's total absolute difference.
    pub share: f64,
    /// First instant it diverged.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub first_at: Option<i64>,
    /// Present on one side only.
    pub one_side_only: bool,
}

/// What the comparison found.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Outcome {
    /// The class.
    pub verdict: Verdict,
    /// Largest distance between the two sides' bounds (0 when they always overlap).
    pub max_abs_err: f64,
    /// That distance relative to the larger magnitude of the two values.
    pub max_rel_err: f64,
    /// Share of compared instants without a difference (0 when nothing was compared).
    pub share_within: f64,
    /// Instants compared (per tag set).
    pub points_compared: usize,
    /// Instants where the new side knew and the legacy side was in a gap.
    pub missing_legacy: usize,
    /// Instants where the legacy side knew and the new side was in a gap.
    pub missing_new: usize,
    /// Instant of the largest difference (internal).
    #[serde(skip)]
    pub worst_index: Option<usize>,
    /// Unix time of the largest difference.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub worst_at: Option<i64>,
    /// First instant with a difference.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub first_divergent_at: Option<i64>,
    /// `legacy` or `new`: the side that is higher where they differ.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub higher: Option<&'static str>,
    /// Relative difference of the estimates (new vs legacy) where it was largest, signed.
    pub rel_diff: f64,
    /// The tag sets that differ, largest contribution first.
    pub tag_sets: Vec<TagSetDiff>,
    /// Holes in either side's data within the range.
    pub gaps: Vec<SideGap>,
    /// Storage step of each side's data (spacing of the returned timestamps), seconds.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub legacy_step: Option<i64>,
    /// Same for the new side.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub new_step: Option<i64>,
    /// What differs, or why the pair is equivalent, in one paragraph.
    pub explanation: String,
}

impl Outcome {
    /// An outcome not yet computed.
    pub fn pending() -> Outcome {
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
            first_divergent_at: None,
            higher: None,
            rel_diff: 0.0,
            tag_sets: Vec::new(),
            gaps: Vec::new(),
            legacy_step: None,
            new_step: None,
            explanation: String::new(),
        }
    }
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
    let (lo, hi) = bucket_of(v, bounds);
    if hi.is_finite() {
        hi - lo
    } else {
        bounds.last().map_or(0.0, |b| b.abs())
    }
}

/// The bucket `[lower, upper]` holding `v` (`upper` is `+inf` above the last bound).
pub fn bucket_of(v: f64, bounds: &[f64]) -> (f64, f64) {
    let mut lower = 0.0_f64.min(bounds.first().copied().unwrap_or(0.0));
    for &b in bounds {
        if v <= b {
            return (lower, b);
        }
        lower = b;
    }
    (lower, f64::INFINITY)
}

/// Distance between two intervals (0 when they meet).
fn separation(a: (f64, f64), b: (f64, f64)) -> f64 {
    if a.0 > b.1 {
        a.0 - b.1
    } else if b.0 > a.1 {
        b.0 - a.1
    } else {
        0.0
    }
}

fn mid(a: (f64, f64)) -> f64 {
    (a.0 + a.1) / 2.0
}

fn fmt_labels(l: &BTreeMap<String, String>) -> String {
    if l.is_empty() {
        return "{}".to_owned();
    }
    l.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>().join(",")
}

/// Tag values that one side's unmatched group has and no group of the other side has.
fn lacking(unmatched: &Group, other: &[Group]) -> String {
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

fn near(x: f64, target: f64) -> bool {
    (x / target - 1.0).abs() < 0.05
}

/// A reading of a new/legacy ratio that names a likely cause (units, double counting), or
/// `None` when the ratio says nothing beyond the numbers.
pub fn ratio_cause(ratio: f64) -> Option<String> {
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
    if near(ratio, 2.0) {
        return Some("new side is 2.0× legacy: counted twice?".to_owned());
    }
    if near(1.0 / ratio, 2.0) {
        return Some("legacy side is 2.0× new: counted twice on the legacy side?".to_owned());
    }
    None
}

/// A one-line reading of a counter's new/legacy ratio, or `None` when it says nothing.
pub fn explain_ratio(ratio: f64) -> Option<String> {
    if let Some(cause) = ratio_cause(ratio) {
        return Some(cause);
    }
    if !ratio.is_finite() || ratio <= 0.0 {
        return None;
    }
    if ratio >= 1.5 {
        return Some(format!("new side is {ratio:.1}× legacy"));
    }
    if ratio <= 1.0 / 1.5 {
        return Some(format!("legacy side is {:.1}× new", 1.0 / ratio));
    }
    if (ratio - 1.0).abs() >= 0.001 {
        return Some(if ratio < 1.0 {
            format!(
                "new side is {:.1}% below legacy: increments lost on the new side?",
                (1.0 - ratio) * 100.0
            )
        } else {
            format!(
                "legacy side is {:.1}% below new: increments lost on the legacy side?",
                (1.0 - 1.0 / ratio) * 100.0
            )
        });
    }
    None
}

/// What one matched tag set showed.
#[derive(Default)]
struct GroupResult {
    compared: usize,
    differing: usize,
    missing_legacy: usize,
    missing_new: usize,
    /// Instants left out as the new series' warm-up ([`DiffOptions::fetched_from`]).
    warm_up: usize,
    max_sep: f64,
    max_rel: f64,
    worst: Option<(usize, i64)>,
    first: Option<i64>,
    /// Estimates where the difference was largest (counters: at the last compared instant).
    legacy_est: f64,
    new_est: f64,
    /// Signed relative difference of the estimates there.
    rel_diff: f64,
    /// Estimated running totals (segment, legacy, new) at each compared instant.
    points: Vec<(usize, f64, f64)>,
}

impl GroupResult {
    /// new/legacy increase factors over spans of at least half the longest one, from up to 48
    /// instants: their median is the factor an explanation quotes, steadier than any single
    /// span (an edge of the data skews the spans touching it).
    fn factors(&self, out: &mut Vec<f64>) {
        let stride = self.points.len().div_ceil(48).max(1);
        let p: Vec<&(usize, f64, f64)> = self.points.iter().step_by(stride).collect();
        let longest = p.len().saturating_sub(1);
        for i in 0..p.len() {
            for j in i + 1..p.len() {
                if p[i].0 != p[j].0 || 2 * (j - i) < longest {
                    continue;
                }
                let (dl, dn) = (p[j].1 - p[i].1, p[j].2 - p[i].2);
                if dl.abs() > 0.0 {
                    out.push(dn / dl);
                }
            }
        }
    }
}

fn rel(sep: f64, a: f64, b: f64) -> f64 {
    let mag = a.abs().max(b.abs());
    if mag > 0.0 {
        sep / mag
    } else {
        0.0
    }
}

fn signed_rel(new: f64, legacy: f64) -> f64 {
    if legacy.abs() > 0.0 {
        (new - legacy) / legacy.abs()
    } else if new != 0.0 {
        f64::INFINITY.copysign(new)
    } else {
        0.0
    }
}

fn compare_counter(
    l: &Group,
    n: &Group,
    ls: &Side,
    ns: &Side,
    sem: &PairSemantics<'_>,
    o: &DiffOptions,
) -> GroupResult {
    let mut r = GroupResult::default();
    // (instant, legacy bounds, new bounds) of the baseline.
    type Base = (i64, (f64, f64), (f64, f64));
    let mut base: Option<Base> = None;
    let mut segment = 0usize;
    for (idx, t) in o.instants().enumerate() {
        let (lk, nk) = (ls.known(t), ns.known(t));
        if lk != nk {
            if lk {
                r.missing_new += 1;
            } else {
                r.missing_legacy += 1;
            }
        }
        if !lk || !nk {
            continue;
        }
        let (Some(lt), Some(nt)) = (l.total_at(t), n.total_at(t)) else { continue };
        if base.is_some_and(|(bt, _, _)| ls.breaks(bt, t) || ns.breaks(bt, t)) {
            base = None;
            segment += 1;
        }
        let Some((bt, lb, nb)) = base else {
            base = Some((t, lt, nt));
            if let (Some(le), Some(ne)) = (l.estimate(t), n.estimate(t)) {
                r.points.push((segment, le, ne));
            }
            continue;
        };
        let li = (lt.0 - lb.1, lt.1 - lb.0);
        let ni = (nt.0 - nb.1, nt.1 - nb.0);
        let est = |g: &Group| Some(g.estimate(t)? - g.estimate(bt)?);
        let (lm, nm) = (est(l).unwrap_or(mid(li)), est(n).unwrap_or(mid(ni)));
        let sep = separation(li, ni);
        let tol = sem.tolerance.abs + sem.tolerance.rel * lm.abs().max(nm.abs());
        r.compared += 1;
        if sep > tol {
            r.differing += 1;
            r.first.get_or_insert(t);
        }
        if sep > r.max_sep {
            r.max_sep = sep;
            r.worst = Some((idx, t));
        }
        r.max_rel = r.max_rel.max(rel(sep, lm, nm));
        (r.legacy_est, r.new_est) = (lm, nm);
        r.rel_diff = signed_rel(nm, lm);
        if let (Some(le), Some(ne)) = (l.estimate(t), n.estimate(t)) {
            r.points.push((segment, le, ne));
        }
    }
    r
}

fn compare_level(
    l: &Group,
    n: &Group,
    ls: &Side,
    ns: &Side,
    sem: &PairSemantics<'_>,
    o: &DiffOptions,
) -> GroupResult {
    let mut r = GroupResult::default();
    let windowed = matches!(sem.kind, PairKind::Quantile | PairKind::Mean);
    let warm_until = if windowed { n.warm_up_end(o.fetched_from, o.back) } else { None };
    for (idx, t) in o.instants().enumerate() {
        if warm_until.is_some_and(|w| t < w) {
            r.warm_up += 1;
            continue;
        }
        let (lv, nv) = if windowed {
            (l.window_hull(t, o.back), n.value_stamped(t).map(|v| (v, v)))
        } else {
            (l.level_at(t, 0).filter(|_| ls.known(t)), n.level_at(t, 0).filter(|_| ns.known(t)))
        };
        match (lv, nv) {
            (Some(_), None) => r.missing_new += 1,
            (None, Some(_)) => r.missing_legacy += 1,
            _ => {}
        }
        let (Some(lv), Some(nv)) = (lv, nv) else { continue };
        let new_range =
            if sem.kind == PairKind::Quantile { bucket_of(nv.0, sem.buckets) } else { nv };
        let sep = separation(lv, new_range);
        let (lm, nm) = (mid(lv), mid(nv));
        let tol = sem.tolerance.abs + sem.tolerance.rel * lv.0.abs().max(lv.1.abs());
        r.compared += 1;
        let rel_here = rel(sep, if lm > nm { lv.0 } else { lv.1 }, nm);
        if sep > tol {
            r.differing += 1;
            r.first.get_or_insert(t);
        }
        if sep > r.max_sep {
            r.max_sep = sep;
            r.worst = Some((idx, t));
            (r.legacy_est, r.new_est) = (lm, nm);
            r.rel_diff = signed_rel(nm, lm);
        }
        r.max_rel = r.max_rel.max(rel_here);
    }
    r
}

fn side_gaps(ls: &Side, ns: &Side, o: &DiffOptions) -> Vec<SideGap> {
    let mut out = Vec::new();
    for (name, side) in [("legacy", ls), ("new", ns)] {
        if let Some(c) = &side.coverage {
            for g in c.gaps_within(o.start, o.end) {
                out.push(SideGap { side: name, from: g.from, to: g.to });
            }
        }
    }
    out
}

fn gap_sentence(gaps: &[SideGap], kind: PairKind, ls: &Side, ns: &Side, divergent: bool) -> String {
    let mut parts = Vec::new();
    for g in gaps.iter().take(3) {
        let side = if g.side == "legacy" { ls } else { ns };
        let tail = match kind {
            PairKind::Counter if side.delta => "its counts there are not compared",
            PairKind::Counter if !divergent => "totals across the gap agree",
            PairKind::Counter => "totals across the gap are compared",
            _ => "not compared there",
        };
        parts.push(format!("{} side had no data {}–{}; {tail}", g.side, utc(g.from), utc(g.to)));
    }
    if gaps.len() > 3 {
        parts.push(format!("{} more gaps", gaps.len() - 3));
    }
    parts.join("; ")
}

fn num(v: f64) -> String {
    crate::report::num(v)
}

/// Compares two normalised sides of one pair and returns the outcome and the chart series.
///
/// In data order: a side without data decides at once ([`missing_data`]); otherwise tag sets
/// are matched ([`TagSetMatch`]), each matched pair is compared point by point, the results are
/// summed up ([`summarise`]), the pair diverges when too few points agree, and the explanation
/// names the lacking tag values, the divergence ([`divergence_reasons`]) and the gaps.
pub fn diff(
    sem: &PairSemantics<'_>,
    legacy: &Side,
    new: &Side,
    o: &DiffOptions,
) -> (Outcome, Chart) {
    let mut out = Outcome { verdict: Verdict::Equivalent, ..Outcome::pending() };
    out.legacy_step = legacy.detected_step;
    out.new_step = new.detected_step;
    let counter = sem.kind == PairKind::Counter;
    let chart = chart(sem, legacy, new, o);
    if let Some((verdict, explanation)) = missing_data(legacy, new, counter) {
        (out.verdict, out.explanation) = (verdict, explanation.to_owned());
        return (out, chart);
    }
    out.gaps = side_gaps(legacy, new, o);

    let groups = TagSetMatch::of(legacy, new, counter);
    let results: Vec<(String, GroupResult)> = groups
        .matched
        .iter()
        .map(|(l, n)| {
            let r = if counter {
                compare_counter(l, n, legacy, new, sem, o)
            } else {
                compare_level(l, n, legacy, new, sem, o)
            };
            (fmt_labels(&l.labels), r)
        })
        .collect();
    let (compared, differing) = summarise(&mut out, &results);

    let windowed = matches!(sem.kind, PairKind::Quantile | PairKind::Mean);
    let diverges = compared > 0
        && out.share_within < o.min_share
        && (!windowed || differing as f64 > WINDOWED_MIN_DIFFERING_SHARE * compared as f64);
    out.tag_sets = tag_set_diffs(&results, &groups, counter, diverges);

    let mut reasons = groups.lacking_reasons(legacy, new);
    if diverges {
        reasons.extend(divergence_reasons(&mut out, &results, &groups, sem, o));
    }
    let gap_text = gaps_and_warm_up(&out.gaps, &results, sem.kind, legacy, new, &reasons);
    explain(&mut out, reasons, &gap_text, counter);
    (out, chart)
}

/// The verdict when a side has no data at all (or, for counters, neither side counted
/// anything); `None` when both sides can be compared.
fn missing_data(legacy: &Side, new: &Side, counter: bool) -> Option<(Verdict, &'static str)> {
    let l_data = legacy.groups.iter().any(|g| !g.tracks.is_empty());
    let n_data = new.groups.iter().any(|g| !g.tracks.is_empty());
    let l_counts = legacy.groups.iter().any(|g| g.has_data(counter));
    let n_counts = new.groups.iter().any(|g| g.has_data(counter));
    if l_data && n_data && (!counter || l_counts || n_counts) {
        return None;
    }
    Some(match (l_data, n_data) {
        (false, true) => (Verdict::MissingLegacy, "the legacy query returned no data"),
        (true, false) => (Verdict::MissingNew, "the new query returned no data"),
        (true, true) => (Verdict::NoData, "neither side counted anything"),
        _ => (Verdict::NoData, "neither query returned data"),
    })
}

/// The tag sets of both sides, matched by labels (or the single group of each side whatever
/// its labels), and those only one side has.
struct TagSetMatch<'a> {
    matched: Vec<(&'a Group, &'a Group)>,
    only_legacy: Vec<&'a Group>,
    only_new: Vec<&'a Group>,
}

impl<'a> TagSetMatch<'a> {
    fn of(legacy: &'a Side, new: &'a Side, counter: bool) -> Self {
        let mut m =
            TagSetMatch { matched: Vec::new(), only_legacy: Vec::new(), only_new: Vec::new() };
        if legacy.groups.len() == 1 && new.groups.len() == 1 {
            m.matched.push((&legacy.groups[0], &new.groups[0]));
        } else {
            for l in &legacy.groups {
                match new.groups.iter().find(|n| n.labels == l.labels) {
                    Some(n) => m.matched.push((l, n)),
                    None => m.only_legacy.push(l),
                }
            }
            m.only_new.extend(
                new.groups.iter().filter(|n| !legacy.groups.iter().any(|l| l.labels == n.labels)),
            );
        }
        // A counter tag set that never counted anything is no difference (deleteIdleStats=false
        // keeps flushing zeros for keys that once existed).
        m.only_legacy.retain(|g| g.has_data(counter));
        m.only_new.retain(|g| g.has_data(counter));
        m
    }

    /// "legacy has tag value … the new side lacks" (and the other way round), for the first
    /// unmatched tag set of each side.
    fn lacking_reasons(&self, legacy: &Side, new: &Side) -> Vec<String> {
        let mut reasons = Vec::new();
        if let Some(l) = self.only_legacy.first() {
            reasons.push(format!(
                "legacy has tag value {} the new side lacks",
                lacking(l, &new.groups)
            ));
        }
        if let Some(n) = self.only_new.first() {
            reasons.push(format!(
                "new side has tag value {} the legacy side lacks",
                lacking(n, &legacy.groups)
            ));
        }
        reasons
    }
}

/// Fills the outcome's totals over the matched tag sets (points compared and missing, largest
/// errors, share within tolerance, worst and first divergent instants) and returns the points
/// compared and differing.
fn summarise(out: &mut Outcome, results: &[(String, GroupResult)]) -> (usize, usize) {
    let compared: usize = results.iter().map(|(_, r)| r.compared).sum();
    let differing: usize = results.iter().map(|(_, r)| r.differing).sum();
    out.points_compared = compared;
    out.missing_legacy = results.iter().map(|(_, r)| r.missing_legacy).sum();
    out.missing_new = results.iter().map(|(_, r)| r.missing_new).sum();
    out.max_abs_err = results.iter().map(|(_, r)| r.max_sep).fold(0.0, f64::max);
    out.max_rel_err = results.iter().map(|(_, r)| r.max_rel).fold(0.0, f64::max);
    out.share_within =
        if compared == 0 { 0.0 } else { (compared - differing) as f64 / compared as f64 };
    if let Some((_, r)) = results
        .iter()
        .filter(|(_, r)| r.max_sep > 0.0)
        .max_by(|a, b| a.1.max_sep.total_cmp(&b.1.max_sep))
    {
        out.worst_index = r.worst.map(|w| w.0);
        out.worst_at = r.worst.map(|w| w.1);
    }
    out.first_divergent_at =
        results.iter().filter(|(_, r)| r.differing > 0).filter_map(|(_, r)| r.first).min();
    (compared, differing)
}

/// Each tag set's share of the difference, largest first: the differing matched ones (when the
/// pair diverges) and every tag set only one side has.
fn tag_set_diffs(
    results: &[(String, GroupResult)],
    groups: &TagSetMatch<'_>,
    counter: bool,
    diverges: bool,
) -> Vec<TagSetDiff> {
    let mut sets: Vec<TagSetDiff> = Vec::new();
    if diverges {
        for (tags, r) in results.iter().filter(|(_, r)| r.differing > 0) {
            sets.push(TagSetDiff {
                tags: tags.clone(),
                legacy: r.legacy_est,
                new: r.new_est,
                share: (r.new_est - r.legacy_est).abs(),
                first_at: r.first,
                one_side_only: false,
            });
        }
    }
    let one_side = groups.only_legacy.iter().map(|g| (g, true));
    for (g, on_legacy) in one_side.chain(groups.only_new.iter().map(|g| (g, false))) {
        let v = one_side_value(g, counter);
        let (legacy, new) = if on_legacy { (v, 0.0) } else { (0.0, v) };
        sets.push(TagSetDiff {
            tags: fmt_labels(&g.labels),
            legacy,
            new,
            share: v.abs(),
            first_at: None,
            one_side_only: true,
        });
    }
    let total: f64 = sets.iter().map(|s| s.share).sum();
    for s in &mut sets {
        s.share = if total > 0.0 { s.share / total } else { 0.0 };
    }
    sets.sort_by(|a, b| b.share.total_cmp(&a.share));
    sets
}

/// What a tag set only one side has amounts to: its increase (counters) or its last values.
fn one_side_value(g: &Group, counter: bool) -> f64 {
    if counter {
        g.tracks
            .iter()
            .filter_map(|t| {
                Some(t.obs.last()?.v - if t.starts_late { 0.0 } else { t.obs.first()?.v })
            })
            .sum()
    } else {
        g.tracks.iter().filter_map(|t| t.obs.last().map(|o| o.v)).sum()
    }
}

/// The sentences of a divergent pair: how far apart the sides are (and the likely cause), then
/// the tag sets that contribute most. Sets the outcome's `rel_diff` and `higher`.
fn divergence_reasons(
    out: &mut Outcome,
    results: &[(String, GroupResult)],
    groups: &TagSetMatch<'_>,
    sem: &PairSemantics<'_>,
    o: &DiffOptions,
) -> Vec<String> {
    let counter = sem.kind == PairKind::Counter;
    let differing = || results.iter().filter(|(_, r)| r.differing > 0);
    let (le, ne): (f64, f64) =
        differing().fold((0.0, 0.0), |a, (_, r)| (a.0 + r.legacy_est, a.1 + r.new_est));
    out.rel_diff = signed_rel(ne, le);
    out.higher = Some(if ne > le { "new" } else { "legacy" });
    let first =
        out.first_divergent_at.map(|t| format!(", first at {}", utc(t))).unwrap_or_default();
    let head = if counter {
        let mut ratios: Vec<f64> = Vec::new();
        for (_, r) in differing() {
            r.factors(&mut ratios);
        }
        ratios.sort_by(f64::total_cmp);
        let ratio = match ratios.get(ratios.len() / 2) {
            Some(m) => *m,
            None if le != 0.0 => ne / le,
            None => f64::NAN,
        };
        counter_divergence(out, ratio, le, ne, &first)
    } else {
        level_divergence(out, results, sem.kind, &first)
    };
    let mut reasons = vec![head];
    let named: Vec<String> = out
        .tag_sets
        .iter()
        .filter(|s| !s.one_side_only)
        .take(o.top)
        .map(|s| {
            format!(
                "{} (legacy {}, new {}, {:.0}% of the difference)",
                s.tags,
                num(s.legacy),
                num(s.new),
                s.share * 100.0
            )
        })
        .collect();
    if !named.is_empty() && (results.len() > 1 || !groups.matched[0].0.labels.is_empty()) {
        reasons.push(format!("tag sets: {}", named.join("; ")));
    }
    reasons
}

/// "2x the legacy increase (increase: legacy 10, new 20, new higher by 10, first at …)".
fn counter_divergence(out: &Outcome, ratio: f64, le: f64, ne: f64, first: &str) -> String {
    let mut s = explain_ratio(ratio)
        .unwrap_or_else(|| format!("totals differ by {:.2}%", out.rel_diff.abs() * 100.0));
    s.push_str(&format!(
        " (increase: legacy {}, new {}, {} higher by {}{first})",
        num(le),
        num(ne),
        out.higher.unwrap_or("new"),
        num((ne - le).abs())
    ));
    s
}

/// "values differ at 3 of 10 steps, max 2.0% (new side higher, first at …)", prefixed by the
/// likely cause of a level ratio (a unit, a sample rate).
fn level_divergence(
    out: &Outcome,
    results: &[(String, GroupResult)],
    kind: PairKind,
    first: &str,
) -> String {
    let what = match kind {
        PairKind::Quantile => "the new quantile's bucket misses the legacy values",
        _ => "values differ",
    };
    let differing: usize = results.iter().map(|(_, r)| r.differing).sum();
    let mut s = format!(
        "{what} at {differing} of {} steps, max {:.1}% ({} side higher{first})",
        out.points_compared,
        out.max_rel_err * 100.0,
        out.higher.unwrap_or("new")
    );
    let level_ratio = results
        .iter()
        .filter(|(_, r)| r.differing > 0 && r.legacy_est != 0.0)
        .map(|(_, r)| r.new_est / r.legacy_est)
        .next();
    if let Some(cause) = level_ratio.and_then(ratio_cause) {
        s = format!("{cause}; {s}");
    }
    s
}

/// The sentence on the sides' gaps and on the new series' warm-up steps left out (empty when
/// there are neither).
fn gaps_and_warm_up(
    gaps: &[SideGap],
    results: &[(String, GroupResult)],
    kind: PairKind,
    legacy: &Side,
    new: &Side,
    reasons: &[String],
) -> String {
    let mut gap_text = gap_sentence(gaps, kind, legacy, new, !reasons.is_empty());
    let warm_up: usize = results.iter().map(|(_, r)| r.warm_up).max().unwrap_or(0);
    if warm_up > 0 {
        let sep = if gap_text.is_empty() { "" } else { "; " };
        gap_text = format!(
            "{gap_text}{sep}the new series began within the range: its first {warm_up} steps \
             (windows holding its first export, which has no zero point) are not compared"
        );
    }
    gap_text
}

/// The verdict and explanation: divergent with its reasons, or no data, or equivalent; then
/// the gap sentence.
fn explain(out: &mut Outcome, reasons: Vec<String>, gap_text: &str, counter: bool) {
    let compared = out.points_compared;
    if reasons.is_empty() {
        if compared == 0 {
            out.verdict = Verdict::NoData;
            out.explanation = if counter {
                "no two instants where both sides' totals are known (each point's instant is \
                 uncertain by its storage step and --max-lag: data spans this short leave none)"
            } else {
                "no instant where both sides have data"
            }
            .to_owned();
        } else {
            out.explanation =
                format!("{compared} steps compared, no difference (max {})", num(out.max_abs_err));
        }
    } else {
        out.verdict = Verdict::Divergent;
        out.explanation = reasons.join("; ");
    }
    if !gap_text.is_empty() {
        out.explanation = format!("{}; {gap_text}", out.explanation);
    }
}

/// The chart series: per instant each side's value summed over tag sets (`NaN` = unknown).
/// Counters: the running total since the side's first known instant.
fn chart(sem: &PairSemantics<'_>, legacy: &Side, new: &Side, o: &DiffOptions) -> Chart {
    let t: Vec<i64> = o.instants().collect();
    let line = |side: &Side, is_new: bool| -> Vec<f64> {
        let mut base: Option<f64> = None;
        t.iter()
            .map(|&ti| {
                if !side.known(ti) {
                    return f64::NAN;
                }
                let mut acc = 0.0;
                for g in &side.groups {
                    let v = match sem.kind {
                        PairKind::Counter => g.total_at(ti).map(mid),
                        PairKind::Gauge => g.level_at(ti, 0).map(mid),
                        _ if is_new => g.value_stamped(ti),
                        _ => g.level_at(ti, 0).map(mid),
                    };
                    match v {
                        Some(v) => acc += v,
                        None if sem.kind == PairKind::Counter => return f64::NAN,
                        None => {}
                    }
                }
                if sem.kind == PairKind::Counter {
                    let b = *base.get_or_insert(acc);
                    acc - b
                } else {
                    acc
                }
            })
            .collect()
    };
    let legacy_line = line(legacy, false);
    let new_line = line(new, true);
    Chart { t, legacy: legacy_line, new: new_line }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::align::Stamps;
    use crate::normalize::{normalize, Combine, SideSpec};
    use crate::pairs::Form;
    use crate::query::Series;

    const COUNTER: PairSemantics<'static> = PairSemantics {
        kind: PairKind::Counter,
        tolerance: Tolerance { abs: 0.5, rel: 1e-3 },
        buckets: &[],
    };

    fn opts(start: i64, end: i64) -> DiffOptions {
        DiffOptions { start, end, step: 10, back: 0, fetched_from: start, min_share: 1.0, top: 3 }
    }

    fn side(points: Vec<(i64, f64)>, form: Form, stamps: Stamps) -> Side {
        let spec = SideSpec {
            form,
            running_total: form != Form::Level,
            scale: 1.0,
            keys: &[],
            names: &[],
            combine: Combine::Sum,
            stamps,
            step: 10,
            slack: 0,
        };
        normalize(&[Series { labels: BTreeMap::new(), points }], &spec)
    }

    /// Events at `rate` per second (fractional rates: one event every 1/rate s), flushed as
    /// per-interval counts every `flush` s at phase `lp`, and exported cumulatively every
    /// `export` s at phase `np`. `new_factor` scales the new side's counts.
    fn counter_sides(
        rate: f64,
        lp: i64,
        np: i64,
        new_factor: f64,
        drop: &dyn Fn(i64) -> bool,
    ) -> (Side, Side) {
        let events = |a: i64, b: i64| -> f64 {
            // events in (a, b]: floor(b*rate) - floor(a*rate)
            ((b as f64 * rate).floor() - (a as f64 * rate).floor()).max(0.0)
        };
        let mut legacy = Vec::new();
        let mut f = lp;
        while f <= 3600 {
            if !drop(f) {
                legacy.push((f, events(f - 10, f)));
            }
            f += 10;
        }
        let mut new = Vec::new();
        let mut e = np;
        while e <= 3600 {
            new.push((e, events(0, e) * new_factor));
            e += 10;
        }
        (side(legacy, Form::Delta, Stamps::Exact), side(new, Form::Cumulative, Stamps::Exact))
    }

    #[test]
    fn clean_counters_agree_at_any_phase_offset_and_rate() {
        for rate in [0.03, 0.1, 0.7, 3.0, 50.0] {
            for (lp, np) in [(0, 0), (1, 9), (9, 1), (3, 7), (5, 5), (7, 2)] {
                let (l, n) = counter_sides(rate, lp, np, 1.0, &|_| false);
                let (o, _) = diff(&COUNTER, &l, &n, &opts(60, 3500));
                assert_eq!(
                    o.verdict,
                    Verdict::Equivalent,
                    "rate {rate} phases {lp}/{np}: {}",
                    o.explanation
                );
                assert!(o.points_compared > 300);
            }
        }
    }

    #[test]
    fn double_counting_is_caught_at_any_phase_offset() {
        for rate in [0.1, 3.0] {
            for (lp, np) in [(0, 0), (3, 7), (9, 1)] {
                let (l, n) = counter_sides(rate, lp, np, 2.0, &|_| false);
                let (o, _) = diff(&COUNTER, &l, &n, &opts(60, 3500));
                assert_eq!(o.verdict, Verdict::Divergent, "rate {rate}");
                assert!(o.explanation.contains("2.0× legacy: counted twice?"), "{}", o.explanation);
                assert_eq!(o.higher, Some("new"));
            }
        }
    }

    #[test]
    fn one_percent_lost_is_caught() {
        let (l, n) = counter_sides(5.0, 3, 7, 0.99, &|_| false);
        let (o, _) = diff(&COUNTER, &l, &n, &opts(60, 3500));
        assert_eq!(o.verdict, Verdict::Divergent);
        assert!(o.explanation.contains("1.0% below legacy"), "{}", o.explanation);
    }

    #[test]
    fn a_legacy_outage_loses_its_counts_and_is_no_divergence() {
        let (l, n) = counter_sides(3.0, 3, 7, 1.0, &|f| (1200..1500).contains(&f));
        let (o, _) = diff(&COUNTER, &l, &n, &opts(60, 3500));
        assert_eq!(o.verdict, Verdict::Equivalent, "{}", o.explanation);
        assert_eq!(o.gaps.len(), 1);
        assert!(o.explanation.contains("legacy side had no data"), "{}", o.explanation);
    }

    #[test]
    fn a_new_side_outage_is_compared_across_the_gap() {
        let (l, _) = counter_sides(3.0, 3, 7, 1.0, &|_| false);
        let pts: Vec<(i64, f64)> = (0..=360)
            .map(|k| 7 + 10 * k)
            .filter(|e| *e <= 3600 && !(1200..1500).contains(e))
            .map(|e| (e, (e as f64 * 3.0).floor()))
            .collect();
        let n = side(pts, Form::Cumulative, Stamps::Exact);
        let (o, _) = diff(&COUNTER, &l, &n, &opts(60, 3500));
        assert_eq!(o.verdict, Verdict::Equivalent, "{}", o.explanation);
        assert!(o.explanation.contains("totals across the gap agree"), "{}", o.explanation);
    }

    #[test]
    fn gauge_off_by_two_percent_is_worded_as_values() {
        let g = |t: i64| 100.0 + ((t / 30) % 7) as f64;
        let l: Vec<(i64, f64)> = (0..360).map(|k| (3 + 10 * k, g(3 + 10 * k))).collect();
        let n: Vec<(i64, f64)> = (0..360).map(|k| (7 + 10 * k, g(7 + 10 * k) * 1.02)).collect();
        let gauge = PairSemantics {
            kind: PairKind::Gauge,
            tolerance: PairKind::Gauge.default_tolerance(),
            buckets: &[],
        };
        let (o, _) = diff(
            &gauge,
            &side(l.clone(), Form::Level, Stamps::Exact),
            &side(n, Form::Level, Stamps::Exact),
            &opts(60, 3500),
        );
        assert_eq!(o.verdict, Verdict::Divergent);
        assert!(o.explanation.contains("values differ at"), "{}", o.explanation);
        assert!(o.explanation.contains("new side higher"), "{}", o.explanation);
        let clean: Vec<(i64, f64)> = (0..360).map(|k| (7 + 10 * k, g(7 + 10 * k))).collect();
        let (o, _) = diff(
            &gauge,
            &side(l, Form::Level, Stamps::Exact),
            &side(clean, Form::Level, Stamps::Exact),
            &opts(60, 3500),
        );
        assert_eq!(o.verdict, Verdict::Equivalent, "{}", o.explanation);
    }

    #[test]
    fn gauges_sampled_at_the_same_instants_with_clock_slack_are_compared() {
        let g = |t: i64| 100.0 + ((t / 30) % 7) as f64;
        let pts: Vec<(i64, f64)> = (0..360).map(|k| (10 * k, g(10 * k))).collect();
        let mk = |p: &[(i64, f64)]| {
            let spec = SideSpec {
                form: Form::Level,
                running_total: false,
                scale: 1.0,
                keys: &[],
                names: &[],
                combine: Combine::Sum,
                stamps: Stamps::Exact,
                step: 10,
                slack: 1,
            };
            normalize(&[Series { labels: BTreeMap::new(), points: p.to_vec() }], &spec)
        };
        let gauge = PairSemantics {
            kind: PairKind::Gauge,
            tolerance: PairKind::Gauge.default_tolerance(),
            buckets: &[],
        };
        let (o, _) = diff(&gauge, &mk(&pts), &mk(&pts), &opts(60, 3500));
        assert_eq!(o.verdict, Verdict::Equivalent, "{}", o.explanation);
    }

    /// Read from the lab: VictoriaMetrics' `sum(increase(sum[w])) / sum(increase(count[w]))`
    /// over windows holding a new histogram series' first export (count 2, sum 110, no zero
    /// point) gave 0, 23.3, 37.5 while every legacy per-flush mean was 50 or more.
    #[test]
    fn a_new_series_windows_holding_its_first_export_are_a_warm_up_not_a_divergence() {
        let mean = PairSemantics {
            kind: PairKind::Mean,
            tolerance: PairKind::Mean.default_tolerance(),
            buckets: &[],
        };
        let l = side(
            (0..12).map(|k| (100 + 10 * k, 50.0 + k as f64)).collect(),
            Form::Level,
            Stamps::Exact,
        );
        let mut started: Vec<(i64, f64)> = vec![(100, 0.0), (110, 23.3), (120, 37.5)];
        started.extend((3..12).map(|k| (100 + 10 * k, 49.0 + k as f64)));
        let n = side(started, Form::Level, Stamps::GridEnd);
        let o = DiffOptions { back: 30, fetched_from: 40, ..opts(100, 210) };
        let (out, _) = diff(&mean, &l, &n, &o);
        assert_eq!(out.verdict, Verdict::Equivalent, "{}", out.explanation);
        assert_eq!(out.points_compared, 9, "{}", out.explanation);
        assert!(out.explanation.contains("first 3 steps"), "{}", out.explanation);
        // A series that was already running when the fetch began has no warm-up: the same
        // values are a divergence.
        let o = DiffOptions { fetched_from: 100, ..o };
        assert_eq!(diff(&mean, &l, &n, &o).0.verdict, Verdict::Divergent);
    }

    #[test]
    fn quantile_must_land_in_a_bucket_meeting_the_legacy_values() {
        let bounds = [0.0, 5.0, 10.0, 25.0, 50.0];
        let q = PairSemantics {
            kind: PairKind::Quantile,
            tolerance: Tolerance { abs: 0.0, rel: 0.0 },
            buckets: &bounds,
        };
        let l = side((0..20).map(|k| (10 * k, 12.0)).collect(), Form::Level, Stamps::Exact);
        let ok = side((0..20).map(|k| (10 * k, 24.0)).collect(), Form::Level, Stamps::GridEnd);
        let o = DiffOptions { back: 20, ..opts(50, 150) };
        assert_eq!(diff(&q, &l, &ok, &o).0.verdict, Verdict::Equivalent);
        let high = side((0..20).map(|k| (10 * k, 26.0)).collect(), Form::Level, Stamps::GridEnd);
        assert_eq!(diff(&q, &l, &high, &o).0.verdict, Verdict::Divergent);
    }

    #[test]
    fn bucket_width_of_values() {
        let b = [0.0, 5.0, 10.0];
        assert_eq!(bucket_width(3.0, &b), 5.0);
        assert_eq!(bucket_width(10.0, &b), 5.0);
        assert_eq!(bucket_width(50.0, &b), 10.0);
    }

    #[test]
    fn empty_side_is_missing() {
        let a = side(vec![(0, 0.0), (10, 1.0)], Form::Cumulative, Stamps::Exact);
        let none = side(vec![], Form::Cumulative, Stamps::Exact);
        assert_eq!(diff(&COUNTER, &none, &a, &opts(0, 10)).0.verdict, Verdict::MissingLegacy);
        assert_eq!(diff(&COUNTER, &a, &none, &opts(0, 10)).0.verdict, Verdict::MissingNew);
        assert_eq!(diff(&COUNTER, &none, &none, &opts(0, 10)).0.verdict, Verdict::NoData);
    }

    #[test]
    fn small_shortfall_reads_as_lost_increments() {
        assert!(explain_ratio(0.99).unwrap().contains("1.0% below legacy"));
        assert!(explain_ratio(1.0).is_none());
        assert!(explain_ratio(1e-3).unwrap().contains("unit ms vs s"));
    }
}
