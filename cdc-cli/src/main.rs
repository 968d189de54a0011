//! The `cdc` binary: a thin shell over [`cdc_cli::run`].

use clap::Parser;

fn main() -> std::process::ExitCode {
    cdc_cli::run(cdc_cli::Cli::parse())
}
