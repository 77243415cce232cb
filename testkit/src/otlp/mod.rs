//! Real OTLP metrics receivers (gRPC via tonic, HTTP/protobuf via hyper); [`points`] flattens
//! what they received into [`Point`]s.
//!
//! Each receiver binds `127.0.0.1:0` before `start()` returns and serves on its own
//! multi-threaded tokio runtime, so it works the same from a plain `#[test]` and from inside a
//! `#[tokio::test]` (of either flavour). Dropping it (or [`OtlpReceiver::stop`]) closes the
//! listener and every connection.
//!
//! Faults: [`OtlpReceiverBuilder::with_delay`] answers every request late,
//! [`OtlpReceiverBuilder::with_status`] refuses every request with a status, and
//! [`OtlpReceiver::set_failing`] / [`OtlpReceiver::set_delay`] change that at run time (take the
//! backend down, bring it back). Refused requests are counted ([`OtlpReceiver::attempts`],
//! [`OtlpReceiver::refused`]) but not stored: [`OtlpReceiver::requests`] holds accepted ones only.

use std::convert::Infallible;
use std::fmt;
use std::marker::PhantomData;
use std::net::{SocketAddr, TcpListener as StdTcpListener};
use std::sync::atomic::{AtomicBool, AtomicI32, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use http_body_util::{BodyExt, Full};
use hyper::body::{Bytes, Incoming};
use hyper::{http, Method, Request, Response, StatusCode};
use opentelemetry_proto::tonic::collector::metrics::v1::metrics_service_server::{
    MetricsService, MetricsServiceServer,
};
pub use opentelemetry_proto::tonic::collector::metrics::v1::{
    ExportMetricsServiceRequest, ExportMetricsServiceResponse,
};
use prost::Message;
use tonic::Code;

pub use dualmetrics_model::otlp::{
    any_value_to_string, latest, points, sum_of_values, Point, PointKind, PointValue, Temporality,
};

/// Largest request either receiver accepts.
const MAX_REQUEST_BYTES: usize = 64 * 1024 * 1024;

/// How long `stop()` waits for the listener to close.
const STOP_WAIT: Duration = Duration::from_secs(5);

// ---------------------------------------------------------------------------------------------
// Receivers
// ---------------------------------------------------------------------------------------------

/// Marker for the gRPC (tonic) flavour of [`OtlpReceiver`].
#[derive(Debug)]
pub enum Grpc {}

/// Marker for the HTTP/protobuf (hyper) flavour of [`OtlpReceiver`].
#[derive(Debug)]
pub enum Http {}

/// An OTLP gRPC receiver: a tonic `MetricsServiceServer` on `127.0.0.1:0`.
///
/// ```no_run
/// use std::time::Duration;
/// use dualmetrics_testkit::{latest, OtlpGrpcReceiver, PointValue};
///
/// let otlp = OtlpGrpcReceiver::start();
/// // point an exporter at otlp.endpoint() ("http://127.0.0.1:PORT"), record, flush ...
/// let points = otlp.wait_for(Duration::from_secs(10), |p| latest(p, "hits", &[]).is_some());
/// assert_eq!(latest(&points, "hits", &[("route", "/a")]).unwrap().value, PointValue::Int(3));
/// ```
pub type OtlpGrpcReceiver = OtlpReceiver<Grpc>;

/// An OTLP HTTP receiver: `POST /v1/metrics` with an `application/x-protobuf` body, on
/// `127.0.0.1:0`, answering 200 with an empty `ExportMetricsServiceResponse`.
///
/// ```no_run
/// use dualmetrics_testkit::OtlpHttpReceiver;
///
/// let otlp = OtlpHttpReceiver::start();
/// assert!(otlp.endpoint().ends_with("/v1/metrics"));
/// ```
pub type OtlpHttpReceiver = OtlpReceiver<Http>;

/// A running OTLP receiver; use it as [`OtlpGrpcReceiver`] or [`OtlpHttpReceiver`].
pub struct OtlpReceiver<P> {
    core: Arc<Core>,
    addr: SocketAddr,
    server: Mutex<Option<Running>>,
    _protocol: PhantomData<fn() -> P>,
}

/// Fault options for a receiver; from [`OtlpReceiver::builder`].
///
/// ```no_run
/// use std::time::Duration;
/// use dualmetrics_testkit::OtlpGrpcReceiver;
///
/// let slow = OtlpGrpcReceiver::builder().with_delay(Duration::from_secs(2)).start();
/// let down = OtlpGrpcReceiver::builder().with_status(tonic::Code::Unavailable).start();
/// down.set_failing(false); // back up
/// ```
#[derive(Debug)]
#[must_use = "call .start()"]
pub struct OtlpReceiverBuilder<P> {
    delay: Duration,
    status: Option<Code>,
    tls: Option<ServerTls>,
    _protocol: PhantomData<fn() -> P>,
}

/// TLS for a gRPC receiver ([`OtlpReceiverBuilder::with_tls`]): the server's certificate and key
/// (PEM), and the CA whose client certificates it requires (mutual TLS) if any.
#[derive(Clone, Debug)]
pub struct ServerTls {
    /// Server certificate chain, PEM.
    pub cert_pem: String,
    /// Server private key, PEM.
    pub key_pem: String,
    /// When set, a client must present a certificate this CA signed.
    pub client_ca_pem: Option<String>,
}

/// One accepted export: the decoded request and the request headers (gRPC metadata or HTTP
/// headers; names lower-case, values lossily decoded).
#[derive(Clone, Debug, PartialEq)]
pub struct ReceivedRequest {
    /// The decoded export request.
    pub request: ExportMetricsServiceRequest,
    /// Request headers in the order received.
    pub headers: Vec<(String, String)>,
}

impl ReceivedRequest {
    /// The first value of header `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }
}

impl<P> OtlpReceiverBuilder<P> {
    /// Delay every answer by `delay` (a slow server). Default: none. The request is stored only
    /// once the delay has passed, so an export the client abandoned is not recorded.
    pub fn with_delay(mut self, delay: Duration) -> Self {
        self.delay = delay;
        self
    }

    /// Refuse every request with `status` (gRPC code; the HTTP receiver maps it to the matching
    /// HTTP status, e.g. `Unavailable` → 503). Default: accept. [`OtlpReceiver::set_failing`]
    /// toggles refusal later, with this code.
    pub fn with_status(mut self, status: Code) -> Self {
        self.status = Some(status);
        self
    }

    fn core(&self) -> Arc<Core> {
        let status = self.status.unwrap_or(Code::Unavailable);
        Arc::new(Core {
            received: Mutex::new(Vec::new()),
            arrived: Condvar::new(),
            attempts: AtomicU64::new(0),
            refused: AtomicU64::new(0),
            failing: AtomicBool::new(self.status.is_some_and(|s| s != Code::Ok)),
            status: AtomicI32::new(status as i32),
            delay_nanos: AtomicU64::new(duration_nanos(self.delay)),
        })
    }
}

impl OtlpReceiverBuilder<Grpc> {
    /// Serves gRPC over TLS (rustls with ring) with this certificate, requiring client
    /// certificates when [`ServerTls::client_ca_pem`] is set. A refused handshake records
    /// nothing.
    pub fn with_tls(mut self, tls: ServerTls) -> Self {
        self.tls = Some(tls);
        self
    }

    /// Binds `127.0.0.1:0` and serves gRPC. Panics if it cannot bind, or if the TLS settings
    /// are not usable.
    #[track_caller]
    pub fn start(self) -> OtlpGrpcReceiver {
        let core = self.core();
        let service = MetricsServiceServer::from_arc(Arc::new(GrpcService(Arc::clone(&core))))
            .max_decoding_message_size(MAX_REQUEST_BYTES);
        let mut server = tonic::transport::Server::builder();
        if let Some(tls) = &self.tls {
            let _ = rustls::crypto::ring::default_provider().install_default();
            let mut config = tonic::transport::ServerTlsConfig::new()
                .identity(tonic::transport::Identity::from_pem(&tls.cert_pem, &tls.key_pem));
            if let Some(ca) = &tls.client_ca_pem {
                config = config.client_ca_root(tonic::transport::Certificate::from_pem(ca));
            }
            server = server.tls_config(config).expect("the receiver's TLS settings");
        }
        OtlpReceiver::launch(core, "otlp-grpc-receiver", move |listener| async move {
            let incoming = tonic::transport::server::TcpIncoming::from(listener);
            let _ = server.add_service(service).serve_with_incoming(incoming).await;
        })
    }
}

impl OtlpReceiverBuilder<Http> {
    /// Binds `127.0.0.1:0` and serves HTTP/1.1. Panics if it cannot bind.
    #[track_caller]
    pub fn start(self) -> OtlpHttpReceiver {
        let core = self.core();
        let server_core = Arc::clone(&core);
        OtlpReceiver::launch(core, "otlp-http-receiver", move |listener| {
            serve_http(listener, server_core)
        })
    }
}

impl<P> OtlpReceiver<P> {
    /// A builder for a receiver with faults.
    pub fn builder() -> OtlpReceiverBuilder<P> {
        OtlpReceiverBuilder {
            delay: Duration::ZERO,
            status: None,
            tls: None,
            _protocol: PhantomData,
        }
    }

    #[track_caller]
    fn launch<F, Fut>(core: Arc<Core>, name: &str, serve: F) -> Self
    where
        F: FnOnce(tokio::net::TcpListener) -> Fut + Send + 'static,
        Fut: std::future::Future<Output = ()> + Send + 'static,
    {
        let listener = StdTcpListener::bind(("127.0.0.1", 0))
            .unwrap_or_else(|e| panic!("bind the {name} on 127.0.0.1:0: {e}"));
        let addr = listener.local_addr().expect("listener address");
        listener.set_nonblocking(true).expect("set the listener non-blocking");
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name(name)
            .enable_all()
            .build()
            .unwrap_or_else(|e| panic!("build the {name} runtime: {e}"));
        let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
        let (closed_tx, closed_rx) = std::sync::mpsc::channel::<()>();
        runtime.spawn(async move {
            // Connections made before this point wait in the kernel backlog.
            match tokio::net::TcpListener::from_std(listener) {
                Ok(listener) => {
                    tokio::select! {
                        () = serve(listener) => {}
                        _ = stop_rx => {}
                    }
                }
                Err(e) => eprintln!("OTLP receiver: cannot register the listener: {e}"),
            }
            // The listener is dropped (closed) by now.
            let _ = closed_tx.send(());
        });
        Self {
            core,
            addr,
            server: Mutex::new(Some(Running { runtime, stop: stop_tx, closed: closed_rx })),
            _protocol: PhantomData,
        }
    }

    /// The bound address (`127.0.0.1:PORT`).
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// Every accepted export request, in arrival order.
    pub fn requests(&self) -> Vec<ExportMetricsServiceRequest> {
        self.core.lock().iter().map(|r| r.request.clone()).collect()
    }

    /// Every accepted export request with its headers, in arrival order.
    pub fn received(&self) -> Vec<ReceivedRequest> {
        self.core.lock().clone()
    }

    /// Number of accepted export requests.
    pub fn request_count(&self) -> usize {
        self.core.lock().len()
    }

    /// Number of export requests that reached the handler, refused ones included.
    pub fn attempts(&self) -> u64 {
        self.core.attempts.load(Ordering::Acquire)
    }

    /// Number of export requests refused because the receiver was failing.
    pub fn refused(&self) -> u64 {
        self.core.refused.load(Ordering::Acquire)
    }

    /// All accepted requests flattened with [`points`].
    pub fn points(&self) -> Vec<Point> {
        points(&self.requests())
    }

    /// Forgets the requests received so far (counters are kept).
    pub fn clear(&self) {
        self.core.lock().clear();
    }

    /// Refuse (`true`) or accept (`false`) requests from now on. Refusal uses the builder's
    /// [`with_status`](OtlpReceiverBuilder::with_status) code, `Unavailable` by default.
    pub fn set_failing(&self, failing: bool) {
        self.core.failing.store(failing, Ordering::Release);
    }

    /// Refuse requests with `status` from now on.
    pub fn fail_with(&self, status: Code) {
        self.core.status.store(status as i32, Ordering::Release);
        self.set_failing(status != Code::Ok);
    }

    /// Delay every answer by `delay` from now on (`Duration::ZERO` for none).
    pub fn set_delay(&self, delay: Duration) {
        self.core.delay_nanos.store(duration_nanos(delay), Ordering::Release);
    }

    /// Waits until `done(points of all accepted requests)` holds and returns those points. The
    /// predicate is checked now and after each accepted request. Panics on timeout, listing the
    /// points that did arrive.
    #[track_caller]
    pub fn wait_for(&self, timeout: Duration, done: impl FnMut(&[Point]) -> bool) -> Vec<Point> {
        self.try_wait_for(timeout, done).unwrap_or_else(|e| panic!("{e}"))
    }

    /// Like [`wait_for`](Self::wait_for), but returns the timeout as an error.
    pub fn try_wait_for(
        &self,
        timeout: Duration,
        mut done: impl FnMut(&[Point]) -> bool,
    ) -> Result<Vec<Point>, OtlpWaitTimeout> {
        let received = self.core.wait(timeout, |received| {
            let requests: Vec<_> = received.iter().map(|r| r.request.clone()).collect();
            done(&points(&requests))
        });
        let to_points = |received: Vec<ReceivedRequest>| {
            let requests: Vec<_> = received.into_iter().map(|r| r.request).collect();
            points(&requests)
        };
        match received {
            Ok(received) => Ok(to_points(received)),
            Err(received) => Err(OtlpWaitTimeout {
                requests: received.len(),
                refused: self.refused(),
                points: to_points(received),
                waited_for: "the condition".into(),
            }),
        }
    }

    /// Waits until at least `n` requests were accepted and returns all of them. Panics on
    /// timeout.
    #[track_caller]
    pub fn wait_for_requests(&self, n: usize, timeout: Duration) -> Vec<ReceivedRequest> {
        match self.core.wait(timeout, |received| received.len() >= n) {
            Ok(received) => received,
            Err(received) => {
                let requests: Vec<_> = received.iter().map(|r| r.request.clone()).collect();
                panic!(
                    "{}",
                    OtlpWaitTimeout {
                        requests: received.len(),
                        refused: self.refused(),
                        points: points(&requests),
                        waited_for: format!("{n} request(s)"),
                    }
                )
            }
        }
    }

    /// Closes the listener and every connection, as a backend that is gone; returns once the
    /// listener is closed. What was received stays readable. Idempotent.
    pub fn stop(&self) {
        let running = self.server.lock().unwrap_or_else(|e| e.into_inner()).take();
        if let Some(running) = running {
            let _ = running.stop.send(());
            let _ = running.closed.recv_timeout(STOP_WAIT);
            // Never blocks, so it is allowed inside an async context.
            running.runtime.shutdown_background();
        }
    }
}

impl OtlpReceiver<Grpc> {
    /// Starts a gRPC receiver without faults. Panics if it cannot bind.
    #[track_caller]
    pub fn start() -> Self {
        Self::builder().start()
    }

    /// `http://127.0.0.1:PORT`, the value for the exporter's endpoint.
    pub fn endpoint(&self) -> String {
        format!("http://{}", self.addr)
    }
}

impl OtlpReceiver<Http> {
    /// Starts an HTTP receiver without faults. Panics if it cannot bind.
    #[track_caller]
    pub fn start() -> Self {
        Self::builder().start()
    }

    /// `http://127.0.0.1:PORT/v1/metrics`, the value for the exporter's (signal) endpoint.
    pub fn endpoint(&self) -> String {
        format!("http://{}/v1/metrics", self.addr)
    }
}

impl<P> Drop for OtlpReceiver<P> {
    fn drop(&mut self) {
        self.stop();
    }
}

impl<P> fmt::Debug for OtlpReceiver<P> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OtlpReceiver")
            .field("protocol", &std::any::type_name::<P>())
            .field("addr", &self.addr)
            .field("requests", &self.request_count())
            .field("attempts", &self.attempts())
            .field("refused", &self.refused())
            .finish()
    }
}

