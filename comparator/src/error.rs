//! Errors, one enum per phase: [`QueryError`] when a backend is asked, [`CompareError`] when the
//! plan is built (arguments, pair files, catalogs).
use thiserror::Error;

/// A query that did not produce series. Every variant names the URL (never with credentials:
/// they travel in headers, and user info in a base URL is removed) and what the backend said.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum QueryError {
    /// No HTTP answer: connection refused, DNS failure, timeout (after all retries).
    #[error("backend unreachable at {url}: {message}")]
    Unreachable {
        /// The URL asked, without secrets.
        url: String,
        /// The transport's message.
        message: String,
    },
    /// An HTTP status other than 2xx, with the start of the body.
    #[error("HTTP {status} from {url}: {message}")]
    Http {
        /// The URL asked, without secrets.
        url: String,
        /// The HTTP status code.
        status: u16,
        /// The backend's message (JSON `error` field, or the body's first line).
        message: String,
    },
    /// A 2xx answer whose body is not the JSON the API documents.
    #[error("non-JSON answer from {url}: {message}")]
    NotJson {
        /// The URL asked, without secrets.
        url: String,
        /// What was wrong, with the start of the body.
        message: String,
    },
    /// The backend answered in JSON and refused the query (Prometheus `status: error`).
    #[error("query rejected by {url}: {error_type}: {message}")]
    Rejected {
        /// The URL asked, without secrets.
        url: String,
        /// Prometheus `errorType` (`bad_data`, `execution`, …).
        error_type: String,
        /// The backend's `error` text.
        message: String,
    },
    /// The answer was larger than the response cap (`HttpConfig::max_response_bytes`).
    #[error("answer from {url} is larger than {limit} bytes: narrow the query or the range")]
    TooLarge {
        /// The URL asked, without secrets.
        url: String,
        /// The cap, bytes.
        limit: u64,
    },
}

/// Query-string keys whose values are secrets (matched case-insensitively as substrings).
const SECRET_KEYS: [&str; 8] =
    ["token", "key", "secret", "pass", "auth", "sig", "credential", "session"];

/// A URL safe to print: a password in the user info becomes `***`, and so does the value of
/// every query parameter whose name looks like a secret (`token`, `api_key`, `X-Amz-Signature`…).
/// Text that is not a URL is cut before its query string.
pub fn redact_url(url: &str) -> String {
    let Ok(mut u) = url::Url::parse(url) else {
        return url.split('?').next().unwrap_or_default().to_owned();
    };
    if u.password().is_some() {
        let _ = u.set_password(Some("***"));
    }
    if u.query().is_some() {
        let pairs: Vec<(String, String)> = u
            .query_pairs()
            .map(|(k, v)| {
                let lower = k.to_ascii_lowercase();
                let secret = SECRET_KEYS.iter().any(|s| lower.contains(s));
                (k.into_owned(), if secret { "***".to_owned() } else { v.into_owned() })
            })
            .collect();
        u.query_pairs_mut().clear().extend_pairs(pairs);
    }
    u.to_string()
}

impl QueryError {
    /// The URL the failing request went to (without secrets).
    pub fn url(&self) -> &str {
        match self {
            QueryError::Unreachable { url, .. }
            | QueryError::Http { url, .. }
            | QueryError::NotJson { url, .. }
            | QueryError::Rejected { url, .. }
            | QueryError::TooLarge { url, .. } => url,
        }
    }
}

/// A plan that cannot be built: bad arguments, unreadable or invalid pair files and catalogs.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum CompareError {
    /// A command-line value is invalid.
    #[error("invalid argument {arg}: {reason}")]
    InvalidArgument {
        /// The flag.
        arg: &'static str,
        /// What is wrong, with the offending value.
        reason: String,
    },
    /// A file could not be read or written.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// The I/O error.
        source: std::io::Error,
    },
    /// A pair file is not valid TOML or breaks the pair schema.
    #[error("invalid pair file {path}: {message}")]
    Pairs {
        /// The file.
        path: String,
        /// The parser's message.
        message: String,
    },
    /// A catalog is not the SDK's catalog JSON.
    #[error("invalid catalog {path}: {message}")]
    Catalog {
        /// The file.
        path: String,
        /// The parser's message.
        message: String,
    },
}
