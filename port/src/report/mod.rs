//! Reports of a port or a validation: terminal summary, JSON, HTML.
//!
//! - [`progress`]: bars on a terminal, quiet in CI.
pub mod progress;