/// Returned by [`OtlpReceiver::try_wait_for`] when the condition did not hold in time.
#[derive(Clone, Debug, PartialEq)]
pub struct OtlpWaitTimeout {
    /// Number of accepted requests when the wait gave up.
    pub requests: usize,
    /// Number of refused requests.
    pub refused: u64,
    /// Their points.
    pub points: Vec<Point>,
    /// What was waited for.
    pub waited_for: String,
}

impl fmt::Display for OtlpWaitTimeout {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "timed out waiting for {}; {} request(s) accepted, {} refused, {} point(s):",
            self.waited_for,
            self.requests,
            self.refused,
            self.points.len()
        )?;
        for p in &self.points {
            write!(f, "\n  {p}")?;
        }
        Ok(())
    }
}

impl std::error::Error for OtlpWaitTimeout {}

struct Running {
    runtime: tokio::runtime::Runtime,
    stop: tokio::sync::oneshot::Sender<()>,
    closed: std::sync::mpsc::Receiver<()>,
}

/// State shared by the server tasks and the test thread.
struct Core {
    received: Mutex<Vec<ReceivedRequest>>,
    arrived: Condvar,
    attempts: AtomicU64,
    refused: AtomicU64,
    failing: AtomicBool,
    status: AtomicI32,
    delay_nanos: AtomicU64,
}

