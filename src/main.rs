//! The `dualmetrics` command line.
use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(name = "dualmetrics", version, about = "Dual StatsD + OTLP metrics: demo, compare, shim")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Print the effective SDK configuration (file + env section + environment) and exit.
    Config {
        /// TOML configuration file.
        #[arg(long, env = "DUALMETRICS_CONFIG")]
        config: Option<std::path::PathBuf>,
    },
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    match cli.command {
        Command::Config { config } => {
            let _ = config;
            println!("dualmetrics {}", env!("CARGO_PKG_VERSION"));
        }
    }
    Ok(())
}
