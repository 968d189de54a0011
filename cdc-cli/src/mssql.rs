//! The source side on the command line: `manage-services resources --inspect`,
//! `manage-migrations enable-cdc` and `clean-cdc`, presenting what cdc-mssql does.
//!
//! Exit codes: 0 done; 1 `--check` found drift, a table failed, or the server
//! could not be reached or refused a query; 2 usage, input or configuration error.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use cdc_build::{find_project_root, RootMarker};
use cdc_mssql::connection::ConnectionSettings;
use cdc_mssql::driver::SourceConnection;
use cdc_mssql::inspect::{check_tables, save_tables, select_tables, InspectScope};
use cdc_mssql::plan::{plan_clean, plan_enable, CleanStep, EnableStep};
use cdc_mssql::project::choose_service;
use cdc_mssql::script::{clean_cdc_script, enable_cdc_script};
use cdc_mssql::{Error, TableRef};
use clap::{Args, Subcommand};

/// `cdc manage-services ...`
#[derive(Debug, Subcommand)]
pub enum ServicesCommand {
    /// Inspect the source tables of a service; save or check their table YAML.
    Resources(ResourcesArgs),
}

/// Arguments of `cdc manage-services resources`.
#[derive(Debug, Args)]
pub struct ResourcesArgs {
    /// Read the source tables from the MSSQL catalog (the only action so far).
    #[arg(long, required = true)]
    pub inspect: bool,
    /// The service whose tables are inspected and under whose `_schemas/` they are saved.
    #[arg(long)]
    pub service: String,
    /// Every table of this schema instead of the service's `source.tables`.
    #[arg(long, conflicts_with = "all")]
    pub schema: Option<String>,
    /// Every user table of the database instead of the service's `source.tables`.
    #[arg(long)]
    pub all: bool,
    /// Write one table YAML per table (only files whose content changes).
    #[arg(long, conflicts_with = "check")]
    pub save: bool,
    /// Exit 1 and name every table and column whose live definition differs from its YAML.
    #[arg(long)]
    pub check: bool,
    /// Environment: reads MSSQL_<ENV>_HOST/PORT/DATABASE/USER/PASSWORD, then MSSQL_*.
    #[arg(long)]
    pub env: Option<String>,
    /// Project root (default: the first directory from here upward that holds `services/`).
    #[arg(long, value_name = "DIR")]
    pub project_dir: Option<PathBuf>,
}

/// What `enable-cdc` and `clean-cdc` act on, and how.
#[derive(Debug, Args)]
pub struct SourceTablesArgs {
    /// Environment: reads MSSQL_<ENV>_HOST/PORT/DATABASE/USER/PASSWORD, then MSSQL_*.
    #[arg(long)]
    pub env: String,
    /// The service whose source tables are acted on (required when there are several).
    #[arg(long)]
    pub service: Option<String>,
    /// Only this table (`Table` or `schema.Table`).
    #[arg(long)]
    pub table: Option<String>,
    /// Print an idempotent T-SQL script instead; never connects.
    #[arg(long)]
    pub dry_run: bool,
    /// Project root.
    #[arg(long, value_name = "DIR")]
    pub project_dir: Option<PathBuf>,
}

/// Arguments of `cdc manage-migrations enable-cdc`.
#[derive(Debug, Args)]
pub struct EnableCdcArgs {
    #[command(flatten)]
    pub scope: SourceTablesArgs,
}

/// Arguments of `cdc manage-migrations clean-cdc`.
#[derive(Debug, Args)]
pub struct CleanCdcArgs {
    #[command(flatten)]
    pub scope: SourceTablesArgs,
    /// Remove change rows older than this many days.
    #[arg(long, default_value_t = 30, value_parser = clap::value_parser!(u32).range(1..=36500))]
    pub days: u32,
}

/// Runs `manage-services ...`.
pub fn run_services(command: &ServicesCommand) -> ExitCode {
    match command {
        ServicesCommand::Resources(args) => finish(inspect(args)),
    }
}

