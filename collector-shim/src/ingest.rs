//! Ingest: sockets → (tee) → a bounded packet queue for the aggregator.
//!
//! - **UDP**: one blocking thread, `SO_RCVBUF` set from the config (the kernel may cap it at
//!   `net.core.rmem_max`; the size actually granted is logged). The socket is non-blocking: the
//!   thread reads whatever the socket holds (up to [`UDP_BATCH_DATAGRAMS`] datagrams /
//!   [`UDP_BATCH_BYTES`]), queues those datagrams as one batch joined by newlines (a datagram is
//!   a list of lines, so the join parses the same), and waits for readability (epoll, through a
//!   current-thread tokio runtime) only when the socket is empty. Under load that is one queue
//!   operation and at most one wake-up of the aggregator per batch instead of per packet.
//! - **TCP**: newline-framed; one thread per connection (at most `max_tcp_connections`; more
//!   are refused, counted in `tcp.refused`, logged at most every 10 s), lines longer than
//!   `max_line_len` are discarded up to the next newline (`oversized_packet`). A connection idle
//!   for `tcp_idle_timeout_ms` is closed (`tcp.idle_closed`).
//! - **Unix datagram**: one blocking thread; the socket file gets `unix_socket_mode`.
//!
//! Receive errors other than "nothing to read" are counted per transport (`receive_errors`).
//!
//! UDP batch buffers are recycled: the aggregator hands each emptied batch back through a small
//! pool channel ([`BatchPool`]) and the UDP thread reuses it, so a steady stream allocates (and
//! page-faults in) no new 64 KiB buffers.
//!
//! Each packet is copied once into the queue. When the queue is full — `queue_capacity` packets
//! or `queue_max_bytes` bytes — the packet is dropped and counted (`queue_full`), so a slow
//! aggregator never grows memory past those bounds. A packet larger than
//! `max_packet_size` is dropped (`oversized_packet`), after the tee has forwarded it.
//! On shutdown every thread drains what its socket already holds, for at most
//! [`SHUTDOWN_DRAIN`] (a client that never pauses cannot hold the shutdown up: the stop flag is
//! read after every datagram or read, not only when a socket is idle), then drops its sender.
use crate::config::IngestConfig;
use crate::error::BuildError;
use crate::tee::Tee;
use crate::telemetry::{DropReason, Telemetry, Transport};
use std::io::{ErrorKind, Read};
use std::net::{SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::os::unix::net::UnixDatagram;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::mpsc::{sync_channel, Receiver, SyncSender, TrySendError};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// How often blocked reads wake up to check for shutdown.
const POLL: Duration = Duration::from_millis(100);
/// Once the stop flag is set, a socket is still read for at most this long (200 ms): what its
/// buffer holds arrives, a sender that never pauses does not delay the final flush.
pub const SHUTDOWN_DRAIN: Duration = Duration::from_millis(200);
const RECV_BUF: usize = 65_536;
/// Most UDP datagrams queued as one batch.
pub const UDP_BATCH_DATAGRAMS: usize = 64;
/// A UDP batch is queued before it would grow past this many bytes (a single larger datagram
/// is queued alone).
pub const UDP_BATCH_BYTES: usize = 64 * 1024;

/// Emptied UDP batch buffers on their way back from the aggregator to the UDP thread.
pub(crate) struct BatchPool {
    /// Where the UDP thread takes buffers from.
    pub take: Receiver<Vec<u8>>,
    /// Where the aggregator gives processed batches back ([`give_back`]).
    pub give: SyncSender<Vec<u8>>,
}

impl BatchPool {
    /// A pool holding at most `cap` idle buffers.
    pub fn new(cap: usize) -> BatchPool {
        let (give, take) = sync_channel(cap.max(1));
        BatchPool { take, give }
    }
}

/// Returns a processed packet's buffer to the pool when it is a UDP batch buffer (full
/// capacity) and the pool has room; otherwise it is freed.
pub(crate) fn give_back(pool: &SyncSender<Vec<u8>>, mut buf: Vec<u8>) {
    if buf.capacity() >= UDP_BATCH_BYTES {
        buf.clear();
        let _ = pool.try_send(buf);
    }
}

/// The bound ingest sockets.
#[derive(Debug)]
pub(crate) struct Listeners {
    pub udp: Option<UdpSocket>,
    pub tcp: Option<TcpListener>,
    pub unix: Option<(UnixDatagram, PathBuf)>,
}

fn bind_err<'a>(
    what: &'static str,
    addr: &'a str,
) -> impl FnOnce(std::io::Error) -> BuildError + 'a {
    move |source| BuildError::Bind { what, addr: addr.to_owned(), source }
}

