//! A flattening of OTLP export requests into [`Point`]s: one per data point, with its metric,
//! scope and resource, so readers work on values rather than on protobuf nesting. The testkit's
//! receivers hand tests these points; the demo's embedded store turns them into Prometheus
//! series. Behind the `otlp` feature.
use std::collections::BTreeMap;
use std::fmt;

use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest;
use opentelemetry_proto::tonic::common::v1::{any_value, AnyValue, KeyValue};
use opentelemetry_proto::tonic::metrics::v1::{
    exponential_histogram_data_point::Buckets, metric::Data, number_data_point,
    AggregationTemporality,
};

/// One data point with its metric, scope and resource, as flattened by [`points`].
#[derive(Clone, Debug, PartialEq)]
pub struct Point {
    /// Metric name.
    pub metric: String,
    /// Metric unit (UCUM, e.g. `ms`, `By`, `1`), empty if none.
    pub unit: String,
    /// Metric description.
    pub description: String,
    /// What kind of metric the point belongs to.
    pub kind: PointKind,
    /// Aggregation temporality; `None` for gauges and summaries (and if unspecified).
    pub temporality: Option<Temporality>,
    /// Point attributes, values rendered as text (see [`any_value_to_string`]).
    pub attributes: BTreeMap<String, String>,
    /// Resource attributes, e.g. `service.name`.
    pub resource: BTreeMap<String, String>,
    /// Instrumentation scope name.
    pub scope: String,
    /// The value.
    pub value: PointValue,
    /// Start of the aggregation interval (0 if unset).
    pub start_time_unix_nano: u64,
    /// End of the aggregation interval.
    pub time_unix_nano: u64,
}

/// The kind of metric a [`Point`] belongs to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum PointKind {
    /// An OTLP Sum (counter when monotonic, up-down counter otherwise).
    Sum {
        /// Whether the sum only goes up.
        monotonic: bool,
    },
    /// An OTLP Gauge.
    Gauge,
    /// An explicit-bucket histogram.
    Histogram,
    /// An exponential histogram.
    ExpHistogram,
    /// A summary (not produced by the OTel SDK; here for completeness).
    Summary,
}

/// Aggregation temporality of a [`Point`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Temporality {
    /// Each point covers only its own interval.
    Delta,
    /// Each point covers everything since the start time.
    Cumulative,
}

/// The value of a [`Point`].
#[derive(Clone, Debug, PartialEq)]
pub enum PointValue {
    /// An integer number point.
    Int(i64),
    /// A floating-point number point.
    Double(f64),
    /// A number point without a value (malformed, but representable).
    Empty,
    /// An explicit-bucket histogram point.
    Histogram {
        /// Number of samples.
        count: u64,
        /// Sum of samples, if sent.
        sum: Option<f64>,
        /// Upper bounds of the buckets (`bucket_counts` has one more entry).
        bounds: Vec<f64>,
        /// Samples per bucket.
        bucket_counts: Vec<u64>,
        /// Smallest sample, if sent.
        min: Option<f64>,
        /// Largest sample, if sent.
        max: Option<f64>,
    },
    /// An exponential histogram point.
    Exp {
        /// Number of samples.
        count: u64,
        /// Sum of samples, if sent.
        sum: Option<f64>,
        /// Resolution: bucket bases are `2^(2^-scale)`.
        scale: i32,
        /// Samples in the zero bucket.
        zero_count: u64,
        /// Index of the first positive bucket.
        positive_offset: i32,
        /// Positive bucket counts.
        positive: Vec<u64>,
        /// Index of the first negative bucket.
        negative_offset: i32,
        /// Negative bucket counts.
        negative: Vec<u64>,
        /// Smallest sample, if sent.
        min: Option<f64>,
        /// Largest sample, if sent.
        max: Option<f64>,
    },
    /// A summary point.
    Summary {
        /// Number of samples.
        count: u64,
        /// Sum of samples.
        sum: f64,
        /// `(quantile, value)` pairs.
        quantiles: Vec<(f64, f64)>,
    },
}

impl Point {
    /// The value of attribute `key`.
    pub fn attr(&self, key: &str) -> Option<&str> {
        self.attributes.get(key).map(String::as_str)
    }

    /// Whether this point is of `metric` and carries every `(key, value)` of `attrs` (other
    /// attributes may be present too).
    pub fn matches(&self, metric: &str, attrs: &[(&str, &str)]) -> bool {
        self.metric == metric && attrs.iter().all(|(k, v)| self.attr(k) == Some(v))
    }

