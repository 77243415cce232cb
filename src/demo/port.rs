//! The demo's last act: the sample dashboard and alert shipped under `examples/` are ported
//! from Graphite to PromQL, and — when the demo ran against real backends — validated panel by
//! panel and backtested over the dual window, as `dualmetrics dashboards|alerts port|validate`
//! would do for a team's own dashboards.
//!
//! The embedded stores answer only the comparator's own queries (no Graphite functions, no
//! `histogram_quantile`), so on them the port is shown and validation is reported as not run,
//! with the command that runs it against real backends. Nothing here changes the demo's exit
//! code: that is the comparator's verdict on the catalog's pairs.
use std::path::{Path, PathBuf};

use clap::Parser;
use dualmetrics_port::alerts::cli::{run_port as run_alerts_port, AlertsPortArgs};
use dualmetrics_port::grafana::cli::{run_port as run_dashboards_port, PortArgs};
use dualmetrics_port::validate::cli::{
    run_alerts, run_dashboards, AlertsValidateArgs, DashboardsValidateArgs,
};

use super::{phases::DualWindow, DemoArgs, DemoError, NewNaming};

/// The sample dashboard (`examples/dashboards/service-overview.json`), built into the binary so
/// the demo runs from any directory.
pub const DASHBOARD: &str = include_str!("../../examples/dashboards/service-overview.json");
/// The sample Graphite alerts (`examples/alerts/checkout.yaml`).
pub const ALERTS: &str = include_str!("../../examples/alerts/checkout.yaml");
/// `$__rate_interval` during validation: three of the demo's 1 s steps.
const RATE_INTERVAL: &str = "3s";

/// Exit codes of each step (0 all good, 1 something approximate/divergent, 2 an error), and
/// `None` for a validation that did not run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PortSummary {
    /// `dashboards port`.
    pub dashboards_ported: u8,
    /// `alerts port`.
    pub alerts_ported: u8,
    /// `dashboards validate`.
    pub dashboards_validated: Option<u8>,
    /// `alerts validate`.
    pub alerts_validated: Option<u8>,
}

impl PortSummary {
    /// One line for the end of the demo: where the ported files and validation reports are.
    pub fn describe(&self, out: &Path) -> String {
        let port = |code: u8| match code {
            0 => "every target translated",
            1 => "some untranslatable",
            _ => "errors",
        };
        let check = |code: u8| match code {
            0 => "all equivalent",
            1 => "some divergent or not validated",
            _ => "errors",
        };
        let ported = format!(
            "ported to {} (dashboards: {}; alerts: {})",
            path(&out.join("ported")),
            port(self.dashboards_ported),
            port(self.alerts_ported)
        );
        match (self.dashboards_validated, self.alerts_validated) {
            (Some(d), Some(a)) => format!(
                "{ported}; validated on the dual window (dashboards: {}; alerts: {}): {}",
                check(d),
                check(a),
                path(&out.join("dashboards-validation.html"))
            ),
            _ => format!("{ported}; not validated on the embedded stores"),
        }
    }
}

#[derive(Parser)]
struct Cli<A: clap::Args> {
    #[command(flatten)]
    args: A,
}

/// Runs one subcommand from its argument list, its output shown line by line.
fn step<A: clap::Args>(
    argv: &[String],
    run: fn(&A, &mut dyn std::io::Write, &mut dyn std::io::Write) -> u8,
    say: &dyn Fn(&str),
) -> Result<u8, DemoError> {
    let cli =
        Cli::<A>::try_parse_from(std::iter::once("demo".to_owned()).chain(argv.iter().cloned()))
            .map_err(|e| DemoError::Port(e.to_string()))?;
    let (mut out, mut err) = (Vec::new(), Vec::new());
    let code = run(&cli.args, &mut out, &mut err);
    for line in String::from_utf8_lossy(&out).lines().chain(String::from_utf8_lossy(&err).lines()) {
        if !line.trim().is_empty() {
            say(&format!("         {line}"));
        }
    }
    Ok(code)
}

fn path(p: &Path) -> String {
    p.display().to_string()
}