pub(crate) fn bind(cfg: &IngestConfig) -> Result<Listeners, BuildError> {
    let udp = if cfg.udp.is_empty() {
        None
    } else {
        let addr: SocketAddr = cfg
            .udp
            .parse()
            .map_err(|e| BuildError::invalid(format!("ingest.udp {:?}: {e}", cfg.udp)))?;
        let sock = socket2::Socket::new(
            socket2::Domain::for_address(addr),
            socket2::Type::DGRAM,
            Some(socket2::Protocol::UDP),
        )
        .map_err(bind_err("udp", &cfg.udp))?;
        if let Err(e) = sock.set_recv_buffer_size(cfg.udp_recv_buffer) {
            tracing::warn!(requested = cfg.udp_recv_buffer, error = %e, "cannot set SO_RCVBUF");
        }
        sock.bind(&addr.into()).map_err(bind_err("udp", &cfg.udp))?;
        tracing::info!(
            addr = %addr,
            requested = cfg.udp_recv_buffer,
            granted = sock.recv_buffer_size().unwrap_or(0),
            "udp receive buffer"
        );
        Some(sock.into())
    };
    let tcp = match &cfg.tcp {
        Some(a) if !a.is_empty() => {
            Some(TcpListener::bind(a.as_str()).map_err(bind_err("tcp", a))?)
        }
        _ => None,
    };
    let unix = match &cfg.unix {
        Some(path) => {
            let shown = path.display().to_string();
            if std::fs::symlink_metadata(path).is_ok_and(|m| {
                use std::os::unix::fs::FileTypeExt;
                m.file_type().is_socket()
            }) {
                let _ = std::fs::remove_file(path);
            }
            let sock = UnixDatagram::bind(path).map_err(bind_err("unix", &shown))?;
            sock.set_read_timeout(Some(POLL)).map_err(bind_err("unix", &shown))?;
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(path, std::fs::Permissions::from_mode(cfg.unix_socket_mode))
                .map_err(bind_err("unix", &shown))?;
            Some((sock, path.clone()))
        }
        None => None,
    };
    Ok(Listeners { udp, tcp, unix })
}

/// Everything an ingest thread needs.
#[derive(Clone)]
pub(crate) struct Ctx {
    pub tx: SyncSender<Vec<u8>>,
    pub tee: Option<Arc<Tee>>,
    pub tel: Arc<Telemetry>,
    pub stop: Arc<AtomicBool>,
    pub max_packet: usize,
    pub max_line: usize,
    /// Idle TCP connections are closed after this long (`None`: never).
    pub tcp_idle: Option<Duration>,
    /// Bytes in the packet queue now (the aggregator takes them off).
    pub queued_bytes: Arc<AtomicUsize>,
    /// Most bytes the queue may hold.
    pub max_queued_bytes: usize,
}

impl Ctx {
    /// Tee, size check, enqueue. Returns false when the aggregator is gone.
    pub(crate) fn datagram(&self, bytes: &[u8], t: Transport) -> bool {
        self.tel.packet(t);
        if let Some(tee) = &self.tee {
            tee.forward(bytes, &self.tel);
        }
        if bytes.len() > self.max_packet {
            self.tel.count_drop(DropReason::OversizedPacket, 1);
            return true;
        }
        self.enqueue(bytes.to_vec())
    }

