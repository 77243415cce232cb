//! The `dualmetrics compare` command line, ripgrep style: [`CompareArgs`] holds the raw values
//! clap parsed; [`Plan::from_args`] only validates and resolves them (reads pair files and
//! catalogs, builds URLs and settings); [`run`] executes a plan. Exit codes: 0 every pair
//! equivalent, 1 any divergent or missing, 2 an error (bad arguments, or a query that failed —
//! the other pairs are still reported).
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use clap::{Args, ValueEnum};
use dualmetrics_model::naming_map::GraphiteNaming;
use url::Url;

use crate::error::CompareError;
use crate::pairs::{
    generate_from_catalog, load_pairs_file, parse_catalog, GenerateOptions, LegacyApi, Pair,
};
use crate::query::graphite::GraphiteAdapter;
use crate::query::prometheus::PrometheusAdapter;
use crate::query::{Auth, Headers, HttpConfig, QueryAdapter, TimeRange};
use crate::report::{html, json, markdown, table, Report};
use crate::run::CompareSettings;

/// Query language of the legacy backend.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LegacyApiArg {
    /// Graphite render API (`/render`).
    Graphite,
    /// PromQL over the Graphite names (VictoriaMetrics).
    Prometheus,
}

/// How the new store names OTel metrics.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum NamingArg {
    /// `_total`, unit words, `_` for dots (`-opentelemetry.usePrometheusNaming`; Prometheus).
    Prometheus,
    /// OTel names kept as they are (VictoriaMetrics' default).
    Otel,
}

/// Report format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum FormatArg {
    /// Fixed-width terminal table.
    Table,
    /// JSON.
    Json,
    /// Markdown.
    Markdown,
    /// Self-contained HTML with one chart per pair.
    Html,
}

