//! Cardinality limits per metric (rules, builder, global default) against real receivers: the
//! overflow series on both pipelines exactly past the limit, overflow counted per metric, the
//! cumulative series warning, and rules that fail validation.
use std::time::Duration;

use dualmetrics::{BuildError, DualMetrics, Mode, Rule, Temporality, OVERFLOW_TAG};
use dualmetrics_testkit::{
    parse_line, points, OtlpGrpcReceiver, Point, PointValue, StatsdReceiver,
};

const WAIT: Duration = Duration::from_secs(10);

fn builder(otlp: &OtlpGrpcReceiver, statsd: &StatsdReceiver) -> dualmetrics::DualMetricsBuilder {
    DualMetrics::builder()
        .ignore_env()
        .with_mode(Mode::Dual)
        .with_service_name("api")
        .with_statsd_address(&statsd.local_addr().to_string())
        .with_otlp_endpoint(&otlp.endpoint())
        .with_otlp_export_interval(Duration::from_secs(3600))
        .with_statsd_flush_interval(Duration::from_secs(3600))
}

fn last_export(otlp: &OtlpGrpcReceiver) -> Vec<Point> {
    let received = otlp.wait_for_requests(1, WAIT);
    points(&[received.last().unwrap().request.clone()])
}

fn series_of(points: &[Point], metric: &str) -> Vec<(Option<String>, Option<String>, i64)> {
    let mut out: Vec<_> = points
        .iter()
        .filter(|p| p.metric == metric)
        .map(|p| {
            let v = match p.value {
                PointValue::Int(v) => v,
                ref other => panic!("int expected, got {other:?}"),
            };
            (p.attr("user").map(str::to_owned), p.attr(OVERFLOW_TAG).map(str::to_owned), v)
        })
        .collect();
    out.sort();
    out
}

#[test]
fn overflow_series_appears_exactly_past_each_metrics_rule_limit_on_both_pipelines() {
    let otlp = OtlpGrpcReceiver::start();
    let statsd = StatsdReceiver::bind_udp();
    let metrics = builder(&otlp, &statsd)
        .with_config_toml(
            "test.toml",
            r#"
            [[default.rules]]
            match = "small.*"
            cardinality_limit = 3
            "#,
        )
        .with_rule(Rule::matching("tiny.*").cardinality_limit(1))
        .build()
        .unwrap();
    let small = metrics.counter("small.logins").build().unwrap();
    let tiny = metrics.counter("tiny.logins").build().unwrap();
    let big = metrics.counter("big.logins").build().unwrap();
    for user in ["u1", "u2", "u3", "u4", "u5"] {
        small.add(1, &[("user", user)]);
        tiny.add(10, &[("user", user)]);
        big.add(1, &[("user", user)]);
    }
    small.add(1, &[("user", "u5")]);
    metrics.flush().unwrap();
    let exported = last_export(&otlp);

    let s = |u: &str| (Some(u.to_owned()), None, 1);
    let overflow = |v| (None, Some("true".to_owned()), v);
    assert_eq!(
        series_of(&exported, "small.logins"),
        vec![overflow(3), s("u1"), s("u2"), s("u3")],
        "limit 3 from the TOML rule: the 4th tag set on overflows (u4 once, u5 twice)"
    );
    assert_eq!(
        series_of(&exported, "tiny.logins"),
        vec![overflow(40), (Some("u1".into()), None, 10)],
        "limit 1 from the code rule"
    );
    assert_eq!(series_of(&exported, "big.logins").len(), 5, "global default limit: no overflow");

    let telemetry = metrics.telemetry();
    assert_eq!(telemetry.cardinality_overflow, 7);
    assert_eq!(
        telemetry.cardinality_overflow_by_metric.into_iter().collect::<Vec<_>>(),
        vec![("small.logins".to_owned(), 3), ("tiny.logins".to_owned(), 4)]
    );

    // StatsD: the same overflow series, tagged like OTLP's, with the same counts.
    let lines = statsd.wait_until(WAIT, |lines| {
        lines
            .iter()
            .filter(|l| l.starts_with("small.logins:") || l.starts_with("tiny.logins:"))
            .count()
            == 6
    });
    let statsd_overflow = |metric: &str| -> f64 {
        lines
            .iter()
            .map(|l| parse_line(l))
            .filter(|p| p.name == metric && p.tag(OVERFLOW_TAG) == Some("true"))
            .map(|p| p.value_f64())
            .sum()
    };
    assert_eq!(statsd_overflow("small.logins"), 3.0);
    assert_eq!(statsd_overflow("tiny.logins"), 40.0);
    let small_lines: Vec<_> = lines
        .iter()
        .map(|l| parse_line(l))
        .filter(|p| p.name == "small.logins" && p.tag("user").is_some())
        .collect();
    assert_eq!(small_lines.len(), 3, "StatsD keeps exactly the tag sets OTLP keeps");
}

