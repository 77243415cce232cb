//! A real StatsD receiver: a UDP or Unix datagram socket read by a background thread.
//!
//! The socket is bound before the constructor returns, so a sender may fire as soon as it has
//! [`StatsdReceiver::local_addr`] (or [`StatsdReceiver::path`]); datagrams queue in the kernel
//! until the thread reads them. Every datagram is split on `\n` and its non-empty lines are
//! stored in arrival order, next to a datagram and a byte counter.

use std::fmt;
use std::io;
use std::net::{SocketAddr, UdpSocket};
use std::os::unix::net::UnixDatagram;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// Size of the buffer one datagram is read into. Larger than any UDP datagram (65,507 bytes of
/// payload) and than the default Unix datagram limit, so nothing is truncated.
const READ_BUFFER: usize = 256 * 1024;

/// Kernel receive buffer requested for the socket (`SO_RCVBUF`; the kernel may cap it at
/// `net.core.rmem_max`), so that a burst is not dropped before the thread reads it.
const KERNEL_RECV_BUFFER: usize = 8 * 1024 * 1024;

/// How often the reader thread checks whether it was asked to stop.
const POLL: Duration = Duration::from_millis(20);

/// How long [`StatsdReceiver::quiet`] waits for traffic to stop before it panics.
const QUIET_LIMIT: Duration = Duration::from_secs(60);

#[derive(Default)]
struct State {
    lines: Vec<String>,
    datagrams: u64,
    bytes: u64,
    last_datagram: Option<Instant>,
}

#[derive(Default)]
struct Shared {
    state: Mutex<State>,
    arrived: Condvar,
    stop: AtomicBool,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        // A panic while holding the lock leaves consistent data (plain pushes), so keep going.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn record(&self, datagram: &[u8]) {
        let text = String::from_utf8_lossy(datagram);
        let mut state = self.lock();
        state.datagrams += 1;
        state.bytes += datagram.len() as u64;
        state.last_datagram = Some(Instant::now());
        state.lines.extend(
            text.split('\n')
                .map(|l| l.strip_suffix('\r').unwrap_or(l))
                .filter(|l| !l.is_empty())
                .map(str::to_owned),
        );
        drop(state);
        self.arrived.notify_all();
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
enum Endpoint {
    Udp(SocketAddr),
    Unix(PathBuf),
}

/// A StatsD receiver listening on a real socket. See the [module docs](self).
///
/// Dropping it (or calling [`stop`](Self::stop)) closes the socket, so a sender then sees
/// connection-refused errors or silent drops, as with a dead daemon.
///
/// ```no_run
/// use std::time::Duration;
/// use dualmetrics_testkit::StatsdReceiver;
///
/// let statsd = StatsdReceiver::bind_udp();
/// let sock = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
/// sock.send_to(b"app.hits:1|c|#env:test", statsd.local_addr()).unwrap();
/// let lines = statsd.wait_for_lines(1, Duration::from_secs(5));
/// assert_eq!(lines, ["app.hits:1|c|#env:test"]);
/// ```
pub struct StatsdReceiver {
    shared: Arc<Shared>,
    endpoint: Endpoint,
    reader: Mutex<Option<JoinHandle<()>>>,
}

/// Returned by the `try_` waits when the condition did not hold in time.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WaitTimeout {
    /// Everything that had arrived when the wait gave up.
    pub lines: Vec<String>,
    /// What was waited for, for the error message.
    pub waited_for: String,
}

impl fmt::Display for WaitTimeout {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "timed out waiting for {}; {} line(s) arrived:",
            self.waited_for,
            self.lines.len()
        )?;
        for line in &self.lines {
            write!(f, "\n  {line}")?;
        }
        Ok(())
    }
}

impl std::error::Error for WaitTimeout {}

impl StatsdReceiver {
    /// Binds UDP on `127.0.0.1:0` and starts reading. Panics if the socket cannot be bound.
    #[track_caller]
    pub fn bind_udp() -> Self {
        Self::try_bind_udp().expect("bind the StatsD UDP receiver on 127.0.0.1:0")
    }

    /// Alias of [`bind_udp`](Self::bind_udp).
    #[track_caller]
    pub fn bind() -> Self {
        Self::bind_udp()
    }

