//! The catalog: every instrument a service registered, with its name on each pipeline. The SDK
//! writes it (`DualMetrics::write_catalog`); the comparator builds its query pairs from it
//! (`dualmetrics compare --catalog`) and the translator reads the OTel name, kind, unit and
//! buckets of a StatsD key from it. All three use these types, so the format is declared once.
//!
//! Version 1 of the JSON schema (fields a hand-written catalog may leave out have defaults):
//! ```json
//! {"version":1,"service":"checkout","statsd_prefix":"svc","global_tags":{"service":"checkout"},
//!  "instruments":[{"name":"http.requests","kind":"counter","unit":"1","description":"",
//!    "statsd_name":"svc.http.requests","statsd_type":"c","otel_name":"http.requests",
//!    "tag_keys":["route"],"mode":"dual","temporality":"cumulative","rule":null,"buckets":null,
//!    "series":3}]}
//! ```
use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::MetricKind;

/// The schema version this crate reads and writes.
pub const CATALOG_VERSION: u32 = 1;

/// Every registered instrument of one service.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Catalog {
    /// Schema version ([`CATALOG_VERSION`]).
    pub version: u32,
    /// `service.name`.
    #[serde(default)]
    pub service: String,
    /// Prefix of every StatsD name.
    #[serde(default)]
    pub statsd_prefix: String,
    /// Tags added to every measurement on both pipelines.
    #[serde(default)]
    pub global_tags: BTreeMap<String, String>,
    /// The instruments (the SDK writes them sorted by name).
    pub instruments: Vec<CatalogInstrument>,
}

/// One instrument of a [`Catalog`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CatalogInstrument {
    /// Facade name.
    pub name: String,
    /// Kind.
    pub kind: MetricKind,
    /// UCUM unit (`1`, `ms`, `s`, `By`, `Cel`, …).
    #[serde(default)]
    pub unit: String,
    /// Description.
    #[serde(default)]
    pub description: String,
    /// StatsD key, prefix included. `None`: `statsd_prefix.name` ([`Catalog::statsd_name_of`]).
    #[serde(default)]
    pub statsd_name: Option<String>,
    /// StatsD type code: `c`, `g`, `ms`, `h` or `d`.
    pub statsd_type: String,
    /// OpenTelemetry instrument name. `None`: the facade name.
    #[serde(default)]
    pub otel_name: Option<String>,
    /// Per-call tag keys seen so far (global tags excluded).
    #[serde(default)]
    pub tag_keys: Vec<String>,
    /// `legacy`, `dual`, `otlp`, or `closed` after shutdown.
    #[serde(default = "default_mode")]
    pub mode: String,
    /// `cumulative` or `delta`.
    #[serde(default)]
    pub temporality: Option<String>,
    /// The glob of the per-metric rule that matched, if any.
    #[serde(default)]
    pub rule: Option<String>,
    /// Explicit OTLP bucket boundaries (histograms), when not the default.
    #[serde(default)]
    pub buckets: Option<Vec<f64>>,
    /// Live series (tag sets) when the catalog was taken, the overflow series included.
    #[serde(default)]
    pub series: usize,
}

fn default_mode() -> String {
    "dual".to_owned()
}

impl Catalog {
    /// Checks the schema version: `Err` names the one found.
    pub fn check_version(&self) -> Result<(), String> {
        if self.version == CATALOG_VERSION {
            Ok(())
        } else {
            Err(format!(
                "unsupported catalog version {} (expected {CATALOG_VERSION})",
                self.version
            ))
        }
    }

    /// The StatsD key of `instrument`: its `statsd_name`, else the prefix and its name.
    pub fn statsd_name_of(&self, instrument: &CatalogInstrument) -> String {
        match &instrument.statsd_name {
            Some(n) => n.clone(),
            None => crate::naming::statsd_name(&self.statsd_prefix, &instrument.name),
        }
    }

    /// The instrument whose StatsD key is `key`.
    pub fn by_statsd_key(&self, key: &str) -> Option<&CatalogInstrument> {
        self.instruments.iter().find(|i| match &i.statsd_name {
            Some(n) => n == key,
            None => crate::naming::statsd_name(&self.statsd_prefix, &i.name) == key,
        })
    }
}

impl CatalogInstrument {
    /// The OpenTelemetry instrument name: `otel_name`, else the facade name.
    pub fn otel_name_or_name(&self) -> &str {
        self.otel_name.as_deref().unwrap_or(&self.name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn instrument(name: &str, statsd_name: Option<&str>) -> CatalogInstrument {
        CatalogInstrument {
            name: name.into(),
            kind: MetricKind::Counter,
            unit: "1".into(),
            description: String::new(),
            statsd_name: statsd_name.map(str::to_owned),
            statsd_type: "c".into(),
            otel_name: None,
            tag_keys: vec![],
            mode: default_mode(),
            temporality: None,
            rule: None,
            buckets: None,
            series: 0,
        }
    }

    #[test]
    fn a_statsd_key_is_the_explicit_name_or_the_prefixed_facade_name() {
        let catalog = Catalog {
            version: 1,
            service: "checkout".into(),
            statsd_prefix: "svc".into(),
            global_tags: BTreeMap::new(),
            instruments: vec![
                instrument("http.requests", None),
                instrument("jobs", Some("legacy.jobs.done")),
            ],
        };
        assert_eq!(catalog.statsd_name_of(&catalog.instruments[0]), "svc.http.requests");
        assert_eq!(catalog.by_statsd_key("legacy.jobs.done").unwrap().name, "jobs");
        assert_eq!(catalog.by_statsd_key("svc.http.requests").unwrap().name, "http.requests");
        assert!(catalog.by_statsd_key("svc.jobs").is_none(), "renamed away");
    }

    #[test]
    fn only_version_1_is_read() {
        let mut catalog = Catalog {
            version: 2,
            service: String::new(),
            statsd_prefix: String::new(),
            global_tags: BTreeMap::new(),
            instruments: vec![],
        };
        assert_eq!(
            catalog.check_version().unwrap_err(),
            "unsupported catalog version 2 (expected 1)"
        );
        catalog.version = CATALOG_VERSION;
        assert!(catalog.check_version().is_ok());
    }
}
