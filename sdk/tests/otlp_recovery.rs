//! A collector path that dies without closing the connection (a frozen proxy, a partition): the
//! gRPC exporter's HTTP/2 keepalive finds the dead connection and the next export connects
//! again. Before it, every export after the freeze went into the dead connection and timed out,
//! long after the collector was reachable again. Real sockets: a TCP proxy on 127.0.0.1:0 in
//! front of a real tonic receiver; after `freeze` the proxy swallows every byte of the
//! connections it had (open, silent), while new connections pass.
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use dualmetrics::{DualMetrics, Mode};
use dualmetrics_testkit::{latest, OtlpGrpcReceiver};

struct FreezingProxy {
    addr: SocketAddr,
    /// Connections accepted before this generation are frozen.
    frozen_below: Arc<AtomicU64>,
    generation: Arc<AtomicU64>,
}

/// Copies `from` → `to` until either closes; bytes of a frozen connection are read and dropped.
fn pump(mut from: TcpStream, mut to: TcpStream, gen: u64, frozen_below: Arc<AtomicU64>) {
    let mut buf = [0u8; 16 * 1024];
    loop {
        let n = match from.read(&mut buf) {
            Ok(0) | Err(_) => return,
            Ok(n) => n,
        };
        if gen < frozen_below.load(Ordering::SeqCst) {
            continue; // the path is dead: nothing arrives, nothing is refused
        }
        if to.write_all(&buf[..n]).is_err() {
            return;
        }
    }
}

impl FreezingProxy {
    fn start(upstream: SocketAddr) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let frozen_below = Arc::new(AtomicU64::new(0));
        let generation = Arc::new(AtomicU64::new(0));
        let (fb, g) = (Arc::clone(&frozen_below), Arc::clone(&generation));
        std::thread::spawn(move || {
            for client in listener.incoming().flatten() {
                let Ok(server) = TcpStream::connect(upstream) else { continue };
                let gen = g.fetch_add(1, Ordering::SeqCst);
                let (c2, s2) = (client.try_clone().unwrap(), server.try_clone().unwrap());
                let (fb1, fb2) = (Arc::clone(&fb), Arc::clone(&fb));
                std::thread::spawn(move || pump(client, server, gen, fb1));
                std::thread::spawn(move || pump(s2, c2, gen, fb2));
            }
        });
        FreezingProxy { addr, frozen_below, generation }
    }

    /// Every connection made so far goes silent; later ones pass.
    fn freeze_existing(&self) {
        self.frozen_below.store(self.generation.load(Ordering::SeqCst), Ordering::SeqCst);
    }
}

fn service(proxy: &FreezingProxy) -> DualMetrics {
    DualMetrics::builder()
        .ignore_env()
        .with_mode(Mode::Otlp)
        .with_service_name("recovery")
        .with_otlp_endpoint(&format!("http://{}", proxy.addr))
        .with_otlp_timeout(Duration::from_secs(1))
        .with_otlp_export_interval(Duration::from_secs(3600))
        .with_setting("otlp.keepalive_ms", "1000")
        .build()
        .unwrap()
}

#[test]
fn exports_recover_after_the_connection_dies_silently() {
    let receiver = OtlpGrpcReceiver::start();
    let proxy = FreezingProxy::start(receiver.local_addr());
    let metrics = service(&proxy);
    let hits = metrics.counter("recovery.hits").build().unwrap();
    let total = |r: &OtlpGrpcReceiver| {
        latest(&r.points(), "recovery.hits", &[]).and_then(|p| p.as_f64()).unwrap_or(0.0)
    };
    hits.add(1, &[]);
    metrics.flush().expect("the first export");
    assert_eq!(total(&receiver), 1.0);

    proxy.freeze_existing();
    let frozen_at = Instant::now();
    let mut adds = 1.0;
    let recovered = loop {
        hits.add(1, &[]);
        adds += 1.0;
        let _ = metrics.flush();
        if total(&receiver) == adds {
            break frozen_at.elapsed();
        }
        assert!(
            frozen_at.elapsed() < Duration::from_secs(20),
            "no export arrived in 20 s after the connection froze (exports failed: {})",
            metrics.telemetry().otlp.exports_failed
        );
    };
    // keepalive 1 s + PING timeout 1 s + one export timeout, with slack for a loaded machine
    assert!(recovered < Duration::from_secs(10), "recovered after {recovered:?}");
    assert!(metrics.telemetry().otlp.exports_failed >= 1, "the frozen path failed no export");
    metrics.shutdown(Duration::from_secs(5)).ok();
}

/// A collector that answers late stretches the export cadence (the periodic reader waits for
/// each export, up to the timeout): every such export is counted, so the stretch is visible.
#[test]
fn a_collector_slower_than_the_interval_stretches_the_cadence_and_it_is_counted() {
    let receiver = OtlpGrpcReceiver::builder().with_delay(Duration::from_millis(700)).start();
    let metrics = DualMetrics::builder()
        .ignore_env()
        .with_mode(Mode::Otlp)
        .with_service_name("stretch")
        .with_otlp_endpoint(&format!("http://{}", receiver.local_addr()))
        .with_otlp_timeout(Duration::from_secs(5))
        .with_otlp_export_interval(Duration::from_millis(200))
        .build()
        .unwrap();
    metrics.counter("stretch.hits").build().unwrap().add(1, &[]);
    let t0 = Instant::now();
    while metrics.telemetry().otlp.exports_over_interval < 2 {
        assert!(t0.elapsed() < Duration::from_secs(15), "{:?}", metrics.telemetry().otlp);
        std::thread::sleep(Duration::from_millis(50));
    }
    let o = metrics.telemetry().otlp;
    assert_eq!(o.exports_failed, 0, "late, not failed: {o:?}");
    metrics.shutdown(Duration::from_secs(5)).ok();
}
