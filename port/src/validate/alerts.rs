//! Alert backtests: when would the Graphite alert have fired, and when the Prometheus rule?
//!
//! Both are evaluated at the alert's frequency over the window:
//!
//! - **new side**: the rule's own expression, by the new backend's `query_range` (the real
//!   PromQL evaluator, the one the rule will run on): a series present at a step is that
//!   label set's condition holding;
//! - **legacy side**: the Graphite target from the render API, then Grafana's legacy
//!   evaluation — the reducer over `(t - window, t]` of each series, the evaluator, conditions
//!   joined with and/or.
//!
//! On both, a label set fires once its condition has held for `for` (Prometheus' pending
//! state). Firing intervals are compared per label set (the labels both sides have; a series
//! without them is the alert as a whole) and every instant where only one side fires is
//! reported as an interval with its times — except an instant next to (one evaluation from) a
//! change of state on the other side: the pipelines' clocks differ by up to a flush.
use super::Verdict;
use crate::alerts::rules::AlertReport;
use crate::alerts::source::Condition;
use dualmetrics_compare::{QueryAdapter, Series, TimeRange};
use serde::Serialize;
use std::collections::{BTreeMap, BTreeSet};

/// A closed interval of evaluation instants, Unix seconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Interval {
    /// First instant.
    pub from: i64,
    /// Last instant.
    pub to: i64,
}

/// One label set's firing on both sides.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Timeline {
    /// `k=v,…` (empty: the alert as a whole).
    pub labels: String,
    /// Firing intervals of the Graphite alert.
    pub legacy: Vec<Interval>,
    /// Firing intervals of the Prometheus rule.
    pub new: Vec<Interval>,
    /// Intervals where only the legacy side fires.
    pub legacy_only: Vec<Interval>,
    /// Intervals where only the new side fires.
    pub new_only: Vec<Interval>,
}

/// One alert's backtest.
#[derive(Debug, Clone, Serialize)]
pub struct AlertResult {
    /// The alert's name as written.
    pub name: String,
    /// The rule's name.
    pub rule: Option<String>,
    /// Equivalent (same firing intervals), divergent, or not validated.
    pub verdict: Verdict,
    /// Why.
    pub explanation: String,
    /// Evaluation instants: first, last, step.
    pub range: (i64, i64, i64),
    /// Per label set.
    pub timelines: Vec<Timeline>,
    /// A query failed (the run's exit code is then 2, as the comparator's).
    pub error: bool,
}

/// Parses a Grafana/Prometheus duration (`30s`, `5m`, `1h`, `1d`, `1w`, `1h30m`) to seconds.
pub fn duration_secs(s: &str) -> Option<i64> {
    let mut total = 0i64;
    let mut num = String::new();
    let mut seen = false;
    let bytes: Vec<char> = s.trim().chars().collect();
    let mut i = 0;
    while i < bytes.len() {
        let c = bytes[i];
        if c.is_ascii_digit() {
            num.push(c);
        } else {
            let n: i64 = num.parse().ok()?;
            num.clear();
            if c == 'm' && bytes.get(i + 1) == Some(&'s') {
                i += 2; // milliseconds: whole seconds only
                total += n / 1000;
                seen = true;
                continue;
            }
            let unit = match c {
                's' => 1,
                'm' => 60,
                'h' => 3600,
                'd' => 86400,
                'w' => 604_800,
                'y' => 31_536_000,
                _ => return None,
            };
            total += n * unit;
            seen = true;
        }
        i += 1;
    }
    if !num.is_empty() {
        total += num.parse::<i64>().ok()?; // bare seconds
        seen = true;
    }
    seen.then_some(total)
}

