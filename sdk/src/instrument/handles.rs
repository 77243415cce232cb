//! The public instrument handles. Cloning a handle is cheap (one `Arc`); every clone records into
//! the same instrument.
use std::marker::PhantomData;
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::kinds::{CounterSpec, GaugeSpec, HistogramSpec, UpDownSpec};
use super::tags::Tags;
use super::{Core, Series};
use crate::backend::otel::OtelBackend;
use crate::backend::statsd::StatsdBackend;
use crate::backend::Backend;
use crate::error::BuildError;
use crate::registry::{Registration, Registry};

/// Builds an instrument: name (given), description, unit, and per-instrument options.
///
/// Obtained from [`crate::DualMetrics::counter`] and its siblings; [`build`](Self::build)
/// validates the name and registers the instrument once (building it again with the same kind
/// and unit returns the same instrument).
///
/// `L` and `N` are the facade's legacy and new pipelines (StatsD and OTLP unless built with
/// [`crate::DualMetricsBuilder::build_with`]).
#[must_use = "an instrument builder does nothing until build() is called"]
pub struct InstrumentBuilder<'a, H, L: Backend = StatsdBackend, N: Backend = OtelBackend> {
    registry: &'a Arc<Registry<L, N>>,
    reg: Registration,
    _handle: PhantomData<H>,
}

impl<'a, H, L: Backend, N: Backend> InstrumentBuilder<'a, H, L, N> {
    pub(crate) fn new(registry: &'a Arc<Registry<L, N>>, name: &str) -> Self {
        InstrumentBuilder { registry, reg: Registration::new(name), _handle: PhantomData }
    }

    /// Human-readable description, sent as the OTLP metric description. Defaults to none.
    pub fn with_description(mut self, description: impl Into<String>) -> Self {
        self.reg.description = description.into();
        self
    }

    /// UCUM unit (`ms`, `s`, `By`, `1`, ...). Histograms in a time unit become StatsD timers in
    /// milliseconds. Defaults to none.
    pub fn with_unit(mut self, unit: impl Into<String>) -> Self {
        self.reg.unit = unit.into();
        self
    }

    /// Series (tag sets) this instrument keeps before new tag sets go to the overflow series.
    /// Defaults to the configuration's `cardinality_limit`.
    pub fn with_cardinality_limit(mut self, limit: usize) -> Self {
        self.reg.cardinality_limit = Some(limit);
        self
    }
}

impl<L: Backend, N: Backend> InstrumentBuilder<'_, Histogram<L, N>, L, N> {
    /// Explicit bucket boundaries for the OTLP histogram, in this histogram's unit. Defaults to
    /// the configuration's `otlp.histogram_boundaries`, or OpenTelemetry's millisecond defaults
    /// scaled to the unit.
    pub fn with_boundaries(mut self, boundaries: Vec<f64>) -> Self {
        self.reg.boundaries = Some(boundaries);
        self
    }
}

macro_rules! handle {
    ($(#[$doc:meta])* $name:ident, $bound:ident, $spec:ty, $value:ty, $method:ident, $check:expr) => {
        $(#[$doc])*
        #[must_use = "instruments do nothing unless you record into them"]
        pub struct $name<L: Backend = StatsdBackend, N: Backend = OtelBackend> {
            core: Arc<Core<$spec, L, N>>,
        }

        impl<L: Backend, N: Backend> Clone for $name<L, N> {
            fn clone(&self) -> Self {
                $name { core: Arc::clone(&self.core) }
            }
        }

        impl<L: Backend, N: Backend> InstrumentBuilder<'_, $name<L, N>, L, N> {
            /// Validates and registers the instrument.
            ///
            /// # Errors
            /// An invalid name, unit or option, or a name registered before with another kind
            /// or unit.
            pub fn build(self) -> Result<$name<L, N>, BuildError> {
                Ok($name { core: self.registry.register::<$spec>(self.reg)? })
            }
        }

        impl<L: Backend, N: Backend> $name<L, N> {
            /// Records `value` with per-call tags. Never blocks, never panics; an invalid value
            /// or tag key is dropped and counted in self-telemetry.
            #[inline]
            pub fn $method(&self, value: $value, tags: Tags<'_>) {
                let core = &*self.core;
                let check: fn($value) -> bool = $check;
                let Some(mode) = core.admit(check(value)) else { return };
                core.with_series(tags, |s, seen| core.record(s, mode, value, seen));
            }

            /// Resolves `tags` once (global tags merged, both pipelines' series created) and
            /// returns a handle whose records skip every lookup.
            ///
            /// # Errors
            /// An invalid tag key.
            pub fn bind(&self, tags: Tags<'_>) -> Result<$bound<L, N>, BuildError> {
                Ok($bound { series: self.core.bind(tags)?, core: Arc::clone(&self.core) })
            }

            /// The metric name.
            pub fn name(&self) -> &str {
                &self.core.spec.name
            }
        }

        impl<L: Backend, N: Backend> std::fmt::Debug for $name<L, N> {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.debug_struct(stringify!($name)).field("name", &self.core.spec.name).finish()
            }
        }

        #[doc = concat!("A [`", stringify!($name), "`] bound to one tag set: recording is a mode load and atomics.")]
        #[must_use = "instruments do nothing unless you record into them"]
        pub struct $bound<L: Backend = StatsdBackend, N: Backend = OtelBackend> {
            core: Arc<Core<$spec, L, N>>,
            series: Arc<Series<$spec, L, N>>,
        }

        impl<L: Backend, N: Backend> Clone for $bound<L, N> {
            fn clone(&self) -> Self {
                $bound { core: Arc::clone(&self.core), series: Arc::clone(&self.series) }
            }
        }

        impl<L: Backend, N: Backend> $bound<L, N> {
            /// Records `value` for the bound tag set.
            #[inline]
            pub fn $method(&self, value: $value) {
                let core = &*self.core;
                let check: fn($value) -> bool = $check;
                let Some(mode) = core.admit(check(value)) else { return };
                core.record(&self.series, mode, value, true);
            }
        }

        impl<L: Backend, N: Backend> std::fmt::Debug for $bound<L, N> {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.debug_struct(stringify!($bound)).field("name", &self.core.spec.name).finish()
            }
        }
    };
}