    fn enqueue(&self, packet: Vec<u8>) -> bool {
        self.enqueue_batch(packet, 1)
    }

    /// Queues `lines` (`datagrams` packets joined); a queue full in packets or in bytes drops
    /// them all, counted as `queue_full`.
    fn enqueue_batch(&self, lines: Vec<u8>, datagrams: u64) -> bool {
        let len = lines.len();
        let before = self.queued_bytes.fetch_add(len, Ordering::Relaxed);
        if before + len > self.max_queued_bytes {
            self.queued_bytes.fetch_sub(len, Ordering::Relaxed);
            self.tel.count_drop(DropReason::QueueFull, datagrams);
            return true;
        }
        match self.tx.try_send(lines) {
            Ok(()) => true,
            Err(TrySendError::Full(_)) => {
                self.queued_bytes.fetch_sub(len, Ordering::Relaxed);
                self.tel.count_drop(DropReason::QueueFull, datagrams);
                true
            }
            Err(TrySendError::Disconnected(_)) => {
                self.queued_bytes.fetch_sub(len, Ordering::Relaxed);
                false
            }
        }
    }

    fn stopping(&self) -> bool {
        self.stop.load(Ordering::Acquire)
    }

    /// Whether a reader that keeps receiving must stop now: [`SHUTDOWN_DRAIN`] after it first
    /// saw the stop flag (`since` holds that deadline).
    fn drained(&self, since: &mut Option<Instant>) -> bool {
        if !self.stopping() {
            return false;
        }
        let now = Instant::now();
        now >= *since.get_or_insert(now + SHUTDOWN_DRAIN)
    }
}

/// UDP datagrams gathered for one queue operation.
struct UdpBatch {
    lines: Vec<u8>,
    datagrams: u64,
    pool: Receiver<Vec<u8>>,
}

impl UdpBatch {
    fn new(pool: Receiver<Vec<u8>>) -> Self {
        UdpBatch { lines: Vec::with_capacity(UDP_BATCH_BYTES), datagrams: 0, pool }
    }

    /// An empty buffer: a recycled one if the aggregator gave one back, else a new one.
    fn fresh_buffer(&self) -> Vec<u8> {
        self.pool.try_recv().unwrap_or_else(|_| Vec::with_capacity(UDP_BATCH_BYTES))
    }

    /// Tees, size-checks and appends one datagram; queues the batch first when it would
    /// overflow. Returns false when the aggregator is gone.
    fn add(&mut self, bytes: &[u8], ctx: &Ctx) -> bool {
        ctx.tel.packet(Transport::Udp);
        if let Some(tee) = &ctx.tee {
            tee.forward(bytes, &ctx.tel);
        }
        if bytes.len() > ctx.max_packet {
            ctx.tel.count_drop(DropReason::OversizedPacket, 1);
            return true;
        }
        if !self.lines.is_empty()
            && self.lines.len() + 1 + bytes.len() > UDP_BATCH_BYTES
            && !self.flush(ctx)
        {
            return false;
        }
        if !self.lines.is_empty() {
            self.lines.push(b'\n');
        }
        self.lines.extend_from_slice(bytes);
        self.datagrams += 1;
        true
    }

    fn flush(&mut self, ctx: &Ctx) -> bool {
        if self.datagrams == 0 {
            return true;
        }
        let fresh = self.fresh_buffer();
        let lines = std::mem::replace(&mut self.lines, fresh);
        let n = std::mem::take(&mut self.datagrams);
        ctx.enqueue_batch(lines, n)
    }
}