fn reduce(reducer: &str, vals: &[f64]) -> Option<f64> {
    if vals.is_empty() {
        return if reducer == "count" { Some(0.0) } else { None };
    }
    Some(match reducer {
        "avg" => vals.iter().sum::<f64>() / vals.len() as f64,
        "min" => vals.iter().copied().fold(f64::INFINITY, f64::min),
        "max" => vals.iter().copied().fold(f64::NEG_INFINITY, f64::max),
        "sum" => vals.iter().sum(),
        "last" => *vals.last()?,
        "count" | "count_non_null" => vals.len() as f64,
        "median" => {
            let mut v = vals.to_vec();
            v.sort_by(f64::total_cmp);
            let n = v.len();
            if n % 2 == 1 {
                v[n / 2]
            } else {
                (v[n / 2 - 1] + v[n / 2]) / 2.0
            }
        }
        "diff" => vals.last()? - vals.first()?,
        _ => return None,
    })
}

fn holds(c: &Condition, v: Option<f64>) -> bool {
    let p = |i: usize| c.params.get(i).copied().unwrap_or(f64::NAN);
    match (c.evaluator.as_str(), v) {
        ("absent", v) => v.is_none(),
        (_, None) => false,
        ("gt", Some(v)) => v > p(0),
        ("lt", Some(v)) => v < p(0),
        ("ge", Some(v)) => v >= p(0),
        ("le", Some(v)) => v <= p(0),
        ("eq", Some(v)) => v == p(0),
        ("ne", Some(v)) => v != p(0),
        ("within_range", Some(v)) => v > p(0).min(p(1)) && v < p(0).max(p(1)),
        ("outside_range", Some(v)) => v < p(0).min(p(1)) || v > p(0).max(p(1)),
        _ => false,
    }
}

fn key(labels: &BTreeMap<String, String>, keys: &BTreeSet<String>) -> String {
    labels
        .iter()
        .filter(|(k, _)| keys.contains(*k))
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join(",")
}

fn intervals(times: &[i64], on: &BTreeSet<i64>, step: i64) -> Vec<Interval> {
    let mut out: Vec<Interval> = Vec::new();
    for t in times.iter().filter(|t| on.contains(t)) {
        match out.last_mut() {
            Some(last) if *t - last.to <= step => last.to = *t,
            _ => out.push(Interval { from: *t, to: *t }),
        }
    }
    out
}

/// Applies `for`: an instant fires when the condition held at every instant of `[t - for, t]`.
fn pending(times: &[i64], cond: &BTreeSet<i64>, for_secs: i64) -> BTreeSet<i64> {
    let mut out = BTreeSet::new();
    let mut since: Option<i64> = None;
    for t in times {
        if cond.contains(t) {
            let s = *since.get_or_insert(*t);
            if t - s >= for_secs {
                out.insert(*t);
            }
        } else {
            since = None;
        }
    }
    out
}

/// The window of one condition and how far before the evaluation instant it ends, seconds.
fn condition_window(c: &Condition) -> (i64, i64) {
    let w = duration_secs(&c.window).unwrap_or(300);
    let off = c.end_offset.as_deref().and_then(duration_secs).unwrap_or(0);
    (w, off)
}

