//! Configuration layers: each source (file section, environment, code) becomes a list of
//! `(key, value, source)` entries over one schema, so precedence and error messages work the same
//! for every source.
use std::collections::BTreeMap;

use crate::error::{BuildError, ConfigError, Source};

/// The shape of a configuration value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    Str,
    Int,
    /// A table of string values, merged entry by entry across layers.
    Table,
    Floats,
    Bool,
}

/// Every key the configuration accepts, dotted, with its shape.
pub(crate) const SCHEMA: &[(&str, Kind)] = &[
    ("mode", Kind::Str),
    ("service", Kind::Str),
    ("environment", Kind::Str),
    ("tags", Kind::Table),
    ("cardinality_limit", Kind::Int),
    ("cumulative_series_warning", Kind::Int),
    ("statsd.address", Kind::Str),
    ("statsd.prefix", Kind::Str),
    ("statsd.flush_interval_ms", Kind::Int),
    ("statsd.max_packet_bytes", Kind::Int),
    ("statsd.histogram_type", Kind::Str),
    ("statsd.max_samples_per_flush", Kind::Int),
    ("statsd.pacing_bytes_per_ms", Kind::Int),
    ("statsd.value_packing", Kind::Bool),
    ("statsd.timer_type", Kind::Str),
    ("otlp.endpoint", Kind::Str),
    ("otlp.protocol", Kind::Str),
    ("otlp.headers", Kind::Table),
    ("otlp.timeout_ms", Kind::Int),
    ("otlp.keepalive_ms", Kind::Int),
    ("otlp.export_interval_ms", Kind::Int),
    ("otlp.temporality", Kind::Str),
    ("otlp.histogram", Kind::Str),
    ("otlp.histogram_boundaries", Kind::Floats),
    ("otlp.ca_file", Kind::Str),
    ("otlp.client_cert_file", Kind::Str),
    ("otlp.client_key_file", Kind::Str),
    ("otlp.resource", Kind::Table),
    ("reload.watch", Kind::Bool),
    ("self_metrics", Kind::Bool),
    ("reload.poll_interval_ms", Kind::Int),
];

/// Internal key set only by `OTEL_EXPORTER_OTLP_ENDPOINT`: a base URL to which the HTTP
/// protocol appends `/v1/metrics`.
pub(crate) const BASE_ENDPOINT: &str = "otlp.base_endpoint";

fn kind_of(key: &str) -> Option<Kind> {
    if key == BASE_ENDPOINT {
        return Some(Kind::Str);
    }
    SCHEMA.iter().find(|(k, _)| *k == key).map(|(_, kind)| *kind)
}

/// A typed configuration value.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Value {
    Str(String),
    Int(i64),
    Floats(Vec<f64>),
    Bool(bool),
}

impl Value {
    /// The value as the user wrote it, for error messages.
    pub(crate) fn display(&self) -> String {
        match self {
            Value::Str(s) => s.clone(),
            Value::Int(i) => i.to_string(),
            Value::Floats(v) => format!("{v:?}"),
            Value::Bool(b) => b.to_string(),
        }
    }
}

/// One value with its provenance.
#[derive(Debug, Clone)]
pub(crate) struct Entry {
    pub value: Value,
    pub source: Source,
}

/// The merged configuration: `(key, table entry)` → entry. Scalars use an empty table entry.
pub(crate) type Merged = BTreeMap<(String, String), Entry>;

/// One configuration source.
#[derive(Debug, Clone, Default)]
pub struct Layer {
    entries: Vec<((String, String), Entry)>,
}

impl Layer {
    /// Sets a scalar key (or a whole-table key from a `k=v,k=v` string) from code.
    pub(crate) fn set(&mut self, key: &str, value: Value, source: Source) {
        self.entries.push(((key.to_owned(), String::new()), Entry { value, source }));
    }

