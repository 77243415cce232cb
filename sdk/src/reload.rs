//! Configuration reload without restart: [`crate::DualMetrics::reload`], a file watch and
//! `SIGHUP`.
//!
//! The watch is a background thread that reads the configuration file every
//! `reload.poll_interval_ms` ([`crate::config::DEFAULT_RELOAD_POLL_INTERVAL`]) and reloads when
//! its contents differ from the last read (contents, not the modification time, so two writes
//! within the file system's time resolution are both seen). Replace the file atomically (write a
//! temporary file, then rename): a reader that catches a half-written file refuses it (counted
//! in `reloads_failed`) and reloads at the next poll that sees the complete file.
//!
//! The watch and the `SIGHUP` handler are set up at build: a reload that turns `reload.watch` on
//! or off, or changes `reload.poll_interval_ms`, takes effect at the next start. `SIGHUP` is
//! process-wide: every [`crate::DualMetrics`] built with `reload_on_sighup` reloads.
use std::path::PathBuf;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::mpsc;
use std::sync::{Arc, Weak};
use std::thread::JoinHandle;
use std::time::Duration;

use crate::backend::Backend;
use crate::error::{BuildError, ConfigError, Source};
use crate::registry::Registry;

pub use crate::registry::ReloadOutcome;

/// Re-reads the configuration sources and applies what can change at runtime
/// ([`Registry::apply`]). On error nothing changes: the failure is logged once, counted in
/// `reloads_failed` and kept as `last_reload_error`. Reloads run one at a time.
pub(crate) fn reload<L: Backend, N: Backend>(
    registry: &Registry<L, N>,
) -> Result<ReloadOutcome, BuildError> {
    let _one_at_a_time = registry.reloading.lock();
    let telemetry = &registry.ctx.telemetry;
    let new = match registry.sources().resolve() {
        Ok(c) => c,
        Err(e) => {
            telemetry.reloads_failed.fetch_add(1, Relaxed);
            *telemetry.last_reload_error.lock() = Some(e.to_string());
            tracing::error!(error = %e, "configuration reload refused; the last good configuration stays in force");
            return Err(e);
        }
    };
    let outcome = registry.apply(new);
    telemetry.reloads_ok.fetch_add(1, Relaxed);
    if !outcome.needs_restart.is_empty() {
        tracing::warn!(changes = ?outcome.needs_restart, "configuration reloaded; these changes apply after a restart");
    }
    Ok(outcome)
}

/// The background triggers of a [`crate::DualMetrics`]: stopped on shutdown.
#[derive(Default)]
pub(crate) struct Reloader {
    stop: Option<mpsc::Sender<()>>,
    threads: Vec<JoinHandle<()>>,
    #[cfg(unix)]
    sighup: Option<signal_hook::iterator::Handle>,
}

impl Reloader {
    /// Starts the file watch (every `watch` interval, if given) and the `SIGHUP` handler.
    pub(crate) fn start<L: Backend, N: Backend>(
        registry: &Arc<Registry<L, N>>,
        watch: Option<Duration>,
        sighup: bool,
    ) -> Result<Reloader, BuildError> {
        let mut reloader = Reloader::default();
        if let Some(interval) = watch {
            let path = registry.sources().file().ok_or_else(|| ConfigError {
                key: "reload.watch".into(),
                value: "true".into(),
                origin: Source::Code,
                reason:
                    "watching needs a configuration file (with_config_file or DUALMETRICS_CONFIG)"
                        .into(),
            })?;
            let (tx, rx) = mpsc::channel();
            reloader.stop = Some(tx);
            let weak = Arc::downgrade(registry);
            let last = std::fs::read(&path).ok();
            let thread = std::thread::Builder::new()
                .name("dualmetrics-config-watch".into())
                .spawn(move || watch_loop(weak, path, interval, last, rx))
                .map_err(|e| BuildError::Backend { backend: "reload", reason: e.to_string() })?;
            reloader.threads.push(thread);
        }
        if sighup {
            reloader.start_sighup(registry)?;
        }
        Ok(reloader)
    }

    #[cfg(unix)]
    fn start_sighup<L: Backend, N: Backend>(
        &mut self,
        registry: &Arc<Registry<L, N>>,
    ) -> Result<(), BuildError> {
        let backend_err = |e: std::io::Error| BuildError::Backend {
            backend: "reload",
            reason: format!("SIGHUP handler: {e}"),
        };
        let mut signals = signal_hook::iterator::Signals::new([signal_hook::consts::SIGHUP])
            .map_err(backend_err)?;
        self.sighup = Some(signals.handle());
        let weak = Arc::downgrade(registry);
        let thread = std::thread::Builder::new()
            .name("dualmetrics-sighup".into())
            .spawn(move || {
                for _ in signals.forever() {
                    let Some(registry) = weak.upgrade() else { break };
                    // A refused reload is logged and counted by the registry.
                    let _ = reload(&registry);
                }
            })
            .map_err(backend_err)?;
        self.threads.push(thread);
        Ok(())
    }

    #[cfg(not(unix))]
    fn start_sighup<L: Backend, N: Backend>(
        &mut self,
        _: &Arc<Registry<L, N>>,
    ) -> Result<(), BuildError> {
        Ok(())
    }

    /// Stops the triggers and waits for their threads.
    pub(crate) fn stop(&mut self) {
        self.stop = None; // Disconnects the watch thread's channel.
        #[cfg(unix)]
        if let Some(handle) = self.sighup.take() {
            handle.close();
        }
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
    }
}

impl Drop for Reloader {
    fn drop(&mut self) {
        self.stop();
    }
}

fn watch_loop<L: Backend, N: Backend>(
    registry: Weak<Registry<L, N>>,
    path: PathBuf,
    interval: Duration,
    mut last: Option<Vec<u8>>,
    stop: mpsc::Receiver<()>,
) {
    while let Err(mpsc::RecvTimeoutError::Timeout) = stop.recv_timeout(interval) {
        let now = std::fs::read(&path).ok();
        if now == last {
            continue;
        }
        last = now;
        let Some(registry) = registry.upgrade() else { break };
        // A refused reload is logged and counted by the registry.
        let _ = reload(&registry);
    }
}
