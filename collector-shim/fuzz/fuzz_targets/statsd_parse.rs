//! Fuzz target: arbitrary bytes as a StatsD packet through `dualmetrics_model::statsd_parse`.
//! Invariants: no panic; an accepted line has a non-empty name, a sample rate in (0, 1], finite
//! numeric values, at most `max_tags` tags, and borrows only from its input line.
#![no_main]
use dualmetrics_model::statsd_parse::{packet_lines, Parser, Value};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let parser = Parser { max_tags: 8, max_line_len: 512 };
    for line in packet_lines(data) {
        if let Ok(l) = parser.parse_bytes(line) {
            assert!(!l.name.is_empty());
            assert!(l.sample_rate > 0.0 && l.sample_rate <= 1.0);
            for v in l.values() {
                if let Value::Number(n) | Value::Delta(n) = v {
                    assert!(n.is_finite());
                }
            }
            assert!(l.tags().count() <= 8);
        }
    }
});
