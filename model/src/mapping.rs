//! The mapping file: dotted StatsD keys that carry dimensions in their path nodes
//! (`checkout.prod.web-1.requests`) → a metric name plus labels.
//!
//! The format is Prometheus' `statsd_exporter` mapping file, as users already write it, and this
//! one file is read by every part that must agree on what a dotted key *means*: the collector
//! shim (`--mapping`, so straggler StatsD metrics arrive in OTLP under the mapped names and
//! labels), the comparator (which Graphite path pairs with which PromQL selector) and the query
//! translator (which Graphite path pattern means which PromQL series and labels).
//!
//! ```yaml
//! defaults:
//!   match_type: glob          # glob (default) | regex
//!   observer_type: histogram  # histogram | summary (timer_type is the old spelling)
//!   buckets: [0.005, 0.01, 0.1, 1]
//!   glob_disable_ordering: false
//! mappings:
//! - match: "checkout.*.*.requests"
//!   name: "checkout_requests"
//!   labels:
//!     env: "$1"
//!     host: "$2"
//! - match: "checkout\\.(\\w+)\\.latency"
//!   match_type: regex
//!   match_metric_type: observer
//!   name: "checkout_${1}_latency"
//! - match: "debug.*"
//!   action: drop
//! ```
//!
//! ```
//! use dualmetrics_model::mapping::{MappingFile, Mapped, MetricType};
//! let file = MappingFile::parse(
//!     "mappings:\n- match: checkout.*.*.requests\n  name: checkout_requests\n  labels:\n    env: $1\n    host: $2\n",
//!     "inline.yml",
//! ).unwrap();
//! match file.map("checkout.prod.web-1.requests", MetricType::Counter) {
//!     Mapped::Metric(m) => {
//!         assert_eq!(m.name, "checkout_requests");
//!         assert_eq!(m.labels, vec![("env".into(), "prod".into()), ("host".into(), "web-1".into())]);
//!     }
//!     other => panic!("{other:?}"),
//! }
//! ```
//!
//! # Semantics (as `statsd_exporter`'s `pkg/mapper`)
//! - **Glob** (`match_type: glob`, the default): the key and the pattern are split at `.`; they
//!   match when they have the same number of components and every literal component is equal.
//!   A `*` is a whole component and captures it (possibly empty): `$1` is the first `*`, `$2`
//!   the second. `*` inside a component (`web-*`) is invalid, as in `statsd_exporter`.
//! - **Regex** (`match_type: regex`): the Rust `regex` crate (RE2 syntax, as Go's `regexp`),
//!   **unanchored** like Go's `FindStringSubmatchIndex` (so `.` matches every key, the
//!   documented catch-all drop rule); `$1`, `${1}` and `$name`/`${name}` expand captures.
//! - **Which rule wins.** Glob rules are tried before regex rules (the exporter runs its glob
//!   state machine first and the regex list only when no glob rule matched). Among glob rules
//!   the first in file order wins; with `defaults.glob_disable_ordering: true`, a literal
//!   component beats a `*` at the first component where two matching rules differ, whatever
//!   their order. Among regex rules the first in file order wins.
//! - **`match_metric_type`** (`counter`, `gauge`, `observer`; `timer` is accepted as the old
//!   name of `observer`) restricts a rule to one StatsD type: `c` is a counter, `g` a gauge,
//!   `ms`/`h`/`d` observers. Sets (`s`, which the exporter does not accept) match as gauges,
//!   since the shim turns a set into a gauge of distinct members.
//! - **Names** are expanded and then escaped as the exporter escapes them: every character
//!   outside `[A-Za-z0-9_:]` becomes `_`, and a leading digit gets a `_` in front.
//! - **`action: drop`** drops the metric; `action: map` (the default) maps it.
//! - **`buckets`** (per rule, or `histogram_options.buckets`, else `defaults.buckets` /
//!   `defaults.histogram_options.buckets`) are kept as written. `statsd_exporter` observes `ms`
//!   timers in **seconds**, so its bucket bounds are seconds: a reader that keeps timers in
//!   milliseconds (the shim does) multiplies them by 1000 ([`Mapping::timer_buckets_ms`]).
//!   `None` means "the reader's own default" (the exporter's is `[.005 … 10]` seconds).
//! - **Tags.** A Graphite-tagged key `name;k=v;k2=v2` is matched on `name`; its tags are added
//!   as labels after the mapped ones. DogStatsD tags are the caller's (the shim appends them
//!   the same way). On a clash the mapped label wins, as in the exporter.
//! - Keys `help`, `ttl`, `quantiles`, `summary_options`, `histogram_options` (its `buckets` is
//!   read), `scale` and `honor_labels` are accepted and otherwise ignored, so existing files load.
//!
//! # Deviations (stricter, on purpose)
//! The exporter silently expands a bad reference to the empty string. Here these are load
//! errors naming the file, the mapping index, the key and the value: `$3` with two captures,
//! `$1_total` (Go reads it as the capture *named* `1_total`; write `${1}_total`), a named
//! reference to a group the regex does not have. Also errors: an unknown key, a bad regex, an
//! unknown `match_type`/`action`/`match_metric_type`/`observer_type`, a label name that is not a
//! Prometheus label name (`[A-Za-z_][A-Za-z0-9_]*`, not starting with `__`; the exporter also
//! rejects one-character names, we do not), a name template with characters a metric name
//! cannot have, non-increasing or non-finite buckets, a `map` rule without `name` (a `drop`
//! rule may omit it, the exporter requires it anyway). Literal glob components may start with a
//! digit (`web.1xx.*`), which the exporter's pattern check rejects.
use crate::statsd_line::StatsdType;
use serde::de::{self, Deserializer, MapAccess, Visitor};
use serde::Deserialize;
use std::fmt;
use std::path::Path;

