//! Configuration: precedence of every layer and the errors for bad input.
use std::time::Duration;

use dualmetrics::config::{StatsdAddress, DEFAULT_OTLP_EXPORT_INTERVAL};
use dualmetrics::{BuildError, DualMetrics, Mode, Protocol, Source, Temporality};

const FILE: &str = r#"
[default]
mode = "legacy"
service = "from-file"
tags = { region = "eu", team = "core" }

[default.statsd]
address = "10.0.0.1:8125"
prefix = "file"

[default.otlp]
endpoint = "http://collector:4317"
export_interval_ms = 30000

[env.staging]
mode = "dual"

[env.staging.statsd]
prefix = "staging"

[env.prod]
mode = "otlp"
"#;

fn builder(vars: &[(&str, &str)]) -> dualmetrics::DualMetricsBuilder {
    DualMetrics::builder()
        .with_config_toml("dualmetrics.toml", FILE)
        .with_env_vars(vars.iter().copied())
}

#[test]
fn defaults_apply_when_nothing_is_configured() {
    let c = DualMetrics::builder().ignore_env().resolve_config().unwrap();
    assert_eq!(c.mode, Mode::Dual);
    assert_eq!(c.service, "unknown_service");
    assert_eq!(c.statsd.address, StatsdAddress::Udp("127.0.0.1:8125".into()));
    assert_eq!(c.otlp.endpoint, "http://127.0.0.1:4317");
    assert_eq!(c.otlp.protocol, Protocol::Grpc);
    assert_eq!(c.otlp.temporality, Temporality::Cumulative);
    assert_eq!(c.otlp.export_interval, DEFAULT_OTLP_EXPORT_INTERVAL);
}

#[test]
fn file_default_section_overrides_defaults() {
    let c = builder(&[]).resolve_config().unwrap();
    assert_eq!(c.mode, Mode::Legacy);
    assert_eq!(c.service, "from-file");
    assert_eq!(c.statsd.prefix, "file");
    assert_eq!(c.otlp.export_interval, Duration::from_secs(30));
    assert!(c.tags.contains(&("region".into(), "eu".into())));
}

#[test]
fn env_section_selected_by_dualmetrics_env_overrides_the_default_section() {
    let c = builder(&[("DUALMETRICS_ENV", "staging")]).resolve_config().unwrap();
    assert_eq!(c.mode, Mode::Dual);
    assert_eq!(c.statsd.prefix, "staging");
    assert_eq!(c.service, "from-file", "keys the section does not set come from [default]");
    assert_eq!(c.environment.as_deref(), Some("staging"));
    assert!(c.tags.contains(&("env".into(), "staging".into())));
}

#[test]
fn environment_variables_override_the_file_and_dualmetrics_wins_over_otel() {
    let c = builder(&[
        ("DUALMETRICS_ENV", "staging"),
        ("DUALMETRICS_MODE", "otlp"),
        ("DUALMETRICS_STATSD_PREFIX", "envprefix"),
        ("DUALMETRICS_TAGS", "team=platform"),
        ("OTEL_SERVICE_NAME", "otel-name"),
        ("OTEL_RESOURCE_ATTRIBUTES", "k8s.pod.name=pod%201,service.version=2"),
        ("OTEL_EXPORTER_OTLP_METRICS_TEMPORALITY_PREFERENCE", "delta"),
        ("OTEL_EXPORTER_OTLP_METRICS_ENDPOINT", "http://otel-var:4317"),
        ("DUALMETRICS_OTLP_ENDPOINT", "http://dm-var:4317"),
        ("OTEL_EXPORTER_OTLP_HEADERS", "authorization=Bearer%20x"),
    ])
    .resolve_config()
    .unwrap();
    assert_eq!(c.mode, Mode::Otlp);
    assert_eq!(c.statsd.prefix, "envprefix");
    assert_eq!(c.service, "otel-name");
    assert_eq!(c.otlp.endpoint, "http://dm-var:4317");
    assert_eq!(c.otlp.temporality, Temporality::Delta);
    assert!(c.otlp.resource.contains(&("k8s.pod.name".into(), "pod 1".into())));
    assert!(c.otlp.headers.contains(&("authorization".into(), "Bearer x".into())));
    assert!(
        c.tags.contains(&("team".into(), "platform".into())),
        "env tag entry overrides the file's"
    );
    assert!(c.tags.contains(&("region".into(), "eu".into())), "tables merge entry by entry");
}

#[test]
fn code_overrides_everything() {
    let c = builder(&[("DUALMETRICS_ENV", "prod"), ("DUALMETRICS_MODE", "dual")])
        .with_mode(Mode::Legacy)
        .with_statsd_address("unix:///run/statsd.sock")
        .resolve_config()
        .unwrap();
    assert_eq!(c.mode, Mode::Legacy);
    assert_eq!(c.statsd.address, StatsdAddress::Unix("/run/statsd.sock".into()));
}

