//! Asking a backend: one small trait, [`QueryAdapter`], and one file per API.
//!
//! Both adapters speak plain HTTP through [`HttpConfig`] (timeouts, retries with exponential
//! backoff, bearer or basic auth from the environment) and return the same [`Series`] shape, so
//! the stages after them do not know which API answered. [`prometheus_api`] is the one place the
//! Prometheus HTTP API is asked and decoded; the Prometheus adapter and the test kit's lab
//! client build on it.
use std::collections::BTreeMap;
use std::time::Duration;

use crate::align::Stamps;
use crate::error::QueryError;

pub mod graphite;
pub(crate) mod http;
pub mod prometheus;
pub mod prometheus_api;

pub use http::{Auth, Headers, HttpConfig, DEFAULT_MAX_RESPONSE_BYTES};

/// One time series as a backend returned it: its labels and its points in time order.
///
/// Timestamps are Unix seconds. A point the backend returned as `null` or `NaN` is kept as
/// `f64::NAN`, so a missing value stays visible to the alignment stage.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Series {
    /// Labels (Prometheus) or tags (Graphite), without the metric name (`__name__` / `name`).
    pub labels: BTreeMap<String, String>,
    /// `(unix seconds, value)` in time order.
    pub points: Vec<(i64, f64)>,
}

/// Largest timestamp magnitude a backend may return, Unix seconds (about the year 5138): a point
/// beyond it (`-1e300`, an overflowed float) makes the answer an error, never an overflow in the
/// alignment arithmetic.
pub const MAX_TIMESTAMP_SECS: f64 = 1e11;

/// A returned timestamp as whole Unix seconds, or an error naming it when it is not a time.
pub(crate) fn timestamp(t: f64) -> Result<i64, String> {
    if t.is_finite() && t.abs() <= MAX_TIMESTAMP_SECS {
        Ok(t.round() as i64)
    } else {
        Err(format!("timestamp {t} is not a time (beyond ±{MAX_TIMESTAMP_SECS} s)"))
    }
}

/// A range of time on a step grid: `start`, `start + step`, … up to and including `end`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TimeRange {
    /// First grid point, Unix seconds.
    pub start: i64,
    /// Last instant, Unix seconds (the last grid point is the largest `start + k*step <= end`).
    pub end: i64,
    /// Grid step, seconds (at least 1).
    pub step: i64,
}

impl TimeRange {
    /// The grid points.
    pub fn grid(&self) -> Vec<i64> {
        let step = self.step.max(1);
        (0..).map(|i| self.start + i * step).take_while(|t| *t <= self.end).collect()
    }
}

/// A backend API that answers range and instant queries.
///
/// Implementations hold their HTTP client and do their own retries; a returned error is final.
pub trait QueryAdapter: Send + Sync {
    /// What this adapter asks (`graphite http://host:port`), for reports. Never contains secrets.
    fn describe(&self) -> String;

    /// Evaluates `query` over `range`. The series come back at the backend's resolution (a
    /// Graphite store returns its storage step, a Prometheus API the grid points).
    fn range(&self, query: &str, range: &TimeRange) -> Result<Vec<Series>, QueryError>;

    /// Evaluates `query` at one instant (Unix seconds); each series has at most one point.
    fn instant(&self, query: &str, at: i64) -> Result<Vec<Series>, QueryError>;

    /// How the points [`QueryAdapter::range`] returns are stamped. Defaults to
    /// [`Stamps::GridEnd`] (a point stamped `T` was sampled within the step before `T`).
    fn stamps(&self) -> Stamps {
        Stamps::GridEnd
    }

    /// The raw samples of `query` over `range` with their own timestamps, when the adapter can
    /// fetch them for this query (a plain selector on a Prometheus API). Defaults to `None`:
    /// [`QueryAdapter::range`] is used instead.
    fn raw(&self, query: &str, range: &TimeRange) -> Option<Result<Vec<Series>, QueryError>> {
        let _ = (query, range);
        None
    }
}

/// Default per-request timeout.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);
/// Default number of retries after a failed attempt (transport errors, 5xx, 429).
pub const DEFAULT_RETRIES: u32 = 2;
/// Default delay before the first retry; it doubles on each further retry.
pub const DEFAULT_BACKOFF: Duration = Duration::from_millis(200);
