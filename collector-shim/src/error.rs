//! Errors, one enum per phase. Messages are lowercase and name the offending value.
use std::path::PathBuf;
use std::time::Duration;
use thiserror::Error;

/// Loading or validating a [`crate::ShimConfig`], or binding its sockets.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum BuildError {
    /// The TOML file could not be read.
    #[error("cannot read config {path}: {source}")]
    ReadConfig {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The TOML did not parse or has unknown keys.
    #[error("invalid config: {0}")]
    ParseConfig(#[from] toml::de::Error),
    /// A value is out of range or inconsistent.
    #[error("invalid configuration: {reason}")]
    InvalidConfiguration {
        /// What is wrong.
        reason: String,
    },
    /// The mapping file cannot be read or is invalid (the message names the file, the rule,
    /// the key and the value).
    #[error("{0}")]
    Mapping(#[from] dualmetrics_model::mapping::MappingError),
    /// A socket could not be bound.
    #[error("cannot bind {what} on {addr}: {source}")]
    Bind {
        /// Which listener (`udp`, `tcp`, `unix`, `otlp_in`, `tee`).
        what: &'static str,
        /// The address or path.
        addr: String,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The export endpoint is not a valid URI.
    #[error("invalid export endpoint {endpoint:?}: {reason}")]
    InvalidEndpoint {
        /// The endpoint as configured.
        endpoint: String,
        /// What is wrong.
        reason: String,
    },
}

impl BuildError {
    pub(crate) fn invalid(reason: impl Into<String>) -> Self {
        BuildError::InvalidConfiguration { reason: reason.into() }
    }
}

/// One failed export attempt (after retries, the last one is reported).
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum ExportError {
    /// The gRPC call failed.
    #[error("grpc export failed: {0}")]
    Grpc(#[from] tonic::Status),
    /// The HTTP request failed before a response.
    #[error("http export failed: {0}")]
    Http(#[from] reqwest::Error),
    /// The HTTP server answered with a non-success status.
    #[error("http export answered {status}")]
    HttpStatus {
        /// The status code.
        status: u16,
    },
    /// The attempt took longer than the configured timeout.
    #[error("export timed out after {0:?}")]
    Timeout(Duration),
}

/// Running or shutting down a bound shim.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum ShutdownError {
    /// A stage did not finish within the shutdown deadline.
    #[error("shutdown timed out after {0:?}")]
    Timeout(Duration),
    /// A stage thread panicked or the runtime failed (for logging only).
    #[error("internal error: {0}")]
    Internal(String),
}