/// How a rule's `match` is read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MatchType {
    /// Dot-separated components, `*` = one whole component (captured).
    Glob,
    /// A regular expression, unanchored.
    Regex,
}

/// The StatsD type a rule may be restricted to (`match_metric_type`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MetricType {
    /// `c`.
    Counter,
    /// `g` (and `s`, see the module docs).
    Gauge,
    /// `ms`, `h`, `d`.
    Observer,
}

impl MetricType {
    /// The type a StatsD line of type `ty` is matched as.
    pub fn of(ty: StatsdType) -> MetricType {
        match ty {
            StatsdType::Counter => MetricType::Counter,
            StatsdType::Gauge | StatsdType::Set => MetricType::Gauge,
            StatsdType::Timer | StatsdType::Histogram | StatsdType::Distribution => {
                MetricType::Observer
            }
        }
    }

    /// The name used in the file.
    pub fn as_str(self) -> &'static str {
        match self {
            MetricType::Counter => "counter",
            MetricType::Gauge => "gauge",
            MetricType::Observer => "observer",
        }
    }
}

impl From<StatsdType> for MetricType {
    fn from(ty: StatsdType) -> Self {
        MetricType::of(ty)
    }
}

/// What an observer (timer/histogram) becomes on the Prometheus side (`observer_type`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ObserverType {
    /// Buckets, `_bucket`/`_sum`/`_count`.
    Histogram,
    /// Quantiles. The shim only emits OTLP histograms, so it treats this as a histogram.
    Summary,
}

/// What a matching rule does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// Map to `name` and `labels` (the default).
    Map,
    /// Drop the metric.
    Drop,
}

/// One piece of a `name` or label value template.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TemplatePart {
    /// Copied as is.
    Literal(String),
    /// The capture with this 1-based index (`$1` is `Capture(1)`). Named regex groups are
    /// resolved to their index when the file is loaded.
    Capture(usize),
}

/// A parsed `name` or label value: literals and capture references.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Template {
    /// The pieces, in order.
    pub parts: Vec<TemplatePart>,
}

impl Template {
    /// The template when it has no capture reference.
    pub fn as_literal(&self) -> Option<String> {
        let mut out = String::new();
        for p in &self.parts {
            match p {
                TemplatePart::Literal(s) => out.push_str(s),
                TemplatePart::Capture(_) => return None,
            }
        }
        Some(out)
    }

    /// The capture index when the template is exactly one reference (`$2`, `${2}`).
    pub fn as_single_capture(&self) -> Option<usize> {
        match self.parts.as_slice() {
            [TemplatePart::Capture(i)] => Some(*i),
            _ => None,
        }
    }

    /// Expands with `capture(i)` giving the text of capture `i` (1-based; `""` if unset).
    pub fn expand<'a>(&self, capture: impl Fn(usize) -> &'a str, out: &mut String) {
        for p in &self.parts {
            match p {
                TemplatePart::Literal(s) => out.push_str(s),
                TemplatePart::Capture(i) => out.push_str(capture(*i)),
            }
        }
    }
}

