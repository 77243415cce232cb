//! Fuzz target: arbitrary bytes (as UTF-8) through the Graphite target parser, and every target
//! that parses through the translator.
//! Invariants: no panic, no stack overflow; an error's position lies inside the target; the
//! canonical text of a parsed target parses again to the same canonical text; a translation's
//! PromQL (when there is one) was accepted by `promql-parser` (the translator checks it and
//! returns `InvalidPromql` otherwise, which fails here).
#![no_main]
use dualmetrics_port::{graphite, translate, Context, TranslateError};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(s) = std::str::from_utf8(data) else { return };
    match graphite::parse(s) {
        Err(e) => assert!(e.pos <= s.len()),
        Ok(e) => {
            let printed = e.to_string();
            let again = graphite::parse(&printed).expect("canonical text parses");
            assert_eq!(again.to_string(), printed);
            let ctx = Context::default();
            if let Err(TranslateError::InvalidPromql { promql, message }) = translate(s, &ctx) {
                panic!("generated PromQL does not parse: {promql}: {message}");
            }
        }
    }
});
