//! [`DualMetricsBuilder`]: configuration layers in, running pipelines out.
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use cadence::MetricSink;

use crate::backend::otel::OtelBackend;
use crate::backend::statsd::{open_sink, StatsdBackend};
use crate::backend::Backend;
use crate::config::Config;
use crate::config::{self, ConfigDoc, HistogramAggregation, Protocol, Sources, Temporality, Value};
use crate::error::{BuildError, Source};
use crate::instrument::Context;
use crate::registry::Registry;
use crate::rules::Rule;
use crate::telemetry::Telemetry;
use crate::{DualMetrics, Mode};

/// Builds a [`DualMetrics`].
///
/// Precedence, later wins: built-in defaults < config file `[default]` < `[env.<name>]`
/// (`name` from [`with_environment_name`](Self::with_environment_name) or `DUALMETRICS_ENV`) <
/// environment variables (`OTEL_*`, then `DUALMETRICS_*`) < the `with_*` calls here.
///
/// Per-metric rules do not merge key by key: they are checked in order, [`with_rule`](Self::with_rule)
/// rules first, then `[[env.<name>.rules]]`, then `[[default.rules]]`, and the first match wins
/// (see [`crate::rules`]).
#[must_use = "a builder does nothing until build() is called"]
pub struct DualMetricsBuilder {
    /// The file, the environment and the calls made here: resolved at `build`, and again at
    /// every reload.
    sources: Sources,
    statsd_sink: Option<Box<dyn MetricSink + Send + Sync>>,
    sighup: bool,
}

impl Default for DualMetricsBuilder {
    fn default() -> Self {
        Self::new()
    }
}

impl DualMetricsBuilder {
    /// A builder with no file; environment variables are read at [`build`](Self::build).
    pub fn new() -> Self {
        DualMetricsBuilder { sources: Sources::default(), statsd_sink: None, sighup: false }
    }

    /// Reads this TOML file. Defaults to the `DUALMETRICS_CONFIG` variable, else no file.
    pub fn with_config_file(mut self, path: impl Into<PathBuf>) -> Self {
        self.sources.doc = Some(ConfigDoc::Path(path.into()));
        self
    }

    /// Uses this TOML text as the configuration file; `name` stands for its path in errors.
    pub fn with_config_toml(mut self, name: impl Into<String>, text: impl Into<String>) -> Self {
        self.sources.doc = Some(ConfigDoc::Inline { name: name.into(), text: text.into() });
        self
    }

    /// Selects the `[env.<name>]` section. Defaults to the `DUALMETRICS_ENV` variable.
    pub fn with_environment_name(mut self, name: impl Into<String>) -> Self {
        self.sources.env_name = Some(name.into());
        self
    }

    /// Reads no environment variable: the configuration comes from the file, the defaults and
    /// the `with_*` calls only (tests, examples, a service that configures everything in code).
    /// A reload does not read the environment either.
    pub fn ignore_env(self) -> Self {
        self.with_env_vars(std::iter::empty::<(String, String)>())
    }

    /// Reads configuration variables from this set instead of the process environment (a
    /// fixed set, e.g. in tests; [`ignore_env`](Self::ignore_env) reads none).
    pub fn with_env_vars<K: Into<String>, V: Into<String>>(
        mut self,
        vars: impl IntoIterator<Item = (K, V)>,
    ) -> Self {
        self.sources.vars = Some(vars.into_iter().map(|(k, v)| (k.into(), v.into())).collect());
        self
    }

    fn set(mut self, key: &str, value: Value) -> Self {
        self.sources.code.set(key, value, Source::Code);
        self
    }

    fn set_str(self, key: &str, value: &str) -> Self {
        self.set(key, Value::Str(value.to_owned()))
    }

    fn set_millis(self, key: &str, d: Duration) -> Self {
        self.set(key, Value::Int(d.as_millis().min(i64::MAX as u128) as i64))
    }

    fn set_parsed(mut self, key: &str, raw: &str) -> Self {
        if let Err(e) = self.sources.code.set_parsed(key, raw, Source::Code) {
            self.sources.code_errors.push(e);
        }
        self
    }

    /// Mode: legacy, dual or otlp. Defaults to dual.
    pub fn with_mode(self, mode: Mode) -> Self {
        self.set_str("mode", mode.as_str())
    }

    /// `service.name` and the `service` tag. Defaults to `unknown_service`.
    pub fn with_service_name(self, name: &str) -> Self {
        self.set_str("service", name)
    }

    /// The `env` tag and `deployment.environment.name`. Defaults to the selected section name.
    pub fn with_environment(self, env: &str) -> Self {
        self.set_str("environment", env)
    }

    /// A global tag on every measurement, both pipelines.
    pub fn with_global_tag(mut self, key: &str, value: &str) -> Self {
        self.sources.code.set_entry("tags", key, value, Source::Code);
        self
    }

