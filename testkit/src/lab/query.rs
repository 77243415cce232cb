//! HTTP clients of the lab's backends: [`PromClient`] (the Prometheus HTTP API of Prometheus and
//! VictoriaMetrics: instant and range queries, series export) and [`GraphiteClient`]
//! (VictoriaMetrics' Graphite render API), plus [`post_otlp_protobuf`].
//!
//! [`PromClient`] asks and decodes through the comparator's
//! [`PrometheusApi`](dualmetrics_compare::query::prometheus_api::PrometheusApi), the one
//! Prometheus API client of the workspace, and [`GraphiteClient`] through its
//! [`GraphiteAdapter::render_series`](dualmetrics_compare::GraphiteAdapter::render_series); they
//! only add the shapes tests want (one value, values by label, series names, render sums) and
//! make no retries (tests poll).
use std::collections::BTreeMap;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use dualmetrics_compare::query::graphite::RenderSeries;
pub use dualmetrics_compare::query::prometheus_api::{ExportedSeries, InstantSample, RangeSeries};
use dualmetrics_compare::query::prometheus_api::{PrometheusApi, QueryData};
use dualmetrics_compare::{GraphiteAdapter, HttpConfig};

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
        let base = base_url.into().trim_end_matches('/').to_string();
        let api = PrometheusApi::new(lab_http_config(&base))
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
#[derive(Clone, Debug, PartialEq)]
pub struct GraphiteSeries {
    /// The target (series name or function expression).
    pub target: String,
    /// Graphite tags (`name` included for tagged series); empty when the server sends none.
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

impl GraphiteSeries {
    /// A render series as sent; a point without a timestamp is an error.
    fn from_render(r: RenderSeries) -> Result<GraphiteSeries, String> {
        let datapoints = r
            .datapoints
            .into_iter()
            .map(|(v, t)| {
                Ok((
                    v,
                    t.ok_or_else(|| format!("{}: a point without a timestamp", r.target))? as i64,
                ))
            })
            .collect::<Result<_, String>>()?;
        Ok(GraphiteSeries { target: r.target, tags: r.tags, datapoints })
    }
}

/// A Graphite render API client (VictoriaMetrics' `/render`, or graphite-web).
///
/// It asks through the comparator's
/// [`GraphiteAdapter::render_series`](dualmetrics_compare::GraphiteAdapter::render_series), so
/// the render JSON is decoded in one place.
pub struct GraphiteClient {
    base: String,
    api: GraphiteAdapter,
}

impl std::fmt::Debug for GraphiteClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GraphiteClient").field("base", &self.base).finish_non_exhaustive()
    }
}

impl GraphiteClient {
    /// A client for the render API at `base_url`, 10 s per request and no retries.
    ///
    /// # Panics
    /// When `base_url` is not a URL (a lab URL always is).
    pub fn new(base_url: impl Into<String>) -> GraphiteClient {
        let base = base_url.into().trim_end_matches('/').to_string();
        let api = GraphiteAdapter::new(lab_http_config(&base))
            .unwrap_or_else(|e| panic!("Graphite render client for {base}: {e}"));
        GraphiteClient { base, api }
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
        let targets: Vec<&str> = req.targets.iter().map(String::as_str).collect();
        let step = req.storage_step.map(|s| format!("{}ms", s.as_millis().max(1)));
        let series =
            self.api.render_series(&targets, &req.from, req.until.as_deref(), step.as_deref())?;
        series.into_iter().map(GraphiteSeries::from_render).collect::<Result<_, _>>().map_err(
            |reason| QueryError::Decode {
                url: format!("{}/render", self.base),
                reason,
                body: String::new(),
            },
        )
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

/// The comparator's HTTP settings for a lab backend at `base`: [`HTTP_TIMEOUT`], no retries
/// (tests poll).
fn lab_http_config(base: &str) -> HttpConfig {
    install_crypto_provider();
    let url = base.parse().unwrap_or_else(|e| panic!("lab base URL {base:?}: {e}"));
    let mut config = HttpConfig::new(url);
    config.timeout = HTTP_TIMEOUT;
    config.retries = 0;
    config
}

/// Installs the `ring` rustls provider (once per process; a provider installed earlier wins).
fn install_crypto_provider() {
    static PROVIDER: std::sync::Once = std::sync::Once::new();
    PROVIDER.call_once(|| {
        let _ = rustls::crypto::ring::default_provider().install_default();
    });
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
    use dualmetrics_compare::query::graphite::decode_render;

    #[test]
    fn graphite_render_json_with_nulls_decodes() {
        let s: Vec<GraphiteSeries> = decode_render(
            r#"[{"target":"a.b","tags":{"name":"a.b","env":"prod"},"datapoints":[[1,10],[null,11],[2.5,12]]}]"#,
        )
        .unwrap()
        .into_iter()
        .map(|r| GraphiteSeries::from_render(r).unwrap())
        .collect();
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
