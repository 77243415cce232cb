//! `dualmetrics dashboards port <files or directories>… --out DIR`.
//!
//! Every `*.json` under the inputs is ported into `--out` at the same relative path, each
//! written atomically (temporary file + rename), so a rerun over the output is harmless (the
//! port is idempotent). One dashboard that cannot be read or ported is reported and the
//! others are still written.
//!
//! # Exit codes
//! - `0`: every dashboard ported, every target exact or approximate;
//! - `1`: something needs a person: a dashboard failed, a target is untranslatable or wrong;
//! - `2`: nothing could be done (bad arguments, unreadable inputs, every dashboard failed).
use super::{port_all, BatchReport, PortOptions};
use crate::cli::TranslateArgs;
use clap::{Args, Subcommand};
use std::io::Write;
use std::path::PathBuf;

/// `dualmetrics dashboards …`.
#[derive(Debug, Clone, Args)]
pub struct DashboardsArgs {
    /// What to do.
    #[command(subcommand)]
    pub command: DashboardsCommand,
}

/// The `dashboards` subcommands.
#[derive(Debug, Clone, Subcommand)]
pub enum DashboardsCommand {
    /// Port Grafana dashboards from Graphite to Prometheus; exit 0/1/2.
    Port(Box<PortArgs>),
    /// Validate ported dashboards on live data: each Graphite target vs its PromQL; exit 0/1/2.
    Validate(Box<crate::validate::cli::DashboardsValidateArgs>),
}

/// Runs `dualmetrics dashboards …` on the process' standard streams; returns the exit code.
pub fn run(args: &DashboardsArgs) -> u8 {
    let (mut out, mut err) = (std::io::stdout().lock(), std::io::stderr().lock());
    match &args.command {
        DashboardsCommand::Port(a) => run_port(a, &mut out, &mut err),
        DashboardsCommand::Validate(a) => {
            crate::validate::cli::run_dashboards(a, &mut out, &mut err)
        }
    }
}

/// Exit code: all ported.
pub const EXIT_OK: u8 = 0;
/// Exit code: ported, with targets or dashboards a person must look at.
pub const EXIT_ATTENTION: u8 = 1;
/// Exit code: nothing could be done.
pub const EXIT_ERROR: u8 = 2;

/// The translator's settings, shared by `dashboards` and `alerts`.
#[derive(Debug, Clone, Args)]
pub struct ContextArgs {
    /// The SDK catalog (JSON): exact OTel names, units and buckets per StatsD key.
    #[arg(long)]
    pub catalog: Option<PathBuf>,
    /// The StatsD daemon's flushInterval in seconds (a `.count` is per flush).
    #[arg(long, default_value_t = crate::translate::DEFAULT_FLUSH_INTERVAL_SECS)]
    pub flush_interval: f64,
    /// The daemon writes counters as `stats_counts.K` / `stats.K` (graphite.legacyNamespace).
    #[arg(long)]
    pub legacy_namespace: bool,
    /// The daemon's graphite.globalPrefix.
    #[arg(long, default_value = dualmetrics_model::naming_map::DEFAULT_GRAPHITE_GLOBAL_PREFIX)]
    pub global_prefix: String,
    /// The new store keeps OTel names as they are (no `_total`, no unit words, dots kept).
    #[arg(long)]
    pub no_prometheus_naming: bool,
    /// statsd_exporter mapping file: which dotted-key nodes are labels.
    #[arg(long)]
    pub mapping: Option<PathBuf>,
}

impl ContextArgs {
    /// The translator's context (with the mapping file and the catalog).
    ///
    /// # Errors
    /// A catalog or mapping file that cannot be read, naming it.
    pub fn load(&self) -> Result<crate::Context, String> {
        let t = TranslateArgs {
            targets: Vec::new(),
            mapping: self.mapping.clone(),
            catalog: self.catalog.clone(),
            format: crate::cli::Format::Text,
            flush_interval: self.flush_interval,
            legacy_namespace: self.legacy_namespace,
            global_prefix: self.global_prefix.clone(),
            no_prometheus_naming: self.no_prometheus_naming,
        };
        crate::cli::context(&t).map_err(|e| e.to_string())
    }
}

