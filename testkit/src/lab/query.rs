//! HTTP clients of the lab's backends: [`PromClient`] (the Prometheus HTTP API of Prometheus and
//! VictoriaMetrics: instant and range queries, series export) and [`GraphiteClient`]
//! (VictoriaMetrics' Graphite render API), plus [`post_otlp_protobuf`].
//!
//! [`PromClient`] asks and decodes through the comparator's
//! [`PrometheusApi`](dualmetrics_compare::query::prometheus_api::PrometheusApi), the one
//! Prometheus API client of the workspace; it only adds the shapes tests want (one value, values
//! by label, series names) and makes no retries (tests poll).
use std::collections::BTreeMap;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

pub use dualmetrics_compare::query::prometheus_api::{ExportedSeries, InstantSample, RangeSeries};
use dualmetrics_compare::query::prometheus_api::{PrometheusApi, QueryData};
use dualmetrics_compare::HttpConfig;
use serde::Deserialize;

/// Default timeout of one HTTP request to a backend.
const HTTP_TIMEOUT: Duration = Duration::from_secs(10);

/// Why a backend query failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum QueryError {
    /// The Prometheus API failed (transport, HTTP status, refusal, a body that is not the
    /// documented JSON): the comparator's error, which names the URL.
    #[error(transparent)]
    Backend(#[from] dualmetrics_compare::QueryError),
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
    /// The Graphite render API reported a Prometheus-style error (`"status": "error"`).
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

#[derive(Deserialize)]
struct ApiEnvelope {
    status: String,
    #[serde(rename = "errorType", default)]
    error_type: Option<String>,
    #[serde(default)]
    error: Option<String>,
}

/// A Prometheus HTTP API client (works for Prometheus and VictoriaMetrics).
#[derive(Clone)]
pub struct PromClient {
    base: String,
    api: PrometheusApi,
}

impl std::fmt::Debug for PromClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PromClient").field("base", &self.base).finish_non_exhaustive()
    }
}

impl PromClient {
    /// A client for the API at `base_url` (e.g. `http://127.0.0.1:8428`), 10 s per request and
    /// no retries.
    ///
    /// # Panics
    /// When `base_url` is not a URL (a lab URL always is).
    pub fn new(base_url: impl Into<String>) -> PromClient {
        install_crypto_provider();
        let base = base_url.into().trim_end_matches('/').to_string();
        let url = base.parse().unwrap_or_else(|e| panic!("lab base URL {base:?}: {e}"));
        let mut config = HttpConfig::new(url);
        config.timeout = HTTP_TIMEOUT;
        config.retries = 0;
        let api = PrometheusApi::new(config)
            .unwrap_or_else(|e| panic!("Prometheus API client for {base}: {e}"));
        PromClient { base, api }
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
        let time = at.map(|t| format!("{t:.3}"));
        match self.api.query(promql, time.as_deref())? {
            QueryData::Vector(samples) => Ok(samples),
            QueryData::Scalar(timestamp, value) => {
                Ok(vec![InstantSample { labels: BTreeMap::new(), timestamp, value }])
            }
            _ => {
                Err(self
                    .unexpected("/api/v1/query", "an instant query returned a matrix or string"))
            }
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
        let start = format!("{:.3}", unix_secs(start));
        let end = format!("{:.3}", unix_secs(end));
        let step = format!("{}ms", step.as_millis().max(1));
        match self.api.query_range(promql, &start, &end, &step)? {
            QueryData::Matrix(series) => Ok(series),
            _ => {
                Err(self.unexpected("/api/v1/query_range", "a range query did not return a matrix"))
            }
        }
    }

    /// The value of an instant query that yields at most one series: `None` when it yields none
    /// (not ingested yet), an error when it yields several.
    ///
    /// # Errors
    /// See [`PromClient::query`], plus [`QueryError::NotOneSeries`].
    pub fn query_value(&self, promql: &str) -> Result<Option<f64>, QueryError> {
        one_value(promql, self.query(promql)?)
    }

    /// [`PromClient::query_value`] evaluated at `at`.
    ///
    /// # Errors
    /// See [`PromClient::query_value`].
    pub fn query_value_at(&self, promql: &str, at: SystemTime) -> Result<Option<f64>, QueryError> {
        one_value(promql, self.query_at(promql, at)?)
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
        let mut names: Vec<String> = self
            .api
            .series(selector)?
            .into_iter()
            .filter_map(|mut l| l.remove("__name__"))
            .collect();
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
        Ok(self.api.export(selector)?)
    }

    /// A well-formed answer of the wrong result type.
    fn unexpected(&self, path: &str, reason: &str) -> QueryError {
        QueryError::Decode {
            url: format!("{}{path}", self.base),
            reason: reason.into(),
            body: String::new(),
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
    install_crypto_provider();
    reqwest::blocking::Client::builder()
        .timeout(HTTP_TIMEOUT)
        .build()
        .expect("reqwest blocking client")
}

/// Installs the `ring` rustls provider (once per process; a provider installed earlier wins).
fn install_crypto_provider() {
    static PROVIDER: std::sync::Once = std::sync::Once::new();
    PROVIDER.call_once(|| {
        let _ = rustls::crypto::ring::default_provider().install_default();
    });
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
        if let Ok(env) = serde_json::from_str::<ApiEnvelope>(&body) {
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

/// The value of the one sample of `samples`: `None` when there is none, an error naming the
/// query and the series when there are several.
fn one_value(promql: &str, samples: Vec<InstantSample>) -> Result<Option<f64>, QueryError> {
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
    fn a_closed_port_is_a_transport_error_naming_the_url() {
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let e = PromClient::new(format!("http://127.0.0.1:{port}")).query("up").unwrap_err();
        assert!(
            matches!(e, QueryError::Backend(dualmetrics_compare::QueryError::Unreachable { .. })),
            "{e}"
        );
        assert!(e.to_string().contains(&format!("127.0.0.1:{port}/api/v1/query?query=up")), "{e}");
    }
}
