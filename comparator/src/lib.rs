//! Equivalence reports between a legacy StatsD/Graphite backend and a new OTLP/Prometheus one.
//!
//! A migration from StatsD to OpenTelemetry is done when the new backend answers every
//! dashboard question with the same numbers as the old one. This crate checks that, pair by
//! pair: a legacy query (Graphite render API, or PromQL over Graphite names) and its new
//! counterpart (PromQL), compared after undoing the semantic differences between the two
//! worlds.
//!
//! # Stages (one module each)
//! 1. [`pairs`]: what to compare — a TOML file, or generated from the SDK's catalog with the
//!    naming rules of [`dualmetrics_model::naming_map`].
//! 2. [`query`]: asking each backend through one small trait, [`QueryAdapter`]
//!    ([`GraphiteAdapter`], [`PrometheusAdapter`]); timeouts, retries, auth from the environment.
//! 3. [`align`]: every point becomes an observation at an uncertain instant (raw samples are
//!    exact, a Graphite point covers its storage step, a `query_range` point the step before
//!    it); questions at any instant are answered with bounds, so any phase offset between the
//!    two sides' clocks is handled without guessing.
//! 4. [`coverage`]: per side, the instants it knows; gaps (outages, ingestion lag) are a state,
//!    never zeros.
//! 5. [`normalize`]: per-flush counts and cumulative counters both become running totals
//!    (neither side uses `increase()`, whose extrapolation differs between Prometheus and
//!    VictoriaMetrics); units convert (s → ms); tags and labels are matched by key.
//! 6. [`diff`]: a [`Verdict`] per pair, divergent only on evidence (the two sides' bounds do not
//!    meet), with which side is higher and by how much, the first instant it diverged, the tag
//!    sets that contribute most and the gaps of each side.
//! 7. [`report`]: terminal table, JSON, Markdown, self-contained HTML with one chart per pair.
//!
//! # Example
//! ```no_run
//! use dualmetrics_compare::{compare_all, CompareSettings, GraphiteAdapter, HttpConfig, PrometheusAdapter, TimeRange};
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let pairs = dualmetrics_compare::pairs::parse_pairs(
//!     "[[pair]]\nname = 'hits'\nkind = 'counter'\nlegacy = 'stats.counters.svc.hits.count'\nnew = 'svc_hits_total'\n",
//!     "inline",
//! )?;
//! let url = url::Url::parse("http://127.0.0.1:8428")?;
//! let legacy = GraphiteAdapter::new(HttpConfig::new(url.clone()))?.with_storage_step(Some("10s".into()));
//! let new = PrometheusAdapter::new(HttpConfig::new(url))?;
//! let settings = CompareSettings {
//!     range: TimeRange { start: 1_700_000_000, end: 1_700_003_600, step: 10 },
//!     ..CompareSettings::default()
//! };
//! for row in compare_all(&pairs, &legacy, &new, &settings) {
//!     println!("{}: {} ({})", row.name, row.outcome.verdict.as_str(), row.outcome.explanation);
//! }
//! # Ok(()) }
//! ```
//!
//! # Exit codes of `dualmetrics compare`
//! 0 every pair equivalent, 1 any pair divergent or missing, 2 an error (bad arguments, an
//! unreachable backend, an HTTP error, a body that is not JSON, a rejected query — the failing
//! pair names the URL without credentials and the backend's message; other pairs are reported).
//!
//! # Missing
//! - Exponential histograms (`vmrange` buckets) are not compared; use explicit buckets.
//! - Only one legacy and one new backend per run.
#![deny(missing_docs)]
#![forbid(unsafe_code)]

pub mod align;
pub mod cli;
pub mod coverage;
pub mod diff;
mod error;
pub mod mapped;
pub mod normalize;
pub mod pairs;
pub mod query;
pub mod report;
pub mod run;
pub mod scope;
pub mod watch;

pub use cli::{run, run_code, CompareArgs, Plan};
pub use diff::{Outcome, Verdict};
pub use error::{redact_url, CompareError, QueryError};
pub use pairs::{Pair, PairKind};
pub use query::graphite::GraphiteAdapter;
pub use query::prometheus::PrometheusAdapter;
pub use query::{Auth, HttpConfig, QueryAdapter, Series, TimeRange};
pub use report::{PairReport, Report};
pub use run::{compare_all, compare_pair, compare_report, CompareSettings};
