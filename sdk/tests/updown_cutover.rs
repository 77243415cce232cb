//! An up-down counter is a level: whenever a pipeline is active for a series it reports the
//! series' true level (the sum of every add ever made, in any mode), and a switch never loses nor
//! double counts an add. Checked against real receivers (StatsD over UDP, OTLP over gRPC).
//!
//! Every step ends with one explicit flush: one StatsD datagram and one OTLP export request. A
//! `marker` counter, pinned to `dual` by a rule so that switches do not move it, is added to before
//! each flush, so each flush's datagram and request exist and can be told apart: "nothing new" on a
//! pipeline is then an exact check on that flush's datagram or request, not a wait for silence.
use std::time::Duration;

use dualmetrics::{DualMetrics, Mode, Rule};
use dualmetrics_testkit::{parse_line, points, OtlpGrpcReceiver, PointValue, StatsdReceiver};

const WAIT: Duration = Duration::from_secs(10);

struct Rig {
    statsd: StatsdReceiver,
    otlp: OtlpGrpcReceiver,
    metrics: DualMetrics,
    marker: dualmetrics::Counter,
    flushes: usize,
    /// Export requests received up to the end of the last flush.
    requests: usize,
}

/// What one flush delivered for one up-down series: its StatsD gauge lines (values) and its OTLP
/// point, if any.
#[derive(Debug, PartialEq)]
struct Delivered {
    statsd: Vec<i64>,
    otlp: Option<i64>,
}

impl Rig {
    fn start(mode: Mode, rules: Vec<Rule>) -> Self {
        let statsd = StatsdReceiver::bind_udp();
        let otlp = OtlpGrpcReceiver::start();
        let mut builder = DualMetrics::builder()
            .ignore_env()
            .with_setting("self_metrics", "false")
            .with_mode(mode)
            .with_statsd_address(&statsd.local_addr().to_string())
            .with_statsd_flush_interval(Duration::from_secs(3600))
            .with_otlp_endpoint(&otlp.endpoint())
            .with_otlp_export_interval(Duration::from_secs(3600))
            .with_rule(Rule::matching("marker").mode(Mode::Dual));
        for rule in rules {
            builder = builder.with_rule(rule);
        }
        let metrics = builder.build().unwrap();
        // Registered before the instruments under test: its line opens each flush's datagram.
        let marker = metrics.counter("marker").build().unwrap();
        Rig { statsd, otlp, metrics, marker, flushes: 0, requests: 0 }
    }

    /// Flushes both pipelines once and returns what that flush delivered for `metric` with tags
    /// `attrs`.
    fn flush(&mut self, metric: &str, attrs: &[(&str, &str)]) -> Delivered {
        self.marker.add(1, &[]);
        let before = self.otlp.request_count();
        self.metrics.flush().unwrap();
        self.flushes += 1;
        // flush() returns once its exports were answered: one, or two when a new cumulative
        // series' zero point (the marker's, at the first flush) went first.
        self.requests = self.otlp.request_count();
        assert!((1..=2).contains(&(self.requests - before)), "one export per flush, or two");
        self.delivered(metric, attrs)
    }

    /// What the last flush delivered for `metric` with tags `attrs`.
    fn delivered(&self, metric: &str, attrs: &[(&str, &str)]) -> Delivered {
        let n = self.flushes;
        let lines = self.statsd.wait_until(WAIT, |lines| {
            lines.iter().filter(|l| parse_line(l).name == "marker").count() >= n
        });
        // The lines of flush `n`: from the n-th marker line, which opens its datagram (the
        // marker is registered first), to the next one.
        let mut markers = 0;
        let statsd = lines
            .iter()
            .map(|l| parse_line(l))
            .filter(|p| {
                if p.name == "marker" {
                    markers += 1;
                }
                markers == n && p.name == metric && attrs.iter().all(|(k, v)| p.tag(k) == Some(*v))
            })
            .map(|p| {
                assert_eq!(p.ty, "g", "{p:?}");
                p.value_f64() as i64
            })
            .collect();
        let received = self.otlp.wait_for_requests(self.requests, WAIT);
        let pts = points(&[received[self.requests - 1].request.clone()]);
        let found: Vec<_> = pts.iter().filter(|p| p.matches(metric, attrs)).collect();
        assert!(found.len() <= 1, "{found:#?}");
        let otlp = found.first().map(|p| match p.value {
            PointValue::Int(v) => v,
            ref other => panic!("an up-down counter exports integers, got {other:?}"),
        });
        if let Some(p) = found.first() {
            assert_eq!(p.kind, dualmetrics_testkit::PointKind::Sum { monotonic: false }, "{p:?}");
            assert_eq!(p.temporality, Some(dualmetrics_testkit::Temporality::Cumulative));
        }
        Delivered { statsd, otlp }
    }
}

fn sent(statsd: &[i64], otlp: Option<i64>) -> Delivered {
    Delivered { statsd: statsd.to_vec(), otlp }
}

