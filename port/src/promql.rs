//! Writing PromQL text, and the check every generated expression goes through.
//!
//! [`check`] parses an expression with the `promql-parser` crate (the Prometheus grammar in
//! Rust). Grafana's interval variables (`$__rate_interval`, `$__interval`, `$__range`) stand
//! where PromQL wants a duration, so they are replaced by `1m` for the check only, as Grafana
//! replaces them before it sends a query; every other template variable (`$host`, `${host}`,
//! which can only stand inside a label matcher's string) is replaced by a plain word, as after
//! Grafana's interpolation (a `${1}` left in a regex would read as a repetition).

/// Grafana's interval variables and the duration each stands for during [`check`].
pub const GRAFANA_DURATION_VARIABLES: [&str; 3] = ["$__rate_interval", "$__interval", "$__range"];

/// The duration that replaces a Grafana interval variable in [`check`].
pub const CHECK_DURATION: &str = "1m";

/// How many expression shapes [`check`] remembers as valid (about 100 bytes each; the set is
/// cleared when it is full, so memory stays bounded on any input).
pub const CHECK_CACHE_SHAPES: usize = 65_536;

/// Parses `expr` as PromQL (after replacing Grafana's interval variables). `Err` carries the
/// parser's message.
///
/// The parse costs ~30 µs, and a dashboard estate repeats a few dozen expression shapes over
/// thousands of metric names, so valid *shapes* are remembered ([`shape`]: identifiers renamed
/// by first appearance, label-equality values reduced to empty / non-empty). A shape is a
/// parse-preserving rewrite, so an expression whose shape has parsed parses too; anything the
/// shape cannot vouch for (a new shape, a comment) goes through the parser.
pub fn check(expr: &str) -> Result<(), String> {
    let mut text = expr.to_owned();
    if text.contains("$__") {
        for v in GRAFANA_DURATION_VARIABLES {
            text = text.replace(v, CHECK_DURATION);
        }
    }
    if text.contains('$') {
        text = interpolate_variables(&text);
    }
    let Some(shape) = shape(&text) else {
        return promql_parser::parser::parse(&text).map(|_| ());
    };
    let cache = CHECKED_SHAPES.get_or_init(Default::default);
    if cache.lock().unwrap_or_else(|p| p.into_inner()).contains(&shape) {
        return Ok(());
    }
    promql_parser::parser::parse(&text)?;
    let mut set = cache.lock().unwrap_or_else(|p| p.into_inner());
    if set.len() >= CHECK_CACHE_SHAPES {
        set.clear();
    }
    set.insert(shape);
    Ok(())
}

/// Regexes longer than this stay as written in a [`shape`] (a long one could exceed the regex
/// crate's compile size limit, which only the parser's own compile can tell).
pub const SHAPE_REGEX_MAX_BYTES: usize = 256;

/// What the parser can see of a label-matcher regex: that it compiles (anchored, as PromQL
/// compiles it) and whether it matches the empty string (a selector needs one matcher that does
/// not). `None` keeps the regex as written: an escape or a `{` (whose compile the syntax check
/// cannot vouch for), a long one, or one that does not parse.
fn regex_class(re: &str) -> Option<&'static str> {
    if re.len() > SHAPE_REGEX_MAX_BYTES || re.contains(['\\', '{']) {
        return None;
    }
    let hir = regex_syntax::Parser::new().parse(&format!("^(?:{re})$")).ok()?;
    // without an escape the only assertions are `^`/`$`, which hold on the empty string
    Some(if hir.properties().minimum_len() == Some(0) { "\".*\"" } else { "\".+\"" })
}

/// The shapes [`check`] has seen parse.
static CHECKED_SHAPES: std::sync::OnceLock<std::sync::Mutex<std::collections::HashSet<String>>> =
    std::sync::OnceLock::new();

/// PromQL's keywords, aggregators and special numbers (promql-parser's lexer table, compared in
/// lower case as the lexer does): [`shape`] keeps them as they are.
const KEYWORDS: [&str; 37] = [
    "and",
    "or",
    "unless",
    "atan2",
    "sum",
    "avg",
    "count",
    "min",
    "max",
    "group",
    "stddev",
    "stdvar",
    "topk",
    "bottomk",
    "count_values",
    "quantile",
    "limitk",
    "limit_ratio",
    "offset",
    "by",
    "without",
    "on",
    "ignoring",
    "group_left",
    "group_right",
    "bool",
    "smoothed",
    "anchored",
    "fill",
    "fill_left",
    "fill_right",
    "start",
    "end",
    "inf",
    "nan",
    "step",
    "range",
];