/// Ports (and with real backends validates) the sample dashboard and alert into
/// `<out>/examples` → `<out>/ported`.
///
/// # Errors
/// The samples cannot be written, or a step's arguments do not parse (a bug).
pub fn run(
    args: &DemoArgs,
    window: DualWindow,
    catalog: &Path,
    slack: i64,
    say: &dyn Fn(&str),
) -> Result<PortSummary, DemoError> {
    let dashboards = args.out.join("examples").join("dashboards");
    let alerts = args.out.join("examples").join("alerts");
    let alerts_file = alerts.join("checkout.yaml");
    let write = |dir: &Path, file: PathBuf, text: &str| {
        std::fs::create_dir_all(dir)
            .and_then(|()| std::fs::write(&file, text))
            .map_err(|source| DemoError::Write { path: path(&file), source })
    };
    write(&dashboards, dashboards.join("service-overview.json"), DASHBOARD)?;
    write(&alerts, alerts_file.clone(), ALERTS)?;
    let ported = args.out.join("ported");
    let flush = format!("{}", args.flush_interval_ms.div_ceil(1000).max(1));
    let mut translator = vec!["--flush-interval".to_owned(), flush.clone()];
    translator.extend(["--catalog".to_owned(), path(catalog)]);
    if args.new_naming == NewNaming::Otel {
        translator.push("--no-prometheus-naming".to_owned());
    }

    say("port     the sample dashboard and alert (examples/) to PromQL:");
    let mut argv = vec![path(&dashboards), "--out".to_owned(), path(&ported.join("dashboards"))];
    argv.extend(translator.iter().cloned());
    let dashboards_ported = step::<PortArgs>(&argv, run_dashboards_port, say)?;
    let mut argv = vec![path(&alerts), "--out".to_owned(), path(&ported.join("alerts"))];
    argv.extend(translator.iter().cloned());
    let alerts_ported = step::<AlertsPortArgs>(&argv, run_alerts_port, say)?;

    let (Some(legacy), Some(new)) = (&args.legacy_query, &args.new_query) else {
        say("validate not run: the embedded stores answer the comparator's queries only (no Graphite");
        say("         functions, no histogram_quantile). Against real backends the demo validates the");
        say("         ported dashboard and backtests the alert; by hand: dualmetrics dashboards validate");
        say(&format!(
            "         {} --legacy-url <render API> --new-url <Prometheus API> --last 1h",
            path(&ported.join("dashboards"))
        ));
        return Ok(PortSummary {
            dashboards_ported,
            alerts_ported,
            dashboards_validated: None,
            alerts_validated: None,
        });
    };
    let mut backends = vec![
        "--legacy-url".to_owned(),
        legacy.clone(),
        "--new-url".to_owned(),
        new.clone(),
        "--start".to_owned(),
        (window.start + slack).to_string(),
        "--end".to_owned(),
        window.end.to_string(),
        "--step".to_owned(),
        "1".to_owned(),
        "--storage-step".to_owned(),
        format!("{flush}s"),
        "--rate-interval".to_owned(),
        RATE_INTERVAL.to_owned(),
    ];
    backends.extend(translator);
    say(&format!(
        "validate the ported dashboard and alert over the dual window on {legacy} and {new}:"
    ));
    let mut argv = vec![path(&ported.join("dashboards"))];
    argv.extend(backends.iter().cloned());
    argv.extend([
        "--json".to_owned(),
        path(&args.out.join("dashboards-validation.json")),
        "--html".to_owned(),
        path(&args.out.join("dashboards-validation.html")),
    ]);
    let dashboards_validated = step::<DashboardsValidateArgs>(&argv, run_dashboards, say)?;
    let mut argv = vec![path(&alerts_file)];
    argv.extend(backends);
    argv.extend(["--json".to_owned(), path(&args.out.join("alerts-validation.json"))]);
    let alerts_validated = step::<AlertsValidateArgs>(&argv, run_alerts, say)?;
    Ok(PortSummary {
        dashboards_ported,
        alerts_ported,
        dashboards_validated: Some(dashboards_validated),
        alerts_validated: Some(alerts_validated),
    })
}
