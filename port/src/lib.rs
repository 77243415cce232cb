//! Porting Graphite queries to PromQL.
#![deny(missing_docs)]
#![forbid(unsafe_code)]

pub mod error;
pub mod graphite;

pub use error::{ParseError, TranslateError};
