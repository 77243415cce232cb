//! Progress on a terminal, silence in CI.
//!
//! A bar is drawn on standard error only when it is a terminal and `CI` is not set; otherwise
//! the bar is hidden and costs nothing.
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use std::io::IsTerminal;

/// Whether progress should be drawn: standard error is a terminal and `CI` is unset.
pub fn enabled() -> bool {
    std::io::stderr().is_terminal() && std::env::var_os("CI").is_none()
}

/// A bar counting `what` (its length is set when known), hidden unless [`enabled`].
pub fn bar(what: &str) -> ProgressBar {
    let bar = ProgressBar::with_draw_target(None, ProgressDrawTarget::hidden());
    if enabled() {
        bar.set_draw_target(ProgressDrawTarget::stderr());
        if let Ok(style) =
            ProgressStyle::with_template("{prefix:>10} [{bar:30}] {pos}/{len} {msg} ({elapsed})")
        {
            bar.set_style(style.progress_chars("=> "));
        }
    }
    bar.set_prefix(what.to_owned());
    bar
}
