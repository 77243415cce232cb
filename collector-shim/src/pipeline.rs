//! Wires the stages. Data flows top to bottom; shutdown runs in the same order, so each stage
//! drains what the one above handed it before it stops.
use crate::aggregate::Aggregator;
use crate::config::ShimConfig;
use crate::error::ShutdownError;
use crate::export::{self, point_count, Exporter};
use crate::ingest::{self, Ctx, Listeners};
use crate::mapping::{Mapper, Resolved};
use crate::otlp_in::{DeltaToCumulative, OtlpIn};
use crate::tee::Tee;
use crate::telemetry::{BadLine, DropReason, Telemetry, TelemetrySnapshot};
use crate::translate::Translator;
use dualmetrics_model::statsd_parse::{packet_lines, Parser};
use opentelemetry_proto::tonic::collector::metrics::v1::metrics_service_server::MetricsServiceServer;
use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest;
use std::future::Future;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{sync_channel, Receiver, RecvTimeoutError};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};
use tokio::sync::mpsc;

/// Everything bound by [`crate::Shim::bind`].
pub(crate) struct Parts {
    pub cfg: ShimConfig,
    pub listeners: Listeners,
    pub tee: Option<Arc<Tee>>,
    pub otlp_in: Option<std::net::TcpListener>,
    pub admin: Option<std::net::TcpListener>,
    pub tel: Arc<Telemetry>,
    pub mapper: Option<Mapper>,
}

/// How long the OTLP input waits at shutdown for in-flight requests before closing connections.
const OTLP_IN_DRAIN_GRACE: Duration = Duration::from_secs(1);

pub(crate) fn now_ns() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_nanos() as u64)
}

