//! Validation on live data: does the ported dashboard show what the Graphite one showed?
//!
//! For every ported target (a ported dashboard keeps the Graphite text beside the PromQL, see
//! [`crate::grafana::panel::GRAPHITE_FIELD`]), the Graphite target goes to the legacy render API
//! and the PromQL to the new backend's `query_range`, over the dual-write window, and the
//! **comparator** decides (its adapters, alignment, tolerance, explanations): this module only
//! builds the pairs ([`target_pair`]) and rolls the verdicts up.
//!
//! - [`variables`]: template variables set to a value (`--var env=prod`), or to "all"
//!   (`*` on the Graphite side, `.*` on the PromQL side).
//! - [`alerts`]: alert backtests, firing intervals per label set on both sides.
//!
//! # Verdicts
//! [`Verdict::Equivalent`], [`Verdict::Divergent`] (the comparator found a difference, or the
//! new side has no data where the legacy side has) or [`Verdict::NotValidated`] (untranslatable,
//! no legacy data in the window, a query error). A panel or dashboard is as bad as its worst
//! target, so "not validated" is never counted as equivalent.
pub mod alerts;
pub mod cli;
pub mod variables;

use crate::grafana::{dashboard, io, panel::GRAPHITE_FIELD};
use crate::translate::Semantics;
use dualmetrics_compare::pairs::{Form, Pair, PairKind, Tolerance, DEFAULT_BUCKETS};
use dualmetrics_compare::report::Chart;
use dualmetrics_compare::{compare_all, CompareSettings, PairReport, QueryAdapter};
use serde::Serialize;
use serde_json::Value;
use std::collections::BTreeMap;
use std::path::PathBuf;

/// Relative tolerance for values computed with `rate()` from a counter: Prometheus' `rate()`
/// over a window of exports and the daemon's per-flush counts agree only to the sender's
/// jitter and the phase of the flush (5 %).
pub const RATED_REL_TOLERANCE: f64 = 0.05;
/// Pairs per query in flight between two progress reports of [`validate_dashboards`] (4).
pub const PROGRESS_CHUNK_PER_QUERY: usize = 4;
/// Absolute slack for rated values (half an event).
pub const RATED_ABS_TOLERANCE: f64 = 0.5;

/// The verdict of a target, panel, dashboard or alert.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Verdict {
    /// Both sides show the same within tolerance.
    Equivalent,
    /// Not compared (untranslatable, no data, an error): never counted as equivalent.
    NotValidated,
    /// The sides differ.
    Divergent,
}

impl Verdict {
    /// `equivalent`, `not validated`, `divergent`.
    pub fn as_str(self) -> &'static str {
        match self {
            Verdict::Equivalent => "equivalent",
            Verdict::NotValidated => "not validated",
            Verdict::Divergent => "divergent",
        }
    }

    /// The worst of several (divergent, then not validated); an empty list is not validated.
    pub fn worst(vs: impl IntoIterator<Item = Verdict>) -> Verdict {
        vs.into_iter().max().unwrap_or(Verdict::NotValidated)
    }
}

/// One target's validation.
#[derive(Debug, Clone, Serialize)]
pub struct TargetResult {
    /// refId.
    pub ref_id: String,
    /// The Graphite target as sent (variables filled).
    pub graphite: String,
    /// The PromQL as sent.
    pub promql: Option<String>,
    /// The translation status (`exact`, `approximate`, …).
    pub status: String,
    /// The verdict.
    pub verdict: Verdict,
    /// The comparator's verdict word (`equivalent`, `missing-new`, …), when it ran.
    pub comparator: Option<String>,
    /// Why: the comparator's explanation, or why it was not validated.
    pub explanation: String,
    /// Both curves, normalised (for the HTML report; not serialised).
    #[serde(skip)]
    pub chart: Chart,
}

