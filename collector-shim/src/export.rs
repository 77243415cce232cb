//! Export: OTLP over gRPC (tonic `MetricsServiceClient`) or HTTP/protobuf (`POST`, reqwest).
//! Timeouts and retries live here and only here.
//!
//! Each request gets up to `1 + max_retries` attempts, each bounded by `timeout_ms`, with an
//! exponential backoff starting at `retry_backoff_ms`. gRPC `InvalidArgument` and HTTP 4xx
//! (except 408/429) are not retried: the payload will not get better. A request that fails every
//! attempt is counted as `export_failed` drops (its data points), never kept: the next cumulative
//! export carries the totals again, so one lost request loses no counts.
use crate::config::{ExportConfig, Protocol};
use crate::error::{BuildError, ExportError};
use crate::telemetry::{DropReason, Telemetry};
use opentelemetry_proto::tonic::collector::metrics::v1::metrics_service_client::MetricsServiceClient;
use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest;
use opentelemetry_proto::tonic::metrics::v1::metric;
use prost::Message;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::mpsc;
use tonic::transport::{Channel, Endpoint};

/// An OTLP client for one endpoint.
#[derive(Debug, Clone)]
pub enum Exporter {
    /// gRPC.
    Grpc(MetricsServiceClient<Channel>),
    /// HTTP/protobuf to the URL.
    Http(reqwest::Client, String),
}

impl Exporter {
    /// A client for the configured endpoint. gRPC connects lazily (on the first export).
    ///
    /// # Errors
    /// [`BuildError::InvalidEndpoint`] when the endpoint is not a valid URI.
    pub fn new(cfg: &ExportConfig) -> Result<Exporter, BuildError> {
        let invalid =
            |reason: String| BuildError::InvalidEndpoint { endpoint: cfg.endpoint.clone(), reason };
        let timeout = Duration::from_millis(cfg.timeout_ms);
        match cfg.protocol {
            Protocol::Grpc => {
                let ep = Endpoint::from_shared(cfg.endpoint.clone())
                    .map_err(|e| invalid(e.to_string()))?
                    .connect_timeout(timeout)
                    .timeout(timeout);
                Ok(Exporter::Grpc(MetricsServiceClient::new(ep.connect_lazy())))
            }
            Protocol::Http => {
                let _ = rustls::crypto::ring::default_provider().install_default();
                reqwest::Url::parse(&cfg.endpoint).map_err(|e| invalid(e.to_string()))?;
                let client = reqwest::Client::builder()
                    .timeout(timeout)
                    .build()
                    .map_err(|e| invalid(e.to_string()))?;
                Ok(Exporter::Http(client, cfg.endpoint.clone()))
            }
        }
    }

    /// One attempt.
    ///
    /// # Errors
    /// The transport's error, or [`ExportError::Timeout`].
    pub async fn export_once(
        &mut self,
        req: ExportMetricsServiceRequest,
        timeout: Duration,
    ) -> Result<(), ExportError> {
        let attempt = async {
            match self {
                Exporter::Grpc(client) => {
                    client.export(req).await.map(|_| ()).map_err(ExportError::from)
                }
                Exporter::Http(client, url) => {
                    let resp = client
                        .post(url.as_str())
                        .header("content-type", "application/x-protobuf")
                        .body(req.encode_to_vec())
                        .send()
                        .await?;
                    if resp.status().is_success() {
                        Ok(())
                    } else {
                        Err(ExportError::HttpStatus { status: resp.status().as_u16() })
                    }
                }
            }
        };
        tokio::time::timeout(timeout, attempt).await.map_err(|_| ExportError::Timeout(timeout))?
    }
}

fn retryable(e: &ExportError) -> bool {
    match e {
        ExportError::Grpc(s) => !matches!(
            s.code(),
            tonic::Code::InvalidArgument
                | tonic::Code::Unimplemented
                | tonic::Code::PermissionDenied
        ),
        ExportError::HttpStatus { status } => {
            !(400..500).contains(status) || matches!(status, 408 | 429)
        }
        _ => true,
    }
}

/// Number of data points in a request (for drop accounting).
pub fn point_count(req: &ExportMetricsServiceRequest) -> u64 {
    let mut n = 0;
    for rm in &req.resource_metrics {
        for sm in &rm.scope_metrics {
            for m in &sm.metrics {
                n += match &m.data {
                    Some(metric::Data::Sum(s)) => s.data_points.len(),
                    Some(metric::Data::Gauge(g)) => g.data_points.len(),
                    Some(metric::Data::Histogram(h)) => h.data_points.len(),
                    Some(metric::Data::ExponentialHistogram(h)) => h.data_points.len(),
                    Some(metric::Data::Summary(s)) => s.data_points.len(),
                    None => 0,
                } as u64;
            }
        }
    }
    n
}

/// The export stage: sends each queued request with retries until the queue closes.
pub(crate) async fn run(
    mut rx: mpsc::Receiver<ExportMetricsServiceRequest>,
    mut exporter: Option<Exporter>,
    cfg: ExportConfig,
    tel: Arc<Telemetry>,
) {
    let timeout = Duration::from_millis(cfg.timeout_ms);
    while let Some(req) = rx.recv().await {
        let points = point_count(&req);
        let Some(exporter) = exporter.as_mut() else {
            tel.export_settled(points);
            tel.count_drop(DropReason::ExportFailed, points);
            continue;
        };
        let mut backoff = Duration::from_millis(cfg.retry_backoff_ms);
        let mut attempt = 0;
        loop {
            let started = Instant::now();
            match exporter.export_once(req.clone(), timeout).await {
                Ok(()) => {
                    tel.export_settled(points);
                    tel.export_ok(started.elapsed());
                    break;
                }
                Err(e) => {
                    tel.export_error();
                    if attempt >= cfg.max_retries || !retryable(&e) || rx.is_closed() && attempt > 0
                    {
                        tracing::warn!(error = %e, attempts = attempt + 1, "otlp export failed; request dropped");
                        tel.export_settled(points);
                        tel.count_drop(DropReason::ExportFailed, points);
                        break;
                    }
                    tracing::debug!(error = %e, attempt, "otlp export failed; retrying");
                    tokio::time::sleep(backoff).await;
                    backoff = backoff.saturating_mul(2);
                    attempt += 1;
                }
            }
        }
    }
}
