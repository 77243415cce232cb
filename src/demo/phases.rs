//! The cutover, phase by phase: `legacy` → `dual` → `otlp`, switched at runtime with
//! `DualMetrics::set_mode`, one progress bar per phase.
//!
//! Between two phases the service pauses (a flush of every pipeline, and `settle`, which waits
//! until the StatsD side has flushed what it got). The switch then
//! happens on a whole second, the *boundary*, and traffic resumes half a second later: every
//! StatsD flush stamped at or before the boundary holds only the previous phase's data, every
//! later one only the next phase's, and no OTLP point of the next phase is stamped at or before
//! it. The dual window `[start boundary, end boundary]` is therefore the same on both sides,
//! which is what makes the comparison exact rather than approximately right.
use std::path::Path;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use dualmetrics::Mode;
use indicatif::{ProgressBar, ProgressStyle};

use super::error::DemoError;
use super::service::{Service, TICK};

/// Pause after a boundary before traffic resumes: a StatsD flush stamped with a rounded second
/// after it can no longer round down onto the boundary.
pub const RESUME_AFTER_BOUNDARY: Duration = Duration::from_millis(500);

/// The dual window, Unix seconds: both pipelines saw exactly the same traffic in it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DualWindow {
    /// Boundary of the legacy → dual switch.
    pub start: i64,
    /// Boundary of the dual → otlp switch.
    pub end: i64,
}

fn unix_now() -> f64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0.0, |d| d.as_secs_f64())
}

fn bar(mode: Mode, length: Duration) -> ProgressBar {
    let pb = ProgressBar::new(length.as_millis() as u64);
    let style = ProgressStyle::with_template(
        "{prefix:>7} [{bar:32.cyan/blue}] {elapsed:>3}/{duration:3} {msg}",
    )
    .unwrap_or_else(|_| ProgressStyle::default_bar())
    .progress_chars("=> ");
    pb.set_style(style);
    pb.set_prefix(mode.as_str());
    pb
}

/// Emits for `length`, one tick per [`TICK`], without drifting.
fn emit_for(service: &mut Service, mode: Mode, length: Duration, say: &dyn Fn(&str)) {
    let pb = bar(mode, length);
    let start = Instant::now();
    let before = service.recorded;
    let mut next = start;
    while start.elapsed() < length {
        service.tick();
        next += TICK;
        let now = Instant::now();
        if next > now {
            std::thread::sleep(next - now);
        }
        let done = start.elapsed().min(length);
        pb.set_position(done.as_millis() as u64);
        pb.set_message(format!("{} measurements", service.recorded - before));
    }
    pb.finish_and_clear();
    say(&format!(
        "phase {:<6} {:>5.1} s  {:>7} measurements  (mode {})",
        mode.as_str(),
        length.as_secs_f64(),
        service.recorded - before,
        service.metrics().mode().as_str(),
    ));
}

/// Pauses the service, lets both pipelines deliver, and returns the boundary second once it has
/// passed by [`RESUME_AFTER_BOUNDARY`].
fn pause(service: &mut Service, settle: &dyn Fn()) -> i64 {
    service.flush();
    settle();
    let boundary = unix_now().ceil() as i64;
    let resume = boundary as f64 + RESUME_AFTER_BOUNDARY.as_secs_f64();
    let wait = resume - unix_now();
    if wait > 0.0 {
        std::thread::sleep(Duration::from_secs_f64(wait));
    }
    boundary
}

/// Runs the three phases of `phase` each; writes the catalog to `catalog` while in `dual`.
///
/// # Errors
/// The catalog cannot be written.
pub fn run(
    service: &mut Service,
    phase: Duration,
    settle: &dyn Fn(),
    catalog: &Path,
    say: &dyn Fn(&str),
) -> Result<DualWindow, DemoError> {
    service.set_mode(Mode::Legacy);
    emit_for(service, Mode::Legacy, phase, say);

    let start = pause(service, settle);
    service.set_mode(Mode::Dual);
    service
        .write_catalog(catalog)
        .map_err(|source| DemoError::Write { path: catalog.display().to_string(), source })?;
    say(&format!("switch   legacy → dual at {start}; catalog written to {}", catalog.display()));
    emit_for(service, Mode::Dual, phase, say);

    let end = pause(service, settle);
    service.set_mode(Mode::Otlp);
    say(&format!("switch   dual → otlp at {end}"));
    emit_for(service, Mode::Otlp, phase, say);
    service.flush();
    Ok(DualWindow { start, end })
}
