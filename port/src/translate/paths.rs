//! A Graphite metric path (or `seriesByTag`) → the new side's series.
//!
//! 1. **Namespace.** The reference StatsD daemon writes a key `K` under
//!    `stats.counters.K.{count,rate}`, `stats.gauges.K`, `stats.timers.K.<stat>`,
//!    `stats.sets.K.count`, or with `legacyNamespace` `stats_counts.K` / `stats.K`
//!    ([`dualmetrics_model::naming_map::GraphiteNaming`]). The namespace decides the metric
//!    type and the value semantics; a path outside these namespaces has no OTLP counterpart.
//! 2. **Name and labels.** In order: the SDK catalog (exact OTel name, unit, kind) for a literal
//!    key; otherwise the shim's naming (the StatsD key is the OTel name, timers in `ms`)
//!    through [`dualmetrics_model::naming_map::otel_series_base`]. Wildcards in the key
//!    become a regex on `__name__` (approximate: Prometheus naming joins nodes with `_`, so a
//!    `*` can match across nodes). Graphite tags (`;k=v`, `seriesByTag`) become label matchers.
//! 3. **Semantics.** `.count` (per flush) → `rate(x_total[$__rate_interval]) * flush`, which
//!    is what Graphite shows at any step (its consolidation averages per-flush counts);
//!    `.rate` → `rate(…)`; a gauge → the series; timer `.mean` → `rate(_sum) / rate(_count)`;
//!    percentiles → `histogram_quantile` (approximate: bucket interpolation).
use super::{untranslatable, Fail, NodeRef, Semantics, Series, Translator};
use crate::graphite::{Call, Expr, Part, PathExpr, PathNode};
use crate::promql::{self, MatchOp, Matcher};
use dualmetrics_model::catalog::CatalogInstrument;
use dualmetrics_model::naming_map::{otel_label, otel_series_base};
use dualmetrics_model::{MetricKind, Unit};

/// The StatsD namespace a path is in.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Ns {
    CounterCount,
    CounterRate,
    Gauge,
    Timer(String),
    Set,
}

/// The new side's series for a key: a name (exact or regex) and matchers.
pub(crate) struct NewSide {
    pub name: String,
    pub name_regex: bool,
    pub matchers: Vec<Matcher>,
    /// Key node → meaning.
    pub key_refs: Vec<NodeRef>,
    /// Labels that vary.
    pub labels: Vec<String>,
    /// Legacy value = new value × `scale` (ms timers vs seconds histograms).
    pub scale: f64,
    pub kind: MetricKind,
    /// A StatsD `h`/`d` catalog instrument: counted by the daemon, the new side's `_sum`.
    pub histogram_as_counter: bool,
}

impl NewSide {
    fn selector(&self, suffix: &str) -> String {
        let name = format!("{}{suffix}", self.name);
        promql::selector(&name, self.name_regex, &self.matchers)
    }
}

