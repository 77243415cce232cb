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

/// Parses `expr` as PromQL (after replacing Grafana's interval variables). `Err` carries the
/// parser's message.
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
    promql_parser::parser::parse(&text).map(|_| ())
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
