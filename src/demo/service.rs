//! The synthetic service: a checkout that emits through the SDK at a steady rate.
//!
//! Every tick (50 ms) it records:
//! - `http.requests` (counter, tags `route`, `code`): 1 × `cart 200`, every 2nd tick 1 ×
//!   `pay 200`, every 10th tick 1 × `pay 500`;
//! - `cart.items_added` (counter, no tags): 3;
//! - `http.latency` (histogram, ms → a StatsD timer, tag `route`): `cart` 12, 40, 95 and `pay`
//!   180, 420 — the same values every tick, so any flush or window has the same distribution;
//! - `cpu.temperature` (gauge, `Cel`): a level that changes every *hold*;
//! - `queue.depth` (up-down counter): +1 every hold for 5 holds, then −1 for 5.
//!
//! The hold is at least two of the slower of the StatsD flush and the OTLP export, so every
//! level is seen by both pipelines: a level shorter than a flush interval may be sampled by one
//! side and not the other, a true difference of sampling that the comparator would report.
//!
//! The queue keeps its level across phase switches: the SDK reports an up-down counter's true
//! level (every add, in any mode) on each pipeline while it is active, so a cutover at a non-zero
//! level shows the same level on both sides.
//!
//! # Faults ([`Fault`])
//! With a fault, the faulty instrument is recorded through two extra SDK instances instead of
//! the main one — one in `legacy` mode, one in `otlp` mode (same endpoints), each used only while
//! the main one's mode includes its pipeline — and the `otlp` one gets a distorted stream:
//! - `double-count`: every `http.requests` add counts twice on the new side;
//! - `drop`: every 5th tick's `http.requests` adds never reach the new side;
//! - `unit`: `http.latency` reaches the new side in seconds while its unit says `ms`.
//!
//! Tag values avoid `/`: the reference daemon turns `route:/cart` into `route=-cart` while OTLP
//! keeps `/cart`, a real divergence the comparator reports (try it against a real daemon).
//!
//! The main instance still builds the instrument, so the catalog lists it; its tag keys come
//! from the instances that record it ([`Service::write_catalog`]).
use std::time::Duration;

use dualmetrics::{Counter, DualMetrics, Gauge, Histogram, Mode, UpDownCounter};

use super::error::DemoError;

/// Time between two ticks of the service.
pub const TICK: Duration = Duration::from_millis(50);

/// A divergence injected on one pipeline.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Fault {
    /// The new side counts `http.requests` twice.
    DoubleCount,
    /// The new side loses every 5th tick of `http.requests`.
    Drop,
    /// The new side gets `http.latency` in seconds, declared as milliseconds.
    Unit,
}

impl Fault {
    /// The flag value (`double-count`, …).
    pub fn as_str(self) -> &'static str {
        match self {
            Fault::DoubleCount => "double-count",
            Fault::Drop => "drop",
            Fault::Unit => "unit",
        }
    }

    /// Names of the pairs this fault makes divergent.
    pub fn divergent_pairs(self) -> &'static [&'static str] {
        match self {
            Fault::DoubleCount | Fault::Drop => &["http.requests"],
            Fault::Unit => &[
                "http.latency.sum",
                "http.latency.mean",
                "http.latency.upper",
                "http.latency.upper_90",
            ],
        }
    }
}

/// The instruments of one SDK instance.
struct Instruments {
    requests: Counter,
    items: Counter,
    latency: Histogram,
    temperature: Gauge,
    queue: UpDownCounter,
}

impl Instruments {
    fn build(m: &DualMetrics) -> Result<Self, DemoError> {
        let e = |e: dualmetrics::BuildError| DemoError::Sdk(e.to_string());
        Ok(Instruments {
            requests: m
                .counter("http.requests")
                .with_description("HTTP requests served")
                .build()
                .map_err(e)?,
            items: m
                .counter("cart.items_added")
                .with_description("Items put in a cart")
                .build()
                .map_err(e)?,
            latency: m
                .histogram("http.latency")
                .with_unit("ms")
                .with_description("Request latency")
                .build()
                .map_err(e)?,
            temperature: m
                .gauge("cpu.temperature")
                .with_unit("Cel")
                .with_description("CPU temperature")
                .build()
                .map_err(e)?,
            queue: m
                .up_down_counter("queue.depth")
                .with_description("Jobs waiting")
                .build()
                .map_err(e)?,
        })
    }
}

/// Where the two split instances of a fault send, and how.
pub struct FaultSides {
    /// The injected fault.
    pub fault: Fault,
    legacy: (DualMetrics, Instruments),
    new: (DualMetrics, Instruments),
}

impl FaultSides {
    /// Builds the two instances with `configure` (endpoints, intervals) and the modes set here.
    ///
    /// # Errors
    /// The SDK refused the configuration.
    pub fn build(
        fault: Fault,
        configure: impl Fn(Mode) -> Result<DualMetrics, DemoError>,
    ) -> Result<FaultSides, DemoError> {
        let legacy = configure(Mode::Legacy)?;
        let new = configure(Mode::Otlp)?;
        let li = Instruments::build(&legacy)?;
        let ni = Instruments::build(&new)?;
        Ok(FaultSides { fault, legacy: (legacy, li), new: (new, ni) })
    }

    fn flush(&self) {
        let _ = self.legacy.0.flush();
        let _ = self.new.0.flush();
    }

    fn shutdown(&self, deadline: Duration) {
        let _ = self.legacy.0.shutdown(deadline);
        let _ = self.new.0.shutdown(deadline);
    }
}

