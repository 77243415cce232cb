//! Turning merged layers into a validated [`Config`].
use std::path::PathBuf;
use std::time::Duration;

use super::layer::{Entry, Merged, Value, BASE_ENDPOINT};
use super::*;
use crate::error::{ConfigError, Source};
use crate::Mode;

/// Where StatsD lines go.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StatsdAddress {
    /// A UDP `host:port`.
    Udp(String),
    /// A Unix datagram socket path.
    Unix(PathBuf),
}

/// OTLP transport. Each needs its cargo feature: `grpc` (default) or `http-proto`; a
/// configured protocol whose feature is off is a configuration error naming `otlp.protocol`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Protocol {
    /// OTLP/gRPC (tonic).
    Grpc,
    /// OTLP/HTTP with protobuf bodies.
    HttpProtobuf,
}

impl Protocol {
    /// The protocol when none is configured: gRPC, or HTTP/protobuf in a build with only the
    /// `http-proto` transport.
    pub const BUILD_DEFAULT: Protocol = if cfg!(feature = "grpc") || !cfg!(feature = "http-proto") {
        Protocol::Grpc
    } else {
        Protocol::HttpProtobuf
    };
}

/// OTLP aggregation temporality.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Temporality {
    /// Running totals since start (the default; what Prometheus-compatible stores accept).
    Cumulative,
    /// Changes since the last export; series no bound handle holds are forgotten at each export.
    Delta,
}

impl Temporality {
    /// `cumulative` or `delta`, as configuration and the catalog spell it.
    pub fn as_str(self) -> &'static str {
        match self {
            Temporality::Cumulative => "cumulative",
            Temporality::Delta => "delta",
        }
    }
}

/// OTLP histogram aggregation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HistogramAggregation {
    /// Explicit bucket boundaries (the default; Prometheus reads them as `le` buckets).
    Explicit,
    /// Base-2 exponential buckets (opt-in).
    Exponential,
}

/// The StatsD pipeline's settings.
#[derive(Debug, Clone, PartialEq)]
pub struct StatsdConfig {
    /// Where lines go. Defaults to [`DEFAULT_STATSD_ADDRESS`].
    pub address: StatsdAddress,
    /// Prefix of every metric name (`prefix.name`). Defaults to none.
    pub prefix: String,
    /// In-process aggregation interval. Defaults to [`DEFAULT_STATSD_FLUSH_INTERVAL`].
    pub flush_interval: Duration,
    /// Largest datagram. Defaults to [`DEFAULT_STATSD_MAX_PACKET_BYTES`] (UDP) or
    /// [`DEFAULT_STATSD_MAX_UNIX_PACKET_BYTES`] (Unix).
    pub max_packet_bytes: usize,
    /// Type code for histograms without a time unit: `h` (default) or `d`.
    pub histogram_type: dualmetrics_model::statsd_line::StatsdType,
    /// Histogram samples buffered per series per flush.
    /// Defaults to [`DEFAULT_STATSD_MAX_SAMPLES_PER_FLUSH`].
    pub max_samples_per_flush: usize,
    /// Pacing budget: bytes per millisecond at which a flush's datagrams are sent (`0`: all at
    /// once). Defaults to [`DEFAULT_STATSD_PACING_BYTES_PER_MS`].
    pub pacing_bytes_per_ms: u64,
    /// DogStatsD protocol 1.1 value packing (`name:1:2:3|ms`): many histogram samples of a series
    /// per line. Only for receivers that accept it (the Datadog agent >= 6.25/7.25); the Etsy
    /// daemon counts such a line as a bad line. Defaults to false.
    pub value_packing: bool,
    /// Type code for histograms in a time unit: `ms` (default), `d` (DogStatsD distribution) or
    /// `h`.
    pub timer_type: dualmetrics_model::statsd_line::StatsdType,
}

/// OTLP request headers, `(name, value)`. Values are credentials more often than not
/// (`Authorization`, API keys), so `Debug` — and with it `dualmetrics config` — prints
/// `name: <redacted>`.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Headers(pub Vec<(String, String)>);

