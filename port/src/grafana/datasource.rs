//! Which datasource a panel or target points at, and the Prometheus reference that replaces it.
//!
//! Grafana spells a datasource reference four ways, and a dashboard may mix them:
//!
//! - `null` or absent: the instance's default datasource;
//! - a string: a datasource *name* (`"Graphite"`), a template variable (`"$ds"`), an export
//!   input (`"${DS_GRAPHITE}"`) or the mixed pseudo-datasource (`"-- Mixed --"`);
//! - an object `{"type": "graphite", "uid": "abc"}`, whose `uid` may itself be `${DS_…}` or `$ds`.
//!
//! [`DatasourceEnv`] knows what the dashboard says about them (`__inputs`, datasource
//! variables) plus the names the user declared as Graphite; [`DatasourceEnv::kind`] classifies
//! one reference. When nothing tells, the target decides: a Graphite target has a `target`
//! string.
use serde_json::{json, Value};
use std::collections::BTreeMap;

/// The plugin id of Grafana's Graphite datasource.
pub const GRAPHITE_PLUGIN: &str = "graphite";
/// The plugin id of Grafana's Prometheus datasource.
pub const PROMETHEUS_PLUGIN: &str = "prometheus";
/// The export input the ported dashboard declares for the Prometheus datasource.
pub const PROMETHEUS_INPUT: &str = "DS_PROMETHEUS";
/// Grafana's name for the mixed pseudo-datasource.
pub const MIXED: &str = "-- Mixed --";

/// What a datasource reference points at.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DsKind {
    /// A Graphite datasource.
    Graphite,
    /// Another plugin (`influxdb`, `prometheus`, …), by its type or name.
    Other(String),
    /// Mixed: each target names its own.
    Mixed,
    /// The default datasource, or a name nothing resolves: decided by the target's shape.
    Unknown,
}

/// What the dashboard (and the user) say about datasources.
#[derive(Debug, Clone, Default)]
pub struct DatasourceEnv {
    /// `__inputs` name (`DS_GRAPHITE`) → plugin id.
    pub inputs: BTreeMap<String, String>,
    /// Datasource variable name → plugin id (its `query`).
    pub variables: BTreeMap<String, String>,
    /// Names or uids the user declared as Graphite (`--graphite-datasource`).
    pub graphite_names: Vec<String>,
}

impl DatasourceEnv {
    /// Reads `__inputs` and the datasource template variables of `dash`.
    pub fn of(dash: &Value, graphite_names: &[String]) -> DatasourceEnv {
        let mut env =
            DatasourceEnv { graphite_names: graphite_names.to_vec(), ..DatasourceEnv::default() };
        for input in dash.get("__inputs").and_then(Value::as_array).into_iter().flatten() {
            if let (Some(name), Some(plugin)) = (
                input.get("name").and_then(Value::as_str),
                input.get("pluginId").and_then(Value::as_str),
            ) {
                env.inputs.insert(name.to_owned(), plugin.to_owned());
            }
        }
        for var in super::variables::list(dash) {
            if var.get("type").and_then(Value::as_str) == Some("datasource") {
                if let (Some(name), Some(q)) = (
                    var.get("name").and_then(Value::as_str),
                    var.get("query").and_then(Value::as_str),
                ) {
                    env.variables.insert(name.to_owned(), q.to_owned());
                }
            }
        }
        env
    }

    fn plugin_kind(plugin: &str) -> DsKind {
        if plugin == GRAPHITE_PLUGIN {
            DsKind::Graphite
        } else {
            DsKind::Other(plugin.to_owned())
        }
    }

    /// Classifies a name, uid or `${…}` text.
    fn text_kind(&self, s: &str) -> DsKind {
        if s == MIXED {
            return DsKind::Mixed;
        }
        if self.graphite_names.iter().any(|n| n == s) {
            return DsKind::Graphite;
        }
        let var =
            s.strip_prefix("${").and_then(|r| r.strip_suffix('}')).or_else(|| s.strip_prefix('$'));
        if let Some(var) = var {
            if let Some(p) = self.inputs.get(var).or_else(|| self.variables.get(var)) {
                return Self::plugin_kind(p);
            }
        }
        if s.to_ascii_lowercase().contains(GRAPHITE_PLUGIN) {
            return DsKind::Graphite;
        }
        DsKind::Unknown
    }

