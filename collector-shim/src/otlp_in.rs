//! OTLP input: a tonic `MetricsService` for SDKs that emit **delta**, turned into cumulative.
//!
//! - Delta monotonic and non-monotonic Sums and delta explicit-bucket Histograms are added into
//!   per-series totals (series = resource attributes + scope + metric name + point attributes).
//!   The cumulative start time is the first delta's start time (its time if the start is 0).
//!   A histogram whose bounds change restarts (new start time).
//! - Everything else (cumulative sums and histograms, gauges, summaries) is forwarded unchanged
//!   with the next flush. Delta exponential histograms are not converted: they are forwarded
//!   unchanged and counted as `otlp_in_unsupported` (most stores drop them).
//! - State is bounded: at most `max_series` series (new ones beyond are refused, counted as
//!   `otlp_in_series_limit` and reported in the response's `partial_success`), and a series not
//!   updated for `staleness_ms` is forgotten (a later delta starts a new cumulative series).
//! - Every live series is exported with each flush (the cumulative contract).
use crate::telemetry::{DropReason, Telemetry};
use opentelemetry_proto::tonic::collector::metrics::v1::metrics_service_server::MetricsService;
use opentelemetry_proto::tonic::collector::metrics::v1::{
    ExportMetricsPartialSuccess, ExportMetricsServiceRequest, ExportMetricsServiceResponse,
};
use opentelemetry_proto::tonic::common::v1::{InstrumentationScope, KeyValue};
use opentelemetry_proto::tonic::metrics::v1::{
    metric, number_data_point, AggregationTemporality, Histogram, HistogramDataPoint, Metric,
    NumberDataPoint, ResourceMetrics, ScopeMetrics, Sum,
};
use opentelemetry_proto::tonic::resource::v1::Resource;
use prost::Message;
use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const DELTA: i32 = AggregationTemporality::Delta as i32;
const CUMULATIVE: i32 = AggregationTemporality::Cumulative as i32;

#[derive(Debug)]
enum Acc {
    Int(i64),
    Double(f64),
    Hist(HistogramDataPoint),
}

#[derive(Debug)]
struct SeriesState {
    /// The resource and scope of the request that made the series, shared by every series of
    /// that request (a request of 50,000 series holds one copy of its resource, not 50,000).
    res_key: Arc<[u8]>,
    scope_key: Arc<[u8]>,
    resource: Arc<Resource>,
    scope: Arc<Option<InstrumentationScope>>,
    name: String,
    description: String,
    unit: String,
    monotonic: bool,
    attributes: Vec<KeyValue>,
    start_ns: u64,
    time_ns: u64,
    acc: Acc,
    updated: Instant,
}

/// The delta → cumulative state, shared by the gRPC service and the flush.
#[derive(Debug)]
pub struct DeltaToCumulative {
    max_series: usize,
    staleness: Duration,
    series: HashMap<Vec<u8>, SeriesState>,
    passthrough: Vec<ResourceMetrics>,
    passthrough_points: usize,
    /// Two SipHash keys of this process: a series key holds a 128-bit digest of its resource's
    /// attributes, not the attributes (a 256 KiB resource made every series key 256 KiB).
    res_digest: (std::hash::RandomState, std::hash::RandomState),
}

/// Most forwarded-unchanged data points held between two flushes.
pub const MAX_PASSTHROUGH_POINTS: usize = 100_000;

fn encode_kvs(out: &mut Vec<u8>, kvs: &[KeyValue]) {
    let mut sorted: Vec<&KeyValue> = kvs.iter().collect();
    sorted.sort_by(|a, b| a.key.cmp(&b.key));
    for kv in sorted {
        kv.encode_length_delimited(out).expect("vec grows");
    }
}

impl DeltaToCumulative {
    /// Empty state with a series limit and a staleness expiry.
    pub fn new(max_series: usize, staleness: Duration) -> Self {
        DeltaToCumulative {
            max_series,
            staleness,
            series: HashMap::new(),
            passthrough: Vec::new(),
            passthrough_points: 0,
            res_digest: Default::default(),
        }
    }

