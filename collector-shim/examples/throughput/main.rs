//! End-to-end UDP throughput: the highest rate each contender receives with **zero loss**, the
//! shim (in process, real translate + OTLP gRPC export) side by side with the reference StatsD
//! daemon (Etsy `statsd` 0.9.0 on node, from the lab install) on the same stream, in one run.
//!
//! ```text
//! cargo run --release -p dualmetrics-shim --example throughput            # both streams, ~2-3 min
//! cargo run --release -p dualmetrics-shim --example throughput -- --help
//! ```
//!
//! How one trial works: sender threads (`--senders`, default 2) send a pre-built packet list,
//! paced at a target rate (lines/s), to one contender for `--trial-ms`; then the contender's own counter of received
//! lines is polled until it reaches the number sent or stops moving. Zero loss = equal.
//! - shim: `dualmetrics.shim.lines` (accepted lines) from its telemetry; bad lines and drops are
//!   printed too. Tee off; export: OTLP gRPC to an in-process receiver (testkit), flush 1 s.
//! - daemon: `statsd.metrics_received` summed over flushes by a counting backend
//!   (`count_backend.js`, read through the admin `stats` command); flush 1 s; no other backend.
//!
//! The search per contender: the rate doubles from `--start-rate` until a trial loses lines, then
//! bisects (geometric mean) between the last clean and the first lossy rate, then re-runs the
//! best clean rate once to confirm it (stepping down 10% after a loss, at most 6 tries). Contenders run one after
//! the other (never at once: the machine is small), on the same packets.
//!
//! Both sockets get the same `SO_RCVBUF` request (`--rcvbuf`): the shim via its
//! `ingest.udp_recv_buffer`; the daemon through `udp_rcvbuf_server.js`, statsd's `servers/udp.js`
//! plus `setRecvBufferSize` (stock statsd never sets it and gets `net.core.rmem_default`).
//! The daemon is installed the way `scripts/lab/up.sh` installs it when missing
//! (`LAB_INSTALL_ONLY=1 LAB_COMPONENTS=statsd`), started on free loopback ports and killed by PID.
use clap::{Parser, ValueEnum};
use dualmetrics_shim::{RunningShim, Shim, ShimConfig};
use dualmetrics_testkit::OtlpGrpcReceiver;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const COUNT_BACKEND_JS: &str = include_str!("count_backend.js");
const UDP_SERVER_JS: &str = include_str!("udp_rcvbuf_server.js");
/// Largest multi-line packet (bytes): below a 1500-byte MTU, as StatsD clients batch.
const MAX_PACKET_BYTES: usize = 1400;
/// Distinct lines in the pre-built stream (cycled by the sender).
const STREAM_LINES: usize = 8192;
/// How long a contender's received counter may stay unchanged before a trial is judged.
const SETTLE: Duration = Duration::from_millis(400);
/// Longest wait for a contender to catch up after a trial.
const DRAIN_DEADLINE: Duration = Duration::from_secs(10);
/// Tries to confirm the best clean rate, stepping down 10% after each lossy try.
const CONFIRM_STEPS: usize = 6;
/// The sender counts as keeping up when it achieved this share of the target rate.
const SENDER_KEEPS_UP: f64 = 0.97;

#[derive(Parser, Debug, Clone)]
#[command(about = "Zero-loss UDP throughput: dualmetrics shim vs the reference statsd daemon")]
struct Args {
    /// Which packet stream(s): multi-line packets of up to 1400 bytes, one line per packet, or both.
    #[arg(long, value_enum, default_value_t = StreamKind::Both)]
    stream: StreamKind,
    /// Which contender(s) to measure.
    #[arg(long, value_enum, default_value_t = Who::Both)]
    contenders: Who,
    /// Sender threads (each sends rate/N from its own socket; one thread tops out near 170k
    /// packets/s here, below what the shim takes on single-line packets).
    #[arg(long, default_value_t = 2)]
    senders: usize,
    /// Duration of one trial (sending time), ms.
    #[arg(long, default_value_t = 2000)]
    trial_ms: u64,
    /// First rate tried, lines/s.
    #[arg(long, default_value_t = 25_000.0)]
    start_rate: f64,
    /// Never try above this rate, lines/s.
    #[arg(long, default_value_t = 20_000_000.0)]
    max_rate: f64,
    /// Bisection steps after the first lossy rate.
    #[arg(long, default_value_t = 4)]
    bisect_steps: u32,
    /// Time budget of one contender's search on one stream, s (the search stops bisecting then).
    #[arg(long, default_value_t = 40)]
    budget_s: u64,
    /// SO_RCVBUF requested for both contenders (the kernel caps it at net.core.rmem_max, then doubles it).
    #[arg(long, default_value_t = 4 * 1024 * 1024)]
    rcvbuf: usize,
    /// Where the statsd package is installed (scripts/lab/up.sh's LAB_PREFIX).
    #[arg(long, env = "LAB_PREFIX", default_value = "/opt/dualmetrics-lab")]
    lab_prefix: PathBuf,
}

