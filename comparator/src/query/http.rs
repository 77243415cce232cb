//! The HTTP client every adapter and [`PrometheusApi`](super::prometheus_api::PrometheusApi) share: timeouts, retries with backoff, auth, error mapping.
use std::time::Duration;

use reqwest::blocking::Client;
use reqwest::StatusCode;
use url::Url;

use super::{DEFAULT_BACKOFF, DEFAULT_RETRIES, DEFAULT_TIMEOUT};
use crate::error::{redact_url, QueryError};

/// The largest response body read from a backend: 256 MiB. A larger one is an error naming the
/// limit (a query over too many series or too long a range), never an unbounded allocation.
pub const DEFAULT_MAX_RESPONSE_BYTES: u64 = 256 << 20;

/// How requests authenticate. Credentials are sent in the `Authorization` header only.
#[derive(Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum Auth {
    /// No `Authorization` header.
    #[default]
    None,
    /// `Authorization: Bearer <token>`.
    Bearer(String),
    /// HTTP basic auth.
    Basic {
        /// User name.
        user: String,
        /// Password (may be empty).
        password: String,
    },
}

impl std::fmt::Debug for Auth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Auth::None => f.write_str("None"),
            Auth::Bearer(_) => f.write_str("Bearer(***)"),
            Auth::Basic { user, .. } => write!(f, "Basic({user}, ***)"),
        }
    }
}

impl Auth {
    /// Reads `<PREFIX>_TOKEN` (bearer) or `<PREFIX>_USER` + `<PREFIX>_PASSWORD` (basic), e.g.
    /// `DUALMETRICS_LEGACY_TOKEN`. A token wins over a user.
    pub fn from_env(prefix: &str) -> Auth {
        let var = |suffix: &str| std::env::var(format!("{prefix}_{suffix}")).ok();
        if let Some(token) = var("TOKEN").filter(|t| !t.is_empty()) {
            return Auth::Bearer(token);
        }
        match var("USER").filter(|u| !u.is_empty()) {
            Some(user) => Auth::Basic { user, password: var("PASSWORD").unwrap_or_default() },
            None => Auth::None,
        }
    }
}

/// Where and how to reach one backend.
#[derive(Debug, Clone)]
pub struct HttpConfig {
    /// Base URL, e.g. `http://127.0.0.1:8428`. User info in it is moved into basic auth.
    pub base_url: Url,
    /// Per-request timeout. Defaults to 10 seconds.
    pub timeout: Duration,
    /// Retries after a failed attempt (transport error, 5xx, 429). Defaults to 2.
    pub retries: u32,
    /// Delay before the first retry, doubled each time. Defaults to 200 ms.
    pub backoff: Duration,
    /// Credentials. Defaults to none.
    pub auth: Auth,
    /// Extra headers on every request (`X-Scope-OrgID` of multi-tenant Cortex/Mimir-style
    /// APIs, …). Values are never printed. Defaults to none.
    pub headers: Headers,
    /// PEM file of extra CA certificates trusted for `https` (a private CA in front of the
    /// backend), on top of the system's roots. Defaults to none.
    pub ca_cert: Option<std::path::PathBuf>,
    /// The largest response body read. Defaults to [`DEFAULT_MAX_RESPONSE_BYTES`].
    pub max_response_bytes: u64,
}

/// Extra request headers; `Debug` shows their names only (values may be secrets).
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Headers(pub Vec<(String, String)>);

impl std::fmt::Debug for Headers {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list().entries(self.0.iter().map(|(k, _)| format!("{k}: ***"))).finish()
    }
}

impl Headers {
    /// Parses `Name: value` (the form of `--legacy-header`).
    ///
    /// # Errors
    /// When there is no `:` or the name is not a valid header name.
    pub fn parse_one(s: &str) -> Result<(String, String), String> {
        let (k, v) = s.split_once(':').ok_or_else(|| {
            format!("{:?} is not `Name: value`", s.split(':').next().unwrap_or(""))
        })?;
        let k = k.trim();
        reqwest::header::HeaderName::from_bytes(k.as_bytes())
            .map_err(|_| format!("{k:?} is not a header name"))?;
        Ok((k.to_owned(), v.trim().to_owned()))
    }
}

impl HttpConfig {
    /// A configuration with the defaults above. User info in `base_url` becomes basic auth and
    /// is removed from the URL, so it never shows in messages.
    pub fn new(mut base_url: Url) -> Self {
        let mut auth = Auth::None;
        if !base_url.username().is_empty() {
            auth = Auth::Basic {
                user: base_url.username().to_owned(),
                password: base_url.password().unwrap_or("").to_owned(),
            };
            let _ = base_url.set_username("");
            let _ = base_url.set_password(None);
        }
        HttpConfig {
            base_url,
            timeout: DEFAULT_TIMEOUT,
            retries: DEFAULT_RETRIES,
            backoff: DEFAULT_BACKOFF,
            auth,
            headers: Headers::default(),
            ca_cert: None,
            max_response_bytes: DEFAULT_MAX_RESPONSE_BYTES,
        }
    }
}

#[derive(Clone)]
pub(crate) struct HttpClient {
    config: HttpConfig,
    client: Client,
}

