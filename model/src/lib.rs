//! Shared vocabulary of dualmetrics: what a metric *is*, independent of any backend or socket.
//!
//! The SDK, the collector shim and the comparator all speak about the same four instrument
//! kinds, the same units and the same names. This crate is the one place that vocabulary lives,
//! so that a name computed by the SDK when it registers an instrument is the name the comparator
//! later queries and the name the shim produces when it translates StatsD:
//!
//! - [`catalog`]: the catalog of a service's instruments the SDK writes and the comparator and
//!   the translator read.
//! - [`MetricKind`] and [`Unit`]: the facade's instrument kinds and the units they carry
//!   (time units convert to the milliseconds StatsD timers always use).
//! - [`naming`]: validation and the one sanitising rule for names and tags.
//! - [`statsd_line`]: encoding a StatsD/DogStatsD line (pure, no I/O).
//! - [`statsd_parse`]: parsing StatsD/DogStatsD lines, zero-copy, errors by reason.
//! - `mapping` (feature `mapping`): the statsd_exporter-format mapping file from dotted keys
//!   with dimensions in path nodes to a metric name plus labels, read by the shim, the
//!   comparator and the query translator.
//! - `otlp` (feature `otlp`): OTLP export requests flattened into points, read by the testkit's
//!   receivers and the demo's embedded store.
//!
//! Nothing here does I/O or allocates per measurement; without the `otlp` feature nothing
//! depends on OpenTelemetry or cadence.
#![deny(missing_docs)]
#![forbid(unsafe_code)]

pub mod catalog;
mod kind;
#[cfg(feature = "mapping")]
pub mod mapping;
pub mod naming;
pub mod naming_map;
#[cfg(feature = "otlp")]
pub mod otlp;
pub mod statsd_line;
pub mod statsd_parse;
mod unit;

pub use kind::MetricKind;
pub use unit::Unit;