#[derive(ValueEnum, Debug, Clone, Copy, PartialEq, Eq)]
enum StreamKind {
    Multi,
    Single,
    Both,
}

#[derive(ValueEnum, Debug, Clone, Copy, PartialEq, Eq)]
enum Who {
    Shim,
    Daemon,
    Both,
}

/// The packets one trial cycles through.
struct Stream {
    name: &'static str,
    packets: Vec<(Vec<u8>, u64)>, // (bytes, lines)
    lines: u64,
    bytes: usize,
}

impl Stream {
    fn lines_per_packet(&self) -> f64 {
        self.lines as f64 / self.packets.len() as f64
    }
}

/// A realistic mix over ~600 series: 40% counters (a quarter sampled at 0.5), 30% timers,
/// 20% gauges, 10% sets, every line with 1-3 DogStatsD tags. Deterministic (xorshift).
fn lines() -> Vec<String> {
    let mut s: u64 = 0x9E37_79B9_7F4A_7C15;
    let mut rnd = move |n: u64| {
        s ^= s << 13;
        s ^= s >> 7;
        s ^= s << 17;
        s % n
    };
    let routes =
        ["/", "/login", "/cart", "/checkout", "/search", "/items", "/users", "/api/v2/orders"];
    (0..STREAM_LINES)
        .map(|_| {
            let route = routes[rnd(routes.len() as u64) as usize];
            let svc = rnd(20);
            match rnd(10) {
                0..=2 => format!(
                    "shop.http.requests:1|c|#env:prod,route:{route},status:{}",
                    [200, 200, 200, 404, 500][rnd(5) as usize]
                ),
                3 => format!("shop.http.bytes:{}|c|@0.5|#route:{route}", 200 + rnd(5000)),
                4..=6 => {
                    format!("shop.http.latency:{}.{}|ms|#env:prod,route:{route}", rnd(800), rnd(10))
                }
                7 | 8 => format!("shop.queue.depth:{}|g|#queue:q{svc}", rnd(1000)),
                _ => format!("shop.users.active:u{}|s|#svc:s{svc}", rnd(5000)),
            }
        })
        .collect()
}

fn build_stream(kind: StreamKind) -> Stream {
    let lines = lines();
    let mut packets = Vec::new();
    match kind {
        StreamKind::Single => {
            packets.extend(lines.iter().map(|l| (l.as_bytes().to_vec(), 1)));
        }
        _ => {
            let mut cur: Vec<u8> = Vec::with_capacity(MAX_PACKET_BYTES);
            let mut n = 0;
            for l in &lines {
                if !cur.is_empty() && cur.len() + 1 + l.len() > MAX_PACKET_BYTES {
                    packets.push((std::mem::take(&mut cur), n));
                    n = 0;
                }
                if !cur.is_empty() {
                    cur.push(b'\n');
                }
                cur.extend_from_slice(l.as_bytes());
                n += 1;
            }
            if !cur.is_empty() {
                packets.push((cur, n));
            }
        }
    }
    Stream {
        name: if kind == StreamKind::Single { "single-line packets" } else { "multi-line packets" },
        lines: packets.iter().map(|p| p.1).sum(),
        bytes: packets.iter().map(|p| p.0.len()).sum(),
        packets,
    }
}

/// What a contender has received so far (cumulative).
#[derive(Debug, Clone, Copy, Default)]
struct Counts {
    lines: u64,
    packets: u64,
    bad: u64,
}

trait Contender {
    fn name(&self) -> &'static str;
    fn addr(&self) -> SocketAddr;
    fn counts(&mut self) -> Result<Counts, String>;
    fn describe(&self) -> String;
    /// CPU time (user + system) the contender has used so far, in clock ticks.
    fn cpu_ticks(&self) -> u64;
}

