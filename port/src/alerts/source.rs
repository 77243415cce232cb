//! Reading alerts: Grafana legacy panel alerts from dashboards, and a plain YAML of Graphite
//! alerts. Both become [`AlertSpec`]s: a Graphite target, how it is reduced over a window,
//! what it is compared with, and for how long.
//!
//! The YAML format:
//! ```yaml
//! alerts:
//!   - name: CheckoutErrorRatioHigh
//!     target: asPercent(sumSeries(stats.counters.checkout.errors.count), sumSeries(stats.counters.checkout.requests.count))
//!     condition: ">"          # > < >= <= == != (or gt lt …), within_range, outside_range, absent
//!     threshold: 5            # a number, or [low, high] for the ranges
//!     reduce: avg             # avg min max sum last count median diff (default: last)
//!     window: 5m              # the reducer's window (default 5m)
//!     for: 2m
//!     labels: {severity: page}
//!     annotations: {summary: "…"}
//! ```
use super::AlertError;
use crate::grafana::dashboard;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::BTreeMap;

/// The reducer window when none is given (Grafana's `query(A, 5m, now)`).
pub const DEFAULT_WINDOW: &str = "5m";
/// The evaluation interval when none is given (Grafana's legacy `frequency` default).
pub const DEFAULT_FREQUENCY: &str = "1m";

/// One condition on one reduced query.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Condition {
    /// The Graphite target.
    pub target: String,
    /// The refId it came from (panel alerts).
    pub ref_id: Option<String>,
    /// `avg`, `min`, `max`, `sum`, `last`, `count`, `median`, `diff`.
    pub reducer: String,
    /// The window, as Grafana writes it (`5m`).
    pub window: String,
    /// How far before now the window ends (`now-1m` → `1m`), if not now.
    pub end_offset: Option<String>,
    /// `gt`, `lt`, `within_range`, `outside_range`, `no_value`, `absent`, `ge`, `le`, `eq`, `ne`.
    pub evaluator: String,
    /// The evaluator's parameters.
    pub params: Vec<f64>,
    /// `and` / `or` with the condition before it.
    pub operator: String,
}

/// One alert to port.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AlertSpec {
    /// Its name as written.
    pub name: String,
    /// Where it came from (`file.yml`, or `dashboard "X", panel "Y" (id 3)`).
    pub origin: String,
    /// The conditions.
    pub conditions: Vec<Condition>,
    /// How long the condition must hold (`for`).
    pub for_: Option<String>,
    /// How often it is evaluated.
    pub frequency: String,
    /// Grafana's no-data state (`no_data`, `alerting`, `ok`, `keep_state`).
    pub no_data: Option<String>,
    /// Grafana's execution-error state.
    pub exec_error: Option<String>,
    /// Labels.
    pub labels: BTreeMap<String, String>,
    /// Annotations.
    pub annotations: BTreeMap<String, String>,
    /// The panel's Graphite targets by refId (for `#A` references).
    pub refs: BTreeMap<String, String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct YamlFile {
    alerts: Vec<YamlAlert>,
}

#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum Threshold {
    One(f64),
    Range(Vec<f64>),
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct YamlAlert {
    name: String,
    target: String,
    condition: String,
    threshold: Option<Threshold>,
    reduce: Option<String>,
    window: Option<String>,
    #[serde(rename = "for")]
    for_: Option<String>,
    interval: Option<String>,
    #[serde(default)]
    labels: BTreeMap<String, String>,
    #[serde(default)]
    annotations: BTreeMap<String, String>,
}

fn evaluator_of(cond: &str) -> Option<&'static str> {
    Some(match cond.trim() {
        ">" | "gt" => "gt",
        "<" | "lt" => "lt",
        ">=" | "ge" | "gte" => "ge",
        "<=" | "le" | "lte" => "le",
        "==" | "eq" => "eq",
        "!=" | "ne" => "ne",
        "within_range" => "within_range",
        "outside_range" => "outside_range",
        "absent" | "no_value" => "absent",
        _ => return None,
    })
}

/// Reads the plain YAML of Graphite alerts.
///
/// # Errors
/// YAML that does not read (with its position), or an alert with an unknown condition or a
/// threshold that does not fit it, naming the alert.
pub fn parse_yaml(text: &str, source: &str) -> Result<Vec<AlertSpec>, AlertError> {
    let file: YamlFile = serde_norway::from_str(text)
        .map_err(|e| AlertError::Yaml { file: source.to_owned(), message: e.to_string() })?;
    let mut out = Vec::new();
    for a in file.alerts {
        let bad = |message: String| AlertError::Invalid {
            file: source.to_owned(),
            alert: a.name.clone(),
            message,
        };
        let evaluator = evaluator_of(&a.condition).ok_or_else(|| {
            bad(format!(
                "condition `{}`: expected one of > < >= <= == != within_range outside_range absent",
                a.condition
            ))
        })?;
        let params = match (&a.threshold, evaluator) {
            (_, "absent") => Vec::new(),
            (Some(Threshold::One(v)), e) if !e.ends_with("_range") => vec![*v],
            (Some(Threshold::Range(r)), e) if e.ends_with("_range") && r.len() == 2 => r.clone(),
            (None, e) => return Err(bad(format!("condition `{e}` needs a threshold"))),
            (_, e) => {
                return Err(bad(format!(
                    "condition `{e}` needs {}",
                    if e.ends_with("_range") { "threshold: [low, high]" } else { "one number" }
                )))
            }
        };
        let reducer = a.reduce.clone().unwrap_or_else(|| "last".into());
        out.push(AlertSpec {
            name: a.name.clone(),
            origin: source.to_owned(),
            conditions: vec![Condition {
                target: a.target.clone(),
                ref_id: None,
                reducer,
                window: a.window.clone().unwrap_or_else(|| DEFAULT_WINDOW.into()),
                end_offset: None,
                evaluator: evaluator.into(),
                params,
                operator: "and".into(),
            }],
            for_: a.for_.clone(),
            frequency: a.interval.clone().unwrap_or_else(|| DEFAULT_FREQUENCY.into()),
            no_data: None,
            exec_error: None,
            labels: a.labels.clone(),
            annotations: a.annotations.clone(),
            refs: BTreeMap::new(),
        });
    }
    Ok(out)
}

