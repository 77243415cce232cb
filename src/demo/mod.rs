//! `dualmetrics demo`: the whole migration story in one command, on embedded backends.
//!
//! 1. [`legacy_store`]: a StatsD receiver that aggregates per flush like the reference daemon
//!    and keeps the Graphite series it would write (`stats.counters.K.count;route=/cart`, …).
//! 2. [`otlp_store`]: an OTLP/gRPC receiver that keeps Prometheus-named cumulative series
//!    (`http_requests_total`, `http_latency_milliseconds_bucket`, …).
//! 3. [`service`]: a synthetic checkout service emitting through the SDK at a steady rate.
//! 4. [`phases`]: `legacy` → `dual` → `otlp`, switched at runtime; the catalog is written.
//! 5. Here: the comparator runs over the dual window against both stores (through the same
//!    [`QueryAdapter`] trait as real Graphite and Prometheus APIs), prints the table and writes
//!    the HTML and JSON reports.
//! 6. [`port`]: the sample dashboard and alert under `examples/` are ported to PromQL, and with
//!    real backends validated over the dual window.
//!
//! Any part can be a real endpoint instead: `--statsd` with `--legacy-query` (a Graphite render
//! API), `--otlp` with `--new-query` (a Prometheus HTTP API). `--inject-fault` sends a divergent
//! stream on the new side. Exit code: 0 every pair equivalent, 1 a pair divergent or missing,
//! 2 an error.
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use clap::{Args, ValueEnum};
use dualmetrics::{DualMetrics, Mode, Protocol};
use dualmetrics_compare::pairs::{
    generate_from_catalog, parse_catalog, GenerateOptions, LegacyApi,
};
use dualmetrics_compare::report::{html, json, table};
use dualmetrics_compare::{
    compare_report, CompareSettings, GraphiteAdapter, HttpConfig, PrometheusAdapter, QueryAdapter,
    Report, TimeRange,
};

mod error;
pub mod legacy_store;
pub mod otlp_store;
pub mod phases;
pub mod port;
pub mod promql;
pub mod service;

pub use error::DemoError;
use legacy_store::LegacyStore;
use otlp_store::OtlpStore;
use service::{Fault, FaultSides, Service};

/// Default length of each phase.
pub const DEFAULT_PHASE_SECS: u64 = 15;
/// Default StatsD flush interval of the embedded daemon (the reference daemon's is 10 s; the
/// demo is short).
pub const DEFAULT_FLUSH_INTERVAL_MS: u64 = 1_000;
/// Default OTLP export interval of the service's SDK.
pub const DEFAULT_EXPORT_INTERVAL_MS: u64 = 1_000;
/// The SDK's own StatsD send interval in the demo: well below the daemon's flush.
const SDK_STATSD_FLUSH: Duration = Duration::from_millis(200);
/// Clock slack (seconds) between the two sides when either is a real backend: the SDK's
/// StatsD send interval (200 ms) plus the whole-second timestamps real stores return, rounded up.
const REAL_BACKEND_LAG_SECS: i64 = 1;
/// Window of the generated `increase()` queries, seconds.
const WINDOW_SECS: i64 = 3;
/// Grid step of the comparison, seconds.
const STEP_SECS: i64 = 1;
/// Shortest phase that still leaves points to compare after the timing slack.
const MIN_PHASE_SECS: u64 = 4;

/// How the new store names OTel metrics.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum NewNaming {
    /// `_total`, unit words, `_` for dots (VictoriaMetrics `-opentelemetry.usePrometheusNaming`,
    /// Prometheus' OTLP receiver); the embedded store.
    Prometheus,
    /// Names kept as they are (`http.requests`): VictoriaMetrics' default.
    Otel,
}