    /// Sets one entry of a table key.
    pub(crate) fn set_entry(&mut self, key: &str, entry: &str, value: &str, source: Source) {
        self.entries.push((
            (key.to_owned(), entry.to_owned()),
            Entry { value: Value::Str(value.to_owned()), source },
        ));
    }

    /// Applies this layer over `merged`: later layers win.
    pub(crate) fn merge_into(&self, merged: &mut Merged) {
        for (key, entry) in &self.entries {
            merged.insert(key.clone(), entry.clone());
        }
    }

    /// Parses a string value of `key` (from the environment or a builder call) by the key's kind.
    pub(crate) fn set_parsed(
        &mut self,
        key: &str,
        raw: &str,
        source: Source,
    ) -> Result<(), ConfigError> {
        let err = |reason: &str| ConfigError {
            key: key.to_owned(),
            value: raw.to_owned(),
            origin: source.clone(),
            reason: reason.to_owned(),
        };
        match kind_of(key).ok_or_else(|| err("unknown key"))? {
            Kind::Str => self.set(key, Value::Str(raw.to_owned()), source.clone()),
            Kind::Bool => {
                let v = match raw.trim().to_ascii_lowercase().as_str() {
                    "true" | "1" | "yes" | "on" => true,
                    "false" | "0" | "no" | "off" => false,
                    _ => return Err(err("expected true or false")),
                };
                self.set(key, Value::Bool(v), source.clone());
            }
            Kind::Int => {
                let v = raw.trim().parse::<i64>().map_err(|_| err("expected an integer"))?;
                self.set(key, Value::Int(v), source.clone());
            }
            Kind::Floats => {
                let v = raw
                    .split(',')
                    .filter(|s| !s.trim().is_empty())
                    .map(|s| s.trim().parse::<f64>())
                    .collect::<Result<Vec<_>, _>>()
                    .map_err(|_| err("expected a comma-separated list of numbers"))?;
                self.set(key, Value::Floats(v), source.clone());
            }
            Kind::Table => {
                // header values are credentials: an error shows the keys and where it failed,
                // never a value (a token cut by a `,` would otherwise be printed)
                let secret = SECRET_TABLES.contains(&key);
                let table_err = |reason: String| ConfigError {
                    key: key.to_owned(),
                    value: if secret { redacted_table(raw) } else { raw.to_owned() },
                    origin: source.clone(),
                    reason,
                };
                for (i, pair) in raw.split(',').filter(|p| !p.trim().is_empty()).enumerate() {
                    let (k, v) = pair.split_once('=').ok_or_else(|| {
                        table_err(format!(
                            "expected k=v,k=v: entry {} has no `=` (write a `,` inside a value as %2C)",
                            i + 1
                        ))
                    })?;
                    let k = percent_decode(k.trim());
                    if k.is_empty() {
                        return Err(table_err(format!("entry {}: empty key in k=v list", i + 1)));
                    }
                    self.set_entry(key, &k, &percent_decode(v.trim()), source.clone());
                }
            }
        }
        Ok(())
    }

    /// Reads one TOML section (`[default]` or `[env.<name>]`) of `path`.
    pub(crate) fn from_toml_section(
        table: &toml::Table,
        path: &str,
        section: &str,
    ) -> Result<Layer, BuildError> {
        let mut layer = Layer::default();
        let source = Source::File { path: path.to_owned(), section: section.to_owned() };
        walk(&mut layer, table, "", &source)?;
        Ok(layer)
    }
}

