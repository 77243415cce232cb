//! HTTP clients of the lab's backends: [`PromClient`] (the Prometheus HTTP API of Prometheus and
//! VictoriaMetrics: instant and range queries, series export) and [`GraphiteClient`]
//! (VictoriaMetrics' Graphite render API), plus [`post_otlp_protobuf`].
use std::collections::BTreeMap;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::Deserialize;

/// Default timeout of one HTTP request to a backend.
const HTTP_TIMEOUT: Duration = Duration::from_secs(10);

/// Why a backend query failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum QueryError {
    /// The request did not get an answer (connection refused, timeout, ...).
    #[error("request to {url} failed: {source}")]
    Http {
        /// The URL.
        url: String,
        /// The transport error.
        source: reqwest::Error,
    },
    /// The server answered with a non-success status.
    #[error("{url} answered HTTP {status}: {body}")]
    Status {
        /// The URL.
        url: String,
        /// The status code.
        status: u16,
        /// The response body (truncated).
        body: String,
    },
    /// The body is not what the API documents.
    #[error("{url}: cannot decode the response ({reason}): {body}")]
    Decode {
        /// The URL.
        url: String,
        /// The decoding error.
        reason: String,
        /// The response body (truncated).
        body: String,
    },
    /// The query API reported an error (`"status": "error"`).
    #[error("{url}: query failed ({error_type}): {error}")]
    Api {
        /// The URL.
        url: String,
        /// `errorType` (e.g. `bad_data`).
        error_type: String,
        /// `error`.
        error: String,
    },
    /// A single value was asked for but the query matched several series.
    #[error("query {query:?} returned {count} series, expected at most one: {series}")]
    NotOneSeries {
        /// The query.
        query: String,
        /// How many series it returned.
        count: usize,
        /// Their label sets.
        series: String,
    },
}

/// One series of an instant query (`/api/v1/query`): labels, evaluation time and value.
#[derive(Clone, Debug, PartialEq)]
pub struct InstantSample {
    /// The series' labels (`__name__` included when the result keeps it).
    pub labels: BTreeMap<String, String>,
    /// Evaluation time, Unix seconds.
    pub timestamp: f64,
    /// The value (`NaN` and infinities included).
    pub value: f64,
}

/// One series of a range query (`/api/v1/query_range`).
#[derive(Clone, Debug, PartialEq)]
pub struct RangeSeries {
    /// The series' labels.
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

#[derive(Deserialize)]
struct ApiEnvelope<T> {
    status: String,
    data: Option<T>,
    #[serde(rename = "errorType", default)]
    error_type: Option<String>,
    #[serde(default)]
    error: Option<String>,
}

#[derive(Deserialize)]
#[serde(tag = "resultType", content = "result", rename_all = "lowercase")]
enum QueryData {
    Vector(Vec<VectorItem>),
    Matrix(Vec<MatrixItem>),
    Scalar((f64, String)),
    String(serde::de::IgnoredAny),
}

#[derive(Deserialize)]
struct VectorItem {
    #[serde(default)]
    metric: BTreeMap<String, String>,
    value: (f64, String),
}

#[derive(Deserialize)]
struct MatrixItem {
    #[serde(default)]
    metric: BTreeMap<String, String>,
    values: Vec<(f64, String)>,
}

/// A Prometheus HTTP API client (works for Prometheus and VictoriaMetrics).
#[derive(Clone, Debug)]
pub struct PromClient {
    base: String,
    http: reqwest::blocking::Client,
}

impl PromClient {
    /// A client for the API at `base_url` (e.g. `http://127.0.0.1:8428`), 10 s per request.
    pub fn new(base_url: impl Into<String>) -> PromClient {
        let http = http_client();
        PromClient { base: base_url.into().trim_end_matches('/').to_string(), http }
    }

    /// The base URL.
    pub fn base_url(&self) -> &str {
        &self.base
    }

    /// Instant query at the server's "now".
    ///
    /// # Errors
    /// Transport, HTTP status, decoding and API errors, each with the URL.
    pub fn query(&self, promql: &str) -> Result<Vec<InstantSample>, QueryError> {
        self.instant(promql, None)
    }

    /// Instant query evaluated at `at`.
    ///
    /// # Errors
    /// See [`PromClient::query`].
    pub fn query_at(&self, promql: &str, at: SystemTime) -> Result<Vec<InstantSample>, QueryError> {
        self.instant(promql, Some(unix_secs(at)))
    }