/// Runs `manage-migrations enable-cdc`.
pub fn run_enable_cdc(args: &EnableCdcArgs) -> ExitCode {
    finish(enable_cdc(args))
}

/// Runs `manage-migrations clean-cdc`.
pub fn run_clean_cdc(args: &CleanCdcArgs) -> ExitCode {
    finish(clean_cdc(args))
}

/// An error and the exit code it means.
struct Failure {
    error: Error,
    code: u8,
}

impl From<Error> for Failure {
    fn from(error: Error) -> Failure {
        // Reaching the server and its answers are failures of the run (1); the
        // rest is what the user gave us (2).
        let code = match error {
            Error::Connect { .. }
            | Error::Query { .. }
            | Error::UnexpectedResult { .. }
            | Error::Runtime(_) => 1,
            _ => 2,
        };
        Failure { error, code }
    }
}

fn finish(result: Result<ExitCode, Failure>) -> ExitCode {
    result.unwrap_or_else(|failure| {
        eprintln!("error: {}", failure.error);
        ExitCode::from(failure.code)
    })
}

fn project_root(dir: Option<&Path>) -> Result<PathBuf, Failure> {
    let start = match dir {
        Some(dir) => dir.to_path_buf(),
        None => std::env::current_dir().map_err(|e| Error::Io {
            path: PathBuf::from("."),
            source: e,
        })?,
    };
    find_project_root(&start, RootMarker::Services).map_err(|e| {
        Failure::from(Error::InvalidFile {
            path: start,
            message: format!("{e} (use --project-dir)"),
        })
    })
}

fn connect(env: Option<&str>) -> Result<SourceConnection, Failure> {
    let settings = ConnectionSettings::from_env(env, |key| std::env::var(key).ok())?;
    eprintln!("connecting to {settings}");
    Ok(SourceConnection::connect(&settings)?)
}

