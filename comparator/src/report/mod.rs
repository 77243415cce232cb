//! Reports: one row per pair, rendered as a terminal table, JSON, Markdown or a self-contained
//! HTML page with both series on one chart per pair.
use serde::Serialize;

use crate::diff::{Outcome, Verdict};
use crate::pairs::{Pair, PairKind};

pub mod html;
pub mod json;
pub mod markdown;
pub mod table;

/// The two normalised series of a pair (summed over tag sets), for charts. `NaN` = no data.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Chart {
    /// Grid timestamps (Unix seconds).
    pub t: Vec<i64>,
    /// Legacy values per grid point.
    pub legacy: Vec<f64>,
    /// New values per grid point (in the legacy unit).
    pub new: Vec<f64>,
}

/// One pair's result.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PairReport {
    /// Pair name.
    pub name: String,
    /// What is measured.
    pub kind: PairKind,
    /// Unit of the compared values.
    pub unit: String,
    /// The legacy query as sent.
    pub legacy_query: String,
    /// The new query as sent.
    pub new_query: String,
    /// Verdict and figures.
    #[serde(flatten)]
    pub outcome: Outcome,
    /// The failure, for the `error` verdict: side, URL (without secrets) and backend message.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// Normalised series, for the HTML chart (not serialised).
    #[serde(skip)]
    pub chart: Chart,
}

impl PairReport {
    pub(crate) fn new(pair: &Pair, legacy_query: &str, new_query: &str) -> PairReport {
        PairReport {
            name: pair.name.clone(),
            kind: pair.kind,
            unit: pair.unit.clone(),
            legacy_query: legacy_query.to_owned(),
            new_query: new_query.to_owned(),
            outcome: Outcome::pending(),
            error: None,
            chart: Chart::default(),
        }
    }
}

/// A whole comparison run.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    /// The legacy backend (`graphite http://…`), without secrets.
    pub legacy_backend: String,
    /// The new backend, without secrets.
    pub new_backend: String,
    /// Range start (Unix seconds).
    pub start: i64,
    /// Range end (Unix seconds).
    pub end: i64,
    /// Grid step (seconds).
    pub step: i64,
    /// Notes from pair generation (instruments left out and why).
    pub notes: Vec<String>,
    /// One row per pair.
    pub pairs: Vec<PairReport>,
}

/// Counts per verdict.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Summary {
    /// Equivalent pairs.
    pub equivalent: usize,
    /// Divergent pairs.
    pub divergent: usize,
    /// Pairs missing on one or both sides.
    pub missing: usize,
    /// Pairs whose query failed.
    pub error: usize,
}

impl Report {
    /// Counts per verdict.
    pub fn summary(&self) -> Summary {
        let mut s = Summary::default();
        for p in &self.pairs {
            match p.outcome.verdict {
                Verdict::Equivalent => s.equivalent += 1,
                Verdict::Divergent => s.divergent += 1,
                Verdict::MissingLegacy | Verdict::MissingNew | Verdict::NoData => s.missing += 1,
                Verdict::Error => s.error += 1,
            }
        }
        s
    }

    /// 0 when every pair is equivalent, 2 when any query failed, else 1 (divergent or missing).
    pub fn exit_code(&self) -> u8 {
        let s = self.summary();
        if s.error > 0 {
            2
        } else if s.divergent + s.missing > 0 {
            1
        } else {
            0
        }
    }
}

/// A Unix time as `YYYY-MM-DD HH:MM:SSZ` (UTC), for reports and explanations.
pub fn utc(ts: i64) -> String {
    let days = ts.div_euclid(86_400);
    let secs = ts.rem_euclid(86_400);
    // Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!("{y:04}-{m:02}-{d:02} {:02}:{:02}:{:02}Z", secs / 3600, secs / 60 % 60, secs % 60)
}

/// The time of day of a Unix time, `HH:MM:SS` (UTC), for chart axes.
pub fn utc_time(ts: i64) -> String {
    utc(ts)[11..19].to_owned()
}

/// Formats a number compactly for tables (`12`, `0.5`, `1.2e6`, `-` for NaN).
pub fn num(v: f64) -> String {
    if v.is_nan() {
        "-".to_owned()
    } else if v == v.trunc() && v.abs() < 1e9 {
        format!("{v:.0}")
    } else if v.abs() >= 1e6 || v.abs() < 1e-3 {
        format!("{v:.3e}")
    } else {
        format!("{v:.4}").trim_end_matches('0').trim_end_matches('.').to_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn utc_formats_civil_time() {
        assert_eq!(utc(0), "1970-01-01 00:00:00Z");
        assert_eq!(utc(1_700_000_000), "2023-11-14 22:13:20Z");
        assert_eq!(utc(951_782_400), "2000-02-29 00:00:00Z");
        assert_eq!(utc_time(1_700_000_000), "22:13:20");
    }
}