/// Backtests one ported alert over `[start, end]` (evaluated at its frequency);
/// `rate_interval` replaces `$__rate_interval` in the queries it asks for data presence.
///
/// In order: both sides' data ([`AlertData::fetch`]), the instants each label set's condition
/// holds ([`new_holds`], [`legacy_holds`]), one [`timeline`] per label set, then whether the
/// new side has the data at all ([`new_side_data`]) and the verdict.
pub fn backtest(
    report: &AlertReport,
    legacy: &dyn QueryAdapter,
    new: &dyn QueryAdapter,
    start: i64,
    end: i64,
    vars: &BTreeMap<String, String>,
    rate_interval: &str,
) -> AlertResult {
    let spec = &report.spec;
    let step = duration_secs(&spec.frequency).unwrap_or(60).max(1);
    let mut result = AlertResult {
        name: spec.name.clone(),
        rule: report.rules.first().map(|r| r.alert.clone()),
        verdict: Verdict::NotValidated,
        explanation: String::new(),
        range: (start, end, step),
        timelines: Vec::new(),
        error: false,
    };
    let Some(rule) = report.rules.first() else {
        result.explanation = format!("not ported: {}", report.reasons.join("; "));
        return result;
    };
    let range = TimeRange { start, end, step };
    let data = match AlertData::fetch(report, &rule.expr, legacy, new, &range, vars) {
        Ok(data) => data,
        Err(explanation) => {
            (result.explanation, result.error) = (explanation, true);
            return result;
        }
    };
    let times: Vec<i64> = range.grid();
    let for_secs = spec.for_.as_deref().and_then(duration_secs).unwrap_or(0);
    let keys = data.shared_keys();
    let new_on = new_holds(&data.new_series, &keys);
    let legacy_on = legacy_holds(&spec.conditions, &data.legacy_conds, &times, &keys);
    let all: BTreeSet<String> = new_on.keys().chain(legacy_on.keys()).cloned().collect();
    let empty = BTreeSet::new();
    let mut divergent = Vec::new();
    for k in all {
        let l = pending(&times, legacy_on.get(&k).unwrap_or(&empty), for_secs);
        let n = pending(&times, new_on.get(&k).unwrap_or(&empty), for_secs);
        let (tl, difference) = timeline(k, &times, &l, &n, step);
        divergent.extend(difference);
        result.timelines.push(tl);
    }
    let (new_missing, new_has_data) =
        new_side_data(report, &data, new, &range, vars, rate_interval);
    let any_data = data.legacy_conds.iter().any(|(_, s)| !s.is_empty()) || new_has_data;
    if !new_missing.is_empty() {
        divergent.push(format!(
            "the new side has no data for `{}` where Graphite has some: the rule could never fire",
            new_missing.join("`, `")
        ));
    }
    if !divergent.is_empty() {
        result.verdict = Verdict::Divergent;
        result.explanation = divergent.join("; ");
    } else if !any_data && !spec.conditions.iter().any(|c| c.evaluator == "absent") {
        result.explanation = "no data on either side in the window".into();
    } else {
        result.verdict = Verdict::Equivalent;
        let fired: usize = result.timelines.iter().map(|t| t.legacy.len()).sum();
        result.explanation = format!(
            "same firing on both sides over {} evaluations ({fired} firing intervals)",
            times.len()
        );
    }
    result
}

/// What both sides returned for one alert.
struct AlertData {
    /// The rule's expression over the range, evaluated by the new backend.
    new_series: Vec<Series>,
    /// Each condition's operator and the render API's points of its target.
    legacy_conds: Vec<(String, Vec<Series>)>,
}

impl AlertData {
    /// Asks the new side for `expr` over `range` and the legacy side for each condition's target
    /// over its window before the range; the error is the explanation naming the side.
    fn fetch(
        report: &AlertReport,
        expr: &str,
        legacy: &dyn QueryAdapter,
        new: &dyn QueryAdapter,
        range: &TimeRange,
        vars: &BTreeMap<String, String>,
    ) -> Result<AlertData, String> {
        let spec = &report.spec;
        // new side: the rule's expression, evaluated by the backend itself
        let new_series = new.range(expr, range).map_err(|e| format!("new side: {e}"))?;
        // legacy side: Grafana's evaluation of each condition over the render API's points
        let mut legacy_conds: Vec<(String, Vec<Series>)> = Vec::new();
        for c in &spec.conditions {
            let (w, off) = condition_window(c);
            let target = super::expand_refs(&c.target, &spec.refs);
            let (g, _) = super::variables::fill(&target, "", vars);
            let window = TimeRange { start: range.start - w - off, end: range.end, step: 1 };
            let series = legacy.range(&g, &window).map_err(|e| format!("legacy side: {e}"))?;
            legacy_conds.push((c.operator.clone(), series));
        }
        Ok(AlertData { new_series, legacy_conds })
    }

