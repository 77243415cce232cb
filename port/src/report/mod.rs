//! Reports of a validation: terminal summary (worst first), JSON, HTML.
//!
//! - [`progress`]: bars on a terminal, quiet in CI.
//! - [`terminal`]: dashboards × panels × verdicts and alerts, worst first.
//! - [`html`]: one page — dashboard → panel → target with both curves on one chart (a human
//!   time axis), and each alert's firing timelines side by side.
//!
//! JSON is [`ValidationReport`] serialised.
pub mod html;
pub mod progress;
pub mod terminal;

use crate::validate::alerts::AlertResult;
use crate::validate::{DashboardResult, Verdict};
use serde::Serialize;

/// Exit code: everything equivalent.
pub const EXIT_EQUIVALENT: u8 = 0;
/// Exit code: something divergent or not validated.
pub const EXIT_DIFFERENT: u8 = 1;
/// Exit code: an error (bad arguments, unreadable inputs, a failed query).
pub const EXIT_ERROR: u8 = 2;

/// A whole validation run.
#[derive(Debug, Clone, Serialize)]
pub struct ValidationReport {
    /// The legacy backend (URL without credentials).
    pub legacy_backend: String,
    /// The new backend.
    pub new_backend: String,
    /// Window start, Unix seconds.
    pub start: i64,
    /// Window end.
    pub end: i64,
    /// Grid step, seconds.
    pub step: i64,
    /// Dashboards, worst first.
    pub dashboards: Vec<DashboardResult>,
    /// Alerts, worst first.
    pub alerts: Vec<AlertResult>,
}

impl ValidationReport {
    /// The worst verdict of everything in the report.
    pub fn verdict(&self) -> Verdict {
        Verdict::worst(
            self.dashboards.iter().map(|d| d.verdict).chain(self.alerts.iter().map(|a| a.verdict)),
        )
    }

    /// Whether a query failed (an unreachable backend, an HTTP error, a rejected query).
    pub fn has_errors(&self) -> bool {
        let targets = self.dashboards.iter().flat_map(|d| &d.panels).flat_map(|p| &p.targets);
        targets.into_iter().any(|t| t.comparator.as_deref() == Some("error"))
            || self.alerts.iter().any(|a| a.error)
    }

    /// As the comparator: 2 when a query failed, else 0 when everything is equivalent, 1
    /// otherwise ("not validated" is not equivalent).
    pub fn exit_code(&self) -> u8 {
        if self.has_errors() {
            EXIT_ERROR
        } else if self.verdict() == Verdict::Equivalent {
            EXIT_EQUIVALENT
        } else {
            EXIT_DIFFERENT
        }
    }

    /// Pretty JSON with a final newline.
    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).unwrap_or_default() + "\n"
    }
}

/// A Unix time as `YYYY-MM-DD HH:MM:SS` (UTC).
pub fn utc(ts: i64) -> String {
    let (days, secs) = (ts.div_euclid(86_400), ts.rem_euclid(86_400));
    // civil-from-days (Howard Hinnant's algorithm)
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!("{y:04}-{m:02}-{d:02} {:02}:{:02}:{:02}", secs / 3600, secs % 3600 / 60, secs % 60)
}

/// The time of day of a Unix time, `HH:MM:SS` (UTC), for time axes.
pub fn utc_time(ts: i64) -> String {
    utc(ts)[11..].to_owned()
}

#[cfg(test)]
mod tests {
    #[test]
    fn utc_reads_like_a_calendar() {
        assert_eq!(super::utc(0), "1970-01-01 00:00:00");
        assert_eq!(super::utc(1_798_761_599), "2026-12-31 23:59:59");
        assert_eq!(super::utc_time(1_700_000_000), "22:13:20");
    }
}
