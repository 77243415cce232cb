//! The catalog: every registered instrument with its name on each pipeline, the input from which
//! the comparator (`dualmetrics compare --catalog`) builds its query pairs and the translator
//! (`dualmetrics translate --catalog`) its names. The format (version 1 of a JSON schema) is
//! declared once, in [`dualmetrics_model::catalog`]; [`crate::DualMetrics::catalog`] fills it and
//! [`crate::DualMetrics::write_catalog`] writes it.
use std::collections::BTreeSet;

pub use dualmetrics_model::catalog::{Catalog, CatalogInstrument, CATALOG_VERSION};

pub(crate) fn tag_keys<'a>(keys: impl Iterator<Item = &'a str>) -> Vec<String> {
    keys.filter(|k| *k != crate::OVERFLOW_TAG)
        .map(str::to_owned)
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect()
}
