//! Per-metric rules: routing, names on the wire, match order, validation, catalog.
use std::time::Duration;

use dualmetrics::{BuildError, DualMetrics, Mode, Rule, Source, Temporality};
use dualmetrics_testkit::{latest, parse_line, Peers, PointValue};

const WAIT: Duration = Duration::from_secs(10);
const QUIET: Duration = Duration::from_millis(300);

/// A builder with the rules file `toml`, sending to `peers`, exported only when the test flushes.
fn builder(peers: &Peers, toml: &str) -> dualmetrics::DualMetricsBuilder {
    DualMetrics::builder()
        .ignore_env()
        .with_config_toml("rules.toml", toml)
        // Exact line and catalog assertions: no dualmetrics.sdk.* metrics.
        .with_setting("self_metrics", "false")
        .with_statsd_address(&peers.statsd_address())
        .with_statsd_flush_interval(Duration::from_secs(3600))
        .with_otlp_endpoint(&peers.otlp_endpoint())
        .with_otlp_export_interval(Duration::from_secs(3600))
}

/// StatsD metric names of `lines`, sorted.
fn names(lines: &[String]) -> Vec<String> {
    let mut n: Vec<String> = lines.iter().map(|l| parse_line(l).name).collect();
    n.sort();
    n
}

const ROUTING: &str = r#"
[default]
mode = "dual"

[[default.rules]]
match = "a.*"
mode = "otlp"

[[default.rules]]
match = "b.*"
mode = "legacy"
"#;

#[test]
fn rules_route_each_metric_to_the_pipelines_their_rule_names() {
    let peers = Peers::start();
    let metrics = builder(&peers, ROUTING).build().unwrap();
    for (name, v) in [("a.orders", 5), ("b.orders", 7), ("c.orders", 9)] {
        metrics.counter(name).build().unwrap().add(v, &[]);
    }
    metrics.flush().unwrap();

    let lines = peers.statsd.wait_for_lines(2, WAIT);
    assert_eq!(names(&peers.statsd.quiet(QUIET)), ["b.orders", "c.orders"], "{lines:?}");
    assert!(lines.contains(&"b.orders:7|c|#service:unknown_service".to_owned()), "{lines:?}");

    let points = peers.otlp.wait_for(WAIT, |p| {
        latest(p, "a.orders", &[]).is_some() && latest(p, "c.orders", &[]).is_some()
    });
    assert_eq!(latest(&points, "a.orders", &[]).unwrap().value, PointValue::Int(5));
    assert_eq!(latest(&points, "c.orders", &[]).unwrap().value, PointValue::Int(9));
    assert!(latest(&points, "b.orders", &[]).is_none(), "b is legacy-only: {points:?}");
}

#[test]
fn rule_names_show_up_on_the_wire_and_the_statsd_prefix_still_applies() {
    let peers = Peers::start();
    let toml = r#"
[default.statsd]
prefix = "svc"

[[default.rules]]
match = "checkout.cart.*"
statsd_name = "legacy.cart"
otel_name = "cart.items"
"#;
    let metrics = builder(&peers, toml).build().unwrap();
    metrics.counter("checkout.cart.items").build().unwrap().add(3, &[("shop", "eu")]);
    metrics.counter("checkout.other").build().unwrap().add(1, &[]);
    metrics.flush().unwrap();

    let mut lines = peers.statsd.wait_for_lines(2, WAIT);
    lines.sort();
    assert_eq!(
        lines,
        [
            "svc.checkout.other:1|c|#service:unknown_service",
            "svc.legacy.cart:3|c|#service:unknown_service,shop:eu",
        ]
    );
    let points = peers.otlp.wait_for(WAIT, |p| {
        latest(p, "cart.items", &[]).is_some() && latest(p, "checkout.other", &[]).is_some()
    });
    assert_eq!(latest(&points, "cart.items", &[("shop", "eu")]).unwrap().value, PointValue::Int(3));
    assert!(
        !points.iter().any(|p| p.metric == "checkout.cart.items"),
        "the facade name is not exported under a rule's otel_name"
    );
}

#[test]
fn first_match_wins_code_then_env_then_default_rules() {
    let peers = Peers::start();
    let toml = r#"
[[default.rules]]
match = "shop.*"
mode = "otlp"

[[default.rules]]
match = "shop.cart.*"       # shadowed by shop.* above
mode = "legacy"

[env.prod]

[[env.prod.rules]]
match = "shop.pay.*"
mode = "legacy"
"#;
    let metrics = builder(&peers, toml)
        .with_environment_name("prod")
        .with_rule(Rule::matching("shop.vip").mode(Mode::Dual))
        .build()
        .unwrap();
    for name in ["shop.cart.items", "shop.pay.card", "shop.vip", "other"] {
        metrics.counter(name).build().unwrap().add(1, &[]);
    }
    let catalog = metrics.catalog();
    let got: Vec<(&str, &str, Option<&str>)> = catalog
        .instruments
        .iter()
        .map(|e| (e.name.as_str(), e.mode.as_str(), e.rule.as_deref()))
        .collect();
    assert_eq!(
        got,
        [
            ("other", "dual", None),
            ("shop.cart.items", "otlp", Some("shop.*")),
            ("shop.pay.card", "legacy", Some("shop.pay.*")),
            ("shop.vip", "dual", Some("shop.vip")),
        ]
    );
    metrics.flush().unwrap();
    peers.statsd.wait_for_lines(3, WAIT);
    assert_eq!(names(&peers.statsd.quiet(QUIET)), ["other", "shop.pay.card", "shop.vip"]);
}

