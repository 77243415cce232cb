//! One panel: its Graphite targets become PromQL targets, the rest of the panel is kept.
//!
//! For every target whose datasource is Graphite (the panel's, the target's own in a mixed
//! panel, or the default one when the target has a Graphite `target` string):
//!
//! - `target` (with the panel's other targets as `#A` references) is translated;
//! - the target becomes `{refId, expr, legendFormat, datasource, hide, range, editorMode}`,
//!   same `refId` and `hide`; the Graphite text is kept in [`GRAPHITE_FIELD`] so that
//!   validation (and a second port, which leaves such targets alone) knows where it came from;
//! - an untranslatable or wrong target gets an empty `expr` (Grafana skips it) and is listed.
//!
//! The panel keeps its layout, options, thresholds and overrides. Its description gets a
//! block (after [`DESCRIPTION_MARKER`], replaced on every port) naming each approximate or
//! untranslatable target and why. With [`PanelOptions::seconds`], a timer panel whose
//! translations multiply seconds by 1000 is switched to the new side's unit instead: the
//! factor goes, the unit `ms` becomes `s`, thresholds are divided by 1000.
use super::datasource::{DatasourceEnv, DsKind};
use crate::translate::{translate, Context, Status, Translation};
use serde::Serialize;
use serde_json::Value;
use std::collections::BTreeMap;

/// The target field that keeps the Graphite text in a ported dashboard.
pub const GRAPHITE_FIELD: &str = "dualmetricsGraphite";
/// The line that starts the port's block in a panel description (an HTML comment: invisible
/// in Grafana's markdown).
pub const DESCRIPTION_MARKER: &str = "<!-- dualmetrics port -->";

/// Settings of a panel port.
#[derive(Debug, Clone)]
pub struct PanelOptions {
    /// The Prometheus datasource reference to write.
    pub datasource: Value,
    /// Switch `ms` timer panels to seconds (drop the `* 1000` of the translation).
    pub seconds: bool,
}

/// What happened to one target.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TargetReport {
    /// Title of the row the panel is in, if any.
    pub row: Option<String>,
    /// Panel id.
    pub panel_id: Option<i64>,
    /// Panel title.
    pub panel: String,
    /// The target's refId.
    pub ref_id: String,
    /// Whether the target is hidden (often: only referenced by another).
    pub hidden: bool,
    /// The Graphite target.
    pub graphite: String,
    /// The translation, when the target could be read.
    pub translation: Option<Translation>,
    /// The error, when it could not (names the position).
    pub error: Option<String>,
}

impl TargetReport {
    /// `exact`, `approximate`, `untranslatable` or `error`.
    pub fn status(&self) -> &'static str {
        match (&self.translation, &self.error) {
            (Some(t), _) => t.status.as_str(),
            _ => "error",
        }
    }

    /// `panel "Latency" (id 4), refId B` (with the row when there is one).
    pub fn place(&self) -> String {
        let id = self.panel_id.map(|i| format!(" (id {i})")).unwrap_or_default();
        let row = self.row.as_ref().map(|r| format!("row {r:?}, ")).unwrap_or_default();
        format!("{row}panel {:?}{id}, refId {}", self.panel, self.ref_id)
    }
}

fn is_graphite_target(t: &Value, panel_kind: &DsKind, env: &DatasourceEnv) -> bool {
    if t.get("expr").is_some() || t.get(GRAPHITE_FIELD).is_some() {
        return false; // already PromQL
    }
    let shaped = t.get("target").and_then(Value::as_str).is_some();
    let own = env.kind(t.get("datasource"));
    match (panel_kind, own) {
        (_, DsKind::Graphite) => true,
        (_, DsKind::Other(_)) => false,
        (DsKind::Graphite, _) => true,
        (DsKind::Other(_), _) => false,
        (DsKind::Mixed | DsKind::Unknown, _) => shaped,
    }
}

/// The kinds of the targets of a panel, for "a dashboard of another datasource type".
pub fn other_kinds(panel: &Value, env: &DatasourceEnv) -> Vec<String> {
    let mut out = Vec::new();
    if let DsKind::Other(k) = env.kind(panel.get("datasource")) {
        out.push(k);
    }
    for t in panel.get("targets").and_then(Value::as_array).into_iter().flatten() {
        if let DsKind::Other(k) = env.kind(t.get("datasource")) {
            out.push(k);
        }
    }
    out
}

/// Whether the panel has targets a port already wrote.
pub fn has_ported_targets(panel: &Value) -> bool {
    panel
        .get("targets")
        .and_then(Value::as_array)
        .is_some_and(|ts| ts.iter().any(|t| t.get(GRAPHITE_FIELD).is_some()))
}

