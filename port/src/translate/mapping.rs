//! The reverse of the mapping file: a Graphite key *pattern* → a metric name plus PromQL label
//! matchers.
//!
//! The mapping file ([`dualmetrics_model::mapping`], `statsd_exporter`'s format) maps a dotted
//! key forward (`checkout.prod.web-1.requests` → `checkout_requests{env="prod",host="web-1"}`);
//! the shim applies it, so the new side has those names. A Graphite target names keys by a
//! pattern, so the translator runs the rule backwards:
//!
//! ```text
//! rule     checkout.*.*.requests  → name checkout_requests, env=$1, host=$2
//! target   stats.counters.checkout.{prod,stage}.web-1.requests.count
//! PromQL   rate(checkout_requests_total{env=~"prod|stage", host="web-1"}[$__rate_interval]) * 10
//! ```
//!
//! - A **literal** key goes through the forward [`MappingFile::map`] (so rule order, regex
//!   rules and `glob_disable_ordering` are exactly the shim's).
//! - A **pattern** is matched against the glob rules in order: the first rule whose every
//!   literal component equals the key's node *covers* the pattern. An earlier rule that could
//!   take some of the keys first makes the result approximate; regex rules cannot be run
//!   backwards over a wildcard, so a pattern no glob rule covers is untranslatable when a regex
//!   rule might take it, and unmapped otherwise.
//! - A node captured by a label whose value is exactly `$n` becomes that label: `*` needs no
//!   matcher, `{a,b}` becomes `=~"a|b"`, `web-*` `=~"web-.*"`, `$host` `=~"$host"`, a literal
//!   `="…"`. Such nodes can be grouped on (`groupByNode`) and named (`aliasByNode`).
//! - A wildcard node that no label keeps is merged by the shim into one series: approximate.
use super::paths::{named_regex, node_value_regex, part_regex, placeholder, NewSide, Ns};
use super::{untranslatable, Fail, NodeRef, Translator};
use crate::graphite::{Part, PathNode};
use crate::promql::{MatchOp, Matcher};
use dualmetrics_model::mapping::{
    GlobComponent, Mapped, Mapping, MappingFile, MatchType, MetricType, TemplatePart,
};
use dualmetrics_model::naming_map::otel_series_base;
use dualmetrics_model::MetricKind;

fn metric_type(ns: &Ns) -> MetricType {
    match ns {
        Ns::CounterCount | Ns::CounterRate => MetricType::Counter,
        Ns::Gauge | Ns::Set => MetricType::Gauge,
        Ns::Timer(_) => MetricType::Observer,
    }
}

/// Whether node pattern `n` can match the literal component `lit`.
fn node_can_match(t: &mut Translator<'_>, n: &PathNode, lit: &str) -> bool {
    if n.is_literal() {
        return n.raw == lit;
    }
    if n.parts.iter().any(|p| matches!(p, Part::Variable(_))) {
        return true;
    }
    let re: String = n.parts.iter().map(|p| part_regex(t, p, false)).collect();
    regex::Regex::new(&format!("^(?:{re})$")).is_ok_and(|r| r.is_match(lit))
}

/// The new side for `key` through the mapping file, or `None` when no rule maps it.
///
/// A literal key goes through the forward mapping ([`literal_side`]); a pattern through the
/// first glob rule that covers it ([`covering_rule`], then [`reverse_glob`]). A pattern no glob
/// rule covers is untranslatable when rules may split its keys ([`unreversible`]).
pub(crate) fn resolve(
    t: &mut Translator<'_>,
    file: &MappingFile,
    ns: &Ns,
    key: &[PathNode],
    tags: &[(String, String)],
    kind: MetricKind,
    unit: &str,
) -> Result<Option<NewSide>, Fail> {
    let ty = metric_type(ns);
    let key_text = key.iter().map(|n| n.raw.as_str()).collect::<Vec<_>>().join(".");
    if key.iter().all(PathNode::is_literal) {
        return literal_side(t, file, ty, key, &key_text, tags, (kind, unit));
    }
    match covering_rule(t, file, ty, key, &key_text) {
        Ok((rule, comps)) => reverse_glob(t, file, rule, comps, key, tags, kind, unit).map(Some),
        Err(overlapping) => unreversible(file, ty, &key_text, &overlapping).map(|()| None),
    }
}