impl Core {
    fn lock(&self) -> MutexGuard<'_, Vec<ReceivedRequest>> {
        self.received.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Counts the attempt, applies the delay, and says whether to refuse (and with what).
    async fn admit(&self) -> Option<Code> {
        self.attempts.fetch_add(1, Ordering::AcqRel);
        let delay = self.delay_nanos.load(Ordering::Acquire);
        if delay > 0 {
            tokio::time::sleep(Duration::from_nanos(delay)).await;
        }
        if self.failing.load(Ordering::Acquire) {
            self.refused.fetch_add(1, Ordering::AcqRel);
            Some(Code::from(self.status.load(Ordering::Acquire)))
        } else {
            None
        }
    }

    fn accept(&self, request: ExportMetricsServiceRequest, headers: &http::HeaderMap) {
        let headers = headers
            .iter()
            .map(|(k, v)| {
                (k.as_str().to_owned(), String::from_utf8_lossy(v.as_bytes()).into_owned())
            })
            .collect();
        self.lock().push(ReceivedRequest { request, headers });
        self.arrived.notify_all();
    }

    /// Waits until `done` holds; `Err` carries what arrived on timeout.
    fn wait(
        &self,
        timeout: Duration,
        mut done: impl FnMut(&[ReceivedRequest]) -> bool,
    ) -> Result<Vec<ReceivedRequest>, Vec<ReceivedRequest>> {
        let deadline = Instant::now() + timeout;
        let mut received = self.lock();
        loop {
            if done(&received) {
                return Ok(received.clone());
            }
            let now = Instant::now();
            if now >= deadline {
                return Err(received.clone());
            }
            received = self
                .arrived
                .wait_timeout(received, deadline - now)
                .unwrap_or_else(|e| e.into_inner())
                .0;
        }
    }
}

