//! Names that must not collide within a sink: table files, and the relations and functions each table creates in its schema.

use std::collections::hash_map::Entry;
use std::collections::HashMap;

use super::findings::Finding;
use super::services::SinkScope;
use super::Loader;
use crate::project::SinkTable;

/// PostgreSQL keeps relations (tables, indexes) and functions apart: a table
/// and a function may share a name, two relations may not.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Namespace {
    Relation,
    Function,
}

/// The objects a table's files create in its schema, as `(what, namespace, name)`.
fn objects(table: &SinkTable) -> Vec<(&'static str, Namespace, &str)> {
    let names = &table.names;
    let mut out = vec![
        (
            "final table",
            Namespace::Relation,
            table.target_table.as_str(),
        ),
        ("index", Namespace::Relation, names.sync_index.as_str()),
    ];
    if table.has_staging() {
        out.push(("staging table", Namespace::Relation, names.staging.as_str()));
        out.push((
            "tombstone table",
            Namespace::Relation,
            names.tombstones.as_str(),
        ));
        out.push((
            "merge function",
            Namespace::Function,
            names.merge_function.as_str(),
        ));
    }
    out
}

impl Loader {
    /// File names and derived object names must not collide within a sink.
    pub(super) fn check_sink_names(&mut self, sink: &SinkScope<'_>, tables: &[SinkTable]) {
        let field = format!("{}.tables", sink.name);
        let mut files: HashMap<String, &SinkTable> = HashMap::with_capacity(tables.len());
        // (schema, namespace, name) → what owns it.
        type Owner<'t> = (&'static str, &'t SinkTable);
        let mut owners: HashMap<(&str, Namespace, &str), Owner<'_>> =
            HashMap::with_capacity(tables.len() * 4);
        let owner = |(kind, table): Owner<'_>| {
            format!("{kind} of {}.{}", table.target_schema, table.target_table)
        };
        for table in tables {
            let collision = |message: String| {
                let key = format!("{}.{}", table.target_schema, table.target_table);
                Finding::at(&sink.service.file, sink.table_path(&key), message).field(&field)
            };
            if let Some(other) = files.insert(table.target_table.to_lowercase(), table) {
                self.error(collision(format!(
                    "tables `{}.{}` and `{}.{}` would both be written to {} (file names ignore the schema and case)",
                    other.target_schema,
                    other.target_table,
                    table.target_schema,
                    table.target_table,
                    table.names.table_file
                )));
            }
            for (kind, namespace, name) in objects(table) {
                match owners.entry((table.target_schema.as_str(), namespace, name)) {
                    Entry::Vacant(slot) => {
                        slot.insert((kind, table));
                    }
                    Entry::Occupied(mut slot) => {
                        let previous = slot.insert((kind, table));
                        self.error(collision(format!(
                            "name `{name}` in schema `{}` is used twice: {} and {}",
                            table.target_schema,
                            owner(previous),
                            owner((kind, table))
                        )));
                    }
                }
            }
        }
    }
}
