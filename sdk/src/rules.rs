//! Per-metric rules: a glob on the metric name and what to override for the metrics it matches
//! (mode, StatsD name, OTel name, temporality, cardinality limit, StatsD sample rate).
//!
//! # Order: the first match wins
//! Rules are checked in this order, and the first rule whose glob matches decides **every** field
//! it sets (fields it leaves out fall back to the global setting, not to a later rule):
//! 1. rules given in code ([`crate::DualMetricsBuilder::with_rule`]), in call order;
//! 2. `[[env.<name>.rules]]` of the selected environment, in file order;
//! 3. `[[default.rules]]`, in file order.
//!
//! ```toml
//! [[default.rules]]
//! match = "checkout.cart.*"     # glob on the facade name: * ? [abc] {a,b}; `*` crosses dots
//! mode = "otlp"                 # legacy | dual | otlp: pins the metric's mode
//! statsd_name = "legacy.cart"   # StatsD name; `statsd.prefix` is still prepended
//! otel_name = "cart.items"      # OTel instrument name
//! temporality = "delta"         # cumulative | delta
//! cardinality_limit = 50000     # series per metric, > 0
//! statsd_sample_rate = 0.1      # histograms: send this share of samples to StatsD, `|@0.1`
//! ```
//!
//! `statsd_sample_rate` (0.000001 <= rate <= 1, histograms only) keeps each sample for StatsD with that
//! probability and declares the rate on the lines, so the daemon's count (each line counts
//! 1/rate) is right *in expectation*, with a relative standard deviation of
//! `sqrt((1 - rate) / (rate * n))` for `n` samples (about 3 % for 10,000 samples at 0.1). The
//! daemon's sum, mean and percentiles are those of the kept samples (statsd does not scale the
//! sum). OTLP always gets every sample.
//!
//! Globs (the crate's own matcher, `src/glob.rs`) are compiled once when the configuration is resolved; an instrument
//! is matched once, at registration (and again at a reload), never per emit.
use crate::glob::Glob;
use dualmetrics_model::naming::validate_metric_name;

use crate::config::{toml_text, Temporality};
use crate::error::{ConfigError, Source};
use crate::Mode;

/// Fields a rule table accepts.
const RULE_FIELDS: &[&str] = &[
    "match",
    "mode",
    "statsd_name",
    "otel_name",
    "temporality",
    "cardinality_limit",
    "statsd_sample_rate",
];

/// One per-metric rule, built in code with [`Rule::matching`] or read from `[[default.rules]]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rule {
    pattern: String,
    mode: Option<Mode>,
    statsd_name: Option<String>,
    otel_name: Option<String>,
    temporality: Option<Temporality>,
    cardinality_limit: Option<usize>,
    /// The StatsD sample rate of histogram samples, as `f64` bits (so the rule stays `Eq`).
    statsd_sample_rate: Option<u64>,
}

impl Rule {
    /// A rule for the metrics whose facade name matches `glob` (`*`, `?`, `[abc]`, `{a,b}`;
    /// `*` also matches dots). It overrides nothing until a setter is called.
    pub fn matching(glob: impl Into<String>) -> Self {
        Rule {
            pattern: glob.into(),
            mode: None,
            statsd_name: None,
            otel_name: None,
            temporality: None,
            cardinality_limit: None,
            statsd_sample_rate: None,
        }
    }

    /// Pins the mode of the matching metrics: [`crate::DualMetrics::set_mode`] no longer moves
    /// them.
    pub fn mode(mut self, mode: Mode) -> Self {
        self.mode = Some(mode);
        self
    }

    /// The StatsD name (the configured `statsd.prefix` is still prepended).
    pub fn statsd_name(mut self, name: impl Into<String>) -> Self {
        self.statsd_name = Some(name.into());
        self
    }

    /// The OpenTelemetry instrument name.
    pub fn otel_name(mut self, name: impl Into<String>) -> Self {
        self.otel_name = Some(name.into());
        self
    }

    /// The OTLP temporality of the matching metrics.
    pub fn temporality(mut self, temporality: Temporality) -> Self {
        self.temporality = Some(temporality);
        self
    }

    /// Series per metric before the overflow series (a limit given at registration still wins).
    pub fn cardinality_limit(mut self, limit: usize) -> Self {
        self.cardinality_limit = Some(limit);
        self
    }

