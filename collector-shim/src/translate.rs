//! Aggregated series → OTLP protobuf (`opentelemetry-proto` types). The decisions:
//!
//! - **Temporality.** Cumulative by default: sums and histograms carry the series' start time
//!   (the start of the interval in which the series first appeared) and the total since then;
//!   every live series is exported every interval, touched or not. Delta (optional): each point
//!   covers one interval (`start` = previous flush), and only touched series are exported.
//!   Gauges and set counts are OTLP Gauges either way.
//! - **Zero injection** (cumulative only). The first export of a new counter or histogram series
//!   carries only `0` at its start time; the total follows in a later export, once
//!   `aggregate.zero_hold_ms` (default 3 s, at least one interval) has passed, so the zero point
//!   is both earlier in time and earlier on the wire. A store that computes
//!   `increase()`/`rate()` from consecutive samples (Prometheus) therefore sees the first
//!   increment instead of treating the first sample as the baseline. (Zero and total in one
//!   request is not enough: vmagent spreads requests over concurrent remote-write queues, so
//!   the next export can reach Prometheus first, which then rejects the older block as out of
//!   order.) The final flush at shutdown sends held totals (with the zero point if it never
//!   went out).
//! - **Sample rates** are applied before this stage (counters scaled by `1/rate`, histogram
//!   samples weighted by `round(1/rate)`); counters are therefore doubles.
//! - **Units.** StatsD carries none except that `ms` timers are milliseconds: timers become
//!   histograms in unit `ms` (values kept in ms, not converted to seconds, so that bucket bounds
//!   and the reference daemon's `stats.timers.*` agree). `h`/`d` histograms, counters, gauges and
//!   set counts have no unit (`""`).
//! - **Names and attributes.** The StatsD name is the OTel name unchanged (it was validated with
//!   `model::naming::validate_metric_name`); DogStatsD tags become string attributes; a tag
//!   without a value becomes an attribute with the empty string. The overflow series has the one
//!   attribute `otel.metric.overflow=true`.
//! - **Set members** become a Gauge (int) of distinct members in the interval, named as the set.
use crate::aggregate::{Aggregator, Class, SeriesView, ViewValue};
use crate::config::Temporality;
use crate::telemetry::{kv, Telemetry};
use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest;
use opentelemetry_proto::tonic::common::v1::{InstrumentationScope, KeyValue};
use opentelemetry_proto::tonic::metrics::v1::{
    metric, number_data_point, AggregationTemporality, Gauge, Histogram, HistogramDataPoint,
    Metric, NumberDataPoint, ResourceMetrics, ScopeMetrics, Sum,
};
use opentelemetry_proto::tonic::resource::v1::Resource;
use std::collections::{BTreeMap, HashMap};

/// Scope name of the translated StatsD metrics.
pub const SCOPE_NAME: &str = "dualmetrics-shim";
/// Scope name of the shim's own metrics.
pub const TELEMETRY_SCOPE_NAME: &str = "dualmetrics-shim.telemetry";

/// Builds export requests from an [`Aggregator`].
#[derive(Debug, Clone)]
pub struct Translator {
    resource: Resource,
    temporality: Temporality,
    buckets: Vec<f64>,
}

impl Translator {
    /// A translator with resource attributes, output temporality and histogram bounds.
    pub fn new(
        resource: &BTreeMap<String, String>,
        temporality: Temporality,
        buckets: Vec<f64>,
    ) -> Self {
        Translator {
            resource: Resource {
                attributes: resource.iter().map(|(k, v)| kv(k, v)).collect(),
                ..Default::default()
            },
            temporality,
            buckets,
        }
    }

    /// The resource every request carries.
    pub fn resource(&self) -> &Resource {
        &self.resource
    }

    /// Flushes `agg` at `now_ns` into metrics of the StatsD scope (sorted by name, then class).
    pub fn translate(&self, agg: &mut Aggregator, now_ns: u64, tel: &Telemetry) -> Vec<Metric> {
        let mut metrics: HashMap<(String, Class), Metric> = HashMap::new();
        agg.flush(now_ns, tel, |v| {
            let m = metrics
                .entry((v.name.to_owned(), v.class))
                .or_insert_with(|| self.empty_metric(&v));
            self.push_points(m, &v, now_ns);
        });
        let mut out: Vec<_> = metrics.into_iter().collect();
        out.sort_by(|a, b| a.0.cmp(&b.0));
        out.into_iter().map(|(_, m)| m).collect()
    }

