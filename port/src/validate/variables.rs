//! Template variables on both sides of a validation.
//!
//! A variable with a value (`--var env=prod`) is that value on both sides. A variable without
//! one means "all": `*` in a Graphite path node, `=~.*` in a `seriesByTag` expression (a `=`
//! there is exact, so `'env=$env'` becomes `'env=~.*'`), and `.*` in a PromQL matcher (whose
//! `=` becomes `=~`).
use regex::Regex;
use std::collections::BTreeMap;
use std::sync::OnceLock;

fn var_re() -> &'static Regex {
    static RE: OnceLock<Regex> = OnceLock::new();
    // $name, ${name}, ${name:fmt}, [[name]]
    RE.get_or_init(|| {
        Regex::new(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::[^}]*)?\}|\$([A-Za-z_][A-Za-z0-9_]*)|\[\[([A-Za-z_][A-Za-z0-9_]*)\]\]")
            .expect("valid regex")
    })
}

fn name_of<'a>(c: &'a regex::Captures<'_>) -> &'a str {
    c.get(1).or_else(|| c.get(2)).or_else(|| c.get(3)).map_or("", |m| m.as_str())
}

/// Fills the variables of a Graphite target and its PromQL (see the module docs). Grafana's
/// own `$__…` variables are left for the caller.
pub fn fill(graphite: &str, promql: &str, vars: &BTreeMap<String, String>) -> (String, String) {
    let re = var_re();
    let g = re
        .replace_all(graphite, |c: &regex::Captures<'_>| {
            let n = name_of(c);
            if n.starts_with("__") {
                return c[0].to_owned();
            }
            vars.get(n).cloned().unwrap_or_else(|| "\u{0}ALL\u{0}".to_owned())
        })
        .into_owned();
    // "all" in a tag expression: `k=ALL` and `k=~ALL` → `k=~.*`; in a path node → `*`
    let g = g
        .replace("=~\u{0}ALL\u{0}", "=~.*")
        .replace("=\u{0}ALL\u{0}", "=~.*")
        .replace("\u{0}ALL\u{0}", "*");
    let p = re
        .replace_all(promql, |c: &regex::Captures<'_>| {
            let n = name_of(c);
            if n.starts_with("__") {
                return c[0].to_owned();
            }
            vars.get(n).cloned().unwrap_or_else(|| "\u{0}ALL\u{0}".to_owned())
        })
        .into_owned();
    let p = p.replace("=\"\u{0}ALL\u{0}\"", "=~\".*\"").replace("\u{0}ALL\u{0}", ".*");
    (g, p)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_given_value_is_used_on_both_sides_and_a_missing_one_means_all() {
        let mut vars = BTreeMap::new();
        vars.insert("service".to_owned(), "checkout".to_owned());
        let (g, p) = fill(
            "sumSeries(seriesByTag('name=stats.counters.a.count', 'service=$service', 'env=$env'))",
            "sum(rate(a_total{service=\"$service\", env=~\"$env\"}[$__rate_interval]))",
            &vars,
        );
        assert_eq!(
            g,
            "sumSeries(seriesByTag('name=stats.counters.a.count', 'service=checkout', 'env=~.*'))"
        );
        assert_eq!(p, "sum(rate(a_total{service=\"checkout\", env=~\".*\"}[$__rate_interval]))");
        let (g, _) = fill("stats.gauges.${dc}.[[host]].q", "q", &vars);
        assert_eq!(g, "stats.gauges.*.*.q");
        let (g, p) =
            fill("seriesByTag('name=q', 'host=~$host')", "q{host=~\"(?:$host).*\"}", &vars);
        assert_eq!(g, "seriesByTag('name=q', 'host=~.*')");
        assert_eq!(p, "q{host=~\"(?:.*).*\"}");
    }
}
