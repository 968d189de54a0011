//! File categories and the order in which a sink's files are applied.
//!
//! Infrastructure files come first (in manifest order), then every final-table
//! file, then every staging file: schemas and `cdc_management` exist before any
//! table, and a final table exists before the merge procedure that targets it.

use crate::layout::{INFRASTRUCTURE_DIR, STAGING_SUFFIX};
use crate::manifest::Manifest;

/// What a migration file holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum FileCategory {
    /// Schemas and the `cdc_management` objects.
    Infrastructure,
    /// A final table.
    Table,
    /// A staging table with its trigger and merge procedure.
    Staging,
}

impl FileCategory {
    /// Derives the category from a manifest path such as `01-tables/Actor-staging.sql`.
    pub fn of_path(path: &str) -> FileCategory {
        if path.starts_with(INFRASTRUCTURE_DIR) {
            FileCategory::Infrastructure
        } else if path.ends_with(STAGING_SUFFIX) {
            FileCategory::Staging
        } else {
            FileCategory::Table
        }
    }

    /// The name stored in `migration_history.category`.
    pub fn as_str(self) -> &'static str {
        match self {
            FileCategory::Infrastructure => "infrastructure",
            FileCategory::Table => "table",
            FileCategory::Staging => "staging",
        }
    }
}

impl std::fmt::Display for FileCategory {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One file of a sink in apply order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OrderedFile<'a> {
    /// Path relative to the sink directory, `/`-separated.
    pub path: &'a str,
    /// What the file holds.
    pub category: FileCategory,
}

/// Every file of a manifest in apply order: infrastructure, tables, staging.
pub fn apply_order(manifest: &Manifest) -> Vec<OrderedFile<'_>> {
    let listed = manifest
        .infrastructure
        .iter()
        .chain(manifest.tables.iter())
        .map(|path| OrderedFile {
            path: path.as_str(),
            category: FileCategory::of_path(path),
        });
    let mut files: Vec<OrderedFile<'_>> = listed.collect();
    // A stable sort keeps the manifest's order inside each category.
    files.sort_by_key(|file| file.category);
    files
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn staging_after_tables() {
        let manifest = Manifest {
            infrastructure: vec![
                "00-infrastructure/01-create-schemas.sql".into(),
                "00-infrastructure/02-cdc-management.sql".into(),
            ],
            tables: vec![
                "01-tables/B.sql".into(),
                "01-tables/B-staging.sql".into(),
                "01-tables/A.sql".into(),
                "01-tables/A-staging.sql".into(),
            ],
            ..Manifest::default()
        };
        let order: Vec<&str> = apply_order(&manifest).iter().map(|f| f.path).collect();
        assert_eq!(
            order,
            [
                "00-infrastructure/01-create-schemas.sql",
                "00-infrastructure/02-cdc-management.sql",
                "01-tables/B.sql",
                "01-tables/A.sql",
                "01-tables/B-staging.sql",
                "01-tables/A-staging.sql",
            ]
        );
    }
}
