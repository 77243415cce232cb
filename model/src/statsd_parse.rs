//! Parsing StatsD / DogStatsD lines: the inverse of [`crate::statsd_line`]. Pure, no I/O, no
//! allocation: a parsed [`StatsdLine`] borrows from the input.
//!
//! # Grammar
//! ```text
//! packet  = line *("\n" line)            ; "\r\n" is accepted, empty lines are skipped
//! line    = name ":" value *(":" value) "|" type *("|" section)
//! type    = "c" / "g" / "ms" / "h" / "d" / "s"
//! section = "@" rate                     ; 0 < rate <= 1
//!         / "#" tag *("," tag)           ; tag = key [":" value]
//!         / "c:" container-id            ; DogStatsD 1.2
//!         / "T" unix-seconds             ; DogStatsD 1.3
//!         / "e:" external-data / "card:" cardinality   ; DogStatsD 1.4+, skipped
//! ```
//!
//! # Decisions (documented here because the shim and the tests rely on them)
//! - **Values.** Numbers are finite `f64`s (`NaN` and infinities are [`ParseError::BadValue`]).
//!   A gauge value with a leading `+` or `-` is an adjustment ([`Value::Delta`]), as in the
//!   reference daemon; on other types the sign is part of the number. A set value is any
//!   non-empty text ([`Value::Set`]). DogStatsD 1.1 multi-value lines (`k:1:2:3|d`) are accepted
//!   for every type except sets: [`StatsdLine::values`] yields each.
//! - **Section order does not matter.** `k:1|c|#a:b|@0.5` means the same as `k:1|c|@0.5|#a:b`.
//!   (The reference daemon reads the first as tag `a=b0.5` and ignores the rate; the encoder in
//!   [`crate::statsd_line`] always writes the rate first, so both agree on what we send.)
//! - **Tags.** `#flag` (no `:`) is the tag `("flag", "")`; only the first `:` splits key and value
//!   (`a:b:c` is `("a", "b:c")`); empty tags between commas are skipped; more than
//!   [`Parser::max_tags`] tags is [`ParseError::TooManyTags`]. Duplicate keys are kept here; the
//!   consumer decides (the shim keeps the last).
//! - **DogStatsD extensions.** The container id (`|c:`) and timestamp (`|T`) are parsed and
//!   returned; `|e:` and `|card:` are skipped. Any other section is [`ParseError::UnknownSection`].
//!   Events (`_e{`) and service checks (`_sc|`) are [`ParseError::Unsupported`].
//! - **Limits.** A line longer than [`Parser::max_line_len`] bytes is [`ParseError::LineTooLong`];
//!   a line that is not UTF-8 is [`ParseError::NonUtf8`] (other lines of the packet still parse).
//!
//! ```
//! use dualmetrics_model::statsd_parse::{Parser, Value};
//! use dualmetrics_model::statsd_line::StatsdType;
//!
//! let line = Parser::default().parse("api.hits:3|c|@0.5|#env:prod,az:b").unwrap();
//! assert_eq!(line.name, "api.hits");
//! assert_eq!(line.ty, StatsdType::Counter);
//! assert_eq!(line.value, Value::Number(3.0));
//! assert_eq!(line.sample_rate, 0.5);
//! assert_eq!(line.tags().collect::<Vec<_>>(), [("env", "prod"), ("az", "b")]);
//! ```
use crate::statsd_line::StatsdType;
use thiserror::Error;

/// Default for [`Parser::max_tags`].
pub const DEFAULT_MAX_TAGS: usize = 64;
/// Default for [`Parser::max_line_len`] (bytes).
pub const DEFAULT_MAX_LINE_LEN: usize = 16 * 1024;