/// One panel's validation.
#[derive(Debug, Clone, Serialize)]
pub struct PanelResult {
    /// Row title, if any.
    pub row: Option<String>,
    /// Panel title.
    pub title: String,
    /// Panel id.
    pub id: Option<i64>,
    /// Worst of its targets.
    pub verdict: Verdict,
    /// Its targets (hidden ones included: they are what the visible ones are made of).
    pub targets: Vec<TargetResult>,
}

/// One dashboard's validation.
#[derive(Debug, Clone, Serialize)]
pub struct DashboardResult {
    /// Title.
    pub title: String,
    /// The ported file.
    pub source: String,
    /// Worst of its panels.
    pub verdict: Verdict,
    /// Its panels with targets.
    pub panels: Vec<PanelResult>,
}

/// Settings of a validation.
#[derive(Debug, Clone)]
pub struct ValidateOptions {
    /// The translator's context the dashboards were ported with (for the value semantics).
    pub ctx: crate::Context,
    /// The comparator's settings (window, step, parallelism …).
    pub settings: CompareSettings,
    /// What replaces `$__rate_interval` (and `$__interval`: the step).
    pub rate_interval: String,
    /// Template variable values; a variable not given means "all".
    pub vars: BTreeMap<String, String>,
}

/// Whether a meaning is computed with `rate()` from a counter.
pub fn rated(s: &Semantics) -> bool {
    match s {
        Semantics::CountPerInterval { .. }
        | Semantics::SumPerInterval { .. }
        | Semantics::PerSecond => true,
        Semantics::Across { of, .. }
        | Semantics::OverTime { of, .. }
        | Semantics::Derived { of, .. } => rated(of),
        Semantics::Percent | Semantics::Ratio | Semantics::Mixed => true,
        _ => false,
    }
}

/// The tolerance for a meaning: levels use the comparator's gauge tolerance, rated values
/// [`RATED_REL_TOLERANCE`]; quantiles are compared within their bucket by the comparator.
pub fn tolerance(s: &Semantics) -> Tolerance {
    if rated(s) {
        Tolerance { abs: RATED_ABS_TOLERANCE, rel: RATED_REL_TOLERANCE }
    } else {
        PairKind::Gauge.default_tolerance()
    }
}

/// Labels a legend format names (`{{host}} {{env}}` → host, env): the labels that tell the
/// target's series apart, compared one tag set at a time.
pub fn legend_labels(legend: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut rest = legend;
    while let Some(i) = rest.find("{{") {
        let Some(j) = rest[i..].find("}}") else { break };
        let l = rest[i + 2..i + j].trim().to_owned();
        if !l.is_empty() && !out.contains(&l) {
            out.push(l);
        }
        rest = &rest[i + j + 2..];
    }
    out
}

/// The labels a PromQL expression leaves open, so that its result has one series per value:
/// those of `by (…)` clauses and of regex matchers (`route=~".*"`, a template variable set to
/// all), never `__name__` or `le`.
pub fn open_labels(promql: &str) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    let mut push = |l: &str| {
        let l = l.trim();
        if !l.is_empty() && l != "__name__" && l != "le" && !out.iter().any(|o| o == l) {
            out.push(l.to_owned());
        }
    };
    let mut rest = promql;
    while let Some(i) = rest.find("by") {
        let before_ok = i == 0 || !rest.as_bytes()[i - 1].is_ascii_alphanumeric();
        let after = rest[i + 2..].trim_start();
        if before_ok && after.starts_with('(') {
            if let Some(close) = after.find(')') {
                after[1..close].split(',').for_each(&mut push);
            }
        }
        rest = &rest[i + 2..];
    }
    let b = promql.as_bytes();
    for (i, _) in promql.match_indices("=~").chain(promql.match_indices("!~")) {
        let mut j = i;
        while j > 0 && (b[j - 1].is_ascii_alphanumeric() || b[j - 1] == b'_') {
            j -= 1;
        }
        push(&promql[j..i]);
    }
    out
}

