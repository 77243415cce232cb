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
//! ## A flush: drain, interleave, pace
//! 1. **Drain**: every series' cell is formatted into the flusher's reusable buffers, one group
//!    of lines per series (nothing is sent while the instruments' tables are walked).
//! 2. **Interleave**: lines are packed into datagrams of at most `max_packet_bytes` taking one
//!    line of each series in turn, so a datagram the daemon drops costs a few samples of many
//!    series instead of a whole series (a line that alone exceeds the limit is dropped and
//!    counted as `lines_dropped_oversize`).
//! 3. **Pace**: datagram `n` leaves no earlier than `bytes before it / pacing_bytes_per_ms`
//!    after the flush started (those due within 2 ms go at once); if the flush would not end
//!    within [`PACING_WINDOW_SHARE`] of the
//!    flush interval at that budget, it is sent at the rate that ends it there
//!    (`pacing_budget_exceeded`). Without pacing, a flush of a high-rate service is one burst of
//!    hundreds of datagrams that a daemon with the kernel's default receive buffer (208 KiB,
//!    about 90 datagrams of 1432 bytes on loopback) drops most of — silently for the sender.
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
//! on `send`). Over a Unix socket the same overload is `EAGAIN` (the daemon's queue holds
//! `net.unix.max_dgram_qlen` datagrams, 10 on a default Linux): the flusher (never an emitting
//! thread) waits and sends the datagram again, for at most [`QUEUE_FULL_RETRY_BUDGET`] per flush,
//! so a reader that is merely slower than a burst loses nothing, and one that does not read at all
//! costs a flush that much time; past the budget a full queue drops the datagram, counted as
//! queue full.
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

mod kinds;
pub(crate) use kinds::line_type;

/// What one series accumulates between two flushes. 16 bytes: a histogram's buffer is boxed so
/// that the (far more numerous) counter and gauge series do not pay for it.
pub enum Cell {
    Counter { value: AtomicU64 },
    Gauge { bits: AtomicU64, dirty: AtomicBool },
    UpDown { value: AtomicI64, dirty: AtomicBool },
    Histogram { samples: Box<Mutex<Samples>>, max: u32 },
}

/// Histogram samples of one interval: every sample up to the buffer size, then a uniform
/// reservoir (Vitter's algorithm R) of that size. With a configured sample rate below 1, a sample
/// first passes a draw at that rate (the lines then declare it, so the daemon's count is right in
/// expectation).
pub struct Samples {
    kept: Vec<f64>,
    /// Samples recorded this interval that passed the rate draw, kept or not.
    seen: u64,
    /// Samples left out by the rate draw this interval (moved to telemetry at the flush).
    skipped_by_rate: u64,
    /// The configured sample rate (`1.0`: every sample is a candidate).
    rate: f64,
    /// xorshift state for the reservoir's and the rate's draws.
    rng: u64,
}

impl Samples {
    pub(crate) fn new(rate: f64) -> Self {
        Samples { kept: Vec::new(), seen: 0, skipped_by_rate: 0, rate, rng: 0 }
    }

    fn next_random(&mut self) -> u64 {
        if self.rng == 0 {
            self.rng = 0x9E37_79B9_7F4A_7C15;
        }
        self.rng ^= self.rng << 13;
        self.rng ^= self.rng >> 7;
        self.rng ^= self.rng << 17;
        self.rng
    }

