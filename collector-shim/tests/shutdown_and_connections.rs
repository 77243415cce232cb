//! Shutdown that finishes under load, and connection limits, over real sockets: a TCP client
//! that never pauses, a collector that never answers, idle and surplus TCP connections, the Unix
//! socket's mode.
use dualmetrics_shim::{Shim, ShimConfig, ShutdownError};
use dualmetrics_testkit::{latest, OtlpGrpcReceiver};
use std::io::{Read, Write};
use std::net::TcpStream;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

const WAIT: Duration = Duration::from_secs(15);

fn config(otlp_endpoint: &str) -> ShimConfig {
    let mut c = ShimConfig::loopback();
    c.export.endpoint = otlp_endpoint.to_owned();
    c.ingest.tcp = Some("127.0.0.1:0".to_owned());
    c
}

fn wait_for(what: &str, cond: impl Fn() -> bool) {
    let t0 = Instant::now();
    while !cond() {
        assert!(t0.elapsed() < WAIT, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// A client that writes a line every millisecond until the shim closes the connection: before,
/// the connection's thread looked at the stop flag only when a read timed out (100 ms without
/// data), so shutdown waited for the 30 s deadline and the final flush never ran.
#[test]
fn shutdown_finishes_and_flushes_while_a_tcp_client_keeps_sending() {
    let otlp = OtlpGrpcReceiver::start();
    let mut cfg = config(&otlp.endpoint());
    cfg.aggregate.flush_interval_ms = 3_600_000; // only the final flush exports
    let bound = Shim::bind(cfg).unwrap();
    let addr = bound.tcp_addr().unwrap();
    let tel = bound.telemetry();
    let shim = bound.spawn();
    let closed = Arc::new(AtomicBool::new(false));
    let client = {
        let closed = Arc::clone(&closed);
        std::thread::spawn(move || {
            let mut s = TcpStream::connect(addr).unwrap();
            let mut written = 0u64;
            while s.write_all(b"busy.lines:1|c\n").is_ok() {
                written += 1;
                std::thread::sleep(Duration::from_millis(1));
                if written > 60_000 {
                    break; // a minute: the test has failed long before
                }
            }
            closed.store(true, Ordering::SeqCst);
            written
        })
    };
    wait_for("lines to flow", || tel.snapshot().lines >= 50);
    let t0 = Instant::now();
    let report = shim.shutdown().expect("shutdown within the deadline");
    let took = t0.elapsed();
    assert!(took < Duration::from_secs(5), "shutdown took {took:?} under a busy client");
    let written = client.join().unwrap();
    assert!(closed.load(Ordering::SeqCst));
    // The final flush exported every line the shim accepted, and it accepted what it read.
    let p = latest(&otlp.points(), "busy.lines", &[]).cloned().expect("the final export");
    assert_eq!(p.as_f64(), Some(report.lines as f64));
    assert!(report.lines >= 50 && report.lines <= written, "{} of {written}", report.lines);
    assert_eq!(report.dropped("shutdown_deadline"), 0);
}

/// A collector that never answers in time: the shutdown deadline passes with the final export
/// in flight, and its points are counted as `shutdown_deadline` drops instead of vanishing.
#[test]
fn points_still_queued_at_the_shutdown_deadline_are_counted() {
    let otlp = OtlpGrpcReceiver::builder().with_delay(Duration::from_secs(20)).start();
    let mut cfg = config(&otlp.endpoint());
    cfg.aggregate.flush_interval_ms = 3_600_000;
    cfg.export.timeout_ms = 30_000;
    cfg.shutdown_timeout_ms = Some(1_000);
    cfg.export.self_telemetry = false; // the three lines' points only
    let bound = Shim::bind(cfg).unwrap();
    let addr = bound.tcp_addr().unwrap();
    let tel = bound.telemetry();
    let shim = bound.spawn();
    let mut s = TcpStream::connect(addr).unwrap();
    s.write_all(b"late.a:1|g\nlate.b:2|g\nlate.c:3|g\n").unwrap();
    drop(s);
    wait_for("three lines", || tel.snapshot().lines == 3);
    let t0 = Instant::now();
    let err = shim.shutdown().unwrap_err();
    assert!(matches!(err, ShutdownError::Timeout(_)), "{err}");
    assert!(t0.elapsed() < Duration::from_secs(5), "{:?}", t0.elapsed());
    assert_eq!(tel.snapshot().dropped("shutdown_deadline"), 3, "{:#?}", tel.snapshot());
}

/// Past `max_tcp_connections` a connection is refused and counted; a connection idle for
/// `tcp_idle_timeout_ms` is closed and counted, which frees its slot.
#[test]
fn surplus_connections_are_refused_and_idle_ones_closed_both_counted() {
    let otlp = OtlpGrpcReceiver::start();
    let mut cfg = config(&otlp.endpoint());
    cfg.ingest.max_tcp_connections = 1;
    cfg.ingest.tcp_idle_timeout_ms = 300;
    let bound = Shim::bind(cfg).unwrap();
    let addr = bound.tcp_addr().unwrap();
    let tel = bound.telemetry();
    let shim = bound.spawn();
    let mut first = TcpStream::connect(addr).unwrap();
    first.write_all(b"conn.a:1|c\n").unwrap();
    wait_for("the first line", || tel.snapshot().lines == 1);
    let mut second = TcpStream::connect(addr).unwrap();
    wait_for("a refusal", || tel.snapshot().tcp_refused == 1);
    second.set_read_timeout(Some(WAIT)).unwrap();
    let mut buf = [0u8; 8];
    assert!(matches!(second.read(&mut buf), Ok(0) | Err(_)), "the refused connection is closed");
    // The first connection goes quiet: closed after 300 ms, which frees the only slot.
    first.set_read_timeout(Some(WAIT)).unwrap();
    assert_eq!(first.read(&mut buf).unwrap_or(0), 0, "the idle connection is closed");
    assert_eq!(tel.snapshot().tcp_idle_closed, 1);
    let mut third = TcpStream::connect(addr).unwrap();
    third.write_all(b"conn.c:1|c\n").unwrap();
    wait_for("the third connection's line", || tel.snapshot().lines == 2);
    let report = shim.shutdown().unwrap();
    assert_eq!((report.tcp_refused, report.tcp_idle_closed), (1, 1));
}

/// 300 idle clients against the default 256 connection slots: those past the slots are refused
/// (counted), the idle ones are closed after `tcp_idle_timeout_ms` (counted), and a new client is
/// served. (Without the idle timeout the 256 idle connections held every slot for as long as they
/// stayed open.)
#[test]
fn three_hundred_idle_connections_do_not_lock_a_new_client_out() {
    let otlp = OtlpGrpcReceiver::start();
    let mut cfg = config(&otlp.endpoint());
    // long enough that the 300 connect while the first ones still hold their slots
    cfg.ingest.tcp_idle_timeout_ms = 3_000;
    let bound = Shim::bind(cfg).unwrap();
    let addr = bound.tcp_addr().unwrap();
    let tel = bound.telemetry();
    let shim = bound.spawn();
    let idle: Vec<TcpStream> = (0..300).map(|_| TcpStream::connect(addr).unwrap()).collect();
    // every one of the 300 was either refused or accepted and, being idle, closed
    wait_for("all 300 refused or idle-closed", || {
        let s = tel.snapshot();
        s.tcp_refused + s.tcp_idle_closed == 300
    });
    let s = tel.snapshot();
    assert!(s.tcp_refused >= 1, "no refusal: the slots were never all taken ({s:?})");
    let mut client = TcpStream::connect(addr).unwrap();
    client.write_all(b"late.client:1|c\n").unwrap();
    wait_for("the new client's line", || tel.snapshot().lines == 1);
    drop(idle);
    let report = shim.shutdown().unwrap();
    assert_eq!(report.tcp_refused + report.tcp_idle_closed, 300);
}

#[test]
fn the_unix_socket_gets_the_configured_mode() {
    use std::os::unix::fs::PermissionsExt;
    let dir = std::env::temp_dir().join(format!("shim-mode-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    for (mode, want) in [(None, 0o660), (Some(0o600), 0o600)] {
        let path = dir.join(format!("statsd-{want:o}.sock"));
        let mut cfg = ShimConfig::loopback();
        cfg.ingest.unix = Some(path.clone());
        if let Some(m) = mode {
            cfg.ingest.unix_socket_mode = m;
        }
        let shim = Shim::bind(cfg).unwrap().spawn();
        let got = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(got, want, "{}", path.display());
        shim.shutdown().unwrap();
    }
    std::fs::remove_dir_all(&dir).ok();
}