    /// The share of a histogram's samples sent to StatsD (`0.000001 <= rate <= 1`), each line declaring
    /// it (`|@0.1`): the daemon's count is right in expectation (see the [module docs](self)).
    /// OTLP gets every sample. Ignored for other kinds.
    pub fn statsd_sample_rate(mut self, rate: f64) -> Self {
        self.statsd_sample_rate = Some(rate.to_bits());
        self
    }

    /// The glob.
    pub fn pattern(&self) -> &str {
        &self.pattern
    }

    /// The pinned mode, if any.
    pub fn pinned_mode(&self) -> Option<Mode> {
        self.mode
    }
}

/// A rule with where it came from, for error messages.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct SourcedRule {
    pub rule: Rule,
    /// Index within its source (code calls, or the section's `rules` array).
    pub index: usize,
    pub source: Source,
}

/// What the rules decide for one metric name. `None` fields fall back to global settings.
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct Resolved {
    /// The glob of the matching rule.
    pub rule: Option<String>,
    pub mode: Option<Mode>,
    pub statsd_name: Option<String>,
    pub otel_name: Option<String>,
    pub temporality: Option<Temporality>,
    pub cardinality_limit: Option<usize>,
    pub statsd_sample_rate: Option<f64>,
    /// `rules[<index>]` and the source of the matching rule, for error messages.
    pub origin: Option<(String, Source)>,
}

/// The validated, compiled rules of a configuration, in match order.
#[derive(Debug, Clone, Default)]
pub struct Rules {
    rules: Vec<SourcedRule>,
    /// The compiled glob of each rule, in match order.
    globs: Vec<Glob>,
}

impl PartialEq for Rules {
    fn eq(&self, other: &Self) -> bool {
        self.rules == other.rules
    }
}

impl Rules {
    /// Validates and compiles `rules` (already in match order).
    pub(crate) fn compile(rules: Vec<SourcedRule>) -> Result<Rules, ConfigError> {
        let mut globs = Vec::with_capacity(rules.len());
        for r in &rules {
            let err = |field: &str, value: String, reason: String| ConfigError {
                key: format!("rules[{}].{field}", r.index),
                value,
                origin: r.source.clone(),
                reason,
            };
            let glob = Glob::new(&r.rule.pattern)
                .map_err(|e| err("match", r.rule.pattern.clone(), format!("invalid glob: {e}")))?;
            if r.rule.pattern.is_empty() {
                return Err(err("match", String::new(), "must not be empty".into()));
            }
            globs.push(glob);
            for (field, name) in
                [("statsd_name", &r.rule.statsd_name), ("otel_name", &r.rule.otel_name)]
            {
                if let Some(name) = name {
                    validate_metric_name(name)
                        .map_err(|e| err(field, name.clone(), e.to_string()))?;
                }
            }
            if r.rule.cardinality_limit == Some(0) {
                return Err(err("cardinality_limit", "0".into(), "must be positive".into()));
            }
            if let Some(rate) = r.rule.statsd_sample_rate.map(f64::from_bits) {
                if !(dualmetrics_model::statsd_parse::MIN_SAMPLE_RATE..=1.0).contains(&rate) {
                    return Err(err(
                        "statsd_sample_rate",
                        rate.to_string(),
                        "must be at least 0.000001 (receivers refuse smaller rates) and at most 1"
                            .into(),
                    ));
                }
            }
        }
        Ok(Rules { rules, globs })
    }

    /// The rules in match order.
    pub fn iter(&self) -> impl Iterator<Item = &Rule> {
        self.rules.iter().map(|r| &r.rule)
    }

    /// Number of rules.
    pub fn len(&self) -> usize {
        self.rules.len()
    }

    /// Whether there is no rule.
    pub fn is_empty(&self) -> bool {
        self.rules.is_empty()
    }

    /// The first rule matching `name`, resolved.
    pub(crate) fn resolve(&self, name: &str) -> Resolved {
        let first = self.globs.iter().position(|g| g.is_match(name));
        match first.map(|i| &self.rules[i]) {
            None => Resolved::default(),
            Some(SourcedRule { rule: r, index, source }) => Resolved {
                origin: Some((format!("rules[{index}]"), source.clone())),
                rule: Some(r.pattern.clone()),
                mode: r.mode,
                statsd_name: r.statsd_name.clone(),
                otel_name: r.otel_name.clone(),
                temporality: r.temporality,
                cardinality_limit: r.cardinality_limit,
                statsd_sample_rate: r.statsd_sample_rate.map(f64::from_bits),
            },
        }
    }
}

