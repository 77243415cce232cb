//! OTLP/gRPC over TLS through rustls (tonic), against a real tonic receiver on 127.0.0.1:0 whose
//! certificates a CA made in the test signed: reached with the CA file and refused (counted)
//! without it; with mutual TLS, refused without a client certificate and reached with one given
//! through the standard `OTEL_EXPORTER_OTLP_CLIENT_CERTIFICATE` / `…_CLIENT_KEY` variables.
use std::path::Path;
use std::time::Duration;

use dualmetrics::{DualMetrics, Mode};
use dualmetrics_testkit::{latest, OtlpGrpcReceiver, TestPki};

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
    let pki = TestPki::new();
    let files = pki.write_files();
    let receiver = OtlpGrpcReceiver::builder().with_tls(pki.server_tls(false)).start();
    let untrusted = service(&receiver, &[]);
    let (arrived, failed) = export(&untrusted, &receiver);
    assert!(!arrived && failed >= 1, "an unknown CA must be refused and counted ({failed})");
    untrusted.shutdown(Duration::from_secs(5)).ok();

    let trusted = service(&receiver, &[("OTEL_EXPORTER_OTLP_CERTIFICATE", &files.ca)]);
    let (arrived, failed) = export(&trusted, &receiver);
    assert!(arrived, "the export over TLS with the CA file did not arrive");
    assert_eq!(failed, 0);
    trusted.shutdown(Duration::from_secs(5)).ok();
}

#[test]
fn otlp_grpc_mutual_tls_needs_the_client_certificate_from_the_standard_variables() {
    let pki = TestPki::new();
    let files = pki.write_files();
    let receiver = OtlpGrpcReceiver::builder().with_tls(pki.server_tls(true)).start();
    let anonymous = service(&receiver, &[("OTEL_EXPORTER_OTLP_CERTIFICATE", &files.ca)]);
    let (arrived, failed) = export(&anonymous, &receiver);
    assert!(!arrived && failed >= 1, "a client without a certificate must be refused");
    anonymous.shutdown(Duration::from_secs(5)).ok();

    let identified = service(
        &receiver,
        &[
            ("OTEL_EXPORTER_OTLP_CERTIFICATE", &files.ca),
            ("OTEL_EXPORTER_OTLP_CLIENT_CERTIFICATE", &files.client_cert),
            ("OTEL_EXPORTER_OTLP_CLIENT_KEY", &files.client_key),
        ],
    );
    let (arrived, failed) = export(&identified, &receiver);
    assert!(arrived, "the mutual-TLS export did not arrive");
    assert_eq!(failed, 0);
    identified.shutdown(Duration::from_secs(5)).ok();
}

#[test]
fn a_client_certificate_without_its_key_is_a_configuration_error_naming_both_keys() {
    let files = TestPki::new().write_files();
    let err = DualMetrics::builder()
        .ignore_env()
        .with_env_vars([(
            "OTEL_EXPORTER_OTLP_CLIENT_CERTIFICATE",
            files.client_cert.display().to_string(),
        )])
        .build()
        .unwrap_err()
        .to_string();
    assert!(err.contains("otlp.client_cert_file") && err.contains("otlp.client_key_file"), "{err}");
}