/// Locates the namespace; returns it and the key's node range.
fn namespace(t: &Translator<'_>, p: &PathExpr) -> Result<(Ns, usize, usize), Fail> {
    let nodes = &p.nodes;
    let lit = |i: usize| nodes.get(i).filter(|n| n.is_literal()).map(|n| n.raw.as_str());
    let gp = &t.ctx.graphite.global_prefix;
    let prefix: Vec<&str> = gp.split('.').filter(|s| !s.is_empty()).collect();
    let not_statsd = || {
        untranslatable(
            "path",
            format!(
                "`{}` is not in a StatsD namespace ({gp}.counters, {gp}.gauges, {gp}.timers, {gp}.sets), so no OTLP series corresponds to it",
                p.raw
            ),
        )
    };
    if t.ctx.graphite.legacy_namespace {
        let counts = if gp.is_empty() { "stats_counts".to_owned() } else { format!("{gp}_counts") };
        if lit(0) == Some(counts.as_str()) && nodes.len() > 1 {
            return Ok((Ns::CounterCount, 1, nodes.len()));
        }
    }
    for (i, want) in prefix.iter().enumerate() {
        match lit(i) {
            Some(n) if n == *want => {}
            _ if !nodes.get(i).is_some_and(PathNode::is_literal) => {
                return Err(untranslatable("path", format!("node {i} of `{}` is a wildcard over StatsD namespaces, which mixes metric types", p.raw)))
            }
            _ => return Err(not_statsd()),
        }
    }
    let pl = prefix.len();
    let Some(ns_node) = nodes.get(pl) else { return Err(not_statsd()) };
    if !ns_node.is_literal() {
        return Err(untranslatable(
            "path",
            format!("node {pl} of `{}` (`{}`) is a wildcard over StatsD namespaces, which mixes metric types", p.raw, ns_node.raw),
        ));
    }
    let last = nodes.len() - 1;
    let stat_literal = |what: &str| -> Result<String, Fail> {
        match lit(last) {
            Some(s) => Ok(s.to_owned()),
            None => Err(untranslatable(
                "path",
                format!("the last node of `{}` (`{}`) is a wildcard over {what}, which mixes value semantics", p.raw, nodes[last].raw),
            )),
        }
    };
    let need_key = |from: usize, to: usize| if to > from { Ok(()) } else { Err(not_statsd()) };
    match ns_node.raw.as_str() {
        "counters" => {
            let stat = stat_literal("count and rate")?;
            need_key(pl + 1, last)?;
            match stat.as_str() {
                "count" => Ok((Ns::CounterCount, pl + 1, last)),
                "rate" => Ok((Ns::CounterRate, pl + 1, last)),
                _ => Err(not_statsd()),
            }
        }
        "gauges" => {
            need_key(pl + 1, nodes.len())?;
            Ok((Ns::Gauge, pl + 1, nodes.len()))
        }
        "timers" => {
            let stat = stat_literal("timer statistics")?;
            need_key(pl + 1, last)?;
            Ok((Ns::Timer(stat), pl + 1, last))
        }
        "sets" => {
            let stat = stat_literal("set statistics")?;
            need_key(pl + 1, last)?;
            if stat != "count" {
                return Err(not_statsd());
            }
            Ok((Ns::Set, pl + 1, last))
        }
        _ if t.ctx.graphite.legacy_namespace && pl < nodes.len() => {
            Ok((Ns::CounterRate, pl, nodes.len()))
        }
        _ => Err(not_statsd()),
    }
}

pub(crate) fn metric_kind(ns: &Ns) -> (MetricKind, &'static str) {
    match ns {
        Ns::CounterCount | Ns::CounterRate => (MetricKind::Counter, ""),
        Ns::Gauge | Ns::Set => (MetricKind::Gauge, ""),
        Ns::Timer(_) => (MetricKind::Histogram, "ms"),
    }
}

/// Placeholder characters for non-literal parts while the name goes through Prometheus naming.
const PH_OPEN: char = '\u{E000}';
const PH_CLOSE: char = '\u{E001}';

/// The regex of one non-literal part, after Prometheus naming of its literal text.
pub(crate) fn part_regex(t: &mut Translator<'_>, part: &Part, prom: bool) -> String {
    let mangle = |s: &str| {
        if prom {
            s.split(['/', '_', '.', '-', ':', ' '])
                .filter(|w| !w.is_empty())
                .collect::<Vec<_>>()
                .join("_")
        } else {
            s.to_owned()
        }
    };
    let glob = |s: &str| -> String {
        let mut out = String::new();
        for (i, piece) in s.split('*').enumerate() {
            if i > 0 {
                out.push_str(".*");
            }
            out.push_str(&regex::escape(&mangle(piece)).replace("\\?", "."));
        }
        out
    };
    match part {
        Part::Literal(s) => regex::escape(&mangle(s)),
        Part::Star => ".*".into(),
        Part::Question => ".".into(),
        Part::CharClass(c) => format!("[{c}]"),
        Part::Alternatives(alts) => {
            format!("(?:{})", alts.iter().map(|a| glob(a)).collect::<Vec<_>>().join("|"))
        }
        Part::Variable(v) => {
            t.variable(&v.name);
            format!("${{{}}}", v.name)
        }
    }
}