/// Raw arguments of `dualmetrics compare`.
#[derive(Debug, Clone, Args)]
#[command(
    about = "Compare legacy (Graphite/StatsD) and new (Prometheus API) backends pair by pair"
)]
pub struct CompareArgs {
    /// TOML file of query pairs (repeatable).
    #[arg(long = "pairs", value_name = "FILE")]
    pub pairs: Vec<PathBuf>,
    /// SDK catalog JSON to generate pairs from (repeatable).
    #[arg(long = "catalog", value_name = "FILE")]
    pub catalog: Vec<PathBuf>,
    /// Base URL of the legacy backend.
    #[arg(long, env = "DUALMETRICS_LEGACY_URL", default_value = "http://127.0.0.1:8428")]
    pub legacy_url: String,
    /// Query language of the legacy backend.
    #[arg(long, value_enum, default_value = "graphite")]
    pub legacy_api: LegacyApiArg,
    /// Base URL of the new backend (Prometheus HTTP API).
    #[arg(long, env = "DUALMETRICS_NEW_URL", default_value = "http://127.0.0.1:8428")]
    pub new_url: String,
    /// How the new store names OTel metrics (generated pairs).
    #[arg(long, value_enum, default_value = "prometheus")]
    pub new_naming: NamingArg,
    /// The StatsD daemon runs with `legacyNamespace: true` (generated pairs).
    #[arg(long)]
    pub legacy_namespace: bool,
    /// The StatsD daemon's Graphite `globalPrefix` (generated pairs).
    #[arg(long, default_value = "stats")]
    pub graphite_prefix: String,
    /// The new side's label naming the catalog's service (generated pairs are restricted to it;
    /// `job` for scraped services, `none` for no restriction).
    #[arg(long, default_value = crate::scope::DEFAULT_SERVICE_LABEL)]
    pub service_label: String,
    /// The StatsD daemon's `percentThreshold` list (generated pairs).
    #[arg(long, value_delimiter = ',', default_value = "90")]
    pub percentiles: Vec<f64>,
    /// `storage_step` sent to the Graphite API: the StatsD flush interval (VictoriaMetrics
    /// averages samples onto this step, and fills a finer step with repeats); `none` to leave it
    /// out. Defaults to the reference daemon's flush interval, 10s.
    #[arg(long, default_value = DEFAULT_STORAGE_STEP)]
    pub storage_step: String,
    /// Range start: Unix seconds, `now`, or `-<duration>` before the end.
    #[arg(long, default_value = "-1h", allow_hyphen_values = true)]
    pub start: String,
    /// Range end: Unix seconds, `now`, or `-<duration>` before now.
    #[arg(long, default_value = "now", allow_hyphen_values = true)]
    pub end: String,
    /// Grid step (whole seconds: `10s`, `1m`).
    #[arg(long, default_value = "10s")]
    pub step: String,
    /// The span before now left out (ingestion lag), a duration; a range that ended earlier is
    /// compared whole.
    #[arg(long, default_value = "20s")]
    pub skip_recent: String,
    /// Clock slack between the two pipelines' timestamps (phase offsets need none).
    #[arg(long, default_value = "1s")]
    pub max_lag: String,
    /// Tag sets named in an explanation.
    #[arg(long, default_value_t = crate::diff::DEFAULT_TOP_TAG_SETS)]
    pub top: usize,
    /// Window for `$window` in queries (`increase()` of quantiles and means).
    #[arg(long, default_value = "1m")]
    pub window: String,
    /// Share of points that must be within tolerance (0..=1).
    #[arg(long, default_value_t = 1.0)]
    pub min_share: f64,
    /// Extra header on every legacy request, `Name: value` (repeatable; values never printed).
    #[arg(long = "legacy-header", value_name = "HEADER")]
    pub legacy_headers: Vec<String>,
    /// Extra header on every new-side request, e.g. `X-Scope-OrgID: tenant-1` (repeatable).
    #[arg(long = "new-header", value_name = "HEADER")]
    pub new_headers: Vec<String>,
    /// PEM file of CA certificates trusted for an `https` legacy URL (a private CA), added to the
    /// system's roots.
    #[arg(long = "legacy-ca-cert", value_name = "FILE", env = "DUALMETRICS_LEGACY_CA_CERT")]
    pub legacy_ca_cert: Option<PathBuf>,
    /// PEM file of CA certificates trusted for an `https` new-side URL.
    #[arg(long = "new-ca-cert", value_name = "FILE", env = "DUALMETRICS_NEW_CA_CERT")]
    pub new_ca_cert: Option<PathBuf>,
    /// The largest answer read from a backend, bytes (a larger one is an error, not a crash).
    #[arg(long, default_value_t = crate::query::DEFAULT_MAX_RESPONSE_BYTES)]
    pub max_response_bytes: u64,
    /// Per-request timeout.
    #[arg(long, default_value = "10s")]
    pub timeout: String,
    /// Retries of a failed request (transport error, 5xx, 429), with exponential backoff.
    #[arg(long, default_value_t = crate::query::DEFAULT_RETRIES)]
    pub retries: u32,
    /// Pairs queried at once.
    #[arg(long, default_value_t = crate::run::DEFAULT_PARALLEL)]
    pub parallel: usize,
    /// Format written to stdout (or to --out).
    #[arg(long, value_enum, default_value = "table")]
    pub format: FormatArg,
    /// Write the --format output to this file instead of stdout.
    #[arg(long, value_name = "FILE")]
    pub out: Option<PathBuf>,
    /// Also write an HTML report here.
    #[arg(long, value_name = "FILE")]
    pub html: Option<PathBuf>,
    /// Also write a JSON report here.
    #[arg(long, value_name = "FILE")]
    pub json: Option<PathBuf>,
    /// Also write a Markdown report here.
    #[arg(long, value_name = "FILE")]
    pub markdown: Option<PathBuf>,
    /// statsd_exporter-format mapping file: generate pairs for the dotted keys it maps (see
    /// `mapped`); the keys are `--mapped-key`s, or discovered on the legacy side.
    #[arg(long, value_name = "FILE")]
    pub mapping: Option<PathBuf>,
    /// A dotted StatsD key and its type for `--mapping`, `KEY:TYPE` (`c`, `g`, `ms`, `h`, `d`), or
    /// `@FILE` with one per line; repeatable. Without any, keys are found with the legacy side's
    /// `/metrics/expand`.
    #[arg(long = "mapped-key", value_name = "KEY:TYPE")]
    pub mapped_keys: Vec<String>,
    /// Continuous mode: re-evaluate the window (the span of --start..--end, ending now) every
    /// this long and serve the results as Prometheus metrics on --listen.
    #[arg(long, value_name = "DURATION")]
    pub watch: Option<String>,
    /// Address of the `/metrics` endpoint in --watch mode.
    #[arg(long, default_value = "127.0.0.1:9464")]
    pub listen: String,
    /// Consecutive divergent cycles before a pair is reported as drifting (--watch).
    #[arg(long, default_value_t = crate::watch::DEFAULT_DRIFT_AFTER)]
    pub drift_after: u32,
    /// Replay (--watch): the window ends here at the first cycle and advances by the cycle
    /// length each cycle instead of following the clock.
    #[arg(long, value_name = "UNIX", hide = true)]
    pub watch_replay_from: Option<i64>,
    /// Replay (--watch): how far the window advances per cycle.
    #[arg(long, default_value = "60s", hide = true)]
    pub watch_replay_advance: String,
}

