//! The OTLP pipeline: an `opentelemetry_sdk` meter provider with a periodic reader over the
//! `opentelemetry-otlp` exporter (tonic gRPC or HTTP/protobuf), wrapped so that every export is
//! timed and counted in self-telemetry.
use std::collections::HashMap;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;
use std::time::{Duration, Instant};

use opentelemetry::metrics::{Meter, MeterProvider as _};
use opentelemetry::KeyValue;
use opentelemetry_otlp::{WithExportConfig, WithHttpConfig, WithTonicConfig};
use opentelemetry_sdk::error::OTelSdkResult;
use opentelemetry_sdk::metrics::data::{AggregatedMetrics, MetricData, ResourceMetrics};
use opentelemetry_sdk::metrics::exporter::PushMetricExporter;
use opentelemetry_sdk::metrics::{
    Aggregation, Instrument, InstrumentKind, PeriodicReader, SdkMeterProvider, Stream,
};
use opentelemetry_sdk::Resource;
use parking_lot::Mutex;

use crate::config::{Config, HistogramAggregation, Protocol, Temporality};
use crate::error::BuildError;
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

/// An exporter decorator that records the outcome, size and latency of every export.
struct Observed<E> {
    inner: E,
    telemetry: Arc<Telemetry>,
}

impl<E: PushMetricExporter> PushMetricExporter for Observed<E> {
    async fn export(&self, metrics: &ResourceMetrics) -> OTelSdkResult {
        let points = count_points(metrics);
        let start = Instant::now();
        let result = self.inner.export(metrics).await;
        let stats = &self.telemetry.otlp;
        stats.last_export_micros.store(start.elapsed().as_micros() as u64, Relaxed);
        match &result {
            Ok(()) => {
                stats.exports_ok.fetch_add(1, Relaxed);
                stats.points_exported.fetch_add(points, Relaxed);
            }
            Err(e) => {
                stats.exports_failed.fetch_add(1, Relaxed);
                if is_timeout(e) {
                    stats.exports_timed_out.fetch_add(1, Relaxed);
                }
                stats.points_failed.fetch_add(points, Relaxed);
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
        self.inner.temporality()
    }
}

/// Per-instrument decisions the view reads when the SDK creates the instrument's stream.
#[derive(Debug, Clone)]
pub(crate) struct StreamPlan {
    pub boundaries: Vec<f64>,
    pub cardinality_limit: usize,
}

/// The OTLP pipeline.
pub(crate) struct OtelBackend {
    provider: SdkMeterProvider,
    meter: Meter,
    plans: Arc<Mutex<HashMap<String, StreamPlan>>>,
    runtime: Mutex<Option<tokio::runtime::Runtime>>,
}

impl OtelBackend {
    pub(crate) fn start(config: &Config, telemetry: Arc<Telemetry>) -> Result<Self, BuildError> {
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
        let ca_pem = match &otlp.ca_file {
            Some(path) => Some(
                std::fs::read(path).map_err(|e| backend_err(format!("{}: {e}", path.display())))?,
            ),
            None => None,
        };
        let exporter = match otlp.protocol {
            Protocol::Grpc => {
                let _guard = runtime.enter();
                let mut metadata = tonic::metadata::MetadataMap::new();
                for (k, v) in &otlp.headers {
                    let key =
                        tonic::metadata::MetadataKey::from_bytes(k.to_ascii_lowercase().as_bytes())
                            .map_err(|_| backend_err(format!("invalid header name {k:?}")))?;
                    let value = v
                        .parse()
                        .map_err(|_| backend_err(format!("invalid value for header {k:?}")))?;
                    metadata.insert(key, value);
                }
                let mut builder = opentelemetry_otlp::MetricExporter::builder()
                    .with_tonic()
                    .with_endpoint(otlp.endpoint.clone())
                    .with_timeout(otlp.timeout)
                    .with_metadata(metadata)
                    .with_temporality(temporality);
                if otlp.endpoint.starts_with("https://") {
                    let mut tls = tonic::transport::ClientTlsConfig::new();
                    tls = match &ca_pem {
                        Some(pem) => {
                            tls.ca_certificate(tonic::transport::Certificate::from_pem(pem))
                        }
                        None => tls.with_native_roots(),
                    };
                    builder = builder.with_tls_config(tls);
                }
                builder.build().map_err(backend_err)?
            }
            Protocol::HttpProtobuf => {
                let client = http_client(otlp.timeout, ca_pem)?;
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
        };
        let reader = PeriodicReader::builder(Observed { inner: exporter, telemetry })
            .with_interval(otlp.export_interval)
            .build();

        let mut resource = vec![KeyValue::new("service.name", config.service.clone())];
        resource.extend(otlp.resource.iter().map(|(k, v)| KeyValue::new(k.clone(), v.clone())));
        let plans: Arc<Mutex<HashMap<String, StreamPlan>>> = Arc::default();
        let view_plans = Arc::clone(&plans);
        let exponential = otlp.histogram == HistogramAggregation::Exponential;
        let view = move |i: &Instrument| -> Option<Stream> {
            let plan = view_plans.lock().get(i.name()).cloned()?;
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
        };
        let provider = SdkMeterProvider::builder()
            .with_resource(Resource::builder_empty().with_attributes(resource).build())
            .with_reader(reader)
            .with_view(view)
            .build();
        let meter = provider.meter(SCOPE);
        Ok(OtelBackend { provider, meter, plans, runtime: Mutex::new(Some(runtime)) })
    }

    /// Records the stream decisions for `name`; call before creating the instrument.
    pub(crate) fn plan(&self, name: &str, plan: StreamPlan) {
        self.plans.lock().insert(name.to_owned(), plan);
    }

    pub(crate) fn meter(&self) -> &Meter {
        &self.meter
    }

    pub(crate) fn force_flush(&self) -> Result<(), String> {
        self.provider.force_flush().map_err(|e| e.to_string())
    }

    /// Collects and exports one last time, then releases the exporter and its runtime.
    pub(crate) fn shutdown(&self, deadline: Duration) -> Result<(), String> {
        let result = self.provider.shutdown_with_timeout(deadline).map_err(|e| e.to_string());
        if let Some(rt) = self.runtime.lock().take() {
            rt.shutdown_background();
        }
        result
    }
}

/// A blocking HTTP client for the HTTP exporter (native TLS: system roots plus the optional CA),
/// built off any async context (reqwest's blocking client must not be created inside a tokio
/// runtime).
fn http_client(
    timeout: Duration,
    ca_pem: Option<Vec<u8>>,
) -> Result<reqwest::blocking::Client, BuildError> {
    std::thread::spawn(move || {
        let mut builder = reqwest::blocking::Client::builder().timeout(timeout);
        if let Some(pem) = ca_pem {
            let cert = reqwest::Certificate::from_pem(&pem).map_err(backend_err)?;
            builder = builder.add_root_certificate(cert);
        }
        builder.build().map_err(backend_err)
    })
    .join()
    .map_err(|_| backend_err("HTTP client construction panicked"))?
}
