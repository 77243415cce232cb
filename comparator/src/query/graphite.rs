//! Graphite render API: `GET /render?format=json&target=…&from=…&until=…`.
//!
//! Works against genuine graphite-web and against VictoriaMetrics' Graphite subset. For
//! VictoriaMetrics set [`GraphiteAdapter::with_storage_step`] to the StatsD flush interval:
//! VictoriaMetrics first normalises raw samples to `-search.graphiteStorageStep` (10 s by
//! default) **by averaging**, so per-flush counts summed afterwards come out too small
//! (LAB.md §3: 1.333 instead of 12). The `storage_step` parameter overrides it per request;
//! graphite-web ignores it.
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU8, Ordering};

use serde::Deserialize;

use super::http::{excerpt, HttpClient};
use super::prometheus_api::PrometheusApi;
use super::{HttpConfig, QueryAdapter, Series, TimeRange};
use crate::align::Stamps;
use crate::error::QueryError;

/// How far back an instant query looks for the last non-null point.
pub const INSTANT_LOOKBACK_SECS: i64 = 300;

/// A Graphite render API client.
pub struct GraphiteAdapter {
    http: HttpClient,
    storage_step: Option<String>,
    /// The same backend's Prometheus API, which VictoriaMetrics serves next to `/render`.
    prom: PrometheusApi,
    /// Whether the backend also answers `/api/v1/query` (VictoriaMetrics): 0 unknown, 1 yes,
    /// 2 no.
    prom_api: AtomicU8,
}

/// The PromQL selector equivalent to a `seriesByTag` target made of `k=v` expressions only, or
/// `None` for any other target.
pub fn series_by_tag_selector(target: &str) -> Option<String> {
    let inner = target.trim().strip_prefix("seriesByTag(")?.strip_suffix(')')?;
    let mut matchers = Vec::new();
    for arg in inner.split(',') {
        let arg = arg.trim();
        let expr = arg
            .strip_prefix('\'')
            .and_then(|a| a.strip_suffix('\''))
            .or_else(|| arg.strip_prefix('"').and_then(|a| a.strip_suffix('"')))?;
        let (k, v) = expr.split_once('=')?;
        if k.ends_with(['!', '~']) || v.starts_with('~') || k.is_empty() {
            return None;
        }
        let k = if k == "name" { "__name__" } else { k };
        matchers.push(format!("{k}={v:?}"));
    }
    matchers
        .iter()
        .any(|m| m.starts_with("__name__="))
        .then(|| format!("{{{}}}", matchers.join(",")))
}

/// One series of a render API answer (`format=json`), as the backend sent it.
#[derive(Debug, Clone, PartialEq)]
pub struct RenderSeries {
    /// The target (series name or function expression).
    pub target: String,
    /// Graphite tags (`name` included for tagged series; empty when the server sends none). A
    /// value that is not a JSON string is kept as its JSON text.
    pub tags: BTreeMap<String, String>,
    /// `(value, Unix seconds)` pairs as sent; `null` is `None`.
    pub datapoints: Vec<(Option<f64>, Option<f64>)>,
}

#[derive(Deserialize)]
struct RawRenderSeries {
    target: String,
    #[serde(default)]
    tags: BTreeMap<String, serde_json::Value>,
    datapoints: Vec<(Option<f64>, Option<f64>)>,
}

/// Decodes a render API JSON body, or says what is wrong with the start of the body.
pub fn decode_render(body: &str) -> Result<Vec<RenderSeries>, String> {
    let raw: Vec<RawRenderSeries> = serde_json::from_str(body)
        .map_err(|e| format!("{e}; body starts with: {}", excerpt(body)))?;
    Ok(raw
        .into_iter()
        .map(|r| RenderSeries {
            target: r.target,
            tags: r
                .tags
                .into_iter()
                .map(|(k, v)| match v {
                    serde_json::Value::String(s) => (k, s),
                    other => (k, other.to_string()),
                })
                .collect(),
            datapoints: r.datapoints,
        })
        .collect())
}

impl GraphiteAdapter {
    /// A client for the render API under `config.base_url`.
    ///
    /// # Errors
    /// If the HTTP client cannot be built.
    pub fn new(config: HttpConfig) -> Result<Self, QueryError> {
        let http = HttpClient::new(config)?;
        Ok(GraphiteAdapter {
            prom: PrometheusApi::from_http(http.clone()),
            http,
            storage_step: None,
            prom_api: AtomicU8::new(0),
        })
    }

