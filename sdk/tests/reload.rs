//! Reload without restart: `reload()`, the file watch and SIGHUP change modes on the wire with
//! exact counts; an invalid file keeps the last good configuration and is counted.
use std::path::Path;
use std::time::{Duration, Instant};

use dualmetrics::{DualMetrics, Mode};
use dualmetrics_testkit::{latest, Peers, PointValue};

const WAIT: Duration = Duration::from_secs(10);
const QUIET: Duration = Duration::from_millis(300);

/// Both receivers and a directory holding the configuration file.
struct Fixture {
    peers: Peers,
    dir: tempfile::TempDir,
}

impl std::ops::Deref for Fixture {
    type Target = Peers;
    fn deref(&self) -> &Peers {
        &self.peers
    }
}

impl Fixture {
    fn start(toml: &str) -> Self {
        let fixture = Fixture { peers: Peers::start(), dir: tempfile::tempdir().unwrap() };
        fixture.write(toml);
        fixture
    }

    fn path(&self) -> std::path::PathBuf {
        self.dir.path().join("dualmetrics.toml")
    }

    /// Replaces the file atomically, as the documentation asks.
    fn write(&self, toml: &str) {
        write_atomically(&self.path(), toml);
    }

    fn builder(&self) -> dualmetrics::DualMetricsBuilder {
        DualMetrics::builder()
            .ignore_env()
            .with_config_file(self.path())
            // Exact line and catalog assertions: no dualmetrics.sdk.* metrics.
            .with_setting("self_metrics", "false")
            .with_statsd_address(&self.statsd_address())
            .with_statsd_flush_interval(Duration::from_secs(3600))
            .with_otlp_endpoint(&self.otlp_endpoint())
            .with_otlp_export_interval(Duration::from_secs(3600))
    }
}

fn write_atomically(path: &Path, text: &str) {
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, text).unwrap();
    std::fs::rename(&tmp, path).unwrap();
}

fn rule(mode: &str) -> String {
    format!(
        "[default]\nmode = \"dual\"\n\n[[default.rules]]\nmatch = \"pay.*\"\nmode = \"{mode}\"\n"
    )
}

fn wait_until(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + WAIT;
    while !done() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(10));
    }
}

fn otlp_value(peers: &Fixture, name: &str) -> PointValue {
    let points = peers.otlp.wait_for(WAIT, |p| latest(p, name, &[]).is_some());
    latest(&points, name, &[]).unwrap().value.clone()
}

#[test]
fn reload_applies_a_rewritten_rule_mode_with_exact_counts_before_and_after() {
    let peers = Fixture::start(&rule("legacy"));
    let metrics = peers.builder().build().unwrap();
    let pay = metrics.counter("pay.ok").build().unwrap().bind(&[]).unwrap();
    let other = metrics.counter("other").build().unwrap().bind(&[]).unwrap();

    pay.add(3);
    other.add(1);
    metrics.flush().unwrap();
    peers.statsd.wait_for_lines(2, WAIT);

    peers.write(&rule("otlp"));
    let outcome = metrics.reload().unwrap();
    assert_eq!((outcome.instruments, outcome.mode_changes), (2, 1), "{outcome:?}");
    assert!(outcome.needs_restart.is_empty(), "{outcome:?}");
    pay.add(5);
    other.add(10);
    metrics.flush().unwrap();

    assert_eq!(otlp_value(&peers, "pay.ok"), PointValue::Int(5), "only the after-reload emits");
    assert_eq!(otlp_value(&peers, "other"), PointValue::Int(11));
    peers.statsd.wait_until(WAIT, |l| l.len() >= 3);
    peers.statsd.quiet(QUIET);
    assert_eq!(peers.statsd_total("pay.ok"), 3.0, "only the before-reload emits");
    assert_eq!(peers.statsd_total("other"), 11.0);
    assert_eq!(metrics.telemetry().reloads_ok, 1);
    let catalog = metrics.catalog();
    assert_eq!(catalog.instruments.iter().find(|e| e.name == "pay.ok").unwrap().mode, "otlp");
}

