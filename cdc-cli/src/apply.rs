//! `cdc manage-migrations apply` and `status`.

use std::io::IsTerminal as _;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{anyhow, bail, Context as _};
use cdc_build::{find_project_root, RootMarker};
use cdc_core::layout::{MANIFEST_FILE, MIGRATIONS_DIR, REGENERATE_COMMAND};
use cdc_core::LoadError;
use cdc_runtime::{
    connect, ApplyError, ApplyEvent, ConnectOptions, FailureReport, FileState, FileStatus,
    Migrations, Migrator,
};
use serde::Serialize;

use crate::{ApplyArgs, OutputFormat, StatusArgs};

/// A usage or configuration problem: exit code 2.
#[derive(Debug)]
pub struct UsageError(pub String);

impl std::fmt::Display for UsageError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for UsageError {}

fn usage(message: impl Into<String>) -> anyhow::Error {
    anyhow!(UsageError(message.into()))
}

/// The project root: `--project-dir`, else the first directory upward holding `migrations/` or `services/`.
fn project_root(project_dir: Option<&Path>) -> anyhow::Result<PathBuf> {
    let start = match project_dir {
        Some(dir) => dir.to_path_buf(),
        None => std::env::current_dir().context("cannot read the current directory")?,
    };
    find_project_root(&start, RootMarker::ServicesOrMigrations).map_err(|e| usage(e.to_string()))
}

