//! The registry: one core per metric name, created at registration with every decision made
//! (names, StatsD type, unit conversion, OTLP stream plan, mode).
use std::collections::HashMap;
use std::sync::Arc;

use dualmetrics_model::naming::{statsd_name, validate_metric_name};
use dualmetrics_model::statsd_line::StatsdType;
use dualmetrics_model::{MetricKind, Unit};
use parking_lot::{Mutex, RwLock};

use crate::backend::otel::StreamPlan;
use crate::config::{Config, DEFAULT_HISTOGRAM_BOUNDARIES_MS};
use crate::error::{BuildError, ConfigError, Source};
use crate::instrument::{AnyCore, Context, Core, KindSpec, Spec};
use crate::Mode;

/// What an [`crate::InstrumentBuilder`] collected.
#[derive(Debug, Clone)]
pub(crate) struct Registration {
    pub name: String,
    pub description: String,
    pub unit: String,
    pub cardinality_limit: Option<usize>,
    pub boundaries: Option<Vec<f64>>,
}

impl Registration {
    pub(crate) fn new(name: &str) -> Self {
        Registration {
            name: name.to_owned(),
            description: String::new(),
            unit: String::new(),
            cardinality_limit: None,
            boundaries: None,
        }
    }
}

pub(crate) struct Registry {
    pub ctx: Arc<Context>,
    pub config: RwLock<Config>,
    instruments: Mutex<HashMap<String, Arc<dyn AnyCore>>>,
}

fn code_error(key: &str, value: String, reason: &str) -> BuildError {
    BuildError::Config(ConfigError {
        key: key.into(),
        value,
        origin: Source::Code,
        reason: reason.into(),
    })
}

impl Registry {
    pub(crate) fn new(ctx: Arc<Context>, config: Config) -> Self {
        Registry { ctx, config: RwLock::new(config), instruments: Mutex::new(HashMap::new()) }
    }

    pub(crate) fn register<K: KindSpec>(
        &self,
        reg: Registration,
    ) -> Result<Arc<Core<K>>, BuildError> {
        validate_metric_name(&reg.name)?;
        if reg.unit.len() > 63 || !reg.unit.is_ascii() {
            return Err(code_error("unit", reg.unit, "must be at most 63 ASCII characters"));
        }
        if reg.cardinality_limit == Some(0) {
            return Err(code_error("cardinality_limit", "0".into(), "must be positive"));
        }
        if let Some(b) = &reg.boundaries {
            if b.is_empty()
                || !b.iter().all(|x| x.is_finite())
                || !b.windows(2).all(|w| w[0] < w[1])
            {
                return Err(code_error(
                    "boundaries",
                    format!("{b:?}"),
                    "expected a non-empty, strictly increasing list of finite numbers",
                ));
            }
        }
        let mut instruments = self.instruments.lock();
        if let Some(existing) = instruments.get(&reg.name) {
            let spec = existing.spec();
            if spec.kind == K::KIND && spec.unit == reg.unit {
                return Ok(Arc::clone(existing)
                    .as_any()
                    .downcast::<Core<K>>()
                    .expect("kind checked above"));
            }
            return Err(BuildError::Conflict {
                name: reg.name,
                existing: spec.kind.as_str(),
                unit: spec.unit.clone(),
            });
        }

        let config = self.config.read();
        let unit = Unit::new(reg.unit.clone());
        let millis_factor =
            if K::KIND == MetricKind::Histogram { unit.millis_factor() } else { None };
        let statsd_type = match K::KIND {
            MetricKind::Counter => StatsdType::Counter,
            MetricKind::UpDownCounter | MetricKind::Gauge => StatsdType::Gauge,
            MetricKind::Histogram if millis_factor.is_some() => StatsdType::Timer,
            MetricKind::Histogram => config.statsd.histogram_type,
        };
        let cardinality_limit = reg.cardinality_limit.unwrap_or(config.cardinality_limit);
        let boundaries = reg
            .boundaries
            .or_else(|| config.otlp.histogram_boundaries.clone())
            .unwrap_or_else(|| {
                let f = millis_factor.unwrap_or(1.0);
                DEFAULT_HISTOGRAM_BOUNDARIES_MS.iter().map(|b| b / f).collect()
            });
        // Our series map bounds the tag sets (plus one overflow series); the SDK's own limit sits
        // above it so that OpenTelemetry never folds series on its own.
        self.ctx.otel.plan(
            &reg.name,
            StreamPlan {
                boundaries: boundaries.clone(),
                cardinality_limit: cardinality_limit + 16,
            },
        );
        let spec = Spec {
            statsd_name: statsd_name(&config.statsd.prefix, &reg.name),
            name: reg.name,
            description: reg.description,
            unit: reg.unit,
            kind: K::KIND,
            statsd_type,
            millis_factor,
            cardinality_limit,
            temporality: config.otlp.temporality,
            boundaries: (K::KIND == MetricKind::Histogram).then_some(boundaries),
        };
        let bits = config.mode.bits();
        drop(config);
        let core = Arc::new(Core::<K>::new(spec, bits, Arc::clone(&self.ctx)));
        instruments.insert(core.spec.name.clone(), core.clone() as Arc<dyn AnyCore>);
        Ok(core)
    }

    /// Sets the global mode and re-resolves every instrument's mode.
    pub(crate) fn set_mode(&self, mode: Mode) {
        self.config.write().mode = mode;
        for core in self.instruments.lock().values() {
            core.set_mode_bits(mode.bits());
        }
    }

    /// Closes every instrument: later emits are counted as dropped after shutdown.
    pub(crate) fn close_all(&self) {
        for core in self.instruments.lock().values() {
            core.close();
        }
    }

    /// The catalog of every registered instrument.
    pub(crate) fn catalog(&self) -> crate::catalog::Catalog {
        let config = self.config.read();
        let mut instruments: Vec<_> = self
            .instruments
            .lock()
            .values()
            .map(|core| {
                let spec = core.spec();
                crate::catalog::CatalogEntry {
                    name: spec.name.clone(),
                    kind: spec.kind,
                    unit: spec.unit.clone(),
                    description: spec.description.clone(),
                    statsd_name: spec.statsd_name.clone(),
                    statsd_type: spec.statsd_type.code(),
                    otel_name: spec.name.clone(),
                    tag_keys: core.tag_keys(),
                    mode: crate::catalog::mode_name(core.mode_bits()),
                    temporality: spec.temporality,
                    rule: None,
                    buckets: spec.boundaries.clone(),
                    series: core.series_count(),
                }
            })
            .collect();
        instruments.sort_by(|a, b| a.name.cmp(&b.name));
        crate::catalog::Catalog {
            version: 1,
            service: config.service.clone(),
            statsd_prefix: config.statsd.prefix.clone(),
            global_tags: config.tags.iter().cloned().collect(),
            instruments,
        }
    }
}