    /// Records `v`; `false` when the reservoir is full and its draw missed. A sample the rate draw
    /// leaves out returns `true` (it is accounted for by the declared rate, and counted at the
    /// flush). Never allocates once the buffer has grown to an interval's sample count (the
    /// flusher hands back a buffer at least as large as the one it takes).
    fn push(&mut self, v: f64, max: usize) -> bool {
        if self.rate < 1.0 {
            // 53 random bits as a uniform draw in [0, 1).
            let u = (self.next_random() >> 11) as f64 * (1.0 / (1u64 << 53) as f64);
            if u >= self.rate {
                self.skipped_by_rate += 1;
                return true;
            }
        }
        self.seen += 1;
        if self.kept.len() < max {
            self.kept.push(v);
            return true;
        }
        let j = self.next_random() % self.seen;
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

/// The lines of one flush, grouped by series, before they are interleaved into datagrams. Kept
/// by the flusher between flushes, so its buffers keep the capacity a flush needed.
#[derive(Default)]
pub(crate) struct FlushLines {
    /// Every line, back to back (no separator).
    text: String,
    /// End offset in `text` of each line (a line starts where the previous one ends).
    ends: Vec<usize>,
    /// End index in `ends` of each series' group of lines.
    groups: Vec<usize>,
}

impl FlushLines {
    fn clear(&mut self) {
        self.text.clear();
        self.ends.clear();
        self.groups.clear();
    }

    fn line(&self, i: usize) -> &str {
        let start = if i == 0 { 0 } else { self.ends[i - 1] };
        &self.text[start..self.ends[i]]
    }

    fn end_line(&mut self) {
        self.ends.push(self.text.len());
    }

    fn end_group(&mut self) {
        if self.groups.last().copied().unwrap_or(0) != self.ends.len() {
            self.groups.push(self.ends.len());
        }
    }
}

/// How histogram samples become lines.
#[derive(Debug, Clone, Copy)]
pub(crate) struct LineFormat {
    /// DogStatsD protocol 1.1 value packing: one line carries many samples of a series
    /// (`name:1:2:3|ms|#tags`), up to `max_line` bytes.
    pub packing: bool,
    /// Longest line (the largest datagram).
    pub max_line: usize,
}

/// What a [`StatsdSource`] drains its cells into: each series' lines, formatted into the
/// flusher's buffers. Nothing is sent while the sources are walked.
pub(crate) struct Drain<'a> {
    out: &'a mut FlushLines,
    spare: &'a mut Vec<f64>,
    format: LineFormat,
    skipped_by_rate: u64,
}

impl Drain<'_> {
    /// Formats the interval's lines of one series' `cell` (`line_prefix` is `name:`); `tags`
    /// builds the tag suffix, called only when the cell has something to send.
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
                // The buffer handed back is at least as large as the one taken, so the series'
                // next interval does not grow (allocate) on the emit path; it is grown here,
                // outside the lock, so that emits never wait for an allocation.
                let capacity = samples.lock().kept.capacity();
                self.spare.clear();
                self.spare.reserve(capacity);
                let (seen, rate) = {
                    let mut s = samples.lock();
                    self.skipped_by_rate += std::mem::take(&mut s.skipped_by_rate);
                    if s.kept.is_empty() {
                        return;
                    }
                    std::mem::swap(&mut s.kept, self.spare);
                    (std::mem::take(&mut s.seen), s.rate)
                };
                let kept = self.spare.len();
                let rate = rate * kept as f64 / seen.max(kept as u64) as f64;
                let rate = (rate < 1.0).then_some(rate);
                let tags = tags();
                if self.format.packing {
                    self.packed_lines(line_prefix, ty, rate, &tags);
                } else {
                    for v in self.spare.iter() {
                        write_line(
                            &mut self.out.text,
                            line_prefix,
                            LineValue::Float(*v),
                            ty,
                            rate,
                            &tags,
                        );
                        self.out.end_line();
                    }
                }
                self.out.end_group();
                return;
            }
        };
        write_line(&mut self.out.text, line_prefix, value, ty, None, &tags());
        self.out.end_line();
        self.out.end_group();
    }

    /// The samples in `spare` as packed lines (`name:v1:v2:...|type|@rate|#tags`), each at most
    /// `max_line` bytes (at least one value per line).
    fn packed_lines(&mut self, line_prefix: &str, ty: StatsdType, rate: Option<f64>, tags: &str) {
        // The suffix as write_line writes it: `|type`, the rate, the tags.
        let mut suffix = String::new();
        write_line(&mut suffix, "", LineValue::Uint(0), ty, rate, tags);
        let suffix = &suffix[1..];
        let text = &mut self.out.text;
        let mut line_start = text.len();
        let mut values = 0usize;
        for v in self.spare.iter() {
            let mark = text.len();
            if values == 0 {
                text.push_str(line_prefix);
            } else {
                text.push(':');
            }
            write_value(text, *v);
            if values > 0 && text.len() - line_start + suffix.len() > self.format.max_line {
                // This value starts the next line.
                text.truncate(mark);
                text.push_str(suffix);
                self.out.ends.push(text.len());
                line_start = text.len();
                text.push_str(line_prefix);
                write_value(text, *v);
                values = 0;
            }
            values += 1;
        }
        if values > 0 {
            text.push_str(suffix);
            self.out.ends.push(text.len());
        }
    }
}

/// One sample value as `write_line` writes it (an integer when it is one, else shortest float).
fn write_value(out: &mut String, v: f64) {
    let start = out.len();
    write_line(out, "", LineValue::Float(v), StatsdType::Timer, None, "");
    out.truncate(out.len() - "|ms".len());
    debug_assert!(out.len() > start);
}