    /// Series per metric before the overflow series. Defaults to 10 000.
    pub fn with_cardinality_limit(self, limit: usize) -> Self {
        self.set("cardinality_limit", Value::Int(limit as i64))
    }

    /// StatsD target: `host:port` (UDP) or `unix:///path`. Defaults to `127.0.0.1:8125`.
    pub fn with_statsd_address(self, address: &str) -> Self {
        self.set_str("statsd.address", address)
    }

    /// Prefix of every StatsD name. Defaults to none.
    pub fn with_statsd_prefix(self, prefix: &str) -> Self {
        self.set_str("statsd.prefix", prefix)
    }

    /// StatsD aggregation interval. Defaults to 10 s (`DEFAULT_STATSD_FLUSH_INTERVAL`), as the OTLP
    /// export interval.
    pub fn with_statsd_flush_interval(self, interval: Duration) -> Self {
        self.set_millis("statsd.flush_interval_ms", interval)
    }

    /// Largest StatsD datagram. Defaults to 1432 (UDP) or 8192 (Unix) bytes.
    pub fn with_statsd_max_packet_bytes(self, bytes: usize) -> Self {
        self.set("statsd.max_packet_bytes", Value::Int(bytes as i64))
    }

    /// StatsD pacing budget in bytes per millisecond: a flush's datagrams leave at this rate (or
    /// faster when the flush would not fit in 80 % of the flush interval at it); `0` sends each
    /// flush as one burst. Defaults to 1432 (`DEFAULT_STATSD_PACING_BYTES_PER_MS`).
    pub fn with_statsd_pacing(self, bytes_per_ms: u64) -> Self {
        self.set("statsd.pacing_bytes_per_ms", Value::Int(bytes_per_ms.min(i64::MAX as u64) as i64))
    }

    /// Sends StatsD datagrams through this cadence sink instead of opening `statsd.address`.
    pub fn with_statsd_sink(mut self, sink: impl MetricSink + Send + Sync + 'static) -> Self {
        self.statsd_sink = Some(Box::new(sink));
        self
    }

    /// OTLP endpoint URL. Defaults to `http://127.0.0.1:4317` (gRPC) or
    /// `http://127.0.0.1:4318/v1/metrics` (HTTP).
    pub fn with_otlp_endpoint(self, url: &str) -> Self {
        self.set_str("otlp.endpoint", url)
    }

    /// OTLP transport. Defaults to gRPC.
    pub fn with_otlp_protocol(self, protocol: Protocol) -> Self {
        self.set_str(
            "otlp.protocol",
            if protocol == Protocol::Grpc { "grpc" } else { "http/protobuf" },
        )
    }

    /// An OTLP request header (gRPC metadata).
    pub fn with_otlp_header(mut self, key: &str, value: &str) -> Self {
        self.sources.code.set_entry("otlp.headers", key, value, Source::Code);
        self
    }

    /// OTLP export timeout. Defaults to 10 s.
    pub fn with_otlp_timeout(self, timeout: Duration) -> Self {
        self.set_millis("otlp.timeout_ms", timeout)
    }

    /// OTLP export interval. Defaults to 10 s.
    pub fn with_otlp_export_interval(self, interval: Duration) -> Self {
        self.set_millis("otlp.export_interval_ms", interval)
    }

    /// Global OTLP temporality. Defaults to cumulative.
    pub fn with_temporality(self, temporality: Temporality) -> Self {
        self.set_str("otlp.temporality", temporality.as_str())
    }

    /// OTLP histogram aggregation. Defaults to explicit buckets.
    pub fn with_histogram_aggregation(self, aggregation: HistogramAggregation) -> Self {
        let s = if aggregation == HistogramAggregation::Exponential {
            "exponential"
        } else {
            "explicit"
        };
        self.set_str("otlp.histogram", s)
    }

    /// Explicit boundaries for every histogram (in each histogram's unit).
    pub fn with_histogram_boundaries(self, boundaries: Vec<f64>) -> Self {
        self.set("otlp.histogram_boundaries", Value::Floats(boundaries))
    }

    /// PEM CA file for a TLS collector. Defaults to the system roots.
    pub fn with_otlp_ca_file(self, path: &str) -> Self {
        self.set_str("otlp.ca_file", path)
    }

    /// A client certificate and its private key (PEM files) for a collector that asks for one
    /// (mutual TLS): `otlp.client_cert_file` / `otlp.client_key_file`, also
    /// `OTEL_EXPORTER_OTLP_CLIENT_CERTIFICATE` / `OTEL_EXPORTER_OTLP_CLIENT_KEY`.
    pub fn with_otlp_client_certificate(self, cert_path: &str, key_path: &str) -> Self {
        self.set_str("otlp.client_cert_file", cert_path).set_str("otlp.client_key_file", key_path)
    }

    /// An OTel resource attribute.
    pub fn with_resource_attribute(mut self, key: &str, value: &str) -> Self {
        self.sources.code.set_entry("otlp.resource", key, value, Source::Code);
        self
    }

