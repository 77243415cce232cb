//! A throwaway PKI for TLS tests: a CA made in the test, a server certificate for `127.0.0.1`
//! and a client certificate (client authentication), as PEM and DER, and the PEM files written
//! to a temporary directory when a test needs paths.
//!
//! ```
//! let pki = dualmetrics_testkit::TestPki::new();
//! let receiver = dualmetrics_testkit::OtlpGrpcReceiver::builder()
//!     .with_tls(pki.server_tls(true)) // mutual TLS: a client certificate is required
//!     .start();
//! let files = pki.write_files();      // ca.pem, client.pem, client-key.pem
//! assert!(files.ca.exists());
//! # drop(receiver);
//! ```
use std::path::PathBuf;

use crate::otlp::ServerTls;

/// A CA, a server certificate for `127.0.0.1` and a client certificate it signed.
#[derive(Debug, Clone)]
pub struct TestPki {
    /// The CA certificate, PEM.
    pub ca_pem: String,
    /// The server certificate (SAN `127.0.0.1`), PEM and DER.
    pub server_cert_pem: String,
    /// The server certificate, DER.
    pub server_cert_der: Vec<u8>,
    /// The server key, PEM.
    pub server_key_pem: String,
    /// The server key, PKCS#8 DER.
    pub server_key_der: Vec<u8>,
    /// The client certificate (extended key usage: client authentication), PEM.
    pub client_cert_pem: String,
    /// The client key, PEM.
    pub client_key_pem: String,
}

/// [`TestPki::write_files`]: the PEM files, deleted with the directory when dropped.
#[derive(Debug)]
pub struct PkiFiles {
    _dir: tempfile::TempDir,
    /// `ca.pem`.
    pub ca: PathBuf,
    /// `client.pem`.
    pub client_cert: PathBuf,
    /// `client-key.pem`.
    pub client_key: PathBuf,
}

impl TestPki {
    /// A fresh CA and the certificates it signed. Panics if rcgen fails (a test bug).
    pub fn new() -> TestPki {
        let mut ca_params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
        ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        let ca_key = rcgen::KeyPair::generate().unwrap();
        let ca = ca_params.self_signed(&ca_key).unwrap();
        let server_key = rcgen::KeyPair::generate().unwrap();
        let server = rcgen::CertificateParams::new(vec!["127.0.0.1".to_owned()])
            .unwrap()
            .signed_by(&server_key, &ca, &ca_key)
            .unwrap();
        let client_key = rcgen::KeyPair::generate().unwrap();
        let mut client_params = rcgen::CertificateParams::new(vec!["client".to_owned()]).unwrap();
        client_params.extended_key_usages = vec![rcgen::ExtendedKeyUsagePurpose::ClientAuth];
        let client = client_params.signed_by(&client_key, &ca, &ca_key).unwrap();
        TestPki {
            ca_pem: ca.pem(),
            server_cert_pem: server.pem(),
            server_cert_der: server.der().to_vec(),
            server_key_pem: server_key.serialize_pem(),
            server_key_der: server_key.serialize_der(),
            client_cert_pem: client.pem(),
            client_key_pem: client_key.serialize_pem(),
        }
    }

    /// The server side for [`crate::OtlpReceiverBuilder::with_tls`]; with
    /// `require_client_cert`, a client must present a certificate this CA signed.
    pub fn server_tls(&self, require_client_cert: bool) -> ServerTls {
        ServerTls {
            cert_pem: self.server_cert_pem.clone(),
            key_pem: self.server_key_pem.clone(),
            client_ca_pem: require_client_cert.then(|| self.ca_pem.clone()),
        }
    }

    /// Writes the CA and the client certificate and key as PEM files in a new temporary
    /// directory.
    pub fn write_files(&self) -> PkiFiles {
        let dir = tempfile::tempdir().unwrap();
        let write = |name: &str, text: &str| {
            let p = dir.path().join(name);
            std::fs::write(&p, text).unwrap();
            p
        };
        PkiFiles {
            ca: write("ca.pem", &self.ca_pem),
            client_cert: write("client.pem", &self.client_cert_pem),
            client_key: write("client-key.pem", &self.client_key_pem),
            _dir: dir,
        }
    }
}

impl Default for TestPki {
    fn default() -> Self {
        TestPki::new()
    }
}
