//! Graphite tree → PromQL, with a status, a legend format and the value semantics.
//!
//! - [`paths`]: a metric path (or `seriesByTag`) → the new side's series: the StatsD daemon's
//!   namespaces, the SDK catalog, the shim's default naming, tags.
//! - [`functions`]: every Graphite function the translator knows, one arm each.
//! - [`mapping`]: the mapping file run backwards (a key pattern → metric name and label
//!   matchers).
//! - [`known`]: the names of every Graphite function, to tell "unknown" from "untranslatable".
//!
//! Internally each step yields a [`Series`]: the PromQL text plus what it means (its
//! [`Semantics`]), which Graphite path node became which label (for `groupByNode`,
//! `aliasByNode`), whether it is one series, and its legend.
pub mod functions;
pub mod known;
pub mod mapping;
pub mod paths;

use crate::catalog::Catalog;
use crate::error::TranslateError;
use crate::graphite::{self, Expr};
use crate::promql;
use dualmetrics_model::naming_map::GraphiteNaming;
use serde::Serialize;
use std::collections::BTreeMap;

/// The reference StatsD daemon's default `flushInterval`, in seconds (10 s). A StatsD
/// `.count` is "events per flush interval", so the PromQL side multiplies a per-second rate
/// by it.
pub const DEFAULT_FLUSH_INTERVAL_SECS: f64 = 10.0;

/// The range of every `rate()` the translator writes: Grafana's `$__rate_interval`.
pub const DEFAULT_RATE_INTERVAL: &str = "$__rate_interval";

/// How deep `#A` references may nest before the translator calls it a cycle.
pub const MAX_REFERENCE_DEPTH: usize = 8;

/// What the translator knows about both sides. `Context::default()` is the lab's new side
/// (Prometheus naming) with the daemon's defaults (`legacyNamespace: false`, prefix `stats`,
/// 10 s flush).
#[derive(Debug, Clone)]
pub struct Context {
    /// The StatsD daemon's Graphite naming (`legacyNamespace`, `globalPrefix`).
    pub graphite: GraphiteNaming,
    /// The daemon's `flushInterval` in seconds. Defaults to [`DEFAULT_FLUSH_INTERVAL_SECS`].
    pub flush_interval_secs: f64,
    /// Whether the new store applies Prometheus naming (`_total`, unit words, `_` for dots).
    /// Defaults to `true` (VictoriaMetrics `-opentelemetry.usePrometheusNaming`).
    pub prometheus_naming: bool,
    /// The SDK catalog: exact OTel names, units and buckets per StatsD key.
    pub catalog: Option<Catalog>,
    /// The mapping file (statsd_exporter format) the shim applies: dimensions in path nodes
    /// become labels.
    pub mapping: Option<dualmetrics_model::mapping::MappingFile>,
    /// The other targets of the panel, by refId, for `#A` references.
    pub refs: BTreeMap<String, String>,
    /// The range of `rate()`. Defaults to [`DEFAULT_RATE_INTERVAL`].
    pub rate_interval: String,
}

impl Default for Context {
    fn default() -> Self {
        Context {
            graphite: GraphiteNaming::default(),
            flush_interval_secs: DEFAULT_FLUSH_INTERVAL_SECS,
            prometheus_naming: true,
            catalog: None,
            mapping: None,
            refs: BTreeMap::new(),
            rate_interval: DEFAULT_RATE_INTERVAL.to_owned(),
        }
    }
}

/// How faithful a translation is.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "status", rename_all = "snake_case")]
pub enum Status {
    /// The PromQL gives Graphite's values (within the comparator's tolerance).
    Exact,
    /// The PromQL is close, for the reasons given.
    Approximate {
        /// One reason per approximation, e.g. "movingAverage over 5 points becomes a 50s
        /// window at a 10s step".
        reasons: Vec<String>,
    },
    /// No PromQL is given.
    Untranslatable {
        /// The function (or `path`) that cannot be translated.
        function: String,
        /// Why.
        why: String,
    },
}

