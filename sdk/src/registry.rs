//! The registry: one core per metric name, created at registration with every decision made
//! (names, StatsD type, unit conversion, OTLP stream plan, mode).
use std::collections::HashMap;
use std::sync::Arc;

use dualmetrics_model::naming::{statsd_name, validate_metric_name};
use dualmetrics_model::{MetricKind, Unit};
use parking_lot::{Mutex, RwLock};

use crate::backend::otel::OtelBackend;
use crate::backend::statsd::StatsdBackend;
use crate::backend::{Backend, Pipeline};
use crate::config::{Config, Sources, DEFAULT_HISTOGRAM_BOUNDARIES_MS};
use crate::cutover::{Cutover, Mode};
use crate::error::{BuildError, ConfigError, Source};
use crate::instrument::{AnyCore, Context, Core, KindSpec, Spec};

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
    /// What the builder's calls gave, checked: the name, the unit, the limit, the boundaries.
    fn validate(&self) -> Result<(), BuildError> {
        validate_metric_name(&self.name)?;
        if self.unit.len() > 63 || !self.unit.is_ascii() {
            return Err(code_error(
                "unit",
                self.unit.clone(),
                "must be at most 63 ASCII characters",
            ));
        }
        if self.cardinality_limit == Some(0) {
            return Err(code_error("cardinality_limit", "0".into(), "must be positive"));
        }
        if let Some(b) = &self.boundaries {
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
        Ok(())
    }

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

/// A registered instrument with what the rules in force decide for it.
struct Registered {
    core: Arc<dyn AnyCore>,
    /// The glob of the rule that matched at the last (re)resolution.
    rule: Option<String>,
    /// The mode the rule pins, if any: [`Registry::set_mode`] does not move it.
    pinned: Option<Mode>,
}

/// What a successful reload changed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct ReloadOutcome {
    /// Instruments re-resolved.
    pub instruments: usize,
    /// Instruments whose mode changed.
    pub mode_changes: usize,
    /// Changed settings that the running pipelines keep until a restart: `service`,
    /// `environment`, `tags`, `statsd`, `otlp`, and `rules: <metric>` for a registered instrument
    /// whose StatsD name, OTel name or temporality the new rules change (instruments registered
    /// after the reload get the new ones).
    pub needs_restart: Vec<String>,
}

pub(crate) struct Registry<L: Backend = StatsdBackend, N: Backend = OtelBackend> {
    pub ctx: Arc<Context<L, N>>,
    pub config: RwLock<Config>,
    instruments: Mutex<HashMap<String, Registered>>,
    /// Names on the wire → facade name: `("otel", name)` and `("statsd", name)`. Two metrics
    /// that a rule renames to one wire name would merge silently; registration refuses that.
    wire_names: Mutex<HashMap<(&'static str, String), String>>,
    sources: Sources,
    /// The mode layers above the rules' pins, changed only under the `instruments` lock.
    cutover: Mutex<Cutover>,
    /// Serialises reloads ([`crate::reload::reload`]).
    pub(crate) reloading: Mutex<()>,
}
// Lock order: `instruments`, then `config`, then `cutover`, `wire_names` (an instrument's own
// locks last); `reloading` before all of them.

fn code_error(key: &str, value: String, reason: &str) -> BuildError {
    BuildError::Config(ConfigError {
        key: key.into(),
        value,
        origin: Source::Code,
        reason: reason.into(),
    })
}

impl<L: Backend, N: Backend> Registry<L, N> {
    pub(crate) fn new(ctx: Arc<Context<L, N>>, config: Config, sources: Sources) -> Self {
        Registry {
            ctx,
            cutover: Mutex::new(Cutover::new(config.mode)),
            config: RwLock::new(config),
            instruments: Mutex::new(HashMap::new()),
            wire_names: Mutex::new(HashMap::new()),
            sources,
            reloading: Mutex::new(()),
        }
    }

    pub(crate) fn sources(&self) -> &Sources {
        &self.sources
    }