/// Why a line was refused. [`ParseError::reason`] is the stable label used in telemetry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Error)]
#[non_exhaustive]
pub enum ParseError {
    /// No `:` between name and value, no `|` before the type, or an empty name or value.
    #[error("malformed line: {0}")]
    Malformed(&'static str),
    /// The type is not one of `c g ms h d s`.
    #[error("unknown metric type")]
    UnknownType,
    /// The value is not a finite number (or a set value is empty).
    #[error("bad value")]
    BadValue,
    /// The sample rate is not a number in `(0, 1]`.
    #[error("bad sample rate")]
    BadSampleRate,
    /// The `|T` timestamp is not a whole number of seconds.
    #[error("bad timestamp")]
    BadTimestamp,
    /// The line is not UTF-8.
    #[error("line is not utf-8")]
    NonUtf8,
    /// More tags than the parser's limit.
    #[error("too many tags")]
    TooManyTags,
    /// The line is longer than the parser's limit.
    #[error("line too long")]
    LineTooLong,
    /// A `|` section this parser does not know.
    #[error("unknown section")]
    UnknownSection,
    /// A DogStatsD event or service check: valid, but not a metric.
    #[error("unsupported: events and service checks are not metrics")]
    Unsupported,
}

impl ParseError {
    /// Every reason label, in declaration order (for pre-registering telemetry).
    pub const REASONS: [&'static str; 10] = [
        "malformed",
        "unknown_type",
        "bad_value",
        "bad_sample_rate",
        "bad_timestamp",
        "non_utf8",
        "too_many_tags",
        "line_too_long",
        "unknown_section",
        "unsupported",
    ];

    /// The stable, lowercase reason label (`"bad_value"`, …), one of [`ParseError::REASONS`].
    pub fn reason(self) -> &'static str {
        Self::REASONS[self.index()]
    }

    /// Position of [`ParseError::reason`] in [`ParseError::REASONS`].
    pub fn index(self) -> usize {
        match self {
            ParseError::Malformed(_) => 0,
            ParseError::UnknownType => 1,
            ParseError::BadValue => 2,
            ParseError::BadSampleRate => 3,
            ParseError::BadTimestamp => 4,
            ParseError::NonUtf8 => 5,
            ParseError::TooManyTags => 6,
            ParseError::LineTooLong => 7,
            ParseError::UnknownSection => 8,
            ParseError::Unsupported => 9,
        }
    }
}

/// One value of a line.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Value<'a> {
    /// A number (counter increment, absolute gauge, timer/histogram sample).
    Number(f64),
    /// A signed gauge value: adjust the gauge by this much.
    Delta(f64),
    /// A set member.
    Set(&'a str),
}

/// A parsed line; every `&str` borrows from the input.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct StatsdLine<'a> {
    /// The metric name (not validated beyond being non-empty).
    pub name: &'a str,
    /// The first value.
    pub value: Value<'a>,
    /// The type.
    pub ty: StatsdType,
    /// The sample rate, `1.0` when absent.
    pub sample_rate: f64,
    /// DogStatsD container id (`|c:`), if present.
    pub container_id: Option<&'a str>,
    /// DogStatsD timestamp in unix seconds (`|T`), if present.
    pub timestamp: Option<u64>,
    /// Values after the first (DogStatsD multi-value), `:`-separated, already validated.
    more_values: &'a str,
    /// The raw tag list after `#`, already validated.
    raw_tags: &'a str,
}

impl<'a> StatsdLine<'a> {
    /// Every value of the line: the first, then any DogStatsD multi-values.
    pub fn values(&self) -> impl Iterator<Item = Value<'a>> + 'a {
        let ty = self.ty;
        let rest = self.more_values;
        std::iter::once(self.value).chain(
            rest.split(':')
                .filter(move |_| !rest.is_empty())
                .map(move |v| parse_value(v, ty).unwrap_or(Value::Number(0.0))),
        )
    }

    /// The tags, in the order given. See the module docs for `#flag` and `a:b:c`.
    pub fn tags(&self) -> Tags<'a> {
        Tags { rest: self.raw_tags }
    }

    /// Whether the line has at least one tag.
    pub fn has_tags(&self) -> bool {
        self.tags().next().is_some()
    }
}

