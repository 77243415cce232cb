//! The OTLP pipeline: an `opentelemetry_sdk` meter provider with a periodic reader over the
//! `opentelemetry-otlp` exporter (tonic gRPC or HTTP/protobuf), wrapped so that every export is
//! timed and counted in self-telemetry.
use std::collections::HashMap;
use std::sync::atomic::{AtomicU8, Ordering::Relaxed};
use std::sync::{Arc, Weak};
use std::time::{Duration, Instant};

use opentelemetry::metrics::{Meter, MeterProvider as _};
use opentelemetry::KeyValue;
use opentelemetry_otlp::WithExportConfig;
#[cfg(feature = "http-proto")]
use opentelemetry_otlp::WithHttpConfig;
#[cfg(feature = "grpc")]
use opentelemetry_otlp::WithTonicConfig;
use opentelemetry_sdk::error::OTelSdkResult;
use opentelemetry_sdk::metrics::data::{AggregatedMetrics, MetricData, ResourceMetrics};
use opentelemetry_sdk::metrics::exporter::PushMetricExporter;
use opentelemetry_sdk::metrics::{
    Aggregation, Instrument, InstrumentKind, PeriodicReader, SdkMeterProvider, Stream,
};
use opentelemetry_sdk::Resource;
use parking_lot::Mutex;

mod attributes;
mod kinds;

use crate::backend::OnCollect;
use crate::config::{Config, HistogramAggregation, Protocol, Temporality};
use crate::error::{BuildError, ShutdownError};
use crate::telemetry::Telemetry;

/// Instrumentation scope name of every instrument the SDK creates.
pub(crate) const SCOPE: &str = "dualmetrics";

fn backend_err(reason: impl std::fmt::Display) -> BuildError {
    BuildError::Backend { backend: "otlp", reason: reason.to_string() }
}

/// Counts the data points of one export.
fn count_points(rm: &ResourceMetrics) -> u64 {
    fn n<T>(d: &MetricData<T>) -> usize {
        match d {
            MetricData::Gauge(g) => g.data_points().count(),
            MetricData::Sum(s) => s.data_points().count(),
            MetricData::Histogram(h) => h.data_points().count(),
            MetricData::ExponentialHistogram(e) => e.data_points().count(),
        }
    }
    rm.scope_metrics()
        .flat_map(|sm| sm.metrics())
        .map(|m| match m.data() {
            AggregatedMetrics::F64(d) => n(d),
            AggregatedMetrics::U64(d) => n(d),
            AggregatedMetrics::I64(d) => n(d),
        } as u64)
        .sum()
}

/// Whether an export error is a timeout: the SDK's own `Timeout`, or the exporter's rendering of
/// a gRPC `DeadlineExceeded` / tonic "Timeout expired" (the OTLP exporter flattens statuses into
/// `InternalFailure` text), or an HTTP client timeout.
fn is_timeout(e: &opentelemetry_sdk::error::OTelSdkError) -> bool {
    use opentelemetry_sdk::error::OTelSdkError;
    match e {
        OTelSdkError::Timeout(_) => true,
        other => {
            let text = other.to_string().to_ascii_lowercase();
            text.contains("deadlineexceeded")
                || text.contains("timeout")
                || text.contains("timed out")
        }
    }
}

/// Name of the observable gauge whose callback runs the [`OnCollect`] hooks. It never observes
/// anything, so it never appears in an export.
const COLLECT_HOOK: &str = "dualmetrics.internal.collect_hook";

fn run_hooks(hooks: &Mutex<Vec<Weak<dyn OnCollect>>>) {
    let live: Vec<_> = {
        let mut list = hooks.lock();
        list.retain(|w| w.strong_count() > 0);
        list.iter().filter_map(Weak::upgrade).collect()
    };
    for hook in live {
        hook.on_collect();
    }
}

/// The temporality the exporter declares, as the reader asks for it: `opentelemetry_sdk` asks
/// the reader (which asks the exporter) once per instrument, when the instrument's aggregator is
/// created, and every exported metric then carries its own temporality. Setting this cell around
/// an instrument's creation (under [`OtelBackend::create_lock`]) gives each instrument its own
/// temporality inside one provider, one reader and one export.
#[derive(Clone)]
struct NextTemporality(Arc<AtomicU8>);

impl NextTemporality {
    const CUMULATIVE: u8 = 0;
    const DELTA: u8 = 1;