/// Route latencies recorded every tick.
const CART_LATENCIES_MS: [f64; 3] = [12.0, 40.0, 95.0];
const PAY_LATENCIES_MS: [f64; 2] = [180.0, 420.0];
/// The queue grows for this many holds, then shrinks for as many.
const QUEUE_HALF_PERIOD_HOLDS: u64 = 5;

/// The synthetic service.
pub struct Service {
    main: DualMetrics,
    inst: Instruments,
    faults: Option<FaultSides>,
    tick: u64,
    hold_ticks: u64,
    queue_level: i64,
    /// Measurements recorded (all instances).
    pub recorded: u64,
}

impl Service {
    /// A service emitting through `main`, with an optional fault; levels change every `hold`.
    ///
    /// # Errors
    /// An instrument could not be built.
    pub fn new(
        main: DualMetrics,
        faults: Option<FaultSides>,
        hold: Duration,
    ) -> Result<Service, DemoError> {
        let inst = Instruments::build(&main)?;
        let hold_ticks = (hold.as_millis() as u64).div_ceil(TICK.as_millis() as u64).max(1);
        Ok(Service { main, inst, faults, tick: 0, hold_ticks, queue_level: 0, recorded: 0 })
    }

    /// Writes the main instance's catalog; an instrument a fault records through the extra
    /// instances gets the tag keys they saw.
    ///
    /// # Errors
    /// The file cannot be written.
    pub fn write_catalog(&self, path: &std::path::Path) -> std::io::Result<()> {
        let mut catalog = self.main.catalog();
        if let Some(sides) = &self.faults {
            for other in [sides.legacy.0.catalog(), sides.new.0.catalog()] {
                for entry in &mut catalog.instruments {
                    let seen = other.instruments.iter().find(|o| o.name == entry.name);
                    for key in seen.map(|o| o.tag_keys.as_slice()).unwrap_or_default() {
                        if !entry.tag_keys.contains(key) {
                            entry.tag_keys.push(key.clone());
                        }
                    }
                }
            }
        }
        let text = serde_json::to_string_pretty(&catalog).map_err(std::io::Error::other)?;
        std::fs::write(path, text)
    }

    /// The SDK instance the phases switch.
    pub fn metrics(&self) -> &DualMetrics {
        &self.main
    }

    fn faulty(&self, f: Fault) -> Option<&FaultSides> {
        self.faults.as_ref().filter(|s| s.fault == f)
    }

    fn add_requests(&mut self, n: u64, tags: &[(&str, &str)]) {
        let mode = self.main.mode();
        let tick = self.tick;
        let fault = self.faults.as_ref().map(|s| s.fault);
        match (fault, &self.faults) {
            (Some(f @ (Fault::DoubleCount | Fault::Drop)), Some(sides)) => {
                if mode.has_legacy() {
                    sides.legacy.1.requests.add(n, tags);
                    self.recorded += 1;
                }
                if mode.has_otlp() {
                    match f {
                        Fault::DoubleCount => sides.new.1.requests.add(2 * n, tags),
                        _ if tick % 5 == 4 => {}
                        _ => sides.new.1.requests.add(n, tags),
                    }
                    self.recorded += 1;
                }
            }
            _ => {
                self.inst.requests.add(n, tags);
                self.recorded += 1;
            }
        }
    }

    fn record_latency(&mut self, ms: f64, tags: &[(&str, &str)]) {
        let mode = self.main.mode();
        if let Some(sides) = self.faulty(Fault::Unit) {
            if mode.has_legacy() {
                sides.legacy.1.latency.record(ms, tags);
            }
            if mode.has_otlp() {
                sides.new.1.latency.record(ms / 1000.0, tags);
            }
        } else {
            self.inst.latency.record(ms, tags);
        }
        self.recorded += 1;
    }

    /// One tick of traffic.
    pub fn tick(&mut self) {
        let t = self.tick;
        self.add_requests(1, &[("route", "cart"), ("code", "200")]);
        if t.is_multiple_of(2) {
            self.add_requests(1, &[("route", "pay"), ("code", "200")]);
        }
        if t.is_multiple_of(10) {
            self.add_requests(1, &[("route", "pay"), ("code", "500")]);
        }
        self.inst.items.add(3, &[]);
        for ms in CART_LATENCIES_MS {
            self.record_latency(ms, &[("route", "cart")]);
        }
        for ms in PAY_LATENCIES_MS {
            self.record_latency(ms, &[("route", "pay")]);
        }
        let hold = t / self.hold_ticks;
        if t.is_multiple_of(self.hold_ticks) {
            self.inst.temperature.record(55.0 + (hold % 6) as f64 * 0.5, &[]);
            let step =
                if hold % (2 * QUEUE_HALF_PERIOD_HOLDS) < QUEUE_HALF_PERIOD_HOLDS { 1 } else { -1 };
            if self.queue_level + step >= 0 {
                self.inst.queue.add(step, &[]);
                self.queue_level += step;
            }
            self.recorded += 2;
        }
        self.recorded += 1;
        self.tick += 1;
    }

    /// Sends what every instance has buffered.
    pub fn flush(&self) {
        let _ = self.main.flush();
        if let Some(f) = &self.faults {
            f.flush();
        }
    }

    /// Switches every pipeline this service owns to `mode`.
    pub fn set_mode(&self, mode: Mode) {
        self.main.set_mode(mode);
    }

    /// Flushes and stops every instance.
    pub fn shutdown(&self, deadline: Duration) {
        let _ = self.main.shutdown(deadline);
        if let Some(f) = &self.faults {
            f.shutdown(deadline);
        }
    }
}
