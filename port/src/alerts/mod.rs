//! Graphite alerts → Prometheus alerting rules.
//!
//! Stages, one file each:
//! 1. [`source`]: Grafana legacy panel alerts (from dashboard JSON) and a plain YAML of
//!    Graphite alerts → [`source::AlertSpec`].
//! 2. [`rules`]: an alert → rules (translated target, reducer, evaluator, `for`, no-data
//!    state), grouped per evaluation interval into a rule file Prometheus' checker accepts.
//! 3. [`cli`]: `dualmetrics alerts port`.
//!
//! ```
//! use dualmetrics_port::alerts::{rules, source};
//! let specs = source::parse_yaml(
//!     "alerts:\n- name: queue high\n  target: stats.gauges.q\n  condition: '>'\n  threshold: 800\n  reduce: max\n  for: 5m\n",
//!     "inline",
//! ).unwrap();
//! let r = rules::port(&specs[0], &rules::RulesOptions::default());
//! assert_eq!(r.rules[0].alert, "QueueHigh");
//! assert_eq!(r.rules[0].expr, "max_over_time((q)[5m:10s]) > 800");
//! ```
pub mod cli;
pub mod rules;
pub mod source;

pub use crate::error::AlertError;
use crate::grafana::{io, PortError};
use rules::{AlertReport, RulesOptions};
use serde::Serialize;
use std::path::{Path, PathBuf};

/// The alerts of one input file and the rule file written for them.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FileReport {
    /// The input.
    pub source: String,
    /// The rule file written (none when no alert could be ported).
    pub output: Option<String>,
    /// One report per alert.
    pub alerts: Vec<AlertReport>,
}

/// A batch: every input file.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct AlertsBatch {
    /// Files read.
    pub files: Vec<FileReport>,
    /// Files that could not be read.
    pub failures: Vec<(String, AlertError)>,
}

impl AlertsBatch {
    /// Alerts with this status over all files.
    pub fn count(&self, status: &str) -> usize {
        self.files.iter().flat_map(|f| &f.alerts).filter(|a| a.status == status).count()
    }
}

/// Reads the alerts of one file: `*.json` are dashboards (legacy panel alerts), anything
/// else the YAML format of [`source`].
///
/// # Errors
/// The file cannot be read or parsed.
pub fn read(path: &Path) -> Result<Vec<source::AlertSpec>, AlertError> {
    let name = path.display().to_string();
    if path.extension().is_some_and(|e| e == "json") {
        let doc = io::read_json(path)?;
        source::from_dashboard(&doc, &name)
    } else {
        let text = std::fs::read_to_string(path)
            .map_err(|e| PortError::Io { path: name.clone(), message: e.to_string() })?;
        source::parse_yaml(&text, &name)
    }
}

/// The alert files among `inputs`: files as given, directories searched for YAML and JSON.
///
/// # Errors
/// A directory that cannot be listed.
pub fn inputs_of(inputs: &[PathBuf]) -> Result<Vec<io::Input>, AlertError> {
    let mut out = Vec::new();
    for i in inputs {
        if i.is_dir() {
            for e in std::fs::read_dir(i)
                .map_err(|e| PortError::Io {
                    path: i.display().to_string(),
                    message: e.to_string(),
                })?
                .flatten()
            {
                let p = e.path();
                let ext = p.extension().and_then(|x| x.to_str()).unwrap_or_default();
                if matches!(ext, "yml" | "yaml") {
                    out.push(io::Input { relative: PathBuf::from(e.file_name()), path: p });
                }
            }
            out.extend(io::find(std::slice::from_ref(i))?);
        } else {
            out.push(io::Input {
                path: i.clone(),
                relative: PathBuf::from(i.file_name().unwrap_or(i.as_os_str())),
            });
        }
    }
    out.sort_by(|a, b| a.path.cmp(&b.path));
    out.dedup();
    Ok(out)
}

/// Ports the alerts of every input into `out/<name>.rules.yml`, written atomically; one file
/// that fails is reported and the others are ported.
///
/// # Errors
/// Only when an input cannot be listed.
pub fn port_all(
    inputs: &[PathBuf],
    out: &Path,
    opts: &RulesOptions,
) -> Result<AlertsBatch, AlertError> {
    let mut batch = AlertsBatch::default();
    for input in inputs_of(inputs)? {
        let source = input.path.display().to_string();
        let specs = match read(&input.path) {
            Ok(s) => s,
            Err(e) => {
                batch.failures.push((source, e));
                continue;
            }
        };
        if specs.is_empty() {
            continue; // a dashboard without alerts
        }
        let reports: Vec<AlertReport> = specs.iter().map(|s| rules::port(s, opts)).collect();
        let stem = input.relative.with_extension("");
        let base = stem.to_string_lossy().replace(['/', '\\', ' '], "-");
        let file = rules::rule_file(&base, &reports);
        let mut output = None;
        if !file.groups.is_empty() {
            let dest = out.join(format!("{base}.rules.yml"));
            if let Err(e) = io::write_atomic(&dest, file.to_yaml().as_bytes()) {
                batch.failures.push((source, e.into()));
                continue;
            }
            output = Some(dest.display().to_string());
        }
        batch.files.push(FileReport { source, output, alerts: reports });
    }
    Ok(batch)
}