impl Status {
    /// `exact`, `approximate` or `untranslatable`.
    pub fn as_str(&self) -> &'static str {
        match self {
            Status::Exact => "exact",
            Status::Approximate { .. } => "approximate",
            Status::Untranslatable { .. } => "untranslatable",
        }
    }
}

/// What the values of a series mean, so that validation compares like with like.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Semantics {
    /// Events per interval of `seconds` (a StatsD counter's `.count`: per flush).
    CountPerInterval {
        /// The interval.
        seconds: f64,
    },
    /// Sum of observed values per interval of `seconds` (a timer's `.sum`).
    SumPerInterval {
        /// The interval.
        seconds: f64,
    },
    /// Events per second (`.rate`, `.count_ps`).
    PerSecond,
    /// A level: the last value of a gauge.
    Level,
    /// The mean of observed values (a timer's `.mean`).
    Mean,
    /// A quantile of observed values (`upper_90` is 0.9, `upper` 1, `lower` 0).
    Quantile {
        /// The quantile in [0, 1].
        q: f64,
    },
    /// A constant (`constantLine`, `threshold`).
    Constant,
    /// A ratio in percent (`asPercent`).
    Percent,
    /// A ratio (`divideSeries`).
    Ratio,
    /// An aggregation across series (`sumSeries`: `op` = `sum`) of `of`.
    Across {
        /// The PromQL aggregation.
        op: String,
        /// What was aggregated.
        of: Box<Semantics>,
    },
    /// An aggregation over time (`summarize`, `movingAverage`) of `of` over `seconds`.
    OverTime {
        /// The `*_over_time` function (`sum`, `avg`, …).
        op: String,
        /// The window.
        seconds: f64,
        /// What was aggregated.
        of: Box<Semantics>,
    },
    /// `of`, transformed by a function (`scale(…, 2)`, `perSecond`, …).
    Derived {
        /// The Graphite function and its arguments, e.g. `scale(2)`.
        by: String,
        /// The input.
        of: Box<Semantics>,
    },
    /// Series of different meanings combined.
    Mixed,
}

/// The result of [`translate`].
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Translation {
    /// The Graphite target as given.
    pub target: String,
    /// The PromQL (checked by `promql-parser`); `None` when untranslatable.
    pub promql: Option<String>,
    /// Grafana's legend format (`{{host}}`, literal text), if the target sets or implies one.
    pub legend: Option<String>,
    /// Exact, approximate (why) or untranslatable (what and why).
    #[serde(flatten)]
    pub status: Status,
    /// What the values mean.
    pub semantics: Option<Semantics>,
    /// The unit of the values on the legacy side (`ms` for timer statistics), if known.
    pub unit: Option<String>,
    /// Things a person porting the panel should know (assumptions, panel settings).
    pub notes: Vec<String>,
    /// Grafana template variables the PromQL uses (without `$`).
    pub variables: Vec<String>,
}

/// Translates one Graphite target.
///
/// # Errors
/// [`TranslateError`] for input that is wrong (bad syntax, unknown function, bad argument,
/// unknown `#ref`). A Graphite feature PromQL lacks is not an error: it gives
/// [`Status::Untranslatable`].
pub fn translate(target: &str, ctx: &Context) -> Result<Translation, TranslateError> {
    let mut t = Translator::new(target, ctx);
    let expr = graphite::parse(target)?;
    let result = t.series(&expr);
    t.finish(target, result)
}