/// Ports the Graphite targets of one (non-row) panel in place.
///
/// Each Graphite target is translated ([`translate_target`]) and replaced by a Prometheus
/// target ([`prometheus_target`]) that keeps the Graphite text; other targets stay as they are.
/// Then the panel's datasource, unit ([`PanelOptions::seconds`]) and description follow.
pub fn port(
    panel: &mut Value,
    row: Option<&str>,
    env: &DatasourceEnv,
    ctx: &Context,
    opts: &PanelOptions,
    multi_vars: &[String],
) -> Vec<TargetReport> {
    let panel_kind = env.kind(panel.get("datasource"));
    let title = panel.get("title").and_then(Value::as_str).unwrap_or_default().to_owned();
    let panel_id = panel.get("id").and_then(Value::as_i64);
    let Some(targets) = panel.get("targets").and_then(Value::as_array) else {
        return Vec::new();
    };
    let graphite: Vec<bool> =
        targets.iter().map(|t| is_graphite_target(t, &panel_kind, env)).collect();
    if !graphite.iter().any(|g| *g) {
        return Vec::new();
    }
    let tctx = Context { refs: graphite_refs(targets, &graphite), ..ctx.clone() };
    let mut reports = Vec::new();
    let mut new_targets = Vec::new();
    for (t, g) in targets.iter().zip(&graphite) {
        if !*g {
            new_targets.push(t.clone());
            continue;
        }
        let text = t.get("target").and_then(Value::as_str).unwrap_or_default().trim().to_owned();
        let ref_id = t.get("refId").and_then(Value::as_str).unwrap_or_default().to_owned();
        let hidden = t.get("hide").and_then(Value::as_bool).unwrap_or(false);
        let (translation, error) = translate_target(t, &text, &tctx);
        let in_mixed = panel_kind == DsKind::Mixed || t.get("datasource").is_some();
        let ported = Ported { ref_id: &ref_id, text: &text, hidden, in_mixed };
        new_targets.push(ported.target(translation.as_ref(), error.is_some(), opts, multi_vars));
        if !text.is_empty() {
            reports.push(TargetReport {
                row: row.map(str::to_owned),
                panel_id,
                panel: title.clone(),
                ref_id,
                hidden,
                graphite: text,
                translation,
                error,
            });
        }
    }
    panel["targets"] = Value::Array(new_targets);
    if matches!(panel_kind, DsKind::Graphite | DsKind::Unknown) {
        panel["datasource"] = opts.datasource.clone();
    }
    if opts.seconds {
        to_seconds(panel, &reports);
    }
    describe(panel, &reports);
    reports
}

/// Every Graphite target of the panel, by refId, for `#A` references.
fn graphite_refs(targets: &[Value], graphite: &[bool]) -> BTreeMap<String, String> {
    let mut refs = BTreeMap::new();
    for (t, g) in targets.iter().zip(graphite) {
        if let (true, Some(r), Some(text)) =
            (*g, t.get("refId").and_then(Value::as_str), t.get("target").and_then(Value::as_str))
        {
            refs.insert(r.to_owned(), text.to_owned());
        }
    }
    refs
}

/// The translation of a target's text (`None` for an empty one), or the error; when the text
/// does not translate, its `targetFull` (references inlined) may still.
fn translate_target(
    t: &Value,
    text: &str,
    tctx: &Context,
) -> (Option<Translation>, Option<String>) {
    if text.is_empty() {
        return (None, None);
    }
    match translate(text, tctx) {
        Ok(tr) => (Some(tr), None),
        Err(e) => {
            // a full text with the references inlined may still read
            let full = t.get("targetFull").and_then(Value::as_str).filter(|f| *f != text);
            match full.map(|f| translate(f, tctx)) {
                Some(Ok(tr)) => (Some(tr), None),
                _ => (None, Some(e.to_string())),
            }
        }
    }
}

/// One Graphite target as it is ported.
struct Ported<'a> {
    ref_id: &'a str,
    /// The Graphite text (trimmed).
    text: &'a str,
    hidden: bool,
    /// The panel is mixed or the target names its own datasource: it gets the new one.
    in_mixed: bool,
}