/// utime + stime of one `/proc/.../stat` line (fields 14 and 15; the comm may hold spaces).
fn stat_ticks(stat: &str) -> u64 {
    let rest = stat.rsplit_once(')').map_or("", |r| r.1);
    let f: Vec<&str> = rest.split_whitespace().collect();
    // rest starts at field 3 (state): utime is field 14 -> index 11
    f.get(11).and_then(|v| v.parse::<u64>().ok()).unwrap_or(0)
        + f.get(12).and_then(|v| v.parse::<u64>().ok()).unwrap_or(0)
}

/// Clock ticks per second (`getconf CLK_TCK`, 100 when unknown).
fn clk_tck() -> f64 {
    Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|o| String::from_utf8_lossy(&o.stdout).trim().parse::<f64>().ok())
        .unwrap_or(100.0)
}

// ------------------------------------------------------------------ the shim, in process
struct ShimContender {
    shim: Option<RunningShim>,
    addr: SocketAddr,
    sink: OtlpGrpcReceiver,
    granted: usize,
}

impl ShimContender {
    fn start(rcvbuf: usize) -> Result<Self, String> {
        let sink = OtlpGrpcReceiver::start();
        let mut cfg = ShimConfig::loopback();
        cfg.ingest.udp_recv_buffer = rcvbuf;
        cfg.aggregate.flush_interval_ms = 1000;
        cfg.export.endpoint = sink.endpoint();
        let bound = Shim::bind(cfg).map_err(|e| format!("shim: {e}"))?;
        let addr = bound.udp_addr().ok_or("shim has no UDP address")?;
        // what the kernel granted (the shim logs it too); read back on a same-config socket
        let probe = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::DGRAM, None)
            .map_err(|e| e.to_string())?;
        let _ = probe.set_recv_buffer_size(rcvbuf);
        let granted = probe.recv_buffer_size().unwrap_or(0);
        Ok(ShimContender { shim: Some(bound.spawn()), addr, sink, granted })
    }
}

impl Contender for ShimContender {
    fn name(&self) -> &'static str {
        "dualmetrics shim"
    }
    fn addr(&self) -> SocketAddr {
        self.addr
    }
    fn counts(&mut self) -> Result<Counts, String> {
        self.sink.clear(); // keep the sink's memory bounded; exports keep flowing
        let s = self.shim.as_ref().ok_or("shim stopped")?.telemetry().snapshot();
        Ok(Counts {
            lines: s.lines,
            packets: s.packets.get("udp").copied().unwrap_or(0),
            bad: s.bad_lines.values().sum::<u64>() + s.drops.values().sum::<u64>(),
        })
    }
    fn cpu_ticks(&self) -> u64 {
        // the shim's threads: shim-udp, shim-aggregate, shim-runtime and its tokio workers
        // (comm is cut at 15 bytes); not the sender (main thread) nor the OTLP sink's runtime
        let Ok(dir) = std::fs::read_dir("/proc/self/task") else { return 0 };
        dir.flatten()
            .filter_map(|e| std::fs::read_to_string(e.path().join("stat")).ok())
            .filter(|st| {
                let comm =
                    st.split_once('(').and_then(|r| r.1.rsplit_once(')')).map_or("", |r| r.0);
                comm.starts_with("shim-") || comm.starts_with("tokio-runtime-w")
            })
            .map(|st| stat_ticks(&st))
            .sum()
    }
    fn describe(&self) -> String {
        format!(
            "dualmetrics shim (in process): udp {} SO_RCVBUF granted {} B, flush 1 s, tee off, OTLP gRPC export to {}",
            self.addr,
            self.granted,
            self.sink.endpoint()
        )
    }
}

impl Drop for ShimContender {
    fn drop(&mut self) {
        if let Some(s) = self.shim.take() {
            match s.shutdown() {
                Ok(t) => eprintln!(
                    "shim stopped: {} lines, {} exports, {} export errors, drops {:?}",
                    t.lines, t.exports, t.export_errors, t.drops
                ),
                Err(e) => eprintln!("shim shutdown: {e}"),
            }
        }
        self.sink.stop();
    }
}

// ------------------------------------------------------------------ the reference daemon
struct DaemonContender {
    child: Child,
    addr: SocketAddr,
    mgmt: SocketAddr,
    log: PathBuf,
    version: String,
    _dir: tempfile::TempDir,
}

