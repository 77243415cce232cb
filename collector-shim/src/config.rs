//! Configuration: a serde TOML document with one table per stage, and every default as a
//! `DEFAULT_*` const. Every listener binds 127.0.0.1 unless configured otherwise.
//!
//! ```toml
//! [ingest]
//! udp = "127.0.0.1:8125"          # "" turns it off
//! udp_recv_buffer = 8388608
//! tcp = "127.0.0.1:8125"          # off by default
//! unix = "/run/shim/statsd.sock"  # off by default
//! unix_socket_mode = 0o660        # permission bits of the socket file (TOML octal)
//! max_tcp_connections = 256       # more are refused (counted)
//! tcp_idle_timeout_ms = 300000    # idle TCP connections closed (0: never)
//!
//! [tee]
//! target = "127.0.0.1:8135"       # the legacy daemon; or `none = true`: `dualmetrics shim`
//!                                 # refuses to start with neither
//!
//! [aggregate]
//! flush_interval_ms = 10000
//! temporality = "cumulative"      # or "delta"
//! buckets = [0, 5, 10, 25, 50, 75, 100, 250, 500, 750, 1000, 2500, 5000, 7500, 10000]
//!
//! [export]
//! endpoint = "http://127.0.0.1:4317"
//! protocol = "grpc"               # or "http" (endpoint is then the full /v1/metrics URL)
//! resource = { "service.name" = "legacy-app" }
//! headers = { authorization = "Bearer …" }   # never printed
//! ca_file = "/etc/ssl/collector-ca.pem"       # https:// endpoints; default: platform roots
//! client_cert_file = "/etc/shim/client.pem"  # mutual TLS, with client_key_file
//!
//! [otlp_in]
//! listen = "127.0.0.1:4319"       # off by default
//!
//! [admin]
//! listen = "127.0.0.1:8126"       # GET /healthz, GET /metrics (Prometheus text); off by default
//!
//! [mapping]
//! file = "/etc/shim/mapping.yml"  # statsd_exporter-format mapping file; off by default
//! poll_interval_ms = 1000         # reload when its contents change
//! ```
use crate::error::BuildError;
use serde::Deserialize;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Default UDP listen address.
pub const DEFAULT_UDP_ADDR: &str = "127.0.0.1:8125";
/// Default UDP `SO_RCVBUF` (8 MiB; the kernel may cap it at `net.core.rmem_max`).
pub const DEFAULT_UDP_RECV_BUFFER: usize = 8 * 1024 * 1024;
/// Largest packet accepted (bytes); larger ones are counted as `oversized_packet` and dropped.
pub const DEFAULT_MAX_PACKET_SIZE: usize = 65_507;
/// Packets queued between the sockets and the aggregator; beyond it, packets are dropped.
pub const DEFAULT_QUEUE_CAPACITY: usize = 16_384;
/// Bytes the packet queue may hold (64 MiB): past them a packet is dropped as `queue_full`, so
/// the queue's memory is bounded in bytes, not only in packets (16,384 UDP batches of up to
/// 64 KiB would be 1 GiB).
pub const DEFAULT_QUEUE_MAX_BYTES: usize = 64 * 1024 * 1024;
/// Largest OTLP input request accepted (4 MiB, gRPC's usual limit); a larger one is refused
/// with `RESOURCE_EXHAUSTED` before it is decoded.
pub const DEFAULT_OTLP_IN_MAX_REQUEST_BYTES: usize = 4 * 1024 * 1024;
/// Concurrent TCP connections; a connection past them is refused (counted in
/// `dualmetrics.shim.tcp.refused`).
pub const DEFAULT_MAX_TCP_CONNECTIONS: usize = 256;
/// A TCP connection that sends nothing for this long is closed (counted in
/// `dualmetrics.shim.tcp.idle_closed`), so idle clients cannot hold every connection slot:
/// 5 minutes (`0` keeps idle connections open).
pub const DEFAULT_TCP_IDLE_TIMEOUT: Duration = Duration::from_secs(300);
/// Permission bits of the Unix datagram socket file, set after bind: `0o660`, owner and group
/// may send.
pub const DEFAULT_UNIX_SOCKET_MODE: u32 = 0o660;
/// Largest value any `*_ms` setting accepts: one day. A larger one is a configuration error
/// (naming the key), never an overflow in time arithmetic.
pub const MAX_DURATION_MS: u64 = 86_400_000;
/// Flush (aggregation and export) interval.
pub const DEFAULT_FLUSH_INTERVAL: Duration = Duration::from_secs(10);
/// How long a new cumulative counter/histogram exports only its zero point before its first
/// total (at least one flush interval either way). Longer than the batching delay of the
/// collectors in front of a store that rejects out-of-order samples (vmagent flushes every 1 s
/// over several concurrent queues, so two exports 0.5 s apart can reach Prometheus reversed).
pub const DEFAULT_ZERO_HOLD: Duration = Duration::from_secs(3);
/// Explicit histogram bounds for timers, in milliseconds (the OTel SDK's defaults).
pub const DEFAULT_BUCKETS: [f64; 15] = [
    0.0, 5.0, 10.0, 25.0, 50.0, 75.0, 100.0, 250.0, 500.0, 750.0, 1000.0, 2500.0, 5000.0, 7500.0,
    10000.0,
];
/// Most live series (all metrics).
pub const DEFAULT_MAX_SERIES: usize = 100_000;
/// Most series per metric name before the overflow series takes over (above the OTel SDK's 2000).
pub const DEFAULT_MAX_SERIES_PER_METRIC: usize = 4_096;
/// Most distinct members of one set per interval.
pub const DEFAULT_MAX_SET_SIZE: usize = 100_000;
/// Distinct set members held per interval over all sets together: 1,000,000 (about 24 MB of
/// member hashes); beyond it new members are `set_limit` drops.
pub const DEFAULT_MAX_SET_MEMBERS_TOTAL: usize = 1_000_000;
/// Series not touched for this many intervals are forgotten (0 = never).
pub const DEFAULT_SERIES_TTL_INTERVALS: u64 = 0;
/// Default export endpoint (OTLP gRPC).
pub const DEFAULT_EXPORT_ENDPOINT: &str = "http://127.0.0.1:4317";
/// Timeout of one export attempt.
pub const DEFAULT_EXPORT_TIMEOUT: Duration = Duration::from_secs(5);
/// Retries after a failed export attempt.
pub const DEFAULT_EXPORT_RETRIES: u32 = 3;
/// First retry backoff (doubles each retry).
pub const DEFAULT_RETRY_BACKOFF: Duration = Duration::from_millis(200);
/// Export requests queued while an export is in flight.
pub const DEFAULT_EXPORT_QUEUE: usize = 64;
/// `service.name` of the exported resource.
pub const DEFAULT_SERVICE_NAME: &str = "dualmetrics-shim";
/// Most delta series the OTLP input converts.
pub const DEFAULT_OTLP_IN_MAX_SERIES: usize = 50_000;
/// OTLP input series not updated for this long are forgotten.
pub const DEFAULT_OTLP_IN_STALENESS: Duration = Duration::from_secs(300);
/// How often the mapping file is read to see whether it changed (the SDK's reload interval).
pub const DEFAULT_MAPPING_POLL_INTERVAL: Duration = Duration::from_secs(1);
/// How many distinct (key, type) mapping results the shim remembers before it starts over.
pub const DEFAULT_MAPPING_CACHE_SIZE: usize = 100_000;
/// How long graceful shutdown may take in total.
pub const DEFAULT_SHUTDOWN_TIMEOUT: Duration = Duration::from_secs(30);