impl Ported<'_> {
    /// The Prometheus target replacing it: the PromQL (multi-value variables as regex
    /// matchers), the legend, the Graphite text and the translation's status.
    fn target(
        &self,
        translation: Option<&Translation>,
        failed: bool,
        opts: &PanelOptions,
        multi_vars: &[String],
    ) -> Value {
        let mut nt = serde_json::Map::new();
        nt.insert("refId".into(), Value::String(self.ref_id.to_owned()));
        if self.in_mixed {
            nt.insert("datasource".into(), opts.datasource.clone());
        }
        let mut expr = translation.and_then(|tr| tr.promql.clone()).unwrap_or_default();
        for v in multi_vars {
            // Grafana interpolates a multi-value variable as a regex for Prometheus
            expr = expr.replace(&format!("=\"${v}\""), &format!("=~\"${v}\""));
            expr = expr.replace(&format!("=\"${{{v}}}\""), &format!("=~\"${{{v}}}\""));
        }
        nt.insert("expr".into(), Value::String(expr));
        if let Some(l) = translation.and_then(|tr| tr.legend.clone()) {
            nt.insert("legendFormat".into(), Value::String(l));
        }
        nt.insert("range".into(), Value::Bool(true));
        nt.insert("editorMode".into(), Value::String("code".into()));
        if self.hidden {
            nt.insert("hide".into(), Value::Bool(true));
        }
        nt.insert(GRAPHITE_FIELD.into(), Value::String(self.text.to_owned()));
        if let Some(tr) = translation {
            nt.insert("dualmetricsStatus".into(), Value::String(tr.status.as_str().into()));
        } else if failed {
            nt.insert("dualmetricsStatus".into(), Value::String("error".into()));
        }
        Value::Object(nt)
    }
}

fn to_seconds(panel: &mut Value, reports: &[TargetReport]) {
    let unit = panel.pointer("/fieldConfig/defaults/unit").and_then(Value::as_str);
    if unit != Some("ms") || reports.is_empty() {
        return;
    }
    let all_scaled = reports.iter().all(|r| {
        r.translation.as_ref().is_some_and(|t| {
            t.promql.as_deref().is_some_and(|p| p.ends_with(" * 1000"))
                && t.notes.iter().any(|n| n.contains("multiplied by 1000"))
        })
    });
    if !all_scaled {
        return;
    }
    for t in panel.get_mut("targets").and_then(Value::as_array_mut).into_iter().flatten() {
        if let Some(e) = t.get("expr").and_then(Value::as_str) {
            let e = e.strip_suffix(" * 1000").unwrap_or(e);
            let e = e.strip_prefix('(').and_then(|x| x.strip_suffix(')')).unwrap_or(e).to_owned();
            t["expr"] = Value::String(e);
        }
    }
    panel["fieldConfig"]["defaults"]["unit"] = Value::String("s".into());
    if let Some(steps) =
        panel.pointer_mut("/fieldConfig/defaults/thresholds/steps").and_then(Value::as_array_mut)
    {
        for s in steps {
            if let Some(v) = s.get("value").and_then(Value::as_f64) {
                s["value"] = serde_json::json!(v / 1000.0);
            }
        }
    }
    for o in panel
        .pointer_mut("/fieldConfig/overrides")
        .and_then(Value::as_array_mut)
        .into_iter()
        .flatten()
    {
        for p in o.get_mut("properties").and_then(Value::as_array_mut).into_iter().flatten() {
            if p.get("id").and_then(Value::as_str) == Some("unit")
                && p.get("value").and_then(Value::as_str) == Some("ms")
            {
                p["value"] = Value::String("s".into());
            }
        }
    }
}

/// Rewrites the port's block of the panel description.
fn describe(panel: &mut Value, reports: &[TargetReport]) {
    let old = panel.get("description").and_then(Value::as_str).unwrap_or_default();
    let kept = old.split(DESCRIPTION_MARKER).next().unwrap_or_default().trim_end().to_owned();
    let mut lines = Vec::new();
    for r in reports {
        match (&r.translation, &r.error) {
            (Some(t), _) => match &t.status {
                Status::Exact => {}
                Status::Approximate { reasons } => {
                    lines.push(format!("- {}: approximate: {}", r.ref_id, reasons.join("; ")))
                }
                Status::Untranslatable { function, why } => {
                    lines.push(format!("- {}: untranslatable: {function}: {why}", r.ref_id))
                }
            },
            (None, Some(e)) => {
                let first = e.lines().next().unwrap_or_default();
                lines.push(format!("- {}: not ported: {first}", r.ref_id))
            }
            (None, None) => {}
        }
    }
    if lines.is_empty() {
        if old.contains(DESCRIPTION_MARKER) {
            panel["description"] = Value::String(kept);
        }
        return;
    }
    let mut d = kept;
    if !d.is_empty() {
        d.push_str("\n\n");
    }
    d.push_str(DESCRIPTION_MARKER);
    d.push_str("\n**Ported from Graphite by dualmetrics**\n");
    d.push_str(&lines.join("\n"));
    panel["description"] = Value::String(d);
}
