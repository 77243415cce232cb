//! `dualmetrics-compare`: the comparator on its own (the same as `dualmetrics compare`).
use std::process::ExitCode;

use clap::Parser;

#[derive(Parser)]
#[command(name = "dualmetrics-compare", version)]
struct Cli {
    #[command(flatten)]
    args: dualmetrics_compare::CompareArgs,
}

fn main() -> ExitCode {
    dualmetrics_compare::run(&Cli::parse().args)
}
