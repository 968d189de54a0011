//! `cdc manage-migrations generate`.

use std::path::Path;
use std::process::ExitCode;

use anyhow::{bail, Context as _};
use cdc_build::output::{plan_sink, write_sink, SinkPlan};
use cdc_build::{find_project_root, generate, load_project, Filter};

use crate::GenerateArgs;

/// Directory of the generated migrations inside a project.
pub const MIGRATIONS_DIR: &str = "migrations";

pub fn run(args: &GenerateArgs) -> anyhow::Result<ExitCode> {
    let start = match &args.project_dir {
        Some(dir) => dir.clone(),
        None => std::env::current_dir().context("cannot read the current directory")?,
    };
    let root = find_project_root(&start)?;
    let filter = Filter {
        service: args.service.clone(),
        sink: args.sink.clone(),
    };
    let project = load_project(&root, &filter)?;
    for warning in &project.warnings {
        eprintln!("warning: {warning}");
    }
    if let Some(table) = &args.table {
        let known: Vec<&str> = project.sinks().flat_map(|s| s.tables.iter().map(|t| t.target_table.as_str())).collect();
        if !known.contains(&table.as_str()) {
            bail!("no sink table named `{table}` (known: {})", known.join(", "));
        }
    }
    let generated_at = cdc_core::time::now_utc();
    let sinks = generate(&project, &generated_at);
    let mut plans: Vec<SinkPlan> = Vec::with_capacity(sinks.len());
    for sink in &sinks {
        let dir = root.join(MIGRATIONS_DIR).join(&sink.name);
        plans.push(plan_sink(&dir, sink, args.table.as_deref())?);
    }
    let shown = |dir: &Path| dir.strip_prefix(&root).unwrap_or(dir).display().to_string();

    if args.check {
        let mut stale = 0;
        for plan in &plans {
            for change in plan.changed() {
                stale += 1;
                println!("stale: {}/{} ({})", shown(&plan.dir), change.path, change.kind.label());
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
        let count = |kind| plan.changes.iter().filter(|c| c.kind == kind).count();
        use cdc_build::output::ChangeKind::*;
        if args.dry_run {
            for change in plan.changed() {
                println!("would write: {}/{} ({})", shown(&plan.dir), change.path, change.kind.label());
            }
        } else {
            write_sink(plan)?;
        }
        println!(
            "{}: {} added, {} modified, {} removed, {} unchanged -> {}",
            plan.name,
            count(Added),
            count(Modified),
            count(Removed),
            count(Unchanged),
            shown(&plan.dir)
        );
    }
    if args.dry_run {
        println!("dry run: nothing written");
    }
    Ok(ExitCode::SUCCESS)
}