    /// A number point's value as `f64` (`Int` converted); `None` for histograms and summaries.
    pub fn as_f64(&self) -> Option<f64> {
        match self.value {
            PointValue::Int(v) => Some(v as f64),
            PointValue::Double(v) => Some(v),
            _ => None,
        }
    }
}

impl fmt::Display for Point {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}{{", self.metric)?;
        for (i, (k, v)) in self.attributes.iter().enumerate() {
            let sep = if i == 0 { "" } else { "," };
            write!(f, "{sep}{k}={v:?}")?;
        }
        write!(f, "}} {:?}", self.kind)?;
        if let Some(t) = self.temporality {
            write!(f, " {t:?}")?;
        }
        match &self.value {
            PointValue::Int(v) => write!(f, " = {v}"),
            PointValue::Double(v) => write!(f, " = {v}"),
            other => write!(f, " = {other:?}"),
        }
    }
}

/// Flattens export requests into one [`Point`] per data point, in request order.
///
/// ```
/// use dualmetrics_model::otlp::points;
/// use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest;
///
/// assert!(points(&[ExportMetricsServiceRequest::default()]).is_empty());
/// ```
pub fn points(requests: &[ExportMetricsServiceRequest]) -> Vec<Point> {
    let mut out = Vec::new();
    for rm in requests.iter().flat_map(|r| &r.resource_metrics) {
        let resource = rm.resource.as_ref().map(|r| attributes(&r.attributes)).unwrap_or_default();
        for sm in &rm.scope_metrics {
            let scope = sm.scope.as_ref().map(|s| s.name.clone()).unwrap_or_default();
            for metric in &sm.metrics {
                let base = Point {
                    metric: metric.name.clone(),
                    unit: metric.unit.clone(),
                    description: metric.description.clone(),
                    kind: PointKind::Gauge,
                    temporality: None,
                    attributes: BTreeMap::new(),
                    resource: resource.clone(),
                    scope: scope.clone(),
                    value: PointValue::Empty,
                    start_time_unix_nano: 0,
                    time_unix_nano: 0,
                };
                flatten_metric(&base, metric.data.as_ref(), &mut out);
            }
        }
    }
    out
}

/// The points of one metric: one arm per OTLP data type (gauge, sum, histogram, exponential
/// histogram, summary), each copying that type's fields into [`Point`]s — long because the
/// protobuf has five shapes, not because it does several things.
fn flatten_metric(base: &Point, data: Option<&Data>, out: &mut Vec<Point>) {
    let point = |kind, temporality, attrs: &[KeyValue], start, time, value| Point {
        kind,
        temporality,
        attributes: attributes(attrs),
        value,
        start_time_unix_nano: start,
        time_unix_nano: time,
        ..base.clone()
    };
    let number = |v: Option<number_data_point::Value>| match v {
        Some(number_data_point::Value::AsInt(v)) => PointValue::Int(v),
        Some(number_data_point::Value::AsDouble(v)) => PointValue::Double(v),
        None => PointValue::Empty,
    };
    match data {
        None => {}
        Some(Data::Gauge(g)) => out.extend(g.data_points.iter().map(|p| {
            point(
                PointKind::Gauge,
                None,
                &p.attributes,
                p.start_time_unix_nano,
                p.time_unix_nano,
                number(p.value),
            )
        })),
        Some(Data::Sum(s)) => {
            let kind = PointKind::Sum { monotonic: s.is_monotonic };
            let t = temporality(s.aggregation_temporality);
            out.extend(s.data_points.iter().map(|p| {
                point(
                    kind,
                    t,
                    &p.attributes,
                    p.start_time_unix_nano,
                    p.time_unix_nano,
                    number(p.value),
                )
            }));
        }
        Some(Data::Histogram(h)) => {
            let t = temporality(h.aggregation_temporality);
            out.extend(h.data_points.iter().map(|p| {
                point(
                    PointKind::Histogram,
                    t,
                    &p.attributes,
                    p.start_time_unix_nano,
                    p.time_unix_nano,
                    PointValue::Histogram {
                        count: p.count,
                        sum: p.sum,
                        bounds: p.explicit_bounds.clone(),
                        bucket_counts: p.bucket_counts.clone(),
                        min: p.min,
                        max: p.max,
                    },
                )
            }));
        }
        Some(Data::ExponentialHistogram(h)) => {
            let t = temporality(h.aggregation_temporality);
            let buckets = |b: &Option<Buckets>| {
                b.as_ref().map(|b| (b.offset, b.bucket_counts.clone())).unwrap_or_default()
            };
            out.extend(h.data_points.iter().map(|p| {
                let (positive_offset, positive) = buckets(&p.positive);
                let (negative_offset, negative) = buckets(&p.negative);
                point(
                    PointKind::ExpHistogram,
                    t,
                    &p.attributes,
                    p.start_time_unix_nano,
                    p.time_unix_nano,
                    PointValue::Exp {
                        count: p.count,
                        sum: p.sum,
                        scale: p.scale,
                        zero_count: p.zero_count,
                        positive_offset,
                        positive,
                        negative_offset,
                        negative,
                        min: p.min,
                        max: p.max,
                    },
                )
            }));
        }
        Some(Data::Summary(s)) => out.extend(s.data_points.iter().map(|p| {
            point(
                PointKind::Summary,
                None,
                &p.attributes,
                p.start_time_unix_nano,
                p.time_unix_nano,
                PointValue::Summary {
                    count: p.count,
                    sum: p.sum,
                    quantiles: p.quantile_values.iter().map(|q| (q.quantile, q.value)).collect(),
                },
            )
        })),
    }
}

