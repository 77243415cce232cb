//! One dashboard: every panel (rows, collapsed rows' nested `panels`, the old `rows` schema),
//! the template variables, the export model's `__inputs` / `__requires`.
use super::datasource::{self, DatasourceEnv, NewDatasource, GRAPHITE_PLUGIN, PROMETHEUS_PLUGIN};
use super::panel::{self, PanelOptions, TargetReport};
use super::variables::{self, VariableReport};
use super::{PortError, PortOptions};
use serde::Serialize;
use serde_json::{json, Value};

/// The tag every ported dashboard carries.
pub const PORTED_TAG: &str = "ported-from-graphite";

/// What a dashboard port did.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DashboardReport {
    /// Dashboard title.
    pub title: String,
    /// Dashboard uid, if it has one.
    pub uid: Option<String>,
    /// Where it was read from.
    pub source: Option<String>,
    /// Where the ported dashboard was written.
    pub output: Option<String>,
    /// One entry per Graphite target.
    pub targets: Vec<TargetReport>,
    /// One entry per template variable.
    pub variables: Vec<VariableReport>,
}

impl DashboardReport {
    /// Number of targets with this status (`exact`, `approximate`, `untranslatable`, `error`).
    pub fn count(&self, status: &str) -> usize {
        self.targets.iter().filter(|t| t.status() == status).count()
    }
}

/// A ported dashboard and its report.
#[derive(Debug, Clone)]
pub struct Ported {
    /// The whole document (with the `{"dashboard": …}` wrapper of the API format if it had one).
    pub json: Value,
    /// What was done.
    pub report: DashboardReport,
}

/// The dashboard object of a document: the document itself, or its `dashboard` member (the
/// HTTP API's `{"dashboard": …, "meta": …}`).
pub fn dashboard_of(doc: &Value) -> Option<&Value> {
    let d = doc.get("dashboard").filter(|d| d.is_object()).unwrap_or(doc);
    (d.get("panels").is_some() || d.get("rows").is_some() || d.get("title").is_some())
        .then_some(d)
        .filter(|d| d.is_object())
}

/// Every panel of a dashboard, rows included, with the title of the row it is in.
pub fn panels(dash: &Value) -> Vec<(Option<String>, &Value)> {
    let mut out = Vec::new();
    let mut row: Option<String> = None;
    for p in dash.get("panels").and_then(Value::as_array).into_iter().flatten() {
        if p.get("type").and_then(Value::as_str) == Some("row") {
            row = p.get("title").and_then(Value::as_str).map(str::to_owned);
            for n in p.get("panels").and_then(Value::as_array).into_iter().flatten() {
                out.push((row.clone(), n));
            }
        } else {
            out.push((row.clone(), p));
        }
    }
    for r in dash.get("rows").and_then(Value::as_array).into_iter().flatten() {
        let title = r.get("title").and_then(Value::as_str).map(str::to_owned);
        for p in r.get("panels").and_then(Value::as_array).into_iter().flatten() {
            out.push((title.clone(), p));
        }
    }
    out
}

fn panels_mut(dash: &mut Value) -> Vec<(Option<String>, &mut Value)> {
    let mut out = Vec::new();
    let Some(obj) = dash.as_object_mut() else { return out };
    for (key, list) in obj.iter_mut() {
        let Some(list) = list.as_array_mut() else { continue };
        match key.as_str() {
            "panels" => {
                let mut row: Option<String> = None;
                for p in list {
                    if p.get("type").and_then(Value::as_str) == Some("row") {
                        row = p.get("title").and_then(Value::as_str).map(str::to_owned);
                        let nested = p.get_mut("panels").and_then(Value::as_array_mut);
                        for n in nested.into_iter().flatten() {
                            out.push((row.clone(), n));
                        }
                    } else {
                        out.push((row.clone(), p));
                    }
                }
            }
            "rows" => {
                for r in list {
                    let title = r.get("title").and_then(Value::as_str).map(str::to_owned);
                    let nested = r.get_mut("panels").and_then(Value::as_array_mut);
                    for p in nested.into_iter().flatten() {
                        out.push((title.clone(), p));
                    }
                }
            }
            _ => {}
        }
    }
    out
}