/// One component of a compiled glob pattern.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GlobComponent {
    /// Must equal the key's component.
    Literal(String),
    /// `*`: any one component, captured as `$n` (1-based, in pattern order).
    Capture(usize),
}

#[derive(Debug, Clone)]
enum Matcher {
    Glob(Vec<GlobComponent>),
    Regex(regex::Regex),
}

/// One rule of the file, with defaults applied. Fields are what the file says (after
/// defaults); the compiled matcher and templates are read through the methods.
#[derive(Debug, Clone)]
pub struct Mapping {
    /// 0-based position in `mappings:`.
    pub index: usize,
    /// The `match` text.
    pub pattern: String,
    /// `match_type` (rule, else `defaults.match_type`, else glob).
    pub match_type: MatchType,
    /// The `name` template as written (`None` only for a `drop` rule without one).
    pub name: Option<String>,
    /// `labels` as written, in file order: `(label name, value template)`.
    pub labels: Vec<(String, String)>,
    /// `match_metric_type`, if the rule is restricted to one StatsD type.
    pub match_metric_type: Option<MetricType>,
    /// `observer_type`/`timer_type` (rule, else defaults); `None` = the reader's default.
    pub observer_type: Option<ObserverType>,
    /// `buckets` (rule, else defaults) as written: seconds for `ms` timers, see the module docs.
    pub buckets: Option<Vec<f64>>,
    /// `action`.
    pub action: Action,
    /// `help`, if given.
    pub help: Option<String>,
    matcher: Matcher,
    name_template: Template,
    label_templates: Vec<(String, Template)>,
}

/// Rules are equal when what the file says is equal (the compiled parts follow from it).
impl PartialEq for Mapping {
    fn eq(&self, o: &Self) -> bool {
        self.index == o.index
            && self.pattern == o.pattern
            && self.match_type == o.match_type
            && self.name == o.name
            && self.labels == o.labels
            && self.match_metric_type == o.match_metric_type
            && self.observer_type == o.observer_type
            && self.buckets == o.buckets
            && self.action == o.action
            && self.help == o.help
    }
}

impl Mapping {
    /// The glob pattern's components, or `None` for a regex rule.
    pub fn glob_components(&self) -> Option<&[GlobComponent]> {
        match &self.matcher {
            Matcher::Glob(c) => Some(c),
            Matcher::Regex(_) => None,
        }
    }

    /// The compiled regex of a regex rule.
    pub fn regex(&self) -> Option<&regex::Regex> {
        match &self.matcher {
            Matcher::Regex(r) => Some(r),
            Matcher::Glob(_) => None,
        }
    }

    /// The parsed `name` (empty for a `drop` rule without a name). Expanded names are escaped
    /// (see the module docs); literal parts are already valid.
    pub fn name_template(&self) -> &Template {
        &self.name_template
    }

    /// The parsed label value templates, in file order.
    pub fn label_templates(&self) -> &[(String, Template)] {
        &self.label_templates
    }

    /// Number of captures a match yields (`*`s of a glob, groups of a regex).
    pub fn capture_count(&self) -> usize {
        match &self.matcher {
            Matcher::Glob(c) => c.iter().filter(|c| matches!(c, GlobComponent::Capture(_))).count(),
            Matcher::Regex(r) => r.captures_len() - 1,
        }
    }

    /// `buckets` converted for a reader that keeps `ms` timers in milliseconds (× 1000).
    pub fn timer_buckets_ms(&self) -> Option<Vec<f64>> {
        self.buckets.as_ref().map(|b| b.iter().map(|v| v * 1000.0).collect())
    }

    fn accepts(&self, ty: MetricType) -> bool {
        self.match_metric_type.is_none_or(|t| t == ty)
    }
}

/// The result of [`MappingFile::map`].
#[derive(Debug, Clone, PartialEq)]
pub enum Mapped<'m> {
    /// A `map` rule matched.
    Metric(MappedMetric<'m>),
    /// A `drop` rule matched.
    Drop {
        /// Index of the rule in `mappings:`.
        rule_index: usize,
    },
    /// No rule matched: the caller keeps the key as it is.
    Unmapped,
}

/// A key mapped by a rule.
#[derive(Debug, Clone, PartialEq)]
pub struct MappedMetric<'m> {
    /// The expanded, escaped metric name.
    pub name: String,
    /// Mapped labels in file order, then the key's `;k=v` tags not already set.
    pub labels: Vec<(String, String)>,
    /// Index of the rule in `mappings:`.
    pub rule_index: usize,
    /// The rule (its `observer_type`, `buckets`, …).
    pub rule: &'m Mapping,
}

