//! The StatsD pipeline: in-process aggregation per flush interval, then lines packed into
//! datagrams on a cadence sink.
//!
//! Semantics kept intact at the daemon:
//! - counters: the sum of the adds since the last flush, one `c` line per series;
//! - gauges: the last value, one `g` line per series that changed;
//! - up-down counters: the series' level (the sum of every add, in any mode), one `g` line per
//!   series that changed while StatsD was active, and every series when StatsD becomes active;
//! - histograms: every sample, one line each (`ms` for time units, converted to milliseconds); past
//!   `max_samples_per_flush` samples in one interval, a uniform reservoir of that many samples is
//!   kept and sent with a declared sample rate (`|@kept/seen`), so the daemon's count stays exact.
//!
//! The caller only touches atomics (and, for histograms, an uncontended mutex around a
//! pre-grown buffer); formatting and socket writes happen on the flusher thread.
//!
//! ## Drop accounting
//! Every line of a datagram that does not reach the daemon is counted, by reason:
//! `lines_dropped_queue_full` when the send queue is full (`EAGAIN`/`EWOULDBLOCK`/`ENOBUFS`),
//! `lines_dropped_socket` for any other error. A Unix datagram socket reports a gone daemon on
//! the send itself. A UDP socket only learns it from the ICMP port-unreachable the datagram
//! provokes, so the sink ([`ConnectedUdpSink`]) is a *connected* socket, which surfaces that
//! ICMP as `ECONNREFUSED`; measured on Linux loopback:
//! - the datagram that provokes the ICMP is lost although its `send` returned `Ok`, and the
//!   refusal is pending on the socket (`SO_ERROR`) as soon as `send` returns (loopback delivers
//!   the ICMP synchronously: 100 000 of 100 000 sends);
//! - a `send` that returns the pending `ECONNREFUSED` does **not** transmit its datagram.
//!
//! So the sink reads `SO_ERROR` after every accepted send and reports a refusal as that
//! datagram's error: both losses above are then counted, once each, and with the daemon gone
//! `lines_dropped_socket` equals lines produced − lines received exactly. Over a real network the
//! ICMP can arrive after later sends; each refusal then still counts one datagram, possibly a
//! later one than the one lost. The socket needs no repair: sends succeed again as soon as the
//! daemon is back on its port.
//!
//! A UDP daemon that is up but reads too slowly drops datagrams in its own receive buffer, which
//! the sender cannot see (on loopback the send buffer never fills: each datagram is handed over
//! on `send`); over a Unix socket the same overload is `EAGAIN` and counted as queue full.
//!
//! Nothing queues in the process while the daemon is down: the cells aggregate between
//! flushes and are drained at every flush whether or not the send succeeds, so memory stays
//! bounded by the series count.
use std::io;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Weak};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use cadence::MetricSink;
use dualmetrics_model::statsd_line::{write_line, LineValue, StatsdType};
use parking_lot::{Condvar, Mutex};

use crate::config::{StatsdAddress, StatsdConfig};
use crate::error::BuildError;
use crate::telemetry::Telemetry;

/// What one series accumulates between two flushes. 16 bytes: a histogram's buffer is boxed so
/// that the (far more numerous) counter and gauge series do not pay for it.
pub(crate) enum Cell {
    Counter { value: AtomicU64 },
    Gauge { bits: AtomicU64, dirty: AtomicBool },
    UpDown { value: AtomicI64, dirty: AtomicBool },
    Histogram { samples: Box<Mutex<Samples>>, max: u32 },
}

/// Histogram samples of one interval: every sample up to the buffer size, then a uniform
/// reservoir (Vitter's algorithm R) of that size.
#[derive(Default)]
pub(crate) struct Samples {
    kept: Vec<f64>,
    /// Samples recorded this interval, kept or not.
    seen: u64,
    /// xorshift state for the reservoir's draws.
    rng: u64,
}

impl Samples {
    /// Records `v`; `false` when it was not kept (the reservoir is full and the draw missed).
    fn push(&mut self, v: f64, max: usize) -> bool {
        self.seen += 1;
        if self.kept.len() < max {
            self.kept.push(v);
            return true;
        }
        if self.rng == 0 {
            self.rng = 0x9E37_79B9_7F4A_7C15;
        }
        self.rng ^= self.rng << 13;
        self.rng ^= self.rng >> 7;
        self.rng ^= self.rng << 17;
        let j = self.rng % self.seen;
        if (j as usize) < max {
            self.kept[j as usize] = v;
            true
        } else {
            false
        }
    }
}

