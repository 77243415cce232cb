//! The PromQL subset `dualmetrics compare` generates, parsed and evaluated over an in-memory
//! store. Anything outside the subset is an error that names what is supported.
//!
//! ```text
//! expr     = term *("/" term)                   ; one-to-one on identical label sets
//! term     = "sum" [by] "(" expr ")" [by]
//!          | "increase" "(" selector "[" duration "]" ")"
//!          | "histogram_quantile" "(" number "," expr ")"
//!          | "(" expr ")" | selector
//! by       = "by" "(" [label *("," label)] ")"
//! selector = name ["{" matchers "}"] | "{" matchers "}"     ; matchers: label ("=" | "!=") "string"
//! ```
//!
//! Semantics follow VictoriaMetrics where Prometheus and it differ: a selector takes the last
//! sample within a 5-minute lookback; `increase()` is not extrapolated and counts a series
//! that starts inside the window from 0; a drop is a counter reset. Results that are not finite
//! (`0/0`, a quantile over empty buckets) are left out, like a missing point.
use std::collections::BTreeMap;

/// Lookback of an instant selector, milliseconds (Prometheus' and VictoriaMetrics' default).
pub const LOOKBACK_MS: i64 = 300_000;

/// Labels of a series, `__name__` included.
pub type Labels = BTreeMap<String, String>;

/// Read access to stored samples: `(unix ms, value)` in time order per series.
pub trait SampleSource {
    /// Every series whose labels satisfy `matchers`, with its samples.
    fn select(&self, matchers: &[Matcher]) -> Vec<(Labels, Vec<(i64, f64)>)>;
}

/// `label = "value"` or `label != "value"`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Matcher {
    /// Label name (`__name__` for the metric name).
    pub label: String,
    /// `true` for `=`, `false` for `!=`.
    pub equal: bool,
    /// The value.
    pub value: String,
}

impl Matcher {
    /// Whether `labels` satisfy it (a missing label is the empty string).
    pub fn matches(&self, labels: &Labels) -> bool {
        let v = labels.get(&self.label).map_or("", String::as_str);
        (v == self.value) == self.equal
    }
}

/// A parsed expression.
#[derive(Debug, Clone, PartialEq)]
pub enum Expr {
    /// An instant vector selector.
    Select(Vec<Matcher>),
    /// `increase(selector[window])`, window in milliseconds.
    Increase(Vec<Matcher>, i64),
    /// `sum by (labels) (expr)`.
    Sum(Vec<String>, Box<Expr>),
    /// `histogram_quantile(q, expr)`.
    Quantile(f64, Box<Expr>),
    /// `a / b`.
    Div(Box<Expr>, Box<Expr>),
}