/// The shape of an expression: the same text with every identifier that is not a keyword, not
/// a function name (an identifier followed by `(`) and not reserved (`__name__`…) renamed by
/// first appearance (`qa`, `qb`, …, keeping a `:`), and every string after `=`/`!=` (a label's
/// value) reduced to `""` or `"s"`. Regexes, numbers, durations and every other string stay as
/// written. PromQL's grammar depends on an identifier only through its lexical class and on
/// which identifiers are equal, and on an equality matcher's value only through its emptiness,
/// so two expressions of one shape both parse or both fail. `None` for text the rewrite does
/// not follow (a comment, an unterminated string).
pub fn shape(text: &str) -> Option<String> {
    let b = text.as_bytes();
    let mut out = String::with_capacity(text.len());
    let mut names: Vec<(&str, usize)> = Vec::new();
    let mut last_op: &[u8] = b"";
    let mut i = 0;
    while i < b.len() {
        let c = b[i];
        // an identifier starts with a letter or `_` (a `:` of its own is a subquery's colon)
        if c.is_ascii_alphabetic() || c == b'_' {
            let start = i;
            while i < b.len() && (b[i].is_ascii_alphanumeric() || b[i] == b'_' || b[i] == b':') {
                i += 1;
            }
            let ident = &text[start..i];
            let next = b[i..].iter().find(|c| !c.is_ascii_whitespace());
            let lower = ident.to_ascii_lowercase();
            if ident.starts_with("__") || next == Some(&b'(') || KEYWORDS.contains(&lower.as_str())
            {
                out.push_str(ident);
            } else {
                let k = match names.iter().find(|(n, _)| *n == ident) {
                    Some(&(_, k)) => k,
                    None => {
                        names.push((ident, names.len()));
                        names.len() - 1
                    }
                };
                out.push('q');
                let mut k = k;
                loop {
                    out.push(char::from(b'a' + (k % 26) as u8));
                    k /= 26;
                    if k == 0 {
                        break;
                    }
                }
                if ident.contains(':') {
                    out.push(':');
                }
            }
            last_op = b"";
        } else if c.is_ascii_digit() || (c == b'.' && b.get(i + 1).is_some_and(u8::is_ascii_digit))
        {
            // a number or a duration, with any exponent sign: kept as written
            let start = i;
            while i < b.len()
                && (b[i].is_ascii_alphanumeric()
                    || b[i] == b'.'
                    || b[i] == b'_'
                    || ((b[i] == b'+' || b[i] == b'-') && matches!(b[i - 1], b'e' | b'E')))
            {
                i += 1;
            }
            out.push_str(&text[start..i]);
            last_op = b"";
        } else if c == b'"' || c == b'\'' || c == b'`' {
            let start = i;
            i += 1;
            while i < b.len() && b[i] != c {
                i += if b[i] == b'\\' && c != b'`' { 2 } else { 1 };
            }
            if i >= b.len() {
                return None;
            }
            i += 1;
            if last_op == b"=" || last_op == b"!=" {
                out.push_str(if i - start == 2 { "\"\"" } else { "\"s\"" });
            } else if let Some(class) = (last_op == b"=~" || last_op == b"!~")
                .then(|| regex_class(&text[start + 1..i - 1]))
                .flatten()
            {
                out.push_str(class);
            } else {
                out.push_str(&text[start..i]);
            }
            last_op = b"";
        } else if c == b'#' {
            return None;
        } else if c.is_ascii_whitespace() {
            out.push(' ');
            i += 1;
        } else {
            let start = i;
            i += text[i..].chars().next().map_or(1, char::len_utf8);
            if c == b'=' || c == b'!' {
                while i < b.len() && matches!(b[i], b'=' | b'~') {
                    i += 1;
                }
            }
            out.push_str(&text[start..i]);
            last_op = &b[start..i];
        }
    }
    Some(out)
}

/// Stands a word (`x`) for every Grafana variable (`$var`, `${var}`, `${var:fmt}`), as
/// Grafana's interpolation leaves plain text where the variable was.
pub fn interpolate_variables(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let b = text.as_bytes();
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'$' {
            let braces = b.get(i + 1) == Some(&b'{');
            let mut j = i + 1 + usize::from(braces);
            let start = j;
            while b.get(j).is_some_and(|c| c.is_ascii_alphanumeric() || *c == b'_') {
                j += 1;
            }
            if braces && j > start {
                if let Some(close) = text[j..].find('}') {
                    if text[j..j + close].bytes().all(|c| c != b'{' && c != b'"') {
                        out.push('x');
                        i = j + close + 1;
                        continue;
                    }
                }
            }
            if !braces && j > start {
                out.push('x');
                i = j;
                continue;
            }
        }
        let n = text[i..].chars().next().map_or(1, char::len_utf8);
        out.push_str(&text[i..i + n]);
        i += n;
    }
    out
}

