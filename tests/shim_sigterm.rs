//! `dualmetrics shim` stopped by SIGTERM while a TCP client keeps streaming: the process exits
//! well within its shutdown deadline and its final flush reaches the collector with every line
//! the shim accepted. Real process, real sockets, a real tonic OTLP receiver.
use std::io::Write;
use std::net::{TcpListener, TcpStream};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use dualmetrics_testkit::{latest, OtlpGrpcReceiver};

const WAIT: Duration = Duration::from_secs(15);

#[test]
fn sigterm_during_a_tcp_stream_exits_in_time_and_delivers_the_final_flush() {
    let otlp = OtlpGrpcReceiver::start();
    let port = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let addr = format!("127.0.0.1:{port}");
    let mut child = Command::new(env!("CARGO_BIN_EXE_dualmetrics"))
        .args(["shim", "--no-tee", "--udp", "", "--tcp", &addr, "--otlp-endpoint"])
        .arg(otlp.endpoint())
        .args(["--flush-interval-ms", "3600000"]) // only the final flush exports
        .env_remove("DUALMETRICS_SHIM_CONFIG")
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let t0 = Instant::now();
    let mut stream = loop {
        match TcpStream::connect(&addr) {
            Ok(s) => break s,
            Err(_) if t0.elapsed() < WAIT => std::thread::sleep(Duration::from_millis(20)),
            Err(e) => panic!("the shim did not listen on {addr}: {e}"),
        }
    };
    let stop = Arc::new(AtomicBool::new(false));
    let writer = {
        let stop = Arc::clone(&stop);
        std::thread::spawn(move || {
            let mut written = 0u64;
            while !stop.load(Ordering::SeqCst) && stream.write_all(b"sig.lines:1|c\n").is_ok() {
                written += 1;
                std::thread::sleep(Duration::from_millis(1));
            }
            written
        })
    };
    std::thread::sleep(Duration::from_millis(300)); // a few hundred lines in flight
    let term = Instant::now();
    let killed = Command::new("kill").args(["-TERM", &child.id().to_string()]).status().unwrap();
    assert!(killed.success());
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        assert!(term.elapsed() < WAIT, "the shim did not exit after SIGTERM");
        std::thread::sleep(Duration::from_millis(10));
    };
    let took = term.elapsed();
    stop.store(true, Ordering::SeqCst);
    let written = writer.join().unwrap();
    let mut stderr = String::new();
    std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut stderr).unwrap();
    assert!(status.success(), "exit {status}: {stderr}");
    assert!(took < Duration::from_secs(5), "exit took {took:?} (deadline 30 s)");
    // the final report: `lines: N,`
    let accepted: u64 = stderr
        .lines()
        .find_map(|l| l.trim().strip_prefix("lines: ")?.trim_end_matches(',').parse().ok())
        .unwrap_or_else(|| panic!("no final report on stderr: {stderr}"));
    assert!(accepted >= 50 && accepted <= written, "{accepted} accepted of {written} written");
    let total = latest(&otlp.points(), "sig.lines", &[]).and_then(|p| p.as_f64());
    assert_eq!(total, Some(accepted as f64), "the final flush carries every accepted line");
}