/// The comparator pair for one translated target, or why it is not validated.
///
/// # Errors
/// The reason the target is not validated (untranslatable, no PromQL).
pub fn target_pair(
    name: &str,
    graphite: &str,
    promql: Option<&str>,
    legend: Option<&str>,
    semantics: Option<&Semantics>,
    quantile: bool,
    opts: &ValidateOptions,
) -> Result<Pair, String> {
    let Some(promql) = promql.filter(|p| !p.is_empty()) else {
        return Err("no PromQL (untranslatable or not ported)".into());
    };
    let (g, p) = variables::fill(graphite, promql, &opts.vars);
    let p = p
        .replace("$__rate_interval", &opts.rate_interval)
        .replace("$__interval", &format!("{}s", opts.settings.range.step.max(1)))
        .replace(
            "$__range",
            &format!("{}s", (opts.settings.range.end - opts.settings.range.start).max(1)),
        );
    let mut by = legend.map(legend_labels).unwrap_or_default();
    if by.is_empty() && quantile {
        // a legend that names no label (`alias(…, 'p90')`): quantiles of different series
        // cannot be combined, so they are compared one value of what the query leaves open at
        // a time (the two sides' other labels differ: `service.name` has no Graphite tag)
        by = open_labels(&p);
    }
    let sem = semantics.cloned().unwrap_or(Semantics::Level);
    Ok(Pair {
        name: name.to_owned(),
        kind: if quantile { PairKind::Quantile } else { PairKind::Gauge },
        legacy: g,
        new: p,
        legacy_form: Form::Level, // both sides are read as levels: the PromQL already is one
        new_form: Form::Level,
        new_scale: 1.0,
        unit: String::new(),
        tolerance: tolerance(&sem),
        buckets: DEFAULT_BUCKETS.to_vec(),
        group_by: by.clone(),
        new_group_by: by,
    })
}

fn is_quantile(s: Option<&Semantics>) -> bool {
    match s {
        Some(Semantics::Quantile { .. }) => true,
        Some(
            Semantics::Across { of, .. }
            | Semantics::OverTime { of, .. }
            | Semantics::Derived { of, .. },
        ) => is_quantile(Some(of)),
        _ => false,
    }
}

/// Maps the comparator's verdict to ours: no data on the new side where the legacy side has
/// some is a difference; no legacy data, or an error, is "not validated".
pub fn verdict_of(v: dualmetrics_compare::Verdict) -> Verdict {
    use dualmetrics_compare::Verdict as C;
    match v {
        C::Equivalent => Verdict::Equivalent,
        C::Divergent | C::MissingNew => Verdict::Divergent,
        C::MissingLegacy | C::NoData | C::Error => Verdict::NotValidated,
    }
}

struct Planned {
    dashboard: usize,
    panel: usize,
    target: usize,
    pair: Option<usize>,
}

/// Validates the ported dashboards under `inputs` (their targets carry the Graphite text);
/// every pair goes through the comparator on `settings.parallel` threads.
///
/// `progress` is told (targets compared, targets to compare) after every chunk of
/// `parallel` × [`PROGRESS_CHUNK_PER_QUERY`] pairs.
///
/// Stages: [`Planning`] reads every dashboard into results and pairs, the comparator compares
/// the pairs, [`apply_row`] writes each verdict back to its target, [`roll_up`] gives panels
/// and dashboards their worst target's verdict.
///
/// # Errors
/// Inputs that cannot be listed or read.
pub fn validate_dashboards(
    inputs: &[PathBuf],
    legacy: &dyn QueryAdapter,
    new: &dyn QueryAdapter,
    opts: &ValidateOptions,
    progress: &mut dyn FnMut(usize, usize),
) -> Result<Vec<DashboardResult>, crate::grafana::PortError> {
    let mut planning = Planning::default();
    for input in io::find(inputs)? {
        let doc = io::read_json(&input.path)?;
        let Some(dash) = dashboard::dashboard_of(&doc) else { continue };
        planning.dashboard(dash, input.path.display().to_string(), opts);
    }
    let Planning { mut results, pairs, plan } = planning;
    // in chunks, so that a long run can show progress between them
    let chunk = opts.settings.parallel.max(1) * PROGRESS_CHUNK_PER_QUERY;
    let mut rows = Vec::with_capacity(pairs.len());
    for part in pairs.chunks(chunk) {
        rows.extend(compare_all(part, legacy, new, &opts.settings));
        progress(rows.len(), pairs.len());
    }
    for pl in &plan {
        if let Some(i) = pl.pair {
            apply_row(&mut results[pl.dashboard].panels[pl.panel].targets[pl.target], &rows[i]);
        }
    }
    roll_up(&mut results);
    Ok(results)
}

