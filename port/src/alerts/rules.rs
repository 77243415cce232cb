//! [`AlertSpec`] → a Prometheus alerting rule.
//!
//! The Graphite target is translated; then the reducer over the window becomes a
//! `*_over_time` over a subquery at the flush interval's resolution (Graphite's points), the
//! evaluator a comparison, and the conditions are joined with `and on()` / `or on()`:
//!
//! | Grafana                         | PromQL                                                   |
//! |---------------------------------|----------------------------------------------------------|
//! | `avg() of query(A, 5m, now)`    | `avg_over_time((P)[5m:10s])`                             |
//! | `last()`                        | `P`                                                      |
//! | `median()`                      | `quantile_over_time(0.5, (P)[5m:10s])`                   |
//! | `diff()`                        | `P - last_over_time((P)[10s:10s] offset 5m)` (approximate) |
//! | `query(A, 5m, now-1m)`          | `… offset 1m`                                            |
//! | `is above 5`                    | `… > 5`                                                  |
//! | `is within range 1, 5`          | `… > 1 < 5`                                              |
//! | `is outside range 1, 5`         | `(… < 1) or (… > 5)`                                     |
//! | `has no value` / `absent`       | `absent_over_time((P)[5m:10s])`                          |
//! | no-data state `alerting`/`no_data` | a second rule `<Name>NoData` on `absent_over_time`    |
//!
//! A rule has no Grafana: `$__rate_interval` becomes [`RulesOptions::rate_interval`], and a
//! template variable left in the query makes the alert untranslatable (Grafana's legacy
//! alerting refused them too).
use super::source::{AlertSpec, Condition};
use crate::promql;
use crate::translate::{translate, Context, Status, Translation};
use serde::Serialize;
use std::collections::BTreeMap;

/// The range that replaces `$__rate_interval` in rules (Grafana is not there to fill it).
pub const DEFAULT_RULE_RATE_INTERVAL: &str = "1m";

/// Settings of the rule writer.
#[derive(Debug, Clone)]
pub struct RulesOptions {
    /// The translator's context.
    pub ctx: Context,
    /// The range written for `$__rate_interval`. Defaults to [`DEFAULT_RULE_RATE_INTERVAL`].
    pub rate_interval: String,
}

impl Default for RulesOptions {
    fn default() -> Self {
        RulesOptions { ctx: Context::default(), rate_interval: DEFAULT_RULE_RATE_INTERVAL.into() }
    }
}

/// One alerting rule, as Prometheus' rule files spell it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Rule {
    /// The alert name (a valid metric name: Prometheus' checker requires it).
    pub alert: String,
    /// The PromQL.
    pub expr: String,
    /// How long it must hold.
    #[serde(rename = "for", skip_serializing_if = "Option::is_none")]
    pub for_: Option<String>,
    /// Labels.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub labels: BTreeMap<String, String>,
    /// Annotations.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: BTreeMap<String, String>,
}

/// A rule group.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Group {
    /// Unique in its file.
    pub name: String,
    /// Evaluation interval.
    pub interval: String,
    /// The rules.
    pub rules: Vec<Rule>,
}

/// A Prometheus rule file.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct RuleFile {
    /// Its groups.
    pub groups: Vec<Group>,
}

impl RuleFile {
    /// The YAML text.
    pub fn to_yaml(&self) -> String {
        serde_norway::to_string(self).unwrap_or_default()
    }
}

/// What happened to one alert.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AlertReport {
    /// The alert as read.
    pub spec: AlertSpec,
    /// `exact`, `approximate`, `untranslatable` or `error`.
    pub status: String,
    /// Why approximate / untranslatable / wrong.
    pub reasons: Vec<String>,
    /// The rules written (the alert, and its no-data rule if any).
    pub rules: Vec<Rule>,
    /// The translation of each condition's target.
    pub translations: Vec<Translation>,
}

