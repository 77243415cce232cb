//! OTLP/HTTP over TLS through rustls (no OpenSSL in the tree): a collector behind a private CA
//! is reached once the CA file is configured, and refused (the export counted as failed)
//! without it. The collector is a real TLS server on 127.0.0.1:0 with a certificate made in the
//! test.
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use dualmetrics::{DualMetrics, Mode, Protocol};

/// What the server saw: requests with a body, and the bytes of their bodies.
#[derive(Default)]
struct Seen {
    requests: AtomicUsize,
    body_bytes: AtomicUsize,
}

/// Reads one HTTP/1.1 request (head and `Content-Length` body) and answers 200 with an empty
/// protobuf body (an `ExportMetricsServiceResponse` with nothing rejected).
fn serve_one(mut stream: impl Read + Write, seen: &Seen) {
    let mut reader = BufReader::new(&mut stream);
    let mut line = String::new();
    let mut length = 0usize;
    loop {
        line.clear();
        if reader.read_line(&mut line).map_or(true, |n| n == 0) {
            return; // handshake refused or connection closed
        }
        if line == "\r\n" {
            break;
        }
        if let Some(v) = line.to_ascii_lowercase().strip_prefix("content-length:") {
            length = v.trim().parse().unwrap_or(0);
        }
    }
    let mut body = vec![0; length];
    if reader.read_exact(&mut body).is_err() {
        return;
    }
    drop(reader);
    seen.requests.fetch_add(1, Ordering::SeqCst);
    seen.body_bytes.fetch_add(length, Ordering::SeqCst);
    let _ = stream.write_all(
        b"HTTP/1.1 200 OK\r\nContent-Type: application/x-protobuf\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
    );
    let _ = stream.flush();
}

/// A TLS collector on 127.0.0.1:0 whose certificate a fresh CA signed: (port, CA PEM, seen).
fn tls_collector() -> (u16, String, Arc<Seen>) {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let pki = dualmetrics_testkit::TestPki::new();
    let config = Arc::new(
        rustls::ServerConfig::builder()
            .with_no_client_auth()
            .with_single_cert(
                vec![pki.server_cert_der.clone().into()],
                rustls::pki_types::PrivateKeyDer::Pkcs8(pki.server_key_der.clone().into()),
            )
            .unwrap(),
    );
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let seen = Arc::new(Seen::default());
    let server_seen = Arc::clone(&seen);
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            let (config, seen) = (Arc::clone(&config), Arc::clone(&server_seen));
            std::thread::spawn(move || {
                if let Ok(conn) = rustls::ServerConnection::new(config) {
                    serve_one(rustls::StreamOwned::new(conn, stream), &seen);
                }
            });
        }
    });
    (port, pki.ca_pem, seen)
}

fn service(port: u16, ca_file: Option<&str>) -> DualMetrics {
    let mut b = DualMetrics::builder()
        .ignore_env()
        .with_mode(Mode::Otlp)
        .with_service_name("tls")
        .with_otlp_protocol(Protocol::HttpProtobuf)
        .with_otlp_endpoint(&format!("https://127.0.0.1:{port}/v1/metrics"))
        .with_otlp_export_interval(Duration::from_secs(60));
    if let Some(f) = ca_file {
        b = b.with_otlp_ca_file(f);
    }
    b.build().expect("config")
}

#[test]
fn otlp_http_reaches_a_collector_behind_a_private_ca_only_with_its_ca_file() {
    let (port, ca_pem, seen) = tls_collector();
    let dir = tempfile::tempdir().unwrap();
    let ca_file = dir.path().join("ca.pem");
    std::fs::write(&ca_file, ca_pem).unwrap();

    let trusted = service(port, Some(ca_file.to_str().unwrap()));
    trusted.counter("tls.requests").build().unwrap().add(3, &[("route", "a")]);
    trusted.flush().expect("export over TLS with the CA file");
    assert!(seen.requests.load(Ordering::SeqCst) >= 1, "no request reached the collector");
    assert!(seen.body_bytes.load(Ordering::SeqCst) > 0, "an empty export");
    assert_eq!(trusted.telemetry().otlp.exports_failed, 0);
    trusted.shutdown(Duration::from_secs(5)).ok();

    // Without the CA the handshake fails: nothing arrives and the export is counted as failed.
    let before = seen.requests.load(Ordering::SeqCst);
    let untrusted = service(port, None);
    untrusted.counter("tls.requests").build().unwrap().add(3, &[("route", "a")]);
    let _ = untrusted.flush();
    assert_eq!(seen.requests.load(Ordering::SeqCst), before, "a request passed an unknown CA");
    assert!(untrusted.telemetry().otlp.exports_failed >= 1, "the refused export is not counted");
    untrusted.shutdown(Duration::from_secs(5)).ok();
}