    fn instant(&self, promql: &str, at: Option<f64>) -> Result<Vec<InstantSample>, QueryError> {
        let mut params = vec![("query", promql.to_string())];
        if let Some(t) = at {
            params.push(("time", format!("{t:.3}")));
        }
        let (url, data) = self.api::<QueryData>("/api/v1/query", &params)?;
        match data {
            QueryData::Vector(items) => items
                .into_iter()
                .map(|i| {
                    Ok(InstantSample {
                        labels: i.metric,
                        timestamp: i.value.0,
                        value: parse_value(&url, &i.value.1)?,
                    })
                })
                .collect(),
            QueryData::Scalar((t, v)) => Ok(vec![InstantSample {
                labels: BTreeMap::new(),
                timestamp: t,
                value: parse_value(&url, &v)?,
            }]),
            QueryData::Matrix(_) | QueryData::String(_) => Err(QueryError::Decode {
                url,
                reason: "an instant query returned a matrix or string".into(),
                body: String::new(),
            }),
        }
    }

    /// Range query from `start` to `end` every `step`.
    ///
    /// # Errors
    /// See [`PromClient::query`].
    pub fn query_range(
        &self,
        promql: &str,
        start: SystemTime,
        end: SystemTime,
        step: Duration,
    ) -> Result<Vec<RangeSeries>, QueryError> {
        let params = [
            ("query", promql.to_string()),
            ("start", format!("{:.3}", unix_secs(start))),
            ("end", format!("{:.3}", unix_secs(end))),
            ("step", format!("{}ms", step.as_millis().max(1))),
        ];
        let (url, data) = self.api::<QueryData>("/api/v1/query_range", &params)?;
        match data {
            QueryData::Matrix(items) => items
                .into_iter()
                .map(|i| {
                    let values = i
                        .values
                        .iter()
                        .map(|(t, v)| Ok((*t, parse_value(&url, v)?)))
                        .collect::<Result<_, QueryError>>()?;
                    Ok(RangeSeries { labels: i.metric, values })
                })
                .collect(),
            _ => Err(QueryError::Decode {
                url,
                reason: "a range query did not return a matrix".into(),
                body: String::new(),
            }),
        }
    }

    /// The value of an instant query that yields at most one series: `None` when it yields none
    /// (not ingested yet), an error when it yields several.
    ///
    /// # Errors
    /// See [`PromClient::query`], plus [`QueryError::NotOneSeries`].
    pub fn query_value(&self, promql: &str) -> Result<Option<f64>, QueryError> {
        let samples = self.query(promql)?;
        match samples.len() {
            0 => Ok(None),
            1 => Ok(Some(samples[0].value)),
            n => Err(QueryError::NotOneSeries {
                query: promql.into(),
                count: n,
                series: format!("{:?}", samples.iter().map(|s| &s.labels).collect::<Vec<_>>()),
            }),
        }
    }

    /// An instant query's values keyed by the value of `label` (missing label: empty string).
    ///
    /// # Errors
    /// See [`PromClient::query`].
    pub fn query_by_label(
        &self,
        promql: &str,
        label: &str,
    ) -> Result<BTreeMap<String, f64>, QueryError> {
        Ok(self
            .query(promql)?
            .into_iter()
            .map(|s| (s.labels.get(label).cloned().unwrap_or_default(), s.value))
            .collect())
    }

    /// Names of the series matching a selector (`/api/v1/series`), sorted and deduplicated.
    ///
    /// # Errors
    /// See [`PromClient::query`].
    pub fn series_names(&self, selector: &str) -> Result<Vec<String>, QueryError> {
        let (_, data) = self.api::<Vec<BTreeMap<String, String>>>(
            "/api/v1/series",
            &[("match[]", selector.to_string())],
        )?;
        let mut names: Vec<String> =
            data.into_iter().filter_map(|mut l| l.remove("__name__")).collect();
        names.sort();
        names.dedup();
        Ok(names)
    }

    /// VictoriaMetrics only: the raw samples of every series matching `selector`
    /// (`/api/v1/export`), so a test sees exactly what was stored (no lookback, no carry-forward).
    ///
    /// # Errors
    /// See [`PromClient::query`].
    pub fn export(&self, selector: &str) -> Result<Vec<ExportedSeries>, QueryError> {
        let (url, body) = self.get("/api/v1/export", &[("match[]", selector.to_string())])?;
        body.lines()
            .filter(|l| !l.trim().is_empty())
            .map(|l| {
                serde_json::from_str::<ExportedSeries>(l).map_err(|e| QueryError::Decode {
                    url: url.clone(),
                    reason: e.to_string(),
                    body: truncate(l),
                })
            })
            .collect()
    }

    fn get(&self, path: &str, params: &[(&str, String)]) -> Result<(String, String), QueryError> {
        http_get(&self.http, &self.base, path, params)
    }

