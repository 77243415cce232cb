//! `dualmetrics shim`: TOML config plus flags (flags win), tracing to stderr, run until Ctrl-C
//! or SIGTERM.
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
    #[arg(long)]
    pub udp: Option<String>,
    /// TCP StatsD listen address (newline framed). Default off.
    #[arg(long)]
    pub tcp: Option<String>,
    /// Unix datagram socket path. Default off.
    #[arg(long)]
    pub unix: Option<PathBuf>,
    /// Legacy StatsD daemon to tee raw bytes to (UDP). Default off.
    #[arg(long)]
    pub tee: Option<String>,
    /// OTLP export endpoint. Default http://127.0.0.1:4317.
    #[arg(long)]
    pub otlp_endpoint: Option<String>,
    /// OTLP export protocol: grpc or http.
    #[arg(long, value_parser = ["grpc", "http"])]
    pub otlp_protocol: Option<String>,
    /// OTLP gRPC input (delta → cumulative) listen address. Default off.
    #[arg(long)]
    pub otlp_in: Option<String>,
    /// Flush interval in milliseconds. Default 10000.
    #[arg(long)]
    pub flush_interval_ms: Option<u64>,
    /// Output temporality: cumulative or delta.
    #[arg(long, value_parser = ["cumulative", "delta"])]
    pub temporality: Option<String>,
    /// Mapping file (statsd_exporter format): dotted keys → metric name + labels; reloaded when
    /// it changes. Default off.
    #[arg(long, env = "DUALMETRICS_SHIM_MAPPING")]
    pub mapping: Option<PathBuf>,
}

impl ShimArgs {
    /// The effective configuration: file (or defaults), then flags.
    ///
    /// # Errors
    /// When the file cannot be read or parsed.
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
        Ok(c)
    }
}

/// Runs the shim until Ctrl-C or SIGTERM, then shuts down gracefully and prints the counters.
///
/// # Errors
/// Configuration, bind, runtime or shutdown errors.
pub fn run_cli(args: &ShimArgs) -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .try_init();
    let shim = Shim::bind(args.to_config()?)?;
    tracing::info!(udp = ?shim.udp_addr(), tcp = ?shim.tcp_addr(), unix = ?shim.unix_path(),
        otlp_in = ?shim.otlp_in_addr(), tee = ?shim.tee_target(), "dualmetrics shim listening");
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
