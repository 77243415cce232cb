//! JSON report: the [`Report`] with a summary and the exit code.
use serde::Serialize;

use super::{Report, Summary};

#[derive(Serialize)]
struct JsonReport<'a> {
    summary: Summary,
    exit_code: u8,
    #[serde(flatten)]
    report: &'a Report,
}

/// Renders the report as pretty JSON. Non-finite numbers become `null`.
pub fn render(report: &Report) -> String {
    let doc = JsonReport { summary: report.summary(), exit_code: report.exit_code(), report };
    serde_json::to_string_pretty(&doc).unwrap_or_else(|e| format!("{{\"error\":\"{e}\"}}"))
}
