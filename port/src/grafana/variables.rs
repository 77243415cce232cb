//! Template variables: Graphite query variables become Prometheus `label_values(…)`.
//!
//! | Graphite variable                                  | Prometheus variable                                  |
//! |----------------------------------------------------|------------------------------------------------------|
//! | `tag_values(service)`                              | `label_values(service)`                              |
//! | `tag_values(host, 'name=stats.gauges.q', 'env=$env')` | `label_values(q{env="$env"}, host)`               |
//! | `stats.counters.checkout.*` (path query)            | `label_values({__name__=~"checkout_requests.*"}, env)` through the mapping rule whose `*` there is a label |
//! | `tags(…)`                                           | `label_names()`                                      |
//! | datasource variable `graphite`                      | datasource variable `prometheus`                     |
//! | custom, interval, constant, textbox                 | unchanged                                            |
//!
//! A path query names a *node* of the dotted key; on the new side that node is a label only
//! through a mapping rule (`checkout.*.requests` → `env: "$1"`). Without one, the variable is
//! kept and reported "not converted", never guessed.
use super::datasource::{DatasourceEnv, DsKind, PROMETHEUS_PLUGIN};
use crate::graphite::{self, Expr};
use crate::translate::{translate, Context};
use dualmetrics_model::mapping::{GlobComponent, MappingFile, MatchType};
use serde::Serialize;
use serde_json::Value;

/// What happened to one template variable.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct VariableReport {
    /// The variable's name.
    pub name: String,
    /// Its type (`query`, `custom`, …).
    pub kind: String,
    /// The Graphite query, for query variables.
    pub from: Option<String>,
    /// The Prometheus query it became.
    pub to: Option<String>,
    /// `converted`, `unchanged` or `not converted`.
    pub outcome: String,
    /// Why it was not converted.
    pub why: Option<String>,
    /// Whether it takes several values or "All" (its `=` matchers become `=~`).
    pub multi: bool,
}

/// The dashboard's `templating.list`.
pub fn list(dash: &Value) -> Vec<&Value> {
    dash.pointer("/templating/list").and_then(Value::as_array).into_iter().flatten().collect()
}

/// Ports every variable of `dash` in place; returns one report per variable.
pub fn port(
    dash: &mut Value,
    env: &DatasourceEnv,
    new_ds: &Value,
    ctx: &Context,
    mapping: Option<&MappingFile>,
) -> Vec<VariableReport> {
    let Some(vars) = dash.pointer_mut("/templating/list").and_then(Value::as_array_mut) else {
        return Vec::new();
    };
    vars.iter_mut().map(|v| port_one(v, env, new_ds, ctx, mapping)).collect()
}

fn query_text(v: &Value) -> Option<String> {
    match v.get("query") {
        Some(Value::String(s)) => Some(s.clone()),
        Some(Value::Object(o)) => o.get("query").and_then(Value::as_str).map(str::to_owned),
        _ => None,
    }
}

fn port_one(
    v: &mut Value,
    env: &DatasourceEnv,
    new_ds: &Value,
    ctx: &Context,
    mapping: Option<&MappingFile>,
) -> VariableReport {
    let name = v.get("name").and_then(Value::as_str).unwrap_or_default().to_owned();
    let kind = v.get("type").and_then(Value::as_str).unwrap_or("query").to_owned();
    let multi = v.get("multi").and_then(Value::as_bool).unwrap_or(false)
        || v.get("includeAll").and_then(Value::as_bool).unwrap_or(false);
    let mut rep = VariableReport {
        name,
        kind: kind.clone(),
        from: None,
        to: None,
        outcome: "unchanged".into(),
        why: None,
        multi,
    };
    match kind.as_str() {
        "datasource"
            if v.get("query").and_then(Value::as_str)
                == Some(super::datasource::GRAPHITE_PLUGIN) =>
        {
            {
                v["query"] = Value::String(PROMETHEUS_PLUGIN.into());
                rep.from = Some("graphite".into());
                rep.to = Some(PROMETHEUS_PLUGIN.into());
                rep.outcome = "converted".into();
                // the current selection named a Graphite datasource
                if let Some(o) = v.as_object_mut() {
                    o.remove("current");
                    o.remove("options");
                }
            }
        }
        "query"
            if env.kind(v.get("datasource")) == DsKind::Graphite
                || (env.kind(v.get("datasource")) == DsKind::Unknown
                    && query_text(v).is_some_and(|q| looks_graphite(&q))) =>
        {
            {
                let q = query_text(v).unwrap_or_default();
                rep.from = Some(q.clone());
                match convert_query(&q, ctx, mapping) {
                    Ok(promql) => {
                        v["query"] = Value::String(promql.clone());
                        v["definition"] = Value::String(promql.clone());
                        v["datasource"] = new_ds.clone();
                        if let Some(o) = v.as_object_mut() {
                            o.remove("options"); // Grafana refreshes them from the new source
                        }
                        rep.to = Some(promql);
                        rep.outcome = "converted".into();
                    }
                    Err(why) => {
                        rep.outcome = "not converted".into();
                        rep.why = Some(why);
                    }
                }
            }
        }
        _ => {}
    }
    rep
}