fn config_error(result: Result<dualmetrics::Config, BuildError>) -> dualmetrics::ConfigError {
    match result {
        Err(BuildError::Config(e)) => e,
        other => panic!("expected a config error, got {other:?}"),
    }
}

#[test]
fn unknown_mode_names_key_value_and_variable() {
    let e = config_error(builder(&[("DUALMETRICS_MODE", "both")]).resolve_config());
    assert_eq!((e.key.as_str(), e.value.as_str()), ("mode", "both"));
    assert_eq!(e.origin, Source::Env("DUALMETRICS_MODE".into()));
    assert!(e.to_string().contains("environment variable DUALMETRICS_MODE"), "{e}");
}

#[test]
fn bad_endpoint_url_names_the_file_section() {
    let toml = "[default]\n[env.qa.otlp]\nendpoint = \"collector:4317\"\n";
    let e = config_error(
        DualMetrics::builder()
            .with_config_toml("qa.toml", toml)
            .with_env_vars([("DUALMETRICS_ENV", "qa")])
            .resolve_config(),
    );
    assert_eq!(e.key, "otlp.endpoint");
    assert_eq!(e.value, "collector:4317");
    assert_eq!(e.origin, Source::File { path: "qa.toml".into(), section: "env.qa".into() });
    assert!(e.to_string().contains("qa.toml [env.qa]"), "{e}");
}

#[test]
fn negative_interval_is_rejected() {
    let e = config_error(builder(&[("OTEL_METRIC_EXPORT_INTERVAL", "-5")]).resolve_config());
    assert_eq!((e.key.as_str(), e.value.as_str()), ("otlp.export_interval_ms", "-5"));
    assert_eq!(e.origin, Source::Env("OTEL_METRIC_EXPORT_INTERVAL".into()));
    let toml = "[default.statsd]\nflush_interval_ms = -1\n";
    let e = config_error(
        DualMetrics::builder()
            .with_config_toml("f.toml", toml)
            .with_env_vars([("A", "B")])
            .resolve_config(),
    );
    assert_eq!(e.key, "statsd.flush_interval_ms");
}

#[test]
fn unknown_key_in_the_file_is_rejected_with_its_dotted_name() {
    let toml = "[default.otlp]\nendpont = \"http://x:4317\"\n";
    let e = config_error(
        DualMetrics::builder()
            .with_config_toml("f.toml", toml)
            .with_env_vars([("A", "B")])
            .resolve_config(),
    );
    assert_eq!(e.key, "otlp.endpont");
    assert!(e.reason.contains("unknown key"));
}

#[test]
fn unknown_section_and_missing_env_section_are_file_errors() {
    let err = DualMetrics::builder()
        .with_config_toml("f.toml", "[defaults]\n")
        .with_env_vars([("A", "B")])
        .build()
        .unwrap_err();
    assert!(err.to_string().contains("unknown section [defaults]"), "{err}");
    let err = builder(&[("DUALMETRICS_ENV", "qa")]).build().unwrap_err();
    assert!(err.to_string().contains("no [env.qa] section"), "{err}");
}

#[test]
fn malformed_toml_names_the_file_and_line() {
    let err = DualMetrics::builder()
        .with_config_toml("broken.toml", "[default\nmode=")
        .with_env_vars([("A", "B")])
        .build()
        .unwrap_err();
    let msg = err.to_string();
    assert!(msg.starts_with("configuration file broken.toml"), "{msg}");
    assert!(msg.contains("line 1"), "{msg}");
}

#[test]
fn config_file_path_comes_from_dualmetrics_config() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("m.toml");
    std::fs::write(&path, "[default]\nmode = \"otlp\"\n").unwrap();
    let c = DualMetrics::builder()
        .with_env_vars([("DUALMETRICS_CONFIG", path.to_str().unwrap())])
        .resolve_config()
        .unwrap();
    assert_eq!(c.mode, Mode::Otlp);
}

#[test]
fn wrong_types_and_values_are_rejected() {
    for (toml, key) in [
        ("[default]\nmode = 3\n", "mode"),
        ("[default.otlp]\nprotocol = \"udp\"\n", "otlp.protocol"),
        ("[default.otlp]\ntemporality = \"sometimes\"\n", "otlp.temporality"),
        ("[default.otlp]\nhistogram_boundaries = [10, 5]\n", "otlp.histogram_boundaries"),
        ("[default.statsd]\naddress = \"localhost\"\n", "statsd.address"),
        ("[default]\ncardinality_limit = 0\n", "cardinality_limit"),
        ("[default.otlp]\nca_file = \"/nonexistent/ca.pem\"\n", "otlp.ca_file"),
    ] {
        let e = config_error(
            DualMetrics::builder()
                .with_config_toml("t.toml", toml)
                .with_env_vars([("A", "B")])
                .resolve_config(),
        );
        assert_eq!(e.key, key, "{toml}");
    }
}

