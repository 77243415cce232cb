//! The catalog: every registered instrument with its name on each pipeline, the input from which
//! the comparator (`dualmetrics compare --catalog`) builds its query pairs.
//!
//! Version 1 of the JSON schema:
//! ```json
//! {"version":1,"service":"checkout","statsd_prefix":"svc","global_tags":{"service":"checkout"},
//!  "instruments":[{"name":"http.requests","kind":"counter","unit":"1","description":"",
//!    "statsd_name":"svc.http.requests","statsd_type":"c","otel_name":"http.requests",
//!    "tag_keys":["route"],"mode":"dual","temporality":"cumulative","rule":null,"buckets":null}]}
//! ```
use std::collections::{BTreeMap, BTreeSet};

use dualmetrics_model::MetricKind;
use serde::Serialize;


/// Every registered instrument, as [`crate::DualMetrics::catalog`] returns it.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Catalog {
    /// Schema version (1).
    pub version: u32,
    /// `service.name`.
    pub service: String,
    /// Prefix of every StatsD name.
    pub statsd_prefix: String,
    /// Tags added to every measurement on both pipelines.
    pub global_tags: BTreeMap<String, String>,
    /// Instruments, sorted by name.
    pub instruments: Vec<CatalogEntry>,
}

/// One instrument of the [`Catalog`].
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct CatalogEntry {
    /// Facade name.
    pub name: String,
    /// Kind.
    pub kind: MetricKind,
    /// UCUM unit.
    pub unit: String,
    /// Description.
    pub description: String,
    /// StatsD name, prefix included.
    pub statsd_name: String,
    /// StatsD type code (`c`, `g`, `ms`, `h`, `d`).
    pub statsd_type: &'static str,
    /// OpenTelemetry instrument name.
    pub otel_name: String,
    /// Per-call tag keys seen so far (global tags excluded).
    pub tag_keys: Vec<String>,
    /// `legacy`, `dual`, `otlp`, or `closed` after shutdown.
    pub mode: &'static str,
    /// `cumulative` or `delta`.
    pub temporality: crate::Temporality,
    /// The per-metric rule that matched, if any.
    pub rule: Option<String>,
    /// Explicit OTLP bucket boundaries (histograms).
    pub buckets: Option<Vec<f64>>,
    /// Live series (tag sets), the overflow series included.
    pub series: usize,
}

pub(crate) fn tag_keys<'a>(keys: impl Iterator<Item = &'a str>) -> Vec<String> {
    keys.filter(|k| *k != crate::OVERFLOW_TAG)
        .map(str::to_owned)
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect()
}