impl std::ops::Deref for Headers {
    type Target = Vec<(String, String)>;
    fn deref(&self) -> &Self::Target {
        &self.0
    }
}

impl std::fmt::Debug for Headers {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list().entries(self.0.iter().map(|(k, _)| format!("{k}: <redacted>"))).finish()
    }
}

/// The OTLP pipeline's settings.
#[derive(Debug, Clone, PartialEq)]
pub struct OtlpConfig {
    /// Full metrics endpoint URL. Defaults to [`DEFAULT_OTLP_GRPC_ENDPOINT`] or
    /// [`DEFAULT_OTLP_HTTP_ENDPOINT`].
    pub endpoint: String,
    /// Transport. Defaults to gRPC.
    pub protocol: Protocol,
    /// Extra request headers (gRPC metadata); `Debug` shows their names only.
    pub headers: Headers,
    /// Export timeout. Defaults to [`DEFAULT_OTLP_TIMEOUT`].
    pub timeout: Duration,
    /// HTTP/2 keepalive PING interval of the gRPC connection; `None` (`otlp.keepalive_ms = 0`)
    /// sends none. Defaults to [`super::DEFAULT_OTLP_KEEPALIVE`].
    pub keepalive: Option<Duration>,
    /// Export interval. Defaults to [`DEFAULT_OTLP_EXPORT_INTERVAL`].
    pub export_interval: Duration,
    /// Global temporality. Defaults to cumulative.
    pub temporality: Temporality,
    /// Histogram aggregation. Defaults to explicit buckets.
    pub histogram: HistogramAggregation,
    /// Explicit boundaries for every histogram, in the histogram's own unit. `None` means
    /// [`DEFAULT_HISTOGRAM_BOUNDARIES_MS`] scaled to the unit.
    pub histogram_boundaries: Option<Vec<f64>>,
    /// PEM file with the CA that signs the collector's certificate; `None` uses system roots.
    pub ca_file: Option<PathBuf>,
    /// PEM files of the client certificate and its private key, presented to a collector that
    /// asks for one (mutual TLS); both or neither.
    pub client_identity: Option<(PathBuf, PathBuf)>,
    /// Resource attributes besides `service.name` (from `otlp.resource` and
    /// `OTEL_RESOURCE_ATTRIBUTES`).
    pub resource: Vec<(String, String)>,
}

/// Configuration reload settings (see [`crate::DualMetrics::reload`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReloadConfig {
    /// Poll the configuration file and reload when its contents change. Defaults to false.
    pub watch: bool,
    /// How often the file is polled when `watch` is on. Defaults to
    /// [`DEFAULT_RELOAD_POLL_INTERVAL`].
    pub poll_interval: Duration,
}

/// A validated configuration.
#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    /// The global mode. Defaults to [`DEFAULT_MODE`].
    pub mode: Mode,
    /// `service.name`, and the `service` tag. Defaults to [`DEFAULT_SERVICE`].
    pub service: String,
    /// The `env` tag and `deployment.environment.name`. Defaults to the `DUALMETRICS_ENV` section
    /// name, if any.
    pub environment: Option<String>,
    /// Global tags on every measurement, in both pipelines (includes `service` and `env`).
    pub tags: Vec<(String, String)>,
    /// Series per metric. Defaults to [`DEFAULT_CARDINALITY_LIMIT`].
    pub cardinality_limit: usize,
    /// Series count past which a cumulative metric logs, once, a warning suggesting a delta
    /// rule (0 turns the warning off). Defaults to [`DEFAULT_CUMULATIVE_SERIES_WARNING`].
    pub cumulative_series_warning: usize,
    /// StatsD settings.
    pub statsd: StatsdConfig,
    /// OTLP settings.
    pub otlp: OtlpConfig,
    /// Per-metric rules, in match order (code, then `[env.<name>]`, then `[default]`).
    pub rules: crate::rules::Rules,
    /// Reload settings.
    pub reload: ReloadConfig,
    /// Emit the SDK's own telemetry as `dualmetrics.sdk.*` metrics (key `self_metrics`).
    /// Defaults to [`DEFAULT_SELF_METRICS`].
    pub self_metrics: bool,
}