#[derive(Debug, Clone, PartialEq)]
enum Tok {
    Ident(String),
    Num(f64),
    Str(String),
    Dur(i64),
    Punct(&'static str),
}

const SUPPORTED: &str = "the demo store evaluates selectors with = and !=, sum [by (...)], \
                         increase(x[d]), histogram_quantile(q, ...) and /";

fn tokenize(q: &str) -> Result<Vec<Tok>, String> {
    let b = q.as_bytes();
    let mut i = 0;
    let mut out = Vec::new();
    let mut in_brackets = false;
    while i < b.len() {
        let c = b[i] as char;
        if c.is_whitespace() {
            i += 1;
            continue;
        }
        if in_brackets && c != ']' {
            let start = i;
            while i < b.len() && b[i] != b']' {
                i += 1;
            }
            out.push(Tok::Dur(parse_duration_ms(q[start..i].trim())?));
            continue;
        }
        match c {
            '(' | ')' | '{' | '}' | ',' | '/' | '[' | ']' => {
                out.push(Tok::Punct(match c {
                    '(' => "(",
                    ')' => ")",
                    '{' => "{",
                    '}' => "}",
                    ',' => ",",
                    '/' => "/",
                    '[' => "[",
                    _ => "]",
                }));
                in_brackets = c == '[';
                i += 1;
            }
            '=' => {
                if b.get(i + 1) == Some(&b'~') {
                    return Err(format!(
                        "regular expression matchers (=~) are not supported; {SUPPORTED}"
                    ));
                }
                out.push(Tok::Punct("="));
                i += 1;
            }
            '!' if b.get(i + 1) == Some(&b'=') => {
                out.push(Tok::Punct("!="));
                i += 2;
            }
            '"' | '\'' => {
                let quote = b[i];
                i += 1;
                let mut s = String::new();
                loop {
                    let Some(&ch) = b.get(i) else { return Err("unterminated string".into()) };
                    i += 1;
                    if ch == quote {
                        break;
                    }
                    if ch == b'\\' {
                        let Some(&esc) = b.get(i) else { return Err("unterminated string".into()) };
                        i += 1;
                        s.push(esc as char);
                    } else {
                        // multi-byte UTF-8: copy the whole character
                        let start = i - 1;
                        let len = q[start..].chars().next().map_or(1, char::len_utf8);
                        s.push_str(&q[start..start + len]);
                        i = start + len;
                    }
                }
                out.push(Tok::Str(s));
            }
            c if c.is_ascii_digit() || c == '.' => {
                let start = i;
                while i < b.len() && (b[i].is_ascii_digit() || matches!(b[i], b'.' | b'e' | b'E')) {
                    i += 1;
                }
                let n =
                    q[start..i].parse().map_err(|_| format!("bad number {:?}", &q[start..i]))?;
                out.push(Tok::Num(n));
            }
            c if c.is_ascii_alphabetic() || c == '_' || c == ':' => {
                let start = i;
                while i < b.len() && (b[i].is_ascii_alphanumeric() || matches!(b[i], b'_' | b':')) {
                    i += 1;
                }
                out.push(Tok::Ident(q[start..i].to_owned()));
            }
            other => return Err(format!("unexpected {other:?}; {SUPPORTED}")),
        }
    }
    Ok(out)
}

/// `60s`, `1m`, `5m30s`, `500ms`, `1h` in milliseconds.
fn parse_duration_ms(s: &str) -> Result<i64, String> {
    let mut total = 0i64;
    let mut rest = s;
    if rest.is_empty() {
        return Err("empty range duration".into());
    }
    while !rest.is_empty() {
        let digits = rest.find(|c: char| !c.is_ascii_digit()).unwrap_or(rest.len());
        let n: i64 = rest[..digits].parse().map_err(|_| format!("bad duration {s:?}"))?;
        rest = &rest[digits..];
        let unit_len = rest.find(|c: char| c.is_ascii_digit()).unwrap_or(rest.len());
        let mult = match &rest[..unit_len] {
            "ms" => 1,
            "s" => 1_000,
            "m" => 60_000,
            "h" => 3_600_000,
            "d" => 86_400_000,
            u => return Err(format!("bad duration unit {u:?} in {s:?}")),
        };
        total += n * mult;
        rest = &rest[unit_len..];
    }
    Ok(total)
}

struct P {
    toks: Vec<Tok>,
    pos: usize,
}

impl P {
    fn peek(&self) -> Option<&Tok> {
        self.toks.get(self.pos)
    }
    fn next(&mut self) -> Option<Tok> {
        let t = self.toks.get(self.pos).cloned();
        self.pos += 1;
        t
    }
    fn eat(&mut self, p: &str) -> bool {
        if matches!(self.peek(), Some(Tok::Punct(x)) if *x == p) {
            self.pos += 1;
            true
        } else {
            false
        }
    }
    fn expect(&mut self, p: &str) -> Result<(), String> {
        if self.eat(p) {
            Ok(())
        } else {
            Err(format!("expected {p:?}, found {:?}", self.peek()))
        }
    }

    fn expr(&mut self) -> Result<Expr, String> {
        let mut left = self.term()?;
        while self.eat("/") {
            let right = self.term()?;
            left = Expr::Div(Box::new(left), Box::new(right));
        }
        Ok(left)
    }

    fn by(&mut self) -> Result<Option<Vec<String>>, String> {
        if !matches!(self.peek(), Some(Tok::Ident(k)) if k == "by") {
            return Ok(None);
        }
        self.pos += 1;
        self.expect("(")?;
        let mut labels = Vec::new();
        while !self.eat(")") {
            match self.next() {
                Some(Tok::Ident(l)) => labels.push(l),
                other => return Err(format!("expected a label in by (...), found {other:?}")),
            }
            self.eat(",");
        }
        Ok(Some(labels))
    }

    fn term(&mut self) -> Result<Expr, String> {
        if self.eat("(") {
            let e = self.expr()?;
            self.expect(")")?;
            return Ok(e);
        }
        if self.eat("{") {
            return Ok(Expr::Select(self.matchers(Vec::new())?));
        }
        let name = match self.next() {
            Some(Tok::Ident(n)) => n,
            other => return Err(format!("unexpected {other:?}; {SUPPORTED}")),
        };
        let is_call = matches!(self.peek(), Some(Tok::Punct("(")))
            || (name == "sum" && matches!(self.peek(), Some(Tok::Ident(k)) if k == "by"));
        if !is_call {
            let first = vec![Matcher { label: "__name__".into(), equal: true, value: name }];
            if self.eat("{") {
                return Ok(Expr::Select(self.matchers(first)?));
            }
            return Ok(Expr::Select(first));
        }
        match name.as_str() {
            "sum" => {
                let before = self.by()?;
                self.expect("(")?;
                let inner = self.expr()?;
                self.expect(")")?;
                let after = self.by()?;
                Ok(Expr::Sum(before.or(after).unwrap_or_default(), Box::new(inner)))
            }
            "increase" => {
                self.expect("(")?;
                let sel = match self.term()? {
                    Expr::Select(m) => m,
                    _ => return Err("increase() takes a selector with a range".into()),
                };
                self.expect("[")?;
                let window = match self.next() {
                    Some(Tok::Dur(ms)) if ms > 0 => ms,
                    other => return Err(format!("expected a range duration, found {other:?}")),
                };
                self.expect("]")?;
                self.expect(")")?;
                Ok(Expr::Increase(sel, window))
            }
            "histogram_quantile" => {
                self.expect("(")?;
                let q = match self.next() {
                    Some(Tok::Num(q)) => q,
                    other => return Err(format!("expected the quantile, found {other:?}")),
                };
                self.expect(",")?;
                let inner = self.expr()?;
                self.expect(")")?;
                Ok(Expr::Quantile(q, Box::new(inner)))
            }
            other => Err(format!("function {other}() is not supported; {SUPPORTED}")),
        }
    }

