//! The Prometheus HTTP API, asked and decoded in one place: `GET /api/v1/query`,
//! `/api/v1/query_range`, `/api/v1/series` and VictoriaMetrics' `/api/v1/export`.
//!
//! [`PrometheusApi`] sends the request through the shared HTTP client (timeouts, retries, auth,
//! response cap) and decodes the answer: the `{"status": …, "data": …}` envelope, the
//! `vector` / `matrix` / `scalar` / `string` result types, and sample values in Prometheus'
//! spelling (`"NaN"`, `"+Inf"`, `"-Inf"`). Every failure is a [`QueryError`] naming the URL:
//!
//! - a JSON refusal (`"status":"error"`, whatever the HTTP status) is [`QueryError::Rejected`]
//!   with the backend's `errorType` and `error`;
//! - any other non-2xx status is [`QueryError::Http`] with the backend's message;
//! - a 2xx body that is not the documented JSON is [`QueryError::NotJson`].
//!
//! The comparator's [`PrometheusAdapter`](super::prometheus::PrometheusAdapter) turns the decoded
//! results into [`Series`](super::Series); the test kit's lab client reads them as they are.
//!
//! ```no_run
//! use dualmetrics_compare::query::prometheus_api::{PrometheusApi, QueryData};
//! use dualmetrics_compare::HttpConfig;
//!
//! let api = PrometheusApi::new(HttpConfig::new("http://127.0.0.1:8428".parse().unwrap()))?;
//! if let QueryData::Vector(samples) = api.query("up", None)? {
//!     for s in samples {
//!         println!("{:?} = {}", s.labels, s.value);
//!     }
//! }
//! # Ok::<(), dualmetrics_compare::QueryError>(())
//! ```
use std::collections::BTreeMap;

use serde::Deserialize;
use url::Url;

use super::graphite::backend_message;
use super::http::{excerpt, HttpClient};
use super::HttpConfig;
use crate::error::{redact_url, QueryError};

/// One series of an instant query (`/api/v1/query`): labels, evaluation time and value.
#[derive(Clone, Debug, PartialEq)]
pub struct InstantSample {
    /// The series' labels (`__name__` included when the result keeps it).
    pub labels: BTreeMap<String, String>,
    /// Evaluation time, Unix seconds.
    pub timestamp: f64,
    /// The value (`NaN` and infinities included; a value that is not a number is `NaN`).
    pub value: f64,
}

/// One series of a range query (`/api/v1/query_range`), or of a range selector evaluated by an
/// instant query.
#[derive(Clone, Debug, PartialEq)]
pub struct RangeSeries {
    /// The series' labels (`__name__` included when the result keeps it).
    pub labels: BTreeMap<String, String>,
    /// `(Unix seconds, value)` pairs, oldest first.
    pub values: Vec<(f64, f64)>,
}

/// One series of VictoriaMetrics' `/api/v1/export`: the raw stored samples.
#[derive(Clone, Debug, PartialEq, Deserialize)]
pub struct ExportedSeries {
    /// The series' labels (`__name__` included).
    #[serde(rename = "metric")]
    pub labels: BTreeMap<String, String>,
    /// The raw values, oldest first.
    pub values: Vec<f64>,
    /// Their timestamps, Unix milliseconds.
    pub timestamps: Vec<i64>,
}

impl ExportedSeries {
    /// The sum of the raw values.
    pub fn sum(&self) -> f64 {
        self.values.iter().sum()
    }
}

/// The `data` of a query or query_range answer, by `resultType`.
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub enum QueryData {
    /// `vector`: one sample per series (an instant query).
    Vector(Vec<InstantSample>),
    /// `matrix`: several samples per series (a range query, or a range selector).
    Matrix(Vec<RangeSeries>),
    /// `scalar`: `(Unix seconds, value)`.
    Scalar(f64, f64),
    /// `string`: `(Unix seconds, text)`.
    String(f64, String),
}

/// A sample value as the API writes it: Prometheus spells infinities `+Inf` / `-Inf` and NaN
/// `NaN`. A value that is not a number at all is `NaN`, so a missing value stays visible.
pub fn parse_value(s: &str) -> f64 {
    match s {
        "+Inf" => f64::INFINITY,
        "-Inf" => f64::NEG_INFINITY,
        other => other.parse().unwrap_or(f64::NAN),
    }
}