struct Reader<'a> {
    merged: &'a Merged,
}

impl Reader<'_> {
    fn get(&self, key: &str) -> Option<&Entry> {
        self.merged.get(&(key.to_owned(), String::new()))
    }

    fn err(&self, key: &str, entry: &Entry, reason: impl Into<String>) -> ConfigError {
        ConfigError {
            key: key.to_owned(),
            value: entry.value.display(),
            origin: entry.source.clone(),
            reason: reason.into(),
        }
    }

    fn str(&self, key: &str) -> Option<(&str, &Entry)> {
        self.get(key).and_then(|e| match &e.value {
            Value::Str(s) => Some((s.as_str(), e)),
            _ => None,
        })
    }

    fn bool(&self, key: &str, default: bool) -> Result<bool, ConfigError> {
        match self.get(key) {
            None => Ok(default),
            Some(Entry { value: Value::Bool(b), .. }) => Ok(*b),
            Some(e) => Err(self.err(key, e, "expected true or false")),
        }
    }

    fn positive(&self, key: &str, default: u64) -> Result<u64, ConfigError> {
        match self.get(key) {
            None => Ok(default),
            Some(e) => match e.value {
                Value::Int(i) if i > 0 => Ok(i as u64),
                _ => Err(self.err(key, e, "must be a positive integer")),
            },
        }
    }

    fn millis(&self, key: &str, default: Duration) -> Result<Duration, ConfigError> {
        let ms = self.positive(key, default.as_millis() as u64)?;
        if ms > super::MAX_DURATION_MS {
            let e = self.get(key).expect("a value above the maximum is configured");
            return Err(self.err(
                key,
                e,
                format!("out of range: 1..={} (ms, one day)", super::MAX_DURATION_MS),
            ));
        }
        Ok(Duration::from_millis(ms))
    }

    fn table(&self, key: &str) -> Vec<(String, String)> {
        self.merged
            .range((key.to_owned(), String::new())..)
            .take_while(|((k, _), _)| k == key)
            .filter(|((_, entry), _)| !entry.is_empty())
            .map(|((_, entry), e)| (entry.clone(), e.value.display()))
            .collect()
    }

    fn rank_of(&self, key: &str) -> Option<u8> {
        self.get(key).map(|e| match e.source {
            Source::Default => 0,
            Source::File { ref section, .. } if section == "default" => 1,
            Source::File { .. } => 2,
            Source::Env(ref v) if v.starts_with("OTEL_") => 3,
            Source::Env(_) => 4,
            Source::Code => 5,
        })
    }
}