/// Iterator over `(key, value)` tags of a line.
#[derive(Debug, Clone)]
pub struct Tags<'a> {
    rest: &'a str,
}

impl<'a> Iterator for Tags<'a> {
    type Item = (&'a str, &'a str);

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            if self.rest.is_empty() {
                return None;
            }
            let (tag, rest) = match self.rest.find(',') {
                Some(i) => (&self.rest[..i], &self.rest[i + 1..]),
                None => (self.rest, ""),
            };
            self.rest = rest;
            if tag.is_empty() {
                continue;
            }
            return Some(match tag.find(':') {
                Some(i) => (&tag[..i], &tag[i + 1..]),
                None => (tag, ""),
            });
        }
    }
}

/// The lines of a packet: split on `\n`, a trailing `\r` removed, empty lines skipped.
pub fn packet_lines(packet: &[u8]) -> impl Iterator<Item = &[u8]> {
    packet
        .split(|b| *b == b'\n')
        .map(|l| l.strip_suffix(b"\r").unwrap_or(l))
        .filter(|l| !l.is_empty())
}

/// A line parser with limits. Cheap to copy; [`Parser::default`] uses the `DEFAULT_*` limits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Parser {
    /// Most tags accepted on one line. Defaults to [`DEFAULT_MAX_TAGS`].
    pub max_tags: usize,
    /// Longest line accepted, in bytes. Defaults to [`DEFAULT_MAX_LINE_LEN`].
    pub max_line_len: usize,
}

impl Default for Parser {
    fn default() -> Self {
        Parser { max_tags: DEFAULT_MAX_TAGS, max_line_len: DEFAULT_MAX_LINE_LEN }
    }
}

impl Parser {
    /// Parses one line given as bytes (checks length, then UTF-8, then [`Parser::parse`]).
    pub fn parse_bytes<'a>(&self, line: &'a [u8]) -> Result<StatsdLine<'a>, ParseError> {
        if line.len() > self.max_line_len {
            return Err(ParseError::LineTooLong);
        }
        let line = std::str::from_utf8(line).map_err(|_| ParseError::NonUtf8)?;
        self.parse(line)
    }

    /// Parses one line (without its newline).
    pub fn parse<'a>(&self, line: &'a str) -> Result<StatsdLine<'a>, ParseError> {
        if line.len() > self.max_line_len {
            return Err(ParseError::LineTooLong);
        }
        if line.starts_with("_e{") || line.starts_with("_sc|") {
            return Err(ParseError::Unsupported);
        }
        let (head, mut sections) = match line.find('|') {
            Some(i) => (&line[..i], &line[i + 1..]),
            None => return Err(ParseError::Malformed("no '|' before the type")),
        };
        let colon = head.find(':').ok_or(ParseError::Malformed("no ':' after the name"))?;
        let name = &head[..colon];
        let value_field = &head[colon + 1..];
        if name.is_empty() {
            return Err(ParseError::Malformed("empty name"));
        }
        if value_field.is_empty() {
            return Err(ParseError::Malformed("empty value"));
        }
        let ty_str = match sections.find('|') {
            Some(i) => {
                let t = &sections[..i];
                sections = &sections[i + 1..];
                t
            }
            None => std::mem::take(&mut sections),
        };
        let ty = match ty_str {
            "c" => StatsdType::Counter,
            "g" => StatsdType::Gauge,
            "ms" => StatsdType::Timer,
            "h" => StatsdType::Histogram,
            "d" => StatsdType::Distribution,
            "s" => StatsdType::Set,
            _ => return Err(ParseError::UnknownType),
        };
        let (first, more_values) = if ty == StatsdType::Set {
            (value_field, "")
        } else {
            match value_field.find(':') {
                Some(i) => (&value_field[..i], &value_field[i + 1..]),
                None => (value_field, ""),
            }
        };
        let value = parse_value(first, ty)?;
        if !more_values.is_empty() {
            for v in more_values.split(':') {
                parse_value(v, ty)?;
            }
        }
        let mut out = StatsdLine {
            name,
            value,
            ty,
            sample_rate: 1.0,
            container_id: None,
            timestamp: None,
            more_values,
            raw_tags: "",
        };
        if sections.is_empty() {
            return Ok(out);
        }
        for section in sections.split('|') {
            let bytes = section.as_bytes();
            match bytes.first() {
                Some(b'@') => {
                    let rate = parse_number(&section[1..]).ok_or(ParseError::BadSampleRate)?;
                    if !(rate > 0.0 && rate <= 1.0) {
                        return Err(ParseError::BadSampleRate);
                    }
                    out.sample_rate = rate;
                }
                Some(b'#') => {
                    let raw = &section[1..];
                    if (Tags { rest: raw }).nth(self.max_tags).is_some() {
                        return Err(ParseError::TooManyTags);
                    }
                    out.raw_tags = raw;
                }
                Some(b'T') => {
                    let ts = &section[1..];
                    if ts.is_empty() || ts.len() > 19 || !ts.bytes().all(|b| b.is_ascii_digit()) {
                        return Err(ParseError::BadTimestamp);
                    }
                    out.timestamp = Some(ts.parse().map_err(|_| ParseError::BadTimestamp)?);
                }
                _ if section.starts_with("c:") => out.container_id = Some(&section[2..]),
                _ if section.starts_with("e:") || section.starts_with("card:") => {}
                _ => return Err(ParseError::UnknownSection),
            }
        }
        Ok(out)
    }
}