/// The dashboards read so far: their results (every verdict still "not validated"), the
/// comparator pairs of their targets, and where each target's result is.
#[derive(Default)]
struct Planning {
    results: Vec<DashboardResult>,
    pairs: Vec<Pair>,
    plan: Vec<Planned>,
}

impl Planning {
    /// Adds one dashboard: a panel result for every panel with Graphite targets, a target
    /// result for each of those targets, and a pair for each target that can be validated.
    fn dashboard(&mut self, dash: &Value, source: String, opts: &ValidateOptions) {
        let title = dash.get("title").and_then(Value::as_str).unwrap_or("(untitled)").to_owned();
        let mut panels = Vec::new();
        for (row, p) in dashboard::panels(dash) {
            let targets: Vec<&Value> = p
                .get("targets")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .filter(|t| t.get(GRAPHITE_FIELD).is_some())
                .collect();
            if targets.is_empty() {
                continue;
            }
            let panel_title = p.get("title").and_then(Value::as_str).unwrap_or_default();
            let refs = panel_refs(p);
            let mut tr = Vec::new();
            for t in targets {
                let name = format!("{title} / {panel_title} / {}", ref_id(t));
                let (target, pair) = plan_target(t, name, &refs, opts);
                let pair = pair.map(|pr| {
                    self.pairs.push(pr);
                    self.pairs.len() - 1
                });
                self.plan.push(Planned {
                    dashboard: self.results.len(),
                    panel: panels.len(),
                    target: tr.len(),
                    pair,
                });
                tr.push(target);
            }
            panels.push(PanelResult {
                row,
                title: panel_title.to_owned(),
                id: p.get("id").and_then(Value::as_i64),
                verdict: Verdict::NotValidated,
                targets: tr,
            });
        }
        self.results.push(DashboardResult {
            title,
            source,
            verdict: Verdict::NotValidated,
            panels,
        });
    }
}

fn ref_id(t: &Value) -> &str {
    t.get("refId").and_then(Value::as_str).unwrap_or_default()
}

/// The Graphite text of every target of a panel, by `refId` (what `#A` refers to).
fn panel_refs(p: &Value) -> BTreeMap<String, String> {
    let mut refs = BTreeMap::new();
    for o in p.get("targets").and_then(Value::as_array).into_iter().flatten() {
        if let (Some(r), Some(g)) =
            (o.get("refId").and_then(Value::as_str), o.get(GRAPHITE_FIELD).and_then(Value::as_str))
        {
            refs.insert(r.to_owned(), g.to_owned());
        }
    }
    refs
}