    fn set(&self, t: Temporality) {
        let v = match t {
            Temporality::Cumulative => Self::CUMULATIVE,
            Temporality::Delta => Self::DELTA,
        };
        self.0.store(v, Relaxed);
    }

    fn get(&self) -> opentelemetry_sdk::metrics::Temporality {
        match self.0.load(Relaxed) {
            Self::DELTA => opentelemetry_sdk::metrics::Temporality::Delta,
            _ => opentelemetry_sdk::metrics::Temporality::Cumulative,
        }
    }
}

/// An exporter decorator that records the outcome, size and latency of every export, and
/// declares the temporality of the instrument being created.
struct Observed<E> {
    inner: E,
    telemetry: Arc<Telemetry>,
    next_temporality: NextTemporality,
    /// The export interval: an export longer than it stretches the reader's cadence (the
    /// periodic reader waits for it), counted in `exports_over_interval`.
    interval: Duration,
}

impl<E: PushMetricExporter> PushMetricExporter for Observed<E> {
    async fn export(&self, metrics: &ResourceMetrics) -> OTelSdkResult {
        let points = count_points(metrics);
        let start = Instant::now();
        let result = self.inner.export(metrics).await;
        let stats = &self.telemetry.otlp;
        let took = start.elapsed();
        stats.last_export_micros.store(took.as_micros() as u64, Relaxed);
        if took > self.interval {
            stats.exports_over_interval.fetch_add(1, Relaxed);
        }
        match &result {
            Ok(()) => {
                stats.exports_ok.fetch_add(1, Relaxed);
                stats.points_exported.fetch_add(points, Relaxed);
            }
            Err(e) => {
                stats.exports_failed.fetch_add(1, Relaxed);
                stats.points_failed.fetch_add(points, Relaxed);
                if is_timeout(e) {
                    stats.exports_timed_out.fetch_add(1, Relaxed);
                    stats.points_timed_out.fetch_add(points, Relaxed);
                }
                *stats.last_error.lock() = Some(e.to_string());
            }
        }
        result
    }

    fn force_flush(&self) -> OTelSdkResult {
        self.inner.force_flush()
    }

    fn shutdown_with_timeout(&self, timeout: Duration) -> OTelSdkResult {
        self.inner.shutdown_with_timeout(timeout)
    }

    fn temporality(&self) -> opentelemetry_sdk::metrics::Temporality {
        self.next_temporality.get()
    }
}

/// Per-instrument decisions the view reads when the SDK creates the instrument's stream.
#[derive(Debug, Clone)]
pub(crate) struct StreamPlan {
    pub boundaries: Vec<f64>,
    pub cardinality_limit: usize,
}

/// The OTLP pipeline.
pub struct OtelBackend {
    provider: SdkMeterProvider,
    meter: Meter,
    plans: Arc<Mutex<HashMap<String, StreamPlan>>>,
    runtime: Mutex<Option<tokio::runtime::Runtime>>,
    next_temporality: NextTemporality,
    /// Serialises instrument creation, so `next_temporality` belongs to one instrument at a time.
    create_lock: Mutex<()>,
    /// Serialises explicit flushes, so that one flush's zero-point export (which leaves other
    /// series' totals out) never stands in for another flush's full export.
    flush_lock: Mutex<()>,
    global_temporality: Temporality,
    hooks: Arc<Mutex<Vec<Weak<dyn OnCollect>>>>,
    _collect_hook: opentelemetry::metrics::ObservableGauge<u64>,
    /// The configuration's `tags`, on every series' attributes.
    global_tags: Vec<(String, String)>,
    telemetry: Arc<Telemetry>,
}

