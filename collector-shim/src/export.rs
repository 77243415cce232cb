//! Export: OTLP over gRPC (tonic `MetricsServiceClient`) or HTTP/protobuf (`POST`, reqwest).
//! Timeouts and retries live here and only here.
//!
//! Both transports use rustls for `https://` endpoints: the platform's roots, or
//! `export.ca_file`, and a client certificate (`client_cert_file` + `client_key_file`) for mutual
//! TLS. `export.headers` go on every request (gRPC metadata or HTTP headers); their values and
//! any password in the endpoint URL are never printed (errors carry no URL).
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
#[derive(Clone)]
pub enum Exporter {
    /// gRPC, with the metadata every request carries.
    Grpc(MetricsServiceClient<Channel>, Box<tonic::metadata::MetadataMap>),
    /// HTTP/protobuf to the URL (the headers are the client's defaults).
    Http(reqwest::Client, String),
}

impl std::fmt::Debug for Exporter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Exporter::Grpc(..) => "Exporter::Grpc",
            Exporter::Http(..) => "Exporter::Http",
        })
    }
}

/// `url` with any password replaced by `***` (for errors and logs).
pub fn redact_url(url: &str) -> String {
    match reqwest::Url::parse(url) {
        Ok(mut u) if u.password().is_some() => {
            let _ = u.set_password(Some("***"));
            u.to_string()
        }
        Ok(_) => url.to_owned(),
        Err(_) => "<not a URL>".to_owned(),
    }
}

impl Exporter {
    /// A client for the configured endpoint. gRPC connects lazily (on the first export).
    ///
    /// # Errors
    /// [`BuildError::InvalidEndpoint`] when the endpoint is not a valid URI.
    pub fn new(cfg: &ExportConfig) -> Result<Exporter, BuildError> {
        let invalid = |reason: String| BuildError::InvalidEndpoint {
            endpoint: redact_url(&cfg.endpoint),
            reason,
        };
        let read = |p: &Option<std::path::PathBuf>| -> Result<Option<Vec<u8>>, BuildError> {
            p.as_ref()
                .map(|p| std::fs::read(p).map_err(|e| invalid(format!("{}: {e}", p.display()))))
                .transpose()
        };
        let (ca, cert, key) =
            (read(&cfg.ca_file)?, read(&cfg.client_cert_file)?, read(&cfg.client_key_file)?);
        let timeout = Duration::from_millis(cfg.timeout_ms);
        let _ = rustls::crypto::ring::default_provider().install_default();
        match cfg.protocol {
            Protocol::Grpc => {
                let mut ep = Endpoint::from_shared(cfg.endpoint.clone())
                    .map_err(|e| invalid(e.to_string()))?
                    .connect_timeout(timeout)
                    .timeout(timeout);
                if cfg.endpoint.starts_with("https://") {
                    let mut tls = tonic::transport::ClientTlsConfig::new();
                    tls = match &ca {
                        Some(pem) => {
                            tls.ca_certificate(tonic::transport::Certificate::from_pem(pem))
                        }
                        None => tls.with_native_roots(),
                    };
                    if let (Some(cert), Some(key)) = (&cert, &key) {
                        tls = tls.identity(tonic::transport::Identity::from_pem(cert, key));
                    }
                    ep = ep.tls_config(tls).map_err(|e| invalid(e.to_string()))?;
                }
                let mut metadata = tonic::metadata::MetadataMap::new();
                for (k, v) in &cfg.headers.0 {
                    let name =
                        tonic::metadata::MetadataKey::from_bytes(k.to_ascii_lowercase().as_bytes())
                            .map_err(|_| invalid(format!("export.headers: invalid name {k:?}")))?;
                    let value = v
                        .parse()
                        .map_err(|_| invalid(format!("export.headers.{k}: invalid value")))?;
                    metadata.insert(name, value);
                }
                Ok(Exporter::Grpc(MetricsServiceClient::new(ep.connect_lazy()), Box::new(metadata)))
            }
            Protocol::Http => {
                reqwest::Url::parse(&cfg.endpoint).map_err(|e| invalid(e.to_string()))?;
                let mut headers = reqwest::header::HeaderMap::new();
                for (k, v) in &cfg.headers.0 {
                    let name = reqwest::header::HeaderName::from_bytes(k.as_bytes())
                        .map_err(|_| invalid(format!("export.headers: invalid name {k:?}")))?;
                    let mut value = reqwest::header::HeaderValue::from_str(v)
                        .map_err(|_| invalid(format!("export.headers.{k}: invalid value")))?;
                    value.set_sensitive(true);
                    headers.insert(name, value);
                }
                let mut builder =
                    reqwest::Client::builder().timeout(timeout).default_headers(headers);
                if let Some(pem) = &ca {
                    let certs = reqwest::Certificate::from_pem_bundle(pem)
                        .map_err(|e| invalid(e.without_url().to_string()))?;
                    builder = builder.tls_certs_merge(certs);
                }
                if let (Some(cert), Some(key)) = (&cert, &key) {
                    let mut pem = cert.clone();
                    pem.push(b'\n');
                    pem.extend_from_slice(key);
                    let id = reqwest::Identity::from_pem(&pem)
                        .map_err(|e| invalid(e.without_url().to_string()))?;
                    builder = builder.identity(id);
                }
                let client = builder.build().map_err(|e| invalid(e.without_url().to_string()))?;
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
                Exporter::Grpc(client, metadata) => {
                    let mut request = tonic::Request::new(req);
                    *request.metadata_mut() = (**metadata).clone();
                    client.export(request).await.map(|_| ()).map_err(ExportError::from)
                }
                Exporter::Http(client, url) => {
                    let resp = client
                        .post(url.as_str())
                        .header("content-type", "application/x-protobuf")
                        .body(req.encode_to_vec())
                        .send()
                        .await
                        .map_err(|e| ExportError::Http(e.without_url()))?;
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