/// Runs the shim until `shutdown` resolves, then stops it in data order and returns what it
/// counted. Stages: 1. ingest threads (tee, then queue), 2. the OTLP input server, 4. the exporter
/// task (started before 3 so the queue has a consumer), 3. the aggregator thread, 5. the admin
/// endpoint. One function (~150 lines) on purpose: the shutdown below joins the handles the
/// start-up made, in the order data flows, and reads as one sequence only with both in view.
pub(crate) async fn run(
    parts: Parts,
    shutdown: impl Future<Output = ()>,
) -> Result<TelemetrySnapshot, ShutdownError> {
    let Parts { cfg, listeners, tee, otlp_in, admin, tel, mapper } = parts;
    let deadline = cfg.shutdown_timeout();
    let stop = Arc::new(AtomicBool::new(false));
    let (tx, rx) = sync_channel::<Vec<u8>>(cfg.ingest.queue_capacity);
    // bytes in the queue: added by the ingest threads, taken off by the aggregator
    let queued_bytes = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    // batch buffers come back for reuse (at most 16 idle: 1 MiB); with no UDP socket nothing
    // takes them and they are freed
    let pool = ingest::BatchPool::new(16);
    let otlp_state = Arc::new(Mutex::new(DeltaToCumulative::new(
        cfg.otlp_in.max_series,
        Duration::from_millis(cfg.otlp_in.staleness_ms),
    )));

    // 1. Ingest: one thread per socket; each packet is teed raw to the legacy daemon, then queued.
    let ctx = Ctx {
        tx: tx.clone(),
        tee,
        tel: tel.clone(),
        stop: stop.clone(),
        max_packet: cfg.ingest.max_packet_size,
        max_line: cfg.ingest.max_line_len,
        queued_bytes: queued_bytes.clone(),
        max_queued_bytes: cfg.ingest.queue_max_bytes,
        tcp_idle: (cfg.ingest.tcp_idle_timeout_ms > 0)
            .then(|| Duration::from_millis(cfg.ingest.tcp_idle_timeout_ms)),
    };
    let tcp_addr = listeners.tcp.as_ref().and_then(|l| l.local_addr().ok());
    let unix_path = listeners.unix.as_ref().map(|(_, p)| p.clone());
    let ingest_threads = spawn_ingest(listeners, ctx, pool.take, cfg.ingest.max_tcp_connections)?;

    // 2. OTLP input: a tonic MetricsService folding SDK deltas into cumulative state.
    let (otlp_stop_tx, otlp_stop_rx) = tokio::sync::oneshot::channel::<()>();
    let otlp_server = match otlp_in {
        Some(listener) => {
            let svc = OtlpIn { state: otlp_state.clone(), tel: tel.clone() };
            let server = MetricsServiceServer::new(svc)
                .max_decoding_message_size(cfg.otlp_in.max_request_bytes);
            let incoming = tonic::transport::server::TcpIncoming::from(tokio_listener(listener)?);
            Some(tokio::spawn(
                tonic::transport::Server::builder()
                    .add_service(server)
                    .serve_with_incoming_shutdown(incoming, async {
                        let _ = otlp_stop_rx.await;
                    }),
            ))
        }
        None => None,
    };

    // 4. Export (started before 3 so the queue has a consumer): retries and timeouts live there.
    let (export_tx, export_rx) =
        mpsc::channel::<ExportMetricsServiceRequest>(cfg.export.queue_capacity);
    let exporter = if cfg.export.endpoint.is_empty() {
        None
    } else {
        Some(Exporter::new(&cfg.export).map_err(|e| ShutdownError::Internal(e.to_string()))?)
    };
    let exporter_task =
        tokio::spawn(export::run(export_rx, exporter, cfg.export.clone(), tel.clone()));

    // 3. Aggregate + translate: one thread parses and aggregates packets, and on every tick turns
    //    the interval (and the OTLP input's cumulative state) into one export request.
    let agg_thread = {
        let (cfg, tel, otlp_state) = (cfg.clone(), tel.clone(), otlp_state.clone());
        let queued = queued_bytes.clone();
        std::thread::Builder::new()
            .name("shim-aggregate".into())
            .spawn(move || {
                aggregate_loop(rx, pool.give, queued, cfg, tel, otlp_state, export_tx, mapper)
            })
            .map_err(|e| ShutdownError::Internal(e.to_string()))?
    };

    // 5. Admin endpoint: /healthz and /metrics until shutdown begins.
    let (admin_stop_tx, admin_stop_rx) = tokio::sync::oneshot::channel::<()>();
    let admin_task = match admin {
        Some(listener) => {
            Some(tokio::spawn(crate::admin::serve(tokio_listener(listener)?, tel.clone(), async {
                let _ = admin_stop_rx.await;
            })))
        }
        None => None,
    };

    shutdown.await;
    tracing::info!("shim shutting down: draining ingest, final flush, export");
    let _ = admin_stop_tx.send(());
    if let Some(task) = admin_task {
        let _ = task.await;
    }
    let started = Instant::now();

    // Shutdown in data order: sockets stop and drain, the OTLP server stops, the aggregator sees
    // its queue close and flushes once more, the exporter sends what is queued.
    stop.store(true, Ordering::Release);
    if let Some(addr) = tcp_addr {
        let _ = std::net::TcpStream::connect_timeout(&addr, Duration::from_millis(200));
        // wake accept()
    }
    // Graceful stop waits for clients to close their connections; an SDK keeps its channel
    // open (or may be hung), so in-flight requests get a short grace, then the server is
    // aborted (whatever it acknowledged is already in `otlp_state`).
    let _ = otlp_stop_tx.send(());
    if let Some(mut server) = otlp_server {
        let grace = OTLP_IN_DRAIN_GRACE.min(deadline);
        if tokio::time::timeout(grace, &mut server).await.is_err() {
            tracing::debug!("otlp input: connections still open after {grace:?}; closing them");
            server.abort();
            let _ = server.await;
        }
    }
    let joined = tokio::task::spawn_blocking(move || {
        for t in ingest_threads {
            let _ = t.join();
        }
        drop(tx);
        agg_thread.join().is_ok()
    });
    let agg_ok = tokio::time::timeout(deadline, joined)
        .await
        .map_err(|_| ShutdownError::Timeout(deadline))?
        .map_err(|e| ShutdownError::Internal(e.to_string()))?;
    if let Some(p) = unix_path {
        let _ = std::fs::remove_file(p);
    }
    let left = deadline.saturating_sub(started.elapsed());
    let mut exporter_task = exporter_task;
    match tokio::time::timeout(left, &mut exporter_task).await {
        Ok(r) => r.map_err(|e| ShutdownError::Internal(e.to_string()))?,
        Err(_) => {
            exporter_task.abort();
            let dropped = tel.drop_pending_exports();
            tracing::warn!(
                dropped,
                "shutdown deadline passed with exports still queued or in flight: their points \
                 are counted as shutdown_deadline drops"
            );
            return Err(ShutdownError::Timeout(deadline));
        }
    }
    if !agg_ok {
        return Err(ShutdownError::Internal("aggregator thread panicked".into()));
    }
    Ok(tel.snapshot())
}