fn looks_graphite(q: &str) -> bool {
    q.starts_with("tag_values(")
        || q.starts_with("tags(")
        || q.contains('.') && !q.contains("label_values")
}

/// Converts one Graphite variable query to a Prometheus variable query.
///
/// # Errors
/// Why it cannot be converted (a path node no mapping rule makes a label, an unreadable query).
pub fn convert_query(
    q: &str,
    ctx: &Context,
    mapping: Option<&MappingFile>,
) -> Result<String, String> {
    let q = q.trim();
    if q.starts_with("tag_values(") || q.starts_with("tags(") {
        return convert_tag_query(q, ctx);
    }
    convert_path_query(q, ctx, mapping)
}

fn convert_tag_query(q: &str, ctx: &Context) -> Result<String, String> {
    let expr = graphite::parse(q).map_err(|e| format!("cannot read `{q}`: {e}"))?;
    let Expr::Call(call) = &expr else { return Err(format!("`{q}` is not a function call")) };
    let strings: Vec<String> = call
        .args
        .iter()
        .filter_map(|a| match &a.value {
            Expr::Str(s, _) => Some(s.clone()),
            Expr::Path(p) => Some(p.raw.clone()),
            _ => None,
        })
        .collect();
    let (label, exprs) = if call.name == "tags" {
        (None, &strings[..])
    } else {
        let Some((l, rest)) = strings.split_first() else {
            return Err("tag_values() without a tag".into());
        };
        (Some(l.clone()), rest)
    };
    let mut metric = None;
    let mut matchers = Vec::new();
    for e in exprs {
        let (k, op, v) =
            split_tag_expr(e).ok_or_else(|| format!("cannot read tag expression `{e}`"))?;
        if k == "name" && op == "=" {
            let t = translate(&format!("seriesByTag('name={v}')"), ctx)
                .map_err(|e| format!("the name `{v}`: {e}"))?;
            let Some(promql) = t.promql else {
                return Err(format!("the name `{v}` is untranslatable"));
            };
            metric = first_metric(&promql);
        } else if k != "name" {
            matchers.push(format!("{k}{op}\"{}\"", v.replace('"', "\\\"")));
        }
    }
    let selector = match (&metric, matchers.is_empty()) {
        (Some(m), true) => Some(m.clone()),
        (Some(m), false) => Some(format!("{m}{{{}}}", matchers.join(", "))),
        (None, true) => None,
        (None, false) => Some(format!("{{{}}}", matchers.join(", "))),
    };
    Ok(match (label, selector) {
        (None, None) => "label_names()".into(),
        (None, Some(s)) => format!("label_names({s})"),
        (Some(l), None) => format!("label_values({l})"),
        (Some(l), Some(s)) => format!("label_values({s}, {l})"),
    })
}

fn split_tag_expr(e: &str) -> Option<(String, &'static str, String)> {
    for op in ["!=~", "=~", "!=", "="] {
        if let Some(i) = e.find(op) {
            return Some((e[..i].trim().to_owned(), op, e[i + op.len()..].trim().to_owned()));
        }
    }
    None
}

/// The first metric name selected in a PromQL text (`rate(x_total{…}[…])` → `x_total`),
/// read from the `promql-parser` tree.
pub fn first_metric(promql: &str) -> Option<String> {
    use promql_parser::parser::Expr as P;
    fn walk(e: &P) -> Option<String> {
        match e {
            P::VectorSelector(v) => v.name.clone(),
            P::MatrixSelector(m) => m.vs.name.clone(),
            P::Aggregate(a) => walk(&a.expr),
            P::Unary(u) => walk(&u.expr),
            P::Binary(b) => walk(&b.lhs).or_else(|| walk(&b.rhs)),
            P::Paren(p) => walk(&p.expr),
            P::Subquery(s) => walk(&s.expr),
            P::Call(c) => c.args.args.iter().find_map(|a| walk(a)),
            _ => None,
        }
    }
    let mut text = promql.to_owned();
    for v in crate::promql::GRAFANA_DURATION_VARIABLES {
        text = text.replace(v, crate::promql::CHECK_DURATION);
    }
    walk(&promql_parser::parser::parse(&text).ok()?)
}