/// Translates many targets on every available core (a batch from a dashboard, stdin, a
/// bench), in order. Each result is what [`translate`] gives for that target; most of the time
/// goes to the mandatory `promql-parser` check of each output, which this spreads over threads.
pub fn translate_batch<S: AsRef<str> + Sync>(
    targets: &[S],
    ctx: &Context,
) -> Vec<Result<Translation, TranslateError>> {
    let threads =
        std::thread::available_parallelism().map_or(1, usize::from).min(targets.len().max(1));
    if threads <= 1 || targets.len() < BATCH_MIN_PER_THREAD {
        return targets.iter().map(|t| translate(t.as_ref(), ctx)).collect();
    }
    let chunk = targets.len().div_ceil(threads);
    std::thread::scope(|scope| {
        let handles: Vec<_> = targets
            .chunks(chunk)
            .map(|part| {
                scope.spawn(move || {
                    part.iter().map(|t| translate(t.as_ref(), ctx)).collect::<Vec<_>>()
                })
            })
            .collect();
        handles.into_iter().flat_map(|h| h.join().unwrap_or_default()).collect()
    })
}

/// Below this many targets per thread, [`translate_batch`] stays on the calling thread.
pub const BATCH_MIN_PER_THREAD: usize = 64;

/// What a node of the Graphite series name became on the PromQL side.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum NodeRef {
    /// A fixed text (the node was literal).
    Literal(String),
    /// The value of this label.
    Label(String),
    /// Part of the metric name (a wildcard in the key without a mapping): lost after `rate()`.
    Name,
}

/// One intermediate result.
#[derive(Debug, Clone)]
pub(crate) struct Series {
    /// PromQL text.
    pub expr: String,
    /// Whether `expr` is an atom (selector, call, parenthesised) that needs no parentheses.
    pub atom: bool,
    /// When `expr` is a plain instant selector: it (to take a range of).
    pub selector: Option<String>,
    /// When the series is a counter's `.count`: the selector of its cumulative total.
    pub counter_total: Option<String>,
    /// Meaning.
    pub sem: Semantics,
    /// Legacy-side unit.
    pub unit: Option<String>,
    /// Graphite node index → meaning.
    pub nodes: Vec<NodeRef>,
    /// Labels that tell the series apart.
    pub labels: Vec<String>,
    /// Whether this is at most one series.
    pub single: bool,
    /// Legend format.
    pub legend: Option<String>,
}

impl Series {
    /// `expr`, in parentheses unless it is an atom.
    pub fn wrapped(&self) -> String {
        if self.atom {
            self.expr.clone()
        } else {
            format!("({})", self.expr)
        }
    }

    /// A derived series: new text and meaning, the rest kept.
    pub fn with(&self, expr: String, atom: bool, sem: Semantics) -> Series {
        Series { expr, atom, selector: None, counter_total: None, sem, ..self.clone() }
    }
}

/// Why a branch stopped.
#[derive(Debug)]
pub(crate) enum Fail {
    /// A Graphite feature without a PromQL equivalent.
    Untranslatable { function: String, why: String },
    /// Wrong input.
    Error(TranslateError),
}

impl From<TranslateError> for Fail {
    fn from(e: TranslateError) -> Self {
        Fail::Error(e)
    }
}

pub(crate) fn untranslatable(function: &str, why: impl Into<String>) -> Fail {
    Fail::Untranslatable { function: function.to_owned(), why: why.into() }
}

/// State of one translation.
pub(crate) struct Translator<'c> {
    pub ctx: &'c Context,
    /// The target being read (for error positions).
    pub src: String,
    pub reasons: Vec<String>,
    pub notes: Vec<String>,
    pub variables: Vec<String>,
    /// `offset` that `timeShift` puts on every selector below it.
    pub offset: Option<String>,
    /// refIds being translated (cycle detection).
    pub ref_stack: Vec<String>,
}

impl<'c> Translator<'c> {
    fn new(target: &str, ctx: &'c Context) -> Self {
        Translator {
            ctx,
            src: target.to_owned(),
            reasons: Vec::new(),
            notes: Vec::new(),
            variables: Vec::new(),
            offset: None,
            ref_stack: Vec::new(),
        }
    }

    /// Records an approximation.
    pub fn approx(&mut self, reason: impl Into<String>) {
        let r = reason.into();
        if !self.reasons.contains(&r) {
            self.reasons.push(r);
        }
    }

