//! The admin endpoint (`[admin] listen`, `--admin`; off by default): plain HTTP/1.1 on its own
//! address for the health checks and scrapes of the platform running the shim.
//!
//! | path | answer |
//! |---|---|
//! | `GET /healthz` | `200 ok` while the shim runs (it stops answering once shutdown begins) |
//! | `GET /metrics` | every counter of [`crate::Telemetry`] in the Prometheus text format ([`TelemetrySnapshot::to_prometheus`]) |
//!
//! Anything else is `404`. The server is hyper's HTTP/1 connection handler on the pipeline's
//! runtime; it reads nothing but the request line and holds no state of its own.
use crate::telemetry::{Telemetry, TelemetrySnapshot};
use http_body_util::Full;
use hyper::body::Bytes;
use hyper::{Request, Response, StatusCode};
use std::convert::Infallible;
use std::future::Future;
use std::sync::Arc;

/// Content type of `/metrics`: the Prometheus text exposition format 0.0.4.
pub const METRICS_CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

fn answer(req: &Request<hyper::body::Incoming>, tel: &Telemetry) -> Response<Full<Bytes>> {
    let (status, content_type, body) = match (req.method(), req.uri().path()) {
        (&hyper::Method::GET, "/healthz") => (StatusCode::OK, "text/plain", "ok\n".to_owned()),
        (&hyper::Method::GET, "/metrics") => {
            (StatusCode::OK, METRICS_CONTENT_TYPE, tel.snapshot().to_prometheus())
        }
        _ => (StatusCode::NOT_FOUND, "text/plain", "GET /healthz or /metrics\n".to_owned()),
    };
    let mut resp = Response::new(Full::new(Bytes::from(body)));
    *resp.status_mut() = status;
    if let Ok(v) = hyper::header::HeaderValue::from_str(content_type) {
        resp.headers_mut().insert(hyper::header::CONTENT_TYPE, v);
    }
    resp
}

/// Serves until `stop` completes; each connection on a task of its own.
pub(crate) async fn serve(
    listener: tokio::net::TcpListener,
    tel: Arc<Telemetry>,
    stop: impl Future<Output = ()>,
) {
    tokio::pin!(stop);
    loop {
        let stream = tokio::select! {
            () = &mut stop => return,
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => stream,
                Err(e) => {
                    tracing::debug!(error = %e, "admin endpoint: accept");
                    continue;
                }
            },
        };
        let tel = Arc::clone(&tel);
        tokio::spawn(async move {
            let service = hyper::service::service_fn(move |req| {
                let resp = answer(&req, &tel);
                async move { Ok::<_, Infallible>(resp) }
            });
            let io = hyper_util::rt::TokioIo::new(stream);
            let _ = hyper::server::conn::http1::Builder::new().serve_connection(io, service).await;
        });
    }
}

impl TelemetrySnapshot {
    /// The counters in the Prometheus text format (`dualmetrics_shim_*`; counters end in
    /// `_total`, labelled ones carry `transport` or `reason`).
    pub fn to_prometheus(&self) -> String {
        use std::fmt::Write as _;
        fn head(out: &mut String, name: &str, kind: &str, help: &str) {
            let _ = writeln!(out, "# HELP dualmetrics_shim_{name} {help}");
            let _ = writeln!(out, "# TYPE dualmetrics_shim_{name} {kind}");
        }
        let mut out = String::with_capacity(4096);
        for (name, help, label, values) in [
            ("packets_total", "StatsD packets received, by transport.", "transport", &self.packets),
            ("bad_lines_total", "StatsD lines refused, by reason.", "reason", &self.bad_lines),
            ("drops_total", "Lines, packets or points dropped, by reason.", "reason", &self.drops),
            (
                "receive_errors_total",
                "Socket receive errors, by transport.",
                "transport",
                &self.receive_errors,
            ),
        ] {
            head(&mut out, name, "counter", help);
            for (value, n) in values {
                let _ = writeln!(out, "dualmetrics_shim_{name}{{{label}=\"{value}\"}} {n}");
            }
        }
        for (name, kind, help, n) in [
            ("lines_total", "counter", "StatsD lines accepted.", self.lines),
            (
                "overflow_lines_total",
                "counter",
                "Lines folded into an otel.metric.overflow series.",
                self.overflow_lines,
            ),
            (
                "tee_packets_total",
                "counter",
                "Datagrams forwarded to the legacy daemon.",
                self.tee_packets,
            ),
            (
                "tee_errors_total",
                "counter",
                "Datagrams the tee failed to forward.",
                self.tee_errors,
            ),
            ("exports_total", "counter", "Successful OTLP exports.", self.exports),
            ("export_errors_total", "counter", "Failed OTLP export attempts.", self.export_errors),
            (
                "tcp_refused_total",
                "counter",
                "TCP connections refused past max_tcp_connections.",
                self.tcp_refused,
            ),
            (
                "tcp_idle_closed_total",
                "counter",
                "TCP connections closed after tcp_idle_timeout_ms.",
                self.tcp_idle_closed,
            ),
            (
                "mapping_reloads_total",
                "counter",
                "Mapping file reloads applied.",
                self.mapping_reloads,
            ),
            (
                "mapping_reload_errors_total",
                "counter",
                "Mapping file reloads refused.",
                self.mapping_reload_errors,
            ),
            ("series", "gauge", "Live StatsD series.", self.series),
            ("otlp_in_series", "gauge", "Live OTLP-input series.", self.otlp_in_series),
        ] {
            head(&mut out, name, kind, help);
            let _ = writeln!(out, "dualmetrics_shim_{name} {n}");
        }
        out
    }
}
