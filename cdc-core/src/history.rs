//! The migration history table, shared by the infrastructure file and the runtime.
//!
//! The runtime runs [`HISTORY_DDL`] before any file so that even the first
//! infrastructure file is recorded; `02-cdc-management.sql` carries the same
//! text so that a database set up by hand with `psql` ends in the same shape.
//! The DDL is idempotent and adopts the older history table of the original
//! tool (keyed by `(file_name, schema_name)` with a nullable `schema_name`):
//! it adds the `sink` and `execution_ms` columns, fills `sink` of old rows with
//! `legacy:<schema_name>` and adds the unique key on `(sink, file_name)`.

pub use crate::layout::MANAGEMENT_SCHEMA;

/// Idempotent DDL of `cdc_management.migration_history`.
pub const HISTORY_DDL: &str = r#"CREATE SCHEMA IF NOT EXISTS "cdc_management";

CREATE TABLE IF NOT EXISTS "cdc_management"."migration_history" (
    "id"           BIGSERIAL    PRIMARY KEY,
    "sink"         TEXT         NOT NULL,
    "file_name"    TEXT         NOT NULL,
    "checksum"     TEXT         NOT NULL,
    "category"     TEXT         NOT NULL,
    "applied_at"   TIMESTAMPTZ  NOT NULL DEFAULT now(),
    "execution_ms" BIGINT,
    CONSTRAINT "migration_history_sink_file_key" UNIQUE ("sink", "file_name")
);

-- Adopt the original tool's history table (no "sink" column, keyed by schema_name).
DO $cdc$
BEGIN
    IF NOT EXISTS (
        SELECT 1 FROM information_schema.columns
        WHERE table_schema = 'cdc_management' AND table_name = 'migration_history' AND column_name = 'sink'
    ) THEN
        ALTER TABLE "cdc_management"."migration_history" ADD COLUMN "sink" TEXT;
    END IF;
    IF NOT EXISTS (
        SELECT 1 FROM information_schema.columns
        WHERE table_schema = 'cdc_management' AND table_name = 'migration_history' AND column_name = 'execution_ms'
    ) THEN
        ALTER TABLE "cdc_management"."migration_history" ADD COLUMN "execution_ms" BIGINT;
    END IF;
    IF EXISTS (
        SELECT 1 FROM information_schema.columns
        WHERE table_schema = 'cdc_management' AND table_name = 'migration_history'
          AND column_name = 'schema_name'
    ) THEN
        EXECUTE 'UPDATE "cdc_management"."migration_history"
                 SET "sink" = ''legacy:'' || coalesce("schema_name", '''')
                 WHERE "sink" IS NULL';
    END IF;
    IF NOT EXISTS (
        SELECT 1 FROM pg_constraint
        WHERE conrelid = '"cdc_management"."migration_history"'::regclass
          AND conname = 'migration_history_sink_file_key'
    ) THEN
        ALTER TABLE "cdc_management"."migration_history"
            ADD CONSTRAINT "migration_history_sink_file_key" UNIQUE ("sink", "file_name");
    END IF;
    ALTER TABLE "cdc_management"."migration_history" ALTER COLUMN "sink" SET NOT NULL;
END
$cdc$;
"#;