/// A client of one Prometheus-compatible HTTP API (Prometheus, VictoriaMetrics, Thanos, Mimir…).
#[derive(Clone)]
pub struct PrometheusApi {
    http: HttpClient,
}

impl PrometheusApi {
    /// A client for the API under `config.base_url` (e.g. `http://127.0.0.1:9090`).
    ///
    /// # Errors
    /// If the HTTP client cannot be built (an unreadable CA file, …).
    pub fn new(config: HttpConfig) -> Result<Self, QueryError> {
        Ok(PrometheusApi { http: HttpClient::new(config)? })
    }

    /// The API of the backend `http` already talks to (its base URL, auth and limits).
    pub(crate) fn from_http(http: HttpClient) -> Self {
        PrometheusApi { http }
    }

    /// The base URL (without credentials).
    pub fn base(&self) -> &Url {
        self.http.base()
    }

    /// `GET /api/v1/query`: `promql` evaluated at `time` (Unix seconds such as `1700000000` or
    /// `1700000000.5`, or RFC 3339), or at the server's "now" when `None`.
    ///
    /// # Errors
    /// See the [module docs](self).
    pub fn query(&self, promql: &str, time: Option<&str>) -> Result<QueryData, QueryError> {
        self.query_then(promql, time, Ok)
    }

    /// [`PrometheusApi::query`], then `then` on the decoded data; an `Err` from it is a
    /// [`QueryError::NotJson`] naming the URL.
    pub(crate) fn query_then<T>(
        &self,
        promql: &str,
        time: Option<&str>,
        then: impl FnOnce(QueryData) -> Result<T, String>,
    ) -> Result<T, QueryError> {
        let mut params = vec![("query", promql.to_owned())];
        if let Some(t) = time {
            params.push(("time", t.to_owned()));
        }
        self.ask("/api/v1/query", &params, |data| decode_query_data(data).and_then(then))
    }

    /// `GET /api/v1/query_range`: `promql` from `start` to `end` every `step` (times as in
    /// [`PrometheusApi::query`], the step a duration such as `15s` or `500ms`).
    ///
    /// # Errors
    /// See the [module docs](self).
    pub fn query_range(
        &self,
        promql: &str,
        start: &str,
        end: &str,
        step: &str,
    ) -> Result<QueryData, QueryError> {
        self.query_range_then(promql, [start, end, step], Ok)
    }

    /// [`PrometheusApi::query_range`] over `[start, end, step]`, then `then` on the decoded data;
    /// an `Err` from it is a [`QueryError::NotJson`] naming the URL.
    pub(crate) fn query_range_then<T>(
        &self,
        promql: &str,
        [start, end, step]: [&str; 3],
        then: impl FnOnce(QueryData) -> Result<T, String>,
    ) -> Result<T, QueryError> {
        let params = [
            ("query", promql.to_owned()),
            ("start", start.to_owned()),
            ("end", end.to_owned()),
            ("step", step.to_owned()),
        ];
        self.ask("/api/v1/query_range", &params, |data| decode_query_data(data).and_then(then))
    }

    /// `GET /api/v1/series`: the label sets of the series matching `selector`.
    ///
    /// # Errors
    /// See the [module docs](self).
    pub fn series(&self, selector: &str) -> Result<Vec<BTreeMap<String, String>>, QueryError> {
        self.ask("/api/v1/series", &[("match[]", selector.to_owned())], |data| {
            serde_json::from_value(data).map_err(|e| format!("unexpected series shape: {e}"))
        })
    }