/// Query language of `--legacy-query`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LegacyQueryApi {
    /// The Graphite render API (`seriesByTag(...)`).
    Graphite,
    /// PromQL over the Graphite names (VictoriaMetrics serves both): `sum_over_time(x[1s])`
    /// counts each flush once, where VictoriaMetrics' render API repeats the last value of a
    /// series that stopped for a few steps.
    Prometheus,
}

/// OTLP transport of `--otlp`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum OtlpProtocol {
    /// OTLP/gRPC.
    Grpc,
    /// OTLP/HTTP with protobuf bodies.
    Http,
}

/// Arguments of `dualmetrics demo`.
#[derive(Debug, Clone, Args)]
pub struct DemoArgs {
    /// Length of each phase (legacy, dual, otlp), seconds.
    #[arg(long, default_value_t = DEFAULT_PHASE_SECS)]
    pub phase_secs: u64,
    /// StatsD flush interval: the embedded daemon's, or the real one's with --statsd (ms).
    #[arg(long, default_value_t = DEFAULT_FLUSH_INTERVAL_MS)]
    pub flush_interval_ms: u64,
    /// OTLP export interval of the service's SDK (ms).
    #[arg(long, default_value_t = DEFAULT_EXPORT_INTERVAL_MS)]
    pub export_interval_ms: u64,
    /// Send StatsD to this daemon (host:port) instead of the embedded one; needs --legacy-query.
    #[arg(long, value_name = "ADDR")]
    pub statsd: Option<String>,
    /// Send OTLP to this endpoint instead of the embedded store; needs --new-query.
    #[arg(long, value_name = "URL")]
    pub otlp: Option<String>,
    /// Transport of --otlp.
    #[arg(long, value_enum, default_value = "grpc")]
    pub otlp_protocol: OtlpProtocol,
    /// Graphite render API holding what --statsd's daemon writes.
    #[arg(long, value_name = "URL")]
    pub legacy_query: Option<String>,
    /// Query language of --legacy-query.
    #[arg(long, value_enum, default_value = "graphite")]
    pub legacy_api: LegacyQueryApi,
    /// Prometheus HTTP API holding what --otlp receives.
    #[arg(long, value_name = "URL")]
    pub new_query: Option<String>,
    /// How the store behind --new-query names OTel metrics.
    #[arg(long, value_enum, default_value = "prometheus")]
    pub new_naming: NewNaming,
    /// Directory for catalog.json, report.html and report.json.
    #[arg(long, default_value = "dualmetrics-demo")]
    pub out: PathBuf,
    /// Send a divergent stream on the new side; the report then shows it and the exit code is 1.
    #[arg(long, value_enum, value_name = "FAULT")]
    pub inject_fault: Option<Fault>,
    /// Print only the table and the file paths (no phase lines).
    #[arg(long)]
    pub quiet: bool,
}

/// Where the demo wrote its files, and what came out.
#[derive(Debug)]
pub struct Outcome {
    /// The comparator's report.
    pub report: Report,
    /// The SDK's catalog.
    pub catalog: PathBuf,
    /// The HTML report.
    pub html: PathBuf,
    /// The JSON report.
    pub json: PathBuf,
    /// The sample dashboard and alert: ported, and validated when the backends are real.
    pub port: port::PortSummary,
}

fn invalid(flag: &'static str, value: &str, reason: &str) -> DemoError {
    DemoError::InvalidFlag { flag, value: value.to_owned(), reason: reason.to_owned() }
}

fn url_arg(flag: &'static str, value: &str) -> Result<url::Url, DemoError> {
    let u = url::Url::parse(value).map_err(|e| invalid(flag, value, &e.to_string()))?;
    if !matches!(u.scheme(), "http" | "https") {
        return Err(invalid(flag, value, "the scheme must be http or https"));
    }
    Ok(u)
}