/// The whole configuration.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ShimConfig {
    /// Sockets that receive StatsD.
    pub ingest: IngestConfig,
    /// Forwarding raw bytes to the legacy daemon.
    pub tee: TeeConfig,
    /// Aggregation and translation.
    pub aggregate: AggregateConfig,
    /// OTLP export.
    pub export: ExportConfig,
    /// OTLP (delta) input.
    pub otlp_in: OtlpInConfig,
    /// The mapping file for dotted StatsD keys.
    pub mapping: MappingConfig,
    /// The admin endpoint (`/healthz`, `/metrics`).
    pub admin: AdminConfig,
    /// Graceful shutdown deadline in ms. Defaults to [`DEFAULT_SHUTDOWN_TIMEOUT`].
    pub shutdown_timeout_ms: Option<u64>,
}

/// `[ingest]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct IngestConfig {
    /// UDP address; empty turns UDP off. Defaults to [`DEFAULT_UDP_ADDR`].
    pub udp: String,
    /// `SO_RCVBUF` for UDP. Defaults to [`DEFAULT_UDP_RECV_BUFFER`].
    pub udp_recv_buffer: usize,
    /// TCP address (newline-framed). Defaults to off.
    pub tcp: Option<String>,
    /// Unix datagram socket path. Defaults to off.
    pub unix: Option<PathBuf>,
    /// Largest packet (or TCP line) accepted. Defaults to [`DEFAULT_MAX_PACKET_SIZE`].
    pub max_packet_size: usize,
    /// Packet queue length. Defaults to [`DEFAULT_QUEUE_CAPACITY`].
    pub queue_capacity: usize,
    /// Bytes the packet queue may hold. Defaults to [`DEFAULT_QUEUE_MAX_BYTES`].
    pub queue_max_bytes: usize,
    /// Most tags on one line. Defaults to the parser's `DEFAULT_MAX_TAGS` (64).
    pub max_tags: usize,
    /// Longest line. Defaults to the parser's `DEFAULT_MAX_LINE_LEN` (16 KiB).
    pub max_line_len: usize,
    /// Concurrent TCP connections. Defaults to [`DEFAULT_MAX_TCP_CONNECTIONS`].
    pub max_tcp_connections: usize,
    /// Idle TCP connections are closed after this many ms (`0`: never). Defaults to
    /// [`DEFAULT_TCP_IDLE_TIMEOUT`].
    pub tcp_idle_timeout_ms: u64,
    /// Permission bits of the Unix socket file. Defaults to [`DEFAULT_UNIX_SOCKET_MODE`].
    pub unix_socket_mode: u32,
}

