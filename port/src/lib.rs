//! Porting Graphite queries to PromQL, honestly.
//!
//! A dual-write migration is finished when every dashboard and alert works on the new system.
//! This crate reads a Graphite target, translates it to PromQL over the names the new side
//! really has (the OTLP → Prometheus naming, the SDK catalog, tags), and says how faithful the
//! result is:
//!
//! - **exact**: the PromQL gives Graphite's values;
//! - **approximate**, with one reason per approximation;
//! - **untranslatable**, naming the function (or path) and why. Never a silent wrong query.
//!
//! Each result also carries Grafana's legend format and the *value semantics* (a per-flush
//! count, a per-second rate, a level, a quantile, a mean…), so that a validation compares like
//! with like. Every generated expression is parsed by the `promql-parser` crate before it is
//! returned ([`promql::check`]).
//!
//! # Exact
//! A StatsD counter's `.count` is events per flush interval (10 s by default): at any step
//! Graphite shows the average per-flush count, which is the per-second rate times the flush.
//! ```
//! use dualmetrics_port::{translate, Context, Status};
//! let t = translate("sumSeries(stats.counters.shop.orders.count)", &Context::default()).unwrap();
//! assert_eq!(t.promql.as_deref(), Some("sum(rate(shop_orders_total[$__rate_interval]) * 10)"));
//! assert_eq!(t.status, Status::Exact);
//! assert_eq!(t.legend.as_deref(), Some("sumSeries(stats.counters.shop.orders.count)"));
//! ```
//!
//! # Approximate
//! ```
//! use dualmetrics_port::{translate, Context, Status};
//! let t = translate("movingAverage(stats.gauges.queue.depth, 5)", &Context::default()).unwrap();
//! assert_eq!(t.promql.as_deref(), Some("avg_over_time(queue_depth[50s:10s])"));
//! let Status::Approximate { reasons } = &t.status else { panic!() };
//! assert!(reasons[0].contains("over 5 points becomes a 50s window at a 10s step"));
//! ```
//!
//! # Untranslatable
//! ```
//! use dualmetrics_port::{translate, Context, Status};
//! let t = translate("stats.timers.api.latency.std", &Context::default()).unwrap();
//! assert_eq!(t.promql, None);
//! let Status::Untranslatable { function, why } = &t.status else { panic!() };
//! assert_eq!(function, "path");
//! assert!(why.contains("needs the individual timings"));
//! ```
//!
//! # Errors
//! Input that is wrong is an error with the byte position and a caret, not a status:
//! ```
//! use dualmetrics_port::{translate, Context, TranslateError};
//! let e = translate("sumSeriez(a.b)", &Context::default()).unwrap_err();
//! assert!(matches!(e, TranslateError::UnknownFunction { pos: 0, .. }));
//! ```
//!
//! # Layout
//! - [`graphite`]: the pure target parser (lexer, parser, tree).
//! - [`translate`]: tree → PromQL ([`translate::paths`] for metric paths, [`translate::functions`]
//!   for functions).
//! - [`promql`]: writing PromQL text and the mandatory parse check.
//! - [`cli`]: `dualmetrics translate` (batch of targets, text or JSON, exit codes).
//! - [`catalog`]: the SDK catalog reader (exact OTel names, units, buckets).
//! - [`error`]: the errors.
#![deny(missing_docs)]
#![forbid(unsafe_code)]

pub mod alerts;
pub mod catalog;
pub mod cli;
pub mod error;
pub mod grafana;
pub mod graphite;
pub mod promql;
pub mod report;
pub mod translate;
pub mod validate;

pub use error::{ContextError, ParseError, TranslateError};
pub use translate::{translate, translate_batch, Context, Semantics, Status, Translation};
