//! `dualmetrics shim`: TOML config plus flags (flags win; every flag also reads a
//! `DUALMETRICS_SHIM_*` environment variable), tracing to stderr (plain text unless stderr is a
//! terminal, or JSON lines), run until Ctrl-C or SIGTERM.
//!
//! The shim usually takes the legacy daemon's port, so it refuses to start until the legacy
//! path is explicit: `--tee HOST:PORT` (where the daemon listens now) or `--no-tee` (there is
//! none); in TOML `[tee] target = "…"` or `[tee] none = true`.
use crate::config::{Protocol, ShimConfig, Temporality};
use crate::Shim;
use std::path::PathBuf;

/// Arguments of `dualmetrics shim`.
#[derive(Debug, Clone, clap::Args)]
pub struct ShimArgs {
    /// TOML configuration file (see the crate docs for the keys).
    #[arg(long, env = "DUALMETRICS_SHIM_CONFIG")]
    pub config: Option<PathBuf>,
    /// UDP StatsD listen address ("" turns UDP off). Default 127.0.0.1:8125.
    #[arg(long, env = "DUALMETRICS_SHIM_UDP")]
    pub udp: Option<String>,
    /// TCP StatsD listen address (newline framed). Default off.
    #[arg(long, env = "DUALMETRICS_SHIM_TCP")]
    pub tcp: Option<String>,
    /// Unix datagram socket path. Default off.
    #[arg(long, env = "DUALMETRICS_SHIM_UNIX")]
    pub unix: Option<PathBuf>,
    /// The legacy StatsD daemon (UDP) every received datagram is forwarded to, unchanged.
    /// Required unless --no-tee: the shim usually takes that daemon's port.
    #[arg(long, env = "DUALMETRICS_SHIM_TEE", conflicts_with = "no_tee")]
    pub tee: Option<String>,
    /// There is no legacy daemon to forward to (the OTLP pipeline only).
    #[arg(long, env = "DUALMETRICS_SHIM_NO_TEE")]
    pub no_tee: bool,
    /// OTLP export endpoint. Default http://127.0.0.1:4317.
    #[arg(long, env = "DUALMETRICS_SHIM_OTLP_ENDPOINT")]
    pub otlp_endpoint: Option<String>,
    /// OTLP export protocol: grpc or http.
    #[arg(long, env = "DUALMETRICS_SHIM_OTLP_PROTOCOL", value_parser = ["grpc", "http"])]
    pub otlp_protocol: Option<String>,
    /// A request header for the OTLP export, `name=value` (repeatable; the environment variable
    /// takes `a=1,b=2`). Values are never printed.
    #[arg(long = "otlp-header", env = "DUALMETRICS_SHIM_OTLP_HEADERS", value_delimiter = ',')]
    pub otlp_headers: Vec<String>,
    /// PEM CA file for an https:// export endpoint (default: the platform's roots).
    #[arg(long, env = "DUALMETRICS_SHIM_OTLP_CA_FILE")]
    pub otlp_ca_file: Option<PathBuf>,
    /// PEM client certificate for mutual TLS (with --otlp-client-key).
    #[arg(long, env = "DUALMETRICS_SHIM_OTLP_CLIENT_CERT", requires = "otlp_client_key")]
    pub otlp_client_cert: Option<PathBuf>,
    /// PEM private key of --otlp-client-cert.
    #[arg(long, env = "DUALMETRICS_SHIM_OTLP_CLIENT_KEY", requires = "otlp_client_cert")]
    pub otlp_client_key: Option<PathBuf>,
    /// OTLP gRPC input (delta → cumulative) listen address. Default off.
    #[arg(long, env = "DUALMETRICS_SHIM_OTLP_IN")]
    pub otlp_in: Option<String>,
    /// Admin endpoint address: GET /healthz, GET /metrics (Prometheus text). Default off.
    #[arg(long, env = "DUALMETRICS_SHIM_ADMIN")]
    pub admin: Option<String>,
    /// Flush interval in milliseconds. Default 10000.
    #[arg(long, env = "DUALMETRICS_SHIM_FLUSH_INTERVAL_MS")]
    pub flush_interval_ms: Option<u64>,
    /// Output temporality: cumulative or delta.
    #[arg(long, env = "DUALMETRICS_SHIM_TEMPORALITY", value_parser = ["cumulative", "delta"])]
    pub temporality: Option<String>,
    /// Log format on stderr: text (ANSI colours only when stderr is a terminal) or json.
    #[arg(long, env = "DUALMETRICS_SHIM_LOG_FORMAT", value_parser = ["text", "json"], default_value = "text")]
    pub log_format: String,
    /// Limits (defaults in `config.rs`): packets queued for the aggregator.
    #[arg(long, env = "DUALMETRICS_SHIM_QUEUE_CAPACITY")]
    pub queue_capacity: Option<usize>,
    /// Bytes the packet queue may hold.
    #[arg(long, env = "DUALMETRICS_SHIM_QUEUE_MAX_BYTES")]
    pub queue_max_bytes: Option<usize>,
    /// Distinct members per set and interval.
    #[arg(long, env = "DUALMETRICS_SHIM_MAX_SET_SIZE")]
    pub max_set_size: Option<usize>,
    /// Distinct set members per interval, all sets together.
    #[arg(long, env = "DUALMETRICS_SHIM_MAX_SET_MEMBERS_TOTAL")]
    pub max_set_members_total: Option<usize>,
    /// Largest OTLP input request, bytes.
    #[arg(long, env = "DUALMETRICS_SHIM_OTLP_IN_MAX_REQUEST_BYTES")]
    pub otlp_in_max_request_bytes: Option<usize>,
    /// Largest packet or TCP line accepted, bytes.
    #[arg(long, env = "DUALMETRICS_SHIM_MAX_PACKET_SIZE")]
    pub max_packet_size: Option<usize>,
    /// Concurrent TCP connections.
    #[arg(long, env = "DUALMETRICS_SHIM_MAX_TCP_CONNECTIONS")]
    pub max_tcp_connections: Option<usize>,
    /// Idle TCP connections are closed after this many ms (0: never).
    #[arg(long, env = "DUALMETRICS_SHIM_TCP_IDLE_TIMEOUT_MS")]
    pub tcp_idle_timeout_ms: Option<u64>,
    /// Most live series, all metrics.
    #[arg(long, env = "DUALMETRICS_SHIM_MAX_SERIES")]
    pub max_series: Option<usize>,
    /// Most live series of one metric (more go to its overflow series).
    #[arg(long, env = "DUALMETRICS_SHIM_MAX_SERIES_PER_METRIC")]
    pub max_series_per_metric: Option<usize>,
    /// Export requests queued for the exporter.
    #[arg(long, env = "DUALMETRICS_SHIM_EXPORT_QUEUE_CAPACITY")]
    pub export_queue_capacity: Option<usize>,
    /// Export timeout per attempt, ms.
    #[arg(long, env = "DUALMETRICS_SHIM_EXPORT_TIMEOUT_MS")]
    pub export_timeout_ms: Option<u64>,
    /// Shutdown deadline, ms.
    #[arg(long, env = "DUALMETRICS_SHIM_SHUTDOWN_TIMEOUT_MS")]
    pub shutdown_timeout_ms: Option<u64>,
    /// Mapping file (statsd_exporter format): dotted keys → metric name + labels; reloaded when
    /// it changes. Default off.
    #[arg(long, env = "DUALMETRICS_SHIM_MAPPING")]
    pub mapping: Option<PathBuf>,
}