    /// Wraps metrics in one request: StatsD metrics in [`SCOPE_NAME`], telemetry in
    /// [`TELEMETRY_SCOPE_NAME`], extra resource metrics (OTLP input) appended as they are.
    pub fn request(
        &self,
        statsd: Vec<Metric>,
        telemetry: Vec<Metric>,
        extra: Vec<ResourceMetrics>,
    ) -> ExportMetricsServiceRequest {
        let scope = |name: &str, metrics: Vec<Metric>| ScopeMetrics {
            scope: Some(InstrumentationScope {
                name: name.to_owned(),
                version: env!("CARGO_PKG_VERSION").to_owned(),
                ..Default::default()
            }),
            metrics,
            ..Default::default()
        };
        let mut scopes = Vec::new();
        if !statsd.is_empty() {
            scopes.push(scope(SCOPE_NAME, statsd));
        }
        if !telemetry.is_empty() {
            scopes.push(scope(TELEMETRY_SCOPE_NAME, telemetry));
        }
        let mut resource_metrics = Vec::new();
        if !scopes.is_empty() {
            resource_metrics.push(ResourceMetrics {
                resource: Some(self.resource.clone()),
                scope_metrics: scopes,
                ..Default::default()
            });
        }
        resource_metrics.extend(extra);
        ExportMetricsServiceRequest { resource_metrics }
    }

    fn temporality(&self) -> i32 {
        match self.temporality {
            Temporality::Cumulative => AggregationTemporality::Cumulative as i32,
            Temporality::Delta => AggregationTemporality::Delta as i32,
        }
    }

    fn empty_metric(&self, v: &SeriesView<'_>) -> Metric {
        let (unit, data) = match v.class {
            Class::Counter => (
                "",
                metric::Data::Sum(Sum {
                    data_points: vec![],
                    aggregation_temporality: self.temporality(),
                    is_monotonic: true,
                }),
            ),
            Class::Gauge | Class::Set => ("", metric::Data::Gauge(Gauge { data_points: vec![] })),
            Class::Timer | Class::Histogram => (
                if v.class == Class::Timer { "ms" } else { "" },
                metric::Data::Histogram(Histogram {
                    data_points: vec![],
                    aggregation_temporality: self.temporality(),
                }),
            ),
        };
        Metric {
            name: v.name.to_owned(),
            unit: unit.to_owned(),
            data: Some(data),
            ..Default::default()
        }
    }