/// Checks a regex the way PromQL will compile it (RE2 syntax), after Grafana's interpolation
/// ([`interpolate_variables`]). The syntax is checked with `regex-syntax` (the `regex` crate's
/// parser, without building an automaton); a counted repetition (`{n}`), the one construct
/// whose size can still fail a compile, is compiled in full.
pub fn check_regex(re: &str) -> Result<(), String> {
    let text = anchored(re);
    regex_syntax::Parser::new().parse(&text).map_err(|e| e.to_string())?;
    if text.contains('{') {
        regex::Regex::new(&text).map_err(|e| e.to_string())?;
    }
    Ok(())
}

/// Whether a (valid) regex matches the empty string after Grafana's interpolation: a
/// selector whose only matcher does is rejected by Prometheus.
pub fn regex_matches_empty(re: &str) -> bool {
    regex_syntax::Parser::new()
        .parse(&anchored(re))
        .is_ok_and(|hir| hir.properties().minimum_len() == Some(0))
}

fn anchored(re: &str) -> String {
    let text = if re.contains('$') { interpolate_variables(re) } else { re.to_owned() };
    format!("^(?:{text})$")
}

/// A PromQL string literal: double quotes, with `\` and `"` escaped.
pub fn quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// A duration in PromQL syntax, in the largest unit that divides it (`3600` → `1h`,
/// `300` → `5m`, `0.5` → `500ms`).
pub fn duration(secs: f64) -> String {
    let ms = (secs * 1000.0).round() as u64;
    if ms == 0 {
        return "1ms".to_owned();
    }
    for (unit, len) in
        [("w", 604_800_000), ("d", 86_400_000), ("h", 3_600_000), ("m", 60_000), ("s", 1000)]
    {
        if ms.is_multiple_of(len) {
            return format!("{}{unit}", ms / len);
        }
    }
    format!("{ms}ms")
}

/// A number as PromQL reads it (integers without a fraction, no exponent surprises).
pub fn number(n: f64) -> String {
    if n.is_nan() {
        "NaN".to_owned()
    } else if n.is_infinite() {
        if n > 0.0 { "+Inf" } else { "-Inf" }.to_owned()
    } else if n == n.trunc() && n.abs() < 1e15 {
        format!("{}", n as i64)
    } else {
        format!("{n}")
    }
}

/// Whether `name` is a metric name PromQL accepts bare (`[a-zA-Z_:][a-zA-Z0-9_:]*`).
pub fn is_bare_name(name: &str) -> bool {
    let mut c = name.chars();
    c.next().is_some_and(|f| f.is_ascii_alphabetic() || f == '_' || f == ':')
        && c.all(|x| x.is_ascii_alphanumeric() || x == '_' || x == ':')
}

/// The label matcher operators.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MatchOp {
    /// `=`
    Eq,
    /// `!=`
    Ne,
    /// `=~`
    Re,
    /// `!~`
    NotRe,
}

impl MatchOp {
    /// The operator's text.
    pub fn as_str(self) -> &'static str {
        match self {
            MatchOp::Eq => "=",
            MatchOp::Ne => "!=",
            MatchOp::Re => "=~",
            MatchOp::NotRe => "!~",
        }
    }
}

/// One label matcher, `host=~"web-.*"`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Matcher {
    /// Label name.
    pub label: String,
    /// Operator.
    pub op: MatchOp,
    /// Value or regex (unquoted).
    pub value: String,
}

impl Matcher {
    /// A matcher.
    pub fn new(label: impl Into<String>, op: MatchOp, value: impl Into<String>) -> Matcher {
        Matcher { label: label.into(), op, value: value.into() }
    }
}