fn temporality(raw: i32) -> Option<Temporality> {
    match AggregationTemporality::try_from(raw) {
        Ok(AggregationTemporality::Delta) => Some(Temporality::Delta),
        Ok(AggregationTemporality::Cumulative) => Some(Temporality::Cumulative),
        _ => None,
    }
}

fn attributes(kvs: &[KeyValue]) -> BTreeMap<String, String> {
    kvs.iter()
        .map(|kv| {
            let value = kv.value.as_ref().map(any_value_to_string).unwrap_or_default();
            (kv.key.clone(), value)
        })
        .collect()
}

/// Renders an attribute value as text: strings as is, numbers and bools with `to_string`,
/// bytes as lower-case hex, arrays as `[a,b]`, key-value lists as `{k=v,...}`.
pub fn any_value_to_string(value: &AnyValue) -> String {
    use any_value::Value;
    match &value.value {
        None => String::new(),
        Some(Value::StringValue(s)) => s.clone(),
        Some(Value::BoolValue(b)) => b.to_string(),
        Some(Value::IntValue(i)) => i.to_string(),
        Some(Value::DoubleValue(d)) => d.to_string(),
        Some(Value::BytesValue(b)) => b.iter().map(|b| format!("{b:02x}")).collect(),
        Some(Value::StringValueStrindex(i)) => format!("strindex:{i}"),
        Some(Value::ArrayValue(a)) => {
            let items: Vec<_> = a.values.iter().map(any_value_to_string).collect();
            format!("[{}]", items.join(","))
        }
        Some(Value::KvlistValue(l)) => {
            let items: Vec<_> = l
                .values
                .iter()
                .map(|kv| {
                    let v = kv.value.as_ref().map(any_value_to_string).unwrap_or_default();
                    format!("{}={v}", kv.key)
                })
                .collect();
            format!("{{{}}}", items.join(","))
        }
    }
}

/// The last point (in export order) of `metric` whose attributes include every pair of
/// `attrs`: the latest exported value of that series.
///
/// ```
/// use dualmetrics_model::otlp::{latest, points};
/// use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest;
///
/// let none = points(&[ExportMetricsServiceRequest::default()]);
/// assert!(latest(&none, "hits", &[("route", "/a")]).is_none());
/// ```
pub fn latest<'a>(points: &'a [Point], metric: &str, attrs: &[(&str, &str)]) -> Option<&'a Point> {
    points.iter().rev().find(|p| p.matches(metric, attrs))
}

/// Sums the values of every point of `metric` whose attributes include `attrs`: number points
/// add their value, histograms and summaries their `sum`. Meant for delta series (summing
/// cumulative points double-counts) and for adding up several series of one metric at one export.
pub fn sum_of_values(points: &[Point], metric: &str, attrs: &[(&str, &str)]) -> f64 {
    points
        .iter()
        .filter(|p| p.matches(metric, attrs))
        .map(|p| match &p.value {
            PointValue::Int(v) => *v as f64,
            PointValue::Double(v) => *v,
            PointValue::Histogram { sum, .. } | PointValue::Exp { sum, .. } => sum.unwrap_or(0.0),
            PointValue::Summary { sum, .. } => *sum,
            PointValue::Empty => 0.0,
        })
        .sum()
}