    /// Live series.
    pub fn len(&self) -> usize {
        self.series.len()
    }

    /// Whether no series is live.
    pub fn is_empty(&self) -> bool {
        self.series.is_empty()
    }

    /// Folds one request in. Returns the number of refused data points.
    ///
    /// Per metric, with the request's resource and scope: delta sums and histograms are added
    /// into their series ([`DeltaToCumulative::fold_delta`]); anything else is held for the next
    /// flush unchanged ([`DeltaToCumulative::hold_passthrough`]), grouped as it came.
    pub fn accept(&mut self, req: ExportMetricsServiceRequest, tel: &Telemetry) -> i64 {
        let mut refused = 0i64;
        let now = Instant::now();
        for rm in req.resource_metrics {
            let resource = Arc::new(rm.resource.unwrap_or_default());
            let mut res_key = Vec::new();
            encode_kvs(&mut res_key, &resource.attributes);
            let res_key: Arc<[u8]> = res_key.into();
            let res_id = self.resource_id(&res_key);
            let mut pass_scopes = Vec::new();
            for sm in rm.scope_metrics {
                let scope_key = scope_key(sm.scope.as_ref());
                let scope = Arc::new(sm.scope.clone());
                let mut pass_metrics = Vec::new();
                for m in sm.metrics {
                    let key_base = series_key_base(&res_id, &scope_key, &m.name);
                    let ctx = Ctx {
                        res_key: &res_key,
                        scope_key: &scope_key,
                        resource: &resource,
                        scope: &scope,
                        m: &m,
                    };
                    if let Some(n) = self.fold_delta(&ctx, &key_base, now, tel) {
                        refused += n;
                        continue;
                    }
                    match self.hold_passthrough(&m, tel) {
                        Ok(()) => pass_metrics.push(m),
                        Err(n) => refused += n,
                    }
                }
                if !pass_metrics.is_empty() {
                    pass_scopes.push(ScopeMetrics {
                        scope: sm.scope,
                        metrics: pass_metrics,
                        schema_url: sm.schema_url,
                    });
                }
            }
            if !pass_scopes.is_empty() {
                self.passthrough.push(ResourceMetrics {
                    resource: Some(Arc::unwrap_or_clone(resource)),
                    scope_metrics: pass_scopes,
                    schema_url: rm.schema_url,
                });
            }
        }
        tel.set_otlp_in_series(self.series.len());
        refused
    }

    /// The 128-bit digest of a resource's encoded attributes that series keys hold.
    fn resource_id(&self, res_key: &[u8]) -> [u8; 16] {
        use std::hash::BuildHasher;
        let (a, b) = (&self.res_digest.0, &self.res_digest.1);
        let mut id = [0u8; 16];
        id[..8].copy_from_slice(&a.hash_one(res_key).to_le_bytes());
        id[8..].copy_from_slice(&b.hash_one(res_key).to_le_bytes());
        id
    }

    /// Adds the points of a delta sum or delta histogram into their series and returns the
    /// refused ones; `None` for any other metric.
    fn fold_delta(
        &mut self,
        ctx: &Ctx<'_>,
        key_base: &[u8],
        now: Instant,
        tel: &Telemetry,
    ) -> Option<i64> {
        let mut refused = 0;
        match &ctx.m.data {
            Some(metric::Data::Sum(s)) if s.aggregation_temporality == DELTA => {
                for p in &s.data_points {
                    refused += self.add(
                        ctx,
                        key_base,
                        p.attributes.clone(),
                        p.start_time_unix_nano,
                        p.time_unix_nano,
                        s.is_monotonic,
                        Upd::Number(p.value),
                        now,
                        tel,
                    );
                }
            }
            Some(metric::Data::Histogram(h)) if h.aggregation_temporality == DELTA => {
                for p in &h.data_points {
                    refused += self.add(
                        ctx,
                        key_base,
                        p.attributes.clone(),
                        p.start_time_unix_nano,
                        p.time_unix_nano,
                        true,
                        Upd::Hist(p),
                        now,
                        tel,
                    );
                }
            }
            _ => return None,
        }
        Some(refused)
    }

