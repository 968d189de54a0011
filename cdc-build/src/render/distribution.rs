//! Citus placement of a sink table's relations (DESIGN.md §12): guarded `DO` blocks that distribute or replicate them on Citus and do nothing on plain PostgreSQL.
//!
//! One set of migration files serves both: every Citus call runs only when the `citus`
//! extension exists in the database, and through `EXECUTE`, so plain PostgreSQL never resolves
//! a Citus object. A relation Citus manages already is left alone when it is placed as the YAML
//! says (re-applying is a no-op) and refused, with the manual step, when it is placed otherwise.
//! A distributed staging table carries no statement trigger (Citus refuses triggers on its
//! tables): the block drops it before distributing, and the staging file creates it only where
//! Citus is absent. The management tables stay ordinary tables on the coordinator.

use crate::ident::{push_dollar_quoted, push_ident, push_literal, qualified};
use crate::project::{Distribution, SinkTable, MARK_TRIGGER};

/// The guard every Citus call runs under.
pub const CITUS_PRESENT: &str =
    "EXISTS (SELECT 1 FROM pg_catalog.pg_extension WHERE extname = 'citus')";

/// How a relation is placed right now: `by <column>`, `reference`, `local` (Citus-managed but
/// local), or NULL (not managed by Citus). One bound parameter: the relation.
const PLACEMENT_QUERY: &str = "SELECT CASE WHEN p.partmethod = 'h' THEN 'by ' || pg_catalog.column_to_column_name(p.logicalrelid, p.partkey) WHEN p.repmodel = 't' THEN 'reference' ELSE 'local' END FROM pg_catalog.pg_dist_partition AS p WHERE p.logicalrelid = $1::regclass";

/// One relation to place.
struct Placement<'a> {
    /// `"schema"."name"`.
    relation: String,
    /// The relation it is co-located with (distributed relations other than the final table).
    colocate_with: Option<String>,
    /// Drop the staging trigger before distributing.
    drop_trigger: bool,
    /// How to place it.
    distribution: &'a Distribution,
}

/// Appends the block that places the final table, if the table is placed on Citus at all.
pub fn push_distribute_final(out: &mut String, table: &SinkTable) {
    if !table.distribution.is_citus_table() {
        return;
    }
    out.push('\n');
    push_block(
        out,
        &[Placement {
            relation: qualified(&table.target_schema, &table.target_table),
            colocate_with: None,
            drop_trigger: false,
            distribution: &table.distribution,
        }],
    );
}

/// The block that places the staging and tombstone tables with their final table (empty when
/// the table is not placed on Citus).
pub fn distribute_staging(table: &SinkTable) -> String {
    if !table.distribution.is_citus_table() {
        return String::new();
    }
    let final_table = qualified(&table.target_schema, &table.target_table);
    let colocated = |name: &str, drop_trigger: bool| Placement {
        relation: qualified(&table.target_schema, name),
        colocate_with: Some(final_table.clone()),
        drop_trigger,
        distribution: &table.distribution,
    };
    let mut out = String::with_capacity(3_000);
    push_block(
        &mut out,
        &[
            colocated(&table.names.staging, true),
            colocated(&table.names.tombstones, false),
        ],
    );
    // The template puts the blank line after it.
    out.truncate(out.trim_end().len());
    out
}

