//! Prometheus HTTP API: `GET /api/v1/query_range` and `GET /api/v1/query`.
//!
//! Works against Prometheus and VictoriaMetrics. A JSON answer with `"status":"error"` (bad
//! syntax, execution error) becomes [`QueryError::Rejected`] with the backend's `errorType` and
//! `error`, whatever the HTTP status.
use std::collections::BTreeMap;

use serde::Deserialize;

use super::graphite::backend_message;
use super::http::{excerpt, HttpClient};
use super::{HttpConfig, QueryAdapter, Series, TimeRange};
use crate::error::QueryError;

/// A Prometheus HTTP API client.
pub struct PrometheusAdapter {
    http: HttpClient,
}

#[derive(Deserialize)]
struct Envelope {
    status: String,
    #[serde(default)]
    data: Option<Data>,
    #[serde(default, rename = "errorType")]
    error_type: Option<String>,
    #[serde(default)]
    error: Option<String>,
}

#[derive(Deserialize)]
struct Data {
    #[serde(rename = "resultType")]
    result_type: String,
    result: serde_json::Value,
}

#[derive(Deserialize)]
struct Sample {
    #[serde(default)]
    metric: BTreeMap<String, String>,
    #[serde(default)]
    values: Vec<(f64, String)>,
    #[serde(default)]
    value: Option<(f64, String)>,
}

fn parse_value(s: &str) -> f64 {
    // Prometheus writes "NaN", "+Inf", "-Inf"; Rust parses "NaN", "inf", "+inf", "-inf".
    match s {
        "+Inf" => f64::INFINITY,
        "-Inf" => f64::NEG_INFINITY,
        other => other.parse().unwrap_or(f64::NAN),
    }
}

/// Parses a query or query_range answer. `Err(Ok(..))` is a JSON refusal, `Err(Err(..))` a body
/// that is not the documented JSON.
pub(crate) fn parse_answer(body: &str) -> Result<Vec<Series>, Result<(String, String), String>> {
    let env: Envelope = serde_json::from_str(body)
        .map_err(|e| Err(format!("{e}; body starts with: {}", excerpt(body))))?;
    if env.status != "success" {
        return Err(Ok((
            env.error_type.unwrap_or_else(|| "error".to_owned()),
            env.error.unwrap_or_else(|| "(no message)".to_owned()),
        )));
    }
    let data = env.data.ok_or_else(|| Err("success without data".to_owned()))?;
    let to_series = |s: Sample| -> Result<Series, String> {
        let mut labels = s.metric;
        labels.remove("__name__");
        let points = s
            .values
            .iter()
            .chain(s.value.iter())
            .map(|(t, v)| Ok((super::timestamp(*t)?, parse_value(v))))
            .collect::<Result<_, String>>()?;
        Ok(Series { labels, points })
    };
    match data.result_type.as_str() {
        "matrix" | "vector" => {
            let samples: Vec<Sample> = serde_json::from_value(data.result)
                .map_err(|e| Err(format!("unexpected {} shape: {e}", data.result_type)))?;
            samples.into_iter().map(to_series).collect::<Result<_, _>>().map_err(Err)
        }
        "scalar" => {
            let (t, v): (f64, String) = serde_json::from_value(data.result)
                .map_err(|e| Err(format!("unexpected scalar shape: {e}")))?;
            Ok(vec![Series {
                labels: BTreeMap::new(),
                points: vec![(super::timestamp(t).map_err(Err)?, parse_value(&v))],
            }])
        }
        other => Err(Err(format!("unsupported resultType {other:?}"))),
    }
}

impl PrometheusAdapter {
    /// A client for the API under `config.base_url` (e.g. `http://127.0.0.1:9090`).
    ///
    /// # Errors
    /// If the HTTP client cannot be built.
    pub fn new(config: HttpConfig) -> Result<Self, QueryError> {
        Ok(PrometheusAdapter { http: HttpClient::new(config)? })
    }

    fn ask(&self, path: &str, params: &[(&str, String)]) -> Result<Vec<Series>, QueryError> {
        let url = self.http.url(path, params);
        let (status, body) = self.http.get(&url)?;
        match parse_answer(&body) {
            Ok(series) if status.is_success() => Ok(series),
            Err(Ok((error_type, message))) => Err(QueryError::Rejected {
                url: crate::error::redact_url(url.as_str()),
                error_type,
                message,
            }),
            _ if !status.is_success() => Err(QueryError::Http {
                url: crate::error::redact_url(url.as_str()),
                status: status.as_u16(),
                message: backend_message(&body),
            }),
            Err(Err(message)) => {
                Err(QueryError::NotJson { url: crate::error::redact_url(url.as_str()), message })
            }
            Ok(_) => unreachable!("success status handled above"),
        }
    }
}