    /// Whether a metric forwarded unchanged fits under [`MAX_PASSTHROUGH_POINTS`] until the
    /// next flush: `Err` with its point count when it does not (counted as a drop). A delta
    /// exponential histogram is also counted as unsupported.
    fn hold_passthrough(&mut self, m: &Metric, tel: &Telemetry) -> Result<(), i64> {
        if let Some(metric::Data::ExponentialHistogram(h)) = &m.data {
            if h.aggregation_temporality == DELTA {
                tel.count_drop(DropReason::OtlpInUnsupported, h.data_points.len() as u64);
            }
        }
        let n = crate::export::point_count(&ExportMetricsServiceRequest {
            resource_metrics: vec![ResourceMetrics {
                scope_metrics: vec![ScopeMetrics {
                    metrics: vec![m.clone()],
                    ..Default::default()
                }],
                ..Default::default()
            }],
        }) as usize;
        if self.passthrough_points + n > MAX_PASSTHROUGH_POINTS {
            tel.count_drop(DropReason::OtlpInSeriesLimit, n as u64);
            return Err(n as i64);
        }
        self.passthrough_points += n;
        Ok(())
    }

    #[allow(clippy::too_many_arguments)]
    fn add(
        &mut self,
        ctx: &Ctx<'_>,
        key_base: &[u8],
        attributes: Vec<KeyValue>,
        start_ns: u64,
        time_ns: u64,
        monotonic: bool,
        upd: Upd<'_>,
        now: Instant,
        tel: &Telemetry,
    ) -> i64 {
        let mut key = key_base.to_vec();
        encode_kvs(&mut key, &attributes);
        let start_ns = if start_ns == 0 { time_ns } else { start_ns };
        if let Some(s) = self.series.get_mut(&key) {
            s.updated = now;
            s.time_ns = s.time_ns.max(time_ns);
            match (&mut s.acc, upd) {
                (Acc::Int(a), Upd::Number(Some(number_data_point::Value::AsInt(v)))) => {
                    *a = a.saturating_add(v)
                }
                (Acc::Double(a), Upd::Number(Some(number_data_point::Value::AsDouble(v)))) => {
                    *a += v
                }
                (Acc::Int(a), Upd::Number(Some(number_data_point::Value::AsDouble(v)))) => {
                    s.acc = Acc::Double(*a as f64 + v)
                }
                (Acc::Double(a), Upd::Number(Some(number_data_point::Value::AsInt(v)))) => {
                    *a += v as f64
                }
                (Acc::Hist(h), Upd::Hist(p)) => {
                    if h.explicit_bounds == p.explicit_bounds
                        && h.bucket_counts.len() == p.bucket_counts.len()
                    {
                        // saturating: counts come from the network (a hostile `u64::MAX`
                        // would wrap, or panic in a debug build)
                        for (a, b) in h.bucket_counts.iter_mut().zip(&p.bucket_counts) {
                            *a = a.saturating_add(*b);
                        }
                        h.count = h.count.saturating_add(p.count);
                        h.sum = match (h.sum, p.sum) {
                            (Some(a), Some(b)) => Some(a + b),
                            _ => None,
                        };
                        h.min = match (h.min, p.min) {
                            (Some(a), Some(b)) => Some(a.min(b)),
                            (a, b) => a.or(b),
                        };
                        h.max = match (h.max, p.max) {
                            (Some(a), Some(b)) => Some(a.max(b)),
                            (a, b) => a.or(b),
                        };
                    } else {
                        *h = p.clone();
                        s.start_ns = start_ns;
                    }
                }
                _ => {}
            }
            return 0;
        }
        if self.series.len() >= self.max_series {
            tel.count_drop(DropReason::OtlpInSeriesLimit, 1);
            return 1;
        }
        let acc = match upd {
            Upd::Number(Some(number_data_point::Value::AsInt(v))) => Acc::Int(v),
            Upd::Number(Some(number_data_point::Value::AsDouble(v))) => Acc::Double(v),
            Upd::Number(None) => Acc::Int(0),
            Upd::Hist(p) => Acc::Hist(p.clone()),
        };
        self.series.insert(
            key,
            SeriesState {
                res_key: Arc::clone(ctx.res_key),
                scope_key: Arc::clone(ctx.scope_key),
                resource: Arc::clone(ctx.resource),
                scope: Arc::clone(ctx.scope),
                name: ctx.m.name.clone(),
                description: ctx.m.description.clone(),
                unit: ctx.m.unit.clone(),
                monotonic,
                attributes,
                start_ns,
                time_ns,
                acc,
                updated: now,
            },
        );
        0
    }