    /// VictoriaMetrics only, `GET /api/v1/export`: the raw samples of every series matching
    /// `selector` (one JSON object per line, no envelope), so a caller sees exactly what was
    /// stored (no lookback, no carry-forward).
    ///
    /// # Errors
    /// Transport errors, a non-2xx status ([`QueryError::Http`]), a line that is not an exported
    /// series ([`QueryError::NotJson`]).
    pub fn export(&self, selector: &str) -> Result<Vec<ExportedSeries>, QueryError> {
        let url = self.http.url("/api/v1/export", &[("match[]", selector.to_owned())]);
        let (status, body) = self.http.get(&url)?;
        if !status.is_success() {
            return Err(QueryError::Http {
                url: redact_url(url.as_str()),
                status: status.as_u16(),
                message: backend_message(&body),
            });
        }
        body.lines()
            .filter(|l| !l.trim().is_empty())
            .map(|l| {
                serde_json::from_str::<ExportedSeries>(l).map_err(|e| QueryError::NotJson {
                    url: redact_url(url.as_str()),
                    message: format!("{e}; line starts with: {}", excerpt(l)),
                })
            })
            .collect()
    }

    /// GETs `path` and decodes the envelope's `data` with `decode`, mapping every failure to the
    /// [`QueryError`] the module docs list.
    fn ask<T>(
        &self,
        path: &str,
        params: &[(&str, String)],
        decode: impl FnOnce(serde_json::Value) -> Result<T, String>,
    ) -> Result<T, QueryError> {
        let url = self.http.url(path, params);
        let (status, body) = self.http.get(&url)?;
        let url = || redact_url(url.as_str());
        match open_envelope(&body).map(|data| data.and_then(decode)) {
            Ok(Ok(data)) if status.is_success() => Ok(data),
            Err(Refusal { error_type, message }) => {
                Err(QueryError::Rejected { url: url(), error_type, message })
            }
            _ if !status.is_success() => Err(QueryError::Http {
                url: url(),
                status: status.as_u16(),
                message: backend_message(&body),
            }),
            Ok(Err(message)) => Err(QueryError::NotJson { url: url(), message }),
            Ok(Ok(_)) => unreachable!("success status handled above"),
        }
    }
}

/// A JSON refusal: `"status":"error"` with the backend's `errorType` and `error`.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct Refusal {
    pub(crate) error_type: String,
    pub(crate) message: String,
}

#[derive(Deserialize)]
struct Envelope {
    status: String,
    #[serde(default)]
    data: Option<serde_json::Value>,
    #[serde(default, rename = "errorType")]
    error_type: Option<String>,
    #[serde(default)]
    error: Option<String>,
}

/// The envelope's `data`: `Err` for a refusal, `Ok(Err(..))` for a body that is not the
/// documented JSON (with the start of the body), `Ok(Ok(data))` otherwise.
fn open_envelope(body: &str) -> Result<Result<serde_json::Value, String>, Refusal> {
    let env: Envelope = match serde_json::from_str(body) {
        Ok(env) => env,
        Err(e) => return Ok(Err(format!("{e}; body starts with: {}", excerpt(body)))),
    };
    if env.status != "success" {
        return Err(Refusal {
            error_type: env.error_type.unwrap_or_else(|| "error".to_owned()),
            message: env.error.unwrap_or_else(|| "(no message)".to_owned()),
        });
    }
    Ok(env.data.ok_or_else(|| "success without data".to_owned()))
}

#[derive(Deserialize)]
struct RawData {
    #[serde(rename = "resultType")]
    result_type: String,
    result: serde_json::Value,
}

#[derive(Deserialize)]
struct RawVectorItem {
    #[serde(default)]
    metric: BTreeMap<String, String>,
    value: (f64, String),
}

#[derive(Deserialize)]
struct RawMatrixItem {
    #[serde(default)]
    metric: BTreeMap<String, String>,
    #[serde(default)]
    values: Vec<(f64, String)>,
}

