//! The StatsD receiver over real UDP and Unix datagram sockets.

use std::net::UdpSocket;
use std::os::unix::net::UnixDatagram;
use std::time::{Duration, Instant};

use dualmetrics_testkit::{parse_line, StatsdReceiver};

const WAIT: Duration = Duration::from_secs(5);

fn sender() -> UdpSocket {
    UdpSocket::bind("127.0.0.1:0").unwrap()
}

#[test]
fn udp_splits_datagrams_into_lines_and_counts() {
    let statsd = StatsdReceiver::bind_udp();
    let sock = sender();
    let first = b"a.hits:1|c|#env:test\na.temp:21.5|g\n";
    let second = b"a.lat:12|ms|@0.5";
    sock.send_to(first, statsd.local_addr()).unwrap();
    sock.send_to(second, statsd.local_addr()).unwrap();

    let lines = statsd.wait_for_lines(3, WAIT);
    assert_eq!(lines, ["a.hits:1|c|#env:test", "a.temp:21.5|g", "a.lat:12|ms|@0.5"]);
    assert_eq!(statsd.datagrams(), 2);
    assert_eq!(statsd.bytes(), (first.len() + second.len()) as u64);
    assert_eq!(parse_line(&lines[0]).tag("env"), Some("test"));
    assert_eq!(statsd.parsed_lines()[2].sample_rate, Some(0.5));
}

#[test]
fn udp_receives_a_maximum_size_datagram_whole() {
    let statsd = StatsdReceiver::bind_udp();
    let line = "x:1|c\n";
    let payload = line.repeat(65_000 / line.len());
    sender().send_to(payload.as_bytes(), statsd.local_addr()).unwrap();
    let n = payload.lines().count();
    assert_eq!(statsd.wait_for_lines(n, WAIT).len(), n);
    assert_eq!(statsd.bytes(), payload.len() as u64);
}

#[test]
fn wait_until_sees_a_late_line() {
    let statsd = StatsdReceiver::bind_udp();
    let addr = statsd.local_addr();
    let t = std::thread::spawn(move || {
        let sock = sender();
        for i in 0..5 {
            sock.send_to(format!("n:{i}|c").as_bytes(), addr).unwrap();
        }
    });
    let lines = statsd.wait_until(WAIT, |lines| lines.iter().any(|l| l == "n:4|c"));
    assert!(lines.len() <= 5);
    t.join().unwrap();
}

#[test]
fn wait_for_lines_times_out_listing_what_arrived() {
    let statsd = StatsdReceiver::bind_udp();
    sender().send_to(b"only:1|c", statsd.local_addr()).unwrap();
    statsd.wait_for_lines(1, WAIT);
    let err = statsd.try_wait_for_lines(2, Duration::from_millis(50)).unwrap_err();
    assert_eq!(err.lines, ["only:1|c"]);
    assert!(err.to_string().contains("2 line(s)"), "{err}");

    let panic = std::panic::catch_unwind(|| statsd.wait_for_lines(2, Duration::from_millis(10)))
        .unwrap_err();
    let msg = panic.downcast_ref::<String>().unwrap();
    assert!(msg.contains("only:1|c"), "{msg}");
}

#[test]
fn quiet_returns_nothing_when_nothing_was_sent() {
    let statsd = StatsdReceiver::bind_udp();
    let start = Instant::now();
    assert!(statsd.quiet(Duration::from_millis(100)).is_empty());
    assert!(start.elapsed() >= Duration::from_millis(100));
    assert_eq!(statsd.datagrams(), 0);
}

#[test]
fn quiet_waits_for_traffic_to_stop() {
    let statsd = StatsdReceiver::bind_udp();
    let addr = statsd.local_addr();
    let t = std::thread::spawn(move || {
        let sock = sender();
        for i in 0..10 {
            sock.send_to(format!("q:{i}|c").as_bytes(), addr).unwrap();
            std::thread::sleep(Duration::from_millis(20));
        }
    });
    // The gaps (20 ms) are shorter than the quiet period, so all ten arrive before it returns.
    let lines = statsd.quiet(Duration::from_millis(150));
    t.join().unwrap();
    assert_eq!(lines.len(), 10, "{lines:?}");
}

#[test]
fn stopped_udp_receiver_makes_a_connected_sender_fail() {
    let statsd = StatsdReceiver::bind_udp();
    let sock = sender();
    sock.connect(statsd.local_addr()).unwrap();
    sock.send(b"before:1|c").unwrap();
    statsd.wait_for_lines(1, WAIT);

    statsd.stop();
    assert!(statsd.is_stopped());
    // The ICMP port-unreachable from one send surfaces as ECONNREFUSED on a later call.
    let deadline = Instant::now() + WAIT;
    let err = loop {
        match sock.send(b"after:1|c") {
            Err(e) => break e,
            Ok(_) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(5)),
            Ok(_) => panic!("sends to a stopped receiver kept succeeding"),
        }
    };
    assert_eq!(err.kind(), std::io::ErrorKind::ConnectionRefused);
    assert_eq!(statsd.lines(), ["before:1|c"]);
}

#[test]
fn unix_datagrams_are_received_and_counted() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("statsd.sock");
    let statsd = StatsdReceiver::bind_unix(&path);
    assert_eq!(statsd.path(), path);

    let sock = UnixDatagram::unbound().unwrap();
    sock.send_to(b"u.hits:2|c|#a:b\nu.g:1|g", &path).unwrap();
    // Larger than a UDP datagram can be.
    let big = "u.big:1|c\n".repeat(10_000);
    sock.send_to(big.as_bytes(), &path).unwrap();

    let lines = statsd.wait_for_lines(10_002, WAIT);
    assert_eq!(&lines[..2], ["u.hits:2|c|#a:b", "u.g:1|g"]);
    assert_eq!(statsd.datagrams(), 2);
    assert_eq!(statsd.bytes(), (23 + big.len()) as u64);
}

#[test]
fn stopped_unix_receiver_refuses_and_removes_its_socket() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("statsd.sock");
    let statsd = StatsdReceiver::bind_unix(&path);
    let sock = UnixDatagram::unbound().unwrap();
    sock.send_to(b"x:1|c", &path).unwrap();
    statsd.wait_for_lines(1, WAIT);

    drop(statsd);
    assert!(!path.exists());
    let err = sock.send_to(b"x:1|c", &path).unwrap_err();
    assert!(
        matches!(err.kind(), std::io::ErrorKind::NotFound | std::io::ErrorKind::ConnectionRefused),
        "{err:?}"
    );
}

#[test]
fn unix_bind_replaces_a_stale_socket_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("statsd.sock");
    drop(UnixDatagram::bind(&path).unwrap()); // leaves the file behind
    let statsd = StatsdReceiver::bind_unix(&path);
    UnixDatagram::unbound().unwrap().send_to(b"y:1|c", &path).unwrap();
    assert_eq!(statsd.wait_for_lines(1, WAIT), ["y:1|c"]);
}