#[test]
fn builder_limit_wins_over_rule_and_rule_over_global_default() {
    let otlp = OtlpGrpcReceiver::start();
    let statsd = StatsdReceiver::bind_udp();
    let metrics = builder(&otlp, &statsd)
        .with_cardinality_limit(2)
        .with_rule(Rule::matching("ruled.*").cardinality_limit(3))
        .build()
        .unwrap();
    let global = metrics.counter("plain.c").build().unwrap();
    let ruled = metrics.counter("ruled.c").build().unwrap();
    let coded = metrics.counter("ruled.coded").with_cardinality_limit(4).build().unwrap();
    for user in ["a", "b", "c", "d", "e", "f"] {
        global.add(1, &[("user", user)]);
        ruled.add(1, &[("user", user)]);
        coded.add(1, &[("user", user)]);
    }
    let by_metric = metrics.telemetry().cardinality_overflow_by_metric;
    assert_eq!(by_metric["plain.c"], 4, "global limit 2");
    assert_eq!(by_metric["ruled.c"], 3, "rule limit 3");
    assert_eq!(by_metric["ruled.coded"], 2, "builder limit 4");
    metrics.flush().unwrap();
    let exported = last_export(&otlp);
    assert_eq!(series_of(&exported, "ruled.coded").len(), 5, "4 series + overflow");
}

#[test]
fn cumulative_metric_past_the_series_warning_is_reported_once_and_delta_metrics_never() {
    let otlp = OtlpGrpcReceiver::start();
    let statsd = StatsdReceiver::bind_udp();
    let metrics = builder(&otlp, &statsd)
        .with_config_toml("test.toml", "[default]\ncumulative_series_warning = 10\n")
        .with_rule(Rule::matching("delta.*").temporality(Temporality::Delta))
        .build()
        .unwrap();
    assert_eq!(metrics.config().cumulative_series_warning, 10);
    let wide = metrics.counter("wide.requests").build().unwrap();
    let narrow = metrics.counter("narrow.requests").build().unwrap();
    let delta = metrics.counter("delta.requests").build().unwrap();
    for i in 0..9 {
        wide.add(1, &[("id", &i.to_string())]);
    }
    assert!(metrics.telemetry().cumulative_series_warnings.is_empty(), "9 < 10 series");
    for i in 9..30 {
        wide.add(1, &[("id", &i.to_string())]);
        delta.add(1, &[("id", &i.to_string())]);
    }
    narrow.add(1, &[("id", "0")]);
    assert_eq!(metrics.telemetry().cumulative_series_warnings, vec!["wide.requests".to_owned()]);
}

#[test]
fn cumulative_series_warning_defaults_to_5000_and_zero_turns_it_off() {
    let otlp = OtlpGrpcReceiver::start();
    let statsd = StatsdReceiver::bind_udp();
    let metrics = builder(&otlp, &statsd).build().unwrap();
    assert_eq!(
        metrics.config().cumulative_series_warning,
        dualmetrics::config::DEFAULT_CUMULATIVE_SERIES_WARNING
    );
    assert_eq!(dualmetrics::config::DEFAULT_CUMULATIVE_SERIES_WARNING, 5000);
    let off = builder(&otlp, &statsd)
        .with_config_toml("test.toml", "[default]\ncumulative_series_warning = 0\n")
        .build()
        .unwrap();
    let c = off.counter("wide.requests").build().unwrap();
    for i in 0..50 {
        c.add(1, &[("id", &i.to_string())]);
    }
    assert!(off.telemetry().cumulative_series_warnings.is_empty());
}

fn config_error(toml: &str) -> dualmetrics::ConfigError {
    let otlp = OtlpGrpcReceiver::start();
    let statsd = StatsdReceiver::bind_udp();
    match builder(&otlp, &statsd).with_config_toml("svc.toml", toml).build() {
        Err(BuildError::Config(e)) => e,
        other => panic!("config error expected, got {other:?}"),
    }
}

#[test]
fn rule_with_unknown_temporality_fails_validation_naming_key_and_value() {
    let e = config_error("[[default.rules]]\nmatch = \"a.*\"\ntemporality = \"sometimes\"\n");
    assert!(e.key.ends_with("temporality"), "{e}");
    assert_eq!(e.value, "sometimes");
    assert!(e.to_string().contains("svc.toml"), "names the source: {e}");
}

#[test]
fn rule_with_zero_cardinality_limit_fails_validation_naming_key_and_value() {
    let e = config_error("[[default.rules]]\nmatch = \"a.*\"\ncardinality_limit = 0\n");
    assert!(e.key.ends_with("cardinality_limit"), "{e}");
    assert_eq!(e.value, "0");
}

#[test]
fn negative_cumulative_series_warning_fails_validation_naming_key_and_value() {
    let e = config_error("[default]\ncumulative_series_warning = -1\n");
    assert_eq!(e.key, "cumulative_series_warning");
    assert_eq!(e.value, "-1");
}