/// Where a [`MappingError`] points.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MappingErrorAt {
    /// Index in `mappings:`, or `None` for `defaults`.
    pub index: Option<usize>,
    /// The key (`match`, `labels.host`, `name`, …).
    pub key: String,
    /// The offending value.
    pub value: String,
}

/// A mapping file that cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum MappingError {
    /// The file cannot be read.
    #[error("mapping file {source_name}: cannot read: {error}")]
    Io {
        /// The file.
        source_name: String,
        /// The I/O error.
        #[source]
        error: std::io::Error,
    },
    /// Not YAML, or not the shape of a mapping file (unknown key, wrong type).
    #[error("mapping file {source_name}: {message}")]
    Syntax {
        /// The file.
        source_name: String,
        /// The YAML error, with its path in the document and line/column.
        message: String,
    },
    /// A value the mapper cannot use.
    #[error("mapping file {source_name}: {}{} = {:?}: {reason}", .at.index.map_or("defaults.".to_owned(), |i| format!("mappings[{i}].")), .at.key, .at.value)]
    Invalid {
        /// The file.
        source_name: String,
        /// Rule, key and value.
        at: MappingErrorAt,
        /// Why.
        reason: String,
    },
}

/// A loaded, validated and compiled mapping file.
#[derive(Debug, Clone)]
pub struct MappingFile {
    source: String,
    rules: Vec<Mapping>,
    glob_disable_ordering: bool,
    globs: Vec<usize>,
    regexes: Vec<usize>,
}

impl MappingFile {
    /// Reads and parses the file at `path`.
    ///
    /// # Errors
    /// [`MappingError`] naming the file (and the rule, key and value when one is bad).
    pub fn load(path: impl AsRef<Path>) -> Result<MappingFile, MappingError> {
        let path = path.as_ref();
        let source_name = path.display().to_string();
        let text = std::fs::read_to_string(path)
            .map_err(|error| MappingError::Io { source_name: source_name.clone(), error })?;
        MappingFile::parse(&text, &source_name)
    }

    /// Parses `text`; `source` names it in errors (a path, `inline`, …).
    ///
    /// # Errors
    /// [`MappingError`] naming `source` (and the rule, key and value when one is bad).
    pub fn parse(text: &str, source: &str) -> Result<MappingFile, MappingError> {
        let raw: RawFile = if text.trim().is_empty() {
            RawFile::default()
        } else {
            serde_norway::from_str(text).map_err(|e| MappingError::Syntax {
                source_name: source.to_owned(),
                message: e.to_string(),
            })?
        };
        compile(raw, source)
    }

    /// The file's name as given to [`load`](Self::load) or [`parse`](Self::parse).
    pub fn source(&self) -> &str {
        &self.source
    }

    /// Every rule, in file order.
    pub fn rules(&self) -> &[Mapping] {
        &self.rules
    }

    /// `defaults.glob_disable_ordering`.
    pub fn glob_disable_ordering(&self) -> bool {
        self.glob_disable_ordering
    }

