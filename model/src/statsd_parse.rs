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
use memchr::{memchr, memchr_iter};
use thiserror::Error;

/// Default for [`Parser::max_tags`].
pub const DEFAULT_MAX_TAGS: usize = 64;
/// The smallest sample rate accepted (`@0.000001`): a line then stands for at most a million
/// events. Below it (`@1e-300`) the weight `1/rate` overflows every count, so the line is a
/// `bad_sample_rate`.
pub const MIN_SAMPLE_RATE: f64 = 1e-6;
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
        // single-value lines (the common case) never build the `split`
        let more = (!rest.is_empty()).then(|| rest.split(':'));
        std::iter::once(self.value).chain(
            more.into_iter()
                .flatten()
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
            let (tag, rest) = match find_byte(b',', self.rest.as_bytes()) {
                Some(i) => (&self.rest[..i], &self.rest[i + 1..]),
                None => (self.rest, ""),
            };
            self.rest = rest;
            if tag.is_empty() {
                continue;
            }
            return Some(match find_byte(b':', tag.as_bytes()) {
                Some(i) => (&tag[..i], &tag[i + 1..]),
                None => (tag, ""),
            });
        }
    }
}

/// The lines of a packet: split on `\n`, a trailing `\r` removed, empty lines skipped.
pub fn packet_lines(packet: &[u8]) -> impl Iterator<Item = &[u8]> {
    PacketLines { rest: packet }
}

/// [`packet_lines`]: `memchr` for the newlines.
struct PacketLines<'a> {
    rest: &'a [u8],
}

impl<'a> Iterator for PacketLines<'a> {
    type Item = &'a [u8];

    fn next(&mut self) -> Option<&'a [u8]> {
        while !self.rest.is_empty() {
            let line = match memchr(b'\n', self.rest) {
                Some(i) => {
                    let line = &self.rest[..i];
                    self.rest = &self.rest[i + 1..];
                    line
                }
                None => std::mem::take(&mut self.rest),
            };
            let line = line.strip_suffix(b"\r").unwrap_or(line);
            if !line.is_empty() {
                return Some(line);
            }
        }
        None
    }
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

/// Position of the first `b` in `hay`: a plain loop for the short fields of a line (where
/// `memchr`'s dispatch costs more than it saves), `memchr` for longer ones.
#[inline]
fn find_byte(b: u8, hay: &[u8]) -> Option<usize> {
    if hay.len() < 32 {
        hay.iter().position(|&c| c == b)
    } else {
        memchr(b, hay)
    }
}