fn free_port() -> Result<u16, String> {
    // a port free for both UDP and TCP, released just before the daemon binds it
    for _ in 0..50 {
        let u = UdpSocket::bind("127.0.0.1:0").map_err(|e| e.to_string())?;
        let port = u.local_addr().map_err(|e| e.to_string())?.port();
        if std::net::TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return Ok(port);
        }
    }
    Err("no free port".into())
}

fn ensure_statsd(prefix: &Path) -> Result<(PathBuf, String), String> {
    let dir = prefix.join("statsd");
    let js = dir.join("node_modules/statsd/stats.js");
    if !js.exists() {
        let repo = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
        let lab = tempfile::tempdir().map_err(|e| e.to_string())?;
        eprintln!("statsd missing under {}: installing it with scripts/lab/up.sh", dir.display());
        let st = Command::new("bash")
            .arg(repo.join("scripts/lab/up.sh"))
            .env("LAB_INSTALL_ONLY", "1")
            .env("LAB_COMPONENTS", "statsd")
            .env("LAB_WITH_VENV", "0")
            .env("LAB_PREFIX", prefix)
            .env("LAB_DIR", lab.path())
            .status()
            .map_err(|e| format!("run up.sh: {e}"))?;
        if !st.success() || !js.exists() {
            return Err(format!("up.sh could not install statsd ({st}); see its log above"));
        }
    }
    let pkg = std::fs::read_to_string(dir.join("node_modules/statsd/package.json"))
        .map_err(|e| e.to_string())?;
    let version = pkg
        .split("\"version\"")
        .nth(1)
        .and_then(|r| r.split('"').nth(1))
        .unwrap_or("unknown")
        .to_owned();
    Ok((js, version))
}