fn validate(a: &DemoArgs) -> Result<(), DemoError> {
    if a.phase_secs < MIN_PHASE_SECS {
        return Err(invalid(
            "--phase-secs",
            &a.phase_secs.to_string(),
            &format!("at least {MIN_PHASE_SECS} s, so the dual window has points to compare"),
        ));
    }
    if a.flush_interval_ms < 100 || a.export_interval_ms < 100 {
        let (flag, v) = if a.flush_interval_ms < 100 {
            ("--flush-interval-ms", a.flush_interval_ms)
        } else {
            ("--export-interval-ms", a.export_interval_ms)
        };
        return Err(invalid(flag, &v.to_string(), "at least 100 ms"));
    }
    // A real daemon's data is only visible through a real query API, and the other way round.
    match (&a.statsd, &a.legacy_query) {
        (Some(s), None) => {
            return Err(invalid(
                "--statsd",
                s,
                "give --legacy-query too: the Graphite API of the store behind that daemon",
            ))
        }
        (None, Some(q)) => {
            return Err(invalid(
                "--legacy-query",
                q,
                "give --statsd too: the daemon that store is fed by",
            ))
        }
        (_, Some(q)) => {
            url_arg("--legacy-query", q)?;
        }
        _ => {}
    }
    match (&a.otlp, &a.new_query) {
        (Some(o), None) => {
            return Err(invalid(
                "--otlp",
                o,
                "give --new-query too: the Prometheus API of the store behind that endpoint",
            ))
        }
        (None, Some(q)) => {
            return Err(invalid(
                "--new-query",
                q,
                "give --otlp too: the endpoint that store is fed by",
            ))
        }
        (Some(o), Some(q)) => {
            url_arg("--otlp", o)?;
            url_arg("--new-query", q)?;
        }
        _ => {}
    }
    if a.legacy_query.is_none() && a.legacy_api == LegacyQueryApi::Prometheus {
        return Err(invalid("--legacy-api", "prometheus", "the embedded store speaks Graphite"));
    }
    if a.otlp.is_none() && a.new_naming == NewNaming::Otel {
        return Err(invalid("--new-naming", "otel", "the embedded store uses Prometheus naming"));
    }
    Ok(())
}

/// Runs the demo and returns its outcome; `say` receives the progress lines.
///
/// In order: the backends (embedded stores unless `--statsd` / `--otlp` name real ones,
/// [`Backends::start`]), the SDK-instrumented service (with a divergent new side under
/// `--inject-fault`), the migration phases, what the stores received, then the comparison, its
/// reports and the dashboard port.
///
/// # Errors
/// Invalid flags, backends that cannot start, files that cannot be written.
pub fn run(args: &DemoArgs, say: &dyn Fn(&str)) -> Result<Outcome, DemoError> {
    validate(args)?;
    let flush = Duration::from_millis(args.flush_interval_ms);
    let export = Duration::from_millis(args.export_interval_ms);
    std::fs::create_dir_all(&args.out)
        .map_err(|source| DemoError::Write { path: args.out.display().to_string(), source })?;

    let backends = Backends::start(args, flush)?;
    backends.describe(args, say);
    let configure = |mode: Mode| backends.sdk(mode, export);
    let faults = match args.inject_fault {
        Some(f) => {
            say(&format!("fault    {}: the new side gets a divergent stream", f.as_str()));
            Some(FaultSides::build(f, configure)?)
        }
        None => None,
    };
    let hold = 2 * flush.max(export) + SDK_STATSD_FLUSH;
    let mut service = Service::new(configure(Mode::Legacy)?, faults, hold)?;

    let settle = || settle(backends.legacy_store.as_ref(), flush);
    let catalog = args.out.join("catalog.json");
    let window =
        phases::run(&mut service, Duration::from_secs(args.phase_secs), &settle, &catalog, say)?;
    service.shutdown(Duration::from_secs(5));
    backends.say_received(say);

    let (legacy_store, otlp_store) = (backends.legacy_store.as_ref(), backends.otlp_store.as_ref());
    let report = compare(args, window, &catalog, legacy_store, otlp_store, say)?;
    let html_path = args.out.join("report.html");
    let json_path = args.out.join("report.json");
    write(&html_path, &html::render(&report))?;
    write(&json_path, &json::render(&report))?;
    // the same start as the comparator's: the first export after the switch is left out
    let lag = args.flush_interval_ms.max(args.export_interval_ms).div_ceil(1000) as i64 + 1;
    let port = port::run(args, window, &catalog, lag, say)?;
    Ok(Outcome { report, catalog, html: html_path, json: json_path, port })
}

