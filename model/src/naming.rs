//! Validation and sanitising of metric names and tags: the one rule every part applies.
//!
//! # Validation (at registration; a failure is an error the caller sees)
//! - A **metric name** follows OpenTelemetry's instrument-name syntax: 1 to 255 characters, an ASCII
//!   letter first, then ASCII letters, digits, `_`, `.`, `-` or `/`.
//! - A **tag key** has 1 to 128 characters: an ASCII letter or `_` first, then ASCII letters,
//!   digits, `_`, `.` or `-`.
//!
//! # Sanitising (what a backend cannot carry is replaced, never rejected)
//! - StatsD names: every character outside `[A-Za-z0-9_.-]` becomes `_` (so `/` becomes `_`).
//! - StatsD tag values: `|`, `,`, `#`, `:`, `;`, `=`, `@` and whitespace become `_`, because the
//!   DogStatsD grammar and the reference daemon's Graphite tags give them meaning. An empty value
//!   is sent as `_`.
//! - OTel attribute values are sent unchanged.
use thiserror::Error;

/// Longest accepted metric name (OpenTelemetry's limit).
pub const MAX_NAME_LEN: usize = 255;
/// Longest accepted tag key.
pub const MAX_TAG_KEY_LEN: usize = 128;

/// Why a metric name or tag key was refused.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum NameError {
    /// The metric name is empty.
    #[error("metric name is empty")]
    EmptyName,
    /// The metric name breaks the syntax described in this module.
    #[error("invalid metric name {name:?}: {reason}")]
    InvalidName {
        /// The name as given.
        name: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// The tag key is empty.
    #[error("tag key is empty (metric {metric:?})")]
    EmptyTagKey {
        /// The metric it was given for.
        metric: String,
    },
    /// The tag key breaks the syntax described in this module.
    #[error("invalid tag key {key:?} (metric {metric:?}): {reason}")]
    InvalidTagKey {
        /// The metric it was given for.
        metric: String,
        /// The key as given.
        key: String,
        /// What is wrong with it.
        reason: &'static str,
    },
}

/// Checks a metric name against the syntax above.
pub fn validate_metric_name(name: &str) -> Result<(), NameError> {
    let invalid = |reason| NameError::InvalidName { name: name.to_owned(), reason };
    let first = name.chars().next().ok_or(NameError::EmptyName)?;
    if name.len() > MAX_NAME_LEN {
        return Err(invalid("longer than 255 characters"));
    }
    if !first.is_ascii_alphabetic() {
        return Err(invalid("must start with an ASCII letter"));
    }
    if !name.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-' | '/')) {
        return Err(invalid("only ASCII letters, digits, '_', '.', '-' and '/' are allowed"));
    }
    Ok(())
}

/// Checks a tag key against the syntax above; `metric` names the metric in the error.
pub fn validate_tag_key(metric: &str, key: &str) -> Result<(), NameError> {
    let invalid = |reason| NameError::InvalidTagKey {
        metric: metric.to_owned(),
        key: key.to_owned(),
        reason,
    };
    let first =
        key.chars().next().ok_or_else(|| NameError::EmptyTagKey { metric: metric.to_owned() })?;
    if key.len() > MAX_TAG_KEY_LEN {
        return Err(invalid("longer than 128 characters"));
    }
    if !(first.is_ascii_alphabetic() || first == '_') {
        return Err(invalid("must start with an ASCII letter or '_'"));
    }
    if !key.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-')) {
        return Err(invalid("only ASCII letters, digits, '_', '.' and '-' are allowed"));
    }
    Ok(())
}

/// Appends `name` to `out` with every character outside `[A-Za-z0-9_.-]` replaced by `_`.
pub fn push_statsd_name(out: &mut String, name: &str) {
    out.extend(name.chars().map(|c| {
        if c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-') {
            c
        } else {
            '_'
        }
    }));
}

/// Appends a tag value to `out`, replacing the characters StatsD cannot carry with `_`.
pub fn push_statsd_tag_value(out: &mut String, value: &str) {
    if value.is_empty() {
        out.push('_');
        return;
    }
    out.extend(value.chars().map(|c| {
        if matches!(c, '|' | ',' | '#' | ':' | ';' | '=' | '@') || c.is_whitespace() {
            '_'
        } else {
            c
        }
    }));
}

/// The StatsD name of a metric: `prefix.name` (or `name` without a prefix), sanitised.
pub fn statsd_name(prefix: &str, name: &str) -> String {
    let mut out = String::with_capacity(prefix.len() + name.len() + 1);
    if !prefix.is_empty() {
        push_statsd_name(&mut out, prefix.trim_end_matches('.'));
        out.push('.');
    }
    push_statsd_name(&mut out, name);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dotted_names_with_slashes_are_valid() {
        assert_eq!(validate_metric_name("http.server/requests-total_2"), Ok(()));
    }

    #[test]
    fn empty_name_is_rejected() {
        assert_eq!(validate_metric_name(""), Err(NameError::EmptyName));
    }

    #[test]
    fn name_starting_with_digit_is_rejected() {
        let err = validate_metric_name("1abc").unwrap_err();
        assert!(err.to_string().contains("\"1abc\""), "{err}");
    }

    #[test]
    fn name_with_pipe_is_rejected() {
        assert!(validate_metric_name("a|b").is_err());
        assert!(validate_metric_name(&"a".repeat(256)).is_err());
    }

    #[test]
    fn tag_keys_follow_the_key_syntax() {
        assert_eq!(validate_tag_key("m", "_route.name-1"), Ok(()));
        assert!(matches!(validate_tag_key("m", ""), Err(NameError::EmptyTagKey { .. })));
        assert!(validate_tag_key("m", "a:b").is_err());
        assert!(validate_tag_key("m", "9a").is_err());
    }

    #[test]
    fn statsd_name_joins_prefix_and_replaces_slash() {
        assert_eq!(statsd_name("svc.", "http/requests"), "svc.http_requests");
        assert_eq!(statsd_name("", "a.b"), "a.b");
    }

    #[test]
    fn statsd_tag_values_lose_grammar_characters() {
        let mut s = String::new();
        push_statsd_tag_value(&mut s, "a|b,c#d:e f=g");
        assert_eq!(s, "a_b_c_d_e_f_g");
        s.clear();
        push_statsd_tag_value(&mut s, "");
        assert_eq!(s, "_");
    }
}