    /// Maps a StatsD key (optionally Graphite-tagged, `name;k=v`) of type `ty`.
    pub fn map(&self, key: &str, ty: MetricType) -> Mapped<'_> {
        let (bare, tags) = match key.find(';') {
            Some(i) => (&key[..i], &key[i + 1..]),
            None => (key, ""),
        };
        if let Some((rule, caps)) = self.match_glob(bare, ty) {
            return self.finish(rule, tags, |i| caps.get(i.wrapping_sub(1)).copied().unwrap_or(""));
        }
        for &ri in &self.regexes {
            let rule = &self.rules[ri];
            if !rule.accepts(ty) {
                continue;
            }
            let Matcher::Regex(re) = &rule.matcher else { continue };
            if let Some(caps) = re.captures(bare) {
                return self.finish(rule, tags, |i| caps.get(i).map_or("", |m| m.as_str()));
            }
        }
        Mapped::Unmapped
    }

    fn finish<'a>(
        &self,
        rule: &Mapping,
        tags: &str,
        cap: impl Fn(usize) -> &'a str + Copy,
    ) -> Mapped<'_> {
        let rule = &self.rules[rule.index];
        if rule.action == Action::Drop {
            return Mapped::Drop { rule_index: rule.index };
        }
        let mut raw = String::new();
        rule.name_template.expand(cap, &mut raw);
        let name = escape_metric_name(&raw);
        let mut labels: Vec<(String, String)> = rule
            .label_templates
            .iter()
            .map(|(k, t)| {
                let mut v = String::new();
                t.expand(cap, &mut v);
                (k.clone(), v)
            })
            .collect();
        for tag in tags.split(';').filter(|t| !t.is_empty()) {
            let (k, v) = tag.split_once('=').unwrap_or((tag, ""));
            if !labels.iter().any(|(l, _)| l == k) {
                labels.push((k.to_owned(), v.to_owned()));
            }
        }
        Mapped::Metric(MappedMetric { name, labels, rule_index: rule.index, rule })
    }

    fn match_glob<'k>(&self, key: &'k str, ty: MetricType) -> Option<(&Mapping, Vec<&'k str>)> {
        if self.globs.is_empty() {
            return None;
        }
        let comps: Vec<&str> = key.split('.').collect();
        let mut best: Option<&Mapping> = None;
        for &ri in &self.globs {
            let rule = &self.rules[ri];
            let Matcher::Glob(pat) = &rule.matcher else { continue };
            if pat.len() != comps.len() || !rule.accepts(ty) {
                continue;
            }
            let ok = pat.iter().zip(&comps).all(|(p, c)| match p {
                GlobComponent::Literal(l) => l == c,
                GlobComponent::Capture(_) => true,
            });
            if !ok {
                continue;
            }
            if !self.glob_disable_ordering {
                best = Some(rule);
                break;
            }
            best = match best {
                None => Some(rule),
                Some(b) if more_specific(rule, b) => Some(rule),
                keep => keep,
            };
        }
        let rule = best?;
        let Matcher::Glob(pat) = &rule.matcher else { return None };
        let caps = pat
            .iter()
            .zip(&comps)
            .filter(|(p, _)| matches!(p, GlobComponent::Capture(_)))
            .map(|(_, c)| *c)
            .collect();
        Some((rule, caps))
    }
}

/// With ordering disabled: `a` beats `b` if, at the first component where they differ, `a` has
/// a literal and `b` a `*` (both matched the same key, so two literals there are equal).
fn more_specific(a: &Mapping, b: &Mapping) -> bool {
    let (Matcher::Glob(pa), Matcher::Glob(pb)) = (&a.matcher, &b.matcher) else { return false };
    for (x, y) in pa.iter().zip(pb) {
        match (x, y) {
            (GlobComponent::Literal(_), GlobComponent::Capture(_)) => return true,
            (GlobComponent::Capture(_), GlobComponent::Literal(_)) => return false,
            _ => {}
        }
    }
    false
}

/// `statsd_exporter`'s escaping of a metric name: characters outside `[A-Za-z0-9_:]` become
/// `_`; a leading digit is prefixed with `_`.
pub fn escape_metric_name(name: &str) -> String {
    let mut out = String::with_capacity(name.len() + 1);
    if name.as_bytes().first().is_some_and(u8::is_ascii_digit) {
        out.push('_');
    }
    for c in name.chars() {
        out.push(if c.is_ascii_alphanumeric() || c == '_' || c == ':' { c } else { '_' });
    }
    out
}

/// Whether `name` is a Prometheus label name usable in a mapping (`[A-Za-z_][A-Za-z0-9_]*`,
/// not reserved `__…`).
pub fn is_valid_label_name(name: &str) -> bool {
    let b = name.as_bytes();
    !b.is_empty()
        && (b[0].is_ascii_alphabetic() || b[0] == b'_')
        && b.iter().all(|c| c.is_ascii_alphanumeric() || *c == b'_')
        && !name.starts_with("__")
}