/// Longest backend message kept in an error.
const MAX_MESSAGE: usize = 300;

pub(crate) fn excerpt(body: &str) -> String {
    let trimmed = body.trim();
    let mut s: String = trimmed.chars().take(MAX_MESSAGE).collect();
    if trimmed.chars().count() > MAX_MESSAGE {
        s.push('…');
    }
    s.replace(['\n', '\r'], " ")
}

impl HttpClient {
    pub(crate) fn new(config: HttpConfig) -> Result<Self, QueryError> {
        // reqwest is built with `rustls-no-provider`: install ring once (an error only means a
        // provider is already installed).
        let _ = rustls::crypto::ring::default_provider().install_default();
        let unusable = |message: String| QueryError::Unreachable {
            url: redact_url(config.base_url.as_str()),
            message,
        };
        // rustls even when another crate of the build turns on reqwest's native-tls (features
        // unify, and reqwest then prefers OpenSSL)
        let mut builder = Client::builder()
            .tls_backend_rustls()
            .timeout(config.timeout)
            .connect_timeout(config.timeout);
        if let Some(path) = &config.ca_cert {
            let pem = std::fs::read(path)
                .map_err(|e| unusable(format!("cannot read CA file {}: {e}", path.display())))?;
            let certs = reqwest::Certificate::from_pem_bundle(&pem).map_err(|e| {
                unusable(format!("CA file {} holds no PEM certificate: {e}", path.display()))
            })?;
            if certs.is_empty() {
                return Err(unusable(format!("CA file {} holds no certificate", path.display())));
            }
            builder = builder.tls_certs_merge(certs);
        }
        let client =
            builder.build().map_err(|e| unusable(format!("cannot build HTTP client: {e}")))?;
        Ok(HttpClient { config, client })
    }

    pub(crate) fn base(&self) -> &Url {
        &self.config.base_url
    }

    /// The full URL of `path` with `params`; safe to print (no credentials).
    pub(crate) fn url(&self, path: &str, params: &[(&str, String)]) -> Url {
        let mut url = self.config.base_url.clone();
        let base_path = url.path().trim_end_matches('/').to_owned();
        url.set_path(&format!("{base_path}{path}"));
        {
            let mut q = url.query_pairs_mut();
            for (k, v) in params {
                q.append_pair(k, v);
            }
        }
        url
    }

    /// GETs `url` and returns the status and body, retrying transport errors, 5xx and 429.
    pub(crate) fn get(&self, url: &Url) -> Result<(StatusCode, String), QueryError> {
        let mut delay = self.config.backoff;
        let mut attempt = 0;
        loop {
            let mut req = self.client.get(url.clone()).header("Accept", "application/json");
            for (k, v) in &self.config.headers.0 {
                req = req.header(k.as_str(), v.as_str());
            }
            req = match &self.config.auth {
                Auth::None => req,
                Auth::Bearer(token) => req.bearer_auth(token),
                Auth::Basic { user, password } => req.basic_auth(user, Some(password)),
            };
            let result = match req.send() {
                Ok(resp) => {
                    let status = resp.status();
                    match read_capped(resp, self.config.max_response_bytes) {
                        Ok(body) => Ok((status, body)),
                        Err(Capped::TooLarge) => {
                            return Err(QueryError::TooLarge {
                                url: redact_url(url.as_str()),
                                limit: self.config.max_response_bytes,
                            })
                        }
                        Err(Capped::Read(message)) => Err(message),
                    }
                }
                Err(e) => Err(transport_message(&e)),
            };
            let retryable = match &result {
                Ok((status, _)) => {
                    status.is_server_error() || *status == StatusCode::TOO_MANY_REQUESTS
                }
                Err(_) => true,
            };
            if !retryable || attempt >= self.config.retries {
                return result.map_err(|message| QueryError::Unreachable {
                    url: redact_url(url.as_str()),
                    message,
                });
            }
            attempt += 1;
            std::thread::sleep(delay);
            delay = delay.saturating_mul(2);
        }
    }
}

enum Capped {
    TooLarge,
    /// The transport failed while the body was read.
    Read(String),
}

/// The body as text, or `TooLarge` as soon as it passes `limit` bytes (announced or read).
fn read_capped(resp: reqwest::blocking::Response, limit: u64) -> Result<String, Capped> {
    use std::io::Read as _;
    if resp.content_length().is_some_and(|n| n > limit) {
        return Err(Capped::TooLarge);
    }
    let mut buf = Vec::new();
    resp.take(limit.saturating_add(1))
        .read_to_end(&mut buf)
        .map_err(|e| Capped::Read(format!("reading the body: {e}")))?;
    if buf.len() as u64 > limit {
        return Err(Capped::TooLarge);
    }
    Ok(String::from_utf8_lossy(&buf).into_owned())
}

fn transport_message(e: &reqwest::Error) -> String {
    // reqwest's Display includes the URL; ours carries it already, so keep only the causes.
    let mut msg = String::new();
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        if !msg.is_empty() {
            msg.push_str(": ");
        }
        msg.push_str(&s.to_string());
        source = s.source();
    }
    if e.is_timeout() {
        msg = format!("timed out ({msg})");
    }
    if msg.is_empty() {
        msg = "request failed".to_owned();
    }
    msg
}
