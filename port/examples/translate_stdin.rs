//! Translates targets from standard input with the default context (the library's CLI logic
//! without the `dualmetrics` binary): `echo 'sumSeries(stats.counters.a.count)' | cargo run -p dualmetrics-port --example translate_stdin`.
fn main() {
    let args = <dualmetrics_port::cli::TranslateArgs as clap::FromArgMatches>::from_arg_matches(
        &<dualmetrics_port::cli::TranslateArgs as clap::Args>::augment_args(clap::Command::new(
            "translate",
        ))
        .get_matches(),
    )
    .expect("arguments");
    let code = dualmetrics_port::cli::run(
        &args,
        &mut std::io::stdin().lock(),
        &mut std::io::stdout().lock(),
        &mut std::io::stderr().lock(),
    );
    std::process::exit(i32::from(code));
}