fn duration_nanos(d: Duration) -> u64 {
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)
}

struct GrpcService(Arc<Core>);

#[tonic::async_trait]
impl MetricsService for GrpcService {
    async fn export(
        &self,
        request: tonic::Request<ExportMetricsServiceRequest>,
    ) -> Result<tonic::Response<ExportMetricsServiceResponse>, tonic::Status> {
        if let Some(code) = self.0.admit().await {
            return Err(tonic::Status::new(code, "refused by the test receiver"));
        }
        let headers = request.metadata().clone().into_headers();
        self.0.accept(request.into_inner(), &headers);
        Ok(tonic::Response::new(ExportMetricsServiceResponse::default()))
    }
}

async fn serve_http(listener: tokio::net::TcpListener, core: Arc<Core>) {
    loop {
        let stream = match listener.accept().await {
            Ok((stream, _)) => stream,
            Err(_) => {
                tokio::time::sleep(Duration::from_millis(10)).await;
                continue;
            }
        };
        let core = Arc::clone(&core);
        tokio::spawn(async move {
            let service = hyper::service::service_fn(move |req| {
                let core = Arc::clone(&core);
                async move { Ok::<_, Infallible>(handle_http(&core, req).await) }
            });
            let _ = hyper::server::conn::http1::Builder::new()
                .serve_connection(hyper_util::rt::TokioIo::new(stream), service)
                .await;
        });
    }
}

