//! What enable-cdc and clean-cdc do, decided from catalog facts: pure, so the
//! driver only executes and the decisions are tested without a server.

use crate::ident::TableRef;

/// `EXEC sys.sp_cdc_enable_db`: run when the database is not enabled yet.
pub const ENABLE_DATABASE_STATEMENT: &str = "EXEC sys.sp_cdc_enable_db;";

/// Enables one table; `@P1` schema, `@P2` table, `@P3` supports net changes (bit).
pub const ENABLE_TABLE_STATEMENT: &str = "EXEC sys.sp_cdc_enable_table @source_schema = @P1, \
     @source_name = @P2, @role_name = NULL, @supports_net_changes = @P3;";

/// Cleans one capture instance; `@P1` capture instance, `@P2` low-water mark
/// (binary(10)), `@P3` rows deleted per statement.
pub const CLEANUP_STATEMENT: &str = "EXEC sys.sp_cdc_cleanup_change_table \
     @capture_instance = @P1, @low_water_mark = @P2, @threshold = @P3;";

/// Rows `sp_cdc_cleanup_change_table` deletes per statement (its own default).
pub const CLEANUP_THRESHOLD: i64 = 5000;

/// Whether CDC tracks a table and whether it has a primary key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TableStatus {
    /// The table.
    pub table: TableRef,
    /// `sys.tables.is_tracked_by_cdc`
    pub is_tracked_by_cdc: bool,
    /// The table has a primary key (net changes need one).
    pub has_primary_key: bool,
}

/// One step of enable-cdc.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EnableStep {
    /// `sys.sp_cdc_enable_db`
    EnableDatabase,
    /// `sys.sp_cdc_enable_table` for a table.
    EnableTable {
        /// The table.
        table: TableRef,
        /// `@supports_net_changes = 1` (only with a primary key).
        supports_net_changes: bool,
    },
    /// CDC tracks the table already.
    AlreadyTracked(TableRef),
    /// The table is in scope but not at the source.
    NotFound(TableRef),
}

/// The steps of enable-cdc for the tables in scope, in scope order.
pub fn plan_enable(
    database_enabled: bool,
    scope: &[TableRef],
    status: &[TableStatus],
) -> Vec<EnableStep> {
    let mut steps = Vec::with_capacity(scope.len() + 1);
    if !database_enabled {
        steps.push(EnableStep::EnableDatabase);
    }
    for table in scope {
        // Catalog names compare case-insensitively under the default collation.
        let found = status.iter().find(|s| {
            s.table.schema.eq_ignore_ascii_case(&table.schema)
                && s.table.table.eq_ignore_ascii_case(&table.table)
        });
        steps.push(match found {
            None => EnableStep::NotFound(table.clone()),
            Some(s) if s.is_tracked_by_cdc => EnableStep::AlreadyTracked(s.table.clone()),
            Some(s) => EnableStep::EnableTable {
                table: s.table.clone(),
                supports_net_changes: s.has_primary_key,
            },
        });
    }
    steps
}

/// A capture instance with its current low-water mark.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CaptureInstance {
    /// The tracked table.
    pub table: TableRef,
    /// `cdc.change_tables.capture_instance`
    pub capture_instance: String,
    /// `cdc.change_tables.start_lsn`: the current low-water mark.
    pub start_lsn: Vec<u8>,
}

/// One step of clean-cdc.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CleanStep {
    /// Clean the instance up to the new low-water mark.
    Clean {
        /// The instance.
        instance: CaptureInstance,
        /// The new low-water mark.
        low_water_mark: Vec<u8>,
    },
    /// The new mark is not above the current one: nothing to do.
    UpToDate(CaptureInstance),
    /// A table in scope that no capture instance tracks.
    NotTracked(TableRef),
}

