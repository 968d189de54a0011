//! `cdc manage-migrations generate`: cdc-build generates and writes; this module only presents the outcome.

use std::path::Path;
use std::process::ExitCode;

use anyhow::{bail, Context as _};
use cdc_build::output::{sync_sinks, ChangeKind, SyncMode};
use cdc_build::{
    find_project_root, generate, load_project, DriftReport, Filter, GenerateOptions, RootMarker,
};
/// Directory of the generated migrations inside a project (the layout's).
pub use cdc_core::layout::MIGRATIONS_DIR;

use crate::{GenerateArgs, OutputFormat};

pub fn run(args: &GenerateArgs) -> anyhow::Result<ExitCode> {
    let start = match &args.project_dir {
        Some(dir) => dir.clone(),
        None => std::env::current_dir().context("cannot read the current directory")?,
    };
    let root = find_project_root(&start, RootMarker::Services)?;
    let filter = Filter {
        service: args.service.clone(),
        sink: args.sink.clone(),
    };
    let project = load_project(&root, &filter)?;
    for warning in &project.warnings {
        eprintln!("warning: {warning}");
    }
    if let Some(table) = &args.table {
        let known: Vec<&str> = project
            .sinks()
            .flat_map(|s| s.tables.iter().map(|t| t.target_table.as_str()))
            .collect();
        if !known.contains(&table.as_str()) {
            bail!(
                "no sink table named `{table}` (known: {})",
                known.join(", ")
            );
        }
    }
    let generated = generate(&project, &GenerateOptions::new(cdc_core::time::now_utc()));
    let migrations = root.join(MIGRATIONS_DIR);
    let mode = if args.check || args.dry_run {
        SyncMode::Compare
    } else {
        SyncMode::Write
    };
    let plans = sync_sinks(&generated, &migrations, args.table.as_deref(), mode)?;

    if args.check {
        let report = DriftReport::new(&root, &migrations, &plans);
        match args.format {
            OutputFormat::Text => println!("{report}"),
            OutputFormat::Json => println!("{}", serde_json::to_string_pretty(&report)?),
        }
        return Ok(if report.is_empty() {
            ExitCode::SUCCESS
        } else {
            ExitCode::from(1)
        });
    }

    let shown = |dir: &Path| dir.strip_prefix(&root).unwrap_or(dir).display().to_string();
    for plan in &plans {
        if args.dry_run {
            for change in plan.changed() {
                println!(
                    "would write: {}/{} ({})",
                    shown(&plan.dir),
                    change.path,
                    change.kind.label()
                );
            }
        }
        println!(
            "{}: {} added, {} modified, {} removed, {} unchanged -> {}",
            plan.name,
            plan.count(ChangeKind::Added),
            plan.count(ChangeKind::Modified),
            plan.count(ChangeKind::Removed),
            plan.count(ChangeKind::Unchanged),
            shown(&plan.dir)
        );
    }
    if args.dry_run {
        println!("dry run: nothing written");
    }
    Ok(ExitCode::SUCCESS)
}