/// `google.rpc.Status`, the body OTLP/HTTP puts in an error response.
#[derive(Clone, PartialEq, prost::Message)]
struct RpcStatus {
    #[prost(int32, tag = "1")]
    code: i32,
    #[prost(string, tag = "2")]
    message: String,
}

fn protobuf_response(status: StatusCode, body: Vec<u8>) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::from(body)));
    *response.status_mut() = status;
    response.headers_mut().insert(
        http::header::CONTENT_TYPE,
        http::HeaderValue::from_static("application/x-protobuf"),
    );
    response
}

fn error_response(status: StatusCode, code: Code, message: &str) -> Response<Full<Bytes>> {
    let body = RpcStatus { code: code as i32, message: message.to_owned() };
    protobuf_response(status, body.encode_to_vec())
}

fn http_status(code: Code) -> StatusCode {
    match code {
        Code::Ok => StatusCode::OK,
        Code::InvalidArgument | Code::OutOfRange | Code::FailedPrecondition => {
            StatusCode::BAD_REQUEST
        }
        Code::Unauthenticated => StatusCode::UNAUTHORIZED,
        Code::PermissionDenied => StatusCode::FORBIDDEN,
        Code::NotFound | Code::Unimplemented => StatusCode::NOT_FOUND,
        Code::ResourceExhausted => StatusCode::TOO_MANY_REQUESTS,
        Code::Unavailable | Code::Aborted => StatusCode::SERVICE_UNAVAILABLE,
        Code::DeadlineExceeded => StatusCode::GATEWAY_TIMEOUT,
        _ => StatusCode::INTERNAL_SERVER_ERROR,
    }
}