const NAMESPACES: [&str; 5] = ["counters.", "gauges.", "timers.", "sets.", ""];

fn convert_path_query(
    q: &str,
    ctx: &Context,
    mapping: Option<&MappingFile>,
) -> Result<String, String> {
    let prefix = format!("{}.", ctx.graphite.global_prefix);
    let rest = q.strip_prefix(&prefix).or_else(|| q.strip_prefix("stats_counts.")).unwrap_or(q);
    let key = NAMESPACES.iter().find_map(|ns| rest.strip_prefix(ns)).unwrap_or(rest);
    let comps: Vec<&str> = key.split('.').collect();
    let last = comps.len() - 1;
    if !is_wild(comps[last]) {
        return Err(format!("`{q}` does not end in a wildcard node"));
    }
    let Some(mapping) = mapping else {
        return Err(format!(
            "`{q}` lists a node of the dotted key; without a mapping file (--mapping) no label holds it"
        ));
    };
    for rule in mapping.rules() {
        if rule.match_type != MatchType::Glob {
            continue;
        }
        let Some(glob) = rule.glob_components() else { continue };
        if glob.len() < comps.len() {
            continue;
        }
        let fits = comps.iter().zip(glob).all(|(c, g)| match g {
            GlobComponent::Literal(l) => l == c,
            GlobComponent::Capture(_) => true,
        });
        if !fits {
            continue;
        }
        let label_of = |n: usize| {
            rule.label_templates()
                .iter()
                .find(|(_, t)| t.as_single_capture() == Some(n))
                .map(|(l, _)| l.clone())
        };
        let GlobComponent::Capture(n) = &glob[last] else { continue };
        let Some(label) = label_of(*n) else { continue };
        let Some(name) = rule.name_template().as_literal() else { continue };
        let mut matchers = vec![format!("__name__=~\"{name}(_.*)?\"")];
        for (c, g) in comps[..last].iter().zip(glob) {
            if let (GlobComponent::Capture(k), true) = (g, c.starts_with('$')) {
                if let Some(l) = label_of(*k) {
                    matchers.push(format!("{l}=~\"{c}\""));
                }
            } else if let (GlobComponent::Capture(k), false) = (g, is_wild(c)) {
                if let Some(l) = label_of(*k) {
                    matchers.push(format!("{l}=\"{c}\""));
                }
            }
        }
        return Ok(format!("label_values({{{}}}, {label})", matchers.join(", ")));
    }
    Err(format!("no mapping rule of {} makes the last node of `{q}` a label", mapping.source()))
}

fn is_wild(c: &str) -> bool {
    c.contains(['*', '?', '[', '{'])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tag_queries_become_label_values() {
        let ctx = Context::default();
        assert_eq!(
            convert_query("tag_values(service)", &ctx, None).unwrap(),
            "label_values(service)"
        );
        assert_eq!(
            convert_query("tag_values(host, 'name=stats.gauges.q', 'env=$env')", &ctx, None)
                .unwrap(),
            "label_values(q{env=\"$env\"}, host)"
        );
        assert_eq!(convert_query("tags()", &ctx, None).unwrap(), "label_names()");
    }

    #[test]
    fn path_queries_need_a_mapping_rule_that_makes_the_node_a_label() {
        let ctx = Context::default();
        let e = convert_query("stats.counters.checkout.*", &ctx, None).unwrap_err();
        assert!(e.contains("without a mapping file"), "{e}");
        let m = MappingFile::parse(
            "mappings:\n- match: checkout.*.*.requests\n  name: checkout_requests\n  labels:\n    env: $1\n    host: $2\n",
            "m.yml",
        )
        .unwrap();
        assert_eq!(
            convert_query("stats.counters.checkout.*", &ctx, Some(&m)).unwrap(),
            "label_values({__name__=~\"checkout_requests(_.*)?\"}, env)"
        );
        assert_eq!(
            convert_query("stats.counters.checkout.$env.*", &ctx, Some(&m)).unwrap(),
            "label_values({__name__=~\"checkout_requests(_.*)?\", env=~\"$env\"}, host)"
        );
        let e = convert_query("stats.counters.other.*", &ctx, Some(&m)).unwrap_err();
        assert!(e.contains("no mapping rule"), "{e}");
    }

    #[test]
    fn first_metric_skips_functions_and_keywords() {
        assert_eq!(
            first_metric("sum by (host) (rate(x_total{a=\"b\"}[5m]) * 10)").as_deref(),
            Some("x_total")
        );
        assert_eq!(first_metric("q").as_deref(), Some("q"));
    }
}