/// One ingest thread per socket: UDP (reusing the batch buffers `pool` returns), TCP (at most
/// `max_tcp` connections), Unix datagrams.
fn spawn_ingest(
    listeners: Listeners,
    ctx: Ctx,
    pool: std::sync::mpsc::Receiver<Vec<u8>>,
    max_tcp: usize,
) -> Result<Vec<std::thread::JoinHandle<()>>, ShutdownError> {
    let mut threads = Vec::new();
    if let Some(s) = listeners.udp {
        threads.push(
            ingest::spawn_udp(s, ctx.clone(), pool)
                .map_err(|e| ShutdownError::Internal(format!("udp ingest thread: {e}")))?,
        );
    }
    if let Some(l) = listeners.tcp {
        threads.push(ingest::spawn_tcp(l, ctx.clone(), max_tcp));
    }
    if let Some((s, _)) = listeners.unix {
        threads.push(ingest::spawn_unix(s, ctx));
    }
    Ok(threads)
}

/// A bound std listener handed to tokio (non-blocking, on the current runtime).
fn tokio_listener(
    listener: std::net::TcpListener,
) -> Result<tokio::net::TcpListener, ShutdownError> {
    listener.set_nonblocking(true).map_err(|e| ShutdownError::Internal(e.to_string()))?;
    tokio::net::TcpListener::from_std(listener).map_err(|e| ShutdownError::Internal(e.to_string()))
}

/// Hands one export request to the exporter's queue. The last one (at shutdown) waits for room;
/// others are dropped when the queue is full (`export_queue_full`), or when the exporter is
/// gone (`export_failed`). Queued points count as pending until the exporter settles them, or
/// the shutdown deadline counts what is left (`shutdown_deadline`).
pub(crate) fn queue_export(
    export_tx: &mpsc::Sender<ExportMetricsServiceRequest>,
    req: ExportMetricsServiceRequest,
    last: bool,
    tel: &Telemetry,
) {
    let points = point_count(&req);
    tel.export_queued(points);
    let dropped = if last {
        export_tx.blocking_send(req).is_err().then_some(DropReason::ExportFailed)
    } else {
        match export_tx.try_send(req) {
            Ok(()) => None,
            Err(mpsc::error::TrySendError::Full(_)) => Some(DropReason::ExportQueueFull),
            Err(_) => Some(DropReason::ExportFailed),
        }
    };
    if let Some(reason) = dropped {
        tel.export_settled(points);
        tel.count_drop(reason, points);
    }
}

/// Parses every line of a packet into the aggregator; counts good and bad lines.
pub fn process_packet(packet: &[u8], parser: &Parser, agg: &mut Aggregator, tel: &Telemetry) {
    process_packet_mapped(packet, parser, agg, None, tel);
}