/// Where the demo's service sends: the embedded stores it started, or the real backends the
/// flags name.
struct Backends {
    /// The embedded StatsD/Graphite store, unless `--statsd` names a daemon.
    legacy_store: Option<LegacyStore>,
    /// The embedded OTLP/Prometheus store, unless `--otlp` names a collector.
    otlp_store: Option<OtlpStore>,
    statsd_addr: String,
    otlp_endpoint: String,
    protocol: Protocol,
}

impl Backends {
    /// Starts the embedded stores the flags leave out (`flush`: the StatsD flush interval).
    fn start(args: &DemoArgs, flush: Duration) -> Result<Backends, DemoError> {
        let legacy_store = match &args.statsd {
            None => Some(LegacyStore::start(flush)?),
            Some(_) => None,
        };
        let otlp_store = match &args.otlp {
            None => Some(OtlpStore::start()?),
            Some(_) => None,
        };
        let statsd_addr = match (&args.statsd, &legacy_store) {
            (Some(a), _) => a.clone(),
            (None, Some(s)) => s.local_addr().to_string(),
            (None, None) => unreachable!("a store is started when --statsd is absent"),
        };
        let (otlp_endpoint, protocol) = match (&args.otlp, &otlp_store) {
            (Some(e), _) => (
                e.clone(),
                match args.otlp_protocol {
                    OtlpProtocol::Grpc => Protocol::Grpc,
                    OtlpProtocol::Http => Protocol::HttpProtobuf,
                },
            ),
            (None, Some(s)) => (s.endpoint(), Protocol::Grpc),
            (None, None) => unreachable!("a store is started when --otlp is absent"),
        };
        Ok(Backends { legacy_store, otlp_store, statsd_addr, otlp_endpoint, protocol })
    }

    /// The `legacy` and `new` lines: where each side sends and what is queried.
    fn describe(&self, args: &DemoArgs, say: &dyn Fn(&str)) {
        say(&format!(
            "legacy   statsd udp://{} → {}",
            self.statsd_addr,
            match (&args.legacy_query, &self.legacy_store) {
                (Some(q), _) => format!("graphite {q}"),
                _ => "embedded graphite store (stats.counters.*, stats.gauges.*, stats.timers.*)"
                    .into(),
            }
        ));
        say(&format!(
            "new      otlp {} → {}",
            self.otlp_endpoint,
            match &args.new_query {
                Some(q) => format!("prometheus {q}"),
                None => "embedded prometheus store (http_requests_total, …)".into(),
            }
        ));
    }

    /// The service's SDK in `mode`, sending to both backends (`export`: the OTLP interval).
    fn sdk(&self, mode: Mode, export: Duration) -> Result<DualMetrics, DemoError> {
        DualMetrics::builder()
            .with_env_vars(Vec::<(String, String)>::new())
            .with_mode(mode)
            .with_service_name("checkout")
            // The SDK's own `dualmetrics.sdk.*` metrics count per pipeline (bytes sent, exports):
            // the two sides differ by design, so they are not part of the story.
            .with_setting("self_metrics", "false")
            .with_statsd_address(&self.statsd_addr)
            .with_statsd_prefix("checkout")
            .with_statsd_flush_interval(SDK_STATSD_FLUSH)
            .with_otlp_endpoint(&self.otlp_endpoint)
            .with_otlp_protocol(self.protocol)
            .with_otlp_export_interval(export)
            .build()
            .map_err(|e| DemoError::Sdk(e.to_string()))
    }

