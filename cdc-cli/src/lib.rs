//! The `cdc` command line: argument definitions and dispatch.
//!
//! Exit codes follow the spec: 0 done, 1 a check found differences, 2 usage,
//! input or configuration error.

mod generate;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};

/// CDC migrations: MSSQL table YAML in, PostgreSQL sink migrations out.
#[derive(Debug, Parser)]
#[command(name = "cdc", version, about)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// Top-level command groups.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Generate, check and apply PostgreSQL migrations.
    #[command(name = "manage-migrations", subcommand)]
    ManageMigrations(MigrationsCommand),
}

/// `cdc manage-migrations ...`
#[derive(Debug, Subcommand)]
pub enum MigrationsCommand {
    /// Generate migration SQL files and manifests from the service YAML.
    Generate(GenerateArgs),
}

/// Arguments of `cdc manage-migrations generate`.
#[derive(Debug, Args)]
pub struct GenerateArgs {
    /// Only the sinks of this service.
    #[arg(long)]
    pub service: Option<String>,
    /// Only this sink.
    #[arg(long)]
    pub sink: Option<String>,
    /// Only this table's files (the manifest is kept complete).
    #[arg(long)]
    pub table: Option<String>,
    /// Show what would be written; write nothing.
    #[arg(long, conflicts_with = "check")]
    pub dry_run: bool,
    /// Exit 1 and name the stale files when the committed migrations differ from the YAML (for CI).
    #[arg(long)]
    pub check: bool,
    /// Project root (default: the first directory from here upward that holds `services/`).
    #[arg(long, value_name = "DIR")]
    pub project_dir: Option<PathBuf>,
}

/// Runs a parsed command line and returns the process exit code.
pub fn run(cli: Cli) -> ExitCode {
    let result = match cli.command {
        Command::ManageMigrations(MigrationsCommand::Generate(args)) => generate::run(&args),
    };
    match result {
        Ok(code) => code,
        Err(err) => {
            eprintln!("error: {err:#}");
            ExitCode::from(2)
        }
    }
}