impl Default for IngestConfig {
    fn default() -> Self {
        IngestConfig {
            udp: DEFAULT_UDP_ADDR.to_owned(),
            udp_recv_buffer: DEFAULT_UDP_RECV_BUFFER,
            tcp: None,
            unix: None,
            max_packet_size: DEFAULT_MAX_PACKET_SIZE,
            queue_capacity: DEFAULT_QUEUE_CAPACITY,
            queue_max_bytes: DEFAULT_QUEUE_MAX_BYTES,
            max_tags: dualmetrics_model::statsd_parse::DEFAULT_MAX_TAGS,
            max_line_len: dualmetrics_model::statsd_parse::DEFAULT_MAX_LINE_LEN,
            max_tcp_connections: DEFAULT_MAX_TCP_CONNECTIONS,
            tcp_idle_timeout_ms: DEFAULT_TCP_IDLE_TIMEOUT.as_millis() as u64,
            unix_socket_mode: DEFAULT_UNIX_SOCKET_MODE,
        }
    }
}

/// `[admin]`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AdminConfig {
    /// Address of the HTTP admin endpoint (`GET /healthz`, `GET /metrics`). Defaults to off.
    pub listen: Option<String>,
}

/// `[tee]`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TeeConfig {
    /// The legacy StatsD daemon (UDP). Defaults to off.
    pub target: Option<String>,
    /// Says there is no legacy daemon: `dualmetrics shim` refuses to start with neither this
    /// nor a `target` ([`ShimConfig::require_legacy_choice`]).
    pub none: bool,
}

/// Output temporality of sums and histograms.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Temporality {
    /// Totals since a start time (the default; what Prometheus-compatible stores keep).
    #[default]
    Cumulative,
    /// Per-interval values.
    Delta,
}