    /// Binds UDP on `127.0.0.1:0` and starts reading.
    pub fn try_bind_udp() -> io::Result<Self> {
        let socket = UdpSocket::bind(("127.0.0.1", 0))?;
        let _ = socket2::SockRef::from(&socket).set_recv_buffer_size(KERNEL_RECV_BUFFER);
        socket.set_read_timeout(Some(POLL))?;
        let endpoint = Endpoint::Udp(socket.local_addr()?);
        Ok(Self::start(endpoint, move |buf| socket.recv(buf)))
    }

    /// Binds a Unix datagram socket at `path` and starts reading. A stale socket file at
    /// `path` is replaced. Panics if the socket cannot be bound.
    #[track_caller]
    pub fn bind_unix(path: impl AsRef<Path>) -> Self {
        let path = path.as_ref();
        Self::try_bind_unix(path)
            .unwrap_or_else(|e| panic!("bind the StatsD Unix receiver at {}: {e}", path.display()))
    }

    /// Binds a Unix datagram socket at `path` and starts reading.
    pub fn try_bind_unix(path: impl AsRef<Path>) -> io::Result<Self> {
        let path = path.as_ref().to_path_buf();
        match std::fs::remove_file(&path) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(e),
        }
        let socket = UnixDatagram::bind(&path)?;
        let _ = socket2::SockRef::from(&socket).set_recv_buffer_size(KERNEL_RECV_BUFFER);
        socket.set_read_timeout(Some(POLL))?;
        Ok(Self::start(Endpoint::Unix(path), move |buf| socket.recv(buf)))
    }

    fn start<R>(endpoint: Endpoint, mut recv: R) -> Self
    where
        R: FnMut(&mut [u8]) -> io::Result<usize> + Send + 'static,
    {
        let shared = Arc::new(Shared::default());
        let thread_shared = Arc::clone(&shared);
        let reader = std::thread::Builder::new()
            .name("statsd-receiver".into())
            .spawn(move || {
                let mut buf = vec![0u8; READ_BUFFER];
                while !thread_shared.stop.load(Ordering::Acquire) {
                    match recv(&mut buf) {
                        Ok(n) => thread_shared.record(&buf[..n]),
                        Err(e)
                            if matches!(
                                e.kind(),
                                io::ErrorKind::WouldBlock
                                    | io::ErrorKind::TimedOut
                                    | io::ErrorKind::Interrupted
                            ) => {}
                        // ICMP errors from earlier sends never concern a receiver; keep reading.
                        Err(_) => std::thread::sleep(POLL),
                    }
                }
                // The socket is owned by `recv` and closes when this thread returns.
            })
            .expect("spawn the StatsD receiver thread");
        Self { shared, endpoint, reader: Mutex::new(Some(reader)) }
    }

    /// The UDP address to send to. Panics for a Unix receiver.
    #[track_caller]
    pub fn local_addr(&self) -> SocketAddr {
        match &self.endpoint {
            Endpoint::Udp(addr) => *addr,
            Endpoint::Unix(path) => {
                panic!("Unix StatsD receiver at {} has no UDP address", path.display())
            }
        }
    }

    /// The socket path to send to. Panics for a UDP receiver.
    #[track_caller]
    pub fn path(&self) -> &Path {
        match &self.endpoint {
            Endpoint::Unix(path) => path,
            Endpoint::Udp(addr) => panic!("UDP StatsD receiver at {addr} has no socket path"),
        }
    }

    /// Every line received so far, in arrival order.
    pub fn lines(&self) -> Vec<String> {
        self.shared.lock().lines.clone()
    }

    /// Every line received so far, parsed with [`parse_line`] (panics on a malformed line).
    #[track_caller]
    pub fn parsed_lines(&self) -> Vec<ParsedLine> {
        self.lines().iter().map(|l| parse_line(l)).collect()
    }

    /// Number of datagrams received so far.
    pub fn datagrams(&self) -> u64 {
        self.shared.lock().datagrams
    }

    /// Number of payload bytes received so far (newlines included).
    pub fn bytes(&self) -> u64 {
        self.shared.lock().bytes
    }

    /// Waits until at least `n` lines arrived and returns all of them; returns as soon as they
    /// are there. Panics on timeout, listing what did arrive.
    #[track_caller]
    pub fn wait_for_lines(&self, n: usize, timeout: Duration) -> Vec<String> {
        self.try_wait_for_lines(n, timeout).unwrap_or_else(|e| panic!("{e}"))
    }

    /// Like [`wait_for_lines`](Self::wait_for_lines), but returns the timeout as an error.
    pub fn try_wait_for_lines(
        &self,
        n: usize,
        timeout: Duration,
    ) -> Result<Vec<String>, WaitTimeout> {
        self.try_wait_until(timeout, |lines| lines.len() >= n)
            .map_err(|e| WaitTimeout { waited_for: format!("{n} line(s)"), ..e })
    }

    /// Waits until `done(lines so far)` is true and returns all lines. The predicate is checked
    /// now and after every datagram. Panics on timeout, listing what did arrive.
    #[track_caller]
    pub fn wait_until(
        &self,
        timeout: Duration,
        done: impl FnMut(&[String]) -> bool,
    ) -> Vec<String> {
        self.try_wait_until(timeout, done).unwrap_or_else(|e| panic!("{e}"))
    }

    /// Like [`wait_until`](Self::wait_until), but returns the timeout as an error.
    pub fn try_wait_until(
        &self,
        timeout: Duration,
        mut done: impl FnMut(&[String]) -> bool,
    ) -> Result<Vec<String>, WaitTimeout> {
        let deadline = Instant::now() + timeout;
        let mut state = self.shared.lock();
        loop {
            if done(&state.lines) {
                return Ok(state.lines.clone());
            }
            let now = Instant::now();
            if now >= deadline {
                return Err(WaitTimeout {
                    lines: state.lines.clone(),
                    waited_for: "the condition".into(),
                });
            }
            state = self
                .shared
                .arrived
                .wait_timeout(state, deadline - now)
                .unwrap_or_else(|e| e.into_inner())
                .0;
        }
    }

    /// Waits until no datagram has arrived for `quiet_for` (counting from now or from the last
    /// datagram, whichever is later), then returns all lines. Use it to assert that nothing
    /// (more) was sent: `assert!(statsd.quiet(Duration::from_millis(200)).is_empty())`.
    /// Panics if traffic does not pause within a minute.
    #[track_caller]
    pub fn quiet(&self, quiet_for: Duration) -> Vec<String> {
        let start = Instant::now();
        let mut state = self.shared.lock();
        loop {
            let since = state.last_datagram.map_or(start, |t| t.max(start));
            let now = Instant::now();
            let silent = now.saturating_duration_since(since);
            if silent >= quiet_for {
                return state.lines.clone();
            }
            assert!(
                now - start < QUIET_LIMIT,
                "StatsD traffic did not pause for {quiet_for:?} within {QUIET_LIMIT:?} ({} lines so far)",
                state.lines.len()
            );
            state = self
                .shared
                .arrived
                .wait_timeout(state, quiet_for - silent)
                .unwrap_or_else(|e| e.into_inner())
                .0;
        }
    }

    /// Closes the socket and stops the reader thread; returns once the socket is closed. Lines
    /// received before remain readable. A Unix socket file is removed. Idempotent.
    pub fn stop(&self) {
        self.shared.stop.store(true, Ordering::Release);
        let handle = self.reader.lock().unwrap_or_else(|e| e.into_inner()).take();
        if let Some(handle) = handle {
            let _ = handle.join();
            if let Endpoint::Unix(path) = &self.endpoint {
                let _ = std::fs::remove_file(path);
            }
        }
    }

    /// Whether [`stop`](Self::stop) was called.
    pub fn is_stopped(&self) -> bool {
        self.shared.stop.load(Ordering::Acquire)
    }
}