fn parse_value(v: &str, ty: StatsdType) -> Result<Value<'_>, ParseError> {
    match ty {
        StatsdType::Set => {
            if v.is_empty() {
                Err(ParseError::BadValue)
            } else {
                Ok(Value::Set(v))
            }
        }
        StatsdType::Gauge if v.starts_with('+') || v.starts_with('-') => {
            parse_number(v).map(Value::Delta).ok_or(ParseError::BadValue)
        }
        _ => parse_number(v).map(Value::Number).ok_or(ParseError::BadValue),
    }
}

/// A finite number; a fast path for short unsigned integers, `str::parse` otherwise.
fn parse_number(s: &str) -> Option<f64> {
    let b = s.as_bytes();
    if !b.is_empty() && b.len() <= 15 && b.iter().all(u8::is_ascii_digit) {
        let mut n: u64 = 0;
        for d in b {
            n = n * 10 + u64::from(d - b'0');
        }
        return Some(n as f64);
    }
    // `str::parse::<f64>` accepts "inf", "NaN" and "infinity": refused by the finiteness check.
    // It also accepts a leading '+', which StatsD gauges use, and exponents, which ryu writes.
    let f: f64 = s.parse().ok()?;
    f.is_finite().then_some(f)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::statsd_line::{series_prefix, tags_suffix, write_line, LineValue};
    use proptest::prelude::*;

    fn p(line: &str) -> Result<StatsdLine<'_>, ParseError> {
        Parser::default().parse(line)
    }

    #[test]
    fn basic_counter() {
        let l = p("a.b:5|c").unwrap();
        assert_eq!(
            (l.name, l.value, l.ty, l.sample_rate),
            ("a.b", Value::Number(5.0), StatsdType::Counter, 1.0)
        );
        assert!(!l.has_tags());
    }

    #[test]
    fn sampled_counter_keeps_rate() {
        assert_eq!(p("a:1|c|@0.1").unwrap().sample_rate, 0.1);
    }

    #[test]
    fn signed_gauge_is_a_delta() {
        assert_eq!(p("g:+4|g").unwrap().value, Value::Delta(4.0));
        assert_eq!(p("g:-4.5|g").unwrap().value, Value::Delta(-4.5));
        assert_eq!(p("g:4|g").unwrap().value, Value::Number(4.0));
    }

    #[test]
    fn negative_counter_is_a_number() {
        assert_eq!(p("c:-2|c").unwrap().value, Value::Number(-2.0));
    }

    #[test]
    fn all_types_parse() {
        for (code, ty) in [
            ("c", StatsdType::Counter),
            ("g", StatsdType::Gauge),
            ("ms", StatsdType::Timer),
            ("h", StatsdType::Histogram),
            ("d", StatsdType::Distribution),
            ("s", StatsdType::Set),
        ] {
            assert_eq!(p(&format!("k:1|{code}")).unwrap().ty, ty);
        }
    }

    #[test]
    fn set_value_is_text() {
        assert_eq!(p("u:alice|s").unwrap().value, Value::Set("alice"));
        assert_eq!(p("u:a:b|s").unwrap().value, Value::Set("a:b"));
    }

    #[test]
    fn tags_in_any_order_with_rate() {
        let l = p("k:1|c|#a:b,flag,x:y:z|@0.5").unwrap();
        assert_eq!(l.sample_rate, 0.5);
        assert_eq!(l.tags().collect::<Vec<_>>(), [("a", "b"), ("flag", ""), ("x", "y:z")]);
    }

    #[test]
    fn dogstatsd_extensions_are_parsed() {
        let l = p("k:1|c|#a:b|c:abc123|T1700000000|e:it-false,cn-x|card:low").unwrap();
        assert_eq!(l.container_id, Some("abc123"));
        assert_eq!(l.timestamp, Some(1_700_000_000));
    }

    #[test]
    fn multi_value_line_yields_each_value() {
        let l = p("k:1:2.5:3|d").unwrap();
        assert_eq!(
            l.values().collect::<Vec<_>>(),
            [Value::Number(1.0), Value::Number(2.5), Value::Number(3.0)]
        );
        assert_eq!(p("k:1::3|d"), Err(ParseError::BadValue));
    }

    #[test]
    fn errors_by_reason() {
        assert_eq!(p("nocolon|c"), Err(ParseError::Malformed("no ':' after the name")));
        assert!(matches!(p("k:1"), Err(ParseError::Malformed(_))));
        assert!(matches!(p(":1|c"), Err(ParseError::Malformed(_))));
        assert!(matches!(p("k:|c"), Err(ParseError::Malformed(_))));
        assert_eq!(p("k:1|x"), Err(ParseError::UnknownType));
        assert_eq!(p("k:1|"), Err(ParseError::UnknownType));
        assert_eq!(p("k:abc|c"), Err(ParseError::BadValue));
        assert_eq!(p("k:NaN|g"), Err(ParseError::BadValue));
        assert_eq!(p("k:inf|ms"), Err(ParseError::BadValue));
        assert_eq!(p("k:1|c|@0"), Err(ParseError::BadSampleRate));
        assert_eq!(p("k:1|c|@1.5"), Err(ParseError::BadSampleRate));
        assert_eq!(p("k:1|c|@x"), Err(ParseError::BadSampleRate));
        assert_eq!(p("k:1|c|Tx"), Err(ParseError::BadTimestamp));
        assert_eq!(p("k:1|c|zz"), Err(ParseError::UnknownSection));
        assert_eq!(p("_e{5,4}:title|text"), Err(ParseError::Unsupported));
        assert_eq!(p("_sc|name|0"), Err(ParseError::Unsupported));
        assert_eq!(Parser::default().parse_bytes(b"k:1|c|#a:\xff"), Err(ParseError::NonUtf8));
    }

    #[test]
    fn limits_are_enforced() {
        let parser = Parser { max_tags: 2, max_line_len: 32 };
        assert!(parser.parse("k:1|c|#a,b").is_ok());
        assert_eq!(parser.parse("k:1|c|#a,b,c"), Err(ParseError::TooManyTags));
        assert_eq!(
            parser.parse(&format!("k:1|c|#{}", "a".repeat(40))),
            Err(ParseError::LineTooLong)
        );
    }

    #[test]
    fn packet_lines_skip_empty_and_strip_cr() {
        let lines: Vec<_> = packet_lines(b"a:1|c\r\n\nb:2|g\n").collect();
        assert_eq!(lines, [&b"a:1|c"[..], b"b:2|g"]);
    }

    #[test]
    fn reasons_match_indices() {
        assert_eq!(ParseError::BadValue.reason(), "bad_value");
        assert_eq!(ParseError::Unsupported.reason(), "unsupported");
        assert_eq!(ParseError::Malformed("x").reason(), "malformed");
    }

    fn ty_strategy() -> impl Strategy<Value = StatsdType> {
        prop_oneof![
            Just(StatsdType::Counter),
            Just(StatsdType::Gauge),
            Just(StatsdType::Timer),
            Just(StatsdType::Histogram),
            Just(StatsdType::Distribution),
        ]
    }

    proptest! {
        /// Whatever the encoder writes, the parser reads back: name, value, type, rate, tags.
        #[test]
        fn round_trip_against_the_encoder(
            name in "[a-z][a-z0-9_.-]{0,20}",
            ty in ty_strategy(),
            int in -(1i64 << 52)..(1i64 << 52),
            float in -1e12f64..1e12,
            use_float in any::<bool>(),
            rate in prop::option::of(0.001f64..1.0),
            tags in prop::collection::vec(("[a-z_][a-z0-9_.-]{0,8}", "[ -~]{0,12}"), 0..5),
        ) {
            let value = if use_float { LineValue::Float(float) } else { LineValue::Int(int) };
            let prefix = series_prefix("", &name);
            let suffix = tags_suffix(tags.iter().map(|(k, v)| (k.as_str(), v.as_str())));
            let mut out = String::new();
            write_line(&mut out, &prefix, value, ty, rate, &suffix);
            let lines: Vec<_> = packet_lines(out.as_bytes()).collect();
            let last = Parser::default().parse_bytes(lines.last().unwrap()).unwrap();
            prop_assert_eq!(last.name, name.as_str());
            prop_assert_eq!(last.ty, ty);
            let expected = match value { LineValue::Int(v) => v as f64, LineValue::Float(v) => v, LineValue::Uint(v) => v as f64 };
            let got = match last.value { Value::Number(v) | Value::Delta(v) => v, Value::Set(_) => f64::NAN };
            prop_assert_eq!(got, expected);
            if ty == StatsdType::Gauge && expected < 0.0 {
                // the encoder resets to zero, then adjusts
                prop_assert_eq!(lines.len(), 2);
                prop_assert_eq!(last.value, Value::Delta(expected));
                prop_assert_eq!(Parser::default().parse_bytes(lines[0]).unwrap().value, Value::Number(0.0));
            }
            prop_assert_eq!(last.sample_rate, rate.filter(|r| *r < 1.0).unwrap_or(1.0));
            let parsed: Vec<_> = last.tags().collect();
            prop_assert_eq!(parsed.len(), tags.len());
            for ((k, v), (pk, pv)) in tags.iter().zip(parsed) {
                prop_assert_eq!(k.as_str(), pk);
                let mut sanitised = String::new();
                crate::naming::push_statsd_tag_value(&mut sanitised, v);
                prop_assert_eq!(sanitised.as_str(), pv);
            }
        }

        /// Arbitrary bytes never panic, and every accepted line has a non-empty name.
        #[test]
        fn arbitrary_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..256)) {
            for line in packet_lines(&bytes) {
                if let Ok(l) = Parser::default().parse_bytes(line) {
                    prop_assert!(!l.name.is_empty());
                    let _ = l.values().count();
                    let _ = l.tags().count();
                }
            }
        }
    }
}