pub(crate) fn spawn_udp(
    sock: UdpSocket,
    ctx: Ctx,
    pool: Receiver<Vec<u8>>,
) -> std::io::Result<JoinHandle<()>> {
    // runtime and registration happen here, so an error reaches the caller instead of a panic
    let rt = tokio::runtime::Builder::new_current_thread().enable_io().enable_time().build()?;
    sock.set_nonblocking(true)?;
    let sock = {
        let _guard = rt.enter();
        tokio::net::UdpSocket::from_std(sock)?
    };
    std::thread::Builder::new().name("shim-udp".into()).spawn(move || {
        let mut buf = vec![0u8; RECV_BUF];
        let mut batch = UdpBatch::new(pool);
        let mut drain_until = None;
        loop {
            match sock.try_recv(&mut buf) {
                Ok(n) => {
                    if !batch.add(&buf[..n], &ctx) {
                        return;
                    }
                    if batch.datagrams as usize >= UDP_BATCH_DATAGRAMS && !batch.flush(&ctx) {
                        return;
                    }
                    if ctx.drained(&mut drain_until) {
                        batch.flush(&ctx);
                        return;
                    }
                }
                Err(e) if e.kind() == ErrorKind::WouldBlock => {
                    if !batch.flush(&ctx) {
                        return;
                    }
                    if ctx.stopping() {
                        return; // the socket is empty
                    }
                    // inside block_on: the timer needs the runtime's context
                    rt.block_on(async {
                        let _ = tokio::time::timeout(POLL, sock.readable()).await;
                    });
                }
                Err(e) => ctx.tel.receive_error(Transport::Udp, &e),
            }
        }
    })
}

pub(crate) fn spawn_unix(sock: UnixDatagram, ctx: Ctx) -> JoinHandle<()> {
    std::thread::Builder::new()
        .name("shim-unix".into())
        .spawn(move || {
            let mut buf = vec![0u8; RECV_BUF];
            let mut drain_until = None;
            loop {
                match sock.recv(&mut buf) {
                    Ok(n) => {
                        if !ctx.datagram(&buf[..n], Transport::Unix)
                            || ctx.drained(&mut drain_until)
                        {
                            return;
                        }
                    }
                    Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                        if ctx.stopping() {
                            return;
                        }
                    }
                    Err(e) => ctx.tel.receive_error(Transport::Unix, &e),
                }
            }
        })
        .expect("spawn unix thread")
}

/// Accepts until `stop` is set (the pipeline then connects once to wake `accept`).
pub(crate) fn spawn_tcp(listener: TcpListener, ctx: Ctx, max_conns: usize) -> JoinHandle<()> {
    std::thread::Builder::new()
        .name("shim-tcp".into())
        .spawn(move || {
            let live = Arc::new(AtomicUsize::new(0));
            let mut conns = Vec::new();
            for stream in listener.incoming() {
                if ctx.stopping() {
                    break;
                }
                let Ok(stream) = stream else { continue };
                if live.load(Ordering::Relaxed) >= max_conns {
                    ctx.tel.tcp_refused(max_conns);
                    continue;
                }
                live.fetch_add(1, Ordering::Relaxed);
                let (ctx, live) = (ctx.clone(), live.clone());
                conns.push(std::thread::spawn(move || {
                    tcp_conn(stream, &ctx);
                    live.fetch_sub(1, Ordering::Relaxed);
                }));
                conns.retain(|h: &JoinHandle<()>| !h.is_finished());
            }
            for c in conns {
                let _ = c.join();
            }
        })
        .expect("spawn tcp thread")
}