/// Marks a non-literal part while a name goes through Prometheus naming: `regexes[idx]`
/// replaces it afterwards (see [`named_regex`]).
pub(crate) fn placeholder(out: &mut String, idx: usize) {
    out.push(PH_OPEN);
    out.push_str(&idx.to_string());
    out.push(PH_CLOSE);
}

/// The regex of a metric name whose text has placeholders: the text goes through the new
/// side's naming, its literal pieces are escaped and each placeholder becomes its regex.
pub(crate) fn named_regex(
    text: &str,
    regexes: &[String],
    unit: &str,
    kind: MetricKind,
    prom: bool,
) -> String {
    let named = otel_series_base(text, unit, kind, prom);
    let mut re = String::new();
    let mut rest = named.as_str();
    while let Some(open) = rest.find(PH_OPEN) {
        re.push_str(&regex::escape(&rest[..open]));
        let after = &rest[open + PH_OPEN.len_utf8()..];
        let close = after.find(PH_CLOSE).unwrap_or(after.len());
        let idx: usize = after[..close].parse().unwrap_or(0);
        re.push_str(regexes.get(idx).map_or(".*", String::as_str));
        rest = after.get(close + PH_CLOSE.len_utf8()..).unwrap_or("");
    }
    re.push_str(&regex::escape(rest));
    re
}

/// The regex a label value must match for a node pattern (values are not renamed):
/// `{prod,stage}` → `prod|stage`, `web-*` → `web-.*`, `$host` → `$host`. `None` for `*`
/// (any value).
pub(crate) fn node_value_regex(t: &mut Translator<'_>, n: &PathNode) -> Option<String> {
    if n.is_star() {
        return None;
    }
    if let [Part::Alternatives(alts)] = n.parts.as_slice() {
        if alts.iter().all(|a| !a.contains(['*', '?', '[', '{', '$'])) {
            return Some(alts.iter().map(|a| regex::escape(a)).collect::<Vec<_>>().join("|"));
        }
    }
    if let [Part::Variable(v)] = n.parts.as_slice() {
        t.variable(&v.name);
        return Some(format!("${}", v.name));
    }
    Some(n.parts.iter().map(|p| part_regex(t, p, false)).collect())
}

/// Resolves the key nodes to the new side, first match wins: 1. the SDK catalog, for a literal
/// key it lists ([`catalog_side`]); 2. the mapping file (the shim maps straggler keys with it);
/// 3. the shim's naming, where the key is the OTel name (a pattern becomes a regex on
/// `__name__`, [`pattern_name`]).
fn resolve(
    t: &mut Translator<'_>,
    ns: &Ns,
    key: &[PathNode],
    tags: &[(String, String)],
) -> Result<NewSide, Fail> {
    let prom = t.ctx.prometheus_naming;
    let (kind, unit) = metric_kind(ns);
    let mut matchers: Vec<Matcher> = tags
        .iter()
        .map(|(k, v)| Matcher::new(otel_label(k, prom), MatchOp::Eq, v.clone()))
        .collect();
    matchers.sort_by(|a, b| a.label.cmp(&b.label));
    let literal = key.iter().all(PathNode::is_literal);
    let key_text = key.iter().map(|n| n.raw.as_str()).collect::<Vec<_>>().join(".");
    let key_refs: Vec<NodeRef> = key
        .iter()
        .map(|n| if n.is_literal() { NodeRef::Literal(n.raw.clone()) } else { NodeRef::Name })
        .collect();
    let side = NewSide {
        name: String::new(),
        name_regex: false,
        matchers,
        key_refs,
        labels: Vec::new(),
        scale: 1.0,
        kind,
        histogram_as_counter: false,
    };
    let ctx = t.ctx;
    // 1. the SDK catalog, for a literal key
    if let (true, Some(cat)) = (literal, &ctx.catalog) {
        if let Some(inst) = cat.by_statsd_key(&key_text) {
            return Ok(catalog_side(t, ns, inst, &key_text, side));
        }
    }
    // 2. the mapping file (the shim maps straggler keys with it)
    if let Some(file) = &ctx.mapping {
        if let Some(side) = super::mapping::resolve(t, file, ns, key, tags, kind, unit)? {
            return Ok(side);
        }
    }
    // 3. the shim's naming: the key is the OTel name
    if literal {
        return Ok(NewSide { name: otel_series_base(&key_text, unit, kind, prom), ..side });
    }
    let name = pattern_name(t, key, &key_text, unit, kind);
    Ok(NewSide { name, name_regex: true, ..side })
}

