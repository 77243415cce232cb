//! Real OTLP metrics receivers (gRPC via tonic, HTTP/protobuf via hyper) and a flattening of
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

use std::collections::BTreeMap;
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
use opentelemetry_proto::tonic::common::v1::{any_value, AnyValue, KeyValue};
use opentelemetry_proto::tonic::metrics::v1::{
    exponential_histogram_data_point::Buckets, metric::Data, number_data_point,
    AggregationTemporality,
};
use prost::Message;
use tonic::Code;

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

// ---------------------------------------------------------------------------------------------
// Points
// ---------------------------------------------------------------------------------------------

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
/// use dualmetrics_testkit::{points, ExportMetricsServiceRequest};
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
/// use dualmetrics_testkit::{latest, points, ExportMetricsServiceRequest};
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

    #[test]
    fn maps_grpc_codes_to_http() {
        assert_eq!(http_status(Code::Unavailable), StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(http_status(Code::ResourceExhausted), StatusCode::TOO_MANY_REQUESTS);
        assert_eq!(http_status(Code::Internal), StatusCode::INTERNAL_SERVER_ERROR);
    }
}