/// Appends one guarded `DO` block placing `relations` in order.
fn push_block(out: &mut String, relations: &[Placement<'_>]) {
    out.push_str(
        "-- Citus: place the table on the cluster (only where the citus extension exists; a\n\
         -- table placed already is left as it is, or refused if placed otherwise).\nDO ",
    );
    push_dollar_quoted(out, |out| {
        out.push_str("\nDECLARE\n    v_now text;\nBEGIN\n    IF ");
        out.push_str(CITUS_PRESENT);
        out.push_str(" THEN\n");
        for placement in relations {
            push_placement(out, placement);
        }
        out.push_str("    END IF;\nEND\n");
    });
    out.push_str(";\n");
}

/// Appends the statements placing one relation.
fn push_placement(out: &mut String, placement: &Placement<'_>) {
    let want = match placement.distribution {
        Distribution::By(column) => format!("by {column}"),
        Distribution::Reference => "reference".to_string(),
        Distribution::Local => return,
    };
    out.push_str("        EXECUTE ");
    push_literal(out, PLACEMENT_QUERY);
    out.push_str("\n           INTO v_now USING ");
    push_literal(out, &placement.relation);
    out.push_str(";\n        IF v_now IS NULL THEN\n");
    if placement.drop_trigger {
        out.push_str("            DROP TRIGGER IF EXISTS ");
        push_ident(out, MARK_TRIGGER);
        out.push_str(" ON ");
        out.push_str(&placement.relation);
        out.push_str(";\n");
    }
    out.push_str("            EXECUTE ");
    match (placement.distribution, &placement.colocate_with) {
        (Distribution::By(column), colocate_with) => {
            let call = if colocate_with.is_some() {
                "SELECT pg_catalog.create_distributed_table($1::regclass, $2, colocate_with => $3)"
            } else {
                "SELECT pg_catalog.create_distributed_table($1::regclass, $2)"
            };
            push_literal(out, call);
            out.push_str(" USING ");
            push_literal(out, &placement.relation);
            out.push_str(", ");
            push_literal(out, column);
            if let Some(colocate_with) = colocate_with {
                out.push_str(", ");
                push_literal(out, colocate_with);
            }
        }
        _ => {
            push_literal(
                out,
                "SELECT pg_catalog.create_reference_table($1::regclass)",
            );
            out.push_str(" USING ");
            push_literal(out, &placement.relation);
        }
    }
    out.push_str(";\n            -- Rows the table held before are in the shards now.\n");
    out.push_str("            EXECUTE ");
    push_literal(
        out,
        "SELECT pg_catalog.truncate_local_data_after_distributing_table($1::regclass)",
    );
    out.push_str(" USING ");
    push_literal(out, &placement.relation);
    out.push_str(";\n        ELSIF v_now <> ");
    push_literal(out, &want);
    out.push_str(
        " THEN\n            RAISE EXCEPTION 'cdc: % is placed on Citus as %, the YAML says %', ",
    );
    push_literal(out, &placement.relation);
    out.push_str(", v_now, ");
    push_literal(out, &want);
    out.push_str(
        "\n                USING HINT = 'change its placement by hand (alter_distributed_table, \
         undistribute_table), then apply again';\n        END IF;\n",
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    fn placement(distribution: &Distribution, colocate: bool) -> String {
        let mut out = String::new();
        push_block(
            &mut out,
            &[Placement {
                relation: qualified("s", "stg_T"),
                colocate_with: colocate.then(|| qualified("s", "T")),
                drop_trigger: colocate,
                distribution,
            }],
        );
        out
    }

    #[test]
    fn distributed_relations_are_guarded_idempotent_and_colocated() {
        let sql = placement(&Distribution::By("Tenant'Id".into()), true);
        assert!(sql.contains(CITUS_PRESENT), "{sql}");
        assert!(sql.contains("IF v_now IS NULL THEN"), "{sql}");
        assert!(sql.contains(r#"DROP TRIGGER IF EXISTS "cdc_mark_for_merge" ON "s"."stg_T";"#));
        assert!(
            sql.contains(r#"USING '"s"."stg_T"', 'Tenant''Id', '"s"."T"';"#),
            "{sql}"
        );
        assert!(sql.contains("ELSIF v_now <> 'by Tenant''Id' THEN"), "{sql}");
        // Citus objects are only named inside string literals run by EXECUTE.
        for line in sql
            .lines()
            .filter(|l| l.contains("pg_dist") || l.contains("create_"))
        {
            assert!(line.trim_start().starts_with("EXECUTE '"), "{line}");
        }
    }

    #[test]
    fn reference_tables_are_replicated() {
        let sql = placement(&Distribution::Reference, false);
        assert!(sql.contains("create_reference_table($1::regclass)' USING '\"s\".\"stg_T\"'"));
        assert!(!sql.contains("DROP TRIGGER"));
        assert!(sql.contains("ELSIF v_now <> 'reference' THEN"));
    }
}