#[test]
fn each_pipeline_reports_the_true_level_of_an_up_down_counter_across_switches() {
    let mut rig = Rig::start(Mode::Legacy, vec![]);
    let depth = rig.metrics.up_down_counter("depth").build().unwrap();
    let q = &[("queue", "a")];

    depth.add(5, q);
    assert_eq!(rig.flush("depth", q), sent(&[5], None), "legacy: StatsD only");

    rig.metrics.set_mode(Mode::Dual);
    // StatsD already shows 5 (a gauge keeps its value); OTLP reports the level it never saw added.
    assert_eq!(rig.flush("depth", q), sent(&[], Some(5)), "legacy -> dual");

    depth.add(2, q);
    assert_eq!(rig.flush("depth", q), sent(&[7], Some(7)), "dual: both");

    rig.metrics.set_mode(Mode::Otlp);
    depth.add(3, q);
    assert_eq!(rig.flush("depth", q), sent(&[], Some(10)), "otlp: StatsD receives nothing new");

    rig.metrics.set_mode(Mode::Dual);
    assert_eq!(
        rig.flush("depth", q),
        sent(&[10], Some(10)),
        "otlp -> dual: StatsD gets the level including the adds made in otlp mode"
    );

    rig.metrics.set_mode(Mode::Legacy);
    depth.add(-4, q);
    assert_eq!(rig.flush("depth", q), sent(&[6], None), "legacy: OTLP receives nothing new");
    // Nothing more to send: an idle level is not resent.
    assert_eq!(rig.flush("depth", q), sent(&[], None));
}

#[test]
fn a_bound_up_down_counter_keeps_its_level_through_otlp_and_back() {
    let mut rig = Rig::start(Mode::Dual, vec![]);
    let inflight = rig.metrics.up_down_counter("inflight").build().unwrap().bind(&[]).unwrap();

    inflight.add(4);
    assert_eq!(rig.flush("inflight", &[]), sent(&[4], Some(4)));
    rig.metrics.set_mode(Mode::Otlp);
    inflight.add(-1);
    assert_eq!(rig.flush("inflight", &[]), sent(&[], Some(3)));
    rig.metrics.set_mode(Mode::Legacy);
    inflight.add(-1);
    assert_eq!(rig.flush("inflight", &[]), sent(&[2], None));
}

#[test]
fn pinned_up_down_counters_report_their_level_when_force_mode_moves_them_and_back() {
    // Forcing `dual` keeps the marker in both pipelines, so every flush stays observable.
    let mut rig = Rig::start(
        Mode::Dual,
        vec![
            Rule::matching("pinned.otlp").mode(Mode::Otlp),
            Rule::matching("pinned.legacy").mode(Mode::Legacy),
        ],
    );
    let new_side = rig.metrics.up_down_counter("pinned.otlp").build().unwrap();
    let old_side = rig.metrics.up_down_counter("pinned.legacy").build().unwrap();

    new_side.add(5, &[]);
    old_side.add(50, &[]);
    assert_eq!(rig.flush("pinned.otlp", &[]), sent(&[], Some(5)));
    assert_eq!(rig.delivered("pinned.legacy", &[]), sent(&[50], None));

    rig.metrics.force_mode(Some(Mode::Dual));
    new_side.add(3, &[]);
    assert_eq!(rig.flush("pinned.otlp", &[]), sent(&[8], Some(8)), "StatsD gets the whole level");
    assert_eq!(rig.delivered("pinned.legacy", &[]), sent(&[], Some(50)), "OTLP gets the level");

    rig.metrics.force_mode(None);
    new_side.add(-2, &[]);
    old_side.add(-20, &[]);
    assert_eq!(rig.flush("pinned.otlp", &[]), sent(&[], Some(6)), "back to its pinned otlp");
    assert_eq!(rig.delivered("pinned.legacy", &[]), sent(&[30], None), "back to pinned legacy");

    rig.metrics.force_mode(Some(Mode::Dual));
    assert_eq!(rig.flush("pinned.otlp", &[]), sent(&[6], Some(6)));
    assert_eq!(rig.delivered("pinned.legacy", &[]), sent(&[], Some(30)));
}

#[test]
fn the_overflow_series_of_an_up_down_counter_carries_its_level_across_a_switch() {
    let mut rig = Rig::start(Mode::Legacy, vec![]);
    let users = rig.metrics.up_down_counter("sessions").with_cardinality_limit(1).build().unwrap();
    users.add(1, &[("user", "a")]);
    users.add(2, &[("user", "b")]);
    users.add(3, &[("user", "c")]);
    let overflow = &[("otel.metric.overflow", "true")];
    assert_eq!(rig.flush("sessions", overflow), sent(&[5], None));

    rig.metrics.set_mode(Mode::Otlp);
    users.add(-2, &[("user", "b")]);
    assert_eq!(rig.flush("sessions", overflow), sent(&[], Some(3)));

    rig.metrics.set_mode(Mode::Dual);
    assert_eq!(rig.flush("sessions", overflow), sent(&[3], Some(3)));
    assert_eq!(rig.delivered("sessions", &[("user", "a")]), sent(&[1], Some(1)));
}

#[test]
fn shutdown_exports_the_levels_of_an_up_down_counter_in_otlp_mode() {
    let mut rig = Rig::start(Mode::Legacy, vec![]);
    let depth = rig.metrics.up_down_counter("depth").build().unwrap();
    depth.add(5, &[]);
    assert_eq!(rig.flush("depth", &[]), sent(&[5], None));
    rig.metrics.set_mode(Mode::Otlp);
    depth.add(1, &[]);
    rig.metrics.shutdown(WAIT).unwrap();
    let received = rig.otlp.wait_for_requests(rig.requests + 1, WAIT);
    let pts = points(&[received.last().unwrap().request.clone()]);
    let p = pts.iter().find(|p| p.matches("depth", &[])).expect("the final export has the level");
    assert_eq!(p.value, PointValue::Int(6));
    let statsd: Vec<_> =
        rig.statsd.lines().into_iter().filter(|l| l.starts_with("depth:")).collect();
    assert_eq!(statsd.len(), 1, "the final StatsD flush sends no up-down line: {statsd:?}");
}