    /// What the embedded stores received and stored, with a few of their names.
    fn say_received(&self, say: &dyn Fn(&str)) {
        if let Some(s) = &self.legacy_store {
            let st = s.stats();
            say(&format!(
                "legacy   received {} packets, {} lines ({} refused), stored {} points in {} flushes",
                st.packets, st.lines, st.bad_lines, st.points, st.flushes
            ));
            say(&format!("         e.g. {}", sample(&s.series_names(), "stats.counters.")));
        }
        if let Some(s) = &self.otlp_store {
            let st = s.stats();
            say(&format!(
                "new      received {} export requests, stored {} samples ({} unsupported points)",
                st.requests, st.samples, st.unsupported_points
            ));
            say(&format!("         e.g. {}", sample(&s.metric_names(), "http_requests")));
        }
    }
}

/// Waits until the StatsD side has flushed everything sent before the call: two flushes of the
/// embedded store (bounded), or two flush intervals of a real daemon.
fn settle(legacy_store: Option<&LegacyStore>, flush: Duration) {
    match legacy_store {
        Some(store) => {
            let target = store.stats().flushes + 2;
            let deadline = Instant::now() + flush * 4 + Duration::from_secs(1);
            while store.stats().flushes < target && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(20));
            }
        }
        None => std::thread::sleep(flush * 2 + SDK_STATSD_FLUSH),
    }
}

/// Up to three names, those containing `prefer` first.
fn sample(names: &[String], prefer: &str) -> String {
    let mut picked: Vec<&str> =
        names.iter().filter(|n| n.contains(prefer)).take(2).map(String::as_str).collect();
    picked.extend(
        names.iter().filter(|n| !n.contains(prefer)).take(3 - picked.len()).map(String::as_str),
    );
    format!("{} (of {})", picked.join(", "), names.len())
}

fn write(path: &Path, text: &str) -> Result<(), DemoError> {
    std::fs::write(path, text)
        .map_err(|source| DemoError::Write { path: path.display().to_string(), source })
}

