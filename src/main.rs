//! The `dualmetrics` command line.
use clap::{Parser, Subcommand};

mod demo;

#[derive(Parser)]
#[command(
    name = "dualmetrics",
    version,
    about = "Dual StatsD + OTLP metrics: demo, compare, shim, translate"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// The whole migration story on embedded backends: legacy → dual → otlp, then the report.
    Demo(demo::DemoArgs),
    /// Print the effective SDK configuration (file + env section + environment) and exit.
    Config {
        /// TOML configuration file.
        #[arg(long, env = "DUALMETRICS_CONFIG")]
        config: Option<std::path::PathBuf>,
    },
    /// Compare legacy (Graphite/StatsD) and new (Prometheus API) backends; exit 0/1/2.
    Compare(Box<dualmetrics_compare::CompareArgs>),
    /// StatsD sidecar: tee raw StatsD to the legacy daemon, export cumulative OTLP.
    Shim(Box<dualmetrics_shim::ShimArgs>),
    /// Translate Graphite targets to PromQL (exact / approximate / untranslatable); exit 0/1/2.
    Translate(Box<dualmetrics_port::cli::TranslateArgs>),
    /// Port Grafana dashboards from Graphite to Prometheus; exit 0/1/2.
    Dashboards(Box<dualmetrics_port::grafana::cli::DashboardsArgs>),
    /// Port Graphite alerts to Prometheus alerting rules; exit 0/1/2.
    Alerts(Box<dualmetrics_port::alerts::cli::AlertsArgs>),
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    match cli.command {
        Command::Config { config } => {
            let mut builder = dualmetrics::DualMetrics::builder();
            if let Some(path) = config {
                builder = builder.with_config_file(path);
            }
            match builder.resolve_config() {
                // header values are redacted by the SDK's `Debug`; a password in a URL here
                Ok(resolved) => println!("{}", redact_userinfo(&format!("{resolved:#?}"))),
                Err(e) => {
                    eprintln!("dualmetrics config: {e}");
                    std::process::exit(2);
                }
            }
        }
        Command::Demo(args) => std::process::exit(i32::from(demo::run_code(&args))),
        Command::Compare(args) => {
            std::process::exit(i32::from(dualmetrics_compare::run_code(&args)))
        }
        Command::Translate(args) => {
            let code = dualmetrics_port::cli::run(
                &args,
                &mut std::io::stdin().lock(),
                &mut std::io::stdout().lock(),
                &mut std::io::stderr().lock(),
            );
            std::process::exit(i32::from(code))
        }
        Command::Dashboards(args) => {
            std::process::exit(i32::from(dualmetrics_port::grafana::cli::run(&args)))
        }
        Command::Alerts(args) => {
            std::process::exit(i32::from(dualmetrics_port::alerts::cli::run(&args)))
        }
        Command::Shim(args) => dualmetrics_shim::run_cli(&args).map_err(|e| anyhow::anyhow!(e))?,
    }
    Ok(())
}

/// `scheme://user:password@host` → `scheme://user:***@host` everywhere in `text`.
fn redact_userinfo(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(i) = rest.find("://") {
        let (head, tail) = rest.split_at(i + 3);
        out.push_str(head);
        let authority_end = tail.find(['/', '"', ' ', '\n', '?', '#']).unwrap_or(tail.len());
        let authority = &tail[..authority_end];
        match authority.rfind('@').and_then(|at| authority[..at].find(':').map(|c| (c, at))) {
            Some((colon, at)) => {
                out.push_str(&authority[..=colon]);
                out.push_str("***");
                out.push_str(&authority[at..]);
            }
            None => out.push_str(authority),
        }
        rest = &tail[authority_end..];
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    #[test]
    fn passwords_in_urls_are_redacted() {
        assert_eq!(
            super::redact_userinfo(
                r#"endpoint: "https://u:pw@c.example:4317/v1", b: "http://h:1""#
            ),
            r#"endpoint: "https://u:***@c.example:4317/v1", b: "http://h:1""#
        );
    }
}