    /// Sets any key from a string, as an environment variable would (`"otlp.timeout_ms"`,
    /// `"500"`); errors surface at [`build`](Self::build).
    pub fn with_setting(self, key: &str, value: &str) -> Self {
        self.set_parsed(key, value)
    }

    /// A per-metric rule (see [`crate::rules`]). Rules given in code are checked before the
    /// file's rules, in call order; the first match wins.
    pub fn with_rule(mut self, rule: Rule) -> Self {
        self.sources.code_rules.push(rule);
        self
    }

    /// Polls the configuration file (every `reload.poll_interval_ms`, default
    /// [`config::DEFAULT_RELOAD_POLL_INTERVAL`]) and reloads when its contents change. The same
    /// as `reload.watch = true`. Needs a file ([`with_config_file`](Self::with_config_file) or
    /// `DUALMETRICS_CONFIG`).
    pub fn watch_config(self, watch: bool) -> Self {
        self.set("reload.watch", Value::Bool(watch))
    }

    /// Reloads the configuration when the process receives `SIGHUP` (Unix only; elsewhere this
    /// does nothing).
    pub fn reload_on_sighup(mut self) -> Self {
        self.sighup = true;
        self
    }

    /// Resolves the configuration without starting anything.
    ///
    /// # Errors
    /// As [`build`](Self::build), for configuration.
    pub fn resolve_config(&self) -> Result<config::Config, BuildError> {
        self.sources.resolve()
    }

    /// Validates the configuration and starts both pipelines.
    ///
    /// # Errors
    /// [`BuildError::Config`] naming the key, value and source of an invalid setting;
    /// [`BuildError::File`] for an unreadable or malformed file; [`BuildError::Backend`] when a
    /// socket or exporter cannot be set up.
    pub fn build(self) -> Result<DualMetrics, BuildError> {
        let sources = self.sources;
        let config = sources.resolve()?;
        let telemetry = Arc::new(Telemetry::default());
        let sink = match self.statsd_sink {
            Some(sink) => sink,
            None => open_sink(&config.statsd)?,
        };
        let legacy = StatsdBackend::start(
            sink,
            &config.statsd,
            config.tags.clone(),
            Arc::clone(&telemetry),
        )?;
        let new = OtelBackend::start(&config, Arc::clone(&telemetry))?;
        start(config, sources, telemetry, legacy, new, self.sighup)
    }

    /// Validates the configuration and builds the facade over the given pipelines instead of
    /// StatsD and OTLP: [`InMemory`](crate::InMemory) to read back what was recorded (each
    /// pipeline gets what the mode sends it), [`Noop`](crate::Noop) to drop one side. Modes,
    /// rules, tags, limits, reload and telemetry work as with [`build`](Self::build); the
    /// StatsD and OTLP settings are validated and unused.
    ///
    /// ```
    /// use dualmetrics::{DualMetrics, InMemory, Mode, Recorded};
    ///
    /// let metrics = DualMetrics::builder()
    ///     .with_mode(Mode::Legacy)
    ///     .build_with(InMemory::default(), InMemory::default())?;
    /// let jobs = metrics.counter("jobs.done").build()?;
    /// jobs.add(2, &[("queue", "mail")]);
    /// metrics.set_mode(Mode::Dual);
    /// jobs.add(3, &[("queue", "mail")]);
    ///
    /// let (legacy, new) = metrics.pipelines();
    /// assert_eq!(legacy.get("jobs.done", &[("queue", "mail")]), Some(Recorded::Counter(5)));
    /// assert_eq!(new.get("jobs.done", &[("queue", "mail")]), Some(Recorded::Counter(3)));
    /// # Ok::<(), dualmetrics::BuildError>(())
    /// ```
    ///
    /// # Errors
    /// As [`build`](Self::build), for configuration.
    pub fn build_with<L: Backend, N: Backend>(
        self,
        legacy: L,
        new: N,
    ) -> Result<DualMetrics<L, N>, BuildError> {
        let sources = self.sources;
        let config = sources.resolve()?;
        let telemetry = Arc::new(Telemetry::default());
        start(config, sources, telemetry, legacy, new, self.sighup)
    }
}

/// The facade over two started pipelines: the registry, the reload triggers, self-metrics.
fn start<L: Backend, N: Backend>(
    config: Config,
    sources: Sources,
    telemetry: Arc<Telemetry>,
    legacy: L,
    new: N,
    sighup: bool,
) -> Result<DualMetrics<L, N>, BuildError> {
    let ctx = Arc::new(Context { legacy, new, telemetry });
    let watch = config.reload.watch.then_some(config.reload.poll_interval);
    let registry = Arc::new(Registry::new(ctx, config, sources));
    let reloader = crate::reload::Reloader::start(&registry, watch, sighup)?;
    Ok(DualMetrics::from_registry(registry, reloader))
}
