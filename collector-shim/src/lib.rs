//! `dualmetrics-shim`: a StatsD/DogStatsD sidecar for services that cannot take the library.
//! It receives their StatsD, forwards the raw bytes unchanged to the legacy daemon (the tee),
//! and sends the same measurements as **cumulative** OTLP, so they join the dual path without a
//! code change. It also accepts OTLP from SDKs that emit delta and turns it into cumulative,
//! which stores such as VictoriaMetrics and Prometheus require (they drop delta).
//!
//! ```text
//!  UDP / TCP / Unix ─► ingest ─┬─► tee ─► legacy statsd daemon (raw bytes)
//!                              └─► queue ─► parse ─► map ─► aggregate ─► translate ─► export (gRPC | HTTP)
//!  OTLP gRPC (delta) ─► otlp_in: delta → cumulative ───────────────┘
//! ```
//! One stage per module: [`config`], `ingest`, `tee`, [`mapping`], [`aggregate`], [`translate`], [`export`],
//! [`otlp_in`], [`telemetry`], `pipeline` (the wiring). The parser is
//! `dualmetrics_model::statsd_parse`, shared with the rest of the workspace.
//!
//! # Usage
//! Bind first (tests get every address before traffic flows), then run until a shutdown future
//! completes. Shutdown drains the sockets, flushes the aggregator and exports what is left.
//!
//! ```no_run
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! use dualmetrics_shim::{Shim, ShimConfig};
//!
//! let mut config = ShimConfig::loopback();              // UDP on 127.0.0.1:0, 100 ms flushes
//! config.tee.target = Some("127.0.0.1:8125".into());   // the legacy daemon
//! config.export.endpoint = "http://127.0.0.1:4317".into();
//! let shim = Shim::bind(config)?;
//! println!("send StatsD to {}", shim.udp_addr().unwrap());
//! let report = shim.run(async { tokio::signal::ctrl_c().await.ok(); }).await?;
//! println!("{} lines", report.lines);
//! # Ok(()) }
//! ```
//! From synchronous code, [`BoundShim::spawn`] runs it on its own runtime thread and
//! [`RunningShim::shutdown`] stops it.
//!
//! The semantics (sample rates, units, temporality, zero injection, cardinality) are
//! documented where they are decided: [`aggregate`] and [`translate`].
//!
//! # Features
//! - StatsD types `c g ms h d s`, gauge `+`/`-`, sample rates, DogStatsD tags, multi-line
//!   packets, multi-value lines, container id and timestamp (parsed, not used).
//! - Cumulative OTLP with zero injection (delta optional), explicit-bucket histograms for timers.
//! - Bounded everything: packet queue, series caps with an overflow series, set sizes, export
//!   queue, OTLP-input series limit with staleness expiry. Bad input is counted by reason and
//!   logged rate-limited; the shim never panics on input.
//! - A `statsd_exporter`-format mapping file (`--mapping`, `[mapping] file`): dotted keys with
//!   dimensions in path nodes become a name plus labels, `action: drop` drops; hot-reloaded when
//!   it changes, the last good file kept when a new one is bad (see [`mapping`]).
//! - Self-telemetry `dualmetrics.shim.*`, exported with the data and readable via
//!   [`BoundShim::telemetry`].
//!
//! # Missing
//! - No TLS or auth on the OTLP export or input; no gzip.
//! - Delta exponential histograms on the OTLP input are forwarded unchanged, not converted.
//! - The DogStatsD `|T` timestamp does not back-date points; events and service checks are
//!   refused (`unsupported`).
#![deny(missing_docs)]

mod admin;
pub mod aggregate;
mod cli;
pub mod config;
#[cfg(test)]
mod drop_paths;
mod error;
pub mod export;
mod ingest;
pub mod mapping;
pub mod otlp_in;
mod pipeline;
mod tee;
pub mod telemetry;
pub mod translate;

pub use cli::{run_cli, ShimArgs};
pub use config::ShimConfig;
pub use error::{BuildError, ExportError, ShutdownError};
pub use pipeline::{process_packet, process_packet_mapped};
pub use tee::Tee;
pub use telemetry::{Telemetry, TelemetrySnapshot};

use std::future::Future;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// Entry point: [`Shim::bind`].
#[derive(Debug)]
pub struct Shim;

impl Shim {
    /// Validates `config` and binds every configured socket (ingest, tee, OTLP input).
    ///
    /// # Errors
    /// [`BuildError`] for invalid configuration, an invalid export endpoint, or a socket that
    /// cannot be bound.
    pub fn bind(config: ShimConfig) -> Result<BoundShim, BuildError> {
        config.validate()?;
        let mapper = mapping::Mapper::load(&config.mapping)?;
        if !config.export.endpoint.is_empty() {
            let invalid = |reason: String| BuildError::InvalidEndpoint {
                endpoint: config.export.endpoint.clone(),
                reason,
            };
            match config.export.protocol {
                config::Protocol::Grpc => {
                    tonic::transport::Endpoint::from_shared(config.export.endpoint.clone())
                        .map_err(|e| invalid(e.to_string()))?;
                }
                config::Protocol::Http => {
                    reqwest::Url::parse(&config.export.endpoint)
                        .map_err(|e| invalid(e.to_string()))?;
                }
            }
        }
        let listeners = ingest::bind(&config.ingest)?;
        let tee = match &config.tee.target {
            Some(t) if !t.is_empty() => Some(Arc::new(Tee::new(t)?)),
            _ => None,
        };
        let otlp_in = bind_tcp("otlp_in", &config.otlp_in.listen)?;
        let admin = bind_tcp("admin", &config.admin.listen)?;
        let addrs = Addrs {
            admin: admin.as_ref().and_then(|s| s.local_addr().ok()),
            udp: listeners.udp.as_ref().and_then(|s| s.local_addr().ok()),
            tcp: listeners.tcp.as_ref().and_then(|s| s.local_addr().ok()),
            unix: listeners.unix.as_ref().map(|(_, p)| p.clone()),
            otlp_in: otlp_in.as_ref().and_then(|s| s.local_addr().ok()),
        };
        let tel = Arc::new(Telemetry::default());
        Ok(BoundShim {
            addrs,
            parts: pipeline::Parts { cfg: config, listeners, tee, otlp_in, admin, tel, mapper },
        })
    }
}

