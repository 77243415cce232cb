//! The cutover: which pipelines each instrument records to, and how that changes at runtime.
//!
//! A [`Mode`] names the pipelines (`legacy` = StatsD, `dual` = both, `otlp` = OpenTelemetry).
//! Each instrument's mode is decided by layers, highest first:
//!
//! 1. [`crate::DualMetrics::force_mode`], the emergency switch: every instrument, pinned or not;
//! 2. the `mode` of the per-metric rule that matches the instrument (a pin);
//! 3. [`crate::DualMetrics::set_mode`], the runtime switch: the global mode from then on, whatever
//!    a reload reads, so a rollback stays rolled back;
//! 4. the configured `mode` (builder > environment > `[env.<name>]` > `[default]` > `dual`),
//!    re-read at each reload.
//!
//! [`Cutover`] holds layers 1, 3 and 4 and answers the mode of an instrument given its pin; the
//! registry applies the answer to every instrument when a layer changes. An instrument keeps its
//! mode as a byte of [`LEGACY_BIT`] | [`OTLP_BIT`] (or [`CLOSED`] after shutdown), the one load of
//! every emit.
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

/// The name of an instrument's mode byte: `legacy`, `dual`, `otlp`, or `closed` after shutdown.
pub(crate) fn mode_name(bits: u8) -> &'static str {
    match (bits & LEGACY_BIT != 0, bits & OTLP_BIT != 0) {
        (true, true) => "dual",
        (true, false) => "legacy",
        (false, true) => "otlp",
        (false, false) => "closed",
    }
}

/// The mode layers above the rules' pins (see the module documentation).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Cutover {
    /// The configured mode, replaced at each reload.
    configured: Mode,
    /// The mode given to `set_mode`: outranks the configured one from then on.
    runtime: Option<Mode>,
    /// The mode given to `force_mode`: outranks every pin.
    forced: Option<Mode>,
}

impl Cutover {
    /// The configured mode only.
    pub(crate) fn new(configured: Mode) -> Self {
        Cutover { configured, runtime: None, forced: None }
    }

    /// The global mode: the runtime switch's, else the configured one.
    pub(crate) fn global(&self) -> Mode {
        self.runtime.unwrap_or(self.configured)
    }

    /// The mode of an instrument whose rule pins `pinned`.
    pub(crate) fn mode_of(&self, pinned: Option<Mode>) -> Mode {
        self.forced.or(pinned).unwrap_or(self.global())
    }

    /// [`Self::mode_of`] as the instrument's mode byte.
    pub(crate) fn bits_of(&self, pinned: Option<Mode>) -> u8 {
        self.mode_of(pinned).bits()
    }

    /// The runtime switch (`set_mode`).
    pub(crate) fn switch(&mut self, mode: Mode) {
        self.runtime = Some(mode);
    }

    /// The emergency switch (`force_mode`); `None` lifts it.
    pub(crate) fn force(&mut self, mode: Option<Mode>) {
        self.forced = mode;
    }

    /// The forced mode, if any.
    pub(crate) fn forced(&self) -> Option<Mode> {
        self.forced
    }

    /// A reload's configured mode (the runtime switch, if made, still outranks it).
    pub(crate) fn reconfigure(&mut self, configured: Mode) {
        self.configured = configured;
    }
}

impl std::fmt::Display for Mode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_configured_mode_applies_until_a_runtime_switch() {
        let mut c = Cutover::new(Mode::Legacy);
        assert_eq!(c.mode_of(None), Mode::Legacy);
        c.switch(Mode::Dual);
        assert_eq!(c.mode_of(None), Mode::Dual);
    }

    #[test]
    fn a_reload_does_not_undo_a_runtime_switch() {
        let mut c = Cutover::new(Mode::Dual);
        c.switch(Mode::Legacy); // the rollback
        c.reconfigure(Mode::Otlp); // a reload reads otlp
        assert_eq!(c.global(), Mode::Legacy);
        let mut unswitched = Cutover::new(Mode::Dual);
        unswitched.reconfigure(Mode::Otlp);
        assert_eq!(unswitched.global(), Mode::Otlp, "without a switch the reload applies");
    }

    #[test]
    fn a_rule_pin_outranks_the_global_mode_and_force_outranks_the_pin() {
        let mut c = Cutover::new(Mode::Dual);
        c.switch(Mode::Otlp);
        assert_eq!(c.mode_of(Some(Mode::Legacy)), Mode::Legacy, "pinned");
        c.force(Some(Mode::Dual));
        assert_eq!(c.mode_of(Some(Mode::Legacy)), Mode::Dual, "forced over the pin");
        assert_eq!(c.mode_of(None), Mode::Dual);
        c.force(None);
        assert_eq!(c.mode_of(Some(Mode::Legacy)), Mode::Legacy, "the pin is back");
        assert_eq!(c.mode_of(None), Mode::Otlp, "the switch is back");
    }

    #[test]
    fn mode_bytes_name_their_pipelines() {
        assert_eq!(mode_name(Mode::Legacy.bits()), "legacy");
        assert_eq!(mode_name(Mode::Dual.bits()), "dual");
        assert_eq!(mode_name(Mode::Otlp.bits()), "otlp");
        assert_eq!(mode_name(CLOSED), "closed");
        assert!(Mode::Dual.has_legacy() && Mode::Dual.has_otlp());
        assert!(!Mode::Otlp.has_legacy() && !Mode::Legacy.has_otlp());
    }

    #[test]
    fn modes_parse_case_insensitively_with_their_aliases() {
        assert_eq!(Mode::parse(" LEGACY "), Some(Mode::Legacy));
        assert_eq!(Mode::parse("statsd"), Some(Mode::Legacy));
        assert_eq!(Mode::parse("otel"), Some(Mode::Otlp));
        assert_eq!(Mode::parse("both"), None);
    }
}