fn compare(
    args: &DemoArgs,
    window: phases::DualWindow,
    catalog: &Path,
    legacy_store: Option<&LegacyStore>,
    otlp_store: Option<&OtlpStore>,
    say: &dyn Fn(&str),
) -> Result<Report, DemoError> {
    let text = std::fs::read_to_string(catalog)
        .map_err(|source| DemoError::Write { path: catalog.display().to_string(), source })?;
    let parsed = parse_catalog(&text, &catalog.display().to_string())
        .map_err(|e| DemoError::Compare(e.to_string()))?;
    let opts = GenerateOptions {
        legacy_api: match (args.legacy_api, &args.legacy_query) {
            (LegacyQueryApi::Prometheus, Some(_)) => LegacyApi::Prometheus,
            _ => LegacyApi::Graphite,
        },
        prometheus_naming: args.new_naming == NewNaming::Prometheus,
        ..GenerateOptions::default()
    };
    let (pairs, notes) = generate_from_catalog(&parsed, &opts);
    let slowest = args.flush_interval_ms.max(args.export_interval_ms).div_ceil(1000) as i64;
    let max_lag = slowest + 1;
    let settings = CompareSettings {
        // The first export after the switch holds counts from before it on one side only.
        range: TimeRange { start: window.start + max_lag, end: window.end, step: STEP_SECS },
        // Both pipelines were flushed at the end boundary: nothing is still in flight.
        skip_recent: 0,
        // The embedded stores share one clock and stamp what they hold: no slack. A real
        // daemon stamps on its own flush clock what the SDK sent up to SDK_STATSD_FLUSH
        // earlier, and a real store keeps whole seconds (the OTLP side's 12:00:01.461 is read
        // back as 12:00:01): REAL_BACKEND_LAG_SECS of slack, which at a 1 s step costs the
        // comparison its sensitivity on short phases (a doubling needs ~10 s of it to show).
        max_lag_secs: if args.statsd.is_some() || args.otlp.is_some() {
            REAL_BACKEND_LAG_SECS
        } else {
            0
        },
        window_secs: WINDOW_SECS.max(2 * slowest + 1),
        min_share: 1.0,
        parallel: 4,
        ..CompareSettings::default()
    };
    let http_err = |e: dualmetrics_compare::QueryError| DemoError::Compare(e.to_string());
    let legacy: Box<dyn QueryAdapter + '_> = match (&args.legacy_query, legacy_store) {
        (Some(q), _) if args.legacy_api == LegacyQueryApi::Prometheus => Box::new(
            PrometheusAdapter::new(HttpConfig::new(url_arg("--legacy-query", q)?))
                .map_err(http_err)?,
        ),
        (Some(q), _) => Box::new(
            GraphiteAdapter::new(HttpConfig::new(url_arg("--legacy-query", q)?))
                .map_err(http_err)?
                .with_storage_step(Some(format!("{}s", args.flush_interval_ms.div_ceil(1000)))),
        ),
        (None, Some(s)) => Box::new(StoreRef(s)),
        (None, None) => unreachable!("validated: --statsd comes with --legacy-query"),
    };
    let new: Box<dyn QueryAdapter + '_> = match (&args.new_query, otlp_store) {
        (Some(q), _) => Box::new(
            PrometheusAdapter::new(HttpConfig::new(url_arg("--new-query", q)?))
                .map_err(http_err)?,
        ),
        (None, Some(s)) => Box::new(StoreRef(s)),
        (None, None) => unreachable!("validated: --otlp comes with --new-query"),
    };
    say(&format!(
        "compare  {} pairs over the dual window {}..{} (step {STEP_SECS}s, lag {max_lag}s)",
        pairs.len(),
        settings.range.start,
        settings.range.end
    ));
    Ok(compare_report(&pairs, &notes, legacy.as_ref(), new.as_ref(), &settings))
}

/// A borrowed store as a boxed adapter.
struct StoreRef<'a, T>(&'a T);

impl<T: QueryAdapter> QueryAdapter for StoreRef<'_, T> {
    fn describe(&self) -> String {
        self.0.describe()
    }
    fn range(
        &self,
        q: &str,
        r: &TimeRange,
    ) -> Result<Vec<dualmetrics_compare::Series>, dualmetrics_compare::QueryError> {
        self.0.range(q, r)
    }
    fn instant(
        &self,
        q: &str,
        at: i64,
    ) -> Result<Vec<dualmetrics_compare::Series>, dualmetrics_compare::QueryError> {
        self.0.instant(q, at)
    }
}

/// Runs `dualmetrics demo`, prints the story and the table, and returns the exit code.
pub fn run_code(args: &DemoArgs) -> u8 {
    let quiet = args.quiet;
    let say = move |line: &str| {
        if !quiet {
            println!("{line}");
        }
    };
    match run(args, &say) {
        Ok(out) => {
            print!("{}", table::render(&out.report));
            println!("catalog: {}", out.catalog.display());
            println!("HTML report: {}", out.html.display());
            println!("JSON report: {}", out.json.display());
            println!("sample dashboard and alert: {}", out.port.describe(&args.out));
            for p in out.report.pairs.iter().filter(|p| p.error.is_some()) {
                eprintln!(
                    "dualmetrics demo: pair {:?}: {}",
                    p.name,
                    p.error.as_deref().unwrap_or("")
                );
            }
            if let Some(f) = args.inject_fault {
                println!(
                    "injected fault {}: expected divergent: {}",
                    f.as_str(),
                    f.divergent_pairs().join(", ")
                );
            }
            out.report.exit_code()
        }
        Err(e) => {
            eprintln!("dualmetrics demo: error: {e}");
            2
        }
    }
}