/// Validates the merged layers. `env_name` is the `DUALMETRICS_ENV` section, if any.
/// `rules` are already in match order.
pub(crate) fn resolve(
    merged: &Merged,
    env_name: Option<&str>,
    rules: Vec<crate::rules::SourcedRule>,
) -> Result<Config, ConfigError> {
    let r = Reader { merged };

    let mode = match r.get("mode") {
        None => DEFAULT_MODE,
        Some(e) => Mode::parse(&e.value.display())
            .ok_or_else(|| r.err("mode", e, "expected one of legacy, dual, otlp"))?,
    };
    let service = match r.str("service") {
        Some(("", e)) => return Err(r.err("service", e, "must not be empty")),
        Some((s, _)) => s.to_owned(),
        None => DEFAULT_SERVICE.to_owned(),
    };
    let environment =
        r.str("environment").map(|(s, _)| s.to_owned()).or(env_name.map(str::to_owned));

    let mut tags = vec![("service".to_owned(), service.clone())];
    if let Some(env) = &environment {
        tags.push(("env".to_owned(), env.clone()));
    }
    for (k, v) in r.table("tags") {
        dualmetrics_model::naming::validate_tag_key("<global tags>", &k).map_err(|e| {
            ConfigError {
                key: format!("tags.{k}"),
                value: v.clone(),
                origin: r.merged[&("tags".to_owned(), k.clone())].source.clone(),
                reason: e.to_string(),
            }
        })?;
        tags.retain(|(existing, _)| *existing != k);
        tags.push((k, v));
    }

    let cardinality_limit =
        r.positive("cardinality_limit", DEFAULT_CARDINALITY_LIMIT as u64)? as usize;
    let cumulative_series_warning = match r.get("cumulative_series_warning") {
        None => DEFAULT_CUMULATIVE_SERIES_WARNING,
        Some(Entry { value: Value::Int(i), .. }) if *i >= 0 => *i as usize,
        Some(e) => {
            return Err(r.err(
                "cumulative_series_warning",
                e,
                "must be 0 (off) or a positive integer",
            ))
        }
    };

    let statsd = resolve_statsd(&r)?;

    let otlp = resolve_otlp(&r, environment.as_deref())?;

    let reload = ReloadConfig {
        watch: r.bool("reload.watch", false)?,
        poll_interval: r.millis("reload.poll_interval_ms", DEFAULT_RELOAD_POLL_INTERVAL)?,
    };
    let rules = crate::rules::Rules::compile(rules)?;
    let self_metrics = r.bool("self_metrics", DEFAULT_SELF_METRICS)?;

    Ok(Config {
        mode,
        service,
        environment,
        tags,
        cardinality_limit,
        cumulative_series_warning,
        statsd,
        otlp,
        rules,
        reload,
        self_metrics,
    })
}

/// The `statsd.*` keys.
fn resolve_statsd(r: &Reader<'_>) -> Result<StatsdConfig, ConfigError> {
    let address = match r.str("statsd.address") {
        None => StatsdAddress::Udp(DEFAULT_STATSD_ADDRESS.to_owned()),
        Some((s, e)) => {
            parse_statsd_address(s).map_err(|reason| r.err("statsd.address", e, reason))?
        }
    };
    let default_packet = match address {
        StatsdAddress::Udp(_) => DEFAULT_STATSD_MAX_PACKET_BYTES,
        StatsdAddress::Unix(_) => DEFAULT_STATSD_MAX_UNIX_PACKET_BYTES,
    };
    let max_packet_bytes = r.positive("statsd.max_packet_bytes", default_packet as u64)? as usize;
    if let Some(e) = r.get("statsd.max_packet_bytes") {
        if !(64..=65_000).contains(&max_packet_bytes) {
            return Err(r.err("statsd.max_packet_bytes", e, "must be between 64 and 65000"));
        }
    }
    use dualmetrics_model::statsd_line::StatsdType;
    let histogram_type = match r.str("statsd.histogram_type") {
        None | Some(("h", _)) => StatsdType::Histogram,
        Some(("d", _)) => StatsdType::Distribution,
        Some((_, e)) => return Err(r.err("statsd.histogram_type", e, "expected h or d")),
    };
    let timer_type = match r.str("statsd.timer_type") {
        None | Some(("ms", _)) => StatsdType::Timer,
        Some(("d", _)) => StatsdType::Distribution,
        Some(("h", _)) => StatsdType::Histogram,
        Some((_, e)) => return Err(r.err("statsd.timer_type", e, "expected ms, d or h")),
    };
    let pacing_bytes_per_ms = match r.get("statsd.pacing_bytes_per_ms") {
        None => DEFAULT_STATSD_PACING_BYTES_PER_MS,
        Some(Entry { value: Value::Int(i), .. }) if *i >= 0 => *i as u64,
        Some(e) => {
            return Err(r.err(
                "statsd.pacing_bytes_per_ms",
                e,
                "must be 0 (unpaced) or a positive integer",
            ))
        }
    };
    let value_packing = r.bool("statsd.value_packing", false)?;
    Ok(StatsdConfig {
        pacing_bytes_per_ms,
        value_packing,
        timer_type,
        prefix: r.str("statsd.prefix").map(|(s, _)| s.to_owned()).unwrap_or_default(),
        flush_interval: r.millis("statsd.flush_interval_ms", DEFAULT_STATSD_FLUSH_INTERVAL)?,
        max_packet_bytes,
        histogram_type,
        max_samples_per_flush: r
            .positive("statsd.max_samples_per_flush", DEFAULT_STATSD_MAX_SAMPLES_PER_FLUSH as u64)?
            as usize,
        address,
    })
}