    /// Sends `storage_step=<step>` (e.g. `1s`) with every request (VictoriaMetrics). Defaults to
    /// not sending it.
    pub fn with_storage_step(mut self, step: Option<String>) -> Self {
        self.storage_step = step;
        self
    }

    fn render(&self, target: &str, from: i64, until: i64) -> Result<Vec<Series>, QueryError> {
        let step = self.storage_step.as_deref();
        let (from, until) = (from.to_string(), until.to_string());
        self.render_then(&[target], &from, Some(&until), step, to_series)
    }

    /// `GET /render?format=json` of `targets` from `from` until `until` (Graphite times:
    /// `-10min`, Unix seconds, …; `None`: now), with VictoriaMetrics' `storage_step` when given
    /// (this call's, not [`GraphiteAdapter::with_storage_step`]'s): the series as sent.
    ///
    /// # Errors
    /// Transport errors, a non-2xx status ([`QueryError::Http`] with the backend's message), a
    /// body that is not render JSON ([`QueryError::NotJson`]); each names the URL.
    pub fn render_series(
        &self,
        targets: &[&str],
        from: &str,
        until: Option<&str>,
        storage_step: Option<&str>,
    ) -> Result<Vec<RenderSeries>, QueryError> {
        self.render_then(targets, from, until, storage_step, Ok)
    }

    /// Asks the render API, then `then` on the decoded series; an `Err` from either is a
    /// [`QueryError::NotJson`] naming the URL.
    fn render_then<T>(
        &self,
        targets: &[&str],
        from: &str,
        until: Option<&str>,
        storage_step: Option<&str>,
        then: impl FnOnce(Vec<RenderSeries>) -> Result<T, String>,
    ) -> Result<T, QueryError> {
        let mut params: Vec<(&str, String)> =
            targets.iter().map(|t| ("target", (*t).to_owned())).collect();
        params.push(("from", from.to_owned()));
        if let Some(until) = until {
            params.push(("until", until.to_owned()));
        }
        params.push(("format", "json".to_owned()));
        if let Some(step) = storage_step {
            params.push(("storage_step", step.to_owned()));
        }
        let url = self.http.url("/render", &params);
        let (status, body) = self.http.get(&url)?;
        if !status.is_success() {
            return Err(QueryError::Http {
                url: crate::error::redact_url(url.as_str()),
                status: status.as_u16(),
                message: backend_message(&body),
            });
        }
        decode_render(&body).and_then(then).map_err(|message| QueryError::NotJson {
            url: crate::error::redact_url(url.as_str()),
            message,
        })
    }
}

/// Parses a render API JSON body into series (tags without `name` become labels).
#[cfg(test)]
pub(crate) fn parse_render(body: &str) -> Result<Vec<Series>, String> {
    decode_render(body).and_then(to_series)
}

/// Render series as [`Series`]: tags without `name` become labels (or, without tags, the
/// `;k=v` of a tagged target); a point without a timestamp is left out, a `null` value is NaN.
fn to_series(raw: Vec<RenderSeries>) -> Result<Vec<Series>, String> {
    raw.into_iter()
        .map(|r| {
            let mut labels: BTreeMap<String, String> =
                r.tags.into_iter().filter(|(k, _)| k != "name").collect();
            if labels.is_empty() {
                // No `tags` object: take them from a tagged target `name;k=v;…`.
                for kv in r.target.split(';').skip(1) {
                    if let Some((k, v)) = kv.split_once('=') {
                        labels.insert(k.to_owned(), v.to_owned());
                    }
                }
            }
            let points = r
                .datapoints
                .into_iter()
                .filter_map(|(v, ts)| Some((ts?, v)))
                .map(|(ts, v)| Ok((super::timestamp(ts)?, v.unwrap_or(f64::NAN))))
                .collect::<Result<_, String>>()?;
            Ok(Series { labels, points })
        })
        .collect()
}

/// The useful part of an error body: a JSON `error`/`msg`/`message` field, an HTML `<title>`,
/// or the start of the text.
pub(crate) fn backend_message(body: &str) -> String {
    if let Ok(v) = serde_json::from_str::<serde_json::Value>(body) {
        for key in ["error", "msg", "message"] {
            if let Some(s) = v.get(key).and_then(|m| m.as_str()) {
                return excerpt(s);
            }
        }
    }
    let lower = body.to_ascii_lowercase();
    if let (Some(a), Some(b)) = (lower.find("<title>"), lower.find("</title>")) {
        if a + 7 <= b {
            return excerpt(&body[a + 7..b]);
        }
    }
    if body.trim().is_empty() {
        return "(empty body)".to_owned();
    }
    excerpt(body)
}