/// The new side of a key the SDK catalog lists: its OTel name, kind and unit (a timer in
/// another unit than ms is scaled, with a note).
fn catalog_side(
    t: &mut Translator<'_>,
    ns: &Ns,
    inst: &CatalogInstrument,
    key_text: &str,
    side: NewSide,
) -> NewSide {
    let otel_name = inst.otel_name.clone().unwrap_or_else(|| inst.name.clone());
    let kind = inst.kind;
    let cat_unit = inst.unit.clone();
    let mut scale = 1.0;
    if matches!(ns, Ns::Timer(_)) {
        scale = Unit::new(cat_unit.as_str()).millis_factor().unwrap_or(1.0);
        if scale != 1.0 {
            t.note(format!(
                "`{key_text}`: the StatsD timer is in ms, the OTel histogram in `{cat_unit}`: values are multiplied by {}",
                promql::number(scale)
            ));
        }
    }
    NewSide {
        name: otel_series_base(&otel_name, &cat_unit, kind, t.ctx.prometheus_naming),
        scale,
        kind,
        histogram_as_counter: kind == MetricKind::Histogram && inst.statsd_type != "ms",
        ..side
    }
}

/// The `__name__` regex of a key pattern: the placeholders are named, then the named text is
/// turned into a regex. A wildcard or a template variable in it makes the translation
/// approximate (with the reason).
fn pattern_name(
    t: &mut Translator<'_>,
    key: &[PathNode],
    key_text: &str,
    unit: &str,
    kind: MetricKind,
) -> String {
    let prom = t.ctx.prometheus_naming;
    let mut placeholder_text = String::new();
    let mut regexes: Vec<String> = Vec::new();
    let mut star = false;
    let mut var = false;
    for (i, n) in key.iter().enumerate() {
        if i > 0 {
            placeholder_text.push('.');
        }
        for part in &n.parts {
            match part {
                Part::Literal(s) => placeholder_text.push_str(s),
                other => {
                    star |= matches!(other, Part::Star | Part::Question);
                    var |= matches!(other, Part::Variable(_));
                    placeholder(&mut placeholder_text, regexes.len());
                    regexes.push(part_regex(t, other, prom));
                }
            }
        }
    }
    let re = named_regex(&placeholder_text, &regexes, unit, kind, prom);
    if star {
        t.approx(format!(
            "the wildcard in the metric-name part of `{key_text}` becomes a regex on __name__; Prometheus naming joins nodes with `_`, so it can also match across nodes (a mapping rule that makes the node a label is exact)"
        ));
    }
    if var {
        t.approx(format!(
            "a template variable in the metric-name part of `{key_text}`: its values must be spelled as Prometheus names (`.` and `-` become `_`)"
        ));
    }
    re
}

