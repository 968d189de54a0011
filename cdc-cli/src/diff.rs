//! `cdc manage-migrations diff`: cdc-build compares the YAML with the generated table files; this module only presents the report.

use std::process::ExitCode;

use anyhow::bail;
use cdc_build::diff_project;
use cdc_core::layout::MIGRATIONS_DIR;

use crate::{DiffArgs, OutputFormat};

pub fn run(args: &DiffArgs) -> anyhow::Result<ExitCode> {
    let (root, project) = args.project.load()?;
    let migrations = root.join(MIGRATIONS_DIR);
    if let Some(table) = &args.table {
        let declared = project
            .sinks()
            .any(|s| s.tables.iter().any(|t| &t.target_table == table));
        let on_disk = project.sinks().any(|s| {
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
    let report = diff_project(&project, &migrations, args.table.as_deref())?;
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