impl QueryAdapter for PrometheusAdapter {
    fn describe(&self) -> String {
        format!("prometheus {}", self.http.base())
    }

    fn range(&self, query: &str, range: &TimeRange) -> Result<Vec<Series>, QueryError> {
        self.ask(
            "/api/v1/query_range",
            &[
                ("query", query.to_owned()),
                ("start", range.start.to_string()),
                ("end", range.end.to_string()),
                ("step", format!("{}s", range.step.max(1))),
            ],
        )
    }

    fn instant(&self, query: &str, at: i64) -> Result<Vec<Series>, QueryError> {
        self.ask("/api/v1/query", &[("query", query.to_owned()), ("time", at.to_string())])
    }

    fn raw(&self, query: &str, range: &TimeRange) -> Option<Result<Vec<Series>, QueryError>> {
        // A range selector evaluated at the end returns the stored samples with their own
        // timestamps, over (end - window, end].
        if !is_selector(query) {
            return None;
        }
        let window = (range.end - range.start).max(1) + 1;
        Some(self.ask(
            "/api/v1/query",
            &[("query", format!("{}[{window}s]", query.trim())), ("time", range.end.to_string())],
        ))
    }
}

/// Whether `q` is a plain vector selector (`name`, `name{...}` or `{...}`), whose raw samples a
/// range selector can fetch.
pub fn is_selector(q: &str) -> bool {
    let q = q.trim();
    let ident_end = q
        .char_indices()
        .find(|(i, c)| {
            !(c.is_ascii_alphabetic() || *c == '_' || *c == ':' || (*i > 0 && c.is_ascii_digit()))
        })
        .map_or(q.len(), |(i, _)| i);
    let rest = &q[ident_end..];
    if rest.is_empty() {
        return ident_end > 0;
    }
    if !rest.starts_with('{') {
        return false;
    }
    // The braces must close at the very end, quotes respected.
    let mut in_quote: Option<char> = None;
    let mut escaped = false;
    for (i, c) in rest.char_indices() {
        match in_quote {
            Some(qc) => {
                if escaped {
                    escaped = false;
                } else if c == '\\' {
                    escaped = true;
                } else if c == qc {
                    in_quote = None;
                }
            }
            None if c == '"' || c == '\'' || c == '`' => in_quote = Some(c),
            None if c == '}' => return i == rest.len() - 1,
            None => {}
        }
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matrix_drops_name_and_parses_special_values() {
        let body = r#"{"status":"success","data":{"resultType":"matrix","result":[{"metric":{"__name__":"x_total","code":"200"},"values":[[100,"1"],[110,"NaN"],[120,"+Inf"]]}]}}"#;
        let s = parse_answer(body).unwrap();
        assert_eq!(s[0].labels.len(), 1);
        assert_eq!(s[0].points[0], (100, 1.0));
        assert!(s[0].points[1].1.is_nan());
        assert_eq!(s[0].points[2].1, f64::INFINITY);
    }

    #[test]
    fn error_status_is_a_refusal() {
        let body = r#"{"status":"error","errorType":"bad_data","error":"parse error at char 5"}"#;
        assert_eq!(
            parse_answer(body).unwrap_err(),
            Ok(("bad_data".to_owned(), "parse error at char 5".to_owned()))
        );
    }

    #[test]
    fn plain_selectors_are_recognised() {
        assert!(is_selector("http_requests_total"));
        assert!(is_selector(r#"x_total{service_name="a}b",code!="5"}"#));
        assert!(is_selector(r#"{__name__="stats.counters.a.count"}"#));
        assert!(!is_selector("sum (x)"));
        assert!(!is_selector("x{a=\"b\"} / y"));
        assert!(!is_selector("rate(x[1m])"));
    }

    #[test]
    fn vector_answer_has_one_point_per_series() {
        let body = r#"{"status":"success","data":{"resultType":"vector","result":[{"metric":{},"value":[100.2,"8"]}]}}"#;
        assert_eq!(parse_answer(body).unwrap()[0].points, vec![(100, 8.0)]);
    }
}