/// Something with StatsD cells to drain at every flush: an instrument's lines.
pub(crate) trait StatsdSource: Send + Sync {
    fn drain(&self, out: &mut Drain<'_>);
}

/// Spreads a flush's datagrams over time: datagram `n` leaves no earlier than
/// `bytes before it ÷ rate` after the flush started (less at most [`PACING_MIN_SLEEP`]), and a
/// sender that fell behind (a late wake-up) catches up by at most [`PACING_MAX_CATCH_UP_BYTES`]
/// at once.
struct Pacer {
    start: Instant,
    /// Bytes per millisecond; `0.0` sends without pausing.
    bytes_per_ms: f64,
    sent: u64,
    /// Datagrams sent since the last pause.
    run: u64,
    largest_run: u64,
}

/// Most bytes a paced sender that woke up late sends back to back to catch up: 16 datagrams of
/// the default UDP size, well under a tenth of Linux's default 208 KiB receive buffer (which
/// holds about 90 such datagrams on loopback, each charged its ~2.3 KiB buffer).
const PACING_MAX_CATCH_UP_BYTES: u64 = 16 * 1432;

/// The shortest pause the pacer sleeps: datagrams due sooner are sent at once, so a paced flush
/// wakes its thread at most 500 times a second and sends what is due in small groups (at the
/// default budget, two datagrams every 2 ms).
const PACING_MIN_SLEEP: Duration = Duration::from_millis(2);

impl Pacer {
    fn new(bytes_per_ms: f64) -> Self {
        Pacer { start: Instant::now(), bytes_per_ms, sent: 0, run: 0, largest_run: 0 }
    }

    /// Waits until the next datagram of `len` bytes is due.
    fn admit(&mut self, len: usize) {
        if self.bytes_per_ms > 0.0 {
            let due_ms = self.sent as f64 / self.bytes_per_ms;
            let due = self.start + Duration::from_secs_f64(due_ms / 1000.0);
            let now = Instant::now();
            if due >= now + PACING_MIN_SLEEP {
                std::thread::sleep(due - now);
                self.run = 0;
            } else if due > now {
                // Due within the minimum sleep: sent now, a little early, so that the flusher
                // wakes up at most every `PACING_MIN_SLEEP` (each wake-up costs the emitting
                // threads a share of a core on a small machine).
            } else {
                // Behind schedule: forgive the debt beyond the catch-up allowance, so a late
                // wake-up does not turn into a burst.
                let behind = (now - due).as_secs_f64() * 1000.0 * self.bytes_per_ms;
                let allowance = PACING_MAX_CATCH_UP_BYTES as f64;
                if behind > allowance {
                    let forgive_ms = (behind - allowance) / self.bytes_per_ms;
                    self.start += Duration::from_secs_f64(forgive_ms / 1000.0);
                }
            }
        }
        self.sent += len as u64;
        self.run += 1;
        self.largest_run = self.largest_run.max(self.run);
    }
}

/// How long one flush may wait, in total, for a full send queue to accept a datagram again
/// (`EAGAIN`/`ENOBUFS`, what a Unix datagram socket answers while its reader is behind): 250 ms.
/// Waits start at [`QUEUE_FULL_FIRST_WAIT`] and double up to 8 ms.
pub(crate) const QUEUE_FULL_RETRY_BUDGET: Duration = Duration::from_millis(250);
/// The first wait for a full send queue: 200 µs.
const QUEUE_FULL_FIRST_WAIT: Duration = Duration::from_micros(200);
const QUEUE_FULL_MAX_WAIT: Duration = Duration::from_millis(8);

/// Packs lines into datagrams of at most `max` bytes and sends them on the sink, paced, counting
/// what the socket accepted and what it refused.
struct Packer<'a> {
    sink: &'a dyn MetricSink,
    telemetry: &'a Telemetry,
    buf: &'a mut String,
    lines: u64,
    max: usize,
    pacer: Pacer,
    packets: u64,
    bytes: u64,
    /// What is left of this flush's [`QUEUE_FULL_RETRY_BUDGET`].
    retry_budget: Duration,
}