/// Reads a section's `rules` value (an array of tables) into rules, validating every field's
/// type and value; the glob and names are checked by [`Rules::compile`].
pub(crate) fn from_toml(
    value: &toml::Value,
    source: &Source,
) -> Result<Vec<SourcedRule>, ConfigError> {
    let err = |key: String, value: String, reason: &str| ConfigError {
        key,
        value,
        origin: source.clone(),
        reason: reason.to_owned(),
    };
    let items = value.as_array().ok_or_else(|| {
        err("rules".into(), toml_text(value), "expected an array of tables ([[default.rules]])")
    })?;
    let mut out = Vec::with_capacity(items.len());
    for (index, item) in items.iter().enumerate() {
        let table = item
            .as_table()
            .ok_or_else(|| err(format!("rules[{index}]"), toml_text(item), "expected a table"))?;
        let key = |f: &str| format!("rules[{index}].{f}");
        let string = |f: &str| -> Result<Option<String>, ConfigError> {
            match table.get(f) {
                None => Ok(None),
                Some(toml::Value::String(s)) => Ok(Some(s.clone())),
                Some(v) => Err(err(key(f), toml_text(v), "expected a string")),
            }
        };
        for (k, v) in table {
            if !RULE_FIELDS.contains(&k.as_str()) {
                return Err(err(
                    key(k),
                    toml_text(v),
                    "unknown field: expected match, mode, statsd_name, otel_name, temporality, cardinality_limit or statsd_sample_rate",
                ));
            }
        }
        let pattern =
            string("match")?.ok_or_else(|| err(key("match"), String::new(), "is required"))?;
        let mut rule = Rule::matching(pattern);
        if let Some(m) = string("mode")? {
            rule.mode = Some(
                Mode::parse(&m)
                    .ok_or_else(|| err(key("mode"), m, "expected one of legacy, dual, otlp"))?,
            );
        }
        rule.statsd_name = string("statsd_name")?;
        rule.otel_name = string("otel_name")?;
        if let Some(t) = string("temporality")? {
            rule.temporality = Some(
                parse_temporality(&t)
                    .ok_or_else(|| err(key("temporality"), t, "expected cumulative or delta"))?,
            );
        }
        match table.get("cardinality_limit") {
            None => {}
            Some(toml::Value::Integer(i)) if *i > 0 => rule.cardinality_limit = Some(*i as usize),
            Some(v) => {
                return Err(err(
                    key("cardinality_limit"),
                    toml_text(v),
                    "must be a positive integer",
                ))
            }
        }
        match table.get("statsd_sample_rate") {
            None => {}
            Some(toml::Value::Float(f)) => rule.statsd_sample_rate = Some(f.to_bits()),
            Some(toml::Value::Integer(i)) => rule.statsd_sample_rate = Some((*i as f64).to_bits()),
            Some(v) => {
                return Err(err(
                    key("statsd_sample_rate"),
                    toml_text(v),
                    "expected a number greater than 0 and at most 1",
                ))
            }
        }
        out.push(SourcedRule { rule, index, source: source.clone() });
    }
    Ok(out)
}

fn parse_temporality(s: &str) -> Option<Temporality> {
    match s.to_ascii_lowercase().as_str() {
        "cumulative" => Some(Temporality::Cumulative),
        "delta" => Some(Temporality::Delta),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn compile(rules: Vec<Rule>) -> Rules {
        Rules::compile(
            rules
                .into_iter()
                .enumerate()
                .map(|(index, rule)| SourcedRule { rule, index, source: Source::Code })
                .collect(),
        )
        .unwrap()
    }

    #[test]
    fn first_matching_rule_wins_over_later_overlapping_ones() {
        let rules = compile(vec![
            Rule::matching("a.b.*").mode(Mode::Legacy),
            Rule::matching("a.*").mode(Mode::Otlp).otel_name("x"),
        ]);
        let r = rules.resolve("a.b.c");
        assert_eq!(r.rule.as_deref(), Some("a.b.*"));
        assert_eq!(r.mode, Some(Mode::Legacy));
        assert_eq!(r.otel_name, None, "fields of later rules are not merged in");
        assert_eq!(rules.resolve("a.z").mode, Some(Mode::Otlp));
        assert_eq!(rules.resolve("b"), Resolved::default());
    }

    #[test]
    fn star_crosses_dots() {
        let rules = compile(vec![Rule::matching("checkout.*").mode(Mode::Otlp)]);
        assert_eq!(rules.resolve("checkout.cart.items").mode, Some(Mode::Otlp));
    }
}