#[test]
fn file_watch_reloads_without_a_reload_call() {
    let peers = Fixture::start(&rule("legacy"));
    let metrics = peers
        .builder()
        .watch_config(true)
        .with_setting("reload.poll_interval_ms", "20")
        .build()
        .unwrap();
    let pay = metrics.counter("pay.ok").build().unwrap().bind(&[]).unwrap();
    pay.add(2);
    metrics.flush().unwrap();
    assert_eq!(peers.statsd.wait_for_lines(1, WAIT), ["pay.ok:2|c|#service:unknown_service"]);

    peers.write(&rule("otlp"));
    wait_until("the watch to reload", || metrics.telemetry().reloads_ok == 1);
    pay.add(7);
    metrics.flush().unwrap();
    assert_eq!(otlp_value(&peers, "pay.ok"), PointValue::Int(7));
    assert_eq!(peers.statsd.quiet(QUIET).len(), 1, "nothing more on StatsD");
}

#[cfg(unix)]
#[test]
fn sighup_reloads_when_enabled() {
    let peers = Fixture::start(&rule("legacy"));
    // The handler is installed by build(), before the signal is raised.
    let metrics = peers.builder().reload_on_sighup().build().unwrap();
    let pay = metrics.counter("pay.ok").build().unwrap().bind(&[]).unwrap();
    peers.write(&rule("otlp"));
    assert_eq!(metrics.telemetry().reloads_ok, 0, "writing the file alone does nothing");
    signal_hook::low_level::raise(signal_hook::consts::SIGHUP).unwrap();
    wait_until("SIGHUP to reload", || metrics.telemetry().reloads_ok == 1);
    pay.add(4);
    metrics.flush().unwrap();
    assert_eq!(otlp_value(&peers, "pay.ok"), PointValue::Int(4));
    assert!(peers.statsd.quiet(QUIET).is_empty());
}

#[test]
fn invalid_file_keeps_the_last_good_configuration_and_counts_the_failure() {
    let peers = Fixture::start(&rule("legacy"));
    let metrics = peers.builder().build().unwrap();
    let pay = metrics.counter("pay.ok").build().unwrap().bind(&[]).unwrap();

    peers.write("[default\nmode = ");
    let err = metrics.reload().unwrap_err();
    assert!(err.to_string().contains("dualmetrics.toml"), "{err}");

    peers.write(&rule("sideways"));
    let err = metrics.reload().unwrap_err();
    let msg = err.to_string();
    assert!(msg.contains("rules[0].mode") && msg.contains("sideways"), "{msg}");

    let t = metrics.telemetry();
    assert_eq!((t.reloads_ok, t.reloads_failed), (0, 2));
    assert_eq!(t.last_reload_error.as_deref(), Some(msg.as_str()));

    pay.add(6);
    metrics.flush().unwrap();
    assert_eq!(peers.statsd.wait_for_lines(1, WAIT), ["pay.ok:6|c|#service:unknown_service"]);
    assert!(peers.otlp.points().is_empty(), "still legacy-only: {:?}", peers.otlp.points());
}

#[test]
fn set_mode_outranks_the_file_across_reloads_but_pins_follow_the_file() {
    let peers = Fixture::start(&rule("legacy"));
    let metrics = peers.builder().build().unwrap();
    let pay = metrics.counter("pay.ok").build().unwrap().bind(&[]).unwrap();
    let other = metrics.counter("other").build().unwrap().bind(&[]).unwrap();
    metrics.set_mode(Mode::Legacy); // the emergency rollback

    // The file now says otlp globally and dual for pay.*.
    peers.write(
        "[default]\nmode = \"otlp\"\n[[default.rules]]\nmatch = \"pay.*\"\nmode = \"dual\"\n",
    );
    metrics.reload().unwrap();
    assert_eq!(metrics.mode(), Mode::Legacy);
    other.add(1);
    pay.add(2);
    metrics.flush().unwrap();
    let mut lines = peers.statsd.wait_for_lines(2, WAIT);
    lines.sort();
    assert_eq!(
        lines,
        ["other:1|c|#service:unknown_service", "pay.ok:2|c|#service:unknown_service"]
    );
    assert_eq!(otlp_value(&peers, "pay.ok"), PointValue::Int(2));
    assert!(latest(&peers.otlp.points(), "other", &[]).is_none());
}