/// Default of `--storage-step`: the reference StatsD daemon's `flushInterval`.
pub const DEFAULT_STORAGE_STEP: &str = "10s";

/// Longest duration any flag accepts: 3650 days (ten years). Longer values are an error, never
/// an overflow in the time arithmetic that follows.
pub const MAX_DURATION_SECS: f64 = 3650.0 * 86400.0;

/// Parses `500ms`, `10s`, `5m`, `1h`, `1d` (a bare number is seconds), up to
/// [`MAX_DURATION_SECS`].
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    let split = s.find(|c: char| !c.is_ascii_digit() && c != '.').unwrap_or(s.len());
    let (num, unit) = s.split_at(split);
    let n: f64 = num.parse().map_err(|_| format!("{s:?} is not a duration (e.g. 10s, 1m)"))?;
    let secs = match unit {
        "ms" => n / 1000.0,
        "" | "s" => n,
        "m" => n * 60.0,
        "h" => n * 3600.0,
        "d" => n * 86400.0,
        _ => return Err(format!("{s:?}: unknown unit {unit:?} (ms, s, m, h, d)")),
    };
    if !secs.is_finite() || secs < 0.0 {
        return Err(format!("{s:?} is not a duration"));
    }
    if secs > MAX_DURATION_SECS {
        return Err(format!("{s:?} is out of range: at most 3650d"));
    }
    Ok(Duration::from_secs_f64(secs))
}

fn whole_secs(arg: &'static str, s: &str) -> Result<i64, CompareError> {
    let d = parse_duration(s).map_err(|reason| CompareError::InvalidArgument { arg, reason })?;
    if d.subsec_nanos() != 0 {
        return Err(CompareError::InvalidArgument {
            arg,
            reason: format!("{s:?} must be whole seconds"),
        });
    }
    Ok(d.as_secs() as i64)
}

/// Parses a time: Unix seconds, `now`, or `-<duration>` / `now-<duration>` before `relative_to`.
pub fn parse_time(s: &str, now: i64, relative_to: i64) -> Result<i64, String> {
    let s = s.trim();
    if s == "now" {
        return Ok(now);
    }
    if let Some(d) = s.strip_prefix("now-").or_else(|| s.strip_prefix('-')) {
        let base = if s.starts_with("now") { now } else { relative_to };
        return Ok(base - parse_duration(d)?.as_secs() as i64);
    }
    s.parse::<i64>().map_err(|_| format!("{s:?} is not a time (Unix seconds, now, -1h)"))
}

/// Where a backend is and how it is asked.
#[derive(Debug, Clone)]
pub struct BackendPlan {
    /// HTTP settings (credentials from the environment).
    pub http: HttpConfig,
    /// Which API.
    pub api: LegacyApi,
}

/// Validated, resolved arguments.
#[derive(Debug, Clone)]
pub struct Plan {
    /// The pairs, from files and catalogs.
    pub pairs: Vec<Pair>,
    /// Notes from generation.
    pub notes: Vec<String>,
    /// Evaluation settings.
    pub settings: CompareSettings,
    /// Legacy backend.
    pub legacy: BackendPlan,
    /// `storage_step` for the Graphite API.
    pub storage_step: Option<String>,
    /// New backend (always the Prometheus API).
    pub new: HttpConfig,
    /// Format for stdout / --out.
    pub format: FormatArg,
    /// --out.
    pub out: Option<PathBuf>,
    /// Extra outputs.
    pub extra: Vec<(FormatArg, PathBuf)>,
}