/// The `otlp.*` keys (the `OTEL_EXPORTER_OTLP_*` variables arrive as these keys).
fn resolve_otlp(r: &Reader<'_>, environment: Option<&str>) -> Result<OtlpConfig, ConfigError> {
    let protocol = match r.str("otlp.protocol") {
        None => Protocol::BUILD_DEFAULT,
        Some(("grpc", e)) if !cfg!(feature = "grpc") => {
            return Err(r.err(
                "otlp.protocol",
                e,
                "this build of dualmetrics lacks the `grpc` feature",
            ))
        }
        Some(("http/protobuf" | "http", e)) if !cfg!(feature = "http-proto") => return Err(r.err(
            "otlp.protocol",
            e,
            "this build of dualmetrics lacks the `http-proto` feature (add it to the dependency)",
        )),
        Some(("grpc", _)) => Protocol::Grpc,
        Some(("http/protobuf" | "http", _)) => Protocol::HttpProtobuf,
        Some((_, e)) => return Err(r.err("otlp.protocol", e, "expected grpc or http/protobuf")),
    };
    let endpoint = resolve_endpoint(r, protocol)?;
    let temporality = match r.str("otlp.temporality") {
        None => Temporality::Cumulative,
        Some((s, e)) => match s.to_ascii_lowercase().as_str() {
            "cumulative" => Temporality::Cumulative,
            "delta" | "lowmemory" => Temporality::Delta,
            _ => return Err(r.err("otlp.temporality", e, "expected cumulative or delta")),
        },
    };
    let histogram = match r.str("otlp.histogram") {
        None | Some(("explicit", _)) => HistogramAggregation::Explicit,
        Some(("exponential", _)) => HistogramAggregation::Exponential,
        Some((_, e)) => return Err(r.err("otlp.histogram", e, "expected explicit or exponential")),
    };
    let histogram_boundaries = match r.get("otlp.histogram_boundaries") {
        None => None,
        Some(e) => match &e.value {
            Value::Floats(v)
                if !v.is_empty()
                    && v.iter().all(|x| x.is_finite())
                    && v.windows(2).all(|w| w[0] < w[1]) =>
            {
                Some(v.clone())
            }
            _ => {
                return Err(r.err(
                    "otlp.histogram_boundaries",
                    e,
                    "expected a non-empty, strictly increasing list of finite numbers",
                ))
            }
        },
    };
    let (ca_file, client_identity) = resolve_tls_files(r)?;
    let mut resource = r.table("otlp.resource");
    if let Some(env) = environment {
        if !resource.iter().any(|(k, _)| k == "deployment.environment.name") {
            resource.push(("deployment.environment.name".to_owned(), env.to_owned()));
        }
    }
    Ok(OtlpConfig {
        endpoint,
        protocol,
        headers: Headers(r.table("otlp.headers")),
        timeout: r.millis("otlp.timeout_ms", DEFAULT_OTLP_TIMEOUT)?,
        keepalive: match r.get("otlp.keepalive_ms") {
            Some(Entry { value: Value::Int(0), .. }) => None,
            _ => Some(r.millis("otlp.keepalive_ms", super::DEFAULT_OTLP_KEEPALIVE)?),
        },
        export_interval: r.millis("otlp.export_interval_ms", DEFAULT_OTLP_EXPORT_INTERVAL)?,
        temporality,
        histogram,
        histogram_boundaries,
        ca_file,
        client_identity,
        resource,
    })
}