fn walk(
    layer: &mut Layer,
    table: &toml::Table,
    prefix: &str,
    source: &Source,
) -> Result<(), ConfigError> {
    for (k, v) in table {
        let key = if prefix.is_empty() { k.clone() } else { format!("{prefix}.{k}") };
        let err = |reason: &str| ConfigError {
            key: key.clone(),
            value: toml_text(v),
            origin: source.clone(),
            reason: reason.to_owned(),
        };
        match (kind_of(&key), v) {
            (None, toml::Value::Table(sub))
                if prefix.is_empty() && matches!(k.as_str(), "statsd" | "otlp" | "reload") =>
            {
                walk(layer, sub, &key, source)?
            }
            // Per-metric rules are not merged key by key; the builder reads them separately.
            (None, _) if prefix.is_empty() && k == "rules" => {}
            (None, _) => return Err(err("unknown key")),
            (Some(Kind::Str), toml::Value::String(s)) => {
                layer.set(&key, Value::Str(s.clone()), source.clone())
            }
            (Some(Kind::Str), _) => return Err(err("expected a string")),
            (Some(Kind::Bool), toml::Value::Boolean(b)) => {
                layer.set(&key, Value::Bool(*b), source.clone())
            }
            (Some(Kind::Bool), _) => return Err(err("expected true or false")),
            (Some(Kind::Int), toml::Value::Integer(i)) => {
                layer.set(&key, Value::Int(*i), source.clone())
            }
            (Some(Kind::Int), _) => return Err(err("expected an integer")),
            (Some(Kind::Floats), toml::Value::Array(items)) => {
                let v = items
                    .iter()
                    .map(|i| match i {
                        toml::Value::Float(f) => Some(*f),
                        toml::Value::Integer(n) => Some(*n as f64),
                        _ => None,
                    })
                    .collect::<Option<Vec<f64>>>()
                    .ok_or_else(|| err("expected an array of numbers"))?;
                layer.set(&key, Value::Floats(v), source.clone());
            }
            (Some(Kind::Floats), _) => return Err(err("expected an array of numbers")),
            (Some(Kind::Table), toml::Value::Table(entries)) => {
                for (ek, ev) in entries {
                    let value = match ev {
                        toml::Value::String(s) => s.clone(),
                        toml::Value::Integer(_)
                        | toml::Value::Float(_)
                        | toml::Value::Boolean(_) => toml_text(ev),
                        _ => return Err(err("table values must be strings or numbers")),
                    };
                    layer.set_entry(&key, ek, &value, source.clone());
                }
            }
            (Some(Kind::Table), _) => return Err(err("expected a table of strings")),
        }
    }
    Ok(())
}

/// Table keys whose values are secrets: an error never shows them.
const SECRET_TABLES: [&str; 1] = ["otlp.headers"];

/// A `k=v,k=v` value with every value, and every entry without `=`, shown as `<redacted>`.
fn redacted_table(raw: &str) -> String {
    raw.split(',')
        .filter(|p| !p.trim().is_empty())
        .map(|p| match p.split_once('=') {
            Some((k, _)) => format!("{}=<redacted>", k.trim()),
            None => "<redacted>".to_owned(),
        })
        .collect::<Vec<_>>()
        .join(",")
}

