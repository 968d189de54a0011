//! Every name that two crates must agree on: directories, files, the OUT_DIR layout, the management schema.
//!
//! The generator writes these paths, the macro and the runtime read them and
//! the CLI prints them; each is defined here once and nowhere else.

/// The schema that holds the management objects (merge control, processing
/// log, migration history, views).
pub const MANAGEMENT_SCHEMA: &str = "cdc_management";

/// The project's input directory, relative to the project root.
pub const SERVICES_DIR: &str = "services";
/// Table YAML lives in `services/_schemas/<service>/<schema>/<Table>.yaml`.
pub const SCHEMAS_DIR: &str = "_schemas";
/// Column templates, relative to the project root.
pub const TEMPLATES_FILE: &str = "services/_schemas/column-templates.yaml";
/// Sink groups (databases per environment), relative to the project root.
pub const SINK_GROUPS_FILE: &str = "sink-groups.yaml";
/// Source groups (tenancy pattern), relative to the project root.
pub const SOURCE_GROUPS_FILE: &str = "source-groups.yaml";
/// Overrides of the built-in type mapping, relative to the project root.
pub const MAPPING_FILE: &str = "service-schemas/adapters/mssql-to-pgsql.mapping.yaml";

/// The committed migrations directory, relative to the project root; one
/// sub-directory per sink.
pub const MIGRATIONS_DIR: &str = "migrations";
/// A sink directory's manifest.
pub const MANIFEST_FILE: &str = "manifest.yaml";
/// Directory of infrastructure files inside a sink directory.
pub const INFRASTRUCTURE_DIR: &str = "00-infrastructure";
/// Directory of table files inside a sink directory.
pub const TABLES_DIR: &str = "01-tables";
/// Suffix of a staging file name.
pub const STAGING_SUFFIX: &str = "-staging.sql";
/// The schemas file, relative to a sink directory.
pub const SCHEMAS_FILE: &str = "00-infrastructure/01-create-schemas.sql";
/// The management infrastructure file, relative to a sink directory.
pub const MANAGEMENT_FILE: &str = "00-infrastructure/02-cdc-management.sql";

/// Everything the build script writes lives under `$OUT_DIR/cdc/`.
pub const OUT_DIR_SUBDIR: &str = "cdc";
/// Where `Builder` writes the sinks inside `OUT_DIR` and where
/// `include_migrations!("<sink>")` reads them.
pub const OUT_DIR_MIGRATIONS: &str = "cdc/migrations";
/// Where `Builder` writes the row structs inside `OUT_DIR` and where
/// `include_rows!()` reads them.
pub const OUT_DIR_ROWS: &str = "cdc/rows.rs";

/// The command that regenerates migrations from the YAML, as error messages name it.
pub const REGENERATE_COMMAND: &str = "cdc manage-migrations generate";

/// The path of a final-table file inside a sink directory (`01-tables/<Table>.sql`).
pub fn table_file(table: &str) -> String {
    format!("{TABLES_DIR}/{table}.sql")
}

/// The path of a staging file inside a sink directory (`01-tables/<Table>-staging.sql`).
pub fn staging_file(table: &str) -> String {
    format!("{TABLES_DIR}/{table}{STAGING_SUFFIX}")
}

/// Directory, inside [`TABLES_DIR`], of the explicit migrations that
/// `generate --allow-breaking` writes for breaking changes.
pub const BREAKING_DIR: &str = "01-tables/breaking";

/// The path of the `number`th breaking-change file of a table inside a sink
/// directory (`01-tables/breaking/<Table>.<n>.sql`), applied just before the
/// table's own file.
pub fn breaking_file(table: &str, number: u32) -> String {
    format!("{BREAKING_DIR}/{table}.{number}.sql")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_are_built_from_the_constants() {
        assert_eq!(table_file("Actor"), "01-tables/Actor.sql");
        assert_eq!(staging_file("Actor"), "01-tables/Actor-staging.sql");
        assert!(SCHEMAS_FILE.starts_with(INFRASTRUCTURE_DIR));
        assert!(MANAGEMENT_FILE.starts_with(INFRASTRUCTURE_DIR));
        assert!(OUT_DIR_MIGRATIONS.starts_with(OUT_DIR_SUBDIR));
        assert!(OUT_DIR_ROWS.starts_with(OUT_DIR_SUBDIR));
        assert!(TEMPLATES_FILE.starts_with(SERVICES_DIR));
        assert!(BREAKING_DIR.starts_with(TABLES_DIR));
        assert_eq!(breaking_file("A.b", 2), "01-tables/breaking/A.b.2.sql");
    }

    #[test]
    fn the_history_ddl_names_the_management_schema() {
        let quoted = format!("\"{MANAGEMENT_SCHEMA}\".\"migration_history\"");
        let ddl = crate::history::history_ddl();
        assert!(ddl.contains(&quoted));
        assert!(ddl.contains(&format!("table_schema = '{MANAGEMENT_SCHEMA}'")));
        assert!(!ddl.contains("{{"), "a placeholder was left in the DDL");
    }
}
