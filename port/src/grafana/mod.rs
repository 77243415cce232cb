//! Grafana dashboards on Graphite → the same dashboards on Prometheus.
//!
//! Stages, one file each:
//! 1. [`io`]: find `*.json` under files and directories, read them, write atomically.
//! 2. [`datasource`]: which datasource a reference means (uid, name, `${DS_…}`, `$var`, mixed)
//!    and the Prometheus reference that replaces a Graphite one.
//! 3. [`variables`]: template variables (Graphite query variables → `label_values(…)`).
//! 4. [`panel`]: one panel's targets → PromQL targets, description notes, units.
//! 5. [`dashboard`]: a whole dashboard (rows, collapsed rows, the export model).
//!
//! [`port_all`] runs them over many files: one broken dashboard is reported and the others
//! are still ported. A port is idempotent: a target that was ported carries its Graphite text
//! in [`panel::GRAPHITE_FIELD`] and is left alone the second time, so porting a ported
//! dashboard writes the same bytes.
//!
//! ```
//! use dualmetrics_port::grafana::{dashboard, PortOptions};
//! let doc = serde_json::json!({"title": "Shop", "panels": [{"id": 1, "title": "Orders",
//!     "datasource": {"type": "graphite", "uid": "g"},
//!     "targets": [{"refId": "A", "target": "sumSeries(stats.counters.shop.orders.count)"}]}]});
//! let ported = dashboard::port(&doc, "inline", &PortOptions::default()).unwrap();
//! let t = &ported.json["panels"][0]["targets"][0];
//! assert_eq!(t["expr"], "sum(rate(shop_orders_total[$__rate_interval]) * 10)");
//! assert_eq!(ported.json["panels"][0]["datasource"]["type"], "prometheus");
//! ```
pub mod cli;
pub mod dashboard;
pub mod datasource;
pub mod io;
pub mod panel;
pub mod variables;

pub use crate::error::PortError;
use crate::translate::Context;
use dashboard::DashboardReport;
use serde::Serialize;
use std::path::{Path, PathBuf};

/// The Prometheus datasource uid written when none is given (`--datasource-uid`).
pub const DEFAULT_DATASOURCE_UID: &str = "prometheus";

/// Settings of a port.
#[derive(Debug, Clone)]
pub struct PortOptions {
    /// The translator's context (naming, flush interval, catalog, mapping file: which
    /// dotted-key nodes are labels, for targets and query variables).
    pub ctx: Context,
    /// The Prometheus datasource uid (export-model dashboards get `${DS_PROMETHEUS}` instead).
    /// Defaults to [`DEFAULT_DATASOURCE_UID`].
    pub datasource_uid: String,
    /// Datasource names or uids to treat as Graphite (besides type `graphite`, names
    /// containing "graphite" and `${DS_…}` inputs of the graphite plugin).
    pub graphite_datasources: Vec<String>,
    /// Switch `ms` timer panels to the new side's seconds.
    pub seconds: bool,
}

impl Default for PortOptions {
    fn default() -> Self {
        PortOptions {
            ctx: Context::default(),
            datasource_uid: DEFAULT_DATASOURCE_UID.to_owned(),
            graphite_datasources: Vec::new(),
            seconds: false,
        }
    }
}

/// A dashboard that could not be ported.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Failure {
    /// The file.
    pub source: String,
    /// Why.
    pub error: PortError,
}

/// The result of a batch port.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct BatchReport {
    /// One report per ported dashboard.
    pub dashboards: Vec<DashboardReport>,
    /// Dashboards that could not be ported.
    pub failures: Vec<Failure>,
}

impl BatchReport {
    /// Number of targets with this status over every dashboard.
    pub fn count(&self, status: &str) -> usize {
        self.dashboards.iter().map(|d| d.count(status)).sum()
    }
}

/// Ports every dashboard under `inputs` into `out` (same relative paths), each written
/// atomically. `progress` is called after each file with (done, total).
///
/// # Errors
/// Only when the inputs cannot be listed; a dashboard that fails is in
/// [`BatchReport::failures`] and the others are still ported.
pub fn port_all(
    inputs: &[PathBuf],
    out: &Path,
    opts: &PortOptions,
    progress: &mut dyn FnMut(usize, usize),
) -> Result<BatchReport, PortError> {
    let files = io::find(inputs)?;
    let mut batch = BatchReport::default();
    let total = files.len();
    for (i, f) in files.iter().enumerate() {
        let source = f.path.display().to_string();
        let result = io::read_json(&f.path).and_then(|doc| dashboard::port(&doc, &source, opts));
        match result {
            Ok(mut ported) => {
                let dest = out.join(&f.relative);
                match io::write_atomic(&dest, io::to_text(&ported.json).as_bytes()) {
                    Ok(()) => {
                        ported.report.output = Some(dest.display().to_string());
                        batch.dashboards.push(ported.report);
                    }
                    Err(error) => batch.failures.push(Failure { source, error }),
                }
            }
            Err(error) => batch.failures.push(Failure { source, error }),
        }
        progress(i + 1, total);
    }
    Ok(batch)
}