    /// Records a note.
    pub fn note(&mut self, note: impl Into<String>) {
        let n = note.into();
        if !self.notes.contains(&n) {
            self.notes.push(n);
        }
    }

    /// Records a template variable.
    pub fn variable(&mut self, name: &str) {
        if !self.variables.iter().any(|v| v == name) {
            self.variables.push(name.to_owned());
        }
    }

    /// The flush interval in seconds.
    pub fn flush(&self) -> f64 {
        self.ctx.flush_interval_secs
    }

    /// `sel[window]` with the current `timeShift` offset.
    pub fn range(&self, sel: &str, window: &str) -> String {
        match &self.offset {
            Some(o) => format!("{sel}[{window}] offset {o}"),
            None => format!("{sel}[{window}]"),
        }
    }

    /// `sel` with the current `timeShift` offset.
    pub fn instant(&self, sel: &str) -> String {
        match &self.offset {
            Some(o) => format!("{sel} offset {o}"),
            None => sel.to_owned(),
        }
    }

    /// A range over any series: `sel[w]` for a plain selector, else a subquery at the flush
    /// interval's resolution.
    pub fn range_of(&self, s: &Series, window: &str) -> String {
        match &s.selector {
            Some(sel) => self.range(sel, window),
            None => format!("{}[{window}:{}]", s.wrapped(), promql::duration(self.flush())),
        }
    }

    /// Translates a series expression.
    pub fn series(&mut self, e: &Expr) -> Result<Series, Fail> {
        match e {
            Expr::Path(p) => paths::path(self, p, &[]),
            Expr::Call(c) => functions::call(self, c),
            Expr::Ref(name, span) => self.reference(name, span.start),
            other => Err(Fail::Error(TranslateError::BadArgument {
                function: "target".into(),
                message: format!("expected a series, found `{other}`"),
                pos: other.span().start,
                target: self.src.clone(),
            })),
        }
    }

    fn reference(&mut self, name: &str, pos: usize) -> Result<Series, Fail> {
        let err = |message: &str| {
            Fail::Error(TranslateError::Reference {
                name: name.to_owned(),
                message: message.to_owned(),
                pos,
                target: self.src.clone(),
            })
        };
        let Some(text) = self.ctx.refs.get(name) else {
            return Err(err("unknown reference"));
        };
        if self.ref_stack.iter().any(|r| r == name) || self.ref_stack.len() >= MAX_REFERENCE_DEPTH {
            return Err(err("circular reference"));
        }
        let expr = graphite::parse(text).map_err(|e| Fail::Error(e.into()))?;
        self.ref_stack.push(name.to_owned());
        let saved = std::mem::replace(&mut self.src, text.clone());
        let r = self.series(&expr);
        self.src = saved;
        self.ref_stack.pop();
        r
    }

    fn finish(
        self,
        target: &str,
        result: Result<Series, Fail>,
    ) -> Result<Translation, TranslateError> {
        let s = match result {
            Ok(s) => s,
            Err(Fail::Error(e)) => return Err(e),
            Err(Fail::Untranslatable { function, why }) => {
                return Ok(Translation {
                    target: target.to_owned(),
                    promql: None,
                    legend: None,
                    status: Status::Untranslatable { function, why },
                    semantics: None,
                    unit: None,
                    notes: self.notes,
                    variables: self.variables,
                })
            }
        };
        if let Err(message) = promql::check(&s.expr) {
            return Err(TranslateError::InvalidPromql { promql: s.expr, message });
        }
        let status = if self.reasons.is_empty() {
            Status::Exact
        } else {
            Status::Approximate { reasons: self.reasons }
        };
        Ok(Translation {
            target: target.to_owned(),
            promql: Some(s.expr),
            legend: s.legend,
            status,
            semantics: Some(s.sem),
            unit: s.unit,
            notes: self.notes,
            variables: self.variables,
        })
    }
}
