//! The `cdc` command line: argument definitions and dispatch.
//!
//! Exit codes follow the spec: generate 0 done, 1 `--check` found differences;
//! apply 0 done, 1 failed; status 0 all applied, 1 pending or modified; diff
//! 0 no change, 1 changes; every
//! command 2 for a usage, input or configuration error.

mod apply;
mod diff;
mod generate;
mod mssql;

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context as _;
use clap::{Args, Parser, Subcommand};

pub use mssql::{CleanCdcArgs, EnableCdcArgs, ResourcesArgs, ServicesCommand};

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
    /// Inspect the MSSQL source: write or check the table YAML.
    #[command(name = "manage-services", subcommand)]
    ManageServices(ServicesCommand),
}

/// `cdc manage-migrations ...`
#[derive(Debug, Subcommand)]
pub enum MigrationsCommand {
    /// Generate migration SQL files and manifests from the service YAML.
    Generate(GenerateArgs),
    /// Apply pending migrations of a sink to its PostgreSQL database.
    Apply(ApplyArgs),
    /// Show which files of a sink are applied, pending or modified.
    Status(StatusArgs),
    /// Show how the YAML changes the generated tables (or, with --env, the database), with each change's severity and what apply does.
    Diff(DiffArgs),
    /// Enable CDC on the MSSQL source database and the service's source tables.
    EnableCdc(EnableCdcArgs),
    /// Remove old change rows from the MSSQL source's capture instances.
    CleanCdc(CleanCdcArgs),
}

/// Output format of apply, status, diff and `generate --check`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum OutputFormat {
    /// Lines for people.
    Text,
    /// One JSON document.
    Json,
}

/// Arguments of `cdc manage-migrations apply`.
#[derive(Debug, Args)]
pub struct ApplyArgs {
    /// Environment: selects the database from the manifest and the PG_<ENV>_* variables.
    #[arg(long)]
    pub env: String,
    /// The sink (required when there are several).
    #[arg(long)]
    pub sink: Option<String>,
    /// Show what would be applied; change nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// Output format.
    #[arg(long, value_enum, default_value = "text")]
    pub format: OutputFormat,
    /// Seconds to wait for another migrator of the same sink.
    #[arg(long, default_value_t = 60, value_name = "SECONDS")]
    pub lock_wait: u64,
    /// Seconds to keep retrying while the server is unreachable.
    #[arg(long, default_value_t = 30, value_name = "SECONDS")]
    pub connect_retry: u64,
    /// Project root (default: the first directory upward that holds `migrations/` or `services/`).
    #[arg(long, value_name = "DIR")]
    pub project_dir: Option<PathBuf>,
}

/// Arguments of `cdc manage-migrations status`.
#[derive(Debug, Args)]
pub struct StatusArgs {
    /// Environment to compare with.
    #[arg(long)]
    pub env: Option<String>,
    /// List the files as pending without connecting.
    #[arg(long)]
    pub offline: bool,
    /// Seconds to keep retrying while the server is unreachable.
    #[arg(long, default_value_t = 30, value_name = "SECONDS")]
    pub connect_retry: u64,
    /// The sink (required when there are several).
    #[arg(long)]
    pub sink: Option<String>,
    /// Output format.
    #[arg(long, value_enum, default_value = "text")]
    pub format: OutputFormat,
    /// Project root.
    #[arg(long, value_name = "DIR")]
    pub project_dir: Option<PathBuf>,
}

/// Which project, and which part of it, `generate` and `diff` load.
#[derive(Debug, Args)]
pub struct ProjectArgs {
    /// Only the sinks of this service.
    #[arg(long)]
    pub service: Option<String>,
    /// Only this sink.
    #[arg(long)]
    pub sink: Option<String>,
    /// Project root (default: the first directory from here upward that holds `services/`).
    #[arg(long, value_name = "DIR")]
    pub project_dir: Option<PathBuf>,
}

impl ProjectArgs {
    /// Finds the project root, loads the selected part and prints its warnings.
    pub fn load(&self) -> anyhow::Result<(PathBuf, cdc_build::Project)> {
        let root = self.root()?;
        let project = self.load_at(&root)?;
        Ok((root, project))
    }

    /// The project root: `--project-dir`, else the first directory upward holding `services/`.
    pub fn root(&self) -> anyhow::Result<PathBuf> {
        let start = match &self.project_dir {
            Some(dir) => dir.clone(),
            None => std::env::current_dir().context("cannot read the current directory")?,
        };
        Ok(cdc_build::find_project_root(
            &start,
            cdc_build::RootMarker::Services,
        )?)
    }

