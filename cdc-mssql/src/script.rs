//! `--dry-run` output: idempotent T-SQL scripts that a DBA can run as is with
//! sqlcmd. Every step checks the catalog first, so running a script twice, or
//! after the live command, changes nothing more.
//!
//! Names reach the script once per table, as literals of `DECLARE`d variables
//! (quotes doubled, control characters as `NCHAR(n)`) and as a bracket-quoted
//! object name; the statements use the variables.

use std::fmt::Write as _;

use crate::ident::{comment_text, literal_expression, TableRef};
use crate::plan::CLEANUP_THRESHOLD;

/// The script that enables CDC on the database and on every table in scope.
pub fn enable_cdc_script(service: &str, tables: &[TableRef]) -> String {
    let mut out = header(
        "enable-cdc",
        &format!(
            "enables CDC on the database and on {} of service {}",
            count(tables.len(), "table"),
            comment_text(service)
        ),
    );
    out.push_str(
        "IF NOT EXISTS (SELECT 1 FROM sys.databases WHERE database_id = DB_ID() AND is_cdc_enabled = 1)\n\
         \x20   EXEC sys.sp_cdc_enable_db;\n\
         GO\n",
    );
    for table in tables {
        out.push('\n');
        declare_table(&mut out, table);
        out.push_str(
            "IF @object_id IS NULL\n\
             \x20   PRINT N'not found: ' + @table_name;\n\
             ELSE IF NOT EXISTS (SELECT 1 FROM sys.tables WHERE object_id = @object_id AND is_tracked_by_cdc = 1)\n\
             BEGIN\n\
             \x20   DECLARE @supports_net_changes bit = CASE WHEN EXISTS (\n\
             \x20       SELECT 1 FROM sys.indexes WHERE object_id = @object_id AND is_primary_key = 1\n\
             \x20   ) THEN 1 ELSE 0 END;\n\
             \x20   EXEC sys.sp_cdc_enable_table\n\
             \x20       @source_schema = @source_schema,\n\
             \x20       @source_name = @source_name,\n\
             \x20       @role_name = NULL,\n\
             \x20       @supports_net_changes = @supports_net_changes;\n\
             \x20   PRINT N'enabled: ' + @table_name;\n\
             END\n\
             ELSE\n\
             \x20   PRINT N'already tracked: ' + @table_name;\n\
             GO\n",
        );
    }
    out
}

/// The script that cleans change rows older than `days` days from every capture
/// instance of the tables in scope, where the new low-water mark is above the current one.
pub fn clean_cdc_script(service: &str, tables: &[TableRef], days: u32) -> String {
    let mut out = header(
        "clean-cdc",
        &format!(
            "cleans change rows older than {} from the capture instances of {} of service {}",
            count(days as usize, "day"),
            count(tables.len(), "table"),
            comment_text(service)
        ),
    );
    for (index, table) in tables.iter().enumerate() {
        if index > 0 {
            out.push('\n');
        }
        declare_table(&mut out, table);
        let _ = write!(
            out,
            "DECLARE @low_water_mark binary(10) = sys.fn_cdc_map_time_to_lsn(\n\
             \x20   N'largest less than or equal', DATEADD(day, -{days}, GETDATE()));\n\
             DECLARE @capture_instance sysname, @start_lsn binary(10);\n\
             IF @object_id IS NULL\n\
             \x20   PRINT N'not found: ' + @table_name;\n\
             ELSE IF NOT EXISTS (SELECT 1 FROM sys.databases WHERE database_id = DB_ID() AND is_cdc_enabled = 1)\n\
             \x20   PRINT N'CDC is not enabled on this database';\n\
             ELSE IF @low_water_mark IS NULL\n\
             \x20   PRINT N'no change is older than {days} days: ' + @table_name;\n\
             ELSE\n\
             BEGIN\n\
             \x20   DECLARE capture_instances CURSOR LOCAL FAST_FORWARD FOR\n\
             \x20       SELECT capture_instance, start_lsn FROM cdc.change_tables WHERE source_object_id = @object_id;\n\
             \x20   OPEN capture_instances;\n\
             \x20   FETCH NEXT FROM capture_instances INTO @capture_instance, @start_lsn;\n\
             \x20   WHILE @@FETCH_STATUS = 0\n\
             \x20   BEGIN\n\
             \x20       IF @low_water_mark > @start_lsn\n\
             \x20       BEGIN\n\
             \x20           EXEC sys.sp_cdc_cleanup_change_table\n\
             \x20               @capture_instance = @capture_instance,\n\
             \x20               @low_water_mark = @low_water_mark,\n\
             \x20               @threshold = {CLEANUP_THRESHOLD};\n\
             \x20           PRINT N'cleaned: ' + @capture_instance;\n\
             \x20       END\n\
             \x20       ELSE\n\
             \x20           PRINT N'up to date: ' + @capture_instance;\n\
             \x20       FETCH NEXT FROM capture_instances INTO @capture_instance, @start_lsn;\n\
             \x20   END\n\
             \x20   CLOSE capture_instances;\n\
             \x20   DEALLOCATE capture_instances;\n\
             END\n\
             GO\n"
        );
    }
    out
}

fn header(command: &str, what: &str) -> String {
    format!(
        "-- cdc manage-migrations {command} --dry-run: {what}.\n\
         -- Nothing was run. Every step checks first, so the script is safe to run again.\n\
         -- Run it against the source database: sqlcmd -S <host> -d <database> -b -i <this file>\n\
         SET NOCOUNT ON;\n\
         GO\n"
    )
}

/// `-- schema.Table` and the variables every per-table batch starts with.
fn declare_table(out: &mut String, table: &TableRef) {
    let _ = write!(
        out,
        "-- {}\n\
         DECLARE @source_schema sysname = {};\n\
         DECLARE @source_name sysname = {};\n\
         DECLARE @table_name nvarchar(300) = {};\n\
         DECLARE @object_id int = OBJECT_ID({}, N'U');\n",
        comment_text(&table.to_string()),
        literal_expression(&table.schema),
        literal_expression(&table.table),
        literal_expression(&table.to_string()),
        literal_expression(&table.quoted()),
    );
}

fn count(n: usize, noun: &str) -> String {
    if n == 1 {
        format!("1 {noun}")
    } else {
        format!("{n} {noun}s")
    }
}