fn tcp_conn(mut stream: TcpStream, ctx: &Ctx) {
    let _ = stream.set_read_timeout(Some(POLL));
    let mut buf = vec![0u8; RECV_BUF];
    let mut pending: Vec<u8> = Vec::new();
    let mut discarding = false;
    let mut drain_until = None;
    let mut last_data = Instant::now();
    loop {
        if ctx.drained(&mut drain_until) {
            break;
        }
        let n = match stream.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                if ctx.stopping() {
                    break;
                }
                if ctx.tcp_idle.is_some_and(|idle| last_data.elapsed() >= idle) {
                    ctx.tel.tcp_idle_closed();
                    break;
                }
                continue;
            }
            Err(e) => {
                ctx.tel.receive_error(Transport::Tcp, &e);
                break;
            }
        };
        last_data = Instant::now();
        let mut data = &buf[..n];
        if discarding {
            match data.iter().position(|b| *b == b'\n') {
                Some(i) => {
                    discarding = false;
                    data = &data[i + 1..];
                }
                None => continue,
            }
        }
        pending.extend_from_slice(data);
        if let Some(last_nl) = pending.iter().rposition(|b| *b == b'\n') {
            let rest = pending.split_off(last_nl + 1);
            let complete = std::mem::replace(&mut pending, rest);
            if !tcp_lines(complete, ctx) {
                return;
            }
        }
        if pending.len() > ctx.max_line {
            ctx.tel.count_drop(DropReason::OversizedPacket, 1);
            pending.clear();
            discarding = true;
        }
    }
    if !pending.is_empty() && !discarding {
        pending.push(b'\n');
        tcp_lines(pending, ctx);
    }
}

fn tcp_lines(lines: Vec<u8>, ctx: &Ctx) -> bool {
    ctx.tel.packet(Transport::Tcp);
    if let Some(tee) = &ctx.tee {
        tee.forward_lines(&lines, &ctx.tel);
    }
    ctx.enqueue(lines)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn processed_udp_batches_come_back_empty_for_reuse_and_other_buffers_are_freed() {
        let pool = BatchPool::new(2);
        let mut batch = Vec::with_capacity(UDP_BATCH_BYTES);
        batch.extend_from_slice(b"a:1|c\nb:2|g");
        let ptr = batch.as_ptr();
        give_back(&pool.give, batch);
        give_back(&pool.give, b"tcp line".to_vec()); // not a batch buffer: freed
        let reused = pool.take.try_recv().unwrap();
        assert_eq!((reused.as_ptr(), reused.len()), (ptr, 0));
        assert!(reused.capacity() >= UDP_BATCH_BYTES);
        assert!(pool.take.try_recv().is_err());
    }

    #[test]
    fn the_queue_is_bounded_in_bytes_and_drops_are_counted() {
        let (tx, rx) = sync_channel::<Vec<u8>>(1000);
        let tel = Arc::new(Telemetry::default());
        let ctx = Ctx {
            tx,
            tee: None,
            tel: Arc::clone(&tel),
            stop: Arc::default(),
            max_packet: 1000,
            max_line: 1000,
            tcp_idle: None,
            queued_bytes: Arc::default(),
            max_queued_bytes: 100,
        };
        assert!(ctx.enqueue(vec![b'a'; 60]));
        assert!(ctx.enqueue(vec![b'b'; 60]), "a full queue drops, it does not stop ingest");
        assert_eq!(tel.snapshot().dropped("queue_full"), 1);
        // the aggregator takes the first off: room again
        let first = rx.try_recv().unwrap();
        ctx.queued_bytes.fetch_sub(first.len(), Ordering::Relaxed);
        assert!(ctx.enqueue(vec![b'c'; 60]));
        assert_eq!(tel.snapshot().dropped("queue_full"), 1);
        assert_eq!(ctx.queued_bytes.load(Ordering::Relaxed), 60);
    }

    #[test]
    fn a_full_pool_frees_what_it_cannot_hold() {
        let pool = BatchPool::new(1);
        give_back(&pool.give, Vec::with_capacity(UDP_BATCH_BYTES));
        give_back(&pool.give, Vec::with_capacity(UDP_BATCH_BYTES));
        assert!(pool.take.try_recv().is_ok());
        assert!(pool.take.try_recv().is_err());
    }
}
