//! Prometheus HTTP API: `GET /api/v1/query_range` and `GET /api/v1/query`.
//!
//! Works against Prometheus and VictoriaMetrics. A JSON answer with `"status":"error"` (bad
//! syntax, execution error) becomes [`QueryError::Rejected`] with the backend's `errorType` and
//! `error`, whatever the HTTP status. The requests and their decoding are
//! [`PrometheusApi`]'s; this file turns the results into [`Series`].
use std::collections::BTreeMap;

use super::prometheus_api::{PrometheusApi, QueryData};
use super::{HttpConfig, QueryAdapter, Series, TimeRange};
use crate::error::QueryError;

/// A Prometheus HTTP API adapter: [`PrometheusApi`] asks and decodes, this turns the results
/// into [`Series`].
pub struct PrometheusAdapter {
    api: PrometheusApi,
}

/// The series of a query or query_range answer, without `__name__` and with whole-second
/// timestamps (a scalar is one series without labels). A timestamp that is no time, or a
/// `string` result, is an error.
pub(crate) fn to_series(data: QueryData) -> Result<Vec<Series>, String> {
    let series = |mut labels: BTreeMap<String, String>, points: &[(f64, f64)]| {
        labels.remove("__name__");
        let points = points
            .iter()
            .map(|(t, v)| Ok((super::timestamp(*t)?, *v)))
            .collect::<Result<_, String>>()?;
        Ok(Series { labels, points })
    };
    match data {
        QueryData::Matrix(m) => m.into_iter().map(|s| series(s.labels, &s.values)).collect(),
        QueryData::Vector(v) => {
            v.into_iter().map(|s| series(s.labels, &[(s.timestamp, s.value)])).collect()
        }
        QueryData::Scalar(t, v) => Ok(vec![series(BTreeMap::new(), &[(t, v)])?]),
        QueryData::String(..) => Err("unsupported resultType \"string\"".to_owned()),
    }
}

impl PrometheusAdapter {
    /// A client for the API under `config.base_url` (e.g. `http://127.0.0.1:9090`).
    ///
    /// # Errors
    /// If the HTTP client cannot be built.
    pub fn new(config: HttpConfig) -> Result<Self, QueryError> {
        Ok(PrometheusAdapter { api: PrometheusApi::new(config)? })
    }
}

impl QueryAdapter for PrometheusAdapter {
    fn describe(&self) -> String {
        format!("prometheus {}", self.api.base())
    }

    fn range(&self, query: &str, range: &TimeRange) -> Result<Vec<Series>, QueryError> {
        let (start, end) = (range.start.to_string(), range.end.to_string());
        let step = format!("{}s", range.step.max(1));
        self.api.query_range_then(query, [&start, &end, &step], to_series)
    }

    fn instant(&self, query: &str, at: i64) -> Result<Vec<Series>, QueryError> {
        self.api.query_then(query, Some(&at.to_string()), to_series)
    }

    fn raw(&self, query: &str, range: &TimeRange) -> Option<Result<Vec<Series>, QueryError>> {
        // A range selector evaluated at the end returns the stored samples with their own
        // timestamps, over (end - window, end].
        if !is_selector(query) {
            return None;
        }
        let window = (range.end - range.start).max(1) + 1;
        let selector = format!("{}[{window}s]", query.trim());
        Some(self.api.query_then(&selector, Some(&range.end.to_string()), to_series))
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

    /// A query answer decoded as the adapter reads it.
    fn parse_answer(body: &str) -> Result<Vec<Series>, Result<(String, String), String>> {
        let data = crate::query::prometheus_api::decode_answer(body)
            .map_err(|e| e.map(|r| (r.error_type, r.message)))?;
        to_series(data).map_err(Err)
    }

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