#[test]
fn set_mode_moves_unpinned_instruments_and_leaves_pinned_ones() {
    let peers = Peers::start();
    let metrics = builder(&peers, ROUTING).build().unwrap();
    let a = metrics.counter("a.x").build().unwrap();
    let c = metrics.counter("c.x").build().unwrap();
    metrics.set_mode(Mode::Legacy);
    a.add(2, &[]);
    c.add(4, &[]);
    metrics.flush().unwrap();
    assert_eq!(peers.statsd.wait_for_lines(1, WAIT), ["c.x:4|c|#service:unknown_service"]);
    let points = peers.otlp.wait_for(WAIT, |p| latest(p, "a.x", &[]).is_some());
    assert_eq!(latest(&points, "a.x", &[]).unwrap().value, PointValue::Int(2));
    assert!(latest(&points, "c.x", &[]).is_none());
    assert!(peers.statsd.quiet(QUIET).len() == 1, "a.x stays OTLP-only");
}

#[test]
fn rule_temporality_and_cardinality_limit_apply_with_code_winning_over_the_rule() {
    let peers = Peers::start();
    let toml = r#"
[default]
cardinality_limit = 100

[[default.rules]]
match = "users.*"
temporality = "delta"
cardinality_limit = 2
"#;
    let metrics = builder(&peers, toml).build().unwrap();
    let ruled = metrics.counter("users.seen").build().unwrap();
    let coded = metrics.counter("users.coded").with_cardinality_limit(3).build().unwrap();
    let global = metrics.counter("plain").build().unwrap();
    for id in ["a", "b", "c", "d"] {
        ruled.add(1, &[("id", id)]);
        coded.add(1, &[("id", id)]);
        global.add(1, &[("id", id)]);
    }
    // users.seen: 2 of 4 overflow; users.coded: 1 of 4; plain: none.
    assert_eq!(metrics.telemetry().cardinality_overflow, 3);
    let catalog = metrics.catalog();
    let temporality =
        |n: &str| catalog.instruments.iter().find(|e| e.name == n).unwrap().temporality.clone();
    assert_eq!(temporality("users.seen").as_deref(), Some(Temporality::Delta.as_str()));
    assert_eq!(temporality("plain").as_deref(), Some(Temporality::Cumulative.as_str()));
}

#[test]
fn catalog_lists_every_instrument_with_both_names_as_the_rules_made_them() {
    let peers = Peers::start();
    let toml = r#"
[default.statsd]
prefix = "svc"

[[default.rules]]
match = "renamed"
statsd_name = "old.name"
otel_name = "new.name"
mode = "legacy"
"#;
    let metrics = builder(&peers, toml).build().unwrap();
    let _renamed = metrics.counter("renamed").build().unwrap();
    let _kept = metrics.histogram("kept").with_unit("ms").build().unwrap();
    let catalog = metrics.catalog();
    let got: Vec<(&str, &str, &str, &str, Option<&str>)> = catalog
        .instruments
        .iter()
        .map(|e| {
            (
                e.name.as_str(),
                e.statsd_name.as_deref().unwrap(),
                e.otel_name.as_deref().unwrap(),
                e.mode.as_str(),
                e.rule.as_deref(),
            )
        })
        .collect();
    assert_eq!(
        got,
        [
            ("kept", "svc.kept", "kept", "dual", None),
            ("renamed", "svc.old.name", "new.name", "legacy", Some("renamed")),
        ]
    );
}

fn config_error(toml: &str) -> dualmetrics::ConfigError {
    match DualMetrics::builder()
        .ignore_env()
        // Exact line sets: no `dualmetrics.sdk.*` self-metrics.
        .with_setting("self_metrics", "false")
        .with_environment_name("prod")
        .with_config_toml("bad.toml", toml)
        .resolve_config()
    {
        Err(BuildError::Config(e)) => e,
        other => panic!("expected a configuration error for {toml}, got {other:?}"),
    }
}

