//! OTLP/gRPC over TLS through rustls (tonic), against a real tonic receiver on 127.0.0.1:0 whose
//! certificates a CA made in the test signed: reached with the CA file and refused (counted)
//! without it; with mutual TLS, refused without a client certificate and reached with one given
//! through the standard `OTEL_EXPORTER_OTLP_CLIENT_CERTIFICATE` / `…_CLIENT_KEY` variables.
use std::path::{Path, PathBuf};
use std::time::Duration;

use dualmetrics::{DualMetrics, Mode};
use dualmetrics_testkit::{latest, OtlpGrpcReceiver, ServerTls};

/// A CA, a server certificate for 127.0.0.1 and a client certificate, written as PEM files.
struct Pki {
    _dir: tempfile::TempDir,
    ca: PathBuf,
    client_cert: PathBuf,
    client_key: PathBuf,
    server: ServerTls,
}

fn pki(require_client_cert: bool) -> Pki {
    let mut ca_params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    let ca_key = rcgen::KeyPair::generate().unwrap();
    let ca = ca_params.self_signed(&ca_key).unwrap();
    let server_key = rcgen::KeyPair::generate().unwrap();
    let server_cert = rcgen::CertificateParams::new(vec!["127.0.0.1".to_owned()])
        .unwrap()
        .signed_by(&server_key, &ca, &ca_key)
        .unwrap();
    let client_key = rcgen::KeyPair::generate().unwrap();
    let mut client_params = rcgen::CertificateParams::new(vec!["service-a".to_owned()]).unwrap();
    client_params.extended_key_usages = vec![rcgen::ExtendedKeyUsagePurpose::ClientAuth];
    let client_cert = client_params.signed_by(&client_key, &ca, &ca_key).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let write = |name: &str, text: String| -> PathBuf {
        let p = dir.path().join(name);
        std::fs::write(&p, text).unwrap();
        p
    };
    Pki {
        ca: write("ca.pem", ca.pem()),
        client_cert: write("client.pem", client_cert.pem()),
        client_key: write("client-key.pem", client_key.serialize_pem()),
        server: ServerTls {
            cert_pem: server_cert.pem(),
            key_pem: server_key.serialize_pem(),
            client_ca_pem: require_client_cert.then(|| ca.pem()),
        },
        _dir: dir,
    }
}

fn service(receiver: &OtlpGrpcReceiver, env: &[(&str, &Path)]) -> DualMetrics {
    DualMetrics::builder()
        .ignore_env()
        .with_env_vars(env.iter().map(|(k, v)| (k.to_string(), v.display().to_string())))
        .with_mode(Mode::Otlp)
        .with_service_name("tls")
        .with_otlp_endpoint(&format!("https://127.0.0.1:{}", receiver.local_addr().port()))
        .with_otlp_timeout(Duration::from_secs(5))
        .with_otlp_export_interval(Duration::from_secs(3600))
        .build()
        .expect("config")
}

/// Exports one counter point; whether the receiver got it, and the failed-export count.
fn export(metrics: &DualMetrics, receiver: &OtlpGrpcReceiver) -> (bool, u64) {
    metrics.counter("tls.requests").build().unwrap().add(3, &[("route", "a")]);
    let _ = metrics.flush();
    let arrived = latest(&receiver.points(), "tls.requests", &[("route", "a")])
        .is_some_and(|p| p.as_f64() == Some(3.0));
    (arrived, metrics.telemetry().otlp.exports_failed)
}

#[test]
fn otlp_grpc_reaches_a_collector_behind_a_private_ca_only_with_its_ca_file() {
    let pki = pki(false);
    let receiver = OtlpGrpcReceiver::builder().with_tls(pki.server.clone()).start();
    let untrusted = service(&receiver, &[]);
    let (arrived, failed) = export(&untrusted, &receiver);
    assert!(!arrived && failed >= 1, "an unknown CA must be refused and counted ({failed})");
    untrusted.shutdown(Duration::from_secs(5)).ok();

    let trusted = service(&receiver, &[("OTEL_EXPORTER_OTLP_CERTIFICATE", &pki.ca)]);
    let (arrived, failed) = export(&trusted, &receiver);
    assert!(arrived, "the export over TLS with the CA file did not arrive");
    assert_eq!(failed, 0);
    trusted.shutdown(Duration::from_secs(5)).ok();
}

#[test]
fn otlp_grpc_mutual_tls_needs_the_client_certificate_from_the_standard_variables() {
    let pki = pki(true);
    let receiver = OtlpGrpcReceiver::builder().with_tls(pki.server.clone()).start();
    let anonymous = service(&receiver, &[("OTEL_EXPORTER_OTLP_CERTIFICATE", &pki.ca)]);
    let (arrived, failed) = export(&anonymous, &receiver);
    assert!(!arrived && failed >= 1, "a client without a certificate must be refused");
    anonymous.shutdown(Duration::from_secs(5)).ok();

    let identified = service(
        &receiver,
        &[
            ("OTEL_EXPORTER_OTLP_CERTIFICATE", &pki.ca),
            ("OTEL_EXPORTER_OTLP_CLIENT_CERTIFICATE", &pki.client_cert),
            ("OTEL_EXPORTER_OTLP_CLIENT_KEY", &pki.client_key),
        ],
    );
    let (arrived, failed) = export(&identified, &receiver);
    assert!(arrived, "the mutual-TLS export did not arrive");
    assert_eq!(failed, 0);
    identified.shutdown(Duration::from_secs(5)).ok();
}

#[test]
fn a_client_certificate_without_its_key_is_a_configuration_error_naming_both_keys() {
    let pki = pki(false);
    let err = DualMetrics::builder()
        .ignore_env()
        .with_env_vars([(
            "OTEL_EXPORTER_OTLP_CLIENT_CERTIFICATE",
            pki.client_cert.display().to_string(),
        )])
        .build()
        .unwrap_err()
        .to_string();
    assert!(err.contains("otlp.client_cert_file") && err.contains("otlp.client_key_file"), "{err}");
}
