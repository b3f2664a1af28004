//! `bench`: benchmark LLM inference servers. Thin: parse, run, map the result to an exit code.

mod catalog;
mod chat;
mod cli;
mod driver;
mod k8s;
mod merge;
mod runs;
mod serve;
mod signals;
mod storage;
mod sweep;

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let args = cli::Args::parse();
    init_logging(args.verbose, args.quiet);
    let code = match driver::run(args) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {}", e.message);
            e.code
        }
    };
    ExitCode::from(code as u8)
}

/// Logs to stderr: info by default, `-q` warnings only, `-v` debug, `-vv` trace; `RUST_LOG`
/// overrides. Colour only when stderr is a terminal and `NO_COLOR` is unset.
fn init_logging(verbose: u8, quiet: bool) {
    use std::io::IsTerminal;
    use tracing_subscriber::EnvFilter;
    let default = match (quiet, verbose) {
        (true, _) => "warn",
        (false, 0) => "info",
        (false, 1) => "debug",
        (false, _) => "trace",
    };
    // object_store says at info level each time it retries: a warning says what came of it
    let filter = EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| EnvFilter::new(format!("{default},object_store=warn")));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none())
        .with_target(false)
        .without_time()
        .init();
}