handle!(
    /// A monotonic `u64` counter: StatsD `c` (summed per flush), OTLP monotonic Sum.
    Counter, BoundCounter, CounterSpec, u64, add, |_| true
);
handle!(
    /// An `i64` counter that can go down: StatsD `g` with the absolute value, OTLP
    /// non-monotonic Sum.
    UpDownCounter, BoundUpDownCounter, UpDownSpec, i64, add, |_| true
);
handle!(
    /// A last-value `f64` gauge: StatsD `g`, OTLP Gauge. NaN and infinities are dropped.
    Gauge, BoundGauge, GaugeSpec, f64, record, |v: f64| v.is_finite()
);
handle!(
    /// An `f64` distribution: every sample to StatsD (`ms` in milliseconds for time units, else
    /// `h`/`d`), an OTLP Histogram. Negative values, NaN and infinities are dropped.
    Histogram, BoundHistogram, HistogramSpec, f64, record, |v: f64| v.is_finite() && v >= 0.0
);

impl<L: Backend, N: Backend> Counter<L, N> {
    /// Adds one.
    #[inline]
    pub fn increment(&self, tags: Tags<'_>) {
        self.add(1, tags)
    }
}

impl<L: Backend, N: Backend> BoundCounter<L, N> {
    /// Adds one.
    #[inline]
    pub fn increment(&self) {
        self.add(1)
    }
}

/// `d` expressed in the histogram's unit (seconds when the unit is not a time unit).
fn duration_in_unit<L: Backend, N: Backend>(core: &Core<HistogramSpec, L, N>, d: Duration) -> f64 {
    match core.spec.millis_factor {
        Some(f) => d.as_secs_f64() * 1000.0 / f,
        None => d.as_secs_f64(),
    }
}

impl<L: Backend, N: Backend> Histogram<L, N> {
    /// Records a duration, converted to this histogram's unit.
    #[inline]
    pub fn record_duration(&self, d: Duration, tags: Tags<'_>) {
        self.record(duration_in_unit(&self.core, d), tags)
    }

    /// Runs `f` and records how long it took.
    pub fn time<T>(&self, tags: Tags<'_>, f: impl FnOnce() -> T) -> T {
        let start = Instant::now();
        let out = f();
        self.record_duration(start.elapsed(), tags);
        out
    }
}

impl<L: Backend, N: Backend> BoundHistogram<L, N> {
    /// Records a duration, converted to this histogram's unit.
    #[inline]
    pub fn record_duration(&self, d: Duration) {
        self.record(duration_in_unit(&self.core, d))
    }

    /// Starts a timer that records the elapsed time when dropped.
    pub fn start_timer(&self) -> HistogramTimer<'_, L, N> {
        HistogramTimer { histogram: self, start: Instant::now() }
    }
}

/// Records the time since [`BoundHistogram::start_timer`] when dropped.
#[must_use = "the timer records when dropped; binding it to _ drops it at once"]
pub struct HistogramTimer<'a, L: Backend = StatsdBackend, N: Backend = OtelBackend> {
    histogram: &'a BoundHistogram<L, N>,
    start: Instant,
}

impl<L: Backend, N: Backend> Drop for HistogramTimer<'_, L, N> {
    fn drop(&mut self) {
        self.histogram.record_duration(self.start.elapsed());
    }
}
