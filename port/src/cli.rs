//! `dualmetrics translate '<target>'… [--mapping m.yml] [--catalog c.json] [--format text|json]`.
//!
//! Targets come from the arguments, or from standard input one per line when there is none
//! (or the only one is `-`); empty lines are skipped. Every target is translated, whatever
//! happened to the ones before it.
//!
//! # Exit codes
//! - `0`: every target translated (exact or approximate);
//! - `1`: no error, but at least one target is untranslatable;
//! - `2`: at least one target is wrong (syntax, unknown function, bad argument) or a context
//!   file (mapping, catalog) cannot be read or is invalid (a bad regex, …). A wrong target
//!   does not stop the batch: the other targets are still translated and printed; a bad
//!   context file stops before any target.
//!
//! # Output
//! `text` (the default) prints a block per target for people; `json` prints one JSON object
//! per line (the [`Translation`] fields, or `{"target", "error", "pos"}`), for tools.
use crate::error::ContextError;
use crate::translate::{translate_batch, Context, Semantics, Status, Translation};
use crate::TranslateError;
use clap::{Args, ValueEnum};
use std::io::{BufRead, Write};
use std::path::PathBuf;

/// Output format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Format {
    /// A block per target, for people.
    Text,
    /// One JSON object per line, for tools.
    Json,
}

/// Arguments of `dualmetrics translate`.
#[derive(Debug, Clone, Args)]
pub struct TranslateArgs {
    /// Graphite targets; none (or `-`) reads them from standard input, one per line.
    pub targets: Vec<String>,
    /// The mapping file (statsd_exporter format) the shim applies.
    #[arg(long)]
    pub mapping: Option<PathBuf>,
    /// The SDK catalog (JSON): exact OTel names, units and buckets per StatsD key.
    #[arg(long)]
    pub catalog: Option<PathBuf>,
    /// Output format.
    #[arg(long, value_enum, default_value = "text")]
    pub format: Format,
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
}

/// Exit code: every target translated.
pub const EXIT_OK: u8 = 0;
/// Exit code: some target untranslatable, none wrong.
pub const EXIT_UNTRANSLATABLE: u8 = 1;
/// Exit code: some target (or a context file) wrong.
pub const EXIT_ERROR: u8 = 2;

/// Builds the [`Context`] from the arguments (reads the mapping file and the catalog).
///
/// # Errors
/// A mapping file or catalog that cannot be read or parsed, naming the file.
pub fn context(args: &TranslateArgs) -> Result<Context, ContextError> {
    let mut ctx = Context {
        flush_interval_secs: args.flush_interval,
        prometheus_naming: !args.no_prometheus_naming,
        ..Context::default()
    };
    if !(args.flush_interval.is_finite() && (0.001..=86_400.0).contains(&args.flush_interval)) {
        return Err(ContextError::Invalid {
            path: "--flush-interval".into(),
            message: format!(
                "{} is not a flush interval in seconds (0.001 to 86400)",
                args.flush_interval
            ),
        });
    }
    ctx.graphite.legacy_namespace = args.legacy_namespace;
    ctx.graphite.global_prefix = args.global_prefix.clone();
    if let Some(path) = &args.mapping {
        ctx.mapping = Some(dualmetrics_model::mapping::MappingFile::load(path)?);
    }
    if let Some(path) = &args.catalog {
        ctx.catalog = Some(crate::catalog::load(path)?);
    }
    Ok(ctx)
}

/// Runs the command; returns the exit code.
pub fn run(
    args: &TranslateArgs,
    stdin: &mut dyn BufRead,
    out: &mut dyn Write,
    err: &mut dyn Write,
) -> u8 {
    let ctx = match context(args) {
        Ok(c) => c,
        Err(e) => {
            let _ = writeln!(err, "dualmetrics translate: {e}");
            return EXIT_ERROR;
        }
    };
    let mut targets = args.targets.clone();
    if targets.is_empty() || targets == ["-"] {
        targets = stdin.lines().map_while(Result::ok).collect();
    }
    let mut code = EXIT_OK;
    let targets: Vec<&str> = targets.iter().map(|t| t.trim()).filter(|t| !t.is_empty()).collect();
    let results = translate_batch(&targets, &ctx);
    for (target, r) in targets.iter().copied().zip(results) {
        code = code.max(match &r {
            Ok(t) if matches!(t.status, Status::Untranslatable { .. }) => EXIT_UNTRANSLATABLE,
            Ok(_) => EXIT_OK,
            Err(_) => EXIT_ERROR,
        });
        let _ = match args.format {
            Format::Text => write_text(out, err, target, &r),
            Format::Json => write_json(out, target, &r),
        };
    }
    code
}

