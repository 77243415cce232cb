//! Fuzz target: arbitrary bytes as StatsD packets through the shim's parse + aggregate stage and
//! its flush, with small limits so the overflow, series-limit and set-limit paths are reached.
//! Invariants: no panic (overflow checks on with `cargo fuzz run -a`), and every flushed value
//! is a finite number.
#![no_main]
use dualmetrics_model::statsd_parse::Parser;
use dualmetrics_shim::aggregate::{Aggregator, ViewValue};
use dualmetrics_shim::config::AggregateConfig;
use dualmetrics_shim::{process_packet, Telemetry};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let cfg = AggregateConfig {
        max_series: 64,
        max_series_per_metric: 8,
        max_set_size: 16,
        max_set_members_total: 32,
        zero_hold_ms: 0,
        ..Default::default()
    };
    let tel = Telemetry::default();
    let mut agg = Aggregator::new(cfg, 1_000);
    let parser = Parser { max_tags: 8, max_line_len: 512 };
    // the input as two intervals: the first half, a flush, the second half, a flush
    let (a, b) = data.split_at(data.len() / 2);
    for (i, part) in [a, b].into_iter().enumerate() {
        process_packet(part, &parser, &mut agg, &tel);
        agg.flush(2_000 + i as u64 * 1_000, &tel, |view| match view.value {
            ViewValue::Counter(v) | ViewValue::Gauge(v) => {
                assert!(v.is_finite(), "{} flushed {v}", view.name)
            }
            ViewValue::Hist(h) => {
                let _ = format!("{h:?}");
            }
            ViewValue::SetCount(_) => {}
        });
    }
});