impl Cell {
    /// Whether the next drain would send nothing.
    pub(crate) fn is_empty(&self) -> bool {
        match self {
            Cell::Counter { value, .. } => value.load(Relaxed) == 0,
            Cell::Gauge { dirty, .. } | Cell::UpDown { dirty, .. } => !dirty.load(Relaxed),
            Cell::Histogram { samples, .. } => samples.lock().kept.is_empty(),
        }
    }

    #[inline]
    pub(crate) fn add_u64(&self, v: u64) {
        if let Cell::Counter { value, .. } = self {
            value.fetch_add(v, Relaxed);
        }
    }

    /// Adds `v` to an up-down series' level, which accumulates in every mode (it is the level
    /// OTLP observes too); `send` (StatsD active) marks it for the next flush.
    #[inline]
    pub(crate) fn add_i64(&self, v: i64, send: bool) {
        if let Cell::UpDown { value, dirty, .. } = self {
            value.fetch_add(v, Relaxed);
            if send {
                dirty.store(true, Relaxed);
            }
        }
    }

    /// An up-down series' level: the sum of every add ever made.
    #[inline]
    pub(crate) fn level(&self) -> i64 {
        match self {
            Cell::UpDown { value, .. } => value.load(Relaxed),
            _ => 0,
        }
    }

    /// Sends an up-down series' level at the next flush (StatsD just became active for it).
    pub(crate) fn mark_dirty(&self) {
        if let Cell::UpDown { dirty, .. } = self {
            dirty.store(true, Relaxed);
        }
    }

    #[inline]
    pub(crate) fn set_f64(&self, v: f64) {
        if let Cell::Gauge { bits, dirty, .. } = self {
            bits.store(v.to_bits(), Relaxed);
            dirty.store(true, Relaxed);
        }
    }

    /// Buffers one sample (already in the unit StatsD gets); `false` if it was sampled out (it is
    /// still represented by the declared sample rate of the interval).
    #[inline]
    pub(crate) fn push_sample(&self, v: f64) -> bool {
        if let Cell::Histogram { samples, max, .. } = self {
            return samples.lock().push(v, *max as usize);
        }
        true
    }
}

/// What a [`StatsdSource`] drains its cells into: formats each line and packs it.
pub(crate) struct Drain<'a> {
    scratch: &'a mut String,
    spare: &'a mut Vec<f64>,
    packer: Packer<'a>,
}

impl Drain<'_> {
    /// Sends the interval's lines of one series' `cell` (`line_prefix` is `name:`); `tags` builds
    /// the tag suffix, called only when the cell has something to send.
    pub(crate) fn cell(
        &mut self,
        cell: &Cell,
        line_prefix: &str,
        ty: StatsdType,
        tags: impl FnOnce() -> String,
    ) {
        let value = match cell {
            Cell::Counter { value, .. } => match value.swap(0, Relaxed) {
                0 => return,
                v => LineValue::Uint(v),
            },
            Cell::Gauge { bits, dirty, .. } => {
                if !dirty.swap(false, Relaxed) {
                    return;
                }
                LineValue::Float(f64::from_bits(bits.load(Relaxed)))
            }
            Cell::UpDown { value, dirty, .. } => {
                if !dirty.swap(false, Relaxed) {
                    return;
                }
                LineValue::Int(value.load(Relaxed))
            }
            Cell::Histogram { samples, .. } => {
                let seen = {
                    let mut s = samples.lock();
                    if s.kept.is_empty() {
                        return;
                    }
                    self.spare.clear();
                    std::mem::swap(&mut s.kept, self.spare);
                    std::mem::take(&mut s.seen)
                };
                let kept = self.spare.len();
                let rate = (seen > kept as u64).then(|| kept as f64 / seen as f64);
                let tags = tags();
                for v in self.spare.iter() {
                    self.scratch.clear();
                    write_line(self.scratch, line_prefix, LineValue::Float(*v), ty, rate, &tags);
                    self.packer.push(self.scratch);
                }
                return;
            }
        };
        self.scratch.clear();
        write_line(self.scratch, line_prefix, value, ty, None, &tags());
        self.packer.push(self.scratch);
    }
}

