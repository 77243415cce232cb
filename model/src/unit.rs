/// A unit as written in OpenTelemetry (UCUM case-sensitive codes), with the one piece of unit
/// arithmetic the pipelines need: StatsD timers are always milliseconds.
///
/// The unit string is kept as given (an empty string means dimensionless). Time units are
/// recognised so that a histogram recorded in seconds is sent to StatsD as `ms` with its values
/// multiplied by 1000.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default)]
pub struct Unit(String);

impl Unit {
    /// Wraps a UCUM unit code such as `"ms"`, `"s"`, `"By"` or `"1"`.
    pub fn new(code: impl Into<String>) -> Self {
        Unit(code.into())
    }

    /// The unit code as given.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// For a time unit, the factor that converts one of it into milliseconds.
    ///
    /// Recognised: `ns`, `us`, `ms`, `s`, `min`, `h`, `d`. Anything else is not a time unit.
    pub fn millis_factor(&self) -> Option<f64> {
        Some(match self.0.as_str() {
            "ns" => 1e-6,
            "us" => 1e-3,
            "ms" => 1.0,
            "s" => 1e3,
            "min" => 60e3,
            "h" => 3_600e3,
            "d" => 86_400e3,
            _ => return None,
        })
    }

    /// Whether this is a time unit (and a histogram in it becomes a StatsD timer).
    pub fn is_time(&self) -> bool {
        self.millis_factor().is_some()
    }
}

impl From<&str> for Unit {
    fn from(s: &str) -> Self {
        Unit::new(s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seconds_convert_to_thousand_millis() {
        assert_eq!(Unit::new("s").millis_factor(), Some(1000.0));
        assert_eq!(Unit::new("us").millis_factor(), Some(0.001));
    }

    #[test]
    fn bytes_are_not_time() {
        assert!(!Unit::new("By").is_time());
        assert!(!Unit::new("").is_time());
    }
}