/// [`process_packet`] with a mapping stage: each parsed line is mapped, dropped (counted as
/// `mapping_drop`) or kept as it is, then aggregated.
pub fn process_packet_mapped(
    packet: &[u8],
    parser: &Parser,
    agg: &mut Aggregator,
    mut mapper: Option<&mut Mapper>,
    tel: &Telemetry,
) {
    let mut good = 0;
    for line in packet_lines(packet) {
        let result = parser.parse_bytes(line).map_err(BadLine::Parse).and_then(|l| {
            match mapper.as_deref_mut().map(|m| m.resolve(l.name, l.ty)) {
                None | Some(Resolved::Keep) => agg.ingest(&l, tel).map(|()| true),
                Some(Resolved::Drop) => {
                    tel.count_drop(DropReason::MappingDrop, 1);
                    Ok(false)
                }
                Some(Resolved::Map { name, labels, bounds }) => {
                    agg.ingest_as(&l, name, labels, bounds.as_ref(), tel).map(|()| true)
                }
            }
        });
        match result {
            Ok(true) => good += 1,
            Ok(false) => {}
            Err(why) => tel.bad_line(why, line),
        }
    }
    tel.lines(good);
}

#[allow(clippy::too_many_arguments)]
fn aggregate_loop(
    rx: Receiver<Vec<u8>>,
    pool: std::sync::mpsc::SyncSender<Vec<u8>>,
    queued_bytes: Arc<std::sync::atomic::AtomicUsize>,
    cfg: ShimConfig,
    tel: Arc<Telemetry>,
    otlp_state: Arc<Mutex<DeltaToCumulative>>,
    export_tx: mpsc::Sender<ExportMetricsServiceRequest>,
    mapper: Option<Mapper>,
) {
    let parser = Parser { max_tags: cfg.ingest.max_tags, max_line_len: cfg.ingest.max_line_len };
    let started_ns = now_ns();
    let mut agg = Aggregator::new(cfg.aggregate.clone(), started_ns);
    let translator = Translator::new(
        &cfg.export.resource,
        cfg.aggregate.temporality,
        cfg.aggregate.buckets.clone(),
    );
    let interval = cfg.aggregate.flush_interval();
    let mut next = Instant::now() + interval;
    let mut mapper = mapper;
    let flush = |agg: &mut Aggregator, last: bool| {
        let now = now_ns();
        if last {
            agg.release_held_totals();
        }
        let statsd = translator.translate(agg, now, &tel);
        // A panic while the state was held cannot leave it half-updated in a way that matters
        // more than losing it (every sum saturates): keep collecting, never drop silently.
        let otlp =
            otlp_state.lock().unwrap_or_else(std::sync::PoisonError::into_inner).collect(&tel);
        let telemetry =
            if cfg.export.self_telemetry { tel.to_otlp(started_ns, now) } else { Vec::new() };
        let req = translator.request(statsd, telemetry, otlp);
        if req.resource_metrics.is_empty() {
            return;
        }
        queue_export(&export_tx, req, last, &tel);
    };
    loop {
        let wake = mapper.as_ref().and_then(Mapper::next_poll).map_or(next, |p| p.min(next));
        match rx.recv_timeout(wake.saturating_duration_since(Instant::now())) {
            Ok(packet) => {
                queued_bytes.fetch_sub(packet.len(), Ordering::Relaxed);
                process_packet_mapped(&packet, &parser, &mut agg, mapper.as_mut(), &tel);
                ingest::give_back(&pool, packet);
            }
            Err(RecvTimeoutError::Timeout) => {}
            Err(RecvTimeoutError::Disconnected) => {
                flush(&mut agg, true);
                return;
            }
        }
        let now = Instant::now();
        if let Some(m) = mapper.as_mut() {
            m.poll(now, &tel);
        }
        if now >= next {
            flush(&mut agg, false);
            next += interval;
            if next <= now {
                next = now + interval;
            }
        }
    }
}
