//! Errors of the SDK, one enum per phase. Emitting never returns an error: failures there are
//! counted in [`crate::TelemetrySnapshot`] (see [`crate::DualMetrics::telemetry`]).
use std::time::Duration;

pub use dualmetrics_model::naming::NameError;

/// Where a configuration value came from; every configuration error names it.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Source {
    /// A built-in default.
    Default,
    /// A section of a TOML file: `[default]` or `[env.<name>]`.
    File {
        /// The file path (or the name given to an in-memory document).
        path: String,
        /// `default` or `env.<name>`.
        section: String,
    },
    /// An environment variable.
    Env(String),
    /// A builder call in code.
    Code,
}

impl std::fmt::Display for Source {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Source::Default => f.write_str("built-in default"),
            Source::File { path, section } => write!(f, "{path} [{section}]"),
            Source::Env(var) => write!(f, "environment variable {var}"),
            Source::Code => f.write_str("builder call"),
        }
    }
}

/// A configuration that cannot be used: the key, the value and where it came from.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid configuration: {key} = {value:?} (from {origin}): {reason}")]
pub struct ConfigError {
    /// Dotted key, e.g. `otlp.export_interval_ms`.
    pub key: String,
    /// The offending value as written.
    pub value: String,
    /// Where the value came from.
    pub origin: Source,
    /// What is wrong with it.
    pub reason: String,
}

/// Why [`crate::DualMetricsBuilder::build`] or an instrument builder failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BuildError {
    /// A configuration value is invalid.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// A configuration file could not be read or parsed.
    #[error("configuration file {path}: {reason}")]
    File {
        /// The file.
        path: String,
        /// The I/O or TOML error, with line and key.
        reason: String,
    },
    /// A metric name or tag key was refused at registration.
    #[error(transparent)]
    Name(#[from] NameError),
    /// The same name was registered before with another kind or unit.
    #[error("metric {name:?} is already registered as a {existing} with unit {unit:?}")]
    Conflict {
        /// The metric name.
        name: String,
        /// The kind it was registered with first.
        existing: &'static str,
        /// The unit it was registered with first.
        unit: String,
    },
    /// A backend could not be set up (socket, exporter, TLS material).
    #[error("{backend} backend: {reason}")]
    Backend {
        /// `statsd`, `otlp`, or `reload` (the configuration watch and its SIGHUP handler).
        backend: &'static str,
        /// What failed.
        reason: String,
    },
}

/// Why [`crate::DualMetrics::shutdown`] did not complete cleanly.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ShutdownError {
    /// Shutdown was already called.
    #[error("already shut down")]
    AlreadyShutdown,
    /// A pipeline did not flush within the deadline.
    #[error("{backend} did not flush within {deadline:?}")]
    Timeout {
        /// The pipeline: `statsd` or `otlp` (`memory`, `noop` never fail).
        backend: &'static str,
        /// The deadline given.
        deadline: Duration,
    },
    /// A pipeline reported a failure while flushing; the text is for logs only.
    #[error("{backend} flush failed: {reason}")]
    Internal {
        /// The pipeline: `statsd` or `otlp` (`memory`, `noop` never fail).
        backend: &'static str,
        /// The failure.
        reason: String,
    },
}
