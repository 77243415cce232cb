//! Scoping: restricting each side of a pair to one service of a fleet.
//!
//! When two services record the same instrument name, an unscoped new-side query returns both
//! and the comparison sees the sum. Catalog pairs therefore restrict the new side by the
//! catalog's service (label [`DEFAULT_SERVICE_LABEL`], or `job`, configurable) and the legacy
//! side by the catalog's global tags (its StatsD prefix already restricts the name); a pair
//! file can add matchers to either side (`legacy_matchers`, `new_matchers`).
//!
//! PromQL queries get the matchers on **every** vector selector (parsed with `promql-parser`);
//! Graphite `seriesByTag(...)` targets get one `'k=v'` expression per matcher.
use std::collections::BTreeMap;

use promql_parser::label::{MatchOp, Matcher};
use promql_parser::parser::{parse, Expr};

/// Default label of the new side that names the service (`service.name` with Prometheus
/// naming).
pub const DEFAULT_SERVICE_LABEL: &str = "service_name";

fn add_matchers(e: &mut Expr, m: &BTreeMap<String, String>) {
    match e {
        Expr::VectorSelector(vs) => {
            vs.matchers.matchers.retain(|x| !m.contains_key(&x.name));
            for (k, v) in m {
                vs.matchers.matchers.push(Matcher::new(MatchOp::Equal, k, v));
            }
        }
        Expr::MatrixSelector(ms) => {
            let mut inner = Expr::VectorSelector(ms.vs.clone());
            add_matchers(&mut inner, m);
            if let Expr::VectorSelector(vs) = inner {
                ms.vs = vs;
            }
        }
        Expr::Aggregate(a) => {
            add_matchers(&mut a.expr, m);
            if let Some(p) = a.param.as_mut() {
                add_matchers(p, m);
            }
        }
        Expr::Unary(u) => add_matchers(&mut u.expr, m),
        Expr::Binary(b) => {
            add_matchers(&mut b.lhs, m);
            add_matchers(&mut b.rhs, m);
        }
        Expr::Paren(p) => add_matchers(&mut p.expr, m),
        Expr::Subquery(s) => add_matchers(&mut s.expr, m),
        Expr::Call(c) => {
            for a in &mut c.args.args {
                add_matchers(a, m);
            }
        }
        Expr::NumberLiteral(_) | Expr::StringLiteral(_) | Expr::Extension(_) => {}
    }
}

/// `query` with `matchers` (label = value) on every vector selector. Queries with `$step` or
/// `$window` are parsed with them replaced by a placeholder duration and restored after.
///
/// # Errors
/// When the query is not PromQL (the parser's message).
pub fn promql_with(query: &str, matchers: &BTreeMap<String, String>) -> Result<String, String> {
    if matchers.is_empty() {
        return Ok(query.to_owned());
    }
    // Placeholders are not PromQL: stand-in durations that no real query uses.
    let text = query.replace("$window", "7777777s").replace("$step", "8888888s");
    let mut expr = parse(&text)?;
    add_matchers(&mut expr, matchers);
    // The parser prints durations in its own units: find how it prints the stand-ins.
    let shown = |d: &str| -> String {
        parse(&format!("x[{d}]"))
            .map(|e| e.to_string())
            .ok()
            .and_then(|s| Some(s.split_once('[')?.1.trim_end_matches(']').to_owned()))
            .unwrap_or_else(|| d.to_owned())
    };
    Ok(expr
        .to_string()
        .replace(&format!("[{}]", shown("7777777s")), "[$window]")
        .replace(&format!("[{}]", shown("8888888s")), "[$step]"))
}

/// A Graphite target with `matchers` as `seriesByTag` expressions.
///
/// # Errors
/// When the target is not a `seriesByTag(...)` call (plain paths have no tags to match).
pub fn graphite_with(target: &str, matchers: &BTreeMap<String, String>) -> Result<String, String> {
    if matchers.is_empty() {
        return Ok(target.to_owned());
    }
    let t = target.trim();
    let Some(inner) = t.strip_prefix("seriesByTag(").and_then(|r| r.strip_suffix(')')) else {
        return Err(format!("matchers need a seriesByTag(...) target, not {t:?}"));
    };
    let extra: Vec<String> = matchers.iter().map(|(k, v)| format!("'{k}={v}'")).collect();
    Ok(format!("seriesByTag({inner},{})", extra.join(",")))
}

/// Whether a legacy query is Graphite (a `seriesByTag` call or a dotted path) rather than
/// PromQL.
pub fn is_graphite(q: &str) -> bool {
    let q = q.trim();
    q.starts_with("seriesByTag(") || (!q.contains('(') && !q.contains('{') && q.contains('.'))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(kv: &[(&str, &str)]) -> BTreeMap<String, String> {
        kv.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect()
    }

    #[test]
    fn every_selector_gets_the_matchers() {
        let q = "histogram_quantile(0.9, sum by (le) (increase(x_bucket[$window]))) / on() y";
        let out = promql_with(q, &m(&[("service_name", "checkout")])).unwrap();
        assert!(out.contains(r#"x_bucket{service_name="checkout"}[$window]"#), "{out}");
        assert!(out.contains(r#"y{service_name="checkout"}"#), "{out}");
    }

    #[test]
    fn an_existing_matcher_on_the_same_label_is_replaced() {
        let out =
            promql_with(r#"x{service_name="a",code="200"}"#, &m(&[("service_name", "b")])).unwrap();
        assert!(out.contains(r#"service_name="b""#) && !out.contains(r#""a""#), "{out}");
        assert!(out.contains(r#"code="200""#), "{out}");
    }

    #[test]
    fn graphite_targets_get_tag_expressions() {
        let out = graphite_with("seriesByTag('name=a.b')", &m(&[("service", "checkout")]));
        assert_eq!(out.unwrap(), "seriesByTag('name=a.b','service=checkout')");
        assert!(graphite_with("a.b.c", &m(&[("k", "v")])).is_err());
        assert!(is_graphite("stats.counters.a.count") && !is_graphite("sum(x)"));
    }
}
