//! The mapping file run backwards: Graphite key patterns with dimensions in path nodes →
//! metric name plus label matchers, as the shim (which applies the same file) names them.
use dualmetrics_model::mapping::MappingFile;
use dualmetrics_port::{promql, translate, Context, Status};

const MAPPING: &str = r#"
mappings:
- match: "checkout.*.*.requests"
  name: "checkout_requests"
  labels:
    env: "$1"
    host: "$2"
- match: "checkout.*.*.latency"
  match_metric_type: observer
  name: "checkout_latency"
  labels:
    env: "$1"
    host: "$2"
- match: "queue.*.depth"
  name: "queue_depth"
  labels:
    queue: "q-$1"
- match: "jobs.*.*.done"
  name: "jobs_done"
  labels:
    kind: "$1"
- match: "debug.*"
  action: drop
"#;

fn ctx() -> Context {
    Context { mapping: Some(MappingFile::parse(MAPPING, "m.yml").unwrap()), ..Context::default() }
}

fn q(target: &str) -> (String, &'static str) {
    let t = translate(target, &ctx()).unwrap_or_else(|e| panic!("{target}: {e}"));
    if let Some(p) = &t.promql {
        promql::check(p).unwrap();
    }
    (t.promql.unwrap_or_default(), t.status.as_str())
}

#[test]
fn wildcard_and_literal_nodes_become_label_matchers() {
    assert_eq!(
        q("stats.counters.checkout.*.web-1.requests.count"),
        ("rate(checkout_requests_total{host=\"web-1\"}[$__rate_interval]) * 10".into(), "exact")
    );
    assert_eq!(
        q("stats.counters.checkout.{prod,stage}.web-*.requests.rate"),
        ("rate(checkout_requests_total{env=~\"prod|stage\", host=~\"web\\\\-.*\"}[$__rate_interval])".into(), "exact")
    );
}

#[test]
fn a_literal_key_goes_through_the_forward_map() {
    assert_eq!(
        q("stats.counters.checkout.prod.web-1.requests.count"),
        (
            "rate(checkout_requests_total{env=\"prod\", host=\"web-1\"}[$__rate_interval]) * 10"
                .into(),
            "exact"
        )
    );
}

#[test]
fn template_variables_stay_grafana_variables_in_matchers() {
    let t = translate("stats.counters.checkout.$env.[[host]].requests.count", &ctx()).unwrap();
    assert_eq!(
        t.promql.as_deref(),
        Some(
            "rate(checkout_requests_total{env=~\"$env\", host=~\"$host\"}[$__rate_interval]) * 10"
        )
    );
    assert_eq!(t.variables, vec!["env".to_owned(), "host".to_owned()]);
}

#[test]
fn group_by_node_and_alias_by_node_use_the_mapped_labels() {
    let t = translate(
        "aliasByNode(groupByNode(stats.counters.checkout.*.*.requests.count, 3, 'sum'), 0)",
        &ctx(),
    )
    .unwrap();
    assert_eq!(
        t.promql.as_deref(),
        Some("sum by (env) (rate(checkout_requests_total[$__rate_interval]) * 10)")
    );
    assert_eq!(t.legend.as_deref(), Some("{{env}}"));
    let t =
        translate("sumSeriesWithWildcards(stats.counters.checkout.*.*.requests.count, 4)", &ctx())
            .unwrap();
    assert_eq!(
        t.promql.as_deref(),
        Some("sum by (env) (rate(checkout_requests_total[$__rate_interval]) * 10)")
    );
    assert_eq!(t.legend.as_deref(), Some("stats.counters.checkout.{{env}}.requests.count"));
    let t = translate("aliasByNode(stats.gauges.checkout.*.*.requests, 3, 4)", &ctx()).unwrap();
    assert_eq!(t.legend.as_deref(), Some("{{env}}.{{host}}"));
}

#[test]
fn timer_percentiles_use_the_mapped_histogram_per_label_set() {
    let (p, s) = q("stats.timers.checkout.prod.*.latency.upper_90");
    assert_eq!(p, "histogram_quantile(0.9, rate(checkout_latency_milliseconds_bucket{env=\"prod\"}[$__rate_interval]))");
    assert_eq!(s, "approximate");
    // the rule is for observers only: a counter of that shape is not mapped by it
    let (p, _) = q("stats.counters.checkout.prod.web-1.latency.count");
    assert_eq!(p, "rate(checkout_prod_web_1_latency_total[$__rate_interval]) * 10");
}

#[test]
fn composite_label_values_and_dropped_nodes_are_marked() {
    assert_eq!(
        q("stats.gauges.queue.*.depth"),
        ("queue_depth{queue=~\"q\\\\-.*\"}".into(), "exact")
    );
    assert_eq!(
        q("stats.gauges.queue.mail.depth"),
        ("queue_depth{queue=\"q-mail\"}".into(), "exact")
    );
    let t = translate("stats.counters.jobs.*.*.done.count", &ctx()).unwrap();
    let Status::Approximate { reasons } = &t.status else { panic!("{:?}", t.status) };
    assert!(reasons.iter().any(|r| r.contains("keeps no label for node `*`")), "{reasons:?}");
}

#[test]
fn dropped_keys_are_untranslatable() {
    let t = translate("stats.gauges.debug.x", &ctx()).unwrap();
    assert!(
        matches!(&t.status, Status::Untranslatable { why, .. } if why.contains("drops")),
        "{:?}",
        t.status
    );
    let t = translate("stats.gauges.debug.*", &ctx()).unwrap();
    assert!(matches!(&t.status, Status::Untranslatable { .. }), "{:?}", t.status);
}

#[test]
fn keys_no_rule_matches_keep_the_default_naming() {
    assert_eq!(q("stats.gauges.other.thing"), ("other_thing".into(), "exact"));
}

#[test]
fn a_pattern_split_across_rules_is_untranslatable() {
    // `checkout.*.*.*` overlaps both the requests and the latency rule (for counters: requests)
    let t = translate("stats.counters.checkout.prod.web-1.*.count", &ctx()).unwrap();
    assert!(
        matches!(&t.status, Status::Untranslatable { why, .. } if why.contains("split across mapping rules")),
        "{:?}",
        t.status
    );
}