/// A TCP listener on `addr`, if one is configured (unset or empty: off).
fn bind_tcp(
    what: &'static str,
    addr: &Option<String>,
) -> Result<Option<std::net::TcpListener>, BuildError> {
    match addr {
        Some(a) if !a.is_empty() => std::net::TcpListener::bind(a.as_str())
            .map(Some)
            .map_err(|source| BuildError::Bind { what, addr: a.clone(), source }),
        _ => Ok(None),
    }
}

#[derive(Debug, Clone)]
struct Addrs {
    admin: Option<SocketAddr>,
    udp: Option<SocketAddr>,
    tcp: Option<SocketAddr>,
    unix: Option<PathBuf>,
    otlp_in: Option<SocketAddr>,
}

/// A shim whose sockets are bound; nothing is read until [`BoundShim::run`].
pub struct BoundShim {
    addrs: Addrs,
    parts: pipeline::Parts,
}

impl std::fmt::Debug for BoundShim {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BoundShim").field("addrs", &self.addrs).finish_non_exhaustive()
    }
}

impl BoundShim {
    /// The UDP StatsD address, if enabled.
    pub fn udp_addr(&self) -> Option<SocketAddr> {
        self.addrs.udp
    }
    /// The TCP StatsD address, if enabled.
    pub fn tcp_addr(&self) -> Option<SocketAddr> {
        self.addrs.tcp
    }
    /// The Unix datagram socket path, if enabled.
    pub fn unix_path(&self) -> Option<&Path> {
        self.addrs.unix.as_deref()
    }
    /// The admin endpoint's address (`/healthz`, `/metrics`), if enabled.
    pub fn admin_addr(&self) -> Option<SocketAddr> {
        self.addrs.admin
    }
    /// The OTLP gRPC input address, if enabled.
    pub fn otlp_in_addr(&self) -> Option<SocketAddr> {
        self.addrs.otlp_in
    }
    /// The tee's target, if enabled.
    pub fn tee_target(&self) -> Option<SocketAddr> {
        self.parts.tee.as_ref().map(|t| t.target())
    }
    /// The live counters.
    pub fn telemetry(&self) -> Arc<Telemetry> {
        self.parts.tel.clone()
    }

    /// Runs every stage until `shutdown` completes, then drains, flushes and exports within the
    /// configured deadline. Must be called inside a multi-threaded tokio runtime.
    ///
    /// # Errors
    /// [`ShutdownError`] when a stage does not finish in time or fails.
    pub async fn run(
        self,
        shutdown: impl Future<Output = ()>,
    ) -> Result<TelemetrySnapshot, ShutdownError> {
        pipeline::run(self.parts, shutdown).await
    }

    /// Runs on a runtime of its own (one background thread); for synchronous callers and tests.
    pub fn spawn(self) -> RunningShim {
        let tel = self.telemetry();
        let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
        let thread = std::thread::Builder::new()
            .name("shim-runtime".into())
            .spawn(move || {
                let rt = tokio::runtime::Builder::new_multi_thread()
                    .worker_threads(2)
                    .enable_all()
                    .build()
                    .map_err(|e| ShutdownError::Internal(e.to_string()))?;
                rt.block_on(self.run(async {
                    let _ = stop_rx.await;
                }))
            })
            .expect("spawn shim runtime thread");
        RunningShim { tel, stop: Some(stop_tx), thread: Some(thread) }
    }
}

/// A shim running on its own thread ([`BoundShim::spawn`]). Dropping it shuts it down too.
#[derive(Debug)]
pub struct RunningShim {
    tel: Arc<Telemetry>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<Result<TelemetrySnapshot, ShutdownError>>>,
}

impl RunningShim {
    /// The live counters.
    pub fn telemetry(&self) -> &Telemetry {
        &self.tel
    }

    /// Graceful shutdown: drain, final flush, export; returns the final counters.
    ///
    /// # Errors
    /// [`ShutdownError`] from [`BoundShim::run`].
    pub fn shutdown(mut self) -> Result<TelemetrySnapshot, ShutdownError> {
        self.stop_and_join()
    }

    fn stop_and_join(&mut self) -> Result<TelemetrySnapshot, ShutdownError> {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
        match self.thread.take() {
            Some(t) => {
                t.join().map_err(|_| ShutdownError::Internal("shim thread panicked".into()))?
            }
            None => Err(ShutdownError::Internal("already shut down".into())),
        }
    }
}

impl Drop for RunningShim {
    fn drop(&mut self) {
        if self.thread.is_some() {
            let _ = self.stop_and_join();
        }
    }
}
