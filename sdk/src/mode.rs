//! The cutover mode: which pipelines a measurement goes to.
use serde::{Deserialize, Serialize};

/// Which backends receive measurements.
///
/// The migration goes `Legacy` → `Dual` → `Otlp`; rolling back is the same switch the other way.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    /// StatsD only.
    Legacy,
    /// StatsD and OTLP.
    #[default]
    Dual,
    /// OTLP only.
    Otlp,
}

/// Bit set in a mode byte when StatsD receives measurements.
pub(crate) const LEGACY_BIT: u8 = 0b01;
/// Bit set in a mode byte when OTLP receives measurements.
pub(crate) const OTLP_BIT: u8 = 0b10;
/// Mode byte after shutdown: nothing receives measurements (they are counted as dropped).
pub(crate) const CLOSED: u8 = 0;

impl Mode {
    /// Parses `legacy`, `dual` or `otlp` (case-insensitive).
    pub fn parse(s: &str) -> Option<Mode> {
        match s.trim().to_ascii_lowercase().as_str() {
            "legacy" | "statsd" => Some(Mode::Legacy),
            "dual" => Some(Mode::Dual),
            "otlp" | "otel" => Some(Mode::Otlp),
            _ => None,
        }
    }

    /// The lowercase name.
    pub fn as_str(self) -> &'static str {
        match self {
            Mode::Legacy => "legacy",
            Mode::Dual => "dual",
            Mode::Otlp => "otlp",
        }
    }

    pub(crate) fn bits(self) -> u8 {
        match self {
            Mode::Legacy => LEGACY_BIT,
            Mode::Dual => LEGACY_BIT | OTLP_BIT,
            Mode::Otlp => OTLP_BIT,
        }
    }

    /// Whether StatsD receives measurements in this mode.
    pub fn has_legacy(self) -> bool {
        self.bits() & LEGACY_BIT != 0
    }

    /// Whether OTLP receives measurements in this mode.
    pub fn has_otlp(self) -> bool {
        self.bits() & OTLP_BIT != 0
    }
}

impl std::fmt::Display for Mode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}
