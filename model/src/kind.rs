use serde::{Deserialize, Serialize};

/// The four instrument kinds of the facade, and how each maps onto the two pipelines.
///
/// | kind | StatsD type | OTLP data |
/// |---|---|---|
/// | `Counter` | `c` | monotonic Sum |
/// | `UpDownCounter` | `g` (absolute value) | non-monotonic Sum |
/// | `Gauge` | `g` | Gauge |
/// | `Histogram` | `ms` for time units, else `h` or `d` | Histogram |
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MetricKind {
    /// Monotonic `u64` counter.
    Counter,
    /// `i64` counter that may go down; StatsD sees its absolute value as a gauge.
    UpDownCounter,
    /// Last value wins `f64`.
    Gauge,
    /// Distribution of `f64` samples.
    Histogram,
}

impl MetricKind {
    /// Lowercase name used in catalogs and reports.
    pub fn as_str(self) -> &'static str {
        match self {
            MetricKind::Counter => "counter",
            MetricKind::UpDownCounter => "up_down_counter",
            MetricKind::Gauge => "gauge",
            MetricKind::Histogram => "histogram",
        }
    }
}

impl std::fmt::Display for MetricKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}