#[test]
fn statsd_flush_and_otlp_export_default_to_the_same_10_s_and_each_can_be_overridden() {
    let c = DualMetrics::builder().ignore_env().resolve_config().unwrap();
    assert_eq!(c.statsd.flush_interval, Duration::from_secs(10));
    assert_eq!(c.statsd.flush_interval, c.otlp.export_interval);
    assert_eq!(
        c.statsd.pacing_bytes_per_ms,
        dualmetrics::config::DEFAULT_STATSD_PACING_BYTES_PER_MS
    );
    assert!(!c.statsd.value_packing);
    let c = DualMetrics::builder()
        .with_env_vars([
            ("DUALMETRICS_STATSD_FLUSH_INTERVAL_MS", "1000"),
            ("DUALMETRICS_STATSD_PACING_BYTES_PER_MS", "0"),
            ("DUALMETRICS_STATSD_VALUE_PACKING", "true"),
            ("DUALMETRICS_STATSD_TIMER_TYPE", "d"),
        ])
        .with_otlp_export_interval(Duration::from_secs(5))
        .resolve_config()
        .unwrap();
    assert_eq!(c.statsd.flush_interval, Duration::from_secs(1));
    assert_eq!(c.otlp.export_interval, Duration::from_secs(5));
    assert_eq!(c.statsd.pacing_bytes_per_ms, 0);
    assert!(c.statsd.value_packing);
    assert_eq!(c.statsd.timer_type, dualmetrics_model::statsd_line::StatsdType::Distribution);
}

#[test]
fn ignore_env_reads_no_environment_variable() {
    // A variable of the process environment that would fail validation if it were read.
    std::env::set_var("DUALMETRICS_STATSD_PACING_BYTES_PER_MS", "fast");
    let c = DualMetrics::builder().ignore_env().resolve_config();
    std::env::remove_var("DUALMETRICS_STATSD_PACING_BYTES_PER_MS");
    assert!(c.is_ok(), "{c:?}");
}

#[test]
fn invalid_pacing_and_timer_type_fail_naming_the_key_and_value() {
    for (key, value) in [("statsd.pacing_bytes_per_ms", "-1"), ("statsd.timer_type", "x")] {
        let err = DualMetrics::builder().ignore_env().with_setting(key, value).resolve_config();
        let text = err.unwrap_err().to_string();
        assert!(text.contains(key) && text.contains(value), "{text}");
    }
}

#[test]
fn a_malformed_headers_variable_is_refused_without_printing_a_credential() {
    // a `,` inside the token splits it: the second entry has no `=`
    let err = DualMetrics::builder()
        .with_env_vars([("OTEL_EXPORTER_OTLP_HEADERS", "authorization=Bearer s3cr3t,t0k3n-tail")])
        .resolve_config()
        .expect_err("entry 2 has no =");
    let text = err.to_string();
    assert!(!text.contains("s3cr3t") && !text.contains("t0k3n"), "{text}");
    assert!(text.contains("otlp.headers") && text.contains("OTEL_EXPORTER_OTLP_HEADERS"), "{text}");
    assert!(text.contains("authorization=<redacted>") && text.contains("entry 2"), "{text}");
}

#[test]
fn header_values_never_show_in_the_printed_configuration() {
    let c = DualMetrics::builder()
        .with_env_vars([(
            "OTEL_EXPORTER_OTLP_HEADERS",
            "authorization=Bearer%20s3cr3t,x-tenant=acme",
        )])
        .resolve_config()
        .unwrap();
    assert!(c.otlp.headers.contains(&("authorization".into(), "Bearer s3cr3t".into())));
    let printed = format!("{c:#?}");
    assert!(!printed.contains("s3cr3t") && !printed.contains("acme"), "{printed}");
    assert!(printed.contains("authorization: <redacted>"), "{printed}");
}

#[test]
fn a_duration_beyond_one_day_fails_at_startup_naming_the_key_value_and_range() {
    for (var, key) in [
        ("DUALMETRICS_STATSD_FLUSH_INTERVAL_MS", "statsd.flush_interval_ms"),
        ("DUALMETRICS_OTLP_EXPORT_INTERVAL_MS", "otlp.export_interval_ms"),
        ("DUALMETRICS_OTLP_TIMEOUT_MS", "otlp.timeout_ms"),
        ("DUALMETRICS_OTLP_KEEPALIVE_MS", "otlp.keepalive_ms"),
    ] {
        let err = builder(&[(var, "99999999999999")]).build().unwrap_err().to_string();
        for needle in [key, "99999999999999", "out of range"] {
            assert!(err.contains(needle), "{var}: {err} lacks {needle:?}");
        }
    }
    // keepalive 0 turns the PINGs off; it is no error
    let c = builder(&[("DUALMETRICS_OTLP_KEEPALIVE_MS", "0")]).resolve_config().unwrap();
    assert_eq!(c.otlp.keepalive, None);
}