/// Ports one dashboard document.
///
/// # Errors
/// [`PortError::NotADashboard`] for JSON that is no dashboard, [`PortError::OtherDatasource`]
/// for a dashboard without any Graphite target (and none ported before) whose panels use
/// another datasource type. Problems with single targets are not errors: they are in the
/// report.
pub fn port(doc: &Value, source: &str, opts: &PortOptions) -> Result<Ported, PortError> {
    let Some(dash) = dashboard_of(doc) else {
        return Err(PortError::NotADashboard { file: source.to_owned() });
    };
    let title = dash.get("title").and_then(Value::as_str).unwrap_or("(untitled)").to_owned();
    let uid = dash.get("uid").and_then(Value::as_str).map(str::to_owned);
    let env = DatasourceEnv::of(dash, &opts.graphite_datasources);
    let graphite_inputs: Vec<String> = env
        .inputs
        .iter()
        .filter(|(_, p)| p.as_str() == GRAPHITE_PLUGIN)
        .map(|(n, _)| n.clone())
        .collect();
    let new_ds = if graphite_inputs.is_empty() {
        NewDatasource::Uid(opts.datasource_uid.clone())
    } else {
        NewDatasource::Input
    };
    let ds_ref = new_ds.reference();
    let mut out = doc.clone();
    let d = if out.get("dashboard").is_some_and(Value::is_object) {
        out.get_mut("dashboard").expect("checked above")
    } else {
        &mut out
    };
    let variable_reports = variables::port(d, &env, &ds_ref, &opts.ctx, opts.ctx.mapping.as_ref());
    let multi: Vec<String> =
        variable_reports.iter().filter(|v| v.multi).map(|v| v.name.clone()).collect();
    let popts = PanelOptions { datasource: ds_ref.clone(), seconds: opts.seconds };
    let mut targets = Vec::new();
    let mut others = Vec::new();
    let mut ported_before = false;
    for (row, p) in panels_mut(d) {
        ported_before |= panel::has_ported_targets(p);
        let r = panel::port(p, row.as_deref(), &env, &opts.ctx, &popts, &multi);
        if r.is_empty() {
            others.extend(panel::other_kinds(p, &env));
        }
        targets.extend(r);
    }
    if targets.is_empty() && !ported_before && !others.is_empty() {
        others.sort();
        others.dedup();
        return Err(PortError::OtherDatasource {
            dashboard: title,
            file: source.to_owned(),
            found: others,
        });
    }
    // the export model: the Graphite input becomes a Prometheus one
    if !graphite_inputs.is_empty() {
        if let Some(inputs) = d.get_mut("__inputs").and_then(Value::as_array_mut) {
            inputs.retain(|i| i.get("pluginId").and_then(Value::as_str) != Some(GRAPHITE_PLUGIN));
            if !inputs.iter().any(|i| {
                i.get("name").and_then(Value::as_str) == Some(datasource::PROMETHEUS_INPUT)
            }) {
                inputs.push(datasource::prometheus_input());
            }
        }
    }
    if let Some(req) = d.get_mut("__requires").and_then(Value::as_array_mut) {
        let had = req.len();
        req.retain(|r| r.get("id").and_then(Value::as_str) != Some(GRAPHITE_PLUGIN));
        let has_prom =
            req.iter().any(|r| r.get("id").and_then(Value::as_str) == Some(PROMETHEUS_PLUGIN));
        if req.len() != had && !has_prom {
            req.push(json!({"type": "datasource", "id": PROMETHEUS_PLUGIN, "name": "Prometheus", "version": "1.0.0"}));
        }
    }
    if let Some(o) = d.as_object_mut() {
        let tags = o.entry("tags").or_insert_with(|| Value::Array(Vec::new()));
        if let Some(a) = tags.as_array_mut() {
            if !a.iter().any(|t| t.as_str() == Some(PORTED_TAG)) {
                a.push(Value::String(PORTED_TAG.into()));
            }
        }
    }
    Ok(Ported {
        json: out,
        report: DashboardReport {
            title,
            uid,
            source: Some(source.to_owned()),
            output: None,
            targets,
            variables: variable_reports,
        },
    })
}