/// Something with StatsD cells to drain at every flush: an instrument's series table.
pub(crate) trait StatsdSource: Send + Sync {
    fn drain(&self, out: &mut Drain<'_>);
}

/// Packs lines into datagrams of at most `max` bytes and sends them on the sink, counting what
/// the socket accepted and what it refused.
struct Packer<'a> {
    sink: &'a dyn MetricSink,
    telemetry: &'a Telemetry,
    buf: String,
    lines: u64,
    max: usize,
}

impl Packer<'_> {
    fn push(&mut self, line: &str) {
        if !self.buf.is_empty() && self.buf.len() + 1 + line.len() > self.max {
            self.send();
        }
        if !self.buf.is_empty() {
            self.buf.push('\n');
        }
        self.buf.push_str(line);
        self.lines += 1 + line.matches('\n').count() as u64;
    }

    fn send(&mut self) {
        if self.buf.is_empty() {
            return;
        }
        let stats = &self.telemetry.statsd;
        match self.sink.emit(&self.buf) {
            Ok(n) => {
                stats.packets_sent.fetch_add(1, Relaxed);
                stats.bytes_sent.fetch_add(n as u64, Relaxed);
                stats.lines_sent.fetch_add(self.lines, Relaxed);
            }
            Err(e) => {
                let counter = if is_queue_full(&e) {
                    &stats.lines_dropped_queue_full
                } else {
                    &stats.lines_dropped_socket
                };
                counter.fetch_add(self.lines, Relaxed);
                *stats.last_error.lock() = Some(e.to_string());
            }
        }
        self.buf.clear();
        self.lines = 0;
    }
}

/// `ENOBUFS` on Linux: the kernel has no buffer space for the datagram (a full queue, like
/// `EAGAIN`, rather than a broken socket).
const ENOBUFS: i32 = 105;

/// Whether a send error means "the queue is full" rather than "the socket or peer is broken".
fn is_queue_full(e: &io::Error) -> bool {
    e.kind() == io::ErrorKind::WouldBlock || e.raw_os_error() == Some(ENOBUFS)
}

/// A non-blocking UDP socket *connected* to the daemon, so that an ICMP port-unreachable is
/// reported (as `ECONNREFUSED`) instead of ignored; see the [module docs](self) for what is lost
/// and how it is counted. The flusher packs datagrams itself, so this sink sends each `emit`
/// as one datagram, as cadence's `UdpMetricSink` does.
#[derive(Debug)]
pub(crate) struct ConnectedUdpSink {
    socket: std::net::UdpSocket,
}

impl ConnectedUdpSink {
    /// Binds an ephemeral local port, connects it to `addr` (resolved once, now) and makes it
    /// non-blocking.
    ///
    /// # Errors
    /// The address does not resolve, or the socket cannot be created.
    pub(crate) fn connect(addr: &str) -> io::Result<Self> {
        let bind = if addr.starts_with('[') { "[::]:0" } else { "0.0.0.0:0" };
        let socket = std::net::UdpSocket::bind(bind)?;
        socket.connect(addr)?;
        socket.set_nonblocking(true)?;
        Ok(ConnectedUdpSink { socket })
    }
}

impl MetricSink for ConnectedUdpSink {
    fn emit(&self, metric: &str) -> io::Result<usize> {
        let n = self.socket.send(metric.as_bytes())?;
        // Loopback delivers the port-unreachable before `send` returns: this datagram is lost.
        match self.socket.take_error()? {
            Some(refused) => Err(refused),
            None => Ok(n),
        }
    }
}

/// Opens the sink a configuration names: a non-blocking connected UDP socket
/// ([`ConnectedUdpSink`]) or a non-blocking Unix datagram socket.
pub(crate) fn open_sink(
    config: &StatsdConfig,
) -> Result<Box<dyn MetricSink + Send + Sync>, BuildError> {
    let err = |e: io::Error| BuildError::Backend { backend: "statsd", reason: e.to_string() };
    match &config.address {
        StatsdAddress::Udp(addr) => {
            let sink = ConnectedUdpSink::connect(addr).map_err(|e| BuildError::Backend {
                backend: "statsd",
                reason: format!("address {addr:?}: {e}"),
            })?;
            Ok(Box::new(sink))
        }
        StatsdAddress::Unix(path) => {
            let socket = std::os::unix::net::UnixDatagram::unbound().map_err(err)?;
            socket.set_nonblocking(true).map_err(err)?;
            Ok(Box::new(cadence::UnixMetricSink::from(path, socket)))
        }
    }
}