impl DaemonContender {
    fn start(prefix: &Path, rcvbuf: usize) -> Result<Self, String> {
        let (js, version) = ensure_statsd(prefix)?;
        let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
        let backend = dir.path().join("count_backend.js");
        let server = dir.path().join("udp_rcvbuf_server.js");
        std::fs::write(&backend, COUNT_BACKEND_JS).map_err(|e| e.to_string())?;
        std::fs::write(&server, UDP_SERVER_JS).map_err(|e| e.to_string())?;
        let (port, mgmt_port) = (free_port()?, free_port()?);
        let config = dir.path().join("config.js");
        std::fs::write(
            &config,
            format!(
                "{{\n  servers: [ {{ server: {server:?}, address: \"127.0.0.1\", port: {port}, recvBufferSize: {rcvbuf} }} ],\n  \
                 mgmt_address: \"127.0.0.1\",\n  mgmt_port: {mgmt_port},\n  flushInterval: 1000,\n  \
                 percentThreshold: [90, 99],\n  automaticConfigReload: false,\n  backends: [ {backend:?} ]\n}}\n"
            ),
        )
        .map_err(|e| e.to_string())?;
        let log = dir.path().join("statsd.log");
        let out = std::fs::File::create(&log).map_err(|e| e.to_string())?;
        let child = Command::new("node")
            .arg(&js)
            .arg(&config)
            .stdin(Stdio::null())
            .stdout(out.try_clone().map_err(|e| e.to_string())?)
            .stderr(out)
            .spawn()
            .map_err(|e| format!("start node: {e}"))?;
        let mut d = DaemonContender {
            child,
            addr: SocketAddr::from(([127, 0, 0, 1], port)),
            mgmt: SocketAddr::from(([127, 0, 0, 1], mgmt_port)),
            log,
            version,
            _dir: dir,
        };
        // ready = the admin port answers and one flush happened (the backend holds the counters)
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            if let Ok(Some(st)) = d.child.try_wait() {
                return Err(format!("statsd exited ({st}): {}", d.log_text()));
            }
            if d.stat("bench.flushes").is_ok_and(|f| f >= 1) && d.log_text().contains("granted") {
                return Ok(d);
            }
            if Instant::now() > deadline {
                return Err(format!("statsd not ready after 15 s: {}", d.log_text()));
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    fn stats(&self) -> Result<String, String> {
        let mut s = TcpStream::connect_timeout(&self.mgmt, Duration::from_secs(2))
            .map_err(|e| e.to_string())?;
        s.set_read_timeout(Some(Duration::from_secs(10))).map_err(|e| e.to_string())?;
        s.write_all(b"stats\n").map_err(|e| e.to_string())?;
        let mut out = String::new();
        let mut buf = [0u8; 4096];
        while !out.contains("END") {
            let n = s.read(&mut buf).map_err(|e| e.to_string())?;
            if n == 0 {
                break;
            }
            out.push_str(&String::from_utf8_lossy(&buf[..n]));
        }
        Ok(out)
    }

    fn stat(&self, key: &str) -> Result<u64, String> {
        let out = self.stats()?;
        let prefix = format!("{key}: ");
        out.lines()
            .find_map(|l| l.strip_prefix(prefix.as_str()))
            .and_then(|v| v.trim().parse::<f64>().ok())
            .map(|v| v as u64)
            .ok_or_else(|| format!("no {key} in stats output {out:?}"))
    }
}

impl Contender for DaemonContender {
    fn name(&self) -> &'static str {
        "statsd daemon (node)"
    }
    fn addr(&self) -> SocketAddr {
        self.addr
    }
    fn counts(&mut self) -> Result<Counts, String> {
        let out = self.stats()?;
        let get = |k: &str| {
            out.lines()
                .find_map(|l| l.strip_prefix(&format!("bench.{k}_total: ")[..]).map(str::to_owned))
                .and_then(|v| v.trim().parse::<f64>().ok())
                .map(|v| v as u64)
                .ok_or_else(|| format!("no bench.{k}_total in {out:?}"))
        };
        Ok(Counts {
            lines: get("metrics_received")?,
            packets: get("packets_received")?,
            bad: get("bad_lines_seen")?,
        })
    }
    fn cpu_ticks(&self) -> u64 {
        std::fs::read_to_string(format!("/proc/{}/stat", self.child.id()))
            .map_or(0, |st| stat_ticks(&st))
    }
    fn describe(&self) -> String {
        let granted = self
            .log_text()
            .lines()
            .find_map(|l| l.split("granted ").nth(1).map(str::to_owned))
            .unwrap_or_else(|| "?".into());
        format!(
            "statsd {} (node {}, pid {}): udp {} SO_RCVBUF granted {} B, flush 1 s, counting backend only",
            self.version,
            Command::new("node")
                .arg("--version")
                .output()
                .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
                .unwrap_or_default(),
            self.child.id(),
            self.addr,
            granted.trim()
        )
    }
}

impl Drop for DaemonContender {
    fn drop(&mut self) {
        // by its PID (Child::kill sends SIGKILL to exactly this process)
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

// ------------------------------------------------------------------ one trial
#[derive(Debug, Clone, Copy)]
struct Trial {
    target: f64,
    sent_lines: u64,
    sent_packets: u64,
    received: u64,
    received_packets: u64,
    bad: u64,
    achieved: f64,
    /// CPU seconds the contender used from the first packet until it had read the last.
    cpu_s: f64,
    /// Wall time of the same window.
    wall_s: f64,
}

impl Trial {
    fn clean(&self) -> bool {
        self.received == self.sent_lines && self.bad == 0
    }
    fn sender_limited(&self) -> bool {
        self.achieved < self.target * SENDER_KEEPS_UP
    }
}

/// Sends `stream` at `rate` lines/s for `dur` to `to` from `senders` threads (each its own
/// socket, each `rate / senders`, starting at a different packet); returns (lines, packets)
/// sent and the time taken.
fn send(
    stream: &Stream,
    to: SocketAddr,
    rate: f64,
    dur: Duration,
    senders: usize,
) -> (u64, u64, Duration) {
    let start = Instant::now();
    let (lines, packets) = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..senders)
            .map(|k| {
                std::thread::Builder::new()
                    .name(format!("sender-{k}"))
                    .spawn_scoped(scope, move || {
                        send_one(
                            stream,
                            to,
                            rate / senders as f64,
                            dur,
                            k * stream.packets.len() / senders,
                        )
                    })
                    .expect("spawn sender")
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().expect("sender"))
            .fold((0, 0), |a, b| (a.0 + b.0, a.1 + b.1))
    });
    (lines, packets, start.elapsed())
}

fn send_one(stream: &Stream, to: SocketAddr, rate: f64, dur: Duration, first: usize) -> (u64, u64) {
    let sock = UdpSocket::bind("127.0.0.1:0").expect("bind sender");
    sock.connect(to).expect("connect sender");
    let pps = rate / stream.lines_per_packet();
    let (mut lines, mut packets, mut i) = (0u64, 0u64, first);
    let start = Instant::now();
    loop {
        let elapsed = start.elapsed();
        if elapsed >= dur {
            break;
        }
        let due = (elapsed.as_secs_f64() * pps) as u64;
        if packets >= due {
            std::thread::sleep(Duration::from_micros(100));
            continue;
        }
        for _ in 0..(due - packets).min(256) {
            let (bytes, n) = &stream.packets[i];
            i = (i + 1) % stream.packets.len();
            if sock.send(bytes).is_ok() {
                lines += n;
            }
            packets += 1; // a failed send is not retried (it counts as not sent)
        }
    }
    (lines, packets)
}

fn trial(
    c: &mut dyn Contender,
    stream: &Stream,
    rate: f64,
    dur: Duration,
    senders: usize,
) -> Result<Trial, String> {
    let before = c.counts()?;
    let (cpu0, t0) = (c.cpu_ticks(), Instant::now());
    let (sent_lines, sent_packets, took) = send(stream, c.addr(), rate, dur, senders);
    let deadline = Instant::now() + DRAIN_DEADLINE;
    let (mut last, mut since) = (c.counts()?, Instant::now());
    while last.lines - before.lines < sent_lines && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
        let now = c.counts()?;
        if now.lines != last.lines {
            since = Instant::now();
        } else if since.elapsed() >= SETTLE {
            break;
        }
        last = now;
    }
    let (cpu_s, wall_s) = ((c.cpu_ticks() - cpu0) as f64 / clk_tck(), t0.elapsed().as_secs_f64());
    Ok(Trial {
        cpu_s,
        wall_s,
        target: rate,
        sent_lines,
        sent_packets,
        received: last.lines - before.lines,
        received_packets: last.packets - before.packets,
        bad: last.bad - before.bad,
        achieved: sent_lines as f64 / took.as_secs_f64(),
    })
}