/// `Queue depth high` → `QueueDepthHigh`: a valid alert name, as Prometheus requires.
pub fn alert_name(name: &str) -> String {
    let mut out = String::new();
    for word in
        name.split(|c: char| !c.is_ascii_alphanumeric() && c != '_').filter(|w| !w.is_empty())
    {
        let mut cs = word.chars();
        if let Some(f) = cs.next() {
            out.push(f.to_ascii_uppercase());
            out.extend(cs);
        }
    }
    if out.is_empty() || out.starts_with(|c: char| c.is_ascii_digit()) {
        out.insert_str(0, "Alert");
    }
    out
}

struct Built {
    expr: String,
    absent: String,
    translation: Translation,
    reasons: Vec<String>,
}

fn fill_grafana(p: &str, opts: &RulesOptions, step: &str) -> Result<String, String> {
    let p = p.replace("$__rate_interval", &opts.rate_interval).replace("$__interval", step);
    let b = p.as_bytes();
    let at = (0..b.len()).find(|&i| {
        b[i] == b'$'
            && b.get(i + 1).is_some_and(|c| c.is_ascii_alphabetic() || *c == b'{' || *c == b'_')
    });
    if let Some(i) = at {
        let var: String = p[i + 1..]
            .chars()
            .take_while(|c| *c == '{' || c.is_alphanumeric() || *c == '_')
            .collect();
        return Err(format!(
            "the query uses the template variable ${var}: an alert rule has no dashboard to fill it"
        ));
    }
    Ok(p)
}

fn condition(c: &Condition, spec: &AlertSpec, opts: &RulesOptions) -> Result<Built, String> {
    let ctx = Context { refs: spec.refs.clone(), ..opts.ctx.clone() };
    let t = translate(&c.target, &ctx).map_err(|e| e.to_string())?;
    let mut reasons = Vec::new();
    let p = match (&t.status, &t.promql) {
        (Status::Untranslatable { function, why }, _) => return Err(format!("{function}: {why}")),
        (_, None) => return Err("no PromQL".into()),
        (Status::Approximate { reasons: r }, Some(p)) => {
            reasons.extend(r.iter().cloned());
            p.clone()
        }
        (Status::Exact, Some(p)) => p.clone(),
    };
    let step = promql::duration(opts.ctx.flush_interval_secs);
    let p = fill_grafana(&p, opts, &step)?;
    let off = c.end_offset.as_ref().map(|o| format!(" offset {o}")).unwrap_or_default();
    let w = &c.window;
    let sub = format!("({p})[{w}:{step}]{off}");
    let absent = format!("absent_over_time({sub})");
    let reduced = match c.reducer.as_str() {
        "last" if off.is_empty() => p.clone(),
        "last" => format!("last_over_time({sub})"),
        "avg" | "min" | "max" | "sum" | "count" => format!("{}_over_time({sub})", c.reducer),
        "count_non_null" => format!("count_over_time({sub})"),
        "median" => format!("quantile_over_time(0.5, {sub})"),
        "diff" => {
            reasons.push("diff() becomes the value minus the value one window earlier; Graphite subtracts the first point of the window from the last".into());
            if !off.is_empty() {
                return Err("diff() over a window that does not end now".into());
            }
            format!("({p}) - last_over_time(({p})[{step}:{step}] offset {w})")
        }
        other => return Err(format!("the reducer `{other}` has no PromQL counterpart here")),
    };
    let num = |i: usize| {
        c.params
            .get(i)
            .map(|v| promql::number(*v))
            .ok_or_else(|| format!("evaluator `{}` without parameter {}", c.evaluator, i + 1))
    };
    let expr = match c.evaluator.as_str() {
        "gt" => format!("{reduced} > {}", num(0)?),
        "lt" => format!("{reduced} < {}", num(0)?),
        "ge" => format!("{reduced} >= {}", num(0)?),
        "le" => format!("{reduced} <= {}", num(0)?),
        "eq" => format!("{reduced} == {}", num(0)?),
        "ne" => format!("{reduced} != {}", num(0)?),
        "within_range" | "outside_range" => {
            let (a, b) = (c.params.first().copied(), c.params.get(1).copied());
            let (Some(a), Some(b)) = (a, b) else {
                return Err(format!("{} needs two parameters", c.evaluator));
            };
            let (lo, hi) = (promql::number(a.min(b)), promql::number(a.max(b)));
            if c.evaluator == "within_range" {
                format!("{reduced} > {lo} < {hi}")
            } else {
                format!("({reduced} < {lo}) or ({reduced} > {hi})")
            }
        }
        "absent" => absent.clone(),
        other => return Err(format!("the evaluator `{other}` is not known")),
    };
    Ok(Built { expr, absent, translation: t, reasons })
}