    /// Loads the selected part of the project at `root` and prints its warnings.
    pub fn load_at(&self, root: &std::path::Path) -> anyhow::Result<cdc_build::Project> {
        let filter = cdc_build::Filter {
            service: self.service.clone(),
            sink: self.sink.clone(),
        };
        let project = cdc_build::load_project(root, &filter)?;
        for warning in &project.warnings {
            eprintln!("warning: {warning}");
        }
        Ok(project)
    }
}

/// Arguments of `cdc manage-migrations generate`.
#[derive(Debug, Args)]
pub struct GenerateArgs {
    #[command(flatten)]
    pub project: ProjectArgs,
    /// Only this table's files (the manifest is kept complete).
    #[arg(long)]
    pub table: Option<String>,
    /// Show what would be written; write nothing.
    #[arg(long, conflicts_with = "check")]
    pub dry_run: bool,
    /// Exit 1 and report, by table and change kind, how the committed migrations differ from the YAML (for CI).
    #[arg(long)]
    pub check: bool,
    /// Output format of the `--check` report.
    #[arg(long, value_enum, default_value = "text")]
    pub format: OutputFormat,
    /// Write an explicit, checksummed migration for each table with breaking
    /// changes (`01-tables/breaking/<Table>.<n>.sql`, applied before the table
    /// file); without it, generate refuses them.
    #[arg(long)]
    pub allow_breaking: bool,
}

/// Arguments of `cdc manage-migrations diff`.
#[derive(Debug, Args)]
pub struct DiffArgs {
    #[command(flatten)]
    pub project: ProjectArgs,
    /// Only this table.
    #[arg(long)]
    pub table: Option<String>,
    /// Output format.
    #[arg(long, value_enum, default_value = "text")]
    pub format: OutputFormat,
    /// Compare with the database of this environment (PG_<ENV>_* variables, database from the YAML) instead of the generated files.
    #[arg(long)]
    pub env: Option<String>,
    /// Seconds to keep retrying while the server is unreachable (with --env).
    #[arg(long, default_value_t = 30, value_name = "SECONDS")]
    pub connect_retry: u64,
}

/// Runs a parsed command line and returns the process exit code.
pub fn run(cli: Cli) -> ExitCode {
    let result = match cli.command {
        Command::ManageMigrations(MigrationsCommand::Generate(args)) => generate::run(&args),
        Command::ManageMigrations(MigrationsCommand::Apply(args)) => apply::run_apply(&args),
        Command::ManageMigrations(MigrationsCommand::Status(args)) => apply::run_status(&args),
        Command::ManageMigrations(MigrationsCommand::Diff(args)) => diff::run(&args),
        Command::ManageMigrations(MigrationsCommand::EnableCdc(args)) => {
            return mssql::run_enable_cdc(&args)
        }
        Command::ManageMigrations(MigrationsCommand::CleanCdc(args)) => {
            return mssql::run_clean_cdc(&args)
        }
        Command::ManageServices(command) => return mssql::run_services(&command),
    };
    match result {
        Ok(code) => code,
        Err(err) => {
            eprintln!("error: {}", error_text(&err));
            ExitCode::from(2)
        }
    }
}

/// An error and its causes on one line, `outer: inner: ...`, each cause said
/// once: a cause whose text the line already ends with (a thiserror variant
/// such as `"{path}: {source}"` that also marks `source` as its `#[source]`)
/// is not repeated, as anyhow's `{:#}` would.
pub fn error_text(error: &anyhow::Error) -> String {
    let mut text = error.to_string();
    for cause in error.chain().skip(1) {
        let cause = cause.to_string();
        if !text.ends_with(&cause) {
            text.push_str(": ");
            text.push_str(&cause);
        }
    }
    text
}

#[cfg(test)]
mod tests {
    use super::error_text;
    use anyhow::Context as _;
    use cdc_core::{LoadError, ManifestError};

    #[test]
    fn a_cause_already_in_the_message_is_said_once() {
        let load = LoadError::Manifest {
            path: "m/manifest.yaml".into(),
            source: ManifestError {
                line: 3,
                message: "unknown key `x`".into(),
            },
        };
        let error = Err::<(), _>(load)
            .context("cannot load sink `s`")
            .unwrap_err();
        assert_eq!(
            error_text(&error),
            "cannot load sink `s`: m/manifest.yaml: manifest.yaml line 3: unknown key `x`"
        );
        let io = std::io::Error::other("disk on fire");
        let error = Err::<(), _>(io).context("cannot read `x`").unwrap_err();
        assert_eq!(error_text(&error), "cannot read `x`: disk on fire");
    }
}
