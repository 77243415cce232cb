//! `dualmetrics dashboards validate` and `dualmetrics alerts validate`.
//!
//! ```text
//! dualmetrics dashboards validate ported/ --legacy-url http://127.0.0.1:8428 \
//!     --new-url http://127.0.0.1:9090 --last 1h --step 60 --var service=checkout \
//!     --json report.json --html report.html
//! dualmetrics alerts validate alerts.yml --legacy-url … --new-url … --last 6h
//! ```
//!
//! The legacy URL is a Graphite render API (graphite-web, or VictoriaMetrics, which serves
//! `/render`), the new one a Prometheus query API. Exit codes, as the comparator's: 0
//! everything equivalent, 1 something divergent or not validated, 2 an error (bad arguments,
//! unreadable inputs, a query that failed: unreachable backend, HTTP error, rejected query —
//! the other targets are still reported).
use super::alerts::backtest;
use super::{validate_dashboards, ValidateOptions};
use crate::grafana::cli::ContextArgs;
use crate::report::{self, ValidationReport, EXIT_ERROR};
use clap::Args;
use dualmetrics_compare::{
    CompareSettings, GraphiteAdapter, HttpConfig, PrometheusAdapter, QueryAdapter, TimeRange,
};
use std::collections::BTreeMap;
use std::io::Write;
use std::path::PathBuf;

/// Where the two sides are and which window to compare.
#[derive(Debug, Clone, Args)]
pub struct BackendArgs {
    /// Graphite render API (graphite-web, or VictoriaMetrics' `/render`).
    #[arg(long, env = "DUALMETRICS_LEGACY_URL")]
    pub legacy_url: url::Url,
    /// Prometheus query API of the new side (Prometheus, VictoriaMetrics).
    #[arg(long, env = "DUALMETRICS_NEW_URL")]
    pub new_url: url::Url,
    /// Window end, Unix seconds (default: now).
    #[arg(long)]
    pub end: Option<i64>,
    /// Window start, Unix seconds (default: end - last).
    #[arg(long)]
    pub start: Option<i64>,
    /// Window length when no start is given, e.g. `1h`, `24h`.
    #[arg(long, default_value = "1h")]
    pub last: String,
    /// Grid step, seconds.
    #[arg(long, default_value_t = 60)]
    pub step: i64,
    /// The legacy store's storage step (`10s`), if the render API does not say.
    #[arg(long)]
    pub storage_step: Option<String>,
    /// What replaces `$__rate_interval` in the PromQL.
    #[arg(long, default_value = "1m")]
    pub rate_interval: String,
    /// A template variable's value, `name=value` (repeatable); unset variables mean "all".
    #[arg(long = "var", value_parser = parse_var)]
    pub vars: Vec<(String, String)>,
    /// Queries in flight at once.
    #[arg(long, default_value_t = dualmetrics_compare::run::DEFAULT_PARALLEL)]
    pub parallel: usize,
    /// Write the JSON report here.
    #[arg(long)]
    pub json: Option<PathBuf>,
    /// Write the HTML report here.
    #[arg(long)]
    pub html: Option<PathBuf>,
    /// Translator settings (the ones the port used).
    #[command(flatten)]
    pub context: ContextArgs,
}

fn parse_var(s: &str) -> Result<(String, String), String> {
    s.split_once('=')
        .map(|(k, v)| (k.trim().to_owned(), v.to_owned()))
        .ok_or_else(|| format!("`{s}`: expected name=value"))
}

/// Arguments of `dashboards validate`.
#[derive(Debug, Clone, Args)]
pub struct DashboardsValidateArgs {
    /// Ported dashboards (files or directories).
    #[arg(required = true)]
    pub inputs: Vec<PathBuf>,
    /// Backends and window.
    #[command(flatten)]
    pub backends: BackendArgs,
}

/// Arguments of `alerts validate`.
#[derive(Debug, Clone, Args)]
pub struct AlertsValidateArgs {
    /// Graphite alerts (YAML) or dashboards with legacy panel alerts.
    #[arg(required = true)]
    pub inputs: Vec<PathBuf>,
    /// Backends and window.
    #[command(flatten)]
    pub backends: BackendArgs,
}

struct Setup {
    legacy: GraphiteAdapter,
    new: PrometheusAdapter,
    opts: ValidateOptions,
}

fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