#[test]
fn every_bad_rule_input_is_rejected_with_key_value_and_source() {
    let cases: &[(&str, &str, &str)] = &[
        (r#"match = "a[""#, "rules[1].match", "a["),
        (
            r#"match = "a"
            mode = "both""#,
            "rules[1].mode",
            "both",
        ),
        (
            r#"match = "a"
            temporality = "weekly""#,
            "rules[1].temporality",
            "weekly",
        ),
        (
            r#"match = "a"
            cardinality_limit = 0"#,
            "rules[1].cardinality_limit",
            "0",
        ),
        (
            r#"match = "a"
            statsd_name = "has space""#,
            "rules[1].statsd_name",
            "has space",
        ),
        (
            r#"match = "a"
            otel_name = "9lives""#,
            "rules[1].otel_name",
            "9lives",
        ),
        (
            r#"match = "a"
            colour = "red""#,
            "rules[1].colour",
            "\"red\"",
        ),
        (r#"mode = "otlp""#, "rules[1].match", ""),
    ];
    for (body, key, value) in cases {
        let toml = format!(
            "[env.prod]\n[[env.prod.rules]]\nmatch = \"ok.*\"\n[[env.prod.rules]]\n{body}\n"
        );
        let e = config_error(&toml);
        assert_eq!((e.key.as_str(), e.value.as_str()), (*key, *value), "{body}: {e}");
        assert_eq!(
            e.origin,
            Source::File { path: "bad.toml".into(), section: "env.prod".into() },
            "{body}"
        );
        assert!(e.to_string().contains(key), "{e}");
    }

    let e = config_error("[[default.rules]]\nmatch = \"x\"\nmode = \"sideways\"\n[env.prod]\n");
    assert_eq!((e.key.as_str(), e.value.as_str()), ("rules[0].mode", "sideways"));
    assert_eq!(e.origin, Source::File { path: "bad.toml".into(), section: "default".into() });

    let e = match DualMetrics::builder()
        .ignore_env()
        // Exact line sets: no `dualmetrics.sdk.*` self-metrics.
        .with_setting("self_metrics", "false")
        .with_rule(Rule::matching("fine"))
        .with_rule(Rule::matching("x").cardinality_limit(0))
        .resolve_config()
    {
        Err(BuildError::Config(e)) => e,
        other => panic!("{other:?}"),
    };
    assert_eq!(
        (e.key.as_str(), e.value.as_str(), e.origin),
        ("rules[1].cardinality_limit", "0", Source::Code)
    );
}

#[test]
fn a_rule_that_would_merge_two_metrics_under_one_wire_name_is_refused_at_registration() {
    let peers = Peers::start();
    let toml = "[[default.rules]]\nmatch = \"cart.*\"\notel_name = \"cart\"\n";
    let metrics = builder(&peers, toml).build().unwrap();
    let _first = metrics.counter("cart.adds").build().unwrap();
    let err = match metrics.counter("cart.removes").build() {
        Err(BuildError::Config(e)) => e,
        other => panic!("expected a configuration error, got {other:?}"),
    };
    assert_eq!((err.key.as_str(), err.value.as_str()), ("rules[0].otel_name", "cart"));
    assert_eq!(err.origin, Source::File { path: "rules.toml".into(), section: "default".into() });
    assert!(err.reason.contains("cart.adds"), "{err}");
}

#[test]
fn force_mode_overrides_pins_until_cleared() {
    let peers = Peers::start();
    let metrics = builder(&peers, ROUTING).build().unwrap();
    let a = metrics.counter("a.x").build().unwrap().bind(&[]).unwrap(); // pinned otlp
    let c = metrics.counter("c.x").build().unwrap().bind(&[]).unwrap(); // global dual

    metrics.force_mode(Some(Mode::Legacy));
    assert_eq!(metrics.forced_mode(), Some(Mode::Legacy));
    let late = metrics.counter("a.late").build().unwrap().bind(&[]).unwrap(); // pinned, forced
    a.add(1);
    c.add(2);
    late.add(3);
    metrics.flush().unwrap();
    let mut lines = peers.statsd.wait_for_lines(3, WAIT);
    lines.sort();
    assert_eq!(
        lines,
        [
            "a.late:3|c|#service:unknown_service",
            "a.x:1|c|#service:unknown_service",
            "c.x:2|c|#service:unknown_service",
        ]
    );
    assert!(peers.otlp.points().is_empty(), "{:?}", peers.otlp.points());

    metrics.force_mode(None);
    a.add(10);
    c.add(20);
    metrics.flush().unwrap();
    assert_eq!(
        latest(&peers.otlp.wait_for(WAIT, |p| latest(p, "a.x", &[]).is_some()), "a.x", &[])
            .unwrap()
            .value,
        PointValue::Int(10)
    );
    let lines = peers.statsd.wait_for_lines(4, WAIT);
    assert_eq!(lines[3], "c.x:20|c|#service:unknown_service", "{lines:?}");
    assert_eq!(peers.statsd.quiet(QUIET).len(), 4, "a.x is OTLP-only again");
}