fn error_pos(e: &TranslateError) -> Option<usize> {
    match e {
        TranslateError::Parse(p) => Some(p.pos),
        TranslateError::UnknownFunction { pos, .. }
        | TranslateError::BadArgument { pos, .. }
        | TranslateError::Reference { pos, .. } => Some(*pos),
        TranslateError::InvalidPromql { .. } => None,
    }
}

fn write_json(
    out: &mut dyn Write,
    target: &str,
    r: &Result<Translation, TranslateError>,
) -> std::io::Result<()> {
    let v = match r {
        Ok(t) => serde_json::to_value(t).unwrap_or_default(),
        Err(e) => {
            serde_json::json!({ "target": target, "error": e.to_string(), "pos": error_pos(e) })
        }
    };
    writeln!(out, "{v}")
}

/// A short description of a value's meaning, for people.
pub fn describe(s: &Semantics) -> String {
    match s {
        Semantics::CountPerInterval { seconds } => {
            format!("count per {}", crate::promql::duration(*seconds))
        }
        Semantics::SumPerInterval { seconds } => {
            format!("sum of values per {}", crate::promql::duration(*seconds))
        }
        Semantics::PerSecond => "per-second rate".into(),
        Semantics::Level => "level (gauge)".into(),
        Semantics::Mean => "mean".into(),
        Semantics::Quantile { q } => format!("quantile {}", crate::promql::number(*q)),
        Semantics::Constant => "constant".into(),
        Semantics::Percent => "percent".into(),
        Semantics::Ratio => "ratio".into(),
        Semantics::Across { op, of } => format!("{op} across series of: {}", describe(of)),
        Semantics::OverTime { op, seconds, of } => {
            format!("{op} over {} of: {}", crate::promql::duration(*seconds), describe(of))
        }
        Semantics::Derived { by, of } => format!("{by} of: {}", describe(of)),
        Semantics::Mixed => "mixed".into(),
    }
}

fn write_text(
    out: &mut dyn Write,
    err: &mut dyn Write,
    target: &str,
    r: &Result<Translation, TranslateError>,
) -> std::io::Result<()> {
    let t = match r {
        Ok(t) => t,
        Err(e) => {
            writeln!(out, "target: {target}\n  error (see stderr)\n")?;
            return writeln!(err, "dualmetrics translate: target `{target}`: {e}");
        }
    };
    writeln!(out, "target: {target}")?;
    writeln!(out, "  status: {}", t.status.as_str())?;
    match &t.status {
        Status::Approximate { reasons } => {
            for r in reasons {
                writeln!(out, "    - {r}")?;
            }
        }
        Status::Untranslatable { function, why } => writeln!(out, "    {function}: {why}")?,
        Status::Exact => {}
    }
    if let Some(p) = &t.promql {
        writeln!(out, "  promql: {p}")?;
    }
    if let Some(l) = &t.legend {
        writeln!(out, "  legend: {l}")?;
    }
    if let Some(s) = &t.semantics {
        let unit = t.unit.as_deref().map(|u| format!(" ({u})")).unwrap_or_default();
        writeln!(out, "  values: {}{unit}", describe(s))?;
    }
    if !t.variables.is_empty() {
        writeln!(
            out,
            "  variables: {}",
            t.variables.iter().map(|v| format!("${v}")).collect::<Vec<_>>().join(", ")
        )?;
    }
    for n in &t.notes {
        writeln!(out, "  note: {n}")?;
    }
    writeln!(out)
}