/// Translates a metric path; `extra` matchers are added (for `exclude`/`grep`).
pub(crate) fn path(
    t: &mut Translator<'_>,
    p: &PathExpr,
    extra: &[Matcher],
) -> Result<Series, Fail> {
    let (ns, from, to) = namespace(t, p)?;
    let mut side = resolve(t, &ns, &p.nodes[from..to], &p.tags)?;
    side.matchers.extend(extra.iter().cloned());
    if side.name_regex && promql::regex_matches_empty(&side.name) {
        return Err(untranslatable(
            "path",
            format!(
                "`{}` selects every key of its StatsD namespace; the new side has no namespace to select by, and a metric-name regex that matches everything is refused by Prometheus",
                p.raw
            ),
        ));
    }
    // a glob such as `[z-a]` gives a regex PromQL would reject: wrong input, said here
    let regexes = side
        .matchers
        .iter()
        .filter(|m| matches!(m.op, MatchOp::Re | MatchOp::NotRe))
        .map(|m| m.value.as_str())
        .chain(side.name_regex.then_some(side.name.as_str()));
    for re in regexes {
        if let Err(e) = promql::check_regex(re) {
            return Err(Fail::Error(crate::TranslateError::BadArgument {
                function: "path".into(),
                message: format!("`{}` gives the regex `{re}`, which is invalid: {e}", p.raw),
                pos: p.span.start,
                target: t.src.clone(),
            }));
        }
    }
    let mut nodes: Vec<NodeRef> =
        p.nodes[..from].iter().map(|n| NodeRef::Literal(n.raw.clone())).collect();
    nodes.extend(side.key_refs.iter().cloned());
    nodes.extend(p.nodes[to..].iter().map(|n| NodeRef::Literal(n.raw.clone())));
    let single = p.is_literal() && !side.name_regex;
    let legend = legend_of(&nodes, &p.tags);
    let series = build(t, &ns, &side, p)?;
    Ok(Series { nodes, labels: side.labels.clone(), single, legend, ..series })
}

/// A legend template from node meanings, or `None` when a node is part of the metric name.
pub(crate) fn legend_of(nodes: &[NodeRef], tags: &[(String, String)]) -> Option<String> {
    let mut parts = Vec::new();
    for n in nodes {
        match n {
            NodeRef::Literal(s) => parts.push(s.clone()),
            NodeRef::Label(l) => parts.push(format!("{{{{{l}}}}}")),
            NodeRef::Name => return None,
        }
    }
    let mut out = parts.join(".");
    for (k, v) in tags {
        out.push_str(&format!(";{k}={v}"));
    }
    Some(out)
}

fn base_series(expr: String, atom: bool, sem: Semantics) -> Series {
    Series {
        expr,
        atom,
        selector: None,
        counter_total: None,
        sem,
        unit: None,
        nodes: Vec::new(),
        labels: Vec::new(),
        single: false,
        legend: None,
    }
}

/// `e` (a per-second rate) times the flush interval `f` in seconds: a count per flush. The
/// flag says whether the result is still an atom (no operator).
fn times_flush(e: String, f: f64) -> (String, bool) {
    if f == 1.0 {
        (e, true)
    } else {
        (format!("{e} * {}", promql::number(f)), false)
    }
}

/// `e` times the new side's `scale` (an OTel histogram in another unit than the timer's ms).
fn scaled(e: String, atom: bool, scale: f64) -> (String, bool) {
    if scale == 1.0 {
        (e, atom)
    } else {
        (format!("{} * {}", if atom { e } else { format!("({e})") }, promql::number(scale)), false)
    }
}

/// The PromQL for the namespace's semantics (timers: [`timer`]).
fn build(t: &mut Translator<'_>, ns: &Ns, side: &NewSide, p: &PathExpr) -> Result<Series, Fail> {
    let f = t.flush();
    let ri = t.ctx.rate_interval.clone();
    let counter_sel =
        || if side.histogram_as_counter { side.selector("_sum") } else { side.selector("") };
    Ok(match ns {
        Ns::CounterCount => {
            let total = counter_sel();
            let rate = format!("rate({})", t.range(&total, &ri));
            let (expr, atom) = times_flush(rate, f);
            let mut s = base_series(expr, atom, Semantics::CountPerInterval { seconds: f });
            if t.offset.is_none() {
                s.counter_total = Some(total);
            }
            s
        }
        Ns::CounterRate => base_series(
            format!("rate({})", t.range(&counter_sel(), &ri)),
            true,
            Semantics::PerSecond,
        ),
        Ns::Gauge => {
            let sel = side.selector("");
            let mut s = base_series(t.instant(&sel), true, Semantics::Level);
            if t.offset.is_none() {
                s.selector = Some(sel);
            }
            s
        }
        Ns::Set => {
            t.approx("a StatsD set count is distinct members per flush; the shim exports distinct members per export interval");
            let sel = side.selector("");
            base_series(t.instant(&sel), true, Semantics::Level)
        }
        Ns::Timer(stat) => timer(t, stat, side, p)?,
    })
}