impl Drop for StatsdReceiver {
    fn drop(&mut self) {
        self.stop();
    }
}

impl fmt::Debug for StatsdReceiver {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let state = self.shared.lock();
        f.debug_struct("StatsdReceiver")
            .field("endpoint", &self.endpoint)
            .field("datagrams", &state.datagrams)
            .field("bytes", &state.bytes)
            .field("lines", &state.lines.len())
            .finish()
    }
}

/// One StatsD / DogStatsD line split into its parts by [`parse_line`].
#[derive(Clone, Debug, PartialEq)]
pub struct ParsedLine {
    /// The metric name, before the first `:`.
    pub name: String,
    /// The raw value text (may hold several `:`-separated values in DogStatsD).
    pub value: String,
    /// The type: `c`, `g`, `ms`, `h`, `d`, `s`, ...
    pub ty: String,
    /// The `@rate` section, if any.
    pub sample_rate: Option<f64>,
    /// The `#k:v,k2:v2` tags in line order; a tag without `:` has an empty value.
    pub tags: Vec<(String, String)>,
}

impl ParsedLine {
    /// The value as a number. Panics if it is not one.
    #[track_caller]
    pub fn value_f64(&self) -> f64 {
        self.value
            .parse()
            .unwrap_or_else(|e| panic!("StatsD value {:?} of {}: {e}", self.value, self.name))
    }

