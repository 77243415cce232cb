//! Encoding StatsD / DogStatsD lines: `name:value|type[|@rate][|#k:v,k:v]`.
//!
//! The encoder is split the way the SDK uses it: the parts that never change for a series (the
//! sanitised name and the `|#tags` suffix) are built once with [`series_prefix`] and
//! [`tags_suffix`], and [`write_line`] only appends a value and a type per flush. Sample rates come
//! *before* tags, which is the order the reference daemon needs (tags first make it read the rate
//! as part of the last tag value).
//!
//! A gauge whose value is negative cannot be sent as `name:-5|g`: StatsD reads a leading sign as
//! "adjust by". [`write_line`] therefore writes `name:0|g\nname:-5|g` (set to zero, then subtract),
//! two lines that must travel in one datagram.
use crate::naming::{push_statsd_name, push_statsd_tag_value};

/// The StatsD metric types.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum StatsdType {
    /// `c`
    Counter,
    /// `g`
    Gauge,
    /// `ms`
    Timer,
    /// `h` (DogStatsD histogram)
    Histogram,
    /// `d` (DogStatsD distribution)
    Distribution,
    /// `s`
    Set,
}

impl StatsdType {
    /// The type code written after the `|`.
    pub fn code(self) -> &'static str {
        match self {
            StatsdType::Counter => "c",
            StatsdType::Gauge => "g",
            StatsdType::Timer => "ms",
            StatsdType::Histogram => "h",
            StatsdType::Distribution => "d",
            StatsdType::Set => "s",
        }
    }
}

/// A value to write.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum LineValue {
    /// Integer counts and absolute up-down values.
    Int(i64),
    /// Unsigned counts.
    Uint(u64),
    /// Gauges and samples.
    Float(f64),
}

impl LineValue {
    fn is_negative(self) -> bool {
        match self {
            LineValue::Int(v) => v < 0,
            LineValue::Uint(_) => false,
            LineValue::Float(v) => v < 0.0,
        }
    }
}

/// `prefix.name` sanitised, followed by `:`: the part of every line of one series before its value.
pub fn series_prefix(prefix: &str, name: &str) -> String {
    let mut s = crate::naming::statsd_name(prefix, name);
    s.push(':');
    s
}

/// The `|#k:v,k:v` suffix for a tag set (empty for no tags), sanitised.
pub fn tags_suffix<'a>(tags: impl IntoIterator<Item = (&'a str, &'a str)>) -> String {
    let mut out = String::new();
    for (i, (k, v)) in tags.into_iter().enumerate() {
        out.push_str(if i == 0 { "|#" } else { "," });
        push_statsd_name(&mut out, k);
        out.push(':');
        push_statsd_tag_value(&mut out, v);
    }
    out
}

fn push_value(out: &mut String, value: LineValue) {
    match value {
        LineValue::Int(v) => out.push_str(itoa::Buffer::new().format(v)),
        LineValue::Uint(v) => out.push_str(itoa::Buffer::new().format(v)),
        LineValue::Float(v) => {
            if v == v.trunc() && v.abs() < 1e15 {
                out.push_str(itoa::Buffer::new().format(v as i64));
            } else {
                out.push_str(ryu::Buffer::new().format(v));
            }
        }
    }
}

/// Appends one line (two for a negative gauge) without a trailing newline.
///
/// `series_prefix` comes from [`series_prefix`], `tags` from [`tags_suffix`]. A sample rate of
/// `None` or `1.0` is not written.
pub fn write_line(
    out: &mut String,
    series_prefix: &str,
    value: LineValue,
    ty: StatsdType,
    sample_rate: Option<f64>,
    tags: &str,
) {
    if ty == StatsdType::Gauge && value.is_negative() {
        out.push_str(series_prefix);
        out.push_str("0|g");
        out.push_str(tags);
        out.push('\n');
    }
    out.push_str(series_prefix);
    push_value(out, value);
    out.push('|');
    out.push_str(ty.code());
    if let Some(rate) = sample_rate.filter(|r| *r < 1.0) {
        out.push_str("|@");
        out.push_str(ryu::Buffer::new().format(rate));
    }
    out.push_str(tags);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line(value: LineValue, ty: StatsdType, rate: Option<f64>, tags: &[(&str, &str)]) -> String {
        let mut out = String::new();
        write_line(
            &mut out,
            &series_prefix("svc", "req"),
            value,
            ty,
            rate,
            &tags_suffix(tags.iter().copied()),
        );
        out
    }

    #[test]
    fn counter_with_tags() {
        assert_eq!(
            line(LineValue::Uint(5), StatsdType::Counter, None, &[("env", "prod"), ("r", "/a")]),
            "svc.req:5|c|#env:prod,r:/a"
        );
    }

    #[test]
    fn sample_rate_precedes_tags() {
        assert_eq!(
            line(LineValue::Float(1.5), StatsdType::Timer, Some(0.5), &[("k", "v")]),
            "svc.req:1.5|ms|@0.5|#k:v"
        );
    }

    #[test]
    fn whole_floats_are_written_as_integers() {
        assert_eq!(line(LineValue::Float(42.0), StatsdType::Gauge, None, &[]), "svc.req:42|g");
    }

    #[test]
    fn negative_gauge_is_reset_then_adjusted() {
        assert_eq!(
            line(LineValue::Int(-3), StatsdType::Gauge, None, &[("k", "v")]),
            "svc.req:0|g|#k:v\nsvc.req:-3|g|#k:v"
        );
    }

    #[test]
    fn tag_values_are_sanitised() {
        assert_eq!(
            line(LineValue::Uint(1), StatsdType::Counter, None, &[("k", "a|b")]),
            "svc.req:1|c|#k:a_b"
        );
    }
}