/// Decodes `%XX` escapes, as `OTEL_RESOURCE_ATTRIBUTES` and `OTEL_EXPORTER_OTLP_HEADERS` allow.
fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    let hex = |b: u8| (b as char).to_digit(16).map(|d| d as u8);
    while i < bytes.len() {
        if bytes[i] == b'%' && i + 3 <= bytes.len() {
            if let (Some(h), Some(l)) = (hex(bytes[i + 1]), hex(bytes[i + 2])) {
                out.push(h << 4 | l);
                i += 3;
                continue;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The environment layer: `DUALMETRICS_*` keys and the standard `OTEL_*` variables, with
/// `DUALMETRICS_*` winning where both set the same key.
pub(crate) fn from_env(vars: &BTreeMap<String, String>) -> Result<Layer, ConfigError> {
    let mut layer = Layer::default();
    // Standard OpenTelemetry variables first, so DUALMETRICS_* (applied after) win.
    let otel: &[(&str, &str)] = &[
        ("OTEL_SERVICE_NAME", "service"),
        ("OTEL_RESOURCE_ATTRIBUTES", "otlp.resource"),
        ("OTEL_EXPORTER_OTLP_ENDPOINT", BASE_ENDPOINT),
        ("OTEL_EXPORTER_OTLP_METRICS_ENDPOINT", "otlp.endpoint"),
        ("OTEL_EXPORTER_OTLP_PROTOCOL", "otlp.protocol"),
        ("OTEL_EXPORTER_OTLP_METRICS_PROTOCOL", "otlp.protocol"),
        ("OTEL_EXPORTER_OTLP_HEADERS", "otlp.headers"),
        ("OTEL_EXPORTER_OTLP_METRICS_HEADERS", "otlp.headers"),
        ("OTEL_EXPORTER_OTLP_TIMEOUT", "otlp.timeout_ms"),
        ("OTEL_EXPORTER_OTLP_METRICS_TIMEOUT", "otlp.timeout_ms"),
        ("OTEL_EXPORTER_OTLP_CERTIFICATE", "otlp.ca_file"),
        ("OTEL_EXPORTER_OTLP_METRICS_CERTIFICATE", "otlp.ca_file"),
        ("OTEL_EXPORTER_OTLP_CLIENT_CERTIFICATE", "otlp.client_cert_file"),
        ("OTEL_EXPORTER_OTLP_METRICS_CLIENT_CERTIFICATE", "otlp.client_cert_file"),
        ("OTEL_EXPORTER_OTLP_CLIENT_KEY", "otlp.client_key_file"),
        ("OTEL_EXPORTER_OTLP_METRICS_CLIENT_KEY", "otlp.client_key_file"),
        ("OTEL_METRIC_EXPORT_INTERVAL", "otlp.export_interval_ms"),
        ("OTEL_EXPORTER_OTLP_METRICS_TEMPORALITY_PREFERENCE", "otlp.temporality"),
    ];
    for (var, key) in otel {
        if let Some(raw) = vars.get(*var) {
            layer.set_parsed(key, raw, Source::Env((*var).to_owned()))?;
        }
    }
    for (key, _) in SCHEMA {
        let var = format!("DUALMETRICS_{}", key.replace('.', "_").to_ascii_uppercase());
        if let Some(raw) = vars.get(&var) {
            layer.set_parsed(key, raw, Source::Env(var))?;
        }
    }
    Ok(layer)
}

/// A TOML value as the file spells it, for error messages (the SDK parses TOML but does not
/// write it, so `toml`'s writer stays out of the tree): strings quoted, floats with their `.0`,
/// arrays and inline tables as TOML writes them.
pub(crate) fn toml_text(value: &toml::Value) -> String {
    match value {
        toml::Value::String(s) => format!("{s:?}"),
        toml::Value::Integer(i) => i.to_string(),
        toml::Value::Float(f) => format!("{f:?}"),
        toml::Value::Boolean(b) => b.to_string(),
        toml::Value::Datetime(d) => d.to_string(),
        toml::Value::Array(items) => {
            let items: Vec<String> = items.iter().map(toml_text).collect();
            format!("[{}]", items.join(", "))
        }
        toml::Value::Table(entries) => {
            let entries: Vec<String> =
                entries.iter().map(|(k, v)| format!("{k} = {}", toml_text(v))).collect();
            format!("{{ {} }}", entries.join(", "))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percent_escapes_decode() {
        assert_eq!(percent_decode("a%20b%3Dc"), "a b=c");
        assert_eq!(percent_decode("100%"), "100%");
    }

    #[test]
    fn env_integer_that_is_not_a_number_names_the_variable() {
        let vars = BTreeMap::from([("DUALMETRICS_OTLP_TIMEOUT_MS".to_owned(), "soon".to_owned())]);
        let err = from_env(&vars).unwrap_err();
        assert_eq!(err.key, "otlp.timeout_ms");
        assert_eq!(err.origin, Source::Env("DUALMETRICS_OTLP_TIMEOUT_MS".into()));
    }
}