    fn matchers(&mut self, mut out: Vec<Matcher>) -> Result<Vec<Matcher>, String> {
        while !self.eat("}") {
            let label = match self.next() {
                Some(Tok::Ident(l)) => l,
                other => return Err(format!("expected a label name, found {other:?}")),
            };
            let equal = if self.eat("=") {
                true
            } else if self.eat("!=") {
                false
            } else {
                return Err(format!("expected = or != after {label}; {SUPPORTED}"));
            };
            let value = match self.next() {
                Some(Tok::Str(v)) => v,
                other => return Err(format!("expected a quoted value, found {other:?}")),
            };
            out.push(Matcher { label, equal, value });
            self.eat(",");
        }
        Ok(out)
    }
}

/// Parses `query`.
///
/// # Errors
/// The query is outside the subset (the message names what is supported) or malformed.
pub fn parse(query: &str) -> Result<Expr, String> {
    let mut p = P { toks: tokenize(query)?, pos: 0 };
    let e = p.expr()?;
    if p.pos < p.toks.len() {
        return Err(format!("unexpected {:?} after the expression; {SUPPORTED}", p.toks[p.pos]));
    }
    Ok(e)
}

fn last_at(points: &[(i64, f64)], t_ms: i64) -> Option<f64> {
    points.iter().rev().find(|(ts, _)| *ts <= t_ms && *ts > t_ms - LOOKBACK_MS).map(|p| p.1)
}

/// `increase()` over `(t - window, t]`, VictoriaMetrics-style (see the module docs).
fn increase(points: &[(i64, f64)], t_ms: i64, window_ms: i64) -> Option<f64> {
    let from = t_ms - window_ms;
    let inside: Vec<f64> =
        points.iter().filter(|(ts, _)| *ts > from && *ts <= t_ms).map(|p| p.1).collect();
    if inside.is_empty() {
        return None;
    }
    let mut prev = points.iter().rev().find(|(ts, _)| *ts <= from).map_or(0.0, |p| p.1);
    let mut total = 0.0;
    for v in inside {
        total += if v >= prev { v - prev } else { v };
        prev = v;
    }
    Some(total)
}

fn without_name(mut l: Labels) -> Labels {
    l.remove("__name__");
    l
}

/// Evaluates `expr` at `t_ms`.
pub fn eval(expr: &Expr, src: &dyn SampleSource, t_ms: i64) -> Vec<(Labels, f64)> {
    match expr {
        Expr::Select(m) => src
            .select(m)
            .into_iter()
            .filter_map(|(l, pts)| last_at(&pts, t_ms).map(|v| (l, v)))
            .collect(),
        Expr::Increase(m, w) => src
            .select(m)
            .into_iter()
            .filter_map(|(l, pts)| increase(&pts, t_ms, *w).map(|v| (without_name(l), v)))
            .collect(),
        Expr::Sum(by, inner) => {
            let mut groups: BTreeMap<Labels, f64> = BTreeMap::new();
            for (l, v) in eval(inner, src, t_ms) {
                let key: Labels =
                    by.iter().filter_map(|k| l.get(k).map(|v| (k.clone(), v.clone()))).collect();
                *groups.entry(key).or_insert(0.0) += v;
            }
            groups.into_iter().collect()
        }
        Expr::Quantile(q, inner) => {
            let mut groups: BTreeMap<Labels, Vec<(f64, f64)>> = BTreeMap::new();
            for (mut l, v) in eval(inner, src, t_ms) {
                let Some(le) = l.remove("le") else { continue };
                let bound =
                    if le == "+Inf" { f64::INFINITY } else { le.parse().unwrap_or(f64::NAN) };
                if !bound.is_nan() {
                    groups.entry(without_name(l)).or_default().push((bound, v));
                }
            }
            groups
                .into_iter()
                .filter_map(|(l, mut b)| {
                    b.sort_by(|x, y| x.0.total_cmp(&y.0));
                    let v = bucket_quantile(*q, &b);
                    v.is_finite().then_some((l, v))
                })
                .collect()
        }
        Expr::Div(a, b) => {
            let right: BTreeMap<Labels, f64> =
                eval(b, src, t_ms).into_iter().map(|(l, v)| (without_name(l), v)).collect();
            eval(a, src, t_ms)
                .into_iter()
                .filter_map(|(l, v)| {
                    let l = without_name(l);
                    let r = right.get(&l)?;
                    let x = v / r;
                    x.is_finite().then_some((l, x))
                })
                .collect()
        }
    }
}

/// Prometheus' `bucketQuantile` over `(upper bound, cumulative count)` sorted by bound.
pub fn bucket_quantile(q: f64, buckets: &[(f64, f64)]) -> f64 {
    if q.is_nan() {
        return f64::NAN;
    }
    if q < 0.0 {
        return f64::NEG_INFINITY;
    }
    if q > 1.0 {
        return f64::INFINITY;
    }
    if buckets.len() < 2 || buckets.last().is_none_or(|b| b.0 != f64::INFINITY) {
        return f64::NAN;
    }
    let total = buckets[buckets.len() - 1].1;
    if total <= 0.0 {
        return f64::NAN;
    }
    let rank = q * total;
    let b = buckets.iter().position(|x| x.1 >= rank).unwrap_or(buckets.len() - 1);
    if b == buckets.len() - 1 {
        return buckets[buckets.len() - 2].0;
    }
    if b == 0 && buckets[0].0 <= 0.0 {
        return buckets[0].0;
    }
    let (start, below) = if b == 0 { (0.0, 0.0) } else { (buckets[b - 1].0, buckets[b - 1].1) };
    let end = buckets[b].0;
    let count = buckets[b].1 - below;
    if count <= 0.0 {
        return end;
    }
    start + (end - start) * ((rank - below) / count)
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Mem(Vec<(Labels, Vec<(i64, f64)>)>);
    impl SampleSource for Mem {
        fn select(&self, m: &[Matcher]) -> Vec<(Labels, Vec<(i64, f64)>)> {
            self.0.iter().filter(|(l, _)| m.iter().all(|x| x.matches(l))).cloned().collect()
        }
    }
    fn labels(kv: &[(&str, &str)]) -> Labels {
        kv.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect()
    }

    #[test]
    fn generated_queries_parse() {
        for q in [
            "http_requests_total",
            "{__name__=\"http.requests\"}",
            "sum by (route) (queue_depth)",
            "sum (queue_depth)",
            "sum by (route) (increase(x_sum[60s])) / sum by (route) (increase(x_count[60s]))",
            "histogram_quantile(0.9, sum by (le, route) (increase(x_bucket[1m])))",
        ] {
            parse(q).unwrap_or_else(|e| panic!("{q}: {e}"));
        }
    }

    #[test]
    fn unsupported_queries_are_refused_by_name() {
        assert!(parse("rate(x[1m])").unwrap_err().contains("rate() is not supported"));
        assert!(parse("x{a=~\"b\"}").unwrap_err().contains("=~"));
        assert!(parse("x + y").is_err());
    }

    #[test]
    fn increase_counts_a_new_series_from_zero_and_survives_resets() {
        let pts = [(1_000, 5.0), (2_000, 8.0), (3_000, 2.0)];
        assert_eq!(increase(&pts, 3_000, 10_000), Some(10.0));
        assert_eq!(increase(&pts, 3_000, 1_500), Some(5.0), "8 - 5, then a reset to 2");
        assert_eq!(increase(&pts, 3_000, 500), Some(2.0), "a reset counts the new value");
        assert_eq!(increase(&pts, 10_000, 1_000), None);
    }

    #[test]
    fn sum_by_and_division_match_label_sets() {
        let src = Mem(vec![
            (labels(&[("__name__", "s"), ("route", "a"), ("pod", "1")]), vec![(0, 6.0)]),
            (labels(&[("__name__", "s"), ("route", "a"), ("pod", "2")]), vec![(0, 4.0)]),
            (labels(&[("__name__", "c"), ("route", "a")]), vec![(0, 5.0)]),
        ]);
        let e = parse("sum by (route) (s) / sum by (route) (c)").unwrap();
        assert_eq!(eval(&e, &src, 0), vec![(labels(&[("route", "a")]), 2.0)]);
    }

    #[test]
    fn quantile_interpolates_within_the_bucket() {
        let b = [(100.0, 10.0), (200.0, 20.0), (f64::INFINITY, 20.0)];
        assert_eq!(bucket_quantile(0.75, &b), 150.0);
        assert_eq!(bucket_quantile(1.0, &b), 200.0);
    }
}