fn setup(a: &BackendArgs) -> Result<Setup, String> {
    let ctx = a.context.load()?;
    let end = a.end.unwrap_or_else(now);
    let len = super::alerts::duration_secs(&a.last)
        .ok_or_else(|| format!("--last {}: not a duration", a.last))?;
    let start = a.start.unwrap_or(end - len);
    if start >= end || a.step < 1 {
        return Err(format!("empty window: start {start}, end {end}, step {}", a.step));
    }
    let legacy = GraphiteAdapter::new(HttpConfig::new(a.legacy_url.clone()))
        .map_err(|e| e.to_string())?
        .with_storage_step(a.storage_step.clone());
    let new =
        PrometheusAdapter::new(HttpConfig::new(a.new_url.clone())).map_err(|e| e.to_string())?;
    let settings = CompareSettings {
        range: TimeRange { start, end, step: a.step },
        parallel: a.parallel.max(1),
        ..CompareSettings::default()
    };
    let vars: BTreeMap<String, String> = a.vars.iter().cloned().collect();
    Ok(Setup {
        legacy,
        new,
        opts: ValidateOptions { ctx, settings, rate_interval: a.rate_interval.clone(), vars },
    })
}

fn finish(r: &ValidationReport, a: &BackendArgs, out: &mut dyn Write, err: &mut dyn Write) -> u8 {
    let _ = out.write_all(report::terminal::render(r).as_bytes());
    for (path, text) in [(&a.json, r.to_json()), (&a.html, report::html::render(r))] {
        if let Some(p) = path {
            if let Err(e) = crate::grafana::io::write_atomic(p, text.as_bytes()) {
                let _ = writeln!(err, "dualmetrics validate: {e}");
                return EXIT_ERROR;
            }
        }
    }
    r.exit_code()
}

/// Runs `dashboards validate`; returns the exit code.
pub fn run_dashboards(a: &DashboardsValidateArgs, out: &mut dyn Write, err: &mut dyn Write) -> u8 {
    let s = match setup(&a.backends) {
        Ok(s) => s,
        Err(e) => {
            let _ = writeln!(err, "dualmetrics dashboards validate: {e}");
            return EXIT_ERROR;
        }
    };
    let bar = report::progress::bar("targets");
    bar.set_message(format!("{} queries in flight", s.opts.settings.parallel));
    let dashboards =
        match validate_dashboards(&a.inputs, &s.legacy, &s.new, &s.opts, &mut |done, total| {
            bar.set_length(total as u64);
            bar.set_position(done as u64);
        }) {
            Ok(d) => d,
            Err(e) => {
                bar.finish_and_clear();
                let _ = writeln!(err, "dualmetrics dashboards validate: {e}");
                return EXIT_ERROR;
            }
        };
    bar.finish_and_clear();
    let r = report_of(&s, dashboards, Vec::new());
    finish(&r, &a.backends, out, err)
}

fn report_of(
    s: &Setup,
    dashboards: Vec<super::DashboardResult>,
    alerts: Vec<super::alerts::AlertResult>,
) -> ValidationReport {
    let range = s.opts.settings.range;
    ValidationReport {
        legacy_backend: s.legacy.describe(),
        new_backend: s.new.describe(),
        start: range.start,
        end: range.end,
        step: range.step,
        dashboards,
        alerts,
    }
}

/// Runs `alerts validate`; returns the exit code.
pub fn run_alerts(a: &AlertsValidateArgs, out: &mut dyn Write, err: &mut dyn Write) -> u8 {
    let s = match setup(&a.backends) {
        Ok(s) => s,
        Err(e) => {
            let _ = writeln!(err, "dualmetrics alerts validate: {e}");
            return EXIT_ERROR;
        }
    };
    let ropts = crate::alerts::rules::RulesOptions {
        ctx: s.opts.ctx.clone(),
        rate_interval: a.backends.rate_interval.clone(),
    };
    let mut results = Vec::new();
    let bar = report::progress::bar("alerts");
    let inputs = match crate::alerts::inputs_of(&a.inputs) {
        Ok(i) => i,
        Err(e) => {
            let _ = writeln!(err, "dualmetrics alerts validate: {e}");
            return EXIT_ERROR;
        }
    };
    for input in inputs.iter().map(|i| &i.path) {
        let specs = match crate::alerts::read(input) {
            Ok(x) => x,
            Err(e) => {
                let _ = writeln!(err, "dualmetrics alerts validate: {e}");
                continue;
            }
        };
        bar.inc_length(specs.len() as u64);
        for spec in specs {
            let rep = crate::alerts::rules::port(&spec, &ropts);
            let range = s.opts.settings.range;
            results.push(backtest(
                &rep,
                &s.legacy,
                &s.new,
                range.start,
                range.end,
                &s.opts.vars,
                &s.opts.rate_interval,
            ));
            bar.inc(1);
        }
    }
    bar.finish_and_clear();
    if results.is_empty() {
        let _ = writeln!(err, "dualmetrics alerts validate: no alert could be read");
        return EXIT_ERROR;
    }
    results.sort_by(|x, y| y.verdict.cmp(&x.verdict).then(x.name.cmp(&y.name)));
    let r = report_of(&s, Vec::new(), results);
    finish(&r, &a.backends, out, err)
}