/// The outcome of one contender's search on one stream.
struct Found {
    rate: f64,
    /// The confirming trial at `rate`.
    last: Option<Trial>,
    trials: usize,
    sender_limited: bool,
}

fn search(c: &mut dyn Contender, stream: &Stream, a: &Args) -> Result<Found, String> {
    let dur = Duration::from_millis(a.trial_ms);
    let budget = Instant::now() + Duration::from_secs(a.budget_s);
    let mut trials = 0;
    let mut run = |c: &mut dyn Contender, rate: f64| -> Result<Trial, String> {
        trials += 1;
        let t = trial(c, stream, rate, dur, a.senders)?;
        eprintln!(
            "  {:<22} target {:>11.0} lines/s  sent {:>9} lines ({:>11.0}/s)  received {:>9} ({}/{} packets)  cpu {:.2} cores  {}{}",
            c.name(),
            t.target,
            t.sent_lines,
            t.achieved,
            t.received,
            t.received_packets,
            t.sent_packets,
            t.cpu_s / t.wall_s,
            if t.clean() { "clean" } else { "LOSS" },
            if t.sender_limited() { "  (sender-limited)" } else { "" }
        );
        std::thread::sleep(Duration::from_millis(200));
        Ok(t)
    };
    let (mut lo, mut hi): (Option<f64>, Option<f64>) = (None, None);
    let mut sender_limited = false;
    let mut rate = a.start_rate;
    // grow
    loop {
        let t = run(c, rate)?;
        if t.clean() {
            lo = Some(t.achieved.min(rate));
            if t.sender_limited() {
                sender_limited = true;
                break;
            }
            if rate >= a.max_rate {
                break;
            }
            rate = (rate * 2.0).min(a.max_rate);
        } else {
            hi = Some(rate);
            if lo.is_some() {
                break;
            }
            rate /= 2.0; // lossy already at the start rate: shrink
            if rate < 100.0 {
                break;
            }
        }
        if Instant::now() > budget {
            break;
        }
    }
    // bisect
    if let (Some(mut l), Some(mut h)) = (lo, hi) {
        for _ in 0..a.bisect_steps {
            if h / l < 1.05 || Instant::now() > budget {
                break;
            }
            let mid = (l * h).sqrt();
            let t = run(c, mid)?;
            if t.clean() {
                l = mid;
                if t.sender_limited() {
                    sender_limited = true;
                    break;
                }
            } else {
                h = mid;
            }
        }
        lo = Some(l);
    }
    // confirm the best clean rate once more (step down 10% after each loss)
    let mut last = None;
    if let Some(mut l) = lo {
        let mut confirmed = false;
        for _ in 0..CONFIRM_STEPS {
            let t = run(c, l)?;
            if t.clean() {
                last = Some(t);
                confirmed = true;
                break;
            }
            l *= 0.9;
        }
        lo = confirmed.then_some(l);
    }
    Ok(Found { rate: lo.unwrap_or(0.0), last, trials, sender_limited })
}

