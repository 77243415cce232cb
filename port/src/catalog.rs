//! The SDK catalog (the JSON the SDK writes, version 1), read for what the translator needs:
//! per StatsD key, the OTel name, kind, unit and buckets. The comparator reads the same file
//! (`dualmetrics_compare::pairs::Catalog`); this reader keeps the port crate free of the
//! comparator's HTTP stack and ignores the fields it does not use.
use crate::error::ContextError;
use dualmetrics_model::MetricKind;
use serde::Deserialize;

/// The catalog.
#[derive(Debug, Clone, Deserialize)]
pub struct Catalog {
    /// Schema version; 1.
    pub version: u32,
    /// Prefix of every StatsD name.
    #[serde(default)]
    pub statsd_prefix: String,
    /// The instruments.
    pub instruments: Vec<CatalogInstrument>,
}

/// One instrument.
#[derive(Debug, Clone, Deserialize)]
pub struct CatalogInstrument {
    /// Facade name.
    pub name: String,
    /// Kind.
    pub kind: MetricKind,
    /// UCUM unit (`1`, `ms`, `s`, `By`, …).
    #[serde(default)]
    pub unit: String,
    /// StatsD key (with the prefix). Defaults to `statsd_prefix.name`.
    #[serde(default)]
    pub statsd_name: Option<String>,
    /// StatsD type: `c`, `g`, `ms`, `h` or `d`.
    pub statsd_type: String,
    /// OTel instrument name. Defaults to `name`.
    #[serde(default)]
    pub otel_name: Option<String>,
    /// Explicit bucket bounds, when not the OTel default.
    #[serde(default)]
    pub buckets: Option<Vec<f64>>,
}

impl Catalog {
    /// Parses the catalog JSON; `path` only names it in errors.
    ///
    /// # Errors
    /// Invalid JSON or a version other than 1.
    pub fn parse(text: &str, path: &str) -> Result<Catalog, ContextError> {
        let c: Catalog = serde_json::from_str(text)
            .map_err(|e| ContextError::Invalid { path: path.to_owned(), message: e.to_string() })?;
        if c.version != 1 {
            return Err(ContextError::Invalid {
                path: path.to_owned(),
                message: format!("unsupported catalog version {} (expected 1)", c.version),
            });
        }
        Ok(c)
    }

    /// Reads and parses a catalog file.
    ///
    /// # Errors
    /// The file cannot be read, or [`Catalog::parse`] fails.
    pub fn load(path: &std::path::Path) -> Result<Catalog, ContextError> {
        let shown = path.display().to_string();
        let text = std::fs::read_to_string(path)
            .map_err(|source| ContextError::Io { path: shown.clone(), source })?;
        Catalog::parse(&text, &shown)
    }

    /// The instrument whose StatsD key is `key`.
    pub fn by_statsd_key(&self, key: &str) -> Option<&CatalogInstrument> {
        self.instruments.iter().find(|i| match &i.statsd_name {
            Some(n) => n == key,
            None => dualmetrics_model::naming::statsd_name(&self.statsd_prefix, &i.name) == key,
        })
    }
}