/// Splits `s` at the first `b` (an ASCII byte, so both halves are `str`s): before, after.
#[inline]
fn split_once_byte(s: &str, b: u8) -> Option<(&str, &str)> {
    let i = find_byte(b, s.as_bytes())?;
    Some((&s[..i], &s[i + 1..]))
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

    /// Parses one line (without its newline). Byte-level: every separator is ASCII, found
    /// with `memchr` (or a plain loop on short fields); the line is read left to right once
    /// (plus once per tag list to count its commas).
    pub fn parse<'a>(&self, line: &'a str) -> Result<StatsdLine<'a>, ParseError> {
        let bytes = line.as_bytes();
        if bytes.len() > self.max_line_len {
            return Err(ParseError::LineTooLong);
        }
        if bytes.starts_with(b"_e{") || bytes.starts_with(b"_sc|") {
            return Err(ParseError::Unsupported);
        }
        let (head, sections) =
            split_once_byte(line, b'|').ok_or(ParseError::Malformed("no '|' before the type"))?;
        let (name, value_field) =
            split_once_byte(head, b':').ok_or(ParseError::Malformed("no ':' after the name"))?;
        if name.is_empty() {
            return Err(ParseError::Malformed("empty name"));
        }
        if value_field.is_empty() {
            return Err(ParseError::Malformed("empty value"));
        }
        let (ty_str, sections) = split_once_byte(sections, b'|').unwrap_or((sections, ""));
        let ty = match ty_str.as_bytes() {
            b"c" => StatsdType::Counter,
            b"g" => StatsdType::Gauge,
            b"ms" => StatsdType::Timer,
            b"h" => StatsdType::Histogram,
            b"d" => StatsdType::Distribution,
            b"s" => StatsdType::Set,
            _ => return Err(ParseError::UnknownType),
        };
        let (first, more_values) = if ty == StatsdType::Set {
            (value_field, "")
        } else {
            split_once_byte(value_field, b':').unwrap_or((value_field, ""))
        };
        let value = parse_value(first, ty)?;
        if !more_values.is_empty() {
            let mut rest = more_values;
            loop {
                match split_once_byte(rest, b':') {
                    Some((v, r)) => {
                        parse_value(v, ty)?;
                        rest = r;
                    }
                    None => {
                        parse_value(rest, ty)?;
                        break;
                    }
                }
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
        let mut rest = sections;
        loop {
            let (section, next) = match split_once_byte(rest, b'|') {
                Some((s, r)) => (s, Some(r)),
                None => (rest, None),
            };
            self.section(section, &mut out)?;
            match next {
                Some(r) => rest = r,
                None => return Ok(out),
            }
        }
    }

    /// Reads one `|` section into `out`.
    #[inline]
    fn section<'a>(&self, section: &'a str, out: &mut StatsdLine<'a>) -> Result<(), ParseError> {
        match section.as_bytes().first() {
            Some(b'@') => {
                let rate = parse_number(&section[1..]).ok_or(ParseError::BadSampleRate)?;
                if !(MIN_SAMPLE_RATE..=1.0).contains(&rate) {
                    return Err(ParseError::BadSampleRate);
                }
                out.sample_rate = rate;
            }
            Some(b'#') => {
                let raw = &section[1..];
                // fewer commas than the limit means at most `max_tags` tags: no need to count
                let may_exceed = self.max_tags == 0
                    || raw.len() >= self.max_tags
                        && memchr_iter(b',', raw.as_bytes()).nth(self.max_tags - 1).is_some();
                if may_exceed && (Tags { rest: raw }).nth(self.max_tags).is_some() {
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
        Ok(())
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

/// Exact powers of ten as `f64` (every one up to 1e22 is representable exactly).
const POW10: [f64; 16] =
    [1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11, 1e12, 1e13, 1e14, 1e15];

/// A finite number. Fast path for `[+-]digits[.digits]` with at most 15 digits in all: the
/// digits as an integer `m < 2^53` and `10^k` (`k <= 15`) are both exact `f64`s, so `m / 10^k`
/// is one correctly rounded IEEE division, the same `f64` as `str::parse` (Clinger's fast path).
/// Anything else (exponents, longer numbers, `inf`…) goes through `str::parse`.
fn parse_number(s: &str) -> Option<f64> {
    let b = s.as_bytes();
    let (neg, digits) = match b.first() {
        Some(b'-') => (true, &b[1..]),
        Some(b'+') => (false, &b[1..]),
        _ => (false, b),
    };
    let mut m: u64 = 0;
    let mut n_digits = 0usize;
    let mut frac: Option<usize> = None;
    let mut ok = !digits.is_empty() && digits.len() <= 16;
    if ok {
        for (i, &c) in digits.iter().enumerate() {
            if c.is_ascii_digit() {
                m = m * 10 + u64::from(c - b'0');
                n_digits += 1;
            } else if c == b'.' && frac.is_none() && i > 0 && i + 1 < digits.len() {
                frac = Some(digits.len() - i - 1);
            } else {
                ok = false;
                break;
            }
        }
    }
    if ok && n_digits <= 15 {
        let v = m as f64;
        let v = match frac {
            Some(k) => v / POW10[k],
            None => v,
        };
        return Some(if neg { -v } else { v });
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
        assert_eq!(p("k:1|c|@1e-300"), Err(ParseError::BadSampleRate));
        assert_eq!(p("k:1|c|@0.0000009"), Err(ParseError::BadSampleRate));
        assert_eq!(p("k:1|c|@0.000001").map(|l| l.sample_rate), Ok(MIN_SAMPLE_RATE));
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

    /// The `str::find`/`split` parser this byte-level one replaced, kept verbatim as the oracle
    /// for the differential tests below: same result (value, borrowed slices, error reason) on
    /// every input.
    mod previous {
        use super::super::*;

        pub fn packet_lines(packet: &[u8]) -> impl Iterator<Item = &[u8]> {
            packet
                .split(|b| *b == b'\n')
                .map(|l| l.strip_suffix(b"\r").unwrap_or(l))
                .filter(|l| !l.is_empty())
        }

        fn count_tags(raw: &str) -> usize {
            raw.split(',').filter(|t| !t.is_empty()).count()
        }

        pub fn parse_bytes<'a>(p: &Parser, line: &'a [u8]) -> Result<StatsdLine<'a>, ParseError> {
            if line.len() > p.max_line_len {
                return Err(ParseError::LineTooLong);
            }
            let line = std::str::from_utf8(line).map_err(|_| ParseError::NonUtf8)?;
            parse(p, line)
        }

        pub fn parse<'a>(p: &Parser, line: &'a str) -> Result<StatsdLine<'a>, ParseError> {
            if line.len() > p.max_line_len {
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
            let value = old_value(first, ty)?;
            if !more_values.is_empty() {
                for v in more_values.split(':') {
                    old_value(v, ty)?;
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
                match section.as_bytes().first() {
                    Some(b'@') => {
                        let rate = old_number(&section[1..]).ok_or(ParseError::BadSampleRate)?;
                        if !(MIN_SAMPLE_RATE..=1.0).contains(&rate) {
                            return Err(ParseError::BadSampleRate);
                        }
                        out.sample_rate = rate;
                    }
                    Some(b'#') => {
                        let raw = &section[1..];
                        if count_tags(raw) > p.max_tags {
                            return Err(ParseError::TooManyTags);
                        }
                        out.raw_tags = raw;
                    }
                    Some(b'T') => {
                        let ts = &section[1..];
                        if ts.is_empty() || ts.len() > 19 || !ts.bytes().all(|b| b.is_ascii_digit())
                        {
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

        fn old_value(v: &str, ty: StatsdType) -> Result<Value<'_>, ParseError> {
            match ty {
                StatsdType::Set if v.is_empty() => Err(ParseError::BadValue),
                StatsdType::Set => Ok(Value::Set(v)),
                StatsdType::Gauge if v.starts_with('+') || v.starts_with('-') => {
                    old_number(v).map(Value::Delta).ok_or(ParseError::BadValue)
                }
                _ => old_number(v).map(Value::Number).ok_or(ParseError::BadValue),
            }
        }

        pub fn old_number(s: &str) -> Option<f64> {
            let f: f64 = s.parse().ok()?;
            f.is_finite().then_some(f)
        }

        pub fn old_tags(raw: &str) -> Vec<(&str, &str)> {
            raw.split(',')
                .filter(|t| !t.is_empty())
                .map(|t| t.split_once(':').unwrap_or((t, "")))
                .collect()
        }
    }

    /// Same outcome as the previous parser, compared bit for bit (`f64::to_bits`, so `-0.0`
    /// and rounding count), slices compared by address so "zero-copy, same borrow" is checked too.
    fn assert_same_as_previous(parser: &Parser, packet: &[u8]) {
        let new: Vec<_> = packet_lines(packet).collect();
        let old: Vec<_> = previous::packet_lines(packet).collect();
        assert_eq!(new, old, "packet_lines on {packet:?}");
        for line in new {
            let (a, b) = (parser.parse_bytes(line), previous::parse_bytes(parser, line));
            match (a, b) {
                (Ok(a), Ok(b)) => {
                    assert_eq!(a, b, "{:?}", String::from_utf8_lossy(line));
                    assert_eq!(a.name.as_ptr(), b.name.as_ptr());
                    let bits = |v: Value<'_>| match v {
                        Value::Number(n) => (0, n.to_bits()),
                        Value::Delta(n) => (1, n.to_bits()),
                        Value::Set(s) => (2, s.as_ptr() as u64),
                    };
                    let va: Vec<_> = a.values().map(bits).collect();
                    let vb: Vec<_> = b.values().map(bits).collect();
                    assert_eq!(va, vb, "{:?}", String::from_utf8_lossy(line));
                    assert_eq!(a.sample_rate.to_bits(), b.sample_rate.to_bits());
                    assert_eq!(a.tags().collect::<Vec<_>>(), previous::old_tags(b.raw_tags));
                }
                (a, b) => assert_eq!(a, b, "{:?}", String::from_utf8_lossy(line)),
            }
        }
    }

    #[test]
    fn byte_parser_matches_previous_parser_on_hand_picked_edge_cases() {
        let cases: &[&str] = &[
            "a.b:5|c",
            "a:1|c|@0.1",
            "g:+4|g",
            "g:-4.5|g",
            "g:-0|g",
            "c:-0.0|c",
            "k:1.|ms",
            "k:.5|ms",
            "k:.|ms",
            "k:1.2.3|c",
            "k:+.5|h",
            "k:--1|c",
            "k:1e3|c",
            "k:1E-3|d",
            "k:0.1|c",
            "k:0.30000000000000004|c",
            "k:123456789012345|c",
            "k:1234567890123456|c",
            "k:12345678901234.5|c",
            "k:1234567890123.45|c",
            "k:000000000000001.5|c",
            "k:9007199254740993|c",
            "k:1_0|c",
            "k:١|c",
            "k:0x10|c",
            "k:inf|c",
            "k:-NaN|g",
            "k:infinity|ms",
            "k:1|c|@.5",
            "k:1|c|@1.",
            "k:1|c|@1.0000000000000001",
            "k:1|c|@0.0",
            "k:1|c|@-0.5",
            "k:1|c|#",
            "k:1|c|#,,,",
            "k:1|c|#a,,b,",
            "k:1|c|#a:b:c,:v,k:",
            "k:1|c||@0.5",
            "k:1|c|",
            "k:1|",
            "k:1||c",
            "k|c",
            ":|c",
            "k:1:2:3|d",
            "k:1::3|d",
            "k:1:|d",
            "k::1|d",
            "u:a:b|s",
            "u::|s",
            "k:1|c|T",
            "k:1|c|T12345678901234567890",
            "k:1|c|T1234567890123456789",
            "k:1|c|T+1",
            "k:1|c|c:",
            "k:1|c|c",
            "k:1|c|e:",
            "k:1|c|card:",
            "k:1|c|card",
            "k:1|c|#a|#b,c",
            "k:1|c|@0.5|@0.25",
            "_e{1,1}:a|b",
            "_sc|x|0",
            "_e",
            "_sc",
            "k:1|C",
            "k:1|mss",
            "héllo:1|c|#ünï:cødé",
            "k:1|c\r",
            "k:1|c|#a:b,c:d,e:f,g:h",
        ];
        for limits in [Parser::default(), Parser { max_tags: 0, max_line_len: 64 }] {
            for c in cases {
                assert_same_as_previous(&limits, c.as_bytes());
            }
            for max_tags in 0..6 {
                let p = Parser { max_tags, ..limits };
                for tags in ["", "a", "a,b", "a,,b", ",a,b,c,", "a,b,c,d,e", "a,b,c,d,e,f,,"] {
                    assert_same_as_previous(&p, format!("k:1|c|#{tags}").as_bytes());
                }
            }
        }
        assert_same_as_previous(&Parser::default(), b"a:1|c\r\n\r\n\nb:2|g\n\r\rc:3|ms\r\r\n");
    }

    /// The fuzz corpus (`collector-shim/fuzz/corpus/statsd_parse`, committed; `cargo fuzz run`
    /// grows it) replayed through both parsers.
    #[test]
    fn byte_parser_matches_previous_parser_on_the_fuzz_corpus() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../collector-shim/fuzz/corpus/statsd_parse");
        let entries = std::fs::read_dir(&dir)
            .unwrap_or_else(|e| panic!("the committed fuzz corpus {}: {e}", dir.display()));
        let parser = Parser { max_tags: 8, max_line_len: 512 };
        let mut n = 0;
        for e in entries.flatten() {
            let bytes = std::fs::read(e.path()).unwrap();
            assert_same_as_previous(&parser, &bytes);
            assert_same_as_previous(&Parser::default(), &bytes);
            n += 1;
        }
        assert!(n > 1000, "only {n} corpus inputs in {}", dir.display());
    }

    #[test]
    fn decimal_fast_path_is_bit_identical_to_str_parse() {
        for s in [
            "0.1",
            "0.2",
            "0.3",
            "2.675",
            "1.005",
            "9.999999999999",
            "123456.789012345",
            "0.000000000000001",
            "99999999999999.9",
            "-0.1",
            "+0.7",
            "5e-324",
        ] {
            assert_eq!(
                parse_number(s).map(f64::to_bits),
                previous::old_number(s).map(f64::to_bits),
                "{s}"
            );
        }
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

        /// Lines over the grammar's alphabet parse exactly as with the previous parser.
        #[test]
        fn byte_parser_matches_previous_parser_on_grammar_like_lines(
            line in "[a-z:|@#,.T+\\-0-9eEcgmsdh_\r\n]{0,60}",
            max_tags in 0usize..5,
        ) {
            assert_same_as_previous(&Parser { max_tags, max_line_len: 48 }, line.as_bytes());
        }

        /// Numbers as StatsD clients write them: the fast path gives the same `f64` bits.
        #[test]
        fn decimal_numbers_match_str_parse_bit_for_bit(
            int in "[+-]?[0-9]{1,17}", frac in proptest::option::of("[0-9]{0,17}"),
        ) {
            let s = match frac { Some(f) => format!("{int}.{f}"), None => int };
            prop_assert_eq!(
                parse_number(&s).map(f64::to_bits),
                previous::old_number(&s).map(f64::to_bits),
                "{}", s
            );
        }

        /// Arbitrary bytes parse exactly as with the previous parser.
        #[test]
        fn byte_parser_matches_previous_parser_on_arbitrary_bytes(
            bytes in prop::collection::vec(any::<u8>(), 0..128),
        ) {
            assert_same_as_previous(&Parser::default(), &bytes);
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