impl ShimArgs {
    /// The effective configuration: file (or defaults), then flags.
    ///
    /// # Errors
    /// When the file cannot be read or parsed, or the legacy path is not explicit (neither a
    /// tee target nor `--no-tee` / `[tee] none = true`).
    pub fn to_config(&self) -> Result<ShimConfig, crate::BuildError> {
        let mut c = match &self.config {
            Some(p) => ShimConfig::from_file(p)?,
            None => ShimConfig::default(),
        };
        if let Some(v) = &self.udp {
            c.ingest.udp = v.clone();
        }
        if let Some(v) = &self.tcp {
            c.ingest.tcp = Some(v.clone());
        }
        if let Some(v) = &self.unix {
            c.ingest.unix = Some(v.clone());
        }
        if let Some(v) = &self.tee {
            c.tee.target = Some(v.clone());
        }
        if let Some(v) = &self.otlp_endpoint {
            c.export.endpoint = v.clone();
        }
        if let Some(v) = &self.otlp_protocol {
            c.export.protocol = if v == "http" { Protocol::Http } else { Protocol::Grpc };
        }
        if let Some(v) = &self.otlp_in {
            c.otlp_in.listen = Some(v.clone());
        }
        if let Some(v) = self.flush_interval_ms {
            c.aggregate.flush_interval_ms = v;
        }
        if let Some(v) = &self.mapping {
            c.mapping.file = Some(v.clone());
        }
        if let Some(v) = &self.temporality {
            c.aggregate.temporality =
                if v == "delta" { Temporality::Delta } else { Temporality::Cumulative };
        }
        for h in &self.otlp_headers {
            let Some((k, v)) = h.split_once('=') else {
                return Err(crate::BuildError::invalid(format!(
                    "--otlp-header: expected name=value, got an entry without '=' ({} bytes)",
                    h.len()
                )));
            };
            c.export.headers.0.insert(k.trim().to_owned(), v.trim().to_owned());
        }
        if let Some(v) = &self.otlp_ca_file {
            c.export.ca_file = Some(v.clone());
        }
        if let (Some(cert), Some(key)) = (&self.otlp_client_cert, &self.otlp_client_key) {
            c.export.client_cert_file = Some(cert.clone());
            c.export.client_key_file = Some(key.clone());
        }
        if let Some(v) = &self.admin {
            c.admin.listen = Some(v.clone());
        }
        if self.no_tee {
            c.tee.none = true;
            c.tee.target = None;
        }
        let set = |slot: &mut usize, v: Option<usize>| {
            if let Some(v) = v {
                *slot = v;
            }
        };
        set(&mut c.ingest.queue_capacity, self.queue_capacity);
        set(&mut c.ingest.max_packet_size, self.max_packet_size);
        set(&mut c.ingest.max_tcp_connections, self.max_tcp_connections);
        set(&mut c.aggregate.max_series, self.max_series);
        set(&mut c.aggregate.max_series_per_metric, self.max_series_per_metric);
        set(&mut c.export.queue_capacity, self.export_queue_capacity);
        set(&mut c.ingest.queue_max_bytes, self.queue_max_bytes);
        set(&mut c.aggregate.max_set_size, self.max_set_size);
        set(&mut c.aggregate.max_set_members_total, self.max_set_members_total);
        set(&mut c.otlp_in.max_request_bytes, self.otlp_in_max_request_bytes);
        if let Some(v) = self.tcp_idle_timeout_ms {
            c.ingest.tcp_idle_timeout_ms = v;
        }
        if let Some(v) = self.export_timeout_ms {
            c.export.timeout_ms = v;
        }
        if let Some(v) = self.shutdown_timeout_ms {
            c.shutdown_timeout_ms = Some(v);
        }
        c.require_legacy_choice()?;
        Ok(c)
    }
}

/// Runs the shim until Ctrl-C or SIGTERM, then shuts down gracefully and prints the counters.
///
/// # Errors
/// Configuration, bind, runtime or shutdown errors.
pub fn run_cli(args: &ShimArgs) -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
    use std::io::IsTerminal as _;
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let logs = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr);
    let _ = if args.log_format == "json" {
        logs.json().try_init()
    } else {
        logs.with_ansi(std::io::stderr().is_terminal()).try_init()
    };
    let shim = Shim::bind(args.to_config()?)?;
    tracing::info!(udp = ?shim.udp_addr(), tcp = ?shim.tcp_addr(), unix = ?shim.unix_path(),
        otlp_in = ?shim.otlp_in_addr(), tee = ?shim.tee_target(), admin = ?shim.admin_addr(),
        "dualmetrics shim listening");
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    let report = rt.block_on(shim.run(async {
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).ok();
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = async { match term.as_mut() { Some(t) => { t.recv().await; } None => std::future::pending().await } } => {}
        }
    }))?;
    eprintln!("{report:#?}");
    Ok(())
}