    /// The label names both sides know: the label sets firing is compared by.
    fn shared_keys(&self) -> BTreeSet<String> {
        let new_keys: BTreeSet<String> =
            self.new_series.iter().flat_map(|s| s.labels.keys().cloned()).collect();
        let legacy_keys: BTreeSet<String> = self
            .legacy_conds
            .iter()
            .flat_map(|(_, ss)| ss.iter().flat_map(|s| s.labels.keys().cloned()))
            .collect();
        new_keys.intersection(&legacy_keys).cloned().collect()
    }
}

/// New side: per label set, the instants the rule returned a value (its condition held).
fn new_holds(new_series: &[Series], keys: &BTreeSet<String>) -> BTreeMap<String, BTreeSet<i64>> {
    let mut new_on: BTreeMap<String, BTreeSet<i64>> = BTreeMap::new();
    for s in new_series {
        let e = new_on.entry(key(&s.labels, keys)).or_default();
        for (t, v) in &s.points {
            if !v.is_nan() {
                e.insert(*t);
            }
        }
    }
    new_on
}

/// Legacy side: per label set, the instants Grafana's evaluation holds (every label set seen
/// at an instant gets an entry, firing or not).
fn legacy_holds(
    conditions: &[Condition],
    legacy_conds: &[(String, Vec<Series>)],
    times: &[i64],
    keys: &BTreeSet<String>,
) -> BTreeMap<String, BTreeSet<i64>> {
    let mut legacy_on: BTreeMap<String, BTreeSet<i64>> = BTreeMap::new();
    for &t in times {
        let mut per_key: BTreeMap<String, bool> = BTreeMap::new();
        for (i, c) in conditions.iter().enumerate() {
            for (k, h) in condition_at(c, &legacy_conds[i].1, t, keys) {
                let e = per_key.entry(k).or_insert(false);
                *e = if i == 0 {
                    h
                } else if c.operator == "or" {
                    *e || h
                } else {
                    *e && h
                };
            }
        }
        for (k, h) in per_key {
            let e = legacy_on.entry(k).or_default();
            if h {
                e.insert(t);
            }
        }
    }
    legacy_on
}

/// Whether one condition holds at `t`, per label set: the reducer over the series' points in
/// the condition's window, then the evaluator (an `absent` condition without series holds for
/// the alert as a whole).
fn condition_at(
    c: &Condition,
    series: &[Series],
    t: i64,
    keys: &BTreeSet<String>,
) -> BTreeMap<String, bool> {
    let (w, off) = condition_window(c);
    let mut cond_keys: BTreeMap<String, bool> = BTreeMap::new();
    if series.is_empty() && c.evaluator == "absent" {
        cond_keys.insert(String::new(), true);
    }
    for s in series {
        let vals: Vec<f64> = s
            .points
            .iter()
            .filter(|(pt, v)| *pt > t - off - w && *pt <= t - off && !v.is_nan())
            .map(|(_, v)| *v)
            .collect();
        let h = holds(c, reduce(&c.reducer, &vals));
        *cond_keys.entry(key(&s.labels, keys)).or_insert(false) |= h;
    }
    cond_keys
}