struct Shared {
    /// Every instrument's series table, drained in registration order.
    sources: Mutex<Vec<Weak<dyn StatsdSource>>>,
    sink: Box<dyn MetricSink + Send + Sync>,
    telemetry: Arc<Telemetry>,
    max_packet: usize,
    /// Serialises flushes (the timer and explicit `flush()` calls).
    flush_lock: Mutex<FlushScratch>,
    stop: Mutex<bool>,
    wake: Condvar,
}

#[derive(Default)]
struct FlushScratch {
    line: String,
    spare: Vec<f64>,
}

/// The StatsD pipeline: owns the series list, the sink and the flusher thread.
pub(crate) struct StatsdBackend {
    shared: Arc<Shared>,
    thread: Mutex<Option<JoinHandle<()>>>,
}

impl StatsdBackend {
    pub(crate) fn start(
        sink: Box<dyn MetricSink + Send + Sync>,
        config: &StatsdConfig,
        telemetry: Arc<Telemetry>,
    ) -> Result<Self, BuildError> {
        let shared = Arc::new(Shared {
            sources: Mutex::new(Vec::new()),
            sink,
            telemetry,
            max_packet: config.max_packet_bytes,
            flush_lock: Mutex::new(FlushScratch::default()),
            stop: Mutex::new(false),
            wake: Condvar::new(),
        });
        let interval = config.flush_interval;
        let worker = Arc::clone(&shared);
        let thread = std::thread::Builder::new()
            .name("dualmetrics-statsd".into())
            .spawn(move || {
                let mut next = Instant::now() + interval;
                loop {
                    {
                        let mut stop = worker.stop.lock();
                        while !*stop && Instant::now() < next {
                            worker.wake.wait_until(&mut stop, next);
                        }
                        if *stop {
                            break;
                        }
                    }
                    flush(&worker);
                    next += interval;
                    let now = Instant::now();
                    if next < now {
                        next = now + interval;
                    }
                }
                flush(&worker);
            })
            .map_err(|e| BuildError::Backend { backend: "statsd", reason: e.to_string() })?;
        Ok(StatsdBackend { shared, thread: Mutex::new(Some(thread)) })
    }

    /// Adds an instrument's series table to the flush list (until it is dropped).
    pub(crate) fn register(&self, source: Weak<dyn StatsdSource>) {
        self.shared.sources.lock().push(source);
    }

    /// Drains every series now and sends the lines.
    pub(crate) fn flush(&self) {
        flush(&self.shared);
    }

    /// Stops the flusher after a final flush; `false` if that did not finish within `deadline`.
    pub(crate) fn shutdown(&self, deadline: Duration) -> bool {
        *self.shared.stop.lock() = true;
        self.shared.wake.notify_all();
        let Some(handle) = self.thread.lock().take() else { return true };
        let until = Instant::now() + deadline;
        while !handle.is_finished() {
            if Instant::now() >= until {
                return false;
            }
            std::thread::sleep(Duration::from_millis(1));
        }
        handle.join().is_ok()
    }
}

fn flush(shared: &Shared) {
    let mut guard = shared.flush_lock.lock();
    let FlushScratch { line, spare } = &mut *guard;
    // The list is taken out (not cloned) for the walk; sources registered meanwhile are appended
    // back after it.
    let mut list = std::mem::take(&mut *shared.sources.lock());
    let mut out = Drain {
        scratch: line,
        spare,
        packer: Packer {
            sink: &*shared.sink,
            telemetry: &shared.telemetry,
            buf: String::with_capacity(shared.max_packet),
            lines: 0,
            max: shared.max_packet,
        },
    };
    list.retain(|source| match source.upgrade() {
        Some(source) => {
            source.drain(&mut out);
            true
        }
        None => false,
    });
    {
        let mut shared_list = shared.sources.lock();
        list.append(&mut shared_list);
        *shared_list = list;
    }
    out.packer.send();
    let _ = shared.sink.flush();
    shared.telemetry.statsd.flushes.fetch_add(1, Relaxed);
}

#[cfg(test)]
mod size_tests {
    #[test]
    fn a_cell_takes_16_bytes() {
        assert_eq!(std::mem::size_of::<super::Cell>(), 16);
    }
}
