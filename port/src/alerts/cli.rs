//! `dualmetrics alerts port <alerts.yml | dashboards>… --out DIR`.
//!
//! Writes one Prometheus rule file per input (`<name>.rules.yml`), atomically.
//!
//! # Exit codes
//! - `0`: every alert ported (exact or approximate);
//! - `1`: an alert is untranslatable or a file failed, the rest was written;
//! - `2`: nothing could be done.
use super::rules::RulesOptions;
use super::{port_all, AlertsBatch};
use crate::grafana::cli::{ContextArgs, EXIT_ATTENTION, EXIT_ERROR, EXIT_OK};
use clap::{Args, Subcommand};
use std::io::Write;
use std::path::PathBuf;

/// `dualmetrics alerts …`.
#[derive(Debug, Clone, Args)]
pub struct AlertsArgs {
    /// What to do.
    #[command(subcommand)]
    pub command: AlertsCommand,
}

/// The `alerts` subcommands.
#[derive(Debug, Clone, Subcommand)]
pub enum AlertsCommand {
    /// Port Graphite alerts (YAML, Grafana legacy panel alerts) to Prometheus rule files; exit 0/1/2.
    Port(Box<AlertsPortArgs>),
    /// Backtest alerts on live data: firing intervals of the Graphite alert vs its rule; exit 0/1/2.
    Validate(Box<crate::validate::cli::AlertsValidateArgs>),
}

/// Runs `dualmetrics alerts …` on the process' standard streams; returns the exit code.
pub fn run(args: &AlertsArgs) -> u8 {
    let (mut out, mut err) = (std::io::stdout().lock(), std::io::stderr().lock());
    match &args.command {
        AlertsCommand::Port(a) => run_port(a, &mut out, &mut err),
        AlertsCommand::Validate(a) => crate::validate::cli::run_alerts(a, &mut out, &mut err),
    }
}

/// Arguments of `dualmetrics alerts port`.
#[derive(Debug, Clone, Args)]
pub struct AlertsPortArgs {
    /// YAML files of Graphite alerts, dashboard JSON files with legacy panel alerts, or
    /// directories of them.
    #[arg(required = true)]
    pub inputs: Vec<PathBuf>,
    /// Output directory for the rule files.
    #[arg(long, short)]
    pub out: PathBuf,
    /// The range written for `$__rate_interval` in rules.
    #[arg(long, default_value = super::rules::DEFAULT_RULE_RATE_INTERVAL)]
    pub rate_interval: String,
    /// Write the port report (JSON) here.
    #[arg(long)]
    pub report: Option<PathBuf>,
    /// Translator settings.
    #[command(flatten)]
    pub context: ContextArgs,
}

/// Runs `alerts port`; returns the exit code.
pub fn run_port(args: &AlertsPortArgs, out: &mut dyn Write, err: &mut dyn Write) -> u8 {
    let ctx = match args.context.load() {
        Ok(c) => c,
        Err(e) => {
            let _ = writeln!(err, "dualmetrics alerts port: {e}");
            return EXIT_ERROR;
        }
    };
    let opts = RulesOptions { ctx, rate_interval: args.rate_interval.clone() };
    let batch = match port_all(&args.inputs, &args.out, &opts) {
        Ok(b) => b,
        Err(e) => {
            let _ = writeln!(err, "dualmetrics alerts port: {e}");
            return EXIT_ERROR;
        }
    };
    let _ = write_summary(out, &batch);
    if let Some(path) = &args.report {
        let text = serde_json::to_string_pretty(&batch).unwrap_or_default() + "\n";
        if let Err(e) = crate::grafana::io::write_atomic(path, text.as_bytes()) {
            let _ = writeln!(err, "dualmetrics alerts port: {e}");
            return EXIT_ERROR;
        }
    }
    exit_code(&batch)
}

/// The exit code of a batch.
pub fn exit_code(batch: &AlertsBatch) -> u8 {
    let written = batch.files.iter().any(|f| f.output.is_some());
    if !written {
        EXIT_ERROR
    } else if !batch.failures.is_empty() || batch.count("untranslatable") + batch.count("error") > 0
    {
        EXIT_ATTENTION
    } else {
        EXIT_OK
    }
}

/// One line per alert, the failures, a total.
pub fn write_summary(out: &mut dyn Write, batch: &AlertsBatch) -> std::io::Result<()> {
    for f in &batch.files {
        writeln!(out, "{} -> {}", f.source, f.output.as_deref().unwrap_or("(no rule written)"))?;
        for a in &f.alerts {
            let names: Vec<&str> = a.rules.iter().map(|r| r.alert.as_str()).collect();
            writeln!(
                out,
                "  {:<15} {:?} ({}) -> {}",
                a.status,
                a.spec.name,
                a.spec.origin,
                names.join(", ")
            )?;
            for r in &a.reasons {
                writeln!(out, "      {r}")?;
            }
        }
    }
    for (file, e) in &batch.failures {
        writeln!(out, "FAILED  {file}: {e}")?;
    }
    writeln!(
        out,
        "{} alerts: {} exact, {} approximate, {} untranslatable; {} files failed",
        batch.files.iter().map(|f| f.alerts.len()).sum::<usize>(),
        batch.count("exact"),
        batch.count("approximate"),
        batch.count("untranslatable"),
        batch.failures.len()
    )
}