// ---------------------------------------------------------------------------------------------
// The file as YAML gives it.

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFile {
    #[serde(default)]
    defaults: RawDefaults,
    #[serde(default)]
    mappings: Vec<RawMapping>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawDefaults {
    match_type: Option<String>,
    observer_type: Option<String>,
    timer_type: Option<String>,
    buckets: Option<Vec<f64>>,
    histogram_options: Option<RawHistogramOptions>,
    #[serde(default)]
    glob_disable_ordering: bool,
    ttl: Option<serde_norway::Value>,
    quantiles: Option<serde_norway::Value>,
    summary_options: Option<serde_norway::Value>,
}

#[derive(Debug, Default, Deserialize)]
struct RawHistogramOptions {
    buckets: Option<Vec<f64>>,
    #[serde(flatten)]
    _rest: std::collections::BTreeMap<String, serde_norway::Value>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawMapping {
    #[serde(rename = "match")]
    pattern: String,
    match_type: Option<String>,
    name: Option<String>,
    #[serde(default, deserialize_with = "ordered_labels")]
    labels: Vec<(String, String)>,
    match_metric_type: Option<String>,
    observer_type: Option<String>,
    timer_type: Option<String>,
    buckets: Option<Vec<f64>>,
    histogram_options: Option<RawHistogramOptions>,
    action: Option<String>,
    help: Option<String>,
    ttl: Option<serde_norway::Value>,
    quantiles: Option<serde_norway::Value>,
    summary_options: Option<serde_norway::Value>,
    scale: Option<serde_norway::Value>,
    honor_labels: Option<serde_norway::Value>,
}

/// Labels as an ordered list; scalar values (`code: 200`) become their text, as Go's YAML does.
fn ordered_labels<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<(String, String)>, D::Error> {
    struct V;
    impl<'de> Visitor<'de> for V {
        type Value = Vec<(String, String)>;
        fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
            f.write_str("a map of label name to value")
        }
        fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
            Ok(Vec::new())
        }
        fn visit_map<A: MapAccess<'de>>(self, mut m: A) -> Result<Self::Value, A::Error> {
            let mut out = Vec::new();
            while let Some((k, v)) = m.next_entry::<String, serde_norway::Value>()? {
                let v = match v {
                    serde_norway::Value::String(s) => s,
                    serde_norway::Value::Number(n) => n.to_string(),
                    serde_norway::Value::Bool(b) => b.to_string(),
                    serde_norway::Value::Null => String::new(),
                    _ => {
                        return Err(de::Error::custom(format!(
                            "label {k:?}: the value must be a string"
                        )))
                    }
                };
                if out.iter().any(|(l, _): &(String, String)| *l == k) {
                    return Err(de::Error::custom(format!("label {k:?} is given twice")));
                }
                out.push((k, v));
            }
            Ok(out)
        }
    }
    d.deserialize_any(V)
}

// ---------------------------------------------------------------------------------------------
// Validation and compilation.