impl OtelBackend {
    pub(crate) fn start(config: &Config, telemetry: Arc<Telemetry>) -> Result<Self, BuildError> {
        // reqwest is built with `rustls-no-provider` (one TLS stack, no aws-lc build): install
        // ring as the process default once, so that any reqwest client of the service finds a
        // provider too (an error only means one is installed already)
        let _ = rustls::crypto::ring::default_provider().install_default();
        let otlp = &config.otlp;
        // tonic needs a reactor: the exporter lives on a small runtime of our own, so the SDK
        // works the same whether or not the service runs tokio.
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name("dualmetrics-otlp")
            .enable_all()
            .build()
            .map_err(backend_err)?;
        let temporality = match otlp.temporality {
            Temporality::Cumulative => opentelemetry_sdk::metrics::Temporality::Cumulative,
            Temporality::Delta => opentelemetry_sdk::metrics::Temporality::Delta,
        };
        let exporter = build_exporter(otlp, temporality, &runtime)?;
        let next_temporality = NextTemporality(Arc::new(AtomicU8::new(0)));
        next_temporality.set(otlp.temporality);
        let observed = Observed {
            inner: exporter,
            telemetry: Arc::clone(&telemetry),
            next_temporality: next_temporality.clone(),
            interval: otlp.export_interval,
        };
        let reader = PeriodicReader::builder(observed).with_interval(otlp.export_interval).build();

        let mut resource = vec![KeyValue::new("service.name", config.service.clone())];
        resource.extend(otlp.resource.iter().map(|(k, v)| KeyValue::new(k.clone(), v.clone())));
        let plans: Arc<Mutex<HashMap<String, StreamPlan>>> = Arc::default();
        let exponential = otlp.histogram == HistogramAggregation::Exponential;
        let view = stream_view(Arc::clone(&plans), exponential);
        let provider = SdkMeterProvider::builder()
            .with_resource(Resource::builder_empty().with_attributes(resource).build())
            .with_reader(reader)
            .with_view(view)
            .build();
        let meter = provider.meter(SCOPE);
        // The SDK runs observable callbacks at the start of every collect, exported or not (an
        // export with no points is skipped, so an exporter hook would miss idle intervals).
        let hooks: Arc<Mutex<Vec<Weak<dyn OnCollect>>>> = Arc::default();
        let callback_hooks = Arc::clone(&hooks);
        let collect_hook = meter
            .u64_observable_gauge(COLLECT_HOOK)
            .with_description("internal: runs dualmetrics' collect hooks; never observes")
            .with_callback(move |_| run_hooks(&callback_hooks))
            .build();
        Ok(OtelBackend {
            provider,
            meter,
            plans,
            runtime: Mutex::new(Some(runtime)),
            next_temporality,
            create_lock: Mutex::new(()),
            flush_lock: Mutex::new(()),
            global_temporality: otlp.temporality,
            hooks,
            _collect_hook: collect_hook,
            global_tags: config.tags.clone(),
            telemetry,
        })
    }

    /// Creates an instrument whose points are exported with `temporality`, in the same
    /// provider, reader and export as every other instrument.
    ///
    /// `opentelemetry_sdk` 0.33 fixes temporality per reader, asking the reader once per
    /// instrument at creation (and every exported metric carries its own temporality, which the
    /// OTLP exporter copies onto the wire). The reader asks our exporter decorator, which answers
    /// with the temporality set here for the duration of the creation. Up-down counters stay
    /// cumulative under delta, as OpenTelemetry's own preference does.
    pub(crate) fn create<T>(&self, temporality: Temporality, build: impl FnOnce(&Meter) -> T) -> T {
        let _guard = self.create_lock.lock();
        self.next_temporality.set(temporality);
        let out = build(&self.meter);
        self.next_temporality.set(self.global_temporality);
        out
    }

    /// Calls `hook.on_collect()` at the start of every collect, until the hook is dropped.
    pub(crate) fn add_collect_hook(&self, hook: Weak<dyn OnCollect>) {
        self.hooks.lock().push(hook);
    }

    /// Records the stream decisions for `name`; call before creating the instrument.
    pub(crate) fn plan(&self, name: &str, plan: StreamPlan) {
        self.plans.lock().insert(name.to_owned(), plan);
    }

    /// Collects and exports now. When a new cumulative series' zero point is pending, that
    /// export carries the zero point and a second one the series' total, so that everything
    /// recorded before the call has been exported when it returns.
    fn force_flush(&self) -> Result<(), String> {
        let _one_flush_at_a_time = self.flush_lock.lock();
        if self.telemetry.zero_points_pending.load(Relaxed) > 0 {
            self.export_zero_points().map_err(|e| e.to_string())?;
        }
        self.provider.force_flush().map_err(|e| e.to_string())
    }

    /// The first export of a flush that has zero points pending: cumulative counters observe
    /// only their new series (their zero points), so that a flush costs one full collect plus
    /// one of the new series rather than two full collects (at 1M series, 100k of them new, the
    /// flush took twice the SDK's collect time). The other series' totals are in the export
    /// that follows; a periodic export running meanwhile may miss them too, and exports them
    /// at its next interval (they are running totals).
    fn export_zero_points(&self) -> opentelemetry_sdk::error::OTelSdkResult {
        self.telemetry.zero_points_only.store(true, Relaxed);
        let result = self.provider.force_flush();
        self.telemetry.zero_points_only.store(false, Relaxed);
        result
    }

