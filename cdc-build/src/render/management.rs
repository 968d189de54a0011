//! `00-infrastructure/02-cdc-management.sql`: merge control, processing log,
//! history, error log, tombstones, views, the merge orchestrator and the
//! table convergence helpers.
//!
//! The SQL lives in `management.sql`, where the management schema is written
//! as the placeholder [`SCHEMA_PLACEHOLDER`]; it is replaced once, by
//! [`MANAGEMENT_SCHEMA`] quoted, the first time the file is rendered.

use std::sync::OnceLock;

use cdc_core::history::{history_ddl, SCHEMA_NAME_PLACEHOLDER, SCHEMA_PLACEHOLDER};
use cdc_core::layout::MANAGEMENT_SCHEMA;

use crate::ident::quote_ident;

/// The fixed SQL, with [`SCHEMA_PLACEHOLDER`] for the management schema.
const MANAGEMENT_SQL: &str = include_str!("management.sql");

/// The body of `02-cdc-management.sql`; the same for every sink.
pub fn render_management() -> &'static str {
    static BODY: OnceLock<String> = OnceLock::new();
    BODY.get_or_init(|| {
        let sql = MANAGEMENT_SQL
            .replace(SCHEMA_PLACEHOLDER, &quote_ident(MANAGEMENT_SCHEMA))
            .replace(SCHEMA_NAME_PLACEHOLDER, MANAGEMENT_SCHEMA);
        let mut out = String::with_capacity(history_ddl().len() + sql.len() + 64);
        out.push_str("-- Migration history (the runtime creates it too, before any file).\n");
        out.push_str(history_ddl());
        out.push('\n');
        out.push_str(&sql);
        out
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_fixed_sql_uses_the_generators_default_batch() {
        let default = format!(
            "coalesce(r.batch_size, {})",
            super::super::staging::DEFAULT_MERGE_BATCH
        );
        assert!(MANAGEMENT_SQL.contains(&default), "{default}");
        let default = format!(
            "mc.\"batch_size\", {})",
            super::super::staging::DEFAULT_MERGE_BATCH
        );
        assert!(MANAGEMENT_SQL.contains(&default), "{default}");
    }

    #[test]
    fn the_schema_name_comes_from_the_layout_constant() {
        assert!(!MANAGEMENT_SQL.contains(MANAGEMENT_SCHEMA));
        assert!(MANAGEMENT_SQL.matches(SCHEMA_PLACEHOLDER).count() > 20);
        let body = render_management();
        assert!(!body.contains(SCHEMA_PLACEHOLDER));
        assert!(!body.contains(SCHEMA_NAME_PLACEHOLDER));
        let quoted = quote_ident(MANAGEMENT_SCHEMA);
        assert!(body.contains(&format!(
            "CREATE TABLE IF NOT EXISTS {quoted}.\"merge_control\""
        )));
        assert!(body.starts_with("-- Migration history"));
    }
}