/// Decodes the `data` of a query or query_range answer by its `resultType`.
fn decode_query_data(data: serde_json::Value) -> Result<QueryData, String> {
    let data: RawData =
        serde_json::from_value(data).map_err(|e| format!("unexpected data: {e}"))?;
    let shape = |e: serde_json::Error| format!("unexpected {} shape: {e}", data.result_type);
    match data.result_type.as_str() {
        "vector" => {
            let raw: Vec<RawVectorItem> = serde_json::from_value(data.result).map_err(shape)?;
            let samples = raw.into_iter().map(|s| InstantSample {
                labels: s.metric,
                timestamp: s.value.0,
                value: parse_value(&s.value.1),
            });
            Ok(QueryData::Vector(samples.collect()))
        }
        "matrix" => {
            let raw: Vec<RawMatrixItem> = serde_json::from_value(data.result).map_err(shape)?;
            let series = raw.into_iter().map(|s| RangeSeries {
                labels: s.metric,
                values: s.values.iter().map(|(t, v)| (*t, parse_value(v))).collect(),
            });
            Ok(QueryData::Matrix(series.collect()))
        }
        "scalar" => {
            let (t, v): (f64, String) = serde_json::from_value(data.result).map_err(shape)?;
            Ok(QueryData::Scalar(t, parse_value(&v)))
        }
        "string" => {
            let (t, v): (f64, String) = serde_json::from_value(data.result).map_err(shape)?;
            Ok(QueryData::String(t, v))
        }
        other => Err(format!("unsupported resultType {other:?}")),
    }
}

/// Decodes a whole query or query_range body (the envelope, then its `data`): `Err(Ok(..))` is
/// a JSON refusal, `Err(Err(..))` a body that is not the documented JSON.
#[cfg(test)]
pub(crate) fn decode_answer(body: &str) -> Result<QueryData, Result<Refusal, String>> {
    match open_envelope(body) {
        Ok(data) => data.and_then(decode_query_data).map_err(Err),
        Err(refusal) => Err(Ok(refusal)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vector_and_scalar_results_decode_with_prometheus_value_spellings() {
        let v = decode_answer(
            r#"{"status":"success","data":{"resultType":"vector","result":[
                {"metric":{"__name__":"x","env":"prod"},"value":[1700000000.5,"12"]},
                {"metric":{},"value":[1700000000.5,"NaN"]}]}}"#,
        )
        .unwrap();
        let QueryData::Vector(items) = v else { panic!("not a vector") };
        assert_eq!(items[0].labels["env"], "prod");
        assert_eq!(items[0].timestamp, 1700000000.5);
        assert_eq!(items[0].value, 12.0);
        assert!(items[1].value.is_nan());
        assert_eq!(parse_value("+Inf"), f64::INFINITY);
        assert_eq!(parse_value("-Inf"), f64::NEG_INFINITY);
        let s = decode_answer(
            r#"{"status":"success","data":{"resultType":"scalar","result":[1.0,"3"]}}"#,
        )
        .unwrap();
        assert_eq!(s, QueryData::Scalar(1.0, 3.0));
    }

    #[test]
    fn matrix_keeps_every_sample_and_the_name_label() {
        let body = r#"{"status":"success","data":{"resultType":"matrix","result":[{"metric":{"__name__":"x_total"},"values":[[100,"1"],[110,"+Inf"]]}]}}"#;
        let QueryData::Matrix(m) = decode_answer(body).unwrap() else { panic!("not a matrix") };
        assert_eq!(m[0].labels["__name__"], "x_total");
        assert_eq!(m[0].values, vec![(100.0, 1.0), (110.0, f64::INFINITY)]);
    }

    #[test]
    fn error_status_is_a_refusal_and_garbage_is_not_json() {
        let body = r#"{"status":"error","errorType":"bad_data","error":"parse error at char 5"}"#;
        assert_eq!(
            decode_answer(body).unwrap_err(),
            Ok(Refusal {
                error_type: "bad_data".to_owned(),
                message: "parse error at char 5".to_owned()
            })
        );
        let e = decode_answer("<html>502</html>").unwrap_err().unwrap_err();
        assert!(e.contains("body starts with: <html>502</html>"), "{e}");
        let e = decode_answer(r#"{"status":"success","data":{"resultType":"x","result":[]}}"#);
        assert_eq!(e.unwrap_err().unwrap_err(), r#"unsupported resultType "x""#);
    }

    #[test]
    fn vm_export_line_decodes() {
        let e: ExportedSeries = serde_json::from_str(
            r#"{"metric":{"__name__":"c"},"values":[8,0,0],"timestamps":[1000,2000,3000]}"#,
        )
        .unwrap();
        assert_eq!(e.sum(), 8.0);
        assert_eq!(e.timestamps.len(), 3);
    }
}