/// The OTLP endpoint: `otlp.endpoint`, or the base endpoint when it was given at a higher rank
/// (`/v1/metrics` appended for HTTP), else the protocol's default.
fn resolve_endpoint(r: &Reader<'_>, protocol: Protocol) -> Result<String, ConfigError> {
    let endpoint_rank = r.rank_of("otlp.endpoint");
    let base_rank = r.rank_of(BASE_ENDPOINT);
    let (endpoint_key, endpoint) = match (endpoint_rank, base_rank) {
        (Some(a), Some(b)) if b > a => (BASE_ENDPOINT, r.str(BASE_ENDPOINT)),
        (None, Some(_)) => (BASE_ENDPOINT, r.str(BASE_ENDPOINT)),
        _ => ("otlp.endpoint", r.str("otlp.endpoint")),
    };
    Ok(match endpoint {
        None => match protocol {
            Protocol::Grpc => DEFAULT_OTLP_GRPC_ENDPOINT.to_owned(),
            Protocol::HttpProtobuf => DEFAULT_OTLP_HTTP_ENDPOINT.to_owned(),
        },
        Some((s, e)) => {
            let shown_key =
                if endpoint_key == BASE_ENDPOINT { "otlp.endpoint" } else { endpoint_key };
            let url = s
                .parse::<http::Uri>()
                .map_err(|err| r.err(shown_key, e, format!("not a URL: {err}")))?;
            if !matches!(url.scheme_str(), Some("http" | "https"))
                || url.host().is_none_or(str::is_empty)
            {
                return Err(r.err(shown_key, e, "expected an http:// or https:// URL with a host"));
            }
            let is_base = endpoint_key == BASE_ENDPOINT;
            match protocol {
                Protocol::HttpProtobuf if is_base || url.path() == "/" || url.path().is_empty() => {
                    format!("{}/v1/metrics", s.trim_end_matches('/'))
                }
                _ => s.to_owned(),
            }
        }
    })
}

/// A client certificate file and its key file (mutual TLS).
type ClientIdentity = (PathBuf, PathBuf);

/// The private CA and the client identity (certificate and key, both or neither) for TLS.
fn resolve_tls_files(
    r: &Reader<'_>,
) -> Result<(Option<PathBuf>, Option<ClientIdentity>), ConfigError> {
    let ca_file = match r.str("otlp.ca_file") {
        None => None,
        Some((s, e)) => {
            let p = PathBuf::from(s);
            if !p.is_file() {
                return Err(r.err("otlp.ca_file", e, "no such file"));
            }
            Some(p)
        }
    };
    let file = |key: &str| -> Result<Option<(PathBuf, &Entry)>, ConfigError> {
        match r.str(key) {
            None => Ok(None),
            Some((s, e)) if PathBuf::from(s).is_file() => Ok(Some((PathBuf::from(s), e))),
            Some((_, e)) => Err(r.err(key, e, "no such file")),
        }
    };
    let client_identity = match (file("otlp.client_cert_file")?, file("otlp.client_key_file")?) {
        (None, None) => None,
        (Some((cert, _)), Some((key, _))) => Some((cert, key)),
        (Some((_, e)), None) => {
            return Err(r.err(
                "otlp.client_cert_file",
                e,
                "needs otlp.client_key_file (OTEL_EXPORTER_OTLP_CLIENT_KEY) too",
            ))
        }
        (None, Some((_, e))) => {
            return Err(r.err(
                "otlp.client_key_file",
                e,
                "needs otlp.client_cert_file (OTEL_EXPORTER_OTLP_CLIENT_CERTIFICATE) too",
            ))
        }
    };
    Ok((ca_file, client_identity))
}

fn parse_statsd_address(s: &str) -> Result<StatsdAddress, String> {
    if let Some(path) = s.strip_prefix("unix://") {
        if path.is_empty() {
            return Err("unix:// needs a socket path".into());
        }
        return Ok(StatsdAddress::Unix(PathBuf::from(path)));
    }
    let hostport = s.strip_prefix("udp://").unwrap_or(s);
    let (host, port) = hostport.rsplit_once(':').ok_or("expected host:port or unix:///path")?;
    if host.is_empty() || port.parse::<u16>().map_or(true, |p| p == 0) {
        return Err("expected host:port with a port from 1 to 65535".into());
    }
    Ok(StatsdAddress::Udp(hostport.to_owned()))
}