/// A literal key through the forward mapping, exactly as the shim maps it: the rule's name and
/// labels (the target's tags added where the rule sets no such label).
fn literal_side(
    t: &mut Translator<'_>,
    file: &MappingFile,
    ty: MetricType,
    key: &[PathNode],
    key_text: &str,
    tags: &[(String, String)],
    (kind, unit): (MetricKind, &str),
) -> Result<Option<NewSide>, Fail> {
    let m = match file.map(key_text, ty) {
        Mapped::Unmapped => return Ok(None),
        Mapped::Drop { rule_index } => return Err(untranslatable(
            "path",
            format!("mapping rule {rule_index} of {} drops `{key_text}`: the new side has no such series", file.source()),
        )),
        Mapped::Metric(m) => m,
    };
    let mut matchers: Vec<Matcher> =
        m.labels.iter().map(|(k, v)| Matcher::new(k.clone(), MatchOp::Eq, v.clone())).collect();
    for (k, v) in tags {
        if !matchers.iter().any(|x| x.label == *k) {
            matchers.push(Matcher::new(k.clone(), MatchOp::Eq, v.clone()));
        }
    }
    let mut key_refs: Vec<NodeRef> = key.iter().map(|n| NodeRef::Literal(n.raw.clone())).collect();
    if let Some(comps) = m.rule.glob_components() {
        dropped_captures(t, m.rule, comps, key, &mut key_refs);
    }
    t.note(format!(
        "`{key_text}` is mapped by rule {} (`{}`) of {}",
        m.rule_index,
        m.rule.pattern,
        file.source()
    ));
    Ok(Some(NewSide {
        name: otel_series_base(&m.name, unit, kind, t.ctx.prometheus_naming),
        name_regex: false,
        matchers,
        key_refs,
        labels: Vec::new(),
        scale: 1.0,
        kind,
        histogram_as_counter: false,
    }))
}

/// The first glob rule (of the key's type and length) whose every literal component equals the
/// key's node, with its components; earlier rules that could take some of the keys make the
/// result approximate. `Err` holds the rules that overlap the pattern when none covers it.
fn covering_rule<'f>(
    t: &mut Translator<'_>,
    file: &'f MappingFile,
    ty: MetricType,
    key: &[PathNode],
    key_text: &str,
) -> Result<(&'f Mapping, &'f [GlobComponent]), Vec<&'f Mapping>> {
    let mut overlapping: Vec<&Mapping> = Vec::new();
    for rule in file.rules().iter().filter(|r| r.match_type == MatchType::Glob) {
        if rule.match_metric_type.is_some_and(|m| m != ty) {
            continue;
        }
        let Some(comps) = rule.glob_components() else { continue };
        if comps.len() != key.len() {
            continue;
        }
        let mut covers = true;
        let mut overlaps = true;
        for (c, n) in comps.iter().zip(key) {
            if let GlobComponent::Literal(l) = c {
                covers &= n.is_literal() && n.raw == *l;
                overlaps &= node_can_match(t, n, l);
            }
        }
        if covers {
            for o in &overlapping {
                t.approx(format!(
                    "mapping rule {} (`{}`) comes first and maps some keys of `{key_text}` elsewhere",
                    o.index, o.pattern
                ));
            }
            return Ok((rule, comps));
        }
        if overlaps {
            overlapping.push(rule);
        }
    }
    Err(overlapping)
}

