//! Adapters that route existing instrumentation into the facade without rewriting call sites:
//! `metrics_rs` (a `metrics::Recorder`, behind the opt-in `metrics-rs` feature) and
//! [`cadence`] (a `cadence::MetricSink`).
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;

use dualmetrics_model::naming::validate_metric_name;

use crate::telemetry::Telemetry;
use crate::DualMetrics;

pub mod cadence;
#[cfg(feature = "metrics-rs")]
pub mod metrics_rs;

/// The telemetry of `metrics`, for counting what an adapter drops.
fn telemetry_of(metrics: &DualMetrics) -> Arc<Telemetry> {
    Arc::clone(&metrics.registry.ctx.telemetry)
}

/// Counts one measurement an adapter could not map onto an instrument.
fn dropped(telemetry: &Telemetry) {
    telemetry.adapter_dropped.fetch_add(1, Relaxed);
}

/// A foreign metric name made acceptable to the facade: every character outside
/// `[A-Za-z0-9_.-/]` becomes `_` (`http requests` → `http_requests`). `None` when the result is
/// still invalid (empty, not starting with a letter, longer than 255 characters).
fn sanitize_name(name: &str) -> Option<String> {
    let out: String =
        name.chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-' | '/') {
                    c
                } else {
                    '_'
                }
            })
            .collect();
    validate_metric_name(&out).ok().map(|()| out)
}

#[cfg(test)]
mod tests {
    use super::sanitize_name;

    #[test]
    fn foreign_names_keep_their_shape_or_are_refused() {
        assert_eq!(sanitize_name("http_requests_total").as_deref(), Some("http_requests_total"));
        assert_eq!(sanitize_name("http.requests").as_deref(), Some("http.requests"));
        assert_eq!(sanitize_name("db query:time").as_deref(), Some("db_query_time"));
        assert_eq!(sanitize_name("9lives"), None);
        assert_eq!(sanitize_name(""), None);
    }
}
