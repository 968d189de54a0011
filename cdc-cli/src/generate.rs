//! `cdc manage-migrations generate`.

use std::path::Path;
use std::process::ExitCode;

use anyhow::{bail, Context as _};
use cdc_build::output::{sync_sink, ChangeKind, SinkPlan, SyncMode};
use cdc_build::render::SinkRenderer;
use cdc_build::{find_project_root, load_project, Filter, RootMarker};

use crate::GenerateArgs;

/// Directory of the generated migrations inside a project.
pub const MIGRATIONS_DIR: &str = "migrations";

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
    let generated_at = cdc_core::time::now_utc();
    let mode = if args.check || args.dry_run {
        SyncMode::Compare
    } else {
        SyncMode::Write
    };
    let mut plans: Vec<SinkPlan> = Vec::new();
    for sink in project.sinks() {
        let renderer = SinkRenderer::new(sink, &generated_at);
        let dir = root.join(MIGRATIONS_DIR).join(&sink.name);
        plans.push(sync_sink(
            &sink.name,
            &dir,
            &renderer,
            args.table.as_deref(),
            mode,
        )?);
    }
    let shown = |dir: &Path| dir.strip_prefix(&root).unwrap_or(dir).display().to_string();

    if args.check {
        let mut stale = 0;
        for plan in &plans {
            for change in plan.changed() {
                stale += 1;
                println!(
                    "stale: {}/{} ({})",
                    shown(&plan.dir),
                    change.path,
                    change.kind.label()
                );
            }
        }
        if stale > 0 {
            println!("{stale} file(s) differ from what the YAML generates; run `cdc manage-migrations generate` and commit the result");
            return Ok(ExitCode::from(1));
        }
        println!("migrations are up to date ({} sink(s))", plans.len());
        return Ok(ExitCode::SUCCESS);
    }

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
