//! The SDK catalog (the JSON the SDK writes, [`dualmetrics_model::catalog`]), read for what the
//! translator needs: per StatsD key, the OTel name, kind, unit and buckets.
use crate::error::ContextError;

pub use dualmetrics_model::catalog::{Catalog, CatalogInstrument};

/// Parses the catalog JSON; `path` only names it in errors.
///
/// # Errors
/// Invalid JSON or a version other than 1.
pub fn parse(text: &str, path: &str) -> Result<Catalog, ContextError> {
    let invalid = |message: String| ContextError::Invalid { path: path.to_owned(), message };
    let c: Catalog = serde_json::from_str(text).map_err(|e| invalid(e.to_string()))?;
    c.check_version().map_err(invalid)?;
    Ok(c)
}

/// Reads and parses a catalog file.
///
/// # Errors
/// The file cannot be read, or [`parse`] fails.
pub fn load(path: &std::path::Path) -> Result<Catalog, ContextError> {
    let shown = path.display().to_string();
    let text = std::fs::read_to_string(path)
        .map_err(|source| ContextError::Io { path: shown.clone(), source })?;
    parse(&text, &shown)
}