/// Picks the sink directory: the one given, or the only one there is.
fn sink_dir(root: &Path, sink: Option<&str>) -> anyhow::Result<PathBuf> {
    let base = root.join(MIGRATIONS_DIR);
    let mut sinks: Vec<String> = std::fs::read_dir(&base)
        .map(|entries| {
            entries
                .filter_map(Result::ok)
                .filter(|e| e.path().join(MANIFEST_FILE).is_file())
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    sinks.sort();
    match sink {
        Some(name) if sinks.iter().any(|s| s == name) => Ok(base.join(name)),
        Some(name) => Err(usage(format!(
            "no sink `{name}` under {} (found: {}); run `{REGENERATE_COMMAND}` first",
            base.display(),
            if sinks.is_empty() {
                "none".to_string()
            } else {
                sinks.join(", ")
            }
        ))),
        None => match sinks.as_slice() {
            [only] => Ok(base.join(only)),
            [] => Err(usage(format!(
                "no generated sink under {}; run `{REGENERATE_COMMAND}` first",
                base.display()
            ))),
            many => Err(usage(format!(
                "several sinks; choose one with --sink: {}",
                many.join(", ")
            ))),
        },
    }
}

/// Loads a sink directory for `status` and `apply` (with or without
/// `--dry-run`), which report a failure the same way with the same exit code:
/// 2 for bad input (a manifest that cannot be read or parsed, or that lists a
/// missing file or one outside the sink), 1 for a file whose checksum does not
/// match its body (tampered: the run fails, as it would at boot).
fn load(dir: &Path, format: OutputFormat) -> Result<Migrations, anyhow::Result<ExitCode>> {
    Migrations::load_dir(dir).map_err(|error| {
        let code = match error {
            LoadError::Checksum { .. } => ExitCode::from(1),
            _ => ExitCode::from(2),
        };
        report_failure(format, &anyhow!(error), code)
    })
}

fn connect_for(
    migrations: &Migrations,
    env: &str,
    retry_seconds: u64,
) -> anyhow::Result<cdc_runtime::postgres::Client> {
    let Some(database) = migrations.database(env) else {
        let known: Vec<&str> = migrations
            .databases()
            .iter()
            .map(|d| d.env.as_ref())
            .collect();
        return Err(usage(format!(
            "environment `{env}` is not in the manifest of sink `{}` (known: {})",
            migrations.sink(),
            if known.is_empty() {
                "none".to_string()
            } else {
                known.join(", ")
            }
        )));
    };
    let mut options = ConnectOptions::from_env(env, database).map_err(usage)?;
    options.retry_for = std::time::Duration::from_secs(retry_seconds);
    Ok(connect(&options)?)
}

pub fn run_apply(args: &ApplyArgs) -> anyhow::Result<ExitCode> {
    let root = project_root(args.project_dir.as_deref())?;
    let dir = sink_dir(&root, args.sink.as_deref())?;
    let migrations = match load(&dir, args.format) {
        Ok(m) => m,
        Err(reported) => return reported,
    };
    let mut client = match connect_for(&migrations, &args.env, args.connect_retry) {
        Ok(client) => client,
        Err(e) if e.is::<UsageError>() => return Err(e),
        Err(e) => return fail(args.format, &e),
    };
    let mut migrator =
        Migrator::new(&migrations).lock_wait(std::time::Duration::from_secs(args.lock_wait));
    if args.dry_run {
        let statuses = migrator.status(&mut client)?;
        print_statuses(&migrations, &statuses, args.format, true)?;
        return Ok(ExitCode::SUCCESS);
    }
    if std::io::stderr().is_terminal() && args.format == OutputFormat::Text {
        migrator = migrator.on_event(|event| match event {
            ApplyEvent::WaitingForLock => eprintln!("waiting for another migrator of this sink..."),
            ApplyEvent::Applying { path, index, total } => eprintln!("[{index}/{total}] {path}"),
        });
    }
    match migrator.apply(&mut client) {
        Ok(report) => {
            match args.format {
                OutputFormat::Text => println!("{report}"),
                OutputFormat::Json => print_json(&report)?,
            }
            Ok(ExitCode::SUCCESS)
        }
        Err(e) => fail(args.format, &anyhow!(e)),
    }
}

/// Prints one JSON document on stdout.
fn print_json(document: &impl Serialize) -> anyhow::Result<()> {
    println!("{}", serde_json::to_string(document)?);
    Ok(())
}

/// `{"error": ...}`: where a file failed, or the error's message.
#[derive(Serialize)]
struct ErrorDocument {
    error: FailureReport,
}

/// Reports a failed run: exit code 1.
fn fail(format: OutputFormat, error: &anyhow::Error) -> anyhow::Result<ExitCode> {
    report_failure(format, error, ExitCode::from(1))
}

/// Reports an error on stderr (text) or as `{"error": ...}` on stdout (JSON)
/// and returns `code`.
fn report_failure(
    format: OutputFormat,
    error: &anyhow::Error,
    code: ExitCode,
) -> anyhow::Result<ExitCode> {
    match format {
        OutputFormat::Text => eprintln!("error: {}", crate::error_text(error)),
        OutputFormat::Json => {
            let error = match error.downcast_ref::<ApplyError>() {
                Some(apply_error) => FailureReport::from(apply_error),
                None => FailureReport::Message(crate::error_text(error)),
            };
            print_json(&ErrorDocument { error })?;
        }
    }
    Ok(code)
}

pub fn run_status(args: &StatusArgs) -> anyhow::Result<ExitCode> {
    let root = project_root(args.project_dir.as_deref())?;
    let dir = sink_dir(&root, args.sink.as_deref())?;
    let migrations = match load(&dir, args.format) {
        Ok(m) => m,
        Err(reported) => return reported,
    };
    let statuses: Vec<FileStatus> = match (&args.env, args.offline) {
        (Some(_), true) => bail!(UsageError("--env and --offline exclude each other".into())),
        (None, false) => bail!(UsageError(
            "give --env ENV to compare with the database, or --offline".into()
        )),
        (None, true) => migrations
            .files()
            .iter()
            .map(|f| FileStatus {
                path: f.path.to_string(),
                category: f.category,
                state: FileState::Pending,
            })
            .collect(),
        (Some(env), false) => {
            let mut client = connect_for(&migrations, env, args.connect_retry)?;
            Migrator::new(&migrations).status(&mut client)?
        }
    };
    print_statuses(&migrations, &statuses, args.format, false)?;
    let all_applied = statuses
        .iter()
        .all(|s| matches!(s.state, FileState::Applied { .. }));
    Ok(if all_applied {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

/// The JSON document of `status` and of `apply --dry-run`.
#[derive(Serialize)]
struct StatusDocument<'a> {
    sink: &'a str,
    files: &'a [FileStatus],
    applied: usize,
    pending: usize,
    modified: usize,
}

fn print_statuses(
    migrations: &Migrations,
    statuses: &[FileStatus],
    format: OutputFormat,
    as_plan: bool,
) -> anyhow::Result<()> {
    let count = |label: &str| statuses.iter().filter(|s| s.state.label() == label).count();
    match format {
        OutputFormat::Json => print_json(&StatusDocument {
            sink: migrations.sink(),
            files: statuses,
            applied: count("applied"),
            pending: count("pending"),
            modified: count("modified"),
        })?,
        OutputFormat::Text => {
            for s in statuses {
                let (label, when) = match (&s.state, as_plan) {
                    (FileState::Applied { applied_at }, false) => ("applied", applied_at.clone()),
                    (FileState::Modified { applied_at }, false) => (
                        "modified",
                        format!("applied {applied_at} with another checksum"),
                    ),
                    (FileState::Pending, false) => ("pending", String::new()),
                    (FileState::Applied { .. }, true) => ("skip", String::new()),
                    (FileState::Modified { .. }, true) => {
                        ("re-apply", "checksum changed".to_string())
                    }
                    (FileState::Pending, true) => ("apply", "new".to_string()),
                };
                println!(
                    "{label:<9} {}{}",
                    s.path,
                    if when.is_empty() {
                        String::new()
                    } else {
                        format!("  ({when})")
                    }
                );
            }
            println!(
                "sink {}: {} applied, {} pending, {} modified{}",
                migrations.sink(),
                count("applied"),
                count("pending"),
                count("modified"),
                if as_plan {
                    " (dry run: nothing changed)"
                } else {
                    ""
                }
            );
        }
    }
    Ok(())
}
