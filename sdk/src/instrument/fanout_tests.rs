//! The fan-out, proved on the in-memory and no-op pipelines: which pipeline gets what in each
//! mode, across switches, past the cardinality limit, and after a close.
use std::sync::Arc;

use dualmetrics_model::statsd_line::StatsdType;
use dualmetrics_model::MetricKind;

use super::{AnyCore, Context, Core, CounterSpec, HistogramSpec, KindSpec, Spec, UpDownSpec};
use crate::backend::memory::{InMemory, Recorded};
use crate::backend::noop::Noop;
use crate::backend::Pipeline;
use crate::config::Temporality;
use crate::cutover::{LEGACY_BIT, OTLP_BIT};
use crate::telemetry::Telemetry;

const DUAL: u8 = LEGACY_BIT | OTLP_BIT;

fn spec(name: &str, kind: MetricKind, cardinality_limit: usize) -> Spec {
    Spec {
        name: name.into(),
        description: String::new(),
        unit: String::new(),
        kind,
        statsd_name: name.into(),
        otel_name: name.into(),
        statsd_type: StatsdType::Counter,
        millis_factor: None,
        cardinality_limit,
        cumulative_series_warning: 0,
        temporality: Temporality::Cumulative,
        boundaries: None,
        statsd_sample_rate: 1.0,
    }
}

fn core<K: KindSpec, L: Pipeline<K>, N: Pipeline<K>>(
    legacy: L,
    new: N,
    name: &str,
    bits: u8,
    limit: usize,
) -> Core<K, L, N> {
    let ctx = Arc::new(Context { legacy, new, telemetry: Arc::new(Telemetry::default()) });
    Core::new(spec(name, K::KIND, limit), bits, ctx)
}

/// Emits as a handle does: admitted by the mode, then fanned out to the series of `tags`.
fn emit<K: KindSpec, L: Pipeline<K>, N: Pipeline<K>>(
    core: &Core<K, L, N>,
    value: K::Value,
    tags: &[(&str, &str)],
) {
    if let Some(mode) = core.admit(true) {
        core.with_series(tags, |s, seen| core.record(s, mode, value, seen));
    }
}

#[test]
fn each_pipeline_gets_the_adds_made_while_the_mode_includes_it() {
    let c = core::<CounterSpec, _, _>(
        InMemory::default(),
        InMemory::default(),
        "jobs",
        LEGACY_BIT,
        100,
    );
    let tags = [("queue", "a")];
    emit(&c, 5, &tags);
    c.set_mode_bits(DUAL);
    emit(&c, 3, &tags);
    c.set_mode_bits(OTLP_BIT);
    emit(&c, 2, &tags);

    let legacy = &c.ctx.legacy;
    let new = &c.ctx.new;
    assert_eq!(legacy.get("jobs", &tags), Some(Recorded::Counter(8)));
    assert_eq!(new.get("jobs", &tags), Some(Recorded::Counter(5)));
}

#[test]
fn an_up_down_level_is_kept_by_every_pipeline_in_every_mode() {
    let c = core::<UpDownSpec, _, _>(
        InMemory::default(),
        InMemory::default(),
        "in_flight",
        LEGACY_BIT,
        100,
    );
    emit(&c, 5, &[]);
    c.set_mode_bits(OTLP_BIT);
    emit(&c, -2, &[]);
    // The new pipeline was off for the first add, and still reports the whole level.
    assert_eq!(c.ctx.new.get("in_flight", &[]), Some(Recorded::UpDown(3)));
    assert_eq!(c.ctx.legacy.get("in_flight", &[]), Some(Recorded::UpDown(3)));
}

#[test]
fn a_noop_pipeline_leaves_the_other_one_every_value() {
    let c = core::<HistogramSpec, _, _>(Noop, InMemory::default(), "latency", DUAL, 100);
    emit(&c, 1.5, &[("route", "/")]);
    emit(&c, 2.5, &[("route", "/")]);
    emit(&c, 7.0, &[("route", "/x")]);
    let points = c.ctx.new.snapshot();
    assert_eq!(points.len(), 2);
    assert_eq!(points[0].tags, vec![("route".to_owned(), "/".to_owned())]);
    assert_eq!(points[0].value, Recorded::Histogram(vec![1.5, 2.5]));
    assert_eq!(points[1].value, Recorded::Histogram(vec![7.0]));
}

#[test]
fn tag_sets_past_the_limit_go_to_the_overflow_series_of_both_pipelines() {
    let c = core::<CounterSpec, _, _>(InMemory::default(), InMemory::default(), "hits", DUAL, 2);
    for user in ["u1", "u2", "u3", "u4"] {
        emit(&c, 1, &[("user", user)]);
    }
    let overflow = [(super::OVERFLOW_TAG, "true")];
    for pipeline in [&c.ctx.legacy, &c.ctx.new] {
        assert_eq!(pipeline.get("hits", &[("user", "u1")]), Some(Recorded::Counter(1)));
        assert_eq!(pipeline.get("hits", &[("user", "u3")]), None);
        assert_eq!(pipeline.get("hits", &overflow), Some(Recorded::Counter(2)));
    }
    assert_eq!(c.series_count(), 3);
    assert_eq!(c.ctx.telemetry.snapshot().cardinality_overflow, 2);
}

#[test]
fn a_closed_instrument_records_nothing_and_counts_what_arrived() {
    let c = core::<CounterSpec, _, _>(InMemory::default(), InMemory::default(), "late", DUAL, 100);
    emit(&c, 1, &[]);
    c.close();
    emit(&c, 10, &[]);
    c.set_mode_bits(DUAL); // a switch after the close does not reopen it
    emit(&c, 100, &[]);
    assert_eq!(c.ctx.legacy.get("late", &[]), Some(Recorded::Counter(1)));
    assert_eq!(c.ctx.new.get("late", &[]), Some(Recorded::Counter(1)));
    assert_eq!(c.ctx.telemetry.snapshot().dropped_after_shutdown, 2);
}

#[test]
fn a_pipeline_never_on_has_no_series() {
    let c =
        core::<CounterSpec, _, _>(InMemory::default(), InMemory::default(), "old", LEGACY_BIT, 100);
    emit(&c, 4, &[("a", "b")]);
    assert!(c.ctx.new.snapshot().is_empty());
    assert_eq!(c.ctx.legacy.snapshot().len(), 1);
}