fn main() {
    if let Err(e) = real_main() {
        eprintln!("throughput: {e}");
        std::process::exit(1);
    }
}

fn real_main() -> Result<(), String> {
    let a = Args::parse();
    let kinds: &[StreamKind] = match a.stream {
        StreamKind::Both => &[StreamKind::Multi, StreamKind::Single],
        StreamKind::Multi => &[StreamKind::Multi],
        StreamKind::Single => &[StreamKind::Single],
    };
    let rmem_max = std::fs::read_to_string("/proc/sys/net/core/rmem_max").unwrap_or_default();
    println!(
        "machine: {} cores, net.core.rmem_max {}; SO_RCVBUF requested {} B for both; trial {} ms",
        std::thread::available_parallelism().map_or(0, |n| n.get()),
        rmem_max.trim(),
        a.rcvbuf,
        a.trial_ms
    );
    let mut daemon = match a.contenders {
        Who::Shim => None,
        _ => Some(DaemonContender::start(&a.lab_prefix, a.rcvbuf)?),
    };
    let mut shim = match a.contenders {
        Who::Daemon => None,
        _ => Some(ShimContender::start(a.rcvbuf)?),
    };
    if let Some(d) = &daemon {
        println!("  {}", d.describe());
    }
    if let Some(s) = &shim {
        println!("  {}", s.describe());
    }
    let started = Instant::now();
    let mut rows = Vec::new();
    for &kind in kinds {
        let stream = build_stream(kind);
        println!(
            "stream: {}: {} packets cycled, {:.1} lines/packet, {:.0} B/packet; 40% counters (1/4 sampled @0.5), 30% timers, 20% gauges, 10% sets, 1-3 tags each",
            stream.name,
            stream.packets.len(),
            stream.lines_per_packet(),
            stream.bytes as f64 / stream.packets.len() as f64
        );
        let mut found: Vec<(&'static str, Found)> = Vec::new();
        for c in [
            daemon.as_mut().map(|d| d as &mut dyn Contender),
            shim.as_mut().map(|s| s as &mut dyn Contender),
        ]
        .into_iter()
        .flatten()
        {
            let f = search(c, &stream, &a)?;
            found.push((c.name(), f));
        }
        rows.push((stream.name, stream.lines_per_packet(), found));
    }
    drop(shim.take());
    drop(daemon.take());
    println!("\nzero-loss UDP receive rate, {:.0} s in all", started.elapsed().as_secs_f64());
    println!(
        "| stream | contender | zero-loss lines/s | packets/s | CPU used at that rate (cores) | lines per CPU-second | trials | shim / daemon: rate | shim / daemon: lines per CPU-s |"
    );
    println!("|---|---|---:|---:|---:|---:|---:|---:|---:|");
    let per_cpu = |f: &Found| f.last.map(|t| t.received as f64 / t.cpu_s.max(1e-9));
    for (stream, lpp, found) in &rows {
        let daemon = found.iter().find(|f| f.0.starts_with("statsd")).map(|f| &f.1);
        for (name, f) in found {
            let (mut ratio, mut eff) = (String::new(), String::new());
            if let (true, Some(d)) = (name.starts_with("dualmetrics"), daemon) {
                if d.rate > 0.0 {
                    ratio = format!(
                        "**{}{:.1}×**",
                        if f.sender_limited { "≥ " } else { "" },
                        f.rate / d.rate
                    );
                }
                if let (Some(a), Some(b)) = (per_cpu(f), per_cpu(d)) {
                    eff = format!("{:.1}×", a / b);
                }
            }
            println!(
                "| {stream} | {name} | {}{:.0} | {:.0} | {} | {} | {} | {ratio} | {eff} |",
                if f.sender_limited { "≥ " } else { "" },
                f.rate,
                f.rate / lpp,
                f.last.map_or("-".into(), |t| format!("{:.2}", t.cpu_s / t.wall_s)),
                per_cpu(f).map_or("-".into(), |v| format!("{v:.0}")),
                f.trials
            );
        }
    }
    Ok(())
}
