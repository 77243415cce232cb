//! Errors of `dualmetrics demo`. Each one ends the demo with exit code 2.
use thiserror::Error;

/// Why the demo could not run to its report.
#[derive(Debug, Error)]
pub enum DemoError {
    /// A flag has a value the demo cannot use; names the flag and the value.
    #[error("invalid {flag} {value:?}: {reason}")]
    InvalidFlag {
        /// The flag (`--statsd`, …).
        flag: &'static str,
        /// The value given.
        value: String,
        /// Why it is refused.
        reason: String,
    },
    /// An embedded backend could not start (socket, runtime, thread).
    #[error("cannot start the embedded backends: {0}")]
    Setup(String),
    /// The SDK refused its configuration.
    #[error("SDK configuration: {0}")]
    Sdk(String),
    /// Writing the catalog or a report failed.
    #[error("cannot write {path}: {source}")]
    Write {
        /// The file.
        path: String,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The comparator could not run (a client could not be built, the catalog did not parse).
    #[error("comparator: {0}")]
    Compare(String),
    /// A port or validate step of the sample dashboard could not be started.
    #[error("port: {0}")]
    Port(String),
}