/// Arguments of `dualmetrics dashboards port`.
#[derive(Debug, Clone, Args)]
pub struct PortArgs {
    /// Dashboard JSON files or directories (searched for `*.json`).
    #[arg(required = true)]
    pub inputs: Vec<PathBuf>,
    /// Output directory (same relative paths; may be an input directory to port in place).
    #[arg(long, short)]
    pub out: PathBuf,
    /// Uid of the Prometheus datasource the ported panels use (exported dashboards with
    /// `__inputs` get `${DS_PROMETHEUS}` instead).
    #[arg(long, default_value = super::DEFAULT_DATASOURCE_UID)]
    pub datasource_uid: String,
    /// A datasource name or uid that is Graphite (repeatable), besides type `graphite`.
    #[arg(long)]
    pub graphite_datasource: Vec<String>,
    /// Show timer panels in the new side's seconds (`ms` → `s`, thresholds / 1000).
    #[arg(long)]
    pub seconds: bool,
    /// Write the translation report (JSON) here.
    #[arg(long)]
    pub report: Option<PathBuf>,
    /// Translator settings.
    #[command(flatten)]
    pub context: ContextArgs,
}

/// Runs `dashboards port`; returns the exit code. Progress goes to `err` when `progress` is
/// true (a terminal), the summary to `out`.
pub fn run_port(args: &PortArgs, out: &mut dyn Write, err: &mut dyn Write) -> u8 {
    let ctx = match args.context.load() {
        Ok(c) => c,
        Err(e) => {
            let _ = writeln!(err, "dualmetrics dashboards port: {e}");
            return EXIT_ERROR;
        }
    };
    let opts = PortOptions {
        ctx,
        datasource_uid: args.datasource_uid.clone(),
        graphite_datasources: args.graphite_datasource.clone(),
        seconds: args.seconds,
    };
    let bar = crate::report::progress::bar("dashboards");
    let batch = match port_all(&args.inputs, &args.out, &opts, &mut |done, total| {
        bar.set_length(total as u64);
        bar.set_position(done as u64);
    }) {
        Ok(b) => b,
        Err(e) => {
            bar.finish_and_clear();
            let _ = writeln!(err, "dualmetrics dashboards port: {e}");
            return EXIT_ERROR;
        }
    };
    bar.finish_and_clear();
    let _ = write_summary(out, &batch);
    if let Some(path) = &args.report {
        let text = serde_json::to_string_pretty(&batch).unwrap_or_default() + "\n";
        if let Err(e) = super::io::write_atomic(path, text.as_bytes()) {
            let _ = writeln!(err, "dualmetrics dashboards port: {e}");
            return EXIT_ERROR;
        }
    }
    exit_code(&batch)
}

/// The exit code of a batch (see the module docs).
pub fn exit_code(batch: &BatchReport) -> u8 {
    if batch.dashboards.is_empty() {
        EXIT_ERROR
    } else if !batch.failures.is_empty()
        || batch.count("untranslatable") > 0
        || batch.count("error") > 0
    {
        EXIT_ATTENTION
    } else {
        EXIT_OK
    }
}

/// The terminal summary: one line per dashboard, then every target that needs a person,
/// then the failures.
pub fn write_summary(out: &mut dyn Write, batch: &BatchReport) -> std::io::Result<()> {
    for d in &batch.dashboards {
        writeln!(
            out,
            "ported  {:?} ({} targets: {} exact, {} approximate, {} untranslatable, {} errors) -> {}",
            d.title,
            d.targets.len(),
            d.count("exact"),
            d.count("approximate"),
            d.count("untranslatable"),
            d.count("error"),
            d.output.as_deref().unwrap_or("-"),
        )?;
        for t in &d.targets {
            match (t.status(), &t.translation, &t.error) {
                ("untranslatable", Some(tr), _) => {
                    if let crate::Status::Untranslatable { function, why } = &tr.status {
                        writeln!(out, "  untranslatable  {}: {function}: {why}", t.place())?;
                    }
                }
                ("error", _, Some(e)) => {
                    writeln!(
                        out,
                        "  error           dashboard {:?}, {}: {}",
                        d.title,
                        t.place(),
                        indent(e)
                    )?;
                }
                _ => {}
            }
        }
        for v in d.variables.iter().filter(|v| v.outcome == "not converted") {
            writeln!(
                out,
                "  variable ${} not converted: {}",
                v.name,
                v.why.as_deref().unwrap_or("")
            )?;
        }
    }
    for f in &batch.failures {
        writeln!(out, "FAILED  {}", f.error)?;
    }
    writeln!(
        out,
        "{} dashboards ported, {} failed; targets: {} exact, {} approximate, {} untranslatable, {} errors",
        batch.dashboards.len(),
        batch.failures.len(),
        batch.count("exact"),
        batch.count("approximate"),
        batch.count("untranslatable"),
        batch.count("error"),
    )
}

fn indent(s: &str) -> String {
    s.replace('\n', "\n                    ")
}