/// An instant vector selector: a metric name (exact or regex) and matchers.
pub fn selector(name: &str, name_is_regex: bool, matchers: &[Matcher]) -> String {
    let mut out = String::new();
    let mut inner: Vec<String> = Vec::new();
    if !name_is_regex && is_bare_name(name) {
        out.push_str(name);
    } else {
        let op = if name_is_regex { "=~" } else { "=" };
        inner.push(format!("__name__{op}{}", quote(name)));
    }
    for m in matchers {
        inner.push(format!("{}{}{}", m.label, m.op.as_str(), quote(&m.value)));
    }
    if !inner.is_empty() || out.is_empty() {
        out.push('{');
        out.push_str(&inner.join(", "));
        out.push('}');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grafana_interval_variables_are_accepted_by_the_check() {
        assert!(check("rate(x_total[$__rate_interval])").is_ok());
        assert!(check("sum(x{host=~\"$host\"})").is_ok());
        assert!(check("sum(x").is_err());
    }

    #[test]
    fn regexes_are_checked_with_grafana_variables_as_words() {
        assert!(check_regex("web-${n}|$env").is_ok());
        assert!(check_regex("[.p/").is_err());
        assert!(check_regex("(a").is_err());
        assert!(check("x{a=~\"${3333333333333333}\"}").is_ok());
    }

    #[test]
    fn expressions_of_one_shape_differ_only_in_names_and_label_values() {
        let a = shape(
            "sum by (host) (rate(svc1_requests_total{env=\"prod\", host=~\"web-1.*\"}[5m:1m]))",
        );
        let b =
            shape("sum by (dc) (rate(svc22_requests_total{env=\"dev\", dc=~\"web-1.*\"}[5m:1m]))");
        assert_eq!(a, b);
        assert_eq!(a.as_deref(), Some("sum by (qa) (rate(qb{qc=\"s\", qa=~\".+\"}[5m:1m]))"));
        // what the grammar can see stays: functions, keywords, regexes, emptiness, sameness
        assert_ne!(shape("log2(x)"), shape("log3(x)"));
        assert_ne!(shape("x{a=~\"1\"}"), shape("x{a=~\"(\"}"));
        assert_ne!(shape("{a=~\"x.*\"}"), shape("{a=~\"x?\"}"));
        assert_eq!(shape("{__name__=~\"svc7_.*_total\"}"), shape("{__name__=~\"b|c\"}"));
        assert_ne!(shape("x{a=\"\"}"), shape("x{a=\"v\"}"));
        assert_ne!(shape("x * on(a) group_left(a) y"), shape("x * on(a) group_left(b) y"));
        assert_ne!(shape("x{__name__=\"y\"}"), shape("x{n=\"y\"}"));
        assert_eq!(shape("x # comment"), None);
    }

    /// The cache is sound: for expressions built from parts that exercise every rule of
    /// [`shape`] (keywords as names, repeated names, empty values, regexes, subqueries), the
    /// cached check answers what the parser answers, in any order.
    #[test]
    fn the_shape_cache_answers_what_the_parser_answers() {
        use proptest::prelude::*;
        let ident = prop::sample::select(vec![
            "a",
            "b",
            "x1",
            "x2",
            "by",
            "on",
            "sum",
            "offset",
            "__name__",
            "job:rate",
            "Bool",
            "group_left",
            "_",
        ]);
        let value = prop::sample::select(vec![
            "", "v", "1", "(", ".*", "a|b", "x?", "a{2}", "a{x}", "[a&&b]", "\\\\d", "(?m)^$",
        ]);
        let template = prop::sample::select(vec![
            "{0}",
            "{0}{{{1}=\"{5}\"}}",
            "{0}{{{1}=~\"{5}\"}}",
            "{0}{{{1}!=\"{5}\", {2}=\"{6}\"}}",
            "sum by ({1}, {2}) ({0})",
            "{0} * on({1}) group_left({2}) {3}",
            "rate({0}[5m:1m])",
            "{0} {1} {2}",
            "{0} offset 5m",
            "{0} and {3}",
            "count_values(\"{5}\", {0})",
            "{0}{{{1}=\"{5}\"}} / ignoring({2}) {3}{{{4}!=\"{6}\"}}",
            "histogram_quantile(0.9, {0})",
            "{0}(1)",
            "topk(3, {0}) > bool 1e-3",
        ]);
        let mut runner = proptest::test_runner::TestRunner::new(ProptestConfig {
            failure_persistence: None,
            ..ProptestConfig::with_cases(4000)
        });
        runner
            .run(
                &(template, prop::array::uniform5(ident), prop::array::uniform2(value)),
                |(t, ids, vals)| {
                    let e = t
                        .replace("{0}", ids[0])
                        .replace("{1}", ids[1])
                        .replace("{2}", ids[2])
                        .replace("{3}", ids[3])
                        .replace("{4}", ids[4])
                        .replace("{5}", vals[0])
                        .replace("{6}", vals[1])
                        .replace("{{", "{")
                        .replace("}}", "}");
                    let parsed = promql_parser::parser::parse(&e).is_ok();
                    prop_assert_eq!(check(&e).is_ok(), parsed, "{}", e);
                    Ok(())
                },
            )
            .unwrap();
    }

    #[test]
    fn durations_use_the_largest_whole_unit() {
        assert_eq!(duration(3600.0), "1h");
        assert_eq!(duration(300.0), "5m");
        assert_eq!(duration(50.0), "50s");
        assert_eq!(duration(0.5), "500ms");
        assert_eq!(duration(90.0), "90s");
    }

    #[test]
    fn dotted_names_and_regex_names_use_the_name_label() {
        assert_eq!(selector("a_b", false, &[]), "a_b");
        assert_eq!(selector("a.b", false, &[]), "{__name__=\"a.b\"}");
        assert_eq!(
            selector("a_.*", true, &[Matcher::new("h", MatchOp::Eq, "x\"y")]),
            "{__name__=~\"a_.*\", h=\"x\\\"y\"}"
        );
    }
}