    /// Collects and exports one last time (after an export of the pending zero points, if any),
    /// then releases the exporter and its runtime.
    fn stop(&self, deadline: Duration) -> Result<(), String> {
        let start = Instant::now();
        // A flush under way (on a hung collector it lasts up to the export timeout) is waited
        // for within the deadline only; past it the shutdown goes on without the lock.
        let _no_flush_meanwhile = self.flush_lock.try_lock_for(deadline);
        if self.telemetry.zero_points_pending.load(Relaxed) > 0 {
            // A failed zero-point export costs Prometheus the first interval, nothing else: the
            // final export below still carries the totals.
            let _ = self.export_zero_points();
        }
        let deadline = deadline.saturating_sub(start.elapsed());
        let result = self.provider.shutdown_with_timeout(deadline).map_err(|e| e.to_string());
        if let Some(rt) = self.runtime.lock().take() {
            rt.shutdown_background();
        }
        result
    }
}

impl crate::backend::Backend for OtelBackend {
    const NAME: &'static str = "otlp";

    fn flush(&self) -> Result<(), ShutdownError> {
        self.force_flush().map_err(|reason| ShutdownError::Internal { backend: "otlp", reason })
    }

    fn shutdown(&self, deadline: Duration) -> Result<(), ShutdownError> {
        self.stop(deadline).map_err(|reason| {
            // One cause, one error: the OpenTelemetry reader's own deadline ends the same
            // export as ours, racing it, and reports itself as an internal "Timeout(…)".
            if reason.to_ascii_lowercase().contains("timeout") {
                ShutdownError::Timeout { backend: "otlp", deadline }
            } else {
                ShutdownError::Internal { backend: "otlp", reason }
            }
        })
    }
}

/// The OTLP exporter the configuration asks for: gRPC (inside `runtime`, which tonic needs) or
/// HTTP/protobuf, with the private CA and the client identity read from their files.
fn build_exporter(
    otlp: &crate::config::OtlpConfig,
    temporality: opentelemetry_sdk::metrics::Temporality,
    #[cfg_attr(not(feature = "grpc"), allow(unused_variables))] runtime: &tokio::runtime::Runtime,
) -> Result<opentelemetry_otlp::MetricExporter, BuildError> {
    let read = |path: &std::path::Path| {
        std::fs::read(path).map_err(|e| backend_err(format!("{}: {e}", path.display())))
    };
    let ca_pem = otlp.ca_file.as_deref().map(read).transpose()?;
    let identity = match &otlp.client_identity {
        Some((cert, key)) => Some((read(cert)?, read(key)?)),
        None => None,
    };
    let exporter = match otlp.protocol {
        #[cfg(feature = "grpc")]
        Protocol::Grpc => {
            let _guard = runtime.enter();
            grpc_exporter(otlp, temporality, ca_pem, identity)?
        }
        #[cfg(feature = "http-proto")]
        Protocol::HttpProtobuf => {
            let client = http_client(otlp.timeout, ca_pem, identity)?;
            opentelemetry_otlp::MetricExporter::builder()
                .with_http()
                .with_protocol(opentelemetry_otlp::Protocol::HttpBinary)
                .with_endpoint(otlp.endpoint.clone())
                .with_timeout(otlp.timeout)
                .with_headers(otlp.headers.iter().cloned().collect())
                .with_http_client(client)
                .with_temporality(temporality)
                .build()
                .map_err(backend_err)?
        }
        // resolve() refuses a configured protocol whose feature is off
        #[allow(unreachable_patterns)]
        other => {
            return Err(backend_err(format!(
                "{other:?}: this build of dualmetrics lacks that transport's feature"
            )))
        }
    };
    Ok(exporter)
}

/// The view that gives each instrument the stream its registration planned (cardinality limit,
/// histogram boundaries or the exponential aggregation): read from `plans` when the SDK creates
/// the instrument's stream.
fn stream_view(
    plans: Arc<Mutex<HashMap<String, StreamPlan>>>,
    exponential: bool,
) -> impl Fn(&Instrument) -> Option<Stream> + Send + Sync + 'static {
    move |i: &Instrument| -> Option<Stream> {
        let plan = plans.lock().get(i.name()).cloned()?;
        let mut stream = Stream::builder().with_cardinality_limit(plan.cardinality_limit);
        if i.kind() == InstrumentKind::Histogram {
            stream = stream.with_aggregation(if exponential {
                Aggregation::Base2ExponentialHistogram {
                    max_size: 160,
                    max_scale: 20,
                    record_min_max: true,
                }
            } else {
                Aggregation::ExplicitBucketHistogram {
                    boundaries: plan.boundaries,
                    record_min_max: true,
                }
            });
        }
        stream.build().ok()
    }
}