    /// Expires stale series and returns every live series as cumulative points, plus whatever
    /// was forwarded unchanged since the last call.
    pub fn collect(&mut self, tel: &Telemetry) -> Vec<ResourceMetrics> {
        let staleness = self.staleness;
        self.series.retain(|_, s| s.updated.elapsed() < staleness);
        tel.set_otlp_in_series(self.series.len());
        // resource → scope → metric name → metric
        let mut tree: BTreeMap<&[u8], (Resource, ScopeTree<'_>)> = BTreeMap::new();
        for s in self.series.values() {
            let (_, scopes) = tree
                .entry(&s.res_key[..])
                .or_insert_with(|| ((*s.resource).clone(), BTreeMap::new()));
            let (_, metrics) = scopes
                .entry(&s.scope_key[..])
                .or_insert_with(|| ((*s.scope).clone(), BTreeMap::new()));
            let m = metrics.entry(&s.name).or_insert_with(|| Metric {
                name: s.name.clone(),
                description: s.description.clone(),
                unit: s.unit.clone(),
                data: Some(match s.acc {
                    Acc::Hist(_) => metric::Data::Histogram(Histogram {
                        data_points: vec![],
                        aggregation_temporality: CUMULATIVE,
                    }),
                    _ => metric::Data::Sum(Sum {
                        data_points: vec![],
                        aggregation_temporality: CUMULATIVE,
                        is_monotonic: s.monotonic,
                    }),
                }),
                ..Default::default()
            });
            match (&mut m.data, &s.acc) {
                (Some(metric::Data::Sum(sum)), Acc::Int(v)) => {
                    sum.data_points.push(number(s, number_data_point::Value::AsInt(*v)))
                }
                (Some(metric::Data::Sum(sum)), Acc::Double(v)) => {
                    sum.data_points.push(number(s, number_data_point::Value::AsDouble(*v)))
                }
                (Some(metric::Data::Histogram(h)), Acc::Hist(p)) => {
                    h.data_points.push(HistogramDataPoint {
                        attributes: s.attributes.clone(),
                        start_time_unix_nano: s.start_ns,
                        time_unix_nano: s.time_ns,
                        ..p.clone()
                    })
                }
                _ => {}
            }
        }
        let mut out: Vec<ResourceMetrics> = tree
            .into_values()
            .map(|(resource, scopes)| ResourceMetrics {
                resource: Some(resource),
                scope_metrics: scopes
                    .into_values()
                    .map(|(scope, metrics)| ScopeMetrics {
                        scope,
                        metrics: metrics.into_values().collect(),
                        ..Default::default()
                    })
                    .collect(),
                ..Default::default()
            })
            .collect();
        out.append(&mut self.passthrough);
        self.passthrough_points = 0;
        out
    }
}

/// scope key → (scope, metric name → metric)
type ScopeTree<'a> = BTreeMap<&'a [u8], (Option<InstrumentationScope>, BTreeMap<&'a str, Metric>)>;

fn number(s: &SeriesState, v: number_data_point::Value) -> NumberDataPoint {
    NumberDataPoint {
        attributes: s.attributes.clone(),
        start_time_unix_nano: s.start_ns,
        time_unix_nano: s.time_ns,
        value: Some(v),
        ..Default::default()
    }
}

/// A scope's part of a series key: its name and version.
fn scope_key(scope: Option<&InstrumentationScope>) -> Arc<[u8]> {
    let mut key = Vec::new();
    if let Some(s) = scope {
        key.extend_from_slice(s.name.as_bytes());
        key.push(0);
        key.extend_from_slice(s.version.as_bytes());
    }
    key.into()
}

/// The start of every series key of one metric: resource digest, scope and metric name.
fn series_key_base(res_id: &[u8; 16], scope_key: &[u8], name: &str) -> Vec<u8> {
    let mut key_base = res_id.to_vec();
    key_base.push(0xff);
    key_base.extend_from_slice(scope_key);
    key_base.push(0xff);
    key_base.extend_from_slice(name.as_bytes());
    key_base.push(0xff);
    key_base
}

struct Ctx<'a> {
    res_key: &'a Arc<[u8]>,
    scope_key: &'a Arc<[u8]>,
    resource: &'a Arc<Resource>,
    scope: &'a Arc<Option<InstrumentationScope>>,
    m: &'a Metric,
}

#[derive(Clone, Copy)]
enum Upd<'a> {
    Number(Option<number_data_point::Value>),
    Hist(&'a HistogramDataPoint),
}

/// The gRPC service.
#[derive(Debug, Clone)]
pub struct OtlpIn {
    pub(crate) state: Arc<Mutex<DeltaToCumulative>>,
    pub(crate) tel: Arc<Telemetry>,
}

#[tonic::async_trait]
impl MetricsService for OtlpIn {
    async fn export(
        &self,
        request: tonic::Request<ExportMetricsServiceRequest>,
    ) -> Result<tonic::Response<ExportMetricsServiceResponse>, tonic::Status> {
        let refused = {
            let mut state = self.state.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
            state.accept(request.into_inner(), &self.tel)
        };
        let partial_success = (refused > 0).then(|| ExportMetricsPartialSuccess {
            rejected_data_points: refused,
            error_message: "series limit reached".to_owned(),
        });
        Ok(tonic::Response::new(ExportMetricsServiceResponse { partial_success }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::telemetry::kv;

    fn delta_sum(v: i64, start: u64, time: u64, route: &str) -> ExportMetricsServiceRequest {
        ExportMetricsServiceRequest {
            resource_metrics: vec![ResourceMetrics {
                resource: Some(Resource {
                    attributes: vec![kv("service.name", "svc")],
                    ..Default::default()
                }),
                scope_metrics: vec![ScopeMetrics {
                    metrics: vec![Metric {
                        name: "reqs".into(),
                        data: Some(metric::Data::Sum(Sum {
                            data_points: vec![NumberDataPoint {
                                attributes: vec![kv("route", route)],
                                start_time_unix_nano: start,
                                time_unix_nano: time,
                                value: Some(number_data_point::Value::AsInt(v)),
                                ..Default::default()
                            }],
                            aggregation_temporality: DELTA,
                            is_monotonic: true,
                        })),
                        ..Default::default()
                    }],
                    ..Default::default()
                }],
                ..Default::default()
            }],
        }
    }

    #[test]
    fn the_series_of_one_request_share_its_resource() {
        let mut req = delta_sum(1, 1, 2, "a");
        let rm = &mut req.resource_metrics[0];
        let big: String = "x".repeat(64 * 1024);
        rm.resource.as_mut().unwrap().attributes.push(kv("host.description", &big));
        let m = &mut rm.scope_metrics[0].metrics[0];
        if let Some(metric::Data::Sum(sum)) = &mut m.data {
            let p = sum.data_points[0].clone();
            sum.data_points = (0..5_000)
                .map(|i| NumberDataPoint {
                    attributes: vec![kv("route", &i.to_string())],
                    ..p.clone()
                })
                .collect();
        }
        let mut state = DeltaToCumulative::new(100_000, Duration::from_secs(60));
        let tel = Telemetry::default();
        assert_eq!(state.accept(req, &tel), 0);
        assert_eq!(state.series.len(), 5_000);
        let first = state.series.values().next().unwrap();
        // one 64 KiB resource for the 5,000 series (it used to be 5,000 copies: 320 MB)
        assert_eq!(Arc::strong_count(&first.resource), 5_000);
        assert!(state.series.values().all(|s| Arc::ptr_eq(&s.resource, &first.resource)));
        let out = state.collect(&tel);
        assert_eq!(out.len(), 1, "one resource in the export");
        assert_eq!(sums(&out).len(), 5_000);
    }

    fn sums(out: &[ResourceMetrics]) -> Vec<(u64, u64, Option<number_data_point::Value>, i32)> {
        let mut v = Vec::new();
        for rm in out {
            for sm in &rm.scope_metrics {
                for m in &sm.metrics {
                    if let Some(metric::Data::Sum(s)) = &m.data {
                        for p in &s.data_points {
                            v.push((
                                p.start_time_unix_nano,
                                p.time_unix_nano,
                                p.value,
                                s.aggregation_temporality,
                            ));
                        }
                    }
                }
            }
        }
        v
    }

    #[test]
    fn deltas_add_up_from_the_first_start() {
        let t = Telemetry::default();
        let mut d = DeltaToCumulative::new(10, Duration::from_secs(60));
        d.accept(delta_sum(5, 10, 20, "/a"), &t);
        d.accept(delta_sum(3, 20, 30, "/a"), &t);
        assert_eq!(
            sums(&d.collect(&t)),
            [(10, 30, Some(number_data_point::Value::AsInt(8)), CUMULATIVE)]
        );
        d.accept(delta_sum(2, 30, 40, "/a"), &t);
        assert_eq!(
            sums(&d.collect(&t)),
            [(10, 40, Some(number_data_point::Value::AsInt(10)), CUMULATIVE)]
        );
    }

    #[test]
    fn series_limit_refuses_new_series() {
        let t = Telemetry::default();
        let mut d = DeltaToCumulative::new(1, Duration::from_secs(60));
        assert_eq!(d.accept(delta_sum(1, 1, 2, "/a"), &t), 0);
        assert_eq!(d.accept(delta_sum(1, 1, 2, "/b"), &t), 1);
        assert_eq!(d.len(), 1);
        assert_eq!(t.snapshot().dropped("otlp_in_series_limit"), 1);
    }

    fn delta_hist(counts: Vec<u64>, count: u64, time: u64) -> ExportMetricsServiceRequest {
        let mut r = delta_sum(0, 1, time, "/a");
        r.resource_metrics[0].scope_metrics[0].metrics[0].data =
            Some(metric::Data::Histogram(Histogram {
                data_points: vec![HistogramDataPoint {
                    attributes: vec![kv("route", "/a")],
                    start_time_unix_nano: 1,
                    time_unix_nano: time,
                    count,
                    sum: Some(1.0),
                    bucket_counts: counts,
                    explicit_bounds: vec![10.0],
                    ..Default::default()
                }],
                aggregation_temporality: DELTA,
            }));
        r
    }

    #[test]
    fn hostile_histogram_counts_saturate_instead_of_overflowing() {
        let t = Telemetry::default();
        let mut d = DeltaToCumulative::new(10, Duration::from_secs(60));
        d.accept(delta_hist(vec![u64::MAX, 1], u64::MAX, 2), &t);
        d.accept(delta_hist(vec![5, u64::MAX], 7, 3), &t);
        let out = d.collect(&t);
        let Some(metric::Data::Histogram(h)) = &out[0].scope_metrics[0].metrics[0].data else {
            panic!("a histogram: {out:?}");
        };
        assert_eq!(h.data_points[0].bucket_counts, [u64::MAX, u64::MAX]);
        assert_eq!(h.data_points[0].count, u64::MAX);
    }

    #[test]
    fn stale_series_expire() {
        let t = Telemetry::default();
        let mut d = DeltaToCumulative::new(10, Duration::ZERO);
        d.accept(delta_sum(1, 1, 2, "/a"), &t);
        assert!(d.collect(&t).is_empty());
        assert!(d.is_empty());
    }
}