    pub(crate) fn register<K: KindSpec>(
        &self,
        reg: Registration,
    ) -> Result<Arc<Core<K, L, N>>, BuildError>
    where
        L: Pipeline<K>,
        N: Pipeline<K>,
    {
        reg.validate()?;
        let mut instruments = self.instruments.lock();
        if let Some(existing) = instruments.get(&reg.name) {
            let existing = &existing.core;
            let spec = existing.spec();
            if spec.kind == K::KIND && spec.unit == reg.unit {
                return Ok(Arc::clone(existing)
                    .as_any()
                    .downcast::<Core<K, L, N>>()
                    .expect("kind checked above"));
            }
            return Err(BuildError::Conflict {
                name: reg.name,
                existing: spec.kind.as_str(),
                unit: spec.unit.clone(),
            });
        }

        let config = self.config.read();
        // Rules are matched once per instrument, here (and again at a reload).
        let resolved = config.rules.resolve(&reg.name);
        let unit = Unit::new(reg.unit.clone());
        let millis_factor =
            if K::KIND == MetricKind::Histogram { unit.millis_factor() } else { None };
        let statsd_type =
            crate::backend::statsd::line_type(K::KIND, millis_factor.is_some(), &config.statsd);
        // Code (the instrument builder) > rule > global.
        let cardinality_limit = reg
            .cardinality_limit
            .or(resolved.cardinality_limit)
            .unwrap_or(config.cardinality_limit);
        let otel_name = resolved.otel_name.clone().unwrap_or_else(|| reg.name.clone());
        let statsd_wire = statsd_name(
            &config.statsd.prefix,
            resolved.statsd_name.as_deref().unwrap_or(&reg.name),
        );
        self.claim_wire_names(&reg.name, &otel_name, &statsd_wire, &resolved)?;
        // Histograms only: the instrument's, else the configuration's, else OpenTelemetry's
        // millisecond defaults scaled to the unit.
        let boundaries = (K::KIND == MetricKind::Histogram).then(|| {
            reg.boundaries.or_else(|| config.otlp.histogram_boundaries.clone()).unwrap_or_else(
                || {
                    let f = millis_factor.unwrap_or(1.0);
                    DEFAULT_HISTOGRAM_BOUNDARIES_MS.iter().map(|b| b / f).collect()
                },
            )
        });
        let spec = Spec {
            statsd_name: statsd_wire,
            otel_name,
            name: reg.name,
            description: reg.description,
            unit: reg.unit,
            kind: K::KIND,
            statsd_type,
            millis_factor,
            cardinality_limit,
            cumulative_series_warning: config.cumulative_series_warning,
            temporality: resolved.temporality.unwrap_or(config.otlp.temporality),
            boundaries,
            statsd_sample_rate: resolved.statsd_sample_rate.unwrap_or(1.0),
        };
        let bits = self.cutover.lock().bits_of(resolved.mode);
        drop(config);
        let core = Arc::new(Core::<K, L, N>::new(spec, bits, Arc::clone(&self.ctx)));
        instruments.insert(
            core.spec.name.clone(),
            Registered {
                core: core.clone() as Arc<dyn AnyCore>,
                rule: resolved.rule,
                pinned: resolved.mode,
            },
        );
        Ok(core)
    }

    /// Records the names `metric` takes on the wire, or refuses them when another metric has one
    /// already (two metrics renamed to one wire name would merge silently): the error names the
    /// rule key that renamed it, or the metric's name.
    fn claim_wire_names(
        &self,
        metric: &str,
        otel_name: &str,
        statsd_wire: &str,
        resolved: &crate::rules::Resolved,
    ) -> Result<(), BuildError> {
        let mut wire_names = self.wire_names.lock();
        for (pipeline, wire, renamed) in [
            ("otel", otel_name, resolved.otel_name.is_some()),
            ("statsd", statsd_wire, resolved.statsd_name.is_some()),
        ] {
            if let Some(other) = wire_names.get(&(pipeline, wire.to_owned())) {
                let (key, origin) = match (&resolved.origin, renamed) {
                    (Some((rule, source)), true) => {
                        (format!("{rule}.{pipeline}_name"), source.clone())
                    }
                    _ => ("name".to_owned(), Source::Code),
                };
                return Err(BuildError::Config(ConfigError {
                    key,
                    value: wire.to_owned(),
                    origin,
                    reason: format!(
                        "metric {metric:?} would share the {pipeline} name {wire:?} with metric {other:?}"
                    ),
                }));
            }
        }
        wire_names.insert(("otel", otel_name.to_owned()), metric.to_owned());
        wire_names.insert(("statsd", statsd_wire.to_owned()), metric.to_owned());
        Ok(())
    }

    /// Sets the global mode and re-resolves every instrument's mode. Instruments whose rule
    /// pins a mode keep it. The mode set here outranks every configuration layer until the next
    /// call, so a reload does not undo it.
    pub(crate) fn set_mode(&self, mode: Mode) {
        let instruments = self.instruments.lock();
        let mut cutover = self.cutover.lock();
        cutover.switch(mode);
        self.config.write().mode = cutover.global();
        for r in instruments.values() {
            r.core.set_mode_bits(cutover.bits_of(r.pinned));
        }
    }