impl QueryAdapter for GraphiteAdapter {
    fn describe(&self) -> String {
        format!("graphite {}", self.http.base())
    }

    fn range(&self, query: &str, range: &TimeRange) -> Result<Vec<Series>, QueryError> {
        // One step before `start`, so the first grid bucket (start-step, start] is filled, and
        // one step after `end`: VictoriaMetrics' render leaves out points at the `until` edge.
        // Alignment drops points outside the grid.
        let step = range.step.max(1);
        self.render(query, range.start - step, range.end + step)
    }

    fn stamps(&self) -> Stamps {
        Stamps::BucketStart
    }

    /// VictoriaMetrics serves the same Graphite data through its Prometheus API, with the raw
    /// flush timestamps; `/render` moves them onto its storage step and fills an empty step
    /// with the previous flush's value (a per-flush count counted twice), so raw samples are
    /// used when the backend has that API (genuine graphite-web does not: `/render` then).
    fn raw(&self, query: &str, range: &TimeRange) -> Option<Result<Vec<Series>, QueryError>> {
        let sel = series_by_tag_selector(query)?;
        if self.prom_api.load(Ordering::Relaxed) == 2 {
            return None;
        }
        let window = (range.end - range.start).max(1) + 1;
        let answer = self.prom.query_then(
            &format!("{sel}[{window}s]"),
            Some(&range.end.to_string()),
            super::prometheus::to_series,
        );
        match answer {
            Ok(series) => {
                self.prom_api.store(1, Ordering::Relaxed);
                Some(Ok(series))
            }
            Err(_) if self.prom_api.load(Ordering::Relaxed) == 1 => None,
            Err(_) => {
                self.prom_api.store(2, Ordering::Relaxed);
                None
            }
        }
    }

    fn instant(&self, query: &str, at: i64) -> Result<Vec<Series>, QueryError> {
        let series = self.render(query, at - INSTANT_LOOKBACK_SECS, at)?;
        Ok(series
            .into_iter()
            .map(|s| {
                let last = s.points.iter().rev().find(|(_, v)| !v.is_nan()).copied();
                Series { labels: s.labels, points: last.into_iter().collect() }
            })
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_timestamp_that_is_no_time_is_an_error_not_an_overflow() {
        let body = r#"[{"target":"a","datapoints":[[1.0,-1e300]]}]"#;
        let e = parse_render(body).unwrap_err();
        assert!(e.contains("not a time"), "{e}");
        let body = r#"{"status":"success","data":{"resultType":"matrix","result":[{"metric":{},"values":[[1e300,"1"]]}]}}"#;
        let data = super::super::prometheus_api::decode_answer(body).unwrap();
        assert!(
            matches!(super::super::prometheus::to_series(data), Err(e) if e.contains("not a time"))
        );
    }

    #[test]
    fn render_json_with_tags_and_nulls() {
        let body = r#"[{"target":"stats.counters.a.count;env=prod","tags":{"name":"stats.counters.a.count","env":"prod"},"datapoints":[[1.0,100],[null,101]]}]"#;
        let s = parse_render(body).unwrap();
        assert_eq!(s[0].labels.get("env").map(String::as_str), Some("prod"));
        assert!(!s[0].labels.contains_key("name"));
        assert_eq!(s[0].points[0], (100, 1.0));
        assert!(s[0].points[1].1.is_nan());
    }

    #[test]
    fn tags_parsed_from_target_when_absent() {
        let body = r#"[{"target":"a.count;code=200","datapoints":[]}]"#;
        assert_eq!(parse_render(body).unwrap()[0].labels["code"], "200");
    }

    #[test]
    fn series_by_tag_becomes_a_selector() {
        assert_eq!(
            series_by_tag_selector("seriesByTag('name=stats.a.count','service=shop')").unwrap(),
            r#"{__name__="stats.a.count",service="shop"}"#
        );
        assert!(series_by_tag_selector("seriesByTag('name=a','k!=v')").is_none());
        assert!(series_by_tag_selector("stats.a.count").is_none());
    }

    #[test]
    fn html_error_body_gives_its_title() {
        assert_eq!(
            backend_message("<html><title>502 Bad Gateway</title></html>"),
            "502 Bad Gateway"
        );
    }
}