/// The steps of clean-cdc: every capture instance of the tables in scope,
/// cleaned only where `low_water_mark` (None: no change is that old) is above
/// its current mark. LSNs are big-endian, so byte order is LSN order.
pub fn plan_clean(
    scope: &[TableRef],
    instances: &[CaptureInstance],
    low_water_mark: Option<&[u8]>,
) -> Vec<CleanStep> {
    let mut steps = Vec::new();
    for table in scope {
        let mut tracked = false;
        for instance in instances.iter().filter(|i| {
            i.table.schema.eq_ignore_ascii_case(&table.schema)
                && i.table.table.eq_ignore_ascii_case(&table.table)
        }) {
            tracked = true;
            steps.push(match low_water_mark {
                Some(mark) if mark > instance.start_lsn.as_slice() => CleanStep::Clean {
                    instance: instance.clone(),
                    low_water_mark: mark.to_vec(),
                },
                _ => CleanStep::UpToDate(instance.clone()),
            });
        }
        if !tracked {
            steps.push(CleanStep::NotTracked(table.clone()));
        }
    }
    steps
}

#[cfg(test)]
mod tests {
    use super::*;

    fn status(table: &str, tracked: bool, key: bool) -> TableStatus {
        TableStatus {
            table: TableRef::new("dbo", table),
            is_tracked_by_cdc: tracked,
            has_primary_key: key,
        }
    }

    #[test]
    fn enables_the_database_first_and_skips_tracked_tables() {
        let scope = [
            TableRef::new("dbo", "actor"),
            TableRef::new("dbo", "AuditTrail"),
            TableRef::new("dbo", "Done"),
            TableRef::new("dbo", "Gone"),
        ];
        let live = [
            status("Actor", false, true),
            status("AuditTrail", false, false),
            status("Done", true, true),
        ];
        assert_eq!(
            plan_enable(false, &scope, &live),
            vec![
                EnableStep::EnableDatabase,
                EnableStep::EnableTable {
                    table: TableRef::new("dbo", "Actor"),
                    supports_net_changes: true
                },
                EnableStep::EnableTable {
                    table: TableRef::new("dbo", "AuditTrail"),
                    supports_net_changes: false
                },
                EnableStep::AlreadyTracked(TableRef::new("dbo", "Done")),
                EnableStep::NotFound(TableRef::new("dbo", "Gone")),
            ]
        );
        assert!(!plan_enable(true, &scope, &live).contains(&EnableStep::EnableDatabase));
    }

    #[test]
    fn cleans_only_when_the_new_mark_is_above_the_current_one() {
        let instance = |name: &str, lsn: u8| CaptureInstance {
            table: TableRef::new("dbo", "Actor"),
            capture_instance: name.to_string(),
            start_lsn: vec![0, 0, 0, lsn, 0, 0, 0, 0, 0, 0],
        };
        let instances = [instance("dbo_Actor", 5), instance("dbo_Actor_v2", 9)];
        let scope = [TableRef::new("dbo", "Actor"), TableRef::new("dbo", "Other")];
        let mark = [0, 0, 0, 7, 0, 0, 0, 0, 0, 0];
        assert_eq!(
            plan_clean(&scope, &instances, Some(&mark)),
            vec![
                CleanStep::Clean {
                    instance: instance("dbo_Actor", 5),
                    low_water_mark: mark.to_vec()
                },
                CleanStep::UpToDate(instance("dbo_Actor_v2", 9)),
                CleanStep::NotTracked(TableRef::new("dbo", "Other")),
            ]
        );
        assert_eq!(
            plan_clean(&scope[..1], &instances[..1], None),
            vec![CleanStep::UpToDate(instance("dbo_Actor", 5))]
        );
        let same = [0, 0, 0, 5, 0, 0, 0, 0, 0, 0];
        assert_eq!(
            plan_clean(&scope[..1], &instances[..1], Some(&same)),
            vec![CleanStep::UpToDate(instance("dbo_Actor", 5))]
        );
    }
}