fn parse_url(arg: &'static str, s: &str) -> Result<Url, CompareError> {
    let url =
        Url::parse(s).map_err(|e| CompareError::InvalidArgument { arg, reason: format!("{e}") })?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(CompareError::InvalidArgument {
            arg,
            reason: format!("scheme {:?} is not http(s)", url.scheme()),
        });
    }
    Ok(url)
}

pub(crate) fn unix_now() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs() as i64)
}

impl Plan {
    /// Validates `args` and resolves them: reads pair files and catalogs, reads credentials from
    /// `DUALMETRICS_{LEGACY,NEW}_{TOKEN,USER,PASSWORD}`.
    ///
    /// One step per flag (each checked where it is read, so the error names that flag); long
    /// because the command has that many flags, not because it does several things.
    ///
    /// # Errors
    /// The first invalid argument or unreadable input.
    pub fn from_args(args: &CompareArgs) -> Result<Plan, CompareError> {
        let invalid = |arg, reason: String| CompareError::InvalidArgument { arg, reason };
        if args.pairs.is_empty() && args.catalog.is_empty() && args.mapping.is_none() {
            return Err(invalid(
                "--pairs/--catalog",
                "give at least one pair file or catalog".into(),
            ));
        }
        let step = whole_secs("--step", &args.step)?;
        if step < 1 {
            return Err(invalid("--step", "must be at least 1s".into()));
        }
        let now = unix_now();
        let end = parse_time(&args.end, now, now).map_err(|r| invalid("--end", r))?;
        let start = parse_time(&args.start, now, end).map_err(|r| invalid("--start", r))?;
        if start >= end {
            return Err(invalid("--start", format!("{start} is not before the end {end}")));
        }
        if (end - start) / step > 100_000 {
            return Err(invalid("--step", "more than 100000 grid points".into()));
        }
        if !(0.0..=1.0).contains(&args.min_share) {
            return Err(invalid("--min-share", format!("{} is not within 0..=1", args.min_share)));
        }
        let timeout = parse_duration(&args.timeout).map_err(|r| invalid("--timeout", r))?;
        let mut pairs = Vec::new();
        let mut notes = Vec::new();
        for path in &args.pairs {
            pairs.extend(load_pairs_file(path)?);
        }
        let api = match args.legacy_api {
            LegacyApiArg::Graphite => LegacyApi::Graphite,
            LegacyApiArg::Prometheus => LegacyApi::Prometheus,
        };
        let gen = GenerateOptions {
            graphite: GraphiteNaming {
                legacy_namespace: args.legacy_namespace,
                global_prefix: args.graphite_prefix.clone(),
            },
            legacy_api: api,
            prometheus_naming: args.new_naming == NamingArg::Prometheus,
            percentiles: args.percentiles.clone(),
            service_label: (args.service_label != "none").then(|| args.service_label.clone()),
        };
        for path in &args.catalog {
            let p = path.display().to_string();
            let text = std::fs::read_to_string(path)
                .map_err(|source| CompareError::Io { path: p.clone(), source })?;
            let catalog = parse_catalog(&text, &p)?;
            let (generated, n) = generate_from_catalog(&catalog, &gen);
            pairs.extend(generated);
            notes.extend(n);
        }
        if let Some(mapping) = &args.mapping {
            let mut legacy = HttpConfig::new(parse_url("--legacy-url", &args.legacy_url)?);
            legacy.timeout = timeout;
            if Auth::from_env("DUALMETRICS_LEGACY") != Auth::None {
                legacy.auth = Auth::from_env("DUALMETRICS_LEGACY");
            }
            let (generated, n) =
                crate::mapped::plan_pairs(mapping, &args.mapped_keys, &legacy, &gen)?;
            pairs.extend(generated);
            notes.extend(n);
        }
        if pairs.is_empty() {
            return Err(invalid("--pairs/--catalog", "no pairs to compare".into()));
        }
        let http = |arg, url: &str, env_prefix: &str| -> Result<HttpConfig, CompareError> {
            let mut cfg = HttpConfig::new(parse_url(arg, url)?);
            let (flag, raw, ca) = if arg == "--legacy-url" {
                ("--legacy-header", &args.legacy_headers, &args.legacy_ca_cert)
            } else {
                ("--new-header", &args.new_headers, &args.new_ca_cert)
            };
            cfg.ca_cert = ca.clone();
            cfg.max_response_bytes = args.max_response_bytes;
            for h in raw {
                cfg.headers.0.push(Headers::parse_one(h).map_err(|r| invalid(flag, r))?);
            }
            cfg.timeout = timeout;
            cfg.retries = args.retries;
            let env_auth = Auth::from_env(env_prefix);
            if env_auth != Auth::None {
                cfg.auth = env_auth;
            }
            Ok(cfg)
        };
        let mut extra = Vec::new();
        for (fmt, path) in [
            (FormatArg::Html, &args.html),
            (FormatArg::Json, &args.json),
            (FormatArg::Markdown, &args.markdown),
        ] {
            if let Some(p) = path {
                extra.push((fmt, p.clone()));
            }
        }
        Ok(Plan {
            pairs,
            notes,
            settings: CompareSettings {
                range: TimeRange { start, end, step },
                skip_recent: whole_secs("--skip-recent", &args.skip_recent)?,
                max_lag_secs: whole_secs("--max-lag", &args.max_lag)?,
                window_secs: whole_secs("--window", &args.window)?,
                min_share: args.min_share,
                parallel: args.parallel.max(1),
                top_tag_sets: args.top.max(1),
            },
            legacy: BackendPlan {
                http: http("--legacy-url", &args.legacy_url, "DUALMETRICS_LEGACY")?,
                api,
            },
            storage_step: match args.storage_step.as_str() {
                "none" => None,
                other => {
                    whole_secs("--storage-step", other)?;
                    Some(other.to_owned())
                }
            },
            new: http("--new-url", &args.new_url, "DUALMETRICS_NEW")?,
            format: args.format,
            out: args.out.clone(),
            extra,
        })
    }

