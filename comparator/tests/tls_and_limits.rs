//! Backends as fleets run them, over real sockets: `https` behind a private CA (trusted only
//! when its certificate is given), answers larger than the response cap refused with a clear
//! error, and secrets in URLs never printed.
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::sync::Arc;

use dualmetrics_compare::query::prometheus::PrometheusAdapter;
use dualmetrics_compare::query::{HttpConfig, QueryAdapter};
use dualmetrics_compare::redact_url;
use dualmetrics_compare::QueryError;

/// A Prometheus API answer with one series.
const VECTOR: &str = r#"{"status":"success","data":{"resultType":"vector","result":[{"metric":{"__name__":"up","job":"tls"},"value":[1700000000,"1"]}]}}"#;

/// Reads one HTTP/1.1 request head and answers `body` with `Connection: close`.
fn answer(mut stream: impl Read + Write, body: &str) {
    let mut reader = BufReader::new(&mut stream);
    let mut line = String::new();
    while reader.read_line(&mut line).is_ok_and(|n| n > 0) {
        if line == "\r\n" {
            break;
        }
        line.clear();
    }
    drop(reader);
    let head = format!(
        "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    let _ = stream.write_all(head.as_bytes());
    let _ = stream.write_all(body.as_bytes());
    let _ = stream.flush();
}

/// A private CA, and an `https` server on 127.0.0.1:0 whose certificate it signed, answering
/// every connection with [`VECTOR`]. Returns the port and the CA's PEM.
fn tls_server() -> (u16, String) {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let mut ca_params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    let ca_key = rcgen::KeyPair::generate().unwrap();
    let ca = ca_params.self_signed(&ca_key).unwrap();
    let key = rcgen::KeyPair::generate().unwrap();
    let cert = rcgen::CertificateParams::new(vec!["127.0.0.1".to_owned(), "localhost".to_owned()])
        .unwrap()
        .signed_by(&key, &ca, &ca_key)
        .unwrap();
    let config = rustls::ServerConfig::builder()
        .with_no_client_auth()
        .with_single_cert(
            vec![cert.der().clone()],
            rustls::pki_types::PrivateKeyDer::Pkcs8(key.serialize_der().into()),
        )
        .unwrap();
    let config = Arc::new(config);
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            let config = config.clone();
            std::thread::spawn(move || {
                let Ok(conn) = rustls::ServerConnection::new(config) else { return };
                // a client that refuses the certificate fails the handshake here: nothing to do
                answer(rustls::StreamOwned::new(conn, stream), VECTOR);
            });
        }
    });
    (port, ca.pem())
}

fn adapter(cfg: HttpConfig) -> PrometheusAdapter {
    PrometheusAdapter::new(cfg).expect("client")
}

#[test]
fn an_https_backend_behind_a_private_ca_is_queried_once_its_ca_file_is_given() {
    let (port, ca_pem) = tls_server();
    let dir = tempfile::tempdir().unwrap();
    let ca_file = dir.path().join("ca.pem");
    std::fs::write(&ca_file, ca_pem).unwrap();
    let url = url::Url::parse(&format!("https://127.0.0.1:{port}")).unwrap();

    let mut cfg = HttpConfig::new(url.clone());
    cfg.ca_cert = Some(ca_file);
    let series = adapter(cfg).instant("up", 1_700_000_000).expect("trusted through the CA file");
    assert_eq!(series.len(), 1);
    assert_eq!(series[0].labels.get("job").map(String::as_str), Some("tls"));

    // without the CA the same server is refused, and the error says why
    let mut untrusted = HttpConfig::new(url);
    untrusted.retries = 0;
    let err = adapter(untrusted).instant("up", 1_700_000_000).expect_err("unknown issuer");
    assert!(matches!(err, QueryError::Unreachable { .. }), "{err}");
    assert!(err.to_string().to_lowercase().contains("certificate"), "{err}");
}

#[test]
fn a_ca_file_without_a_certificate_is_refused_naming_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let ca_file = dir.path().join("not-a-ca.pem");
    std::fs::write(&ca_file, "hello").unwrap();
    let mut cfg = HttpConfig::new(url::Url::parse("https://127.0.0.1:1").unwrap());
    cfg.ca_cert = Some(ca_file);
    let err = PrometheusAdapter::new(cfg).err().expect("refused");
    assert!(err.to_string().contains("not-a-ca.pem"), "{err}");
}

#[test]
fn an_answer_larger_than_the_cap_is_an_error_naming_the_limit() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let big = format!(
        r#"{{"status":"success","data":{{"resultType":"vector","result":[],"padding":"{}"}}}}"#,
        "x".repeat(100_000)
    );
    let served = big.clone();
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            answer(&stream, &served);
        }
    });
    let base = url::Url::parse(&format!("http://127.0.0.1:{port}")).unwrap();
    let mut cfg = HttpConfig::new(base.clone());
    cfg.max_response_bytes = 10_000;
    let err = adapter(cfg).instant("up", 1_700_000_000).expect_err("over the cap");
    assert!(matches!(err, QueryError::TooLarge { limit: 10_000, .. }), "{err}");
    assert!(err.to_string().contains("10000 bytes"), "{err}");
    // the default cap reads it
    assert!(adapter(HttpConfig::new(base)).instant("up", 1_700_000_000).is_ok());
}

#[test]
fn urls_in_errors_and_reports_carry_no_secret() {
    let r = redact_url("https://user:hunter2@vm.example:8428/select/0/prometheus?token=abc&query=up&X-Amz-Signature=s1");
    assert!(!r.contains("hunter2") && !r.contains("abc") && !r.contains("s1"), "{r}");
    assert!(r.contains("user:***@") && r.contains("query=up") && r.contains("token=***"), "{r}");
    assert_eq!(redact_url("not a url?api_key=1"), "not a url");

    // an unreachable backend's error keeps the query, not the key in the base URL
    let mut cfg = HttpConfig::new(url::Url::parse("http://127.0.0.1:1/?api_key=s3cr3t").unwrap());
    cfg.retries = 0;
    let err = adapter(cfg).instant("up", 1_700_000_000).expect_err("nothing listens on port 1");
    assert!(!err.to_string().contains("s3cr3t"), "{err}");
    assert!(err.to_string().contains("api_key=***"), "{err}");
}