/// Why a pattern no glob rule covers cannot be translated: glob rules that split its keys, or
/// regex rules that may take some of them. `Ok` when no rule can map it (the key is unmapped).
fn unreversible(
    file: &MappingFile,
    ty: MetricType,
    key_text: &str,
    overlapping: &[&Mapping],
) -> Result<(), Fail> {
    if !overlapping.is_empty() {
        return Err(untranslatable(
            "path",
            format!(
                "the keys of `{key_text}` are split across mapping rules ({}): one PromQL selector cannot follow them",
                overlapping.iter().map(|r| format!("`{}`", r.pattern)).collect::<Vec<_>>().join(", ")
            ),
        ));
    }
    let regex_rules: Vec<&Mapping> = file
        .rules()
        .iter()
        .filter(|r| r.match_type == MatchType::Regex && r.match_metric_type.is_none_or(|m| m == ty))
        .collect();
    if !regex_rules.is_empty() {
        return Err(untranslatable(
            "path",
            format!(
                "`{key_text}` is a pattern and {} has regex rules ({}) that may take some of its keys; a regex rule cannot be run backwards over a wildcard",
                file.source(),
                regex_rules.iter().map(|r| format!("`{}`", r.pattern)).collect::<Vec<_>>().join(", ")
            ),
        ));
    }
    Ok(())
}

/// Marks wildcard nodes captured by no label or name part (the shim merges their keys).
fn dropped_captures(
    t: &mut Translator<'_>,
    rule: &Mapping,
    comps: &[GlobComponent],
    key: &[PathNode],
    refs: &mut [NodeRef],
) {
    let used = used_captures(rule);
    for (i, c) in comps.iter().enumerate() {
        if let GlobComponent::Capture(n) = c {
            if !used.contains(n) {
                t.approx(format!(
                    "mapping rule {} (`{}`) keeps no label for node `{}`: the new side merges every value of it into one series",
                    rule.index, rule.pattern, key[i].raw
                ));
                refs[i] = NodeRef::Name;
            }
        }
    }
}

fn used_captures(rule: &Mapping) -> Vec<usize> {
    let mut out = Vec::new();
    for tpl in
        std::iter::once(rule.name_template()).chain(rule.label_templates().iter().map(|(_, t)| t))
    {
        for p in &tpl.parts {
            if let TemplatePart::Capture(i) = p {
                out.push(*i);
            }
        }
    }
    out
}

/// The new side of a key pattern under the glob `rule` that covers it: the labels its captures
/// fill ([`reverse_labels`]), the metric name ([`reverse_name`]), and the target's tags.
#[allow(clippy::too_many_arguments)]
fn reverse_glob(
    t: &mut Translator<'_>,
    file: &MappingFile,
    rule: &Mapping,
    comps: &[GlobComponent],
    key: &[PathNode],
    tags: &[(String, String)],
    kind: MetricKind,
    unit: &str,
) -> Result<NewSide, Fail> {
    if rule.action == dualmetrics_model::mapping::Action::Drop {
        return Err(untranslatable(
            "path",
            format!(
                "mapping rule {} (`{}`) of {} drops these keys: the new side has no such series",
                rule.index,
                rule.pattern,
                file.source()
            ),
        ));
    }
    let mut r = Reversal {
        comps,
        key,
        key_refs: key.iter().map(|n| NodeRef::Literal(n.raw.clone())).collect(),
        labels: Vec::new(),
    };
    let mut matchers = r.labels(t, rule);
    for (k, v) in tags {
        if !matchers.iter().any(|m| m.label == *k) {
            matchers.push(Matcher::new(k.clone(), MatchOp::Eq, v.clone()));
        }
    }
    let (name, name_regex) = r.name(t, rule, unit, kind);
    let Reversal { mut key_refs, labels, .. } = r;
    dropped_captures(t, rule, comps, key, &mut key_refs);
    t.note(format!(
        "the keys of this path are mapped by rule {} (`{}`) of {}",
        rule.index,
        rule.pattern,
        file.source()
    ));
    matchers.sort_by(|a, b| a.label.cmp(&b.label));
    Ok(NewSide {
        name,
        name_regex,
        matchers,
        key_refs,
        labels,
        scale: 1.0,
        kind,
        histogram_as_counter: false,
    })
}

/// A glob rule run backwards over one key pattern: what each key node becomes (a literal, a
/// label, part of the name) and the labels that vary.
struct Reversal<'k> {
    comps: &'k [GlobComponent],
    key: &'k [PathNode],
    key_refs: Vec<NodeRef>,
    labels: Vec<String>,
}

