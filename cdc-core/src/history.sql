CREATE SCHEMA IF NOT EXISTS {{management_schema}};

CREATE TABLE IF NOT EXISTS {{management_schema}}."migration_history" (
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
        WHERE table_schema = '{{management_schema_name}}' AND table_name = 'migration_history' AND column_name = 'sink'
    ) THEN
        ALTER TABLE {{management_schema}}."migration_history" ADD COLUMN "sink" TEXT;
    END IF;
    IF NOT EXISTS (
        SELECT 1 FROM information_schema.columns
        WHERE table_schema = '{{management_schema_name}}' AND table_name = 'migration_history' AND column_name = 'execution_ms'
    ) THEN
        ALTER TABLE {{management_schema}}."migration_history" ADD COLUMN "execution_ms" BIGINT;
    END IF;
    IF EXISTS (
        SELECT 1 FROM information_schema.columns
        WHERE table_schema = '{{management_schema_name}}' AND table_name = 'migration_history'
          AND column_name = 'schema_name'
    ) THEN
        EXECUTE 'UPDATE {{management_schema}}."migration_history"
                 SET "sink" = ''legacy:'' || coalesce("schema_name", '''')
                 WHERE "sink" IS NULL';
    END IF;
    IF NOT EXISTS (
        SELECT 1 FROM pg_constraint
        WHERE conrelid = '{{management_schema}}."migration_history"'::regclass
          AND conname = 'migration_history_sink_file_key'
    ) THEN
        ALTER TABLE {{management_schema}}."migration_history"
            ADD CONSTRAINT "migration_history_sink_file_key" UNIQUE ("sink", "file_name");
    END IF;
    ALTER TABLE {{management_schema}}."migration_history" ALTER COLUMN "sink" SET NOT NULL;
END
$cdc$;
