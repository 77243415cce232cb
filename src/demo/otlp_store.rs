//! The embedded new backend: an OTLP/gRPC receiver (tonic `MetricsService`) that stores what it
//! receives as Prometheus series, queryable through the comparator's [`QueryAdapter`] with the
//! PromQL subset of [`super::promql`].
//!
//! # Naming (as VictoriaMetrics with `-opentelemetry.usePrometheusNaming`)
//! Names and labels come from [`dualmetrics_model::naming_map`]: a monotonic sum becomes
//! `<name>[_<unit>]_total`, a gauge or non-monotonic sum `<name>[_<unit>]`, an explicit-bucket
//! histogram `<base>_bucket{le="…"}` (cumulative per bound, `+Inf` last), `<base>_sum` and
//! `<base>_count`. Resource attributes (`service.name` → `service_name`) and point attributes
//! become labels; a point attribute wins over a resource attribute of the same name.
//!
//! # Values
//! Stored as cumulative values at the point's `time_unix_nano` (milliseconds). A delta sum or
//! histogram is added to the series' previous value, so the store is cumulative either way.
//! Exponential histograms and summaries are not stored; they are counted in
//! [`OtlpStats::unsupported_points`].
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{SystemTime, UNIX_EPOCH};

use dualmetrics_compare::{QueryAdapter, QueryError, Series, TimeRange};
use dualmetrics_model::naming_map::{
    histogram_series, otel_label, otel_series_base, HistogramPart,
};
use dualmetrics_model::otlp::{points, Point, PointKind, PointValue, Temporality};
use dualmetrics_model::MetricKind;
use opentelemetry_proto::tonic::collector::metrics::v1::metrics_service_server::{
    MetricsService, MetricsServiceServer,
};
use opentelemetry_proto::tonic::collector::metrics::v1::{
    ExportMetricsServiceRequest, ExportMetricsServiceResponse,
};

use super::error::DemoError;
use super::promql::{self, Labels, Matcher, SampleSource};

/// What the receiver has seen.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct OtlpStats {
    /// Export requests accepted.
    pub requests: u64,
    /// Samples stored (one per series per point).
    pub samples: u64,
    /// Points of kinds this store does not keep (exponential histograms, summaries).
    pub unsupported_points: u64,
}

#[derive(Default)]
struct Inner {
    series: Mutex<BTreeMap<Labels, Vec<(i64, f64)>>>,
    requests: AtomicU64,
    samples: AtomicU64,
    unsupported: AtomicU64,
    prometheus_naming: bool,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// The embedded OTLP receiver and Prometheus store. Stops serving when dropped.
pub struct OtlpStore {
    inner: Arc<Inner>,
    addr: SocketAddr,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    runtime: Option<tokio::runtime::Runtime>,
}

struct Service(Arc<Inner>);

#[tonic::async_trait]
impl MetricsService for Service {
    async fn export(
        &self,
        request: tonic::Request<ExportMetricsServiceRequest>,
    ) -> Result<tonic::Response<ExportMetricsServiceResponse>, tonic::Status> {
        self.0.ingest(&request.into_inner());
        Ok(tonic::Response::new(ExportMetricsServiceResponse::default()))
    }
}

impl OtlpStore {
    /// Binds `127.0.0.1:0` and serves OTLP/gRPC on a small runtime of its own.
    ///
    /// # Errors
    /// The listener or the runtime cannot be created.
    pub fn start() -> Result<OtlpStore, DemoError> {
        let setup = |what: &str, e: std::io::Error| DemoError::Setup(format!("{what}: {e}"));
        let listener = std::net::TcpListener::bind(("127.0.0.1", 0))
            .map_err(|e| setup("bind the OTLP receiver", e))?;
        let addr = listener.local_addr().map_err(|e| setup("OTLP receiver address", e))?;
        listener.set_nonblocking(true).map_err(|e| setup("OTLP listener non-blocking", e))?;
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name("demo-otlp-rx")
            .enable_all()
            .build()
            .map_err(|e| setup("OTLP receiver runtime", e))?;
        let inner = Arc::new(Inner { prometheus_naming: true, ..Inner::default() });
        let service = MetricsServiceServer::from_arc(Arc::new(Service(Arc::clone(&inner))));
        let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
        let listener = {
            let _guard = runtime.enter();
            tokio::net::TcpListener::from_std(listener)
                .map_err(|e| setup("register the OTLP listener", e))?
        };
        runtime.spawn(async move {
            let incoming = tonic::transport::server::TcpIncoming::from(listener);
            let _ = tonic::transport::Server::builder()
                .add_service(service)
                .serve_with_incoming_shutdown(incoming, async {
                    let _ = stop_rx.await;
                })
                .await;
        });
        Ok(OtlpStore { inner, addr, stop: Some(stop_tx), runtime: Some(runtime) })
    }