/// The gRPC exporter (tonic over rustls for `https://` endpoints: the private CA when given,
/// else the roots the `tls-roots` / `tls-webpki-roots` feature selects; the client identity
/// for mutual TLS). Called inside the exporter's runtime.
#[cfg(feature = "grpc")]
fn grpc_exporter(
    otlp: &crate::config::OtlpConfig,
    temporality: opentelemetry_sdk::metrics::Temporality,
    ca_pem: Option<Vec<u8>>,
    identity: Option<(Vec<u8>, Vec<u8>)>,
) -> Result<opentelemetry_otlp::MetricExporter, BuildError> {
    let mut metadata = tonic::metadata::MetadataMap::new();
    for (k, v) in otlp.headers.iter() {
        let key = tonic::metadata::MetadataKey::from_bytes(k.to_ascii_lowercase().as_bytes())
            .map_err(|_| backend_err(format!("invalid header name {k:?}")))?;
        let value =
            v.parse().map_err(|_| backend_err(format!("invalid value for header {k:?}")))?;
        metadata.insert(key, value);
    }
    // The channel is ours: HTTP/2 keepalive PINGs find a connection that died without closing
    // (the exporter would otherwise send every later request into it and never reconnect).
    let mut endpoint = tonic::transport::Endpoint::from_shared(otlp.endpoint.clone())
        .map_err(|e| backend_err(format!("otlp.endpoint: {e}")))?
        .timeout(otlp.timeout)
        .connect_timeout(otlp.timeout);
    if let Some(interval) = otlp.keepalive {
        endpoint = endpoint
            .http2_keep_alive_interval(interval)
            .keep_alive_timeout(otlp.timeout.min(interval).max(Duration::from_millis(100)))
            .keep_alive_while_idle(true);
    }
    if otlp.endpoint.starts_with("https://") {
        let mut tls = tonic::transport::ClientTlsConfig::new();
        tls = match &ca_pem {
            Some(pem) => tls.ca_certificate(tonic::transport::Certificate::from_pem(pem)),
            #[cfg(feature = "tls-roots")]
            None => tls.with_native_roots(),
            #[cfg(all(not(feature = "tls-roots"), feature = "tls-webpki-roots"))]
            None => tls.with_webpki_roots(),
            #[cfg(not(any(feature = "tls-roots", feature = "tls-webpki-roots")))]
            None => tls,
        };
        if let Some((cert, key)) = identity {
            tls = tls.identity(tonic::transport::Identity::from_pem(cert, key));
        }
        endpoint = endpoint.tls_config(tls).map_err(backend_err)?;
    }
    opentelemetry_otlp::MetricExporter::builder()
        .with_tonic()
        .with_channel(endpoint.connect_lazy())
        .with_timeout(otlp.timeout)
        .with_metadata(metadata)
        .with_temporality(temporality)
        .build()
        .map_err(backend_err)
}

/// A blocking HTTP client for the HTTP exporter (rustls: the system's roots plus the optional
/// CA, and the client identity for mutual TLS), built off any async context (reqwest's blocking
/// client must not be created inside a tokio runtime).
#[cfg(feature = "http-proto")]
fn http_client(
    timeout: Duration,
    ca_pem: Option<Vec<u8>>,
    identity: Option<(Vec<u8>, Vec<u8>)>,
) -> Result<reqwest::blocking::Client, BuildError> {
    std::thread::spawn(move || {
        let mut builder =
            reqwest::blocking::Client::builder().tls_backend_rustls().timeout(timeout);
        if let Some(pem) = ca_pem {
            let certs = reqwest::Certificate::from_pem_bundle(&pem).map_err(backend_err)?;
            builder = builder.tls_certs_merge(certs);
        }
        if let Some((mut cert, key)) = identity {
            // reqwest reads the certificate chain and the key from one PEM buffer
            cert.push(b'\n');
            cert.extend_from_slice(&key);
            builder = builder.identity(reqwest::Identity::from_pem(&cert).map_err(backend_err)?);
        }
        builder.build().map_err(backend_err)
    })
    .join()
    .map_err(|_| backend_err("HTTP client construction panicked"))?
}