/// One label set's firing on both sides (`l`, `n`: the instants each fires), and the sentence
/// naming where only one side fires, if anywhere.
fn timeline(
    k: String,
    times: &[i64],
    l: &BTreeSet<i64>,
    n: &BTreeSet<i64>,
    step: i64,
) -> (Timeline, Option<String>) {
    // one evaluation of slack at a change of state: the two pipelines' clocks differ by
    // up to a flush, so an edge may land one instant apart
    let edge =
        |other: &BTreeSet<i64>, t: i64| other.contains(&(t - step)) || other.contains(&(t + step));
    let lo: BTreeSet<i64> = l.difference(n).copied().filter(|t| !edge(n, *t)).collect();
    let no: BTreeSet<i64> = n.difference(l).copied().filter(|t| !edge(l, *t)).collect();
    let tl = Timeline {
        legacy: intervals(times, l, step),
        new: intervals(times, n, step),
        legacy_only: intervals(times, &lo, step),
        new_only: intervals(times, &no, step),
        labels: k,
    };
    if tl.legacy_only.is_empty() && tl.new_only.is_empty() {
        return (tl, None);
    }
    let fmt = |v: &[Interval]| {
        v.iter()
            .map(|i| {
                format!("{}..{}", crate::report::utc_time(i.from), crate::report::utc_time(i.to))
            })
            .collect::<Vec<_>>()
            .join(", ")
    };
    let k = &tl.labels;
    let name = if k.is_empty() { "the alert".to_owned() } else { format!("{{{k}}}") };
    let mut parts = Vec::new();
    if !tl.legacy_only.is_empty() {
        parts.push(format!("only Graphite fires at {}", fmt(&tl.legacy_only)));
    }
    if !tl.new_only.is_empty() {
        parts.push(format!("only Prometheus fires at {}", fmt(&tl.new_only)));
    }
    let sentence = format!("{name}: {}", parts.join("; "));
    (tl, Some(sentence))
}

/// Does the new side have the data at all? The rule's result is empty whenever it does not
/// fire, so each condition's query is asked without the threshold. Returns the queries with no
/// data where Graphite has some, and whether the new side has any data.
fn new_side_data(
    report: &AlertReport,
    data: &AlertData,
    new: &dyn QueryAdapter,
    range: &TimeRange,
    vars: &BTreeMap<String, String>,
    rate_interval: &str,
) -> (Vec<String>, bool) {
    let mut new_missing = Vec::new();
    let mut new_has_data = !data.new_series.is_empty();
    for (i, tr) in report.translations.iter().enumerate() {
        let Some(q) = tr.promql.as_deref() else { continue };
        let step_s = format!("{}s", range.step);
        let q = q.replace("$__rate_interval", rate_interval).replace("$__interval", &step_s);
        let (_, q) = super::variables::fill("", &q, vars);
        let has = new.range(&q, range).is_ok_and(|s| !s.is_empty());
        new_has_data |= has;
        if !has && data.legacy_conds.get(i).is_some_and(|(_, s)| !s.is_empty()) {
            new_missing.push(q);
        }
    }
    (new_missing, new_has_data)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_read_like_grafana_and_prometheus() {
        assert_eq!(duration_secs("30s"), Some(30));
        assert_eq!(duration_secs("5m"), Some(300));
        assert_eq!(duration_secs("1h30m"), Some(5400));
        assert_eq!(duration_secs("2d"), Some(172_800));
        assert_eq!(duration_secs("x"), None);
    }

    #[test]
    fn reducers_follow_grafana() {
        let v = [1.0, 4.0, 2.0, 3.0];
        assert_eq!(reduce("avg", &v), Some(2.5));
        assert_eq!(reduce("median", &v), Some(2.5));
        assert_eq!(reduce("diff", &v), Some(2.0));
        assert_eq!(reduce("last", &v), Some(3.0));
        assert_eq!(reduce("count", &[]), Some(0.0));
        assert_eq!(reduce("max", &[]), None);
    }

    #[test]
    fn for_keeps_an_instant_pending_until_the_condition_held_long_enough() {
        let times: Vec<i64> = (0..10).map(|i| i * 10).collect();
        let cond: BTreeSet<i64> = [20, 30, 40, 50, 70].into_iter().collect();
        let f = pending(&times, &cond, 20);
        assert_eq!(f.into_iter().collect::<Vec<_>>(), vec![40, 50]);
        assert_eq!(
            intervals(&times, &cond, 10),
            vec![Interval { from: 20, to: 50 }, Interval { from: 70, to: 70 }]
        );
    }
}