    /// Sets every instrument, pinned or not, to `mode` (the emergency switch); `None` returns
    /// each instrument to its rule's pin or the global mode.
    pub(crate) fn force_mode(&self, mode: Option<Mode>) {
        let instruments = self.instruments.lock();
        let mut cutover = self.cutover.lock();
        cutover.force(mode);
        for r in instruments.values() {
            r.core.set_mode_bits(cutover.bits_of(r.pinned));
        }
    }

    /// The mode given to [`force_mode`](Self::force_mode), if any.
    pub(crate) fn forced_mode(&self) -> Option<Mode> {
        self.cutover.lock().forced()
    }

    /// Applies a reloaded configuration (see [`crate::reload::reload`]): what can change at
    /// runtime changes (the configured mode, under a `set_mode` switch if one was made; the
    /// rules: pins, and the names, temporality and limits of instruments registered from now
    /// on; the global cardinality limit for new instruments), and the outcome lists what needs
    /// a restart.
    pub(crate) fn apply(&self, new: Config) -> ReloadOutcome {
        let mut outcome = ReloadOutcome::default();
        let instruments = self.instruments.lock();
        let mut config = self.config.write();
        let mut cutover = self.cutover.lock();
        cutover.reconfigure(new.mode);
        let mode = cutover.global();
        // Settings baked into the running pipelines need a restart.
        let pending = [
            ("service", config.service != new.service),
            ("environment", config.environment != new.environment),
            ("tags", config.tags != new.tags),
            ("statsd", config.statsd != new.statsd),
            ("otlp", config.otlp != new.otlp),
        ];
        outcome.needs_restart =
            pending.iter().filter(|(_, changed)| *changed).map(|(k, _)| (*k).to_owned()).collect();
        let mut instruments = instruments;
        for r in instruments.values_mut() {
            let spec = r.core.spec();
            let resolved = new.rules.resolve(&spec.name);
            let bits = cutover.bits_of(resolved.mode);
            let before = r.core.mode_bits();
            r.core.set_mode_bits(bits);
            if before != r.core.mode_bits() {
                outcome.mode_changes += 1;
            }
            let wanted_statsd = statsd_name(
                &config.statsd.prefix,
                resolved.statsd_name.as_deref().unwrap_or(&spec.name),
            );
            let wanted_otel = resolved.otel_name.as_deref().unwrap_or(&spec.name);
            let wanted_temporality = resolved.temporality.unwrap_or(config.otlp.temporality);
            if wanted_statsd != spec.statsd_name
                || wanted_otel != spec.otel_name
                || wanted_temporality != spec.temporality
            {
                outcome.needs_restart.push(format!("rules: {}", spec.name));
            }
            r.rule = resolved.rule;
            r.pinned = resolved.mode;
        }
        outcome.instruments = instruments.len();
        config.mode = mode;
        config.rules = new.rules;
        config.cardinality_limit = new.cardinality_limit;
        config.cumulative_series_warning = new.cumulative_series_warning;
        config.reload = new.reload;
        outcome
    }

    /// Closes every instrument: later emits are counted as dropped after shutdown.
    pub(crate) fn close_all(&self) {
        for r in self.instruments.lock().values() {
            r.core.close();
        }
    }

    /// The catalog of every registered instrument.
    pub(crate) fn catalog(&self) -> crate::catalog::Catalog {
        // Lock order, as everywhere: instruments, then config (a reload holds the instruments
        // while it waits to write the config).
        let registered = self.instruments.lock();
        let config = self.config.read();
        let mut instruments: Vec<_> = registered
            .values()
            .map(|r| {
                let core = &r.core;
                let spec = core.spec();
                crate::catalog::CatalogInstrument {
                    name: spec.name.clone(),
                    kind: spec.kind,
                    unit: spec.unit.clone(),
                    description: spec.description.clone(),
                    statsd_name: Some(spec.statsd_name.clone()),
                    statsd_type: spec.statsd_type.code().to_owned(),
                    otel_name: Some(spec.otel_name.clone()),
                    tag_keys: core.tag_keys(),
                    mode: crate::cutover::mode_name(core.mode_bits()).to_owned(),
                    temporality: Some(spec.temporality.as_str().to_owned()),
                    rule: r.rule.clone(),
                    buckets: spec.boundaries.clone(),
                    series: core.series_count(),
                }
            })
            .collect();
        instruments.sort_by(|a, b| a.name.cmp(&b.name));
        crate::catalog::Catalog {
            version: crate::catalog::CATALOG_VERSION,
            service: config.service.clone(),
            statsd_prefix: config.statsd.prefix.clone(),
            global_tags: config.tags.iter().cloned().collect(),
            instruments,
        }
    }
}