    /// The OTLP/gRPC endpoint to give an exporter: `http://127.0.0.1:PORT`.
    pub fn endpoint(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Counters of what was received and stored.
    pub fn stats(&self) -> OtlpStats {
        OtlpStats {
            requests: self.inner.requests.load(Relaxed),
            samples: self.inner.samples.load(Relaxed),
            unsupported_points: self.inner.unsupported.load(Relaxed),
        }
    }

    /// The distinct metric names stored.
    pub fn metric_names(&self) -> Vec<String> {
        let mut names: Vec<String> =
            lock(&self.inner.series).keys().filter_map(|l| l.get("__name__").cloned()).collect();
        names.dedup();
        names
    }
}

impl Drop for OtlpStore {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(rt) = self.runtime.take() {
            rt.shutdown_timeout(std::time::Duration::from_secs(1));
        }
    }
}

fn now_ms() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis() as i64)
}

/// Formats a bucket bound the way Prometheus writes `le` (`5`, `0.25`, `+Inf`).
fn le_text(bound: f64) -> String {
    if bound == f64::INFINITY {
        "+Inf".to_owned()
    } else {
        format!("{bound}")
    }
}

impl Inner {
    /// The labels of one series: resource attributes, the point's attributes over them, and
    /// the name.
    fn labels(&self, point: &Point, name: &str) -> Labels {
        let prom = self.prometheus_naming;
        let mut l: Labels =
            point.resource.iter().map(|(k, v)| (otel_label(k, prom), v.clone())).collect();
        for (k, v) in &point.attributes {
            l.insert(otel_label(k, prom), v.clone());
        }
        l.insert("__name__".to_owned(), name.to_owned());
        l
    }

    /// Stores the request's points (flattened by [`dualmetrics_model::otlp::points`]) as
    /// Prometheus samples.
    fn ingest(&self, req: &ExportMetricsServiceRequest) {
        self.requests.fetch_add(1, Relaxed);
        let mut out: Vec<(Labels, i64, f64, bool)> = Vec::new();
        let prom = self.prometheus_naming;
        for p in points(std::slice::from_ref(req)) {
            let t = if p.time_unix_nano == 0 {
                now_ms()
            } else {
                (p.time_unix_nano / 1_000_000) as i64
            };
            let delta = p.temporality == Some(Temporality::Delta);
            match (&p.kind, &p.value) {
                (PointKind::Sum { monotonic }, _) => {
                    let kind =
                        if *monotonic { MetricKind::Counter } else { MetricKind::UpDownCounter };
                    let name = otel_series_base(&p.metric, &p.unit, kind, prom);
                    if let Some(v) = p.as_f64() {
                        out.push((self.labels(&p, &name), t, v, delta));
                    }
                }
                (PointKind::Gauge, _) => {
                    let name = otel_series_base(&p.metric, &p.unit, MetricKind::Gauge, prom);
                    if let Some(v) = p.as_f64() {
                        out.push((self.labels(&p, &name), t, v, false));
                    }
                }
                (
                    PointKind::Histogram,
                    PointValue::Histogram { count, sum, bounds, bucket_counts, .. },
                ) => {
                    let base = otel_series_base(&p.metric, &p.unit, MetricKind::Histogram, prom);
                    let part = |part| histogram_series(&base, part);
                    out.push((
                        self.labels(&p, &part(HistogramPart::Count)),
                        t,
                        *count as f64,
                        delta,
                    ));
                    out.push((
                        self.labels(&p, &part(HistogramPart::Sum)),
                        t,
                        sum.unwrap_or(0.0),
                        delta,
                    ));
                    let mut cumulative = 0u64;
                    for (i, c) in bucket_counts.iter().enumerate() {
                        cumulative += c;
                        let bound = bounds.get(i).copied().unwrap_or(f64::INFINITY);
                        let mut l = self.labels(&p, &part(HistogramPart::Bucket));
                        l.insert("le".to_owned(), le_text(bound));
                        out.push((l, t, cumulative as f64, delta));
                    }
                }
                _ => {
                    self.unsupported.fetch_add(1, Relaxed);
                }
            }
        }
        let mut series = lock(&self.series);
        let stored = out.len() as u64;
        for (labels, t, v, delta) in out {
            let points = series.entry(labels).or_default();
            let v = if delta { points.last().map_or(0.0, |p| p.1) + v } else { v };
            // keep time order: an out-of-order point replaces nothing, it is inserted in place
            let at = points.partition_point(|p| p.0 <= t);
            points.insert(at, (t, v));
        }
        self.samples.fetch_add(stored, Relaxed);
    }
}