    fn api<T: for<'de> Deserialize<'de>>(
        &self,
        path: &str,
        params: &[(&str, String)],
    ) -> Result<(String, T), QueryError> {
        let (url, body) = self.get(path, params)?;
        let env: ApiEnvelope<T> = serde_json::from_str(&body).map_err(|e| QueryError::Decode {
            url: url.clone(),
            reason: e.to_string(),
            body: truncate(&body),
        })?;
        if env.status != "success" {
            return Err(QueryError::Api {
                url,
                error_type: env.error_type.unwrap_or_default(),
                error: env.error.unwrap_or_default(),
            });
        }
        match env.data {
            Some(d) => Ok((url, d)),
            None => {
                Err(QueryError::Decode { url, reason: "no data".into(), body: truncate(&body) })
            }
        }
    }
}

/// One series of a Graphite `/render?format=json` answer.
#[derive(Clone, Debug, PartialEq, Deserialize)]
pub struct GraphiteSeries {
    /// The target (series name or function expression).
    pub target: String,
    /// Graphite tags (`name` included for tagged series); empty when the server sends none.
    #[serde(default)]
    pub tags: BTreeMap<String, String>,
    /// `(value or null, Unix seconds)` pairs.
    pub datapoints: Vec<(Option<f64>, i64)>,
}

impl GraphiteSeries {
    /// The non-null values, oldest first.
    pub fn values(&self) -> impl Iterator<Item = f64> + '_ {
        self.datapoints.iter().filter_map(|(v, _)| *v)
    }

    /// The sum of the non-null values.
    pub fn sum(&self) -> f64 {
        self.values().sum()
    }

    /// The largest non-null value.
    pub fn max(&self) -> Option<f64> {
        self.values().reduce(f64::max)
    }

    /// The newest non-null value.
    pub fn last(&self) -> Option<f64> {
        self.values().last()
    }
}

/// A Graphite render request.
#[derive(Clone, Debug)]
pub struct RenderRequest {
    /// One or more targets.
    pub targets: Vec<String>,
    /// `from` (e.g. `-10min`).
    pub from: String,
    /// `until` (default: now).
    pub until: Option<String>,
    /// VictoriaMetrics' `storage_step`: the step raw samples are first normalised to (by
    /// averaging). The lab sets the server default to the StatsD flush interval.
    pub storage_step: Option<Duration>,
}

impl RenderRequest {
    /// One target from `from` until now.
    pub fn new(target: impl Into<String>, from: impl Into<String>) -> RenderRequest {
        RenderRequest {
            targets: vec![target.into()],
            from: from.into(),
            until: None,
            storage_step: None,
        }
    }
}

/// A Graphite render API client (VictoriaMetrics' `/render`, or graphite-web).
#[derive(Clone, Debug)]
pub struct GraphiteClient {
    base: String,
    http: reqwest::blocking::Client,
}

impl GraphiteClient {
    /// A client for the render API at `base_url`, 10 s per request.
    pub fn new(base_url: impl Into<String>) -> GraphiteClient {
        let http = http_client();
        GraphiteClient { base: base_url.into().trim_end_matches('/').to_string(), http }
    }

    /// Renders one target from `from` (e.g. `-10min`) until now.
    ///
    /// # Errors
    /// Transport, HTTP status and decoding errors, each with the URL.
    pub fn render(&self, target: &str, from: &str) -> Result<Vec<GraphiteSeries>, QueryError> {
        self.render_request(&RenderRequest::new(target, from))
    }

    /// Renders a [`RenderRequest`].
    ///
    /// # Errors
    /// See [`GraphiteClient::render`].
    pub fn render_request(&self, req: &RenderRequest) -> Result<Vec<GraphiteSeries>, QueryError> {
        let mut params: Vec<(&str, String)> =
            req.targets.iter().map(|t| ("target", t.clone())).collect();
        params.push(("format", "json".into()));
        params.push(("from", req.from.clone()));
        if let Some(u) = &req.until {
            params.push(("until", u.clone()));
        }
        if let Some(s) = req.storage_step {
            params.push(("storage_step", format!("{}ms", s.as_millis().max(1))));
        }
        let (url, body) = http_get(&self.http, &self.base, "/render", &params)?;
        serde_json::from_str(&body).map_err(|e| QueryError::Decode {
            url,
            reason: e.to_string(),
            body: truncate(&body),
        })
    }
}

/// POSTs one OTLP/HTTP protobuf body (an encoded `ExportMetricsServiceRequest`) to `url`.
///
/// # Errors
/// Transport errors and any non-2xx answer (with its body).
pub fn post_otlp_protobuf(url: &str, body: Vec<u8>) -> Result<(), QueryError> {
    let http = http_client();
    let resp = http
        .post(url)
        .header("content-type", "application/x-protobuf")
        .body(body)
        .send()
        .map_err(|source| QueryError::Http { url: url.into(), source })?;
    let status = resp.status();
    if status.is_success() {
        return Ok(());
    }
    let body = resp.text().unwrap_or_default();
    Err(QueryError::Status { url: url.into(), status: status.as_u16(), body: truncate(&body) })
}

