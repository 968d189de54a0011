//! `cdc manage-migrations diff`: cdc-build compares the YAML with the generated table files, or with the live catalog (`--env`); this module connects and presents the report.

use std::process::ExitCode;
use std::time::Duration;

use anyhow::{bail, Context as _};
use cdc_build::diff::live::{expected_tables, live_report, live_sink_diff};
use cdc_build::diff::{diff_project_with, with_table_files, TableFiles};
use cdc_build::{DiffReport, Project};
use cdc_core::layout::MIGRATIONS_DIR;
use cdc_core::schema::live::ExpectedTable;
use cdc_runtime::verify::read_catalog;
use cdc_runtime::{connect, ConnectOptions};

use crate::{DiffArgs, OutputFormat};

pub fn run(args: &DiffArgs) -> anyhow::Result<ExitCode> {
    let root = args.project.root()?;
    let migrations = root.join(MIGRATIONS_DIR);
    // A whole-project diff against the files reads them while the YAML loads.
    let whole =
        args.table.is_none() && args.project.service.is_none() && args.project.sink.is_none();
    let (project, files) = match &args.env {
        None if whole => with_table_files(&migrations, || args.project.load_at(&root)),
        _ => (args.project.load_at(&root), TableFiles::default()),
    };
    let project = project?;
    if let Some(table) = &args.table {
        let declared = project
            .sinks()
            .any(|s| s.tables.iter().any(|t| &t.target_table == table));
        let on_disk = args.env.is_none()
            && project.sinks().any(|s| {
                migrations
                    .join(&s.name)
                    .join(cdc_core::layout::table_file(table))
                    .is_file()
            });
        if !declared && !on_disk {
            let known: Vec<&str> = project
                .sinks()
                .flat_map(|s| s.tables.iter().map(|t| t.target_table.as_str()))
                .collect();
            bail!(
                "no sink table named `{table}` (known: {})",
                known.join(", ")
            );
        }
    }
    let report = match &args.env {
        None => diff_project_with(&project, &migrations, args.table.as_deref(), &files)?,
        Some(env) => live_diff(&project, env, args)?,
    };
    match args.format {
        OutputFormat::Text => println!("{report}"),
        OutputFormat::Json => println!("{}", serde_json::to_string_pretty(&report)?),
    }
    Ok(if report.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

/// Compares every selected sink with its database in `env`: one connection
/// and one catalog query per sink, as `apply` and `status` connect.
fn live_diff(project: &Project, env: &str, args: &DiffArgs) -> anyhow::Result<DiffReport> {
    let mut sinks = Vec::new();
    for sink in project.sinks() {
        let expected = expected_tables(sink, args.table.as_deref());
        if expected.is_empty() {
            continue;
        }
        let Some(database) = sink.databases.get(env) else {
            let known: Vec<&str> = sink.databases.keys().map(String::as_str).collect();
            bail!(
                "environment `{env}` has no database for sink `{}` (known: {})",
                sink.name,
                if known.is_empty() {
                    "none".to_string()
                } else {
                    known.join(", ")
                }
            );
        };
        let mut options = ConnectOptions::from_env(env, database).map_err(anyhow::Error::msg)?;
        options.retry_for = Duration::from_secs(args.connect_retry);
        let mut client = connect(&options)
            .with_context(|| format!("sink `{}`: cannot connect to `{database}`", sink.name))?;
        let wanted: Vec<ExpectedTable> = expected.iter().map(|(_, e)| e.clone()).collect();
        let live = read_catalog(&mut client, &wanted)
            .with_context(|| format!("sink `{}` in `{database}`", sink.name))?;
        sinks.push(live_sink_diff(sink, &expected, &live));
    }
    Ok(live_report(env, sinks))
}