#[cfg(test)]
mod tests {
    use super::*;
    use opentelemetry_proto::tonic::metrics::v1::{
        metric, Histogram, HistogramDataPoint, Metric, NumberDataPoint, ResourceMetrics,
        ScopeMetrics, Sum,
    };
    use opentelemetry_proto::tonic::resource::v1::Resource;

    fn kv(k: &str, v: &str) -> KeyValue {
        KeyValue {
            key: k.into(),
            value: Some(AnyValue { value: Some(any_value::Value::StringValue(v.into())) }),
            ..Default::default()
        }
    }

    fn request(metrics: Vec<Metric>) -> ExportMetricsServiceRequest {
        ExportMetricsServiceRequest {
            resource_metrics: vec![ResourceMetrics {
                resource: Some(Resource {
                    attributes: vec![kv("service.name", "svc")],
                    ..Default::default()
                }),
                scope_metrics: vec![ScopeMetrics {
                    scope: Some(Default::default()),
                    metrics,
                    ..Default::default()
                }],
                ..Default::default()
            }],
        }
    }

    fn counter(value: i64, route: &str) -> Metric {
        Metric {
            name: "hits".into(),
            data: Some(metric::Data::Sum(Sum {
                data_points: vec![NumberDataPoint {
                    attributes: vec![kv("route", route)],
                    value: Some(number_data_point::Value::AsInt(value)),
                    ..Default::default()
                }],
                aggregation_temporality: AggregationTemporality::Delta as i32,
                is_monotonic: true,
            })),
            ..Default::default()
        }
    }

    #[test]
    fn flattens_sum_with_resource_and_temporality() {
        let p = points(&[request(vec![counter(3, "/a")])]);
        assert_eq!(p.len(), 1);
        assert_eq!(p[0].kind, PointKind::Sum { monotonic: true });
        assert_eq!(p[0].temporality, Some(Temporality::Delta));
        assert_eq!(p[0].resource["service.name"], "svc");
        assert_eq!(p[0].value, PointValue::Int(3));
    }

    #[test]
    fn latest_takes_the_last_matching_point() {
        let reqs =
            [request(vec![counter(1, "/a"), counter(7, "/b")]), request(vec![counter(2, "/a")])];
        let p = points(&reqs);
        assert_eq!(latest(&p, "hits", &[("route", "/a")]).unwrap().value, PointValue::Int(2));
        assert_eq!(latest(&p, "hits", &[("route", "/b")]).unwrap().value, PointValue::Int(7));
        assert!(latest(&p, "hits", &[("route", "/c")]).is_none());
        assert_eq!(sum_of_values(&p, "hits", &[("route", "/a")]), 3.0);
        assert_eq!(sum_of_values(&p, "hits", &[]), 10.0);
    }

    #[test]
    fn flattens_histogram_buckets() {
        let m = Metric {
            name: "lat".into(),
            unit: "ms".into(),
            data: Some(metric::Data::Histogram(Histogram {
                data_points: vec![HistogramDataPoint {
                    count: 2,
                    sum: Some(7.0),
                    explicit_bounds: vec![5.0],
                    bucket_counts: vec![1, 1],
                    ..Default::default()
                }],
                aggregation_temporality: AggregationTemporality::Cumulative as i32,
            })),
            ..Default::default()
        };
        let p = points(&[request(vec![m])]);
        assert_eq!(p[0].temporality, Some(Temporality::Cumulative));
        assert_eq!(p[0].unit, "ms");
        let PointValue::Histogram { bucket_counts, .. } = &p[0].value else {
            panic!("not a histogram: {:?}", p[0].value)
        };
        assert_eq!(bucket_counts, &[1, 1]);
        assert_eq!(sum_of_values(&p, "lat", &[]), 7.0);
    }

    #[test]
    fn renders_any_values() {
        let v = AnyValue {
            value: Some(any_value::Value::ArrayValue(
                opentelemetry_proto::tonic::common::v1::ArrayValue {
                    values: vec![
                        AnyValue { value: Some(any_value::Value::IntValue(1)) },
                        AnyValue { value: Some(any_value::Value::BoolValue(true)) },
                    ],
                },
            )),
        };
        assert_eq!(any_value_to_string(&v), "[1,true]");
    }
}
