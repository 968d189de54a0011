//! `renamed_from` on table YAML columns: checked, then turned into the sink table's column renames.

use std::collections::BTreeMap;
use std::path::Path;

use super::findings::Finding;
use crate::columns::Column;
use crate::ident::check_identifier;
use crate::location::YamlPath;
use crate::model::RawTable;
use crate::project::ColumnRename;

/// The renames a table YAML declares, for the columns that reach the final
/// table (`columns`); every misuse is a finding at the column's
/// `renamed_from` in `table_file`. An old name the database may not hold is
/// fine: the generated SQL renames only when the old column exists.
pub(super) fn column_renames(
    table: &RawTable,
    columns: &[Column],
    table_file: &Path,
) -> Result<Vec<ColumnRename>, Vec<Finding>> {
    let mut problems = Vec::new();
    let mut renames = Vec::new();
    let mut seen: BTreeMap<&str, usize> = BTreeMap::new();
    for (index, raw) in table.columns.iter().enumerate() {
        let Some(old) = raw.renamed_from.as_deref() else {
            continue;
        };
        let at = |message: String| {
            Finding::at(
                table_file,
                YamlPath::root()
                    .key("columns")
                    .item(index)
                    .key("renamed_from"),
                message,
            )
        };
        if let Err(message) = check_identifier(old) {
            problems.push(at(format!(
                "`renamed_from` cannot be a PostgreSQL column name: {message}"
            )));
            continue;
        }
        if old == raw.name {
            problems.push(at(format!(
                "column `{old}` is declared renamed from itself; remove `renamed_from`"
            )));
            continue;
        }
        if columns.iter().any(|c| c.name == old) {
            problems.push(at(format!(
                "column `{}` is renamed from `{old}`, but `{old}` is still a column of the table: a rename cannot land on an existing name (remove `renamed_from`, or rename the other column)",
                raw.name
            )));
            continue;
        }
        if let Some(first) = seen.insert(old, index) {
            problems.push(at(format!(
                "columns `{}` and `{}` are both renamed from `{old}`: one old column can become only one new one",
                table.columns[first].name, raw.name
            )));
            continue;
        }
        // A column left out of the final table (ignore_columns) has nothing to rename.
        if columns.iter().any(|c| c.name == raw.name) {
            renames.push(ColumnRename {
                from: old.to_string(),
                to: raw.name.clone(),
            });
        }
    }
    if problems.is_empty() {
        Ok(renames)
    } else {
        Err(problems)
    }
}