/// Ports one alert.
pub fn port(spec: &AlertSpec, opts: &RulesOptions) -> AlertReport {
    let mut report = AlertReport {
        spec: spec.clone(),
        status: "exact".into(),
        reasons: Vec::new(),
        rules: Vec::new(),
        translations: Vec::new(),
    };
    let mut parts: Vec<(String, String)> = Vec::new();
    let mut absents = Vec::new();
    for c in &spec.conditions {
        match condition(c, spec, opts) {
            Ok(b) => {
                if !b.reasons.is_empty() {
                    report.status = "approximate".into();
                    report.reasons.extend(b.reasons);
                }
                parts.push((c.operator.clone(), b.expr));
                absents.push(b.absent);
                report.translations.push(b.translation);
            }
            Err(why) => {
                report.status = "untranslatable".into();
                let r = c.ref_id.as_ref().map(|r| format!("refId {r}: ")).unwrap_or_default();
                report.reasons.push(format!("{r}{why}"));
            }
        }
    }
    if report.status == "untranslatable" || parts.is_empty() {
        report.status = "untranslatable".into();
        return report;
    }
    let mut expr = String::new();
    for (i, (op, e)) in parts.iter().enumerate() {
        if i == 0 {
            expr = if parts.len() > 1 { format!("({e})") } else { e.clone() };
        } else {
            let op = if op == "or" { "or" } else { "and" };
            expr = format!("{expr} {op} on() ({e})");
        }
    }
    if parts.len() > 1 {
        report.status = "approximate".into();
        report.reasons.push("several conditions are joined with `and on()` / `or on()`: across all series, where Grafana combines them per series".into());
    }
    if let Err(m) = promql::check(&expr) {
        report.status = "error".into();
        report.reasons.push(format!("generated PromQL does not parse ({m}): {expr}"));
        return report;
    }
    let name = alert_name(&spec.name);
    let mut annotations = spec.annotations.clone();
    annotations.insert(
        "graphite_target".into(),
        spec.conditions.iter().map(|c| c.target.as_str()).collect::<Vec<_>>().join(" ; "),
    );
    annotations.insert("ported_from".into(), spec.origin.clone());
    if let Some(e) = &spec.exec_error {
        annotations.insert("grafana_execution_error_state".into(), e.clone());
    }
    report.rules.push(Rule {
        alert: name.clone(),
        expr,
        for_: spec.for_.clone(),
        labels: spec.labels.clone(),
        annotations: annotations.clone(),
    });
    // Grafana's no-data state: a rule of its own, since a PromQL comparison on no data is silent
    if matches!(spec.no_data.as_deref(), Some("alerting" | "no_data")) && !absents.is_empty() {
        let mut labels = spec.labels.clone();
        labels.insert("grafana_state".into(), spec.no_data.clone().unwrap_or_default());
        let mut a = annotations;
        a.insert("summary".into(), format!("{}: no data", spec.name));
        report.rules.push(Rule {
            alert: format!("{name}NoData"),
            expr: absents.join(" and on() "),
            for_: spec.for_.clone(),
            labels,
            annotations: a,
        });
    }
    report
}

/// Groups the rules of `reports` by evaluation interval: one group per interval, named
/// `<base>-<interval>`.
pub fn rule_file(base: &str, reports: &[AlertReport]) -> RuleFile {
    let mut groups: BTreeMap<String, Vec<Rule>> = BTreeMap::new();
    for r in reports {
        groups.entry(r.spec.frequency.clone()).or_default().extend(r.rules.iter().cloned());
    }
    RuleFile {
        groups: groups
            .into_iter()
            .filter(|(_, rules)| !rules.is_empty())
            .map(|(interval, rules)| Group { name: format!("{base}-{interval}"), interval, rules })
            .collect(),
    }
}
