//! The `cdc` binary: a thin shell over [`cdc_cli::run`] that also installs the log output (`-v`, `RUST_LOG`) on stderr.

use std::io::IsTerminal as _;

use clap::{Arg, ArgAction, CommandFactory as _, FromArgMatches as _};
use tracing_subscriber::filter::{EnvFilter, LevelFilter};

fn main() -> std::process::ExitCode {
    let matches = cdc_cli::Cli::command()
        .arg(
            Arg::new("verbose")
                .short('v')
                .long("verbose")
                .action(ArgAction::Count)
                .global(true)
                .help("Log more on stderr: -v info, -vv debug, -vvv trace (default: warnings only; RUST_LOG, when set, decides)"),
        )
        .get_matches();
    install_log_output(matches.get_count("verbose"));
    let cli = cdc_cli::Cli::from_arg_matches(&matches)
        .unwrap_or_else(|e| e.format(&mut cdc_cli::Cli::command()).exit());
    cdc_cli::run(cli)
}

/// Events of the libraries (files applied, lock waits, ...) go to stderr, so
/// that stdout keeps only the command's output; `RUST_LOG` (an `EnvFilter`
/// directive such as `cdc_runtime=debug`) wins over `-v` when set.
fn install_log_output(verbose: u8) {
    let level = match verbose {
        0 => LevelFilter::WARN,
        1 => LevelFilter::INFO,
        2 => LevelFilter::DEBUG,
        _ => LevelFilter::TRACE,
    };
    let filter = EnvFilter::builder()
        .with_default_directive(level.into())
        .from_env_lossy();
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .init();
}