async fn handle_http(core: &Core, req: Request<Incoming>) -> Response<Full<Bytes>> {
    if req.uri().path() != "/v1/metrics" {
        return error_response(StatusCode::NOT_FOUND, Code::NotFound, "only /v1/metrics");
    }
    if req.method() != Method::POST {
        return error_response(StatusCode::METHOD_NOT_ALLOWED, Code::Unimplemented, "only POST");
    }
    let (parts, body) = req.into_parts();
    let body = match http_body_util::Limited::new(body, MAX_REQUEST_BYTES).collect().await {
        Ok(body) => body.to_bytes(),
        Err(e) => {
            return error_response(StatusCode::BAD_REQUEST, Code::InvalidArgument, &e.to_string())
        }
    };
    if let Some(code) = core.admit().await {
        return error_response(http_status(code), code, "refused by the test receiver");
    }
    let content_type = parts
        .headers
        .get(http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    if !content_type.starts_with("application/x-protobuf") {
        return error_response(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            Code::InvalidArgument,
            &format!("content-type {content_type:?}: only application/x-protobuf"),
        );
    }
    if let Some(encoding) = parts.headers.get(http::header::CONTENT_ENCODING) {
        if encoding != "identity" {
            return error_response(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                Code::InvalidArgument,
                &format!("content-encoding {encoding:?} is not supported"),
            );
        }
    }
    match ExportMetricsServiceRequest::decode(body) {
        Ok(request) => {
            core.accept(request, &parts.headers);
            protobuf_response(
                StatusCode::OK,
                ExportMetricsServiceResponse::default().encode_to_vec(),
            )
        }
        Err(e) => error_response(StatusCode::BAD_REQUEST, Code::InvalidArgument, &e.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn maps_grpc_codes_to_http() {
        assert_eq!(http_status(Code::Unavailable), StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(http_status(Code::ResourceExhausted), StatusCode::TOO_MANY_REQUESTS);
        assert_eq!(http_status(Code::Internal), StatusCode::INTERNAL_SERVER_ERROR);
    }
}