    fn push_points(&self, m: &mut Metric, v: &SeriesView<'_>, now_ns: u64) {
        let attrs: Vec<KeyValue> = v.tags.iter().map(|(k, val)| kv(k, val)).collect();
        let number = |start, time, value| NumberDataPoint {
            attributes: attrs.clone(),
            start_time_unix_nano: start,
            time_unix_nano: time,
            value: Some(value),
            ..Default::default()
        };
        match (&mut m.data, v.value) {
            (Some(metric::Data::Sum(sum)), ViewValue::Counter(total)) => {
                if v.first_export {
                    sum.data_points.push(number(
                        v.start_ns,
                        v.start_ns,
                        number_data_point::Value::AsDouble(0.0),
                    ));
                }
                if !v.hold_total {
                    sum.data_points.push(number(
                        v.start_ns,
                        now_ns,
                        number_data_point::Value::AsDouble(total),
                    ));
                }
            }
            (Some(metric::Data::Gauge(g)), ViewValue::Gauge(x)) => {
                g.data_points.push(number(0, now_ns, number_data_point::Value::AsDouble(x)));
            }
            (Some(metric::Data::Gauge(g)), ViewValue::SetCount(n)) => {
                g.data_points.push(number(0, now_ns, number_data_point::Value::AsInt(n as i64)));
            }
            (Some(metric::Data::Histogram(h)), ViewValue::Hist(hist)) => {
                let point = |time, count, sum, counts: Vec<u64>, min, max| HistogramDataPoint {
                    attributes: attrs.clone(),
                    start_time_unix_nano: v.start_ns,
                    time_unix_nano: time,
                    count,
                    sum: Some(sum),
                    bucket_counts: counts,
                    explicit_bounds: v.bounds.unwrap_or(&self.buckets).to_vec(),
                    min,
                    max,
                    ..Default::default()
                };
                if v.first_export {
                    h.data_points.push(point(
                        v.start_ns,
                        0,
                        0.0,
                        vec![0; hist.counts.len()],
                        None,
                        None,
                    ));
                }
                if v.hold_total {
                    return;
                }
                let (min, max) =
                    if hist.count > 0 { (Some(hist.min), Some(hist.max)) } else { (None, None) };
                h.data_points.push(point(
                    now_ns,
                    hist.count,
                    hist.sum,
                    hist.counts.clone(),
                    min,
                    max,
                ));
            }
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::AggregateConfig;
    use dualmetrics_model::statsd_parse::Parser;

    fn run(lines: &[&str], temporality: Temporality) -> Vec<Metric> {
        let cfg = AggregateConfig { temporality, buckets: vec![10.0], ..Default::default() };
        let t = Telemetry::default();
        let mut a = Aggregator::new(cfg, 100);
        for l in lines {
            a.ingest(&Parser::default().parse(l).unwrap(), &t).unwrap();
        }
        a.release_held_totals();
        Translator::new(&BTreeMap::new(), temporality, vec![10.0]).translate(&mut a, 200, &t)
    }

    fn sum_points(m: &[Metric]) -> Vec<(u64, u64, Option<number_data_point::Value>)> {
        m.iter()
            .flat_map(|m| match &m.data {
                Some(metric::Data::Sum(s)) => s.data_points.clone(),
                _ => vec![],
            })
            .map(|p| (p.start_time_unix_nano, p.time_unix_nano, p.value))
            .collect()
    }

    #[test]
    fn new_counter_exports_its_zero_point_first_and_its_total_after_the_hold() {
        let cfg = AggregateConfig { zero_hold_ms: 1, ..Default::default() };
        let t = Telemetry::default();
        let tr = Translator::new(&BTreeMap::new(), Temporality::Cumulative, vec![10.0]);
        let mut a = Aggregator::new(cfg, 100);
        a.ingest(&Parser::default().parse("k:3|c").unwrap(), &t).unwrap();
        let zero = Some(number_data_point::Value::AsDouble(0.0));
        let three = Some(number_data_point::Value::AsDouble(3.0));
        // first export: the zero point alone, at the start time
        assert_eq!(sum_points(&tr.translate(&mut a, 200, &t)), [(100, 100, zero)]);
        // still within the hold (1 ms = 1_000_000 ns after 200): nothing
        assert!(sum_points(&tr.translate(&mut a, 500_000, &t)).is_empty());
        // after it: the total, same start, later time; no second zero
        assert_eq!(sum_points(&tr.translate(&mut a, 1_000_200, &t)), [(100, 1_000_200, three)]);
    }

    #[test]
    fn final_flush_sends_zero_and_held_total_together() {
        let m = run(&["k:3|c"], Temporality::Cumulative);
        assert_eq!(
            sum_points(&m),
            [
                (100, 100, Some(number_data_point::Value::AsDouble(0.0))),
                (100, 200, Some(number_data_point::Value::AsDouble(3.0)))
            ]
        );
    }

    #[test]
    fn delta_has_no_zero_point() {
        let m = run(&["k:3|c"], Temporality::Delta);
        let Some(metric::Data::Sum(s)) = &m[0].data else { panic!() };
        assert_eq!(s.data_points.len(), 1);
        assert_eq!(s.aggregation_temporality, AggregationTemporality::Delta as i32);
    }

    #[test]
    fn timers_are_ms_histograms() {
        let m = run(&["t:5|ms", "t:50|ms"], Temporality::Cumulative);
        assert_eq!(m[0].unit, "ms");
        let Some(metric::Data::Histogram(h)) = &m[0].data else { panic!() };
        let last = h.data_points.last().unwrap();
        assert_eq!((last.count, last.sum, last.bucket_counts.clone()), (2, Some(55.0), vec![1, 1]));
    }
}
