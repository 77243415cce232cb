//! The shim's OTLP export over TLS with credentials, against a real TLS tonic receiver on
//! 127.0.0.1:0 whose certificates a CA made in the test signed: mutual TLS with the CA and a
//! client certificate from the config, a header on every request, and no secret in any error or
//! `Debug` output.
use dualmetrics_shim::config::{ExportConfig, Headers, Protocol};
use dualmetrics_shim::export::Exporter;
use dualmetrics_shim::{Shim, ShimConfig};
use dualmetrics_testkit::{latest, OtlpGrpcReceiver, PkiFiles, TestPki};
use std::net::UdpSocket;
use std::time::{Duration, Instant};

const WAIT: Duration = Duration::from_secs(15);
const TOKEN: &str = "Bearer s3cret-t0ken";

fn config(receiver: &OtlpGrpcReceiver, files: &PkiFiles, client_cert: bool) -> ShimConfig {
    let mut c = ShimConfig::loopback();
    c.export.endpoint = format!("https://127.0.0.1:{}", receiver.local_addr().port());
    c.export.self_telemetry = false;
    c.export.ca_file = Some(files.ca.clone());
    c.export.headers = Headers([("authorization".to_owned(), TOKEN.to_owned())].into());
    if client_cert {
        c.export.client_cert_file = Some(files.client_cert.clone());
        c.export.client_key_file = Some(files.client_key.clone());
    }
    c
}

#[test]
fn export_over_mutual_tls_carries_the_configured_header() {
    let pki = TestPki::new();
    let files = pki.write_files();
    let receiver = OtlpGrpcReceiver::builder().with_tls(pki.server_tls(true)).start();
    let cfg = config(&receiver, &files, true);
    assert!(!format!("{cfg:?}").contains("s3cret"), "the config's Debug shows the token");
    let shim = Shim::bind(cfg).unwrap();
    let addr = shim.udp_addr().unwrap();
    let shim = shim.spawn();
    UdpSocket::bind("127.0.0.1:0").unwrap().send_to(b"secure.hits:3|c", addr).unwrap();
    receiver
        .wait_for(WAIT, |p| latest(p, "secure.hits", &[]).is_some_and(|p| p.as_f64() == Some(3.0)));
    let got = receiver.received();
    assert!(got.iter().all(|r| r.header("authorization") == Some(TOKEN)), "header missing");
    shim.shutdown().unwrap();
}

#[test]
fn without_the_client_certificate_the_collector_refuses_and_the_failure_is_counted() {
    let pki = TestPki::new();
    let files = pki.write_files();
    let receiver = OtlpGrpcReceiver::builder().with_tls(pki.server_tls(true)).start();
    let bound = Shim::bind(config(&receiver, &files, false)).unwrap();
    let (addr, tel) = (bound.udp_addr().unwrap(), bound.telemetry());
    let shim = bound.spawn();
    UdpSocket::bind("127.0.0.1:0").unwrap().send_to(b"secure.hits:3|c", addr).unwrap();
    let t0 = Instant::now();
    while tel.snapshot().export_errors == 0 {
        assert!(t0.elapsed() < WAIT, "no failed export counted");
        std::thread::sleep(Duration::from_millis(10));
    }
    assert_eq!(receiver.request_count(), 0);
    drop(shim);
}

#[test]
fn export_errors_never_show_the_endpoint_password() {
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    for protocol in [Protocol::Http, Protocol::Grpc] {
        let cfg = ExportConfig {
            endpoint: "http://user:pa55w0rd@127.0.0.1:1/v1/metrics".to_owned(),
            protocol,
            timeout_ms: 2_000,
            ..Default::default()
        };
        let mut exporter = rt.block_on(async { Exporter::new(&cfg) }).unwrap();
        let err = rt
            .block_on(exporter.export_once(Default::default(), Duration::from_secs(2)))
            .unwrap_err()
            .to_string();
        assert!(!err.contains("pa55w0rd"), "{protocol:?}: {err}");
        assert!(!format!("{exporter:?}").contains("pa55w0rd"));
    }
    let bad =
        ExportConfig { endpoint: "http://user:pa55w0rd@[::1".to_owned(), ..Default::default() };
    if let Err(e) = Exporter::new(&bad) {
        assert!(!e.to_string().contains("pa55w0rd"), "{e}");
    }
}
