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
}

impl QueryError {
    /// The URL the failing request went to (without secrets).
    pub fn url(&self) -> &str {
        match self {
            QueryError::Unreachable { url, .. }
            | QueryError::Http { url, .. }
            | QueryError::NotJson { url, .. }
            | QueryError::Rejected { url, .. } => url,
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