    /// Builds the two adapters.
    ///
    /// # Errors
    /// If an HTTP client cannot be built.
    pub fn adapters(
        &self,
    ) -> Result<(Box<dyn QueryAdapter>, PrometheusAdapter), crate::error::QueryError> {
        let legacy: Box<dyn QueryAdapter> = match self.legacy.api {
            LegacyApi::Graphite => Box::new(
                GraphiteAdapter::new(self.legacy.http.clone())?
                    .with_storage_step(self.storage_step.clone()),
            ),
            LegacyApi::Prometheus => Box::new(PrometheusAdapter::new(self.legacy.http.clone())?),
        };
        Ok((legacy, PrometheusAdapter::new(self.new.clone())?))
    }

    /// Builds the adapters, runs every pair and returns the report.
    ///
    /// # Errors
    /// If an HTTP client cannot be built (query failures end up in the report instead).
    pub fn execute(&self) -> Result<Report, crate::error::QueryError> {
        let (legacy, new) = self.adapters()?;
        Ok(self.report_with(legacy.as_ref(), &new, self.settings.range))
    }

    /// Runs every pair over `r` with the given adapters.
    pub fn report_with(
        &self,
        legacy: &dyn QueryAdapter,
        new: &dyn QueryAdapter,
        r: TimeRange,
    ) -> Report {
        let settings = CompareSettings { range: r, ..self.settings.clone() };
        crate::run::compare_report(&self.pairs, &self.notes, legacy, new, &settings)
    }
}

/// Renders `report` in `format`.
pub fn render(report: &Report, format: FormatArg) -> String {
    match format {
        FormatArg::Table => table::render(report),
        FormatArg::Json => json::render(report),
        FormatArg::Markdown => markdown::render(report),
        FormatArg::Html => html::render(report),
    }
}

fn write_file(path: &PathBuf, text: &str) -> Result<(), CompareError> {
    std::fs::write(path, text)
        .map_err(|source| CompareError::Io { path: path.display().to_string(), source })
}