/// A timer statistic from the new side's histogram: the count or sum per flush, the count per
/// second, the mean, or a quantile ([`timer_quantile`]).
fn timer(t: &mut Translator<'_>, stat: &str, side: &NewSide, p: &PathExpr) -> Result<Series, Fail> {
    if side.kind != MetricKind::Histogram {
        return Err(untranslatable("path", format!("`{}`: the {stat} of a timer needs a histogram on the new side, and the catalog says `{}` is not one", p.raw, side.name)));
    }
    let f = t.flush();
    let ri = t.ctx.rate_interval.clone();
    let tr: &Translator<'_> = t;
    let [count, sum, bucket] = ["_count", "_sum", "_bucket"]
        .map(|suffix| format!("rate({})", tr.range(&side.selector(suffix), &ri)));
    let mut s = match stat {
        "count" => {
            let (e, a) = times_flush(count, f);
            base_series(e, a, Semantics::CountPerInterval { seconds: f })
        }
        "count_ps" => base_series(count, true, Semantics::PerSecond),
        "sum" => {
            let (e, a) = times_flush(sum, f);
            let (e, a) = scaled(e, a, side.scale);
            base_series(e, a, Semantics::SumPerInterval { seconds: f })
        }
        "mean" => {
            let (e, a) = scaled(format!("{sum} / {count}"), false, side.scale);
            base_series(e, a, Semantics::Mean)
        }
        other => timer_quantile(t, other, side, p, &bucket)?,
    };
    if !matches!(stat, "count" | "count_ps") {
        s.unit = Some("ms".to_owned());
    }
    Ok(s)
}

/// A timer's `upper`, `lower`, `median` or `upper_NN` as `histogram_quantile` over
/// `bucket_rate` (approximate, with the reason); any other statistic needs the individual
/// timings and is untranslatable.
fn timer_quantile(
    t: &mut Translator<'_>,
    stat: &str,
    side: &NewSide,
    p: &PathExpr,
    bucket_rate: &str,
) -> Result<Series, Fail> {
    let q = match stat {
        "upper" => 1.0,
        "lower" => 0.0,
        "median" => 0.5,
        s if s.starts_with("upper_") => s["upper_".len()..]
            .replacen('_', ".", 1)
            .parse::<f64>()
            .ok()
            .filter(|p| (0.0..=100.0).contains(p))
            .map(|p| (p * 1e7).round() / 1e9)
            .ok_or_else(|| untranslatable("path", format!("`{}`: `{s}` is not a timer statistic", p.raw)))?,
        s => {
            return Err(untranslatable(
                "path",
                format!("`{}`: the timer statistic `{s}` needs the individual timings; an OTel histogram keeps only buckets, sum and count", p.raw),
            ))
        }
    };
    if side.name_regex {
        return Err(untranslatable(
            "path",
            format!("`{}`: a percentile over several timers whose names differ only in a wildcard node needs one histogram per timer; a mapping rule that turns the node into a label makes it translatable", p.raw),
        ));
    }
    let reason = match stat {
        "upper" => "`upper` (the largest timing) becomes histogram_quantile(1, …): the upper bound of the highest non-empty bucket".to_owned(),
        "lower" => "`lower` (the smallest timing) becomes histogram_quantile(0, …): the lower bound of the lowest non-empty bucket".to_owned(),
        s => format!("`{s}` becomes histogram_quantile({}, …), which interpolates within a bucket: the error is up to that bucket's width", promql::number(q)),
    };
    t.approx(reason);
    let e = format!("histogram_quantile({}, {bucket_rate})", promql::number(q));
    let (e, a) = scaled(e, true, side.scale);
    Ok(base_series(e, a, Semantics::Quantile { q }))
}