impl Reversal<'_> {
    /// The key node a capture number takes its value from.
    fn node_of(&self, cap: usize) -> Option<usize> {
        self.comps.iter().position(|c| *c == GlobComponent::Capture(cap))
    }

    /// The label matchers of the rule's label templates: a label that is exactly one capture
    /// matches its node (a wildcard node becomes that label); a composite value is a literal
    /// or a regex over its parts.
    fn labels(&mut self, t: &mut Translator<'_>, rule: &Mapping) -> Vec<Matcher> {
        let mut matchers = Vec::new();
        for (label, tpl) in rule.label_templates() {
            if let Some(cap) = tpl.as_single_capture() {
                let Some(i) = self.node_of(cap) else { continue };
                let n = &self.key[i];
                if n.is_literal() {
                    matchers.push(Matcher::new(label.clone(), MatchOp::Eq, n.raw.clone()));
                } else {
                    if let Some(re) = node_value_regex(t, n) {
                        matchers.push(Matcher::new(label.clone(), MatchOp::Re, re));
                    }
                    self.key_refs[i] = NodeRef::Label(label.clone());
                    self.labels.push(label.clone());
                }
                continue;
            }
            matchers.push(self.composite_label(t, label, &tpl.parts));
        }
        matchers
    }

    /// A label built from literal parts and captures: `=` its text when every captured node is
    /// literal, otherwise `=~` a regex (and the label varies).
    fn composite_label(
        &mut self,
        t: &mut Translator<'_>,
        label: &str,
        parts: &[TemplatePart],
    ) -> Matcher {
        let mut literal = true;
        let mut re = String::new();
        let mut text = String::new();
        for p in parts {
            match p {
                TemplatePart::Literal(s) => {
                    re.push_str(&regex::escape(s));
                    text.push_str(s);
                }
                TemplatePart::Capture(cap) => {
                    let Some(i) = self.node_of(*cap) else { continue };
                    let n = &self.key[i];
                    if n.is_literal() {
                        re.push_str(&regex::escape(&n.raw));
                        text.push_str(&n.raw);
                    } else {
                        literal = false;
                        re.push_str(&node_value_regex(t, n).unwrap_or_else(|| ".*".into()));
                        self.key_refs[i] = NodeRef::Name;
                    }
                }
            }
        }
        if literal {
            Matcher::new(label.to_owned(), MatchOp::Eq, text)
        } else {
            self.labels.push(label.to_owned());
            Matcher::new(label.to_owned(), MatchOp::Re, re)
        }
    }

    /// The metric name: literal, or captures of literal nodes, or a regex over wildcard nodes
    /// (approximate, with the reason). The flag says whether it is a regex.
    fn name(
        &mut self,
        t: &mut Translator<'_>,
        rule: &Mapping,
        unit: &str,
        kind: MetricKind,
    ) -> (String, bool) {
        let prom = t.ctx.prometheus_naming;
        let mut name_text = String::new();
        let mut regexes = Vec::new();
        for p in &rule.name_template().parts {
            match p {
                TemplatePart::Literal(s) => name_text.push_str(s),
                TemplatePart::Capture(cap) => {
                    let Some(i) = self.node_of(*cap) else { continue };
                    let n = &self.key[i];
                    if n.is_literal() {
                        name_text.push_str(&dualmetrics_model::mapping::escape_metric_name(&n.raw));
                    } else {
                        placeholder(&mut name_text, regexes.len());
                        regexes.push(
                            n.parts.iter().map(|p| part_regex(t, p, true)).collect::<String>(),
                        );
                        self.key_refs[i] = NodeRef::Name;
                    }
                }
            }
        }
        if regexes.is_empty() {
            return (otel_series_base(&name_text, unit, kind, prom), false);
        }
        t.approx(format!(
            "mapping rule {} (`{}`) builds the metric name from a wildcard node: a regex on __name__ (the exporter's escaping turns other characters into `_`)",
            rule.index, rule.pattern
        ));
        (named_regex(&name_text, &regexes, unit, kind, prom), true)
    }
}