impl Packer<'_> {
    fn push(&mut self, line: &str) {
        let stats = &self.telemetry.statsd;
        if line.len() > self.max {
            // It cannot fit any datagram of the configured size: dropped, counted.
            stats.lines_dropped_oversize.fetch_add(1 + line.matches('\n').count() as u64, Relaxed);
            return;
        }
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
        self.pacer.admit(self.buf.len());
        let stats = &self.telemetry.statsd;
        let mut result = self.sink.emit(self.buf);
        let mut wait = QUEUE_FULL_FIRST_WAIT;
        while result.as_ref().is_err_and(is_queue_full) && !self.retry_budget.is_zero() {
            let slept = wait.min(self.retry_budget);
            std::thread::sleep(slept);
            self.retry_budget -= slept;
            wait = (wait * 2).min(QUEUE_FULL_MAX_WAIT);
            result = self.sink.emit(self.buf);
        }
        match result {
            Ok(n) => {
                stats.packets_sent.fetch_add(1, Relaxed);
                stats.bytes_sent.fetch_add(n as u64, Relaxed);
                stats.lines_sent.fetch_add(self.lines, Relaxed);
                self.packets += 1;
                self.bytes += n as u64;
            }
            Err(e) => {
                let (lines, packets) = if is_queue_full(&e) {
                    (&stats.lines_dropped_queue_full, &stats.send_errors_queue_full)
                } else {
                    (&stats.lines_dropped_socket, &stats.send_errors_socket)
                };
                lines.fetch_add(self.lines, Relaxed);
                packets.fetch_add(1, Relaxed);
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
    format: LineFormat,
    /// The pacing budget in bytes per millisecond (`0`: unpaced).
    pacing_bytes_per_ms: u64,
    interval: Duration,
    /// Serialises flushes (the timer and explicit `flush()` calls).
    flush_lock: Mutex<FlushScratch>,
    stop: Mutex<bool>,
    /// How long the final flush (at shutdown) may take, set by `shutdown`.
    final_window: Mutex<Option<Duration>>,
    wake: Condvar,
}

#[derive(Default)]
struct FlushScratch {
    lines: FlushLines,
    spare: Vec<f64>,
    datagram: String,
    /// Per series group: the next line to send.
    cursors: Vec<usize>,
    /// Groups with lines left, in round-robin order.
    active: Vec<usize>,
}

/// Share of the flush interval over which a flush's datagrams may be spread: a flush whose bytes
/// do not fit in it at the pacing budget is sent faster (counted in `pacing_budget_exceeded`),
/// so that it ends before the next flush starts.
pub(crate) const PACING_WINDOW_SHARE: f64 = 0.8;

/// The StatsD pipeline: owns the series list, the sink and the flusher thread.
pub struct StatsdBackend {
    shared: Arc<Shared>,
    thread: Mutex<Option<JoinHandle<()>>>,
    /// The configuration's `tags`, on every line.
    global_tags: Vec<(String, String)>,
    /// Histogram samples kept per series and flush.
    max_samples_per_flush: usize,
    telemetry: Arc<Telemetry>,
}

impl StatsdBackend {
    pub(crate) fn start(
        sink: Box<dyn MetricSink + Send + Sync>,
        config: &StatsdConfig,
        global_tags: Vec<(String, String)>,
        telemetry: Arc<Telemetry>,
    ) -> Result<Self, BuildError> {
        let shared = Arc::new(Shared {
            sources: Mutex::new(Vec::new()),
            sink,
            telemetry: Arc::clone(&telemetry),
            max_packet: config.max_packet_bytes,
            format: LineFormat { packing: config.value_packing, max_line: config.max_packet_bytes },
            pacing_bytes_per_ms: config.pacing_bytes_per_ms,
            interval: config.flush_interval,
            flush_lock: Mutex::new(FlushScratch::default()),
            stop: Mutex::new(false),
            final_window: Mutex::new(None),
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
                    flush(&worker, worker.interval.mul_f64(PACING_WINDOW_SHARE));
                    next += interval;
                    let now = Instant::now();
                    if next < now {
                        next = now + interval;
                    }
                }
                let window = worker.final_window.lock().unwrap_or(worker.interval);
                flush(&worker, window);
            })
            .map_err(|e| BuildError::Backend { backend: "statsd", reason: e.to_string() })?;
        Ok(StatsdBackend {
            shared,
            thread: Mutex::new(Some(thread)),
            global_tags,
            max_samples_per_flush: config.max_samples_per_flush,
            telemetry,
        })
    }

    /// Adds an instrument's lines to the flush list (until they are dropped).
    fn register(&self, source: Weak<dyn StatsdSource>) {
        self.shared.sources.lock().push(source);
    }

    /// Drains every series now and sends the lines, paced as a timed flush is.
    fn flush_now(&self) {
        flush(&self.shared, self.shared.interval.mul_f64(PACING_WINDOW_SHARE));
    }

    /// Stops the flusher after a final flush; `false` if that did not finish within `deadline`.
    /// The final flush is paced to end within half the deadline.
    fn stop(&self, deadline: Duration) -> bool {
        *self.shared.final_window.lock() =
            Some(deadline.min(self.shared.interval.mul_f64(PACING_WINDOW_SHARE * 2.0)) / 2);
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

impl crate::backend::Backend for StatsdBackend {
    const NAME: &'static str = "statsd";

    /// Drains and sends now (socket failures are counted, not returned).
    fn flush(&self) -> Result<(), crate::error::ShutdownError> {
        self.flush_now();
        Ok(())
    }

    fn shutdown(&self, deadline: Duration) -> Result<(), crate::error::ShutdownError> {
        if self.stop(deadline) {
            Ok(())
        } else {
            Err(crate::error::ShutdownError::Timeout { backend: "statsd", deadline })
        }
    }
}

/// One flush: drains every source into lines grouped by series, then sends them interleaved
/// (one line of each series in turn, so that a lost datagram takes a few samples of many series
/// rather than a whole series), packed into datagrams of at most `max_packet` bytes, paced at the
/// budget or, if the flush does not fit `window` at the budget, at the rate that fits it.
fn flush(shared: &Shared, window: Duration) {
    let mut guard = shared.flush_lock.lock();
    let FlushScratch { lines, spare, datagram, cursors, active } = &mut *guard;
    lines.clear();
    // The list is taken out (not cloned) for the walk; sources registered meanwhile are appended
    // back after it.
    let mut list = std::mem::take(&mut *shared.sources.lock());
    let mut drain = Drain { out: lines, spare, format: shared.format, skipped_by_rate: 0 };
    list.retain(|source| match source.upgrade() {
        Some(source) => {
            source.drain(&mut drain);
            true
        }
        None => false,
    });
    let skipped = drain.skipped_by_rate;
    {
        let mut shared_list = shared.sources.lock();
        list.append(&mut shared_list);
        *shared_list = list;
    }
    let stats = &shared.telemetry.statsd;
    if skipped > 0 {
        stats.samples_skipped_by_rate.fetch_add(skipped, Relaxed);
    }

    // The rate: the budget, or faster if the flush would not end within the window.
    let total_bytes = (lines.text.len() + lines.ends.len()) as f64;
    let budget = shared.pacing_bytes_per_ms as f64;
    let window_ms = (window.as_secs_f64() * 1000.0).max(1.0);
    let bytes_per_ms = if budget > 0.0 && total_bytes / budget > window_ms {
        stats.pacing_budget_exceeded.fetch_add(1, Relaxed);
        total_bytes / window_ms
    } else {
        budget
    };

    let started = Instant::now();
    datagram.clear();
    datagram.reserve(shared.max_packet);
    let mut packer = Packer {
        sink: &*shared.sink,
        telemetry: &shared.telemetry,
        buf: datagram,
        lines: 0,
        max: shared.max_packet,
        pacer: Pacer::new(bytes_per_ms),
        packets: 0,
        bytes: 0,
        retry_budget: QUEUE_FULL_RETRY_BUDGET,
    };
    // Round robin over the series' groups of lines.
    cursors.clear();
    active.clear();
    let mut first = 0;
    for (g, &end) in lines.groups.iter().enumerate() {
        cursors.push(first);
        active.push(g);
        first = end;
    }
    while !active.is_empty() {
        active.retain(|&g| {
            let i = cursors[g];
            packer.push(lines.line(i));
            cursors[g] = i + 1;
            cursors[g] < lines.groups[g]
        });
    }
    packer.send();
    let _ = shared.sink.flush();
    stats.last_flush_packets.store(packer.packets, Relaxed);
    stats.last_flush_bytes.store(packer.bytes, Relaxed);
    stats.last_flush_send_micros.store(started.elapsed().as_micros() as u64, Relaxed);
    stats.max_flush_packets.fetch_max(packer.packets, Relaxed);
    stats.largest_burst_packets.fetch_max(packer.pacer.largest_run, Relaxed);
    stats.flushes.fetch_add(1, Relaxed);
}

#[cfg(test)]
mod size_tests {
    #[test]
    fn a_cell_takes_16_bytes() {
        assert_eq!(std::mem::size_of::<super::Cell>(), 16);
    }
}