/// `seriesByTag('name=…', 'k=v', 'k!=v', 'k=~re', 'k!=~re')`.
///
/// Graphite's regex conditions are "anchored at the start of the value" (graphite-web
/// `tags/base.py`); PromQL anchors at both ends, so `k=~re` becomes `k=~"(?:re).*"` (and
/// `re$` becomes `(?:re)`). As in PromQL, a condition that matches the empty value also
/// matches series without the tag.
pub(crate) fn series_by_tag(t: &mut Translator<'_>, c: &Call) -> Result<Series, Fail> {
    let prom = t.ctx.prometheus_naming;
    let mut name: Option<(String, usize)> = None;
    let mut matchers = Vec::new();
    let mut labels = Vec::new();
    for a in &c.args {
        let Expr::Str(s, span) = &a.value else {
            return Err(Fail::Error(crate::TranslateError::BadArgument {
                function: c.name.clone(),
                message: "every argument is a tag expression string ('k=v')".into(),
                pos: a.value.span().start,
                target: t.src.clone(),
            }));
        };
        let bad = || {
            Fail::Error(crate::TranslateError::BadArgument {
                function: c.name.clone(),
                message: format!("`{s}` is not a tag expression (k=v, k!=v, k=~re, k!=~re)"),
                pos: span.start,
                target: t.src.clone(),
            })
        };
        let (k, op, v) = if let Some((k, v)) = s.split_once("!=~") {
            (k, MatchOp::NotRe, v)
        } else if let Some((k, v)) = s.split_once("=~") {
            (k, MatchOp::Re, v)
        } else if let Some((k, v)) = s.split_once("!=") {
            (k, MatchOp::Ne, v)
        } else if let Some((k, v)) = s.split_once('=') {
            (k, MatchOp::Eq, v)
        } else {
            return Err(bad());
        };
        let k = k.trim();
        if k.is_empty() {
            return Err(bad());
        }
        for var in variables_in(v) {
            t.variable(&var);
        }
        if k == "name" {
            if op != MatchOp::Eq {
                return Err(untranslatable(
                    "seriesByTag",
                    format!("`{s}`: a condition on the Graphite name other than `=` cannot be mapped to Prometheus metric names"),
                ));
            }
            name = Some((v.to_owned(), span.start + 1 + s.find('=').unwrap_or(0) + 1));
            continue;
        }
        let value = match op {
            MatchOp::Re | MatchOp::NotRe => {
                let body = v.strip_suffix('$').unwrap_or(v);
                if v.ends_with('$') {
                    format!("(?:{body})")
                } else {
                    format!("(?:{body}).*")
                }
            }
            _ => v.to_owned(),
        };
        if matches!(op, MatchOp::Re | MatchOp::NotRe) {
            if let Err(e) = promql::check_regex(v) {
                return Err(Fail::Error(crate::TranslateError::BadArgument {
                    function: c.name.clone(),
                    message: format!("`{s}`: bad regex: {e}"),
                    pos: span.start,
                    target: t.src.clone(),
                }));
            }
        }
        let label = otel_label(k, prom);
        if op != MatchOp::Eq {
            labels.push(label.clone());
        }
        matchers.push(Matcher::new(label, op, value));
    }
    let Some((name, at)) = name else {
        return Err(untranslatable(
            "seriesByTag",
            "without `name=…` the series could be of any StatsD type",
        ));
    };
    let p = crate::graphite::parser::path(&t.src, &name, at).map_err(|e| Fail::Error(e.into()))?;
    let mut s = path(t, &p, &matchers)?;
    s.labels.extend(labels);
    s.single = false;
    s.legend = None;
    Ok(s)
}

fn variables_in(v: &str) -> Vec<String> {
    let mut out = Vec::new();
    let b = v.as_bytes();
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'$' {
            let mut j = i + 1;
            if b.get(j) == Some(&b'{') {
                j += 1;
            }
            let s = j;
            while b.get(j).is_some_and(|c| c.is_ascii_alphanumeric() || *c == b'_') {
                j += 1;
            }
            if j > s {
                out.push(v[s..j].to_owned());
            }
            i = j;
        } else {
            i += 1;
        }
    }
    out
}