/// `[aggregate]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AggregateConfig {
    /// Flush interval in ms. Defaults to [`DEFAULT_FLUSH_INTERVAL`].
    pub flush_interval_ms: u64,
    /// Defaults to cumulative.
    pub temporality: Temporality,
    /// Histogram bounds for `ms`, `h` and `d`. Defaults to [`DEFAULT_BUCKETS`].
    pub buckets: Vec<f64>,
    /// Defaults to [`DEFAULT_MAX_SERIES`].
    pub max_series: usize,
    /// Defaults to [`DEFAULT_MAX_SERIES_PER_METRIC`].
    pub max_series_per_metric: usize,
    /// Defaults to [`DEFAULT_MAX_SET_SIZE`].
    pub max_set_size: usize,
    /// Defaults to [`DEFAULT_MAX_SET_MEMBERS_TOTAL`].
    pub max_set_members_total: usize,
    /// Defaults to [`DEFAULT_SERIES_TTL_INTERVALS`] (never).
    pub series_ttl_intervals: u64,
    /// Zero injection: ms during which a new cumulative counter/histogram is held back after
    /// its zero point was exported. Defaults to [`DEFAULT_ZERO_HOLD`].
    pub zero_hold_ms: u64,
}

impl Default for AggregateConfig {
    fn default() -> Self {
        AggregateConfig {
            flush_interval_ms: DEFAULT_FLUSH_INTERVAL.as_millis() as u64,
            temporality: Temporality::Cumulative,
            buckets: DEFAULT_BUCKETS.to_vec(),
            max_series: DEFAULT_MAX_SERIES,
            max_series_per_metric: DEFAULT_MAX_SERIES_PER_METRIC,
            max_set_size: DEFAULT_MAX_SET_SIZE,
            max_set_members_total: DEFAULT_MAX_SET_MEMBERS_TOTAL,
            series_ttl_intervals: DEFAULT_SERIES_TTL_INTERVALS,
            zero_hold_ms: DEFAULT_ZERO_HOLD.as_millis() as u64,
        }
    }
}

impl AggregateConfig {
    /// The flush interval.
    pub fn flush_interval(&self) -> Duration {
        Duration::from_millis(self.flush_interval_ms)
    }
}

/// OTLP transport.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Protocol {
    /// tonic `MetricsService` (the default).
    #[default]
    Grpc,
    /// `POST` protobuf to the endpoint URL as given.
    Http,
}

/// `[export]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ExportConfig {
    /// Endpoint; empty turns export off (aggregates are counted as dropped). Defaults to
    /// [`DEFAULT_EXPORT_ENDPOINT`].
    pub endpoint: String,
    /// Defaults to gRPC.
    pub protocol: Protocol,
    /// One attempt's timeout in ms. Defaults to [`DEFAULT_EXPORT_TIMEOUT`].
    pub timeout_ms: u64,
    /// Defaults to [`DEFAULT_EXPORT_RETRIES`].
    pub max_retries: u32,
    /// Defaults to [`DEFAULT_RETRY_BACKOFF`].
    pub retry_backoff_ms: u64,
    /// Defaults to [`DEFAULT_EXPORT_QUEUE`].
    pub queue_capacity: usize,
    /// Resource attributes. Defaults to `service.name` = [`DEFAULT_SERVICE_NAME`].
    pub resource: BTreeMap<String, String>,
    /// Also export the shim's own `dualmetrics.shim.*` metrics. Defaults to true.
    pub self_telemetry: bool,
    /// Request headers (gRPC metadata), e.g. `authorization`; `Debug` shows their names only.
    pub headers: Headers,
    /// PEM file of the CA that signs the collector's certificate (`https://` endpoints);
    /// defaults to the platform's roots.
    pub ca_file: Option<PathBuf>,
    /// PEM files of a client certificate and its key for a collector that asks for one
    /// (mutual TLS); both or neither.
    pub client_cert_file: Option<PathBuf>,
    /// See [`ExportConfig::client_cert_file`].
    pub client_key_file: Option<PathBuf>,
}

/// Export headers: values are credentials, never printed (`Debug` shows `name: <redacted>`).
#[derive(Clone, Default, Deserialize, PartialEq, Eq)]
#[serde(transparent)]
pub struct Headers(pub BTreeMap<String, String>);

impl std::fmt::Debug for Headers {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_map().entries(self.0.keys().map(|k| (k, "<redacted>"))).finish()
    }
}