/// Checks and compiles a parsed file: the defaults, then every rule, one check per field of the
/// statsd_exporter format (each error names the rule, the key and the value). Long because the
/// format has that many fields; each check is a few lines.
fn compile(raw: RawFile, source: &str) -> Result<MappingFile, MappingError> {
    let invalid =
        |index: Option<usize>, key: &str, value: &str, reason: String| MappingError::Invalid {
            source_name: source.to_owned(),
            at: MappingErrorAt { index, key: key.to_owned(), value: value.to_owned() },
            reason,
        };
    let d = raw.defaults;
    let _ = (&d.ttl, &d.quantiles, &d.summary_options);
    let default_match = match d.match_type.as_deref() {
        None | Some("") => MatchType::Glob,
        Some(v) => parse_match_type(v)
            .ok_or_else(|| invalid(None, "match_type", v, "expected glob or regex".into()))?,
    };
    let default_observer = observer_of(d.observer_type.as_deref(), d.timer_type.as_deref())
        .map_err(|(k, v)| invalid(None, k, &v, "expected histogram or summary".into()))?;
    let default_buckets = d.buckets.or(d.histogram_options.and_then(|h| h.buckets));
    if let Some(b) = &default_buckets {
        check_buckets(b).map_err(|r| invalid(None, "buckets", &format!("{b:?}"), r))?;
    }

    let mut rules = Vec::with_capacity(raw.mappings.len());
    for (i, m) in raw.mappings.into_iter().enumerate() {
        let at = Some(i);
        let _ = (&m.ttl, &m.quantiles, &m.summary_options, &m.scale, &m.honor_labels);
        let match_type = match m.match_type.as_deref() {
            None | Some("") => default_match,
            Some(v) => parse_match_type(v)
                .ok_or_else(|| invalid(at, "match_type", v, "expected glob or regex".into()))?,
        };
        let action = match m.action.as_deref() {
            None | Some("") | Some("map") => Action::Map,
            Some("drop") => Action::Drop,
            Some(v) => return Err(invalid(at, "action", v, "expected map or drop".into())),
        };
        let match_metric_type = match m.match_metric_type.as_deref() {
            None | Some("") => None,
            Some("counter") => Some(MetricType::Counter),
            Some("gauge") => Some(MetricType::Gauge),
            Some("observer") | Some("timer") => Some(MetricType::Observer),
            Some(v) => {
                return Err(invalid(
                    at,
                    "match_metric_type",
                    v,
                    "expected counter, gauge or observer".into(),
                ))
            }
        };
        let observer_type = observer_of(m.observer_type.as_deref(), m.timer_type.as_deref())
            .map_err(|(k, v)| invalid(at, k, &v, "expected histogram or summary".into()))?
            .or(default_observer);
        let rule_buckets = match (m.buckets, m.histogram_options.and_then(|h| h.buckets)) {
            (Some(_), Some(_)) => {
                return Err(invalid(
                    at,
                    "buckets",
                    "",
                    "given both at the top level and in histogram_options".into(),
                ))
            }
            (a, b) => a.or(b).filter(|b| !b.is_empty()),
        };
        if let Some(b) = &rule_buckets {
            check_buckets(b).map_err(|r| invalid(at, "buckets", &format!("{b:?}"), r))?;
        }
        let buckets = rule_buckets.or_else(|| default_buckets.clone());

        if m.pattern.is_empty() {
            return Err(invalid(at, "match", "", "must not be empty".into()));
        }
        let (matcher, names) = match match_type {
            MatchType::Glob => (
                Matcher::Glob(
                    compile_glob(&m.pattern).map_err(|r| invalid(at, "match", &m.pattern, r))?,
                ),
                Vec::new(),
            ),
            MatchType::Regex => {
                let re = regex::Regex::new(&m.pattern)
                    .map_err(|e| invalid(at, "match", &m.pattern, format!("bad regex: {e}")))?;
                let names: Vec<Option<String>> =
                    re.capture_names().map(|n| n.map(str::to_owned)).collect();
                (Matcher::Regex(re), names)
            }
        };
        let captures = match &matcher {
            Matcher::Glob(c) => c.iter().filter(|c| matches!(c, GlobComponent::Capture(_))).count(),
            Matcher::Regex(r) => r.captures_len() - 1,
        };

        let name_template = match m.name.as_deref() {
            None | Some("") if action == Action::Map => {
                return Err(invalid(at, "name", "", "a map rule needs a name".into()))
            }
            None | Some("") => Template::default(),
            Some(n) => {
                let t =
                    parse_template(n, captures, &names).map_err(|r| invalid(at, "name", n, r))?;
                check_name_literals(&t).map_err(|r| invalid(at, "name", n, r))?;
                t
            }
        };
        let mut label_templates = Vec::with_capacity(m.labels.len());
        for (k, v) in &m.labels {
            if !is_valid_label_name(k) {
                return Err(invalid(
                    at,
                    &format!("labels.{k}"),
                    k,
                    "not a Prometheus label name ([A-Za-z_][A-Za-z0-9_]*, not starting with __)"
                        .into(),
                ));
            }
            let t = parse_template(v, captures, &names)
                .map_err(|r| invalid(at, &format!("labels.{k}"), v, r))?;
            label_templates.push((k.clone(), t));
        }

        rules.push(Mapping {
            index: i,
            pattern: m.pattern,
            match_type,
            name: m.name,
            labels: m.labels,
            match_metric_type,
            observer_type,
            buckets,
            action,
            help: m.help,
            matcher,
            name_template,
            label_templates,
        });
    }
    let globs = rules.iter().filter(|r| r.match_type == MatchType::Glob).map(|r| r.index).collect();
    let regexes =
        rules.iter().filter(|r| r.match_type == MatchType::Regex).map(|r| r.index).collect();
    Ok(MappingFile {
        source: source.to_owned(),
        rules,
        glob_disable_ordering: d.glob_disable_ordering,
        globs,
        regexes,
    })
}

fn parse_match_type(v: &str) -> Option<MatchType> {
    match v {
        "glob" => Some(MatchType::Glob),
        "regex" => Some(MatchType::Regex),
        _ => None,
    }
}

/// `observer_type` wins over the old `timer_type`, as in the exporter.
fn observer_of(
    observer: Option<&str>,
    timer: Option<&str>,
) -> Result<Option<ObserverType>, (&'static str, String)> {
    let (key, v) = match (observer, timer) {
        (Some(o), _) if !o.is_empty() => ("observer_type", o),
        (_, Some(t)) if !t.is_empty() => ("timer_type", t),
        _ => return Ok(None),
    };
    match v {
        "histogram" => Ok(Some(ObserverType::Histogram)),
        "summary" => Ok(Some(ObserverType::Summary)),
        _ => Err((key, v.to_owned())),
    }
}