    /// The value of the first tag named `key`.
    pub fn tag(&self, key: &str) -> Option<&str> {
        self.tags.iter().find(|(k, _)| k == key).map(|(_, v)| v.as_str())
    }
}

/// Parses `name:value|type[|@rate][|#k:v,...]` (other `|` sections such as `|T` or `|c:` are
/// ignored). Test-only and simple: panics on a line without `:` or `|`.
///
/// ```
/// use dualmetrics_testkit::parse_line;
///
/// let p = parse_line("api.latency:12.5|ms|@0.5|#route:/a,canary");
/// assert_eq!((p.name.as_str(), p.value.as_str(), p.ty.as_str()), ("api.latency", "12.5", "ms"));
/// assert_eq!(p.sample_rate, Some(0.5));
/// assert_eq!(p.tag("route"), Some("/a"));
/// assert_eq!(p.tag("canary"), Some(""));
/// ```
#[track_caller]
pub fn parse_line(line: &str) -> ParsedLine {
    try_parse_line(line).unwrap_or_else(|e| panic!("malformed StatsD line {line:?}: {e}"))
}

/// Like [`parse_line`], but returns an error instead of panicking.
pub fn try_parse_line(line: &str) -> Result<ParsedLine, String> {
    let mut sections = line.split('|');
    let head = sections.next().unwrap_or_default();
    let (name, value) = head.split_once(':').ok_or("no ':' between name and value")?;
    if name.is_empty() {
        return Err("empty name".into());
    }
    let ty = sections.next().ok_or("no '|type' section")?;
    if ty.is_empty() {
        return Err("empty type".into());
    }
    let mut parsed = ParsedLine {
        name: name.to_owned(),
        value: value.to_owned(),
        ty: ty.to_owned(),
        sample_rate: None,
        tags: Vec::new(),
    };
    for section in sections {
        if let Some(rate) = section.strip_prefix('@') {
            let rate = rate.parse().map_err(|e| format!("sample rate {rate:?}: {e}"))?;
            parsed.sample_rate = Some(rate);
        } else if let Some(tags) = section.strip_prefix('#') {
            parsed.tags.extend(tags.split(',').filter(|t| !t.is_empty()).map(|t| {
                let (k, v) = t.split_once(':').unwrap_or((t, ""));
                (k.to_owned(), v.to_owned())
            }));
        }
    }
    Ok(parsed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_plain_counter() {
        let p = parse_line("hits:1|c");
        assert_eq!(p.name, "hits");
        assert_eq!(p.value, "1");
        assert_eq!(p.ty, "c");
        assert_eq!(p.sample_rate, None);
        assert!(p.tags.is_empty());
    }

    #[test]
    fn parses_rate_and_tags_in_any_order() {
        let p = parse_line("t:3|ms|#a:1,b:x:y|@0.25");
        assert_eq!(p.sample_rate, Some(0.25));
        assert_eq!(p.tags, [("a".into(), "1".into()), ("b".into(), "x:y".into())]);
    }

    #[test]
    fn ignores_unknown_sections() {
        let p = parse_line("g:-2.5|g|T1700000000|c:abc");
        assert_eq!(p.value_f64(), -2.5);
        assert!(p.tags.is_empty());
    }

    #[test]
    fn keeps_multi_value_raw() {
        assert_eq!(parse_line("h:1:2:3|h").value, "1:2:3");
    }

    #[test]
    fn rejects_malformed() {
        assert!(try_parse_line("nocolon|c").is_err());
        assert!(try_parse_line("name:1").is_err());
        assert!(try_parse_line(":1|c").is_err());
        assert!(try_parse_line("n:1|c|@x").is_err());
    }

    #[test]
    fn wait_timeout_lists_lines() {
        let e = WaitTimeout { lines: vec!["a:1|c".into()], waited_for: "2 line(s)".into() };
        assert_eq!(e.to_string(), "timed out waiting for 2 line(s); 1 line(s) arrived:\n  a:1|c");
    }
}