impl Default for ExportConfig {
    fn default() -> Self {
        ExportConfig {
            endpoint: DEFAULT_EXPORT_ENDPOINT.to_owned(),
            protocol: Protocol::Grpc,
            timeout_ms: DEFAULT_EXPORT_TIMEOUT.as_millis() as u64,
            max_retries: DEFAULT_EXPORT_RETRIES,
            retry_backoff_ms: DEFAULT_RETRY_BACKOFF.as_millis() as u64,
            queue_capacity: DEFAULT_EXPORT_QUEUE,
            resource: BTreeMap::from([(
                "service.name".to_owned(),
                DEFAULT_SERVICE_NAME.to_owned(),
            )]),
            self_telemetry: true,
            headers: Headers::default(),
            ca_file: None,
            client_cert_file: None,
            client_key_file: None,
        }
    }
}

/// `[otlp_in]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct OtlpInConfig {
    /// gRPC listen address. Defaults to off.
    pub listen: Option<String>,
    /// Defaults to [`DEFAULT_OTLP_IN_MAX_SERIES`].
    pub max_series: usize,
    /// Defaults to [`DEFAULT_OTLP_IN_STALENESS`].
    pub staleness_ms: u64,
    /// Largest request accepted, bytes. Defaults to [`DEFAULT_OTLP_IN_MAX_REQUEST_BYTES`].
    pub max_request_bytes: usize,
}

impl Default for OtlpInConfig {
    fn default() -> Self {
        OtlpInConfig {
            listen: None,
            max_series: DEFAULT_OTLP_IN_MAX_SERIES,
            staleness_ms: DEFAULT_OTLP_IN_STALENESS.as_millis() as u64,
            max_request_bytes: DEFAULT_OTLP_IN_MAX_REQUEST_BYTES,
        }
    }
}

/// `[mapping]`: dotted StatsD keys → metric name + labels (see [`crate::mapping`]).
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct MappingConfig {
    /// The mapping file (`statsd_exporter` format). Defaults to off.
    pub file: Option<PathBuf>,
    /// Reload poll interval in ms (0 = never reload). Defaults to
    /// [`DEFAULT_MAPPING_POLL_INTERVAL`].
    pub poll_interval_ms: u64,
    /// Cached mapping results. Defaults to [`DEFAULT_MAPPING_CACHE_SIZE`].
    pub cache_size: usize,
}

impl Default for MappingConfig {
    fn default() -> Self {
        MappingConfig {
            file: None,
            poll_interval_ms: DEFAULT_MAPPING_POLL_INTERVAL.as_millis() as u64,
            cache_size: DEFAULT_MAPPING_CACHE_SIZE,
        }
    }
}

impl ShimConfig {
    /// Parses TOML.
    ///
    /// # Errors
    /// [`BuildError::ParseConfig`] for bad TOML or unknown keys.
    pub fn from_toml(text: &str) -> Result<Self, BuildError> {
        Ok(toml::from_str(text)?)
    }

    /// Reads and parses a TOML file.
    ///
    /// # Errors
    /// [`BuildError::ReadConfig`] or [`BuildError::ParseConfig`].
    pub fn from_file(path: &Path) -> Result<Self, BuildError> {
        let text = std::fs::read_to_string(path)
            .map_err(|source| BuildError::ReadConfig { path: path.to_owned(), source })?;
        Self::from_toml(&text)
    }

    /// A config for tests: UDP on an ephemeral loopback port, nothing else, 100 ms flushes.
    pub fn loopback() -> Self {
        let mut c = ShimConfig::default();
        c.ingest.udp = "127.0.0.1:0".to_owned();
        c.aggregate.flush_interval_ms = 100;
        c
    }

    /// The shutdown deadline.
    pub fn shutdown_timeout(&self) -> Duration {
        self.shutdown_timeout_ms.map(Duration::from_millis).unwrap_or(DEFAULT_SHUTDOWN_TIMEOUT)
    }