fn check_buckets(b: &[f64]) -> Result<(), String> {
    if b.iter().any(|v| !v.is_finite()) {
        return Err("bucket bounds must be finite (+Inf is added by itself)".into());
    }
    if b.windows(2).any(|w| w[0] >= w[1]) {
        return Err("bucket bounds must be strictly increasing".into());
    }
    Ok(())
}

fn compile_glob(pattern: &str) -> Result<Vec<GlobComponent>, String> {
    let mut n = 0;
    pattern
        .split('.')
        .map(|c| {
            if c == "*" {
                n += 1;
                Ok(GlobComponent::Capture(n))
            } else if c.is_empty() {
                Err("empty component (two dots, or a leading/trailing dot)".into())
            } else if c.contains('*') {
                Err(format!("`*` must be a whole component, not part of {c:?}"))
            } else if !c.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-') {
                Err(format!("component {c:?} may only have [A-Za-z0-9_-] (or be `*`)"))
            } else {
                Ok(GlobComponent::Literal(c.to_owned()))
            }
        })
        .collect()
}

/// Parses `$n`, `${n}`, `$name`, `${name}` and `$$` (Go's `regexp.Expand` syntax).
fn parse_template(s: &str, captures: usize, names: &[Option<String>]) -> Result<Template, String> {
    let mut parts = Vec::new();
    let mut lit = String::new();
    let b = s.as_bytes();
    let mut i = 0;
    while i < b.len() {
        if b[i] != b'$' {
            let ch = s[i..].chars().next().unwrap_or_default();
            lit.push(ch);
            i += ch.len_utf8();
            continue;
        }
        if b.get(i + 1) == Some(&b'$') {
            lit.push('$');
            i += 2;
            continue;
        }
        let (name, next) = if b.get(i + 1) == Some(&b'{') {
            match s[i + 2..].find('}') {
                Some(end) => (&s[i + 2..i + 2 + end], i + 3 + end),
                None => return Err(format!("unclosed `${{` at byte {i}")),
            }
        } else {
            let len =
                s[i + 1..].bytes().take_while(|c| c.is_ascii_alphanumeric() || *c == b'_').count();
            (&s[i + 1..i + 1 + len], i + 1 + len)
        };
        if name.is_empty() || !name.bytes().all(|c| c.is_ascii_alphanumeric() || c == b'_') {
            return Err(format!(
                "`$` at byte {i} is not followed by a capture reference (write `$$` for a dollar)"
            ));
        }
        let index = if name.bytes().all(|c| c.is_ascii_digit()) {
            let n: usize = name.parse().map_err(|_| format!("capture ${name} is too large"))?;
            if n == 0 || n > captures {
                return Err(format!(
                    "${name} refers to capture {n}, but the match has {captures} capture{}",
                    if captures == 1 { "" } else { "s" }
                ));
            }
            n
        } else if let Some(n) = names.iter().position(|x| x.as_deref() == Some(name)) {
            n
        } else if name.as_bytes()[0].is_ascii_digit() {
            let digits: String = name.chars().take_while(char::is_ascii_digit).collect();
            return Err(format!(
                "`${name}` reads as the capture named {name:?} (which does not exist); write `${{{digits}}}{}`",
                &name[digits.len()..]
            ));
        } else {
            return Err(format!("${name} names no capture group of the match"));
        };
        if !lit.is_empty() {
            parts.push(TemplatePart::Literal(std::mem::take(&mut lit)));
        }
        parts.push(TemplatePart::Capture(index));
        i = next;
    }
    if !lit.is_empty() {
        parts.push(TemplatePart::Literal(lit));
    }
    Ok(Template { parts })
}

/// A name's literal parts must be metric-name characters; the first character, when literal,
/// must not be a digit.
fn check_name_literals(t: &Template) -> Result<(), String> {
    for (i, p) in t.parts.iter().enumerate() {
        if let TemplatePart::Literal(l) = p {
            if let Some(c) =
                l.chars().find(|c| !(c.is_ascii_alphanumeric() || *c == '_' || *c == ':'))
            {
                return Err(format!("{c:?} cannot be part of a metric name ([A-Za-z0-9_:])"));
            }
            if i == 0 && l.starts_with(|c: char| c.is_ascii_digit()) {
                return Err("a metric name cannot start with a digit".into());
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests;