impl SampleSource for Inner {
    fn select(&self, matchers: &[Matcher]) -> Vec<(Labels, Vec<(i64, f64)>)> {
        lock(&self.series)
            .iter()
            .filter(|(l, _)| matchers.iter().all(|m| m.matches(l)))
            .map(|(l, p)| (l.clone(), p.clone()))
            .collect()
    }
}

fn rejected(query: &str, message: String) -> QueryError {
    QueryError::Rejected {
        url: "embedded prometheus store".to_owned(),
        error_type: "bad_data".to_owned(),
        message: format!("{message} (query {query:?})"),
    }
}

fn collect(rows: Vec<(Labels, i64, f64)>) -> Vec<Series> {
    let mut by: BTreeMap<Labels, Vec<(i64, f64)>> = BTreeMap::new();
    for (mut l, t, v) in rows {
        l.remove("__name__");
        by.entry(l).or_default().push((t, v));
    }
    by.into_iter().map(|(labels, points)| Series { labels, points }).collect()
}

impl QueryAdapter for OtlpStore {
    fn describe(&self) -> String {
        format!("embedded otlp+prometheus grpc://{}", self.addr)
    }

    fn range(&self, query: &str, range: &TimeRange) -> Result<Vec<Series>, QueryError> {
        let expr = promql::parse(query).map_err(|m| rejected(query, m))?;
        let mut rows = Vec::new();
        for t in range.grid() {
            for (l, v) in promql::eval(&expr, self.inner.as_ref(), t * 1000) {
                rows.push((l, t, v));
            }
        }
        Ok(collect(rows))
    }

    fn instant(&self, query: &str, at: i64) -> Result<Vec<Series>, QueryError> {
        let expr = promql::parse(query).map_err(|m| rejected(query, m))?;
        let rows = promql::eval(&expr, self.inner.as_ref(), at * 1000)
            .into_iter()
            .map(|(l, v)| (l, at, v));
        Ok(collect(rows.collect()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use dualmetrics::{DualMetrics, Mode, Protocol};
    use std::time::Duration;

    #[test]
    fn sdk_exports_become_prometheus_series_answering_the_generated_queries() {
        let store = OtlpStore::start().unwrap();
        let m = DualMetrics::builder()
            .with_env_vars(Vec::<(String, String)>::new())
            .with_mode(Mode::Otlp)
            .with_service_name("t")
            .with_setting("self_metrics", "false")
            .with_otlp_endpoint(&store.endpoint())
            .with_otlp_protocol(Protocol::Grpc)
            .build()
            .unwrap();
        let c = m.counter("http.requests").build().unwrap();
        c.add(3, &[("route", "/cart")]);
        c.add(4, &[("route", "/pay")]);
        let h = m.histogram("http.latency").with_unit("ms").build().unwrap();
        for v in [10.0, 20.0, 300.0] {
            h.record(v, &[]);
        }
        m.flush().unwrap();
        let now = now_ms() / 1000 + 1;
        let one = |q: &str| -> Vec<Series> { store.instant(q, now).unwrap() };
        let total = one("sum by (route) (http_requests_total)");
        let by_route: BTreeMap<_, _> =
            total.iter().map(|s| (s.labels["route"].clone(), s.points[0].1)).collect();
        assert_eq!(by_route, BTreeMap::from([("/cart".into(), 3.0), ("/pay".into(), 4.0)]));
        let mean = one(
            "sum (increase(http_latency_milliseconds_sum[1m])) / sum (increase(http_latency_milliseconds_count[1m]))",
        );
        assert_eq!(mean[0].points[0].1, 110.0);
        let p100 = one(
            "histogram_quantile(1, sum by (le) (increase(http_latency_milliseconds_bucket[1m])))",
        );
        assert_eq!(p100[0].points[0].1, 500.0, "upper bound of the (250, 500] bucket");
        assert!(store.instant("rate(http_requests_total[1m])", now).is_err());
        m.shutdown(Duration::from_secs(5)).unwrap();
        assert_eq!(store.stats().unsupported_points, 0);
    }
}