/// A blocking client with [`HTTP_TIMEOUT`]. Installs the `ring` rustls provider first (once per
/// process; a provider installed earlier wins): a workspace build unifies reqwest's features, and
/// with `rustls-no-provider` on, building any client without a provider panics.
fn http_client() -> reqwest::blocking::Client {
    static PROVIDER: std::sync::Once = std::sync::Once::new();
    PROVIDER.call_once(|| {
        let _ = rustls::crypto::ring::default_provider().install_default();
    });
    reqwest::blocking::Client::builder()
        .timeout(HTTP_TIMEOUT)
        .build()
        .expect("reqwest blocking client")
}

fn http_get(
    http: &reqwest::blocking::Client,
    base: &str,
    path: &str,
    params: &[(&str, String)],
) -> Result<(String, String), QueryError> {
    let full = format!("{base}{path}");
    let url = reqwest::Url::parse_with_params(&full, params.iter().map(|(k, v)| (*k, v.as_str())))
        .map_err(|e| QueryError::Decode {
            url: full.clone(),
            reason: e.to_string(),
            body: String::new(),
        })?;
    let shown = url.to_string();
    let resp =
        http.get(url).send().map_err(|source| QueryError::Http { url: shown.clone(), source })?;
    let status = resp.status();
    let body = resp.text().map_err(|source| QueryError::Http { url: shown.clone(), source })?;
    if !status.is_success() {
        // the Prometheus API answers 400/422 with a JSON error envelope: prefer its message
        if let Ok(env) = serde_json::from_str::<ApiEnvelope<serde_json::Value>>(&body) {
            if env.status == "error" {
                return Err(QueryError::Api {
                    url: shown,
                    error_type: env.error_type.unwrap_or_default(),
                    error: env.error.unwrap_or_default(),
                });
            }
        }
        return Err(QueryError::Status {
            url: shown,
            status: status.as_u16(),
            body: truncate(&body),
        });
    }
    Ok((shown, body))
}

fn parse_value(url: &str, v: &str) -> Result<f64, QueryError> {
    v.parse::<f64>().map_err(|e| QueryError::Decode {
        url: url.into(),
        reason: format!("sample value {v:?}: {e}"),
        body: String::new(),
    })
}

fn unix_secs(t: SystemTime) -> f64 {
    t.duration_since(UNIX_EPOCH).map(|d| d.as_secs_f64()).unwrap_or(0.0)
}

fn truncate(s: &str) -> String {
    const MAX: usize = 2000;
    if s.len() <= MAX {
        return s.to_string();
    }
    let mut end = MAX;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}... ({} bytes)", &s[..end], s.len())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prometheus_vector_and_scalar_results_decode() {
        let v: ApiEnvelope<QueryData> = serde_json::from_str(
            r#"{"status":"success","data":{"resultType":"vector","result":[
                {"metric":{"__name__":"x","env":"prod"},"value":[1700000000.5,"12"]},
                {"metric":{},"value":[1700000000.5,"NaN"]}]}}"#,
        )
        .unwrap();
        let QueryData::Vector(items) = v.data.unwrap() else { panic!("not a vector") };
        assert_eq!(items[0].metric["env"], "prod");
        assert_eq!(parse_value("u", &items[0].value.1).unwrap(), 12.0);
        assert!(parse_value("u", &items[1].value.1).unwrap().is_nan());
        assert_eq!(parse_value("u", "+Inf").unwrap(), f64::INFINITY);
        let s: ApiEnvelope<QueryData> = serde_json::from_str(
            r#"{"status":"success","data":{"resultType":"scalar","result":[1.0,"3"]}}"#,
        )
        .unwrap();
        assert!(matches!(s.data.unwrap(), QueryData::Scalar((_, v)) if v == "3"));
    }

    #[test]
    fn graphite_render_json_with_nulls_decodes() {
        let s: Vec<GraphiteSeries> = serde_json::from_str(
            r#"[{"target":"a.b","tags":{"name":"a.b","env":"prod"},"datapoints":[[1,10],[null,11],[2.5,12]]}]"#,
        )
        .unwrap();
        assert_eq!(s[0].tags["env"], "prod");
        assert_eq!(s[0].sum(), 3.5);
        assert_eq!(s[0].max(), Some(2.5));
        assert_eq!(s[0].last(), Some(2.5));
        assert_eq!(s[0].datapoints[1], (None, 11));
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

    #[test]
    fn a_closed_port_is_a_transport_error_naming_the_url() {
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let e = PromClient::new(format!("http://127.0.0.1:{port}")).query("up").unwrap_err();
        assert!(matches!(e, QueryError::Http { .. }), "{e}");
        assert!(e.to_string().contains(&format!("127.0.0.1:{port}/api/v1/query?query=up")), "{e}");
    }
}