/// `--watch`: cycles until SIGTERM/SIGINT.
fn watch(plan: &Plan, args: &CompareArgs, every: &str) -> Result<(), String> {
    let every = parse_duration(every).map_err(|r| format!("invalid argument --watch: {r}"))?;
    if every < Duration::from_secs(1) {
        return Err("invalid argument --watch: at least 1s".to_owned());
    }
    let listen: std::net::SocketAddr =
        args.listen.parse().map_err(|e| format!("invalid argument --listen: {e}"))?;
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    for sig in [signal_hook::consts::SIGTERM, signal_hook::consts::SIGINT] {
        signal_hook::flag::register(sig, stop.clone()).map_err(|e| e.to_string())?;
    }
    let (legacy, new) = plan.adapters().map_err(|e| e.to_string())?;
    let span = plan.settings.range.end - plan.settings.range.start;
    let step = plan.settings.range.step;
    let opts = crate::watch::WatchOptions {
        every,
        listen,
        drift_after: args.drift_after,
        replay_from: args.watch_replay_from,
        replay_advance: parse_duration(&args.watch_replay_advance)
            .map_err(|r| format!("invalid argument --watch-replay-advance: {r}"))?
            .as_secs() as i64,
    };
    crate::watch::run_watch(&opts, stop, |end| {
        let end = end / step * step;
        let report = plan.report_with(legacy.as_ref(), &new, TimeRange { start: end - span, end, step });
        let s = report.summary();
        eprintln!(
            "dualmetrics compare --watch: window ending {}: {} equivalent, {} divergent, {} missing, {} error",
            crate::report::utc(end),
            s.equivalent,
            s.divergent,
            s.missing,
            s.error
        );
        Some(report)
    })
    .map_err(|e| format!("--listen {listen}: {e}"))
}

/// Runs `dualmetrics compare`: prints the report, writes the extra outputs, and returns the exit
/// code (0 equivalent, 1 divergent or missing, 2 error). Errors go to stderr.
pub fn run(args: &CompareArgs) -> ExitCode {
    ExitCode::from(run_code(args))
}

/// [`run`] with the exit code as a number.
pub fn run_code(args: &CompareArgs) -> u8 {
    let fail = |e: &dyn std::fmt::Display| {
        eprintln!("dualmetrics compare: error: {e}");
        2
    };
    let plan = match Plan::from_args(args) {
        Ok(p) => p,
        Err(e) => return fail(&e),
    };
    if let Some(every) = &args.watch {
        return match watch(&plan, args, every) {
            Ok(()) => 0,
            Err(e) => fail(&e),
        };
    }
    let report = match plan.execute() {
        Ok(r) => r,
        Err(e) => return fail(&e),
    };
    let main = render(&report, plan.format);
    match &plan.out {
        Some(path) => {
            if let Err(e) = write_file(path, &main) {
                return fail(&e);
            }
        }
        None => print!("{main}"),
    }
    for (fmt, path) in &plan.extra {
        if let Err(e) = write_file(path, &render(&report, *fmt)) {
            return fail(&e);
        }
    }
    for p in report.pairs.iter().filter(|p| p.error.is_some()) {
        eprintln!("dualmetrics compare: pair {:?}: {}", p.name, p.error.as_deref().unwrap_or(""));
    }
    report.exit_code()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_parse() {
        assert_eq!(parse_duration("10s").unwrap(), Duration::from_secs(10));
        assert_eq!(parse_duration("1m").unwrap(), Duration::from_secs(60));
        assert_eq!(parse_duration("250ms").unwrap(), Duration::from_millis(250));
        assert!(parse_duration("10x").is_err());
    }

    #[test]
    fn huge_durations_are_errors_not_panics() {
        for s in ["99999999999999999999s", "3651d", "99999999999999h"] {
            let e = parse_duration(s).unwrap_err();
            assert!(e.contains("out of range") || e.contains("not a duration"), "{s}: {e}");
        }
        assert!(parse_time("-99999999999999h", 0, 0).is_err());
        assert_eq!(parse_duration("3650d").unwrap(), Duration::from_secs(3650 * 86400));
    }

    #[test]
    fn relative_times_parse() {
        assert_eq!(parse_time("-1h", 10_000, 9_000).unwrap(), 5_400);
        assert_eq!(parse_time("now-1m", 10_000, 9_000).unwrap(), 9_940);
        assert_eq!(parse_time("1700000000", 0, 0).unwrap(), 1_700_000_000);
        assert!(parse_time("yesterday", 0, 0).is_err());
    }
}
