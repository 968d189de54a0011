-- Which tables have staged rows waiting for a merge.
CREATE TABLE IF NOT EXISTS {{management_schema}}."merge_control" (
    "schema_name"            TEXT        NOT NULL,
    "table_name"             TEXT        NOT NULL,
    "staging_table"          TEXT        NOT NULL,
    "merge_function"         TEXT        NOT NULL,
    "enabled"                BOOLEAN     NOT NULL DEFAULT true,
    "pending"                BOOLEAN     NOT NULL DEFAULT false,
    "pending_since"          TIMESTAMPTZ,
    "last_merge_started_at"  TIMESTAMPTZ,
    "last_merge_at"          TIMESTAMPTZ,
    "last_merge_rows"        BIGINT,
    "last_merge_duration_ms" BIGINT,
    "last_error_at"          TIMESTAMPTZ,
    PRIMARY KEY ("schema_name", "table_name")
);
-- Added after the first release: the typed tombstone table and a per-table batch size
-- (NULL: the merge function's default).
ALTER TABLE {{management_schema}}."merge_control" ADD COLUMN IF NOT EXISTS "tombstone_table" TEXT;
ALTER TABLE {{management_schema}}."merge_control" ADD COLUMN IF NOT EXISTS "batch_size" INTEGER
    CHECK ("batch_size" IS NULL OR "batch_size" > 0);

-- Where the next merge batch of a table starts scanning its staging table, so that
-- the dead rows of earlier batches are not read again (kept apart from merge_control,
-- whose row the staging trigger updates).
CREATE TABLE IF NOT EXISTS {{management_schema}}."merge_cursor" (
    "schema_name" TEXT NOT NULL,
    "table_name"  TEXT NOT NULL,
    "scan_from"   TID  NOT NULL,
    PRIMARY KEY ("schema_name", "table_name")
);
-- The staging table's storage the cursor belongs to (pg_relation_filenode).
ALTER TABLE {{management_schema}}."merge_cursor" ADD COLUMN IF NOT EXISTS "relfilenode" OID;

-- One row per merge batch (each commits on its own), with true counts and positions.
CREATE TABLE IF NOT EXISTS {{management_schema}}."cdc_processing_log" (
    "id"                  BIGSERIAL   PRIMARY KEY,
    "schema_name"         TEXT        NOT NULL,
    "table_name"          TEXT        NOT NULL,
    "started_at"          TIMESTAMPTZ NOT NULL,
    "finished_at"         TIMESTAMPTZ NOT NULL,
    "duration_ms"         BIGINT      NOT NULL,
    "rows_consumed"       BIGINT      NOT NULL,
    "rows_superseded"     BIGINT      NOT NULL,
    "rows_upserted"       BIGINT      NOT NULL,
    "rows_deleted"        BIGINT      NOT NULL,
    "rows_stale"          BIGINT      NOT NULL,
    "min_kafka_offset"    BIGINT,
    "max_kafka_offset"    BIGINT,
    "min_source_ts_ms"    BIGINT,
    "max_source_ts_ms"    BIGINT,
    "max_kafka_timestamp" TIMESTAMPTZ
);
CREATE INDEX IF NOT EXISTS "cdc_processing_log_table_idx"
    ON {{management_schema}}."cdc_processing_log" ("schema_name", "table_name", "started_at");
ALTER TABLE {{management_schema}}."cdc_processing_log"
    ADD COLUMN IF NOT EXISTS "rows_dead_lettered" BIGINT NOT NULL DEFAULT 0;

-- Offset range per Kafka partition of every merge batch: the gaps view reads them.
CREATE TABLE IF NOT EXISTS {{management_schema}}."cdc_processing_offsets" (
    "log_id"           BIGINT NOT NULL,
    "schema_name"      TEXT   NOT NULL,
    "table_name"       TEXT   NOT NULL,
    "kafka_partition"  INTEGER,
    "min_kafka_offset" BIGINT NOT NULL,
    "max_kafka_offset" BIGINT NOT NULL,
    "events"           BIGINT NOT NULL
);
CREATE INDEX IF NOT EXISTS "cdc_processing_offsets_table_idx"
    ON {{management_schema}}."cdc_processing_offsets" ("schema_name", "table_name", "kafka_partition", "min_kafka_offset");

-- Staged rows a merge could not apply (a NULL key, a NULL in a NOT NULL column, a value
-- that does not fit), with the error and the event's position; the rest of their batch
-- merged. Fix the cause, then replay them with replay_dead_letters().
CREATE TABLE IF NOT EXISTS {{management_schema}}."merge_dead_letters" (
    "id"              BIGSERIAL   PRIMARY KEY,
    "failed_at"       TIMESTAMPTZ NOT NULL DEFAULT now(),
    "schema_name"     TEXT        NOT NULL,
    "table_name"      TEXT        NOT NULL,
    "staging_table"   TEXT        NOT NULL,
    "sqlstate"        TEXT,
    "message"         TEXT        NOT NULL,
    "detail"          TEXT,
    "source_ts_ms"    BIGINT,
    "kafka_offset"    BIGINT,
    "kafka_partition" INTEGER,
    "row_data"        JSONB       NOT NULL
);
CREATE INDEX IF NOT EXISTS "merge_dead_letters_table_idx"
    ON {{management_schema}}."merge_dead_letters" ("schema_name", "table_name", "id");

-- Merge failures.
CREATE TABLE IF NOT EXISTS {{management_schema}}."error_log" (
    "id"          BIGSERIAL   PRIMARY KEY,
    "occurred_at" TIMESTAMPTZ NOT NULL DEFAULT now(),
    "schema_name" TEXT,
    "table_name"  TEXT,
    "operation"   TEXT        NOT NULL,
    "sqlstate"    TEXT,
    "message"     TEXT        NOT NULL,
    "detail"      TEXT,
    "context"     TEXT
);
CREATE INDEX IF NOT EXISTS "error_log_occurred_at_idx" ON {{management_schema}}."error_log" ("occurred_at");

-- Drops tombstones older than the retention window from every table's tombstone
-- table (and from the shared JSONB table of earlier versions, if it is still there);
-- returns how many went. Keep the window longer than any replay the connector can make.
CREATE OR REPLACE FUNCTION {{management_schema}}."purge_tombstones"(p_retention INTERVAL DEFAULT INTERVAL '7 days')
RETURNS BIGINT
LANGUAGE plpgsql
AS $cdc$
DECLARE
    r RECORD;
    v_n BIGINT;
    v_total BIGINT := 0;
BEGIN
    FOR r IN
        SELECT mc."schema_name", mc."tombstone_table" FROM {{management_schema}}."merge_control" AS mc
         WHERE mc."tombstone_table" IS NOT NULL
           AND to_regclass(format('%I.%I', mc."schema_name", mc."tombstone_table")) IS NOT NULL
    LOOP
        EXECUTE format('WITH gone AS (DELETE FROM %I.%I WHERE "__deleted_at" < now() - $1 RETURNING 1) SELECT count(*) FROM gone',
                       r."schema_name", r."tombstone_table")
           INTO v_n USING p_retention;
        v_total := v_total + v_n;
    END LOOP;
    IF to_regclass(format('%I.merge_tombstones', '{{management_schema_name}}')) IS NOT NULL THEN
        EXECUTE 'WITH gone AS (DELETE FROM {{management_schema}}."merge_tombstones" WHERE "deleted_at" < now() - $1 RETURNING 1) SELECT count(*) FROM gone'
           INTO v_n USING p_retention;
        v_total := v_total + v_n;
    END IF;
    RETURN v_total;
END;
$cdc$;

-- Statement trigger of every staging table: flags the table for the next merge.
-- Rows are never lost if the flag races a merge: trigger_pending_merges() also
-- sweeps tables whose flag is down but whose staging table holds rows.
CREATE OR REPLACE FUNCTION {{management_schema}}."mark_table_for_merge"()
RETURNS TRIGGER
LANGUAGE plpgsql
AS $cdc$
BEGIN
    UPDATE {{management_schema}}."merge_control"
       SET "pending" = true, "pending_since" = now()
     WHERE "schema_name" = TG_TABLE_SCHEMA
       AND "table_name" = TG_ARGV[0]
       AND NOT "pending";
    RETURN NULL;
END;
$cdc$;

-- Whether Citus manages the table (distributed by a column, or a reference table). Such a
-- table's shards live on other nodes, where a row's ctid means nothing to the coordinator: its
-- merge reads one snapshot of the whole staging table instead of ctid ranges (DESIGN.md §12).
-- False on a server without the citus extension (its catalog is only read when present).
CREATE OR REPLACE FUNCTION {{management_schema}}."is_citus_table"(p_table REGCLASS)
RETURNS BOOLEAN
LANGUAGE plpgsql
STABLE
AS $cdc$
DECLARE
    v_found BOOLEAN := false;
BEGIN
    IF to_regclass('pg_catalog.pg_dist_partition') IS NOT NULL THEN
        EXECUTE 'SELECT EXISTS (SELECT 1 FROM pg_catalog.pg_dist_partition WHERE logicalrelid = $1)'
           INTO v_found USING p_table;
    END IF;
    RETURN v_found;
END;
$cdc$;

-- Whether changing a column from one type to another keeps every value
-- (types as format_type() prints them).
CREATE OR REPLACE FUNCTION {{management_schema}}."is_safe_type_change"(p_from TEXT, p_to TEXT)
RETURNS BOOLEAN
LANGUAGE plpgsql
IMMUTABLE
AS $cdc$
DECLARE
    f_base TEXT := regexp_replace(p_from, '\(.*\)', '');
    t_base TEXT := regexp_replace(p_to, '\(.*\)', '');
    f_args INT[] := string_to_array(substring(p_from from '\(([0-9, ]*)\)'), ',')::INT[];
    t_args INT[] := string_to_array(substring(p_to from '\(([0-9, ]*)\)'), ',')::INT[];
    ints TEXT[] := ARRAY['smallint', 'integer', 'bigint'];
BEGIN
    IF p_from = p_to THEN
        RETURN true;
    END IF;
    IF f_base = ANY (ints) AND t_base = ANY (ints) THEN
        RETURN array_position(ints, t_base) >= array_position(ints, f_base);
    END IF;
    IF f_base = ANY (ints) AND t_base = 'numeric' THEN
        RETURN t_args IS NULL
            OR t_args[1] - coalesce(t_args[2], 0) >= CASE f_base WHEN 'smallint' THEN 5 WHEN 'integer' THEN 10 ELSE 19 END;
    END IF;
    IF f_base = 'real' AND t_base = 'double precision' THEN
        RETURN true;
    END IF;
    IF f_base = 'numeric' AND t_base = 'numeric' THEN
        RETURN t_args IS NULL
            OR (f_args IS NOT NULL
                AND t_args[1] - coalesce(t_args[2], 0) >= f_args[1] - coalesce(f_args[2], 0)
                AND coalesce(t_args[2], 0) >= coalesce(f_args[2], 0));
    END IF;
    IF f_base = 'character varying' AND t_base = 'text' THEN
        RETURN true;
    END IF;
    IF f_base = 'character varying' AND t_base = 'character varying' THEN
        RETURN t_args IS NULL OR (f_args IS NOT NULL AND t_args[1] >= f_args[1]);
    END IF;
    IF f_base = 'character' AND t_base IN ('character', 'bpchar') THEN
        RETURN t_base = 'bpchar' OR t_args[1] >= f_args[1];
    END IF;
    IF f_base = t_base AND f_base IN ('time without time zone', 'timestamp without time zone',
                                      'timestamp with time zone', 'time with time zone') THEN
        RETURN coalesce(t_args[1], 6) >= coalesce(f_args[1], 6);
    END IF;
    RETURN false;
END;
$cdc$;

-- Brings an existing table to the shape the YAML describes: adds missing
-- columns, widens types where no value can change, relaxes NOT NULL. Anything
-- that could lose data or needs a decision (narrowing, a changed primary key,
-- a column dropped from the YAML, NOT NULL over existing NULLs) is refused with
-- an error that lists the manual steps; nothing is changed then.
-- p_columns: [{"name", "type", "canonical", "not_null", "default"}]
CREATE OR REPLACE PROCEDURE {{management_schema}}."converge_table"(
    p_schema TEXT,
    p_table TEXT,
    p_columns JSONB,
    p_primary_key TEXT[],
    p_allow_extra_columns BOOLEAN DEFAULT false
)
LANGUAGE plpgsql
AS $cdc$
DECLARE
    v_rel TEXT := format('%I.%I', p_schema, p_table);
    v_oid OID := to_regclass(format('%I.%I', p_schema, p_table));
    v_col JSONB;
    v_name TEXT;
    v_type TEXT;
    v_not_null BOOLEAN;
    v_default TEXT;
    v_existing RECORD;
    v_has_rows BOOLEAN;
    v_has_nulls BOOLEAN;
    v_expected TEXT[];
    v_actual_pk TEXT[];
    v_problems TEXT[] := ARRAY[]::TEXT[];
    v_changes TEXT[] := ARRAY[]::TEXT[];
    v_change TEXT;
BEGIN
    IF v_oid IS NULL THEN
        RAISE EXCEPTION 'cdc: table % does not exist', v_rel
            USING HINT = 'create it first (it is declared with target_exists), then apply again',
                  ERRCODE = 'undefined_table';
    END IF;
    EXECUTE format('SELECT EXISTS (SELECT 1 FROM %s)', v_rel) INTO v_has_rows;
    SELECT array_agg(c ->> 'name') INTO v_expected FROM jsonb_array_elements(p_columns) AS c;

    FOR v_col IN SELECT * FROM jsonb_array_elements(p_columns) LOOP
        v_name := v_col ->> 'name';
        v_type := v_col ->> 'type';
        v_not_null := (v_col ->> 'not_null')::BOOLEAN;
        v_default := v_col ->> 'default';
        SELECT a.attname, format_type(a.atttypid, a.atttypmod) AS canonical, a.attnotnull
          INTO v_existing
          FROM pg_attribute AS a
         WHERE a.attrelid = v_oid AND a.attname = v_name AND a.attnum > 0 AND NOT a.attisdropped;
        IF NOT FOUND THEN
            IF v_not_null AND v_default IS NULL AND v_has_rows THEN
                v_problems := v_problems || format(
                    'column %I is new and NOT NULL without a default, but %s has rows: add it by hand with a value for the existing rows (ALTER TABLE %s ADD COLUMN %I %s DEFAULT <value> NOT NULL), then apply again',
                    v_name, v_rel, v_rel, v_name, v_type);
            ELSE
                v_changes := v_changes || format('ALTER TABLE %s ADD COLUMN %I %s%s%s', v_rel, v_name, v_type,
                    CASE WHEN v_default IS NOT NULL THEN ' DEFAULT ' || v_default ELSE '' END,
                    CASE WHEN v_not_null THEN ' NOT NULL' ELSE '' END);
            END IF;
            CONTINUE;
        END IF;
        IF v_existing.canonical <> v_col ->> 'canonical' THEN
            IF {{management_schema}}."is_safe_type_change"(v_existing.canonical, v_col ->> 'canonical') THEN
                v_changes := v_changes || format('ALTER TABLE %s ALTER COLUMN %I TYPE %s', v_rel, v_name, v_type);
            ELSE
                v_problems := v_problems || format(
                    'column %I is %s but the YAML says %s, a change that can lose or alter data: convert it by hand (ALTER TABLE %s ALTER COLUMN %I TYPE %s USING ...) after checking the values, then apply again',
                    v_name, v_existing.canonical, v_col ->> 'canonical', v_rel, v_name, v_type);
            END IF;
        END IF;
        IF v_existing.attnotnull AND NOT v_not_null THEN
            v_changes := v_changes || format('ALTER TABLE %s ALTER COLUMN %I DROP NOT NULL', v_rel, v_name);
        ELSIF NOT v_existing.attnotnull AND v_not_null THEN
            EXECUTE format('SELECT EXISTS (SELECT 1 FROM %s WHERE %I IS NULL)', v_rel, v_name) INTO v_has_nulls;
            IF v_has_nulls THEN
                v_problems := v_problems || format(
                    'column %I holds NULLs but the YAML makes it NOT NULL: fill them by hand (UPDATE %s SET %I = <value> WHERE %I IS NULL), then apply again',
                    v_name, v_rel, v_name, v_name);
            ELSE
                v_changes := v_changes || format('ALTER TABLE %s ALTER COLUMN %I SET NOT NULL', v_rel, v_name);
            END IF;
        END IF;
    END LOOP;

    FOR v_existing IN
        SELECT a.attname FROM pg_attribute AS a
         WHERE a.attrelid = v_oid AND a.attnum > 0 AND NOT a.attisdropped
           AND NOT (a.attname = ANY (v_expected))
         ORDER BY a.attnum
    LOOP
        IF NOT p_allow_extra_columns THEN
            v_problems := v_problems || format(
                'column %I exists in %s but not in the YAML: drop it by hand once nothing reads it (ALTER TABLE %s DROP COLUMN %I), or add it back to the YAML',
                v_existing.attname, v_rel, v_rel, v_existing.attname);
        END IF;
    END LOOP;

    SELECT array_agg(a.attname::TEXT ORDER BY k.ord)
      INTO v_actual_pk
      FROM pg_index AS i
     CROSS JOIN LATERAL unnest(i.indkey) WITH ORDINALITY AS k(attnum, ord)
      JOIN pg_attribute AS a ON a.attrelid = i.indrelid AND a.attnum = k.attnum
     WHERE i.indrelid = v_oid AND i.indisprimary;
    IF coalesce(v_actual_pk, ARRAY[]::TEXT[]) IS DISTINCT FROM coalesce(p_primary_key, ARRAY[]::TEXT[]) THEN
        v_problems := v_problems || format(
            'primary key of %s is (%s) but the YAML says (%s): change it by hand after checking for duplicate keys (ALTER TABLE %s DROP CONSTRAINT <name>, ADD PRIMARY KEY (...)), then apply again',
            v_rel, coalesce(array_to_string(v_actual_pk, ', '), 'none'),
            coalesce(nullif(array_to_string(p_primary_key, ', '), ''), 'none'), v_rel);
    END IF;

    IF cardinality(v_problems) > 0 THEN
        RAISE EXCEPTION 'cdc: % cannot be brought to the shape of its YAML safely (% problem(s)); nothing was changed', v_rel, cardinality(v_problems)
            USING DETAIL = array_to_string(v_problems, E'\n'),
                  HINT = 'make the listed changes by hand, or have them written as an explicit, reviewed migration with `cdc manage-migrations generate --allow-breaking`, then apply again',
                  ERRCODE = 'object_not_in_prerequisite_state';
    END IF;
    FOREACH v_change IN ARRAY v_changes LOOP
        RAISE NOTICE 'cdc: %', v_change;
        EXECUTE v_change;
    END LOOP;
END;
$cdc$;

-- Merges every table with pending staged rows IN THE CALLER'S TRANSACTION and returns
-- one row per merged table (the spec's entry point, kept for callers that want one
-- transaction). Large backlogs belong to run_pending_merges(), which commits per batch.
-- p_batch_window_seconds: a flagged table waits this long after its first staged row so
-- that rows accumulate; 0 merges everything pending now. Safe from several sessions at
-- once: a table busy elsewhere is skipped.
CREATE OR REPLACE FUNCTION {{management_schema}}."trigger_pending_merges"(p_batch_window_seconds INTEGER DEFAULT 5)
RETURNS TABLE ("schema_name" TEXT, "table_name" TEXT, "rows_merged" BIGINT, "duration_ms" BIGINT)
LANGUAGE plpgsql
AS $cdc$
#variable_conflict use_column
DECLARE
    r RECORD;
    v_has_rows BOOLEAN;
    v_started TIMESTAMPTZ;
    v_rows BIGINT;
    v_state TEXT;
    v_message TEXT;
    v_detail TEXT;
    v_context TEXT;
BEGIN
    FOR r IN
        SELECT mc.* FROM {{management_schema}}."merge_control" AS mc
         WHERE mc."enabled"
         ORDER BY mc."schema_name", mc."table_name"
    LOOP
        IF r.pending THEN
            CONTINUE WHEN r.pending_since > now() - make_interval(secs => greatest(p_batch_window_seconds, 0));
        ELSE
            EXECUTE format('SELECT EXISTS (SELECT 1 FROM %I.%I)', r.schema_name, r.staging_table) INTO v_has_rows;
            CONTINUE WHEN NOT v_has_rows;
        END IF;
        CONTINUE WHEN NOT pg_try_advisory_xact_lock(hashtextextended('cdc_merge:' || r.schema_name || '.' || r.table_name, 0));
        v_started := clock_timestamp();
        UPDATE {{management_schema}}."merge_control" AS mc
           SET "pending" = false, "pending_since" = NULL, "last_merge_started_at" = v_started
         WHERE mc."schema_name" = r.schema_name AND mc."table_name" = r.table_name;
        BEGIN
            EXECUTE format('SELECT "rows_consumed" FROM %I.%I($1)', r.schema_name, r.merge_function)
               INTO v_rows USING coalesce(r.batch_size, 1000000);
        EXCEPTION WHEN OTHERS THEN
            GET STACKED DIAGNOSTICS v_state = RETURNED_SQLSTATE, v_message = MESSAGE_TEXT,
                                    v_detail = PG_EXCEPTION_DETAIL, v_context = PG_EXCEPTION_CONTEXT;
            INSERT INTO {{management_schema}}."error_log"
                ("schema_name", "table_name", "operation", "sqlstate", "message", "detail", "context")
            VALUES (r.schema_name, r.table_name, 'merge', v_state, v_message, v_detail, v_context);
            UPDATE {{management_schema}}."merge_control" AS mc
               SET "last_error_at" = now(), "pending" = true, "pending_since" = coalesce(mc."pending_since", now())
             WHERE mc."schema_name" = r.schema_name AND mc."table_name" = r.table_name;
            CONTINUE;
        END;
        UPDATE {{management_schema}}."merge_control" AS mc
           SET "last_merge_at" = clock_timestamp(), "last_merge_rows" = v_rows,
               "last_merge_duration_ms" = floor(extract(epoch FROM clock_timestamp() - v_started) * 1000)::BIGINT
         WHERE mc."schema_name" = r.schema_name AND mc."table_name" = r.table_name;
        schema_name := r.schema_name;
        table_name := r.table_name;
        rows_merged := v_rows;
        duration_ms := floor(extract(epoch FROM clock_timestamp() - v_started) * 1000)::BIGINT;
        RETURN NEXT;
    END LOOP;
END;
$cdc$;

-- Drains one table's staging table, committing after every batch: a batch's removal
-- from staging and its effect on the final table commit together, so a merge killed at
-- any moment loses and duplicates nothing, and vacuum can reclaim consumed rows while a
-- backlog drains. Never raises: an error is logged in error_log, leaves the table
-- flagged, and comes back in p_error. Called by merge_table() and run_pending_merges(),
-- which hold the table's advisory lock; CALL it outside a transaction block.
CREATE OR REPLACE PROCEDURE {{management_schema}}."merge_table_batches"(
    p_schema TEXT,
    p_table TEXT,
    p_batch_size INTEGER,
    INOUT rows_consumed BIGINT DEFAULT NULL,
    INOUT rows_upserted BIGINT DEFAULT NULL,
    INOUT rows_deleted BIGINT DEFAULT NULL,
    INOUT rows_stale BIGINT DEFAULT NULL,
    INOUT rows_dead_lettered BIGINT DEFAULT NULL,
    INOUT p_error TEXT DEFAULT NULL
)
LANGUAGE plpgsql
AS $cdc$
DECLARE
    v_function TEXT;
    v_batch INTEGER;
    v_citus BOOLEAN;
    v_started TIMESTAMPTZ := clock_timestamp();
    v_consumed BIGINT;
    v_upserted BIGINT;
    v_deleted BIGINT;
    v_stale BIGINT;
    v_dead BIGINT;
    v_state TEXT;
    v_detail TEXT;
    v_context TEXT;
BEGIN
    rows_consumed := 0; rows_upserted := 0; rows_deleted := 0; rows_stale := 0; rows_dead_lettered := 0;
    p_error := NULL;
    SELECT mc."merge_function", coalesce(p_batch_size, mc."batch_size", 1000000),
           {{management_schema}}."is_citus_table"(to_regclass(format('%I.%I', mc."schema_name", mc."staging_table")))
      INTO v_function, v_batch, v_citus
      FROM {{management_schema}}."merge_control" AS mc
     WHERE mc."schema_name" = p_schema AND mc."table_name" = p_table;
    IF v_function IS NULL THEN
        p_error := format('no merge is registered for %I.%I: apply the table''s -staging.sql file first', p_schema, p_table);
        RETURN;
    END IF;
    -- Cleared in its own transaction: a row staged from now on raises the flag again.
    UPDATE {{management_schema}}."merge_control" AS mc
       SET "pending" = false, "pending_since" = NULL, "last_merge_started_at" = v_started
     WHERE mc."schema_name" = p_schema AND mc."table_name" = p_table;
    -- A Citus table's batch is every staged row of one snapshot: its transactions run at
    -- REPEATABLE READ so that all the batch's statements, on every shard, see the same rows
    -- (the isolation level is set right after COMMIT, before the transaction's first query).
    IF v_citus THEN
        COMMIT;
        SET TRANSACTION ISOLATION LEVEL REPEATABLE READ;
    ELSE
        COMMIT;
    END IF;
    LOOP
        BEGIN
            EXECUTE format('SELECT * FROM %I.%I($1, 1)', p_schema, v_function)
               INTO v_consumed, v_upserted, v_deleted, v_stale, v_dead USING v_batch;
        EXCEPTION WHEN OTHERS THEN
            GET STACKED DIAGNOSTICS v_state = RETURNED_SQLSTATE, p_error = MESSAGE_TEXT,
                                    v_detail = PG_EXCEPTION_DETAIL, v_context = PG_EXCEPTION_CONTEXT;
            INSERT INTO {{management_schema}}."error_log"
                ("schema_name", "table_name", "operation", "sqlstate", "message", "detail", "context")
            VALUES (p_schema, p_table, 'merge', v_state, p_error, v_detail, v_context);
            UPDATE {{management_schema}}."merge_control" AS mc
               SET "last_error_at" = now(), "pending" = true, "pending_since" = coalesce(mc."pending_since", now())
             WHERE mc."schema_name" = p_schema AND mc."table_name" = p_table;
        END;
        IF v_citus AND p_error IS NULL THEN
            COMMIT;
            SET TRANSACTION ISOLATION LEVEL REPEATABLE READ;
        ELSE
            COMMIT;
        END IF;
        EXIT WHEN p_error IS NOT NULL;
        rows_consumed := rows_consumed + v_consumed;
        rows_upserted := rows_upserted + v_upserted;
        rows_deleted := rows_deleted + v_deleted;
        rows_stale := rows_stale + v_stale;
        rows_dead_lettered := rows_dead_lettered + v_dead;
        EXIT WHEN v_consumed < v_batch;
    END LOOP;
    UPDATE {{management_schema}}."merge_control" AS mc
       SET "last_merge_at" = clock_timestamp(), "last_merge_rows" = rows_consumed,
           "last_merge_duration_ms" = floor(extract(epoch FROM clock_timestamp() - v_started) * 1000)::BIGINT
     WHERE mc."schema_name" = p_schema AND mc."table_name" = p_table;
    COMMIT;
END;
$cdc$;

-- Merges one table now, committing per batch (p_batch_size NULL: the table's
-- merge_control.batch_size, else the merge function's default), and returns its true
-- counts; waits while another session merges the table. CALL it outside a transaction
-- block. Raises after logging if a batch fails (the batches before it stay merged).
CREATE OR REPLACE PROCEDURE {{management_schema}}."merge_table"(
    p_schema TEXT,
    p_table TEXT,
    p_batch_size INTEGER DEFAULT NULL,
    INOUT rows_consumed BIGINT DEFAULT NULL,
    INOUT rows_upserted BIGINT DEFAULT NULL,
    INOUT rows_deleted BIGINT DEFAULT NULL,
    INOUT rows_stale BIGINT DEFAULT NULL,
    INOUT rows_dead_lettered BIGINT DEFAULT NULL
)
LANGUAGE plpgsql
AS $cdc$
DECLARE
    v_lock BIGINT := hashtextextended('cdc_merge:' || p_schema || '.' || p_table, 0);
    v_error TEXT;
BEGIN
    PERFORM pg_advisory_lock(v_lock);
    CALL {{management_schema}}."merge_table_batches"(p_schema, p_table, p_batch_size,
        rows_consumed, rows_upserted, rows_deleted, rows_stale, rows_dead_lettered, v_error);
    PERFORM pg_advisory_unlock(v_lock);
    IF v_error IS NOT NULL THEN
        RAISE EXCEPTION 'cdc: merge of %.% failed: %', p_schema, p_table, v_error
            USING HINT = format('see %I.v_recent_errors; batches merged before the failure are committed', '{{management_schema_name}}');
    END IF;
END;
$cdc$;

-- The committing orchestrator that pg_cron and the runtime scheduler CALL: merges every
-- table with pending staged rows (as trigger_pending_merges() decides), each table in its
-- own transactions, one per batch. A table busy in another session is skipped; a table
-- that fails is logged and the others go on. Returns the round's totals.
CREATE OR REPLACE PROCEDURE {{management_schema}}."run_pending_merges"(
    p_batch_window_seconds INTEGER DEFAULT 5,
    p_batch_size INTEGER DEFAULT NULL,
    INOUT tables_merged INTEGER DEFAULT NULL,
    INOUT rows_merged BIGINT DEFAULT NULL,
    INOUT tables_failed INTEGER DEFAULT NULL
)
LANGUAGE plpgsql
AS $cdc$
DECLARE
    r RECORD;
    v_has_rows BOOLEAN;
    v_lock BIGINT;
    v_consumed BIGINT;
    v_upserted BIGINT;
    v_deleted BIGINT;
    v_stale BIGINT;
    v_dead BIGINT;
    v_error TEXT;
BEGIN
    tables_merged := 0; rows_merged := 0; tables_failed := 0;
    FOR r IN
        SELECT mc."schema_name", mc."table_name", mc."staging_table", mc."pending", mc."pending_since"
          FROM {{management_schema}}."merge_control" AS mc
         WHERE mc."enabled"
         ORDER BY mc."schema_name", mc."table_name"
    LOOP
        IF r.pending THEN
            CONTINUE WHEN r.pending_since > clock_timestamp() - make_interval(secs => greatest(p_batch_window_seconds, 0));
        ELSE
            EXECUTE format('SELECT EXISTS (SELECT 1 FROM %I.%I)', r.schema_name, r.staging_table) INTO v_has_rows;
            CONTINUE WHEN NOT v_has_rows;
        END IF;
        v_lock := hashtextextended('cdc_merge:' || r.schema_name || '.' || r.table_name, 0);
        CONTINUE WHEN NOT pg_try_advisory_lock(v_lock);
        CALL {{management_schema}}."merge_table_batches"(r.schema_name, r.table_name, p_batch_size,
            v_consumed, v_upserted, v_deleted, v_stale, v_dead, v_error);
        PERFORM pg_advisory_unlock(v_lock);
        IF v_error IS NULL THEN
            tables_merged := tables_merged + 1;
        ELSE
            tables_failed := tables_failed + 1;
        END IF;
        rows_merged := rows_merged + v_consumed;
        COMMIT;
    END LOOP;
END;
$cdc$;

-- Merges one table now, whatever its flag says, in the caller's transaction.
-- (Earlier versions returned four counts: a function's result type cannot be replaced.)
DO $cdc$
DECLARE
    v_old REGPROCEDURE := to_regprocedure(format('%I.manual_merge(text, text)', '{{management_schema_name}}'));
BEGIN
    IF v_old IS NOT NULL AND pg_get_function_result(v_old) NOT LIKE '%rows_dead_lettered%' THEN
        EXECUTE format('DROP FUNCTION %s', v_old);
    END IF;
END
$cdc$;
CREATE OR REPLACE FUNCTION {{management_schema}}."manual_merge"(p_schema TEXT, p_table TEXT)
RETURNS TABLE ("rows_consumed" BIGINT, "rows_upserted" BIGINT, "rows_deleted" BIGINT, "rows_stale" BIGINT, "rows_dead_lettered" BIGINT)
LANGUAGE plpgsql
AS $cdc$
DECLARE
    v_function TEXT;
BEGIN
    SELECT mc."merge_function" INTO v_function
      FROM {{management_schema}}."merge_control" AS mc
     WHERE mc."schema_name" = p_schema AND mc."table_name" = p_table;
    IF v_function IS NULL THEN
        RAISE EXCEPTION 'cdc: no merge is registered for %.%', p_schema, p_table
            USING HINT = 'apply the table''s -staging.sql file first', ERRCODE = 'undefined_object';
    END IF;
    RETURN QUERY EXECUTE format('SELECT * FROM %I.%I()', p_schema, v_function);
END;
$cdc$;

-- Puts dead letters back into their staging table (all of a table's, or the ids given)
-- after the cause is fixed; the next merge applies them by their positions, so a replay
-- never overwrites a newer row. Returns how many went back.
CREATE OR REPLACE FUNCTION {{management_schema}}."replay_dead_letters"(p_schema TEXT, p_table TEXT, p_ids BIGINT[] DEFAULT NULL)
RETURNS BIGINT
LANGUAGE plpgsql
AS $cdc$
DECLARE
    v_staging TEXT;
    v_n BIGINT;
BEGIN
    SELECT mc."staging_table" INTO v_staging
      FROM {{management_schema}}."merge_control" AS mc
     WHERE mc."schema_name" = p_schema AND mc."table_name" = p_table;
    IF v_staging IS NULL THEN
        RAISE EXCEPTION 'cdc: no merge is registered for %.%', p_schema, p_table
            USING HINT = 'apply the table''s -staging.sql file first', ERRCODE = 'undefined_object';
    END IF;
    EXECUTE format(
        'WITH gone AS (
             DELETE FROM {{management_schema}}."merge_dead_letters" AS d
              WHERE d."schema_name" = $1 AND d."table_name" = $2 AND ($3 IS NULL OR d."id" = ANY ($3))
             RETURNING d."row_data"
         )
         INSERT INTO %1$I.%2$I SELECT (jsonb_populate_record(NULL::%1$I.%2$I, g."row_data")).* FROM gone AS g',
        p_schema, v_staging)
    USING p_schema, p_table, p_ids;
    GET DIAGNOSTICS v_n = ROW_COUNT;
    RETURN v_n;
END;
$cdc$;

-- Rows waiting in the dead letters, oldest first.
CREATE OR REPLACE VIEW {{management_schema}}."v_dead_letters" AS
SELECT d."id", d."failed_at", d."schema_name", d."table_name", d."sqlstate", d."message", d."detail",
       d."kafka_partition", d."kafka_offset", d."source_ts_ms", d."row_data"
  FROM {{management_schema}}."merge_dead_letters" AS d
 ORDER BY d."id";

-- Current merge state per table.
CREATE OR REPLACE VIEW {{management_schema}}."v_merge_status" AS
SELECT mc."schema_name",
       mc."table_name",
       mc."enabled",
       mc."pending",
       mc."pending_since",
       mc."last_merge_at",
       mc."last_merge_rows",
       mc."last_merge_duration_ms",
       mc."last_error_at",
       last_log."max_kafka_offset" AS "last_kafka_offset",
       last_log."max_source_ts_ms" AS "last_source_ts_ms",
       (SELECT count(*) FROM {{management_schema}}."merge_dead_letters" AS d
         WHERE d."schema_name" = mc."schema_name" AND d."table_name" = mc."table_name") AS "dead_letters"
  FROM {{management_schema}}."merge_control" AS mc
  LEFT JOIN LATERAL (
        SELECT l."max_kafka_offset", l."max_source_ts_ms"
          FROM {{management_schema}}."cdc_processing_log" AS l
         WHERE l."schema_name" = mc."schema_name" AND l."table_name" = mc."table_name"
         ORDER BY l."started_at" DESC, l."id" DESC
         LIMIT 1
  ) AS last_log ON true;

-- The last 100 merge errors.
CREATE OR REPLACE VIEW {{management_schema}}."v_recent_errors" AS
SELECT e."id", e."occurred_at", e."schema_name", e."table_name", e."operation",
       e."sqlstate", e."message", e."detail", e."context"
  FROM {{management_schema}}."error_log" AS e
 ORDER BY e."occurred_at" DESC, e."id" DESC
 LIMIT 100;

-- Kafka offsets that no merge consumed, per table and partition: a batch whose lowest
-- offset lies beyond every offset merged before it (in offset order) leaves a gap.
-- (Earlier versions had no partition column: a view's columns cannot be reordered.)
DO $cdc$
BEGIN
    IF to_regclass(format('%I.v_cdc_processing_gaps', '{{management_schema_name}}')) IS NOT NULL
       AND NOT EXISTS (SELECT 1 FROM pg_attribute
                        WHERE attrelid = to_regclass(format('%I.v_cdc_processing_gaps', '{{management_schema_name}}'))
                          AND attname = 'kafka_partition') THEN
        DROP VIEW {{management_schema}}."v_cdc_processing_gaps";
    END IF;
END
$cdc$;
CREATE OR REPLACE VIEW {{management_schema}}."v_cdc_processing_gaps" AS
SELECT g."schema_name", g."table_name", g."kafka_partition", g."previous_max_offset",
       g."min_kafka_offset" AS "next_min_offset",
       g."min_kafka_offset" - g."previous_max_offset" - 1 AS "missing_offsets", l."started_at"
  FROM (
        SELECT o.*,
               max(o."max_kafka_offset") OVER (
                   PARTITION BY o."schema_name", o."table_name", o."kafka_partition"
                   ORDER BY o."min_kafka_offset", o."log_id"
                   ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING) AS "previous_max_offset"
          FROM {{management_schema}}."cdc_processing_offsets" AS o
  ) AS g
  JOIN {{management_schema}}."cdc_processing_log" AS l ON l."id" = g."log_id"
 WHERE g."min_kafka_offset" > g."previous_max_offset" + 1;

-- Time between a change at the source and its merge into the final table.
CREATE OR REPLACE VIEW {{management_schema}}."v_cdc_replication_lag" AS
SELECT DISTINCT ON (l."schema_name", l."table_name")
       l."schema_name", l."table_name", l."finished_at" AS "last_merge_at",
       to_timestamp(l."max_source_ts_ms" / 1000.0) AS "last_source_change_at",
       l."finished_at" - to_timestamp(l."max_source_ts_ms" / 1000.0) AS "merge_lag",
       now() - l."finished_at" AS "since_last_merge"
  FROM {{management_schema}}."cdc_processing_log" AS l
 ORDER BY l."schema_name", l."table_name", l."started_at" DESC, l."id" DESC;

-- Schedule the merge orchestrator with pg_cron where the extension is installed
-- in this database (idempotent: by job name; pg_cron runs the CALL outside a transaction
-- block, so the merge commits per batch). Elsewhere the service's merge scheduler calls it.
DO $cdc$
BEGIN
    IF EXISTS (SELECT 1 FROM pg_extension WHERE extname = 'pg_cron') THEN
        PERFORM cron.schedule('cdc_trigger_pending_merges', '* * * * *',
                              'CALL {{management_schema}}."run_pending_merges"()');
    END IF;
END
$cdc$;