#[test]
fn reload_reports_settings_that_need_a_restart_and_new_instruments_get_new_rules() {
    let peers = Fixture::start(&rule("legacy"));
    let metrics = peers.builder().build().unwrap();
    let _pay = metrics.counter("pay.ok").build().unwrap();
    peers.write(
        "[default.statsd]\nprefix = \"p\"\n[[default.rules]]\nmatch = \"pay.*\"\notel_name = \"payments\"\n",
    );
    let outcome = metrics.reload().unwrap();
    assert_eq!(outcome.needs_restart, ["statsd", "rules: pay.ok"]);
    let late = metrics.counter("pay.late").build().unwrap();
    late.add(1, &[]);
    metrics.flush().unwrap();
    assert_eq!(otlp_value(&peers, "payments"), PointValue::Int(1));
    let catalog = metrics.catalog();
    let entry = catalog.instruments.iter().find(|e| e.name == "pay.late").unwrap();
    assert_eq!(
        (entry.otel_name.as_deref().unwrap(), entry.statsd_name.as_deref().unwrap()),
        ("payments", "pay.late")
    );
}

#[test]
fn watching_without_a_configuration_file_is_a_build_error_naming_the_key() {
    let err = DualMetrics::builder()
        .ignore_env()
        // Exact line sets: no `dualmetrics.sdk.*` self-metrics.
        .with_setting("self_metrics", "false")
        .with_config_toml("inline", "[default]\nmode = \"dual\"\n")
        .watch_config(true)
        .build()
        .unwrap_err();
    match err {
        dualmetrics::BuildError::Config(e) => assert_eq!(e.key, "reload.watch", "{e}"),
        other => panic!("{other:?}"),
    }
}

#[test]
fn reload_watch_and_interval_are_read_from_the_file_and_the_environment() {
    let peers = Fixture::start("[default.reload]\nwatch = true\npoll_interval_ms = 250\n");
    let config = peers.builder().resolve_config().unwrap();
    assert!(config.reload.watch);
    assert_eq!(config.reload.poll_interval, Duration::from_millis(250));
    let config = DualMetrics::builder()
        .with_env_vars([
            ("DUALMETRICS_RELOAD_WATCH", "true"),
            ("DUALMETRICS_RELOAD_POLL_INTERVAL_MS", "40"),
        ])
        .resolve_config()
        .unwrap();
    assert!(config.reload.watch);
    assert_eq!(config.reload.poll_interval, Duration::from_millis(40));
    let bad = peers.dir.path().join("bad.toml");
    std::fs::write(&bad, "[default.reload]\nwatch = \"often\"\n").unwrap();
    let err = DualMetrics::builder()
        .ignore_env()
        // Exact line sets: no `dualmetrics.sdk.*` self-metrics.
        .with_setting("self_metrics", "false")
        .with_config_file(&bad)
        .resolve_config()
        .unwrap_err();
    assert!(err.to_string().contains("reload.watch") && err.to_string().contains("often"), "{err}");
}

/// A reload holds the instrument list while it waits to write the configuration; the catalog
/// (and every other reader) takes the two in the same order, so reloading and reading the
/// catalog from two threads at once finishes (it could deadlock while the catalog took the
/// configuration first).
#[test]
fn reloads_and_catalog_reads_on_two_threads_both_finish() {
    let peers = Fixture::start(&rule("legacy"));
    let metrics = std::sync::Arc::new(peers.builder().build().unwrap());
    for i in 0..20 {
        metrics.counter(&format!("pay.c{i}")).build().unwrap().add(1, &[]);
    }
    let (done_tx, done_rx) = std::sync::mpsc::channel();
    let reloader = {
        let (metrics, done_tx) = (std::sync::Arc::clone(&metrics), done_tx.clone());
        std::thread::spawn(move || {
            for _ in 0..300 {
                metrics.reload().unwrap();
            }
            done_tx.send("reloads").unwrap();
        })
    };
    let reader = {
        let metrics = std::sync::Arc::clone(&metrics);
        std::thread::spawn(move || {
            for _ in 0..300 {
                assert_eq!(metrics.catalog().instruments.len(), 20);
            }
            done_tx.send("catalog reads").unwrap();
        })
    };
    for _ in 0..2 {
        let finished = done_rx.recv_timeout(Duration::from_secs(60));
        assert!(finished.is_ok(), "a thread is stuck: reload and catalog deadlocked");
    }
    reloader.join().unwrap();
    reader.join().unwrap();
}