    /// The check `dualmetrics shim` makes before it binds: a shim usually takes the legacy
    /// daemon's port, and one started without a tee would cut the legacy pipeline silently, so
    /// the legacy path must be explicit (`[tee] target` / `--tee`, or `[tee] none = true` /
    /// `--no-tee`). Library users building a [`ShimConfig`] in code are not held to it.
    ///
    /// # Errors
    /// [`BuildError::InvalidConfiguration`] naming both ways out.
    pub fn require_legacy_choice(&self) -> Result<(), BuildError> {
        match (&self.tee.target, self.tee.none) {
            (Some(t), true) if !t.is_empty() => Err(BuildError::invalid(format!(
                "tee.target = {t:?} and tee.none = true: choose one"
            ))),
            (Some(t), false) if !t.is_empty() => Ok(()),
            (_, true) => Ok(()),
            _ => Err(BuildError::invalid(
                "no legacy path: the shim usually takes the legacy StatsD daemon's port, so say \
                 where that daemon listens now (--tee HOST:PORT, [tee] target) or that there is \
                 none (--no-tee, [tee] none = true)",
            )),
        }
    }

    /// Checks ranges and consistency.
    ///
    /// # Errors
    /// [`BuildError::InvalidConfiguration`] naming the first bad value.
    pub fn validate(&self) -> Result<(), BuildError> {
        let a = &self.aggregate;
        let durations = [
            ("aggregate.flush_interval_ms", a.flush_interval_ms, 1),
            ("aggregate.zero_hold_ms", a.zero_hold_ms, 0),
            ("export.timeout_ms", self.export.timeout_ms, 1),
            ("export.retry_backoff_ms", self.export.retry_backoff_ms, 0),
            ("otlp_in.staleness_ms", self.otlp_in.staleness_ms, 0),
            ("mapping.poll_interval_ms", self.mapping.poll_interval_ms, 0),
            ("ingest.tcp_idle_timeout_ms", self.ingest.tcp_idle_timeout_ms, 0),
            ("shutdown_timeout_ms", self.shutdown_timeout_ms.unwrap_or(0), 0),
        ];
        for (key, value, min) in durations {
            if !(min..=MAX_DURATION_MS).contains(&value) {
                return Err(BuildError::invalid(format!(
                    "{key} = {value} is out of range: {min}..={MAX_DURATION_MS} (ms)"
                )));
            }
        }
        if self.ingest.unix_socket_mode > 0o777 {
            return Err(BuildError::invalid(format!(
                "ingest.unix_socket_mode = {:#o} is out of range: 0..=0o777",
                self.ingest.unix_socket_mode
            )));
        }
        if a.buckets.iter().any(|b| !b.is_finite()) || a.buckets.windows(2).any(|w| w[0] >= w[1]) {
            return Err(BuildError::invalid(format!(
                "aggregate.buckets must be finite and strictly increasing: {:?}",
                a.buckets
            )));
        }
        if a.max_series == 0 || a.max_series_per_metric == 0 {
            return Err(BuildError::invalid(
                "aggregate.max_series and max_series_per_metric must be > 0",
            ));
        }
        let i = &self.ingest;
        if i.queue_capacity == 0 || i.max_packet_size == 0 || i.max_line_len == 0 {
            return Err(BuildError::invalid(
                "ingest.queue_capacity, max_packet_size and max_line_len must be > 0",
            ));
        }
        if i.queue_max_bytes < i.max_packet_size {
            return Err(BuildError::invalid(format!(
                "ingest.queue_max_bytes = {} is below ingest.max_packet_size = {}: no packet would fit",
                i.queue_max_bytes, i.max_packet_size
            )));
        }
        if self.otlp_in.max_request_bytes == 0 {
            return Err(BuildError::invalid("otlp_in.max_request_bytes must be > 0"));
        }
        let e = &self.export;
        if e.client_cert_file.is_some() != e.client_key_file.is_some() {
            return Err(BuildError::invalid(
                "export.client_cert_file and export.client_key_file go together (mutual TLS)",
            ));
        }
        for (key, file) in [
            ("export.ca_file", &e.ca_file),
            ("export.client_cert_file", &e.client_cert_file),
            ("export.client_key_file", &e.client_key_file),
        ] {
            if let Some(f) = file.as_ref().filter(|f| !f.is_file()) {
                return Err(BuildError::invalid(format!(
                    "{key} = {:?}: no such file",
                    f.display()
                )));
            }
        }
        if self.export.queue_capacity == 0 || self.export.timeout_ms == 0 {
            return Err(BuildError::invalid(
                "export.queue_capacity and export.timeout_ms must be > 0",
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_out_of_range_are_errors_naming_key_value_and_range() {
        for (doc, key) in [
            (
                "[aggregate]\nflush_interval_ms = 9223372036854775807\n",
                "aggregate.flush_interval_ms",
            ),
            ("[aggregate]\nflush_interval_ms = 0\n", "aggregate.flush_interval_ms"),
            ("[aggregate]\nzero_hold_ms = 99999999999999\n", "aggregate.zero_hold_ms"),
            ("shutdown_timeout_ms = 86400001\n", "shutdown_timeout_ms"),
            ("[ingest]\ntcp_idle_timeout_ms = 86400001\n", "ingest.tcp_idle_timeout_ms"),
        ] {
            let e = ShimConfig::from_toml(doc).map(|c| c.validate()).and_then(|r| r).unwrap_err();
            let text = e.to_string();
            assert!(text.contains(key) && text.contains("out of range"), "{doc}: {text}");
        }
        let e = ShimConfig::from_toml("[ingest]\nunix_socket_mode = 4095\n")
            .map(|c| c.validate())
            .and_then(|r| r)
            .unwrap_err();
        assert!(e.to_string().contains("ingest.unix_socket_mode = 0o7777"), "{e}");
    }

    #[test]
    fn the_example_config_parses_validates_and_names_the_legacy_path() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/shim/shim.toml");
        let c = ShimConfig::from_file(&path).unwrap();
        c.validate().unwrap();
        c.require_legacy_choice().unwrap();
        assert_eq!(c.tee.target.as_deref(), Some("127.0.0.1:8135"));
        assert_eq!(c.admin.listen.as_deref(), Some("127.0.0.1:8126"));
        assert_eq!(c.ingest.unix_socket_mode, 0o660);
    }

    #[test]
    fn without_a_tee_target_or_none_the_legacy_choice_is_an_error() {
        let c = ShimConfig::default();
        let e = c.require_legacy_choice().unwrap_err().to_string();
        assert!(e.contains("--tee") && e.contains("--no-tee"), "{e}");
        let c = ShimConfig::from_toml("[tee]\nnone = true\n").unwrap();
        c.require_legacy_choice().unwrap();
        let c = ShimConfig::from_toml("[tee]\nnone = true\ntarget = \"127.0.0.1:9\"\n").unwrap();
        assert!(c.require_legacy_choice().is_err());
    }

    #[test]
    fn defaults_bind_loopback_and_are_cumulative() {
        let c = ShimConfig::default();
        assert_eq!(c.ingest.udp, "127.0.0.1:8125");
        assert_eq!(c.aggregate.temporality, Temporality::Cumulative);
        c.validate().unwrap();
    }

    #[test]
    fn toml_sections_parse() {
        let c = ShimConfig::from_toml(
            "[ingest]\nudp = \"127.0.0.1:0\"\ntcp = \"127.0.0.1:0\"\n[aggregate]\ntemporality = \"delta\"\nbuckets = [1, 2]\n[export]\nprotocol = \"http\"\nendpoint = \"http://127.0.0.1:1/v1/metrics\"\n",
        )
        .unwrap();
        assert_eq!(c.aggregate.temporality, Temporality::Delta);
        assert_eq!(c.export.protocol, Protocol::Http);
        assert_eq!(c.aggregate.buckets, [1.0, 2.0]);
    }

    #[test]
    fn unknown_keys_are_refused() {
        assert!(ShimConfig::from_toml("[ingest]\nudpp = \"x\"\n").is_err());
    }

    #[test]
    fn unsorted_buckets_are_refused() {
        let mut c = ShimConfig::default();
        c.aggregate.buckets = vec![5.0, 1.0];
        assert!(c.validate().unwrap_err().to_string().contains("strictly increasing"));
    }
}