    /// Classifies one reference (`null`, a string, or `{type, uid}`).
    pub fn kind(&self, ds: Option<&Value>) -> DsKind {
        match ds {
            None | Some(Value::Null) => DsKind::Unknown,
            Some(Value::String(s)) => self.text_kind(s),
            Some(Value::Object(o)) => {
                let uid = o.get("uid").and_then(Value::as_str);
                match o.get("type").and_then(Value::as_str) {
                    Some(GRAPHITE_PLUGIN) => DsKind::Graphite,
                    Some("datasource") if uid == Some(MIXED) => DsKind::Mixed,
                    Some("datasource") if uid == Some("grafana") => DsKind::Other("grafana".into()),
                    Some(t) if !t.is_empty() && !t.starts_with('$') => {
                        // a uid of `${DS_X}` with a type is still that type
                        Self::plugin_kind(t)
                    }
                    _ => uid.map_or(DsKind::Unknown, |u| self.text_kind(u)),
                }
            }
            Some(_) => DsKind::Unknown,
        }
    }
}

/// The Prometheus datasource the ported dashboard uses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NewDatasource {
    /// A datasource of the Grafana instance, by uid (`--datasource-uid`).
    Uid(String),
    /// The export model's input `${DS_PROMETHEUS}` (dashboards that came with `__inputs`).
    Input,
}

impl NewDatasource {
    /// The reference to write in panels and targets.
    pub fn reference(&self) -> Value {
        match self {
            NewDatasource::Uid(uid) => json!({"type": PROMETHEUS_PLUGIN, "uid": uid}),
            NewDatasource::Input => {
                json!({"type": PROMETHEUS_PLUGIN, "uid": format!("${{{PROMETHEUS_INPUT}}}")})
            }
        }
    }
}

/// The `__inputs` entry for the Prometheus datasource of an exported dashboard.
pub fn prometheus_input() -> Value {
    json!({
        "name": PROMETHEUS_INPUT,
        "label": "Prometheus",
        "description": "",
        "type": "datasource",
        "pluginId": PROMETHEUS_PLUGIN,
        "pluginName": "Prometheus",
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn references_by_uid_name_input_and_variable_are_classified() {
        let dash = json!({
            "__inputs": [{"name": "DS_GRAPHITE", "pluginId": "graphite"}, {"name": "DS_INFLUX", "pluginId": "influxdb"}],
            "templating": {"list": [{"type": "datasource", "name": "ds", "query": "graphite"}]}
        });
        let env = DatasourceEnv::of(&dash, &["legacy-metrics".to_owned()]);
        assert_eq!(env.kind(Some(&json!({"type": "graphite", "uid": "x"}))), DsKind::Graphite);
        assert_eq!(env.kind(Some(&json!("${DS_GRAPHITE}"))), DsKind::Graphite);
        assert_eq!(env.kind(Some(&json!({"uid": "${DS_GRAPHITE}"}))), DsKind::Graphite);
        assert_eq!(env.kind(Some(&json!("${DS_INFLUX}"))), DsKind::Other("influxdb".into()));
        assert_eq!(env.kind(Some(&json!("$ds"))), DsKind::Graphite);
        assert_eq!(env.kind(Some(&json!("legacy-metrics"))), DsKind::Graphite);
        assert_eq!(env.kind(Some(&json!("Graphite prod"))), DsKind::Graphite);
        assert_eq!(env.kind(Some(&json!("-- Mixed --"))), DsKind::Mixed);
        assert_eq!(
            env.kind(Some(&json!({"type": "influxdb", "uid": "i"}))),
            DsKind::Other("influxdb".into())
        );
        assert_eq!(env.kind(None), DsKind::Unknown);
        assert_eq!(env.kind(Some(&json!("Some DB"))), DsKind::Unknown);
    }
}