/// One ported target's result (not validated yet) and its comparator pair, if it has one (the
/// result then says why not).
fn plan_target(
    t: &Value,
    name: String,
    refs: &BTreeMap<String, String>,
    opts: &ValidateOptions,
) -> (TargetResult, Option<Pair>) {
    let graphite = t.get(GRAPHITE_FIELD).and_then(Value::as_str).unwrap_or_default().to_owned();
    let status = t.get("dualmetricsStatus").and_then(Value::as_str).unwrap_or("exact").to_owned();
    let promql = t.get("expr").and_then(Value::as_str).map(str::to_owned);
    // the meaning comes from the translation (re-done: the dashboard keeps the text)
    let ctx = crate::Context { refs: refs.clone(), ..opts.ctx.clone() };
    let sem = crate::translate(&graphite, &ctx).ok().and_then(|t| t.semantics);
    // a Graphite `#A` is expanded for the render API
    let graphite_full = expand_refs(&graphite, refs);
    let legend = t.get("legendFormat").and_then(Value::as_str);
    let pair = target_pair(
        &name,
        &graphite_full,
        promql.as_deref(),
        legend,
        sem.as_ref(),
        is_quantile(sem.as_ref()),
        opts,
    );
    let (pair, explanation) = match pair {
        Ok(pr) => (Some(pr), String::new()),
        Err(why) => (None, why),
    };
    let target = TargetResult {
        ref_id: ref_id(t).to_owned(),
        graphite: graphite_full,
        promql,
        status,
        verdict: Verdict::NotValidated,
        comparator: None,
        explanation,
        chart: Chart::default(),
    };
    (target, pair)
}

/// Writes the comparator's row for a target back into its result (the queries as run, the
/// verdict, the explanation and the chart).
fn apply_row(t: &mut TargetResult, r: &PairReport) {
    t.graphite = r.legacy_query.clone();
    t.promql = Some(r.new_query.clone());
    t.verdict = verdict_of(r.outcome.verdict);
    t.comparator = Some(r.outcome.verdict.as_str().to_owned());
    t.explanation = r.outcome.explanation.clone();
    t.chart = r.chart.clone();
    if t.status == "approximate" && t.verdict == Verdict::Divergent {
        t.explanation = format!("(approximate translation) {}", t.explanation);
    }
}

/// Each panel's verdict is its worst target's, each dashboard's its worst panel's; the worst
/// dashboards come first, then by title.
fn roll_up(results: &mut [DashboardResult]) {
    for d in results.iter_mut() {
        for p in &mut d.panels {
            p.verdict = Verdict::worst(p.targets.iter().map(|t| t.verdict));
        }
        d.verdict = Verdict::worst(d.panels.iter().map(|p| p.verdict));
    }
    results.sort_by(|a, b| b.verdict.cmp(&a.verdict).then(a.title.cmp(&b.title)));
}

/// Replaces `#A` references by the referenced targets (as Grafana's `targetFull` does).
pub fn expand_refs(target: &str, refs: &BTreeMap<String, String>) -> String {
    let mut out = target.to_owned();
    for _ in 0..crate::translate::MAX_REFERENCE_DEPTH {
        let mut changed = false;
        for (r, text) in refs {
            let tag = format!("#{r}");
            if let Some(i) = out.find(&tag) {
                let end = i + tag.len();
                let boundary = out[end..].chars().next().is_none_or(|c| !c.is_ascii_alphanumeric());
                if boundary {
                    out.replace_range(i..end, text);
                    changed = true;
                }
            }
        }
        if !changed {
            break;
        }
    }
    out
}

/// Counts per verdict over dashboards' targets.
pub fn target_counts(results: &[DashboardResult]) -> BTreeMap<&'static str, usize> {
    let mut m = BTreeMap::new();
    for t in results.iter().flat_map(|d| &d.panels).flat_map(|p| &p.targets) {
        *m.entry(t.verdict.as_str()).or_insert(0) += 1;
    }
    m
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn open_labels_are_the_by_clauses_and_regex_matchers_of_a_query() {
        assert_eq!(
            open_labels(
                r#"histogram_quantile(0.9, sum by (le, host) (rate(x_bucket{route=~".*", code!~"5..", env="p"}[1m])))"#
            ),
            ["host", "route", "code"]
        );
        assert!(open_labels(r#"sum(rate({__name__=~"a.*"}[1m]))"#).is_empty());
        assert!(open_labels("nearby(x)").is_empty());
    }
}