fn inspect(args: &ResourcesArgs) -> Result<ExitCode, Failure> {
    let root = project_root(args.project_dir.as_deref())?;
    let service = choose_service(&root, Some(&args.service))?;
    let scope = match (&args.schema, args.all) {
        (Some(schema), _) => InspectScope::Schema(schema.clone()),
        (None, true) => InspectScope::All,
        (None, false) => InspectScope::ServiceTables(service.tables.clone()),
    };
    let mut source = connect(args.env.as_deref())?;
    let database = source.database_status()?.name;
    let rows = source.catalog_rows(scope.catalog_schema())?;
    let live = cdc_mssql::catalog::tables_from_rows(&rows, Some(&database), Some(&service.name))?;
    let selection = select_tables(live, &scope);
    println!(
        "database {database}, service {}: {} tables",
        service.name,
        selection.tables.len()
    );
    for table in &selection.tables {
        println!(
            "  {}.{}  {} columns",
            table.schema,
            table.table,
            table.columns.len()
        );
    }
    for table in &selection.missing {
        println!("  {table}  not found at the source");
    }
    let shown = |path: &Path| {
        path.strip_prefix(&root)
            .unwrap_or(path)
            .display()
            .to_string()
    };
    if args.save {
        let saved = save_tables(&root, &service.name, &selection.tables)?;
        let written = saved.iter().filter(|s| s.written).count();
        for file in saved.iter().filter(|s| s.written) {
            println!("wrote {}", shown(&file.path));
        }
        println!("{written} written, {} unchanged", saved.len() - written);
    }
    if args.check {
        let drifts = check_tables(&root, &service.name, &selection)?;
        if drifts.is_empty() {
            println!("the table YAML matches the source");
        } else {
            for drift in &drifts {
                println!("drift: {drift}");
            }
            println!(
                "{} differences: the YAML, the migrations and the connector follow only after \
                 `cdc manage-services resources --inspect --service {} --save`",
                drifts.len(),
                service.name
            );
            return Ok(ExitCode::from(1));
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// The service and the tables of it that `scope` selects.
fn tables_in_scope(scope: &SourceTablesArgs) -> Result<(String, Vec<TableRef>), Failure> {
    let root = project_root(scope.project_dir.as_deref())?;
    let service = choose_service(&root, scope.service.as_deref())?;
    let tables = service.select(scope.table.as_deref())?;
    Ok((service.name, tables))
}

fn enable_cdc(args: &EnableCdcArgs) -> Result<ExitCode, Failure> {
    let (service, tables) = tables_in_scope(&args.scope)?;
    if args.scope.dry_run {
        print!("{}", enable_cdc_script(&service, &tables));
        return Ok(ExitCode::SUCCESS);
    }
    let mut source = connect(Some(&args.scope.env))?;
    let database = source.database_status()?;
    let status = source.table_status()?;
    let (mut enabled, mut tracked, mut failed) = (0, 0, 0);
    for step in plan_enable(database.is_cdc_enabled, &tables, &status) {
        match step {
            EnableStep::EnableDatabase => {
                source.enable_database()?;
                println!("enabled CDC on database {}", database.name);
            }
            EnableStep::EnableTable {
                table,
                supports_net_changes,
            } => match source.enable_table(&table, supports_net_changes) {
                Ok(()) => {
                    enabled += 1;
                    let net = if supports_net_changes {
                        " (net changes)"
                    } else {
                        " (no primary key: all changes only)"
                    };
                    println!("enabled: {table}{net}");
                }
                Err(err) => {
                    failed += 1;
                    println!("failed: {table}: {}", server_message(&err));
                }
            },
            EnableStep::AlreadyTracked(table) => {
                tracked += 1;
                println!("already tracked: {table}");
            }
            EnableStep::NotFound(table) => {
                failed += 1;
                println!(
                    "failed: {table}: no such table in database {}",
                    database.name
                );
            }
        }
    }
    println!("{enabled} enabled, {tracked} already tracked, {failed} failed");
    Ok(if failed == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

fn clean_cdc(args: &CleanCdcArgs) -> Result<ExitCode, Failure> {
    let (service, tables) = tables_in_scope(&args.scope)?;
    if args.scope.dry_run {
        print!("{}", clean_cdc_script(&service, &tables, args.days));
        return Ok(ExitCode::SUCCESS);
    }
    let mut source = connect(Some(&args.scope.env))?;
    let database = source.database_status()?;
    if !database.is_cdc_enabled {
        println!(
            "CDC is not enabled on database {}: nothing to clean",
            database.name
        );
        return Ok(ExitCode::SUCCESS);
    }
    let instances = source.capture_instances()?;
    let mark = source.low_water_mark(args.days)?;
    let (mut cleaned, mut current, mut failed) = (0, 0, 0);
    for step in plan_clean(&tables, &instances, mark.as_deref()) {
        match step {
            CleanStep::Clean {
                instance,
                low_water_mark,
            } => match source.cleanup(&instance.capture_instance, &low_water_mark) {
                Ok(()) => {
                    cleaned += 1;
                    println!(
                        "cleaned: {} ({}): changes older than {} days",
                        instance.capture_instance, instance.table, args.days
                    );
                }
                Err(err) => {
                    failed += 1;
                    println!(
                        "failed: {} ({}): {}",
                        instance.capture_instance,
                        instance.table,
                        server_message(&err)
                    );
                }
            },
            CleanStep::UpToDate(instance) => {
                current += 1;
                println!(
                    "up to date: {} ({})",
                    instance.capture_instance, instance.table
                );
            }
            CleanStep::NotTracked(table) => println!("not tracked by CDC: {table}"),
        }
    }
    println!("{cleaned} cleaned, {current} up to date, {failed} failed");
    Ok(if failed == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

/// The server's own words for a failed statement.
fn server_message(err: &Error) -> String {
    match err {
        Error::Query { source, .. } => source.to_string(),
        other => other.to_string(),
    }
}