/// The legacy alerts of a dashboard document (`alert` on Graphite panels), with each
/// condition's refId resolved to its target. Other targets of the panel are `#refs`.
///
/// Per alerting panel: its targets by refId ([`panel_targets`]), each condition
/// ([`dashboard_condition`]), then the alert's own settings ([`dashboard_alert`]).
///
/// # Errors
/// A condition naming a refId the panel does not have, naming dashboard, panel and refId.
pub fn from_dashboard(doc: &Value, source: &str) -> Result<Vec<AlertSpec>, AlertError> {
    let Some(dash) = dashboard::dashboard_of(doc) else { return Ok(Vec::new()) };
    let title = dash.get("title").and_then(Value::as_str).unwrap_or("(untitled)");
    let mut out = Vec::new();
    for (_row, p) in dashboard::panels(dash) {
        let Some(alert) = p.get("alert") else { continue };
        let panel = p.get("title").and_then(Value::as_str).unwrap_or_default();
        let id =
            p.get("id").and_then(Value::as_i64).map(|i| format!(" (id {i})")).unwrap_or_default();
        let origin = format!("dashboard {title:?}, panel {panel:?}{id}");
        let targets = panel_targets(p);
        let name = alert.get("name").and_then(Value::as_str).unwrap_or(panel).to_owned();
        let conditions = alert
            .get("conditions")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .map(|c| {
                dashboard_condition(c, &targets).map_err(|ref_id| AlertError::Invalid {
                    file: source.to_owned(),
                    alert: format!("{origin}, alert {name:?}"),
                    message: format!(
                        "condition on refId {ref_id:?}, which the panel does not have"
                    ),
                })
            })
            .collect::<Result<Vec<_>, _>>()?;
        out.push(dashboard_alert(alert, name, origin, conditions, targets));
    }
    Ok(out)
}

/// A panel's targets by refId: the Graphite text a port kept, or the `target`.
fn panel_targets(p: &Value) -> BTreeMap<String, String> {
    p.get("targets")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|t| {
            Some((
                t.get("refId")?.as_str()?.to_owned(),
                t.get(crate::grafana::panel::GRAPHITE_FIELD)
                    .or_else(|| t.get("target"))?
                    .as_str()?
                    .to_owned(),
            ))
        })
        .collect()
}

/// One condition of a dashboard alert: `query.params` are (refId, window, end), then reducer,
/// evaluator (`no_value` is `absent`) and operator. `Err` is a refId the panel does not have.
fn dashboard_condition(c: &Value, targets: &BTreeMap<String, String>) -> Result<Condition, String> {
    let qp: Vec<String> = c
        .pointer("/query/params")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|v| v.as_str().map(str::to_owned))
        .collect();
    let ref_id = qp.first().cloned().unwrap_or_default();
    let Some(target) = targets.get(&ref_id) else { return Err(ref_id) };
    let end = qp.get(2).map(String::as_str).unwrap_or("now");
    let end_offset = end.strip_prefix("now-").map(str::to_owned);
    let evaluator = c.pointer("/evaluator/type").and_then(Value::as_str).unwrap_or("gt");
    Ok(Condition {
        target: target.clone(),
        ref_id: Some(ref_id.clone()),
        reducer: c.pointer("/reducer/type").and_then(Value::as_str).unwrap_or("avg").into(),
        window: qp.get(1).cloned().unwrap_or_else(|| DEFAULT_WINDOW.into()),
        end_offset,
        evaluator: if evaluator == "no_value" { "absent".into() } else { evaluator.into() },
        params: c
            .pointer("/evaluator/params")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(Value::as_f64)
            .collect(),
        operator: c.pointer("/operator/type").and_then(Value::as_str).unwrap_or("and").into(),
    })
}

/// A dashboard alert with its conditions: `for` (none when zero), frequency, no-data and error
/// states, the message as the `summary` annotation and `alertRuleTags` as labels.
fn dashboard_alert(
    alert: &Value,
    name: String,
    origin: String,
    conditions: Vec<Condition>,
    targets: BTreeMap<String, String>,
) -> AlertSpec {
    let mut annotations = BTreeMap::new();
    if let Some(m) = alert.get("message").and_then(Value::as_str).filter(|m| !m.is_empty()) {
        annotations.insert("summary".to_owned(), m.to_owned());
    }
    let labels = alert
        .get("alertRuleTags")
        .and_then(Value::as_object)
        .map(|o| o.iter().filter_map(|(k, v)| Some((k.clone(), v.as_str()?.to_owned()))).collect())
        .unwrap_or_default();
    AlertSpec {
        name,
        origin,
        conditions,
        for_: alert
            .get("for")
            .and_then(Value::as_str)
            .filter(|f| *f != "0m" && *f != "0")
            .map(str::to_owned),
        frequency: alert
            .get("frequency")
            .and_then(Value::as_str)
            .unwrap_or(DEFAULT_FREQUENCY)
            .to_owned(),
        no_data: alert.get("noDataState").and_then(Value::as_str).map(str::to_owned),
        exec_error: alert.get("executionErrorState").and_then(Value::as_str).map(str::to_owned),
        labels,
        annotations,
        refs: targets,
    }
}
