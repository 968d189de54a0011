{#- The staging file of one table (DESIGN.md §7). `{{ name }}` is quoted as an
    identifier by the SQL escaper; `|lit` makes a string literal; `|safe` marks
    SQL the generator built (types, defaults, converge calls). -#}
{%- macro key_of(alias) -%}
{%- for k in key %}{% if !loop.first %}, {% endif %}{{ alias|safe }}.{{ k }}{% endfor -%}
{%- endmacro -%}
{%- macro key_names() -%}
{%- for k in key %}{% if !loop.first %}, {% endif %}{{ k }}{% endfor -%}
{%- endmacro -%}
{%- macro key_match(a, b) -%}
{%- for k in key %}{% if !loop.first %} AND {% endif %}{{ a|safe }}.{{ k }} = {{ b|safe }}.{{ k }}{% endfor -%}
{%- endmacro -%}
{%- macro position(alias) -%}
(coalesce({{ alias|safe }}."__source_ts_ms", -1), coalesce({{ alias|safe }}."__kafka_offset", -1))
{%- endmacro -%}
-- Staging table: written by the sink connector, emptied by the merge. No NOT NULL:
-- a row the final table would refuse goes to the dead letters, not back to the connector.
CREATE UNLOGGED TABLE IF NOT EXISTS {{ schema }}.{{ staging }} (
{%- for c in staging_columns %}
    {{ c.name }} {{ c.definition|safe }}{% if !loop.last %},{% endif %}
{%- endfor %}
);

{{ staging_converge|safe }}

-- Positions of hard deletes, so that an older event arriving late cannot bring a row back.
CREATE TABLE IF NOT EXISTS {{ schema }}.{{ tombstones }} (
{%- for c in key_columns %}
    {{ c.name }} {{ c.type_sql|safe }} NOT NULL,
{%- endfor %}
    "__source_ts_ms" bigint NOT NULL,
    "__kafka_offset" bigint NOT NULL,
    "__deleted_at" timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY ({% call key_names() %}{% endcall %})
);
CREATE INDEX IF NOT EXISTS {{ tombstones_index }} ON {{ schema }}.{{ tombstones }} ("__deleted_at");

{{ tombstones_converge|safe }}

INSERT INTO {{ management }}."merge_control" ("schema_name", "table_name", "staging_table", "merge_function", "tombstone_table")
VALUES ({{ schema|lit }}, {{ table|lit }}, {{ staging|lit }}, {{ merge_function|lit }}, {{ tombstones|lit }})
ON CONFLICT ("schema_name", "table_name") DO UPDATE
    SET "staging_table" = EXCLUDED."staging_table", "merge_function" = EXCLUDED."merge_function",
        "tombstone_table" = EXCLUDED."tombstone_table";

-- Tombstones kept by earlier versions in one shared JSONB table move to the typed table.
DO {{ tag|safe }}
BEGIN
    IF to_regclass({{ legacy_tombstones|lit }}) IS NOT NULL THEN
        WITH moved AS (
            DELETE FROM {{ management }}."merge_tombstones" AS d
             WHERE d."schema_name" = {{ schema|lit }} AND d."table_name" = {{ table|lit }}
            RETURNING d."pk", d."source_ts_ms", d."kafka_offset", d."deleted_at"
        )
        INSERT INTO {{ schema }}.{{ tombstones }} ({% call key_names() %}{% endcall %}, "__source_ts_ms", "__kafka_offset", "__deleted_at")
        SELECT {% for c in key_columns %}{% if !loop.first %}, {% endif %}(m."pk" ->> {{ loop.index0|safe }})::{{ c.type_sql|safe }}{% endfor %}, m."source_ts_ms", m."kafka_offset", m."deleted_at"
          FROM moved AS m
        ON CONFLICT DO NOTHING;
    END IF;
END
{{ tag|safe }};

DROP FUNCTION IF EXISTS {{ schema }}.{{ merge_function }}(INTEGER);

-- Merges staged rows into {{ schema }}.{{ table }} in batches of p_batch_size rows (all of them, or
-- at most p_max_batches batches) in the caller's transaction, and returns true counts. To commit
-- per batch, CALL {{ management }}."merge_table"({{ schema|lit }}, {{ table|lit }}).
--
-- One batch: take up to p_batch_size staged rows (a TID range scan from where the last batch
-- stopped, so dead rows of earlier batches are not read again) into an analysed temporary table;
-- keep the newest event per key; drop events not newer than the key's tombstone; upsert, delete
-- and tombstone with one index probe per key. Hash and merge joins are off for the function, so
-- no plan can scan the final table or the tombstones whatever the statistics say. A batch that
-- fails is retried key by key: a row that still fails goes to the dead letters with its error.
CREATE OR REPLACE FUNCTION {{ schema }}.{{ merge_function }}(p_batch_size INTEGER DEFAULT {{ default_batch|safe }}, p_max_batches INTEGER DEFAULT NULL)
RETURNS TABLE ("rows_consumed" BIGINT, "rows_upserted" BIGINT, "rows_deleted" BIGINT, "rows_stale" BIGINT, "rows_dead_lettered" BIGINT)
LANGUAGE plpgsql
SET enable_hashjoin = off
SET enable_mergejoin = off
AS {{ tag|safe }}
#variable_conflict use_column
DECLARE
    v_batches INTEGER := 0;
    v_from TID;
    v_last TID;
    v_started TIMESTAMPTZ;
    v_batch BIGINT;
    v_latest BIGINT;
    v_upserted BIGINT;
    v_deleted BIGINT;
    v_stale BIGINT;
    v_dead BIGINT;
    v_n_latest BIGINT;
    v_n_upserted BIGINT;
    v_n_deleted BIGINT;
    v_n_stale BIGINT;
    v_lo BIGINT;
    v_hi BIGINT;
    v_keys BIGINT[];
    v_next INTEGER;
    v_log_id BIGINT;
    v_state TEXT;
    v_message TEXT;
    v_detail TEXT;
    t_consumed BIGINT := 0;
    t_upserted BIGINT := 0;
    t_deleted BIGINT := 0;
    t_stale BIGINT := 0;
    t_dead BIGINT := 0;
BEGIN
    IF p_batch_size IS NULL OR p_batch_size < 1 THEN
        RAISE EXCEPTION 'cdc: p_batch_size must be a positive number, got %', p_batch_size;
    END IF;
    IF to_regclass({{ batch_table_regclass|lit }}) IS NULL THEN
        -- The staging table's live shape, so that whatever the connector could stage fits.
        CREATE TEMPORARY TABLE pg_temp.{{ batch_table }} (LIKE {{ schema }}.{{ staging }}) ON COMMIT DELETE ROWS;
        ALTER TABLE pg_temp.{{ batch_table }}
            ADD COLUMN "__cdc_row" BIGINT NOT NULL,
            ADD COLUMN "__cdc_ctid" TID NOT NULL,
            ADD COLUMN "__cdc_is_delete" BOOLEAN NOT NULL;
        CREATE INDEX ON pg_temp.{{ batch_table }} ("__cdc_row");
    END IF;
    LOOP
        EXIT WHEN v_batches >= p_max_batches;
        v_started := clock_timestamp();
        -- One batch of this table at a time, whoever merges it.
        PERFORM pg_advisory_xact_lock(hashtextextended({{ lock_key|lit }}, 0));
        SELECT mc."scan_from" INTO v_from
          FROM {{ management }}."merge_cursor" AS mc
         WHERE mc."schema_name" = {{ schema|lit }} AND mc."table_name" = {{ table|lit }};
        v_from := coalesce(v_from, '(0,0)');
        TRUNCATE pg_temp.{{ batch_table }};
        -- Exactly the rows this batch merges; rows staged meanwhile wait for the next one.
        WITH consumed AS (
            DELETE FROM {{ schema }}.{{ staging }} AS s
             WHERE s.ctid = ANY (ARRAY(
                   SELECT t.ctid FROM (
                       (SELECT t1.ctid FROM {{ schema }}.{{ staging }} AS t1 WHERE t1.ctid >= v_from LIMIT p_batch_size)
                       UNION ALL
                       (SELECT t2.ctid FROM {{ schema }}.{{ staging }} AS t2 WHERE t2.ctid < v_from LIMIT p_batch_size)
                   ) AS t LIMIT p_batch_size))
            RETURNING s.ctid AS "__cdc_ctid", s.*
        )
        INSERT INTO pg_temp.{{ batch_table }} ("__cdc_row", "__cdc_ctid", "__cdc_is_delete",
{%- for c in staging_columns %} {{ c.name }}{% if !loop.last %},{% endif %}{% endfor %})
        SELECT row_number() OVER (), c."__cdc_ctid",
               upper(coalesce(c."__cdc_operation", c."__op", '')) IN ('D', 'DELETE')
                 OR lower(coalesce(c."__deleted", '')) = 'true',
{%- for c in staging_columns %}
               c.{{ c.name }}{% if !loop.last %},{% endif %}
{%- endfor %}
          FROM consumed AS c;
        GET DIAGNOSTICS v_batch = ROW_COUNT;
        v_batches := v_batches + 1;
        EXIT WHEN v_batch = 0;
        ANALYZE pg_temp.{{ batch_table }};
        -- The next batch starts its scan where this one stopped.
        SELECT max(b."__cdc_ctid") INTO v_last FROM pg_temp.{{ batch_table }} AS b;
        INSERT INTO {{ management }}."merge_cursor" AS mc ("schema_name", "table_name", "scan_from")
        VALUES ({{ schema|lit }}, {{ table|lit }}, v_last)
        ON CONFLICT ("schema_name", "table_name") DO UPDATE SET "scan_from" = EXCLUDED."scan_from";

        -- A row without its key cannot be merged: it goes straight to the dead letters.
        WITH keyless AS (
            DELETE FROM pg_temp.{{ batch_table }} AS b
             WHERE {% for k in key %}{% if !loop.first %} OR {% endif %}b.{{ k }} IS NULL{% endfor %}
            RETURNING b.*
        )
        INSERT INTO {{ management }}."merge_dead_letters"
            ("schema_name", "table_name", "staging_table", "sqlstate", "message", "detail",
             "source_ts_ms", "kafka_offset", "kafka_partition", "row_data")
        SELECT {{ schema|lit }}, {{ table|lit }}, {{ staging|lit }}, '23502',
               {{ keyless_message|lit }}, NULL,
               b."__source_ts_ms", b."__kafka_offset", b."__kafka_partition",
               to_jsonb(b) - '__cdc_row' - '__cdc_ctid' - '__cdc_is_delete'
          FROM keyless AS b;
        GET DIAGNOSTICS v_dead = ROW_COUNT;

        v_latest := 0; v_upserted := 0; v_deleted := 0; v_stale := 0;
        v_lo := 1; v_hi := v_batch; v_keys := NULL; v_next := 1;
        LOOP
            BEGIN
                WITH latest AS MATERIALIZED (
                    -- The newest event per key.
                    SELECT DISTINCT ON ({% call key_of("b") %}{% endcall %}) b.*
                      FROM pg_temp.{{ batch_table }} AS b
                     WHERE b."__cdc_row" BETWEEN v_lo AND v_hi
                     ORDER BY {% call key_of("b") %}{% endcall %}, coalesce(b."__source_ts_ms", -1) DESC, coalesce(b."__kafka_offset", -1) DESC
                ), fresh AS MATERIALIZED (
                    -- Drop events not newer than a remembered delete of the same key.
                    SELECT l.*
                      FROM latest AS l
                     WHERE NOT EXISTS (
                           SELECT 1 FROM {{ schema }}.{{ tombstones }} AS d
                            WHERE {% call key_match("d", "l") %}{% endcall %}
                              AND (d."__source_ts_ms", d."__kafka_offset") >= {% call position("l") %}{% endcall %})
                ), upserted AS (
                    INSERT INTO {{ schema }}.{{ table }} AS f ({% for c in columns %}{% if !loop.first %}, {% endif %}{{ c.name }}{% endfor %})
                    SELECT {% for c in columns %}{% if !loop.first %}, {% endif %}{{ c.select_expr|safe }}{% endfor %}
                      FROM fresh AS l
                     WHERE NOT l."__cdc_is_delete"
                    ON CONFLICT ({% call key_names() %}{% endcall %}) DO UPDATE
                       SET {% for c in non_key_columns %}{% if !loop.first %},
                           {% endif %}{{ c.name }} = EXCLUDED.{{ c.name }}{% endfor %}
                     WHERE {% call position("f") %}{% endcall %} < {% call position("EXCLUDED") %}{% endcall %}
                    RETURNING 1
                ), deleted AS (
{%- if soft_delete %}
                    UPDATE {{ schema }}.{{ table }} AS f
                       SET "__is_deleted" = true, "__cdc_operation" = coalesce(l."__cdc_operation", l."__op"),
                           "__source_ts_ms" = l."__source_ts_ms", "__kafka_offset" = l."__kafka_offset",
                           "__source" = coalesce(l."__source", f."__source"), "__sync_timestamp" = now()
                      FROM fresh AS l
                     WHERE l."__cdc_is_delete" AND {% call key_match("f", "l") %}{% endcall %} AND {% call position("f") %}{% endcall %} < {% call position("l") %}{% endcall %}
                    RETURNING 1
{%- else %}
                    DELETE FROM {{ schema }}.{{ table }} AS f
                     USING fresh AS l
                     WHERE l."__cdc_is_delete" AND {% call key_match("f", "l") %}{% endcall %} AND {% call position("f") %}{% endcall %} < {% call position("l") %}{% endcall %}
                    RETURNING 1
{%- endif %}
                ), stale_deletes AS (
                    SELECT 1
                      FROM fresh AS l
                      JOIN {{ schema }}.{{ table }} AS f ON {% call key_match("f", "l") %}{% endcall %}
                     WHERE l."__cdc_is_delete" AND {% call position("f") %}{% endcall %} >= {% call position("l") %}{% endcall %}
                ), tombstoned AS (
                    INSERT INTO {{ schema }}.{{ tombstones }} AS d ({% call key_names() %}{% endcall %}, "__source_ts_ms", "__kafka_offset")
                    SELECT {% call key_of("l") %}{% endcall %}, coalesce(l."__source_ts_ms", -1), coalesce(l."__kafka_offset", -1)
                      FROM fresh AS l
                     WHERE l."__cdc_is_delete"
                    ON CONFLICT ({% call key_names() %}{% endcall %}) DO UPDATE
                       SET "__source_ts_ms" = EXCLUDED."__source_ts_ms", "__kafka_offset" = EXCLUDED."__kafka_offset", "__deleted_at" = now()
                     WHERE (d."__source_ts_ms", d."__kafka_offset") < (EXCLUDED."__source_ts_ms", EXCLUDED."__kafka_offset")
                    RETURNING 1
                )
                SELECT (SELECT count(*) FROM latest),
                       (SELECT count(*) FROM upserted),
                       (SELECT count(*) FROM deleted),
                       (SELECT count(*) FROM latest) - (SELECT count(*) FROM fresh)
                         + (SELECT count(*) FROM fresh WHERE NOT fresh."__cdc_is_delete") - (SELECT count(*) FROM upserted)
                         + (SELECT count(*) FROM stale_deletes)
                         + 0 * (SELECT count(*) FROM tombstoned)
                  INTO v_n_latest, v_n_upserted, v_n_deleted, v_n_stale;
                v_latest := v_latest + v_n_latest;
                v_upserted := v_upserted + v_n_upserted;
                v_deleted := v_deleted + v_n_deleted;
                v_stale := v_stale + v_n_stale;
            EXCEPTION WHEN OTHERS THEN
                GET STACKED DIAGNOSTICS v_state = RETURNED_SQLSTATE, v_message = MESSAGE_TEXT, v_detail = PG_EXCEPTION_DETAIL;
                -- Only a row's data can make it a dead letter (classes 22 and 23: a failed
                -- cast, a value that does not fit, a NULL key, a constraint); anything else
                -- (a lock or statement timeout, a cancel) fails the batch, which stays staged.
                IF left(v_state, 2) NOT IN ('22', '23') THEN
                    RAISE;
                END IF;
                IF v_keys IS NULL THEN
                    -- The batch failed as a whole: apply the newest event of each key on its own.
                    SELECT array_agg(k."__cdc_row" ORDER BY k."__cdc_row") INTO v_keys
                      FROM (SELECT DISTINCT ON ({% call key_of("b") %}{% endcall %}) b."__cdc_row"
                              FROM pg_temp.{{ batch_table }} AS b
                             ORDER BY {% call key_of("b") %}{% endcall %}, coalesce(b."__source_ts_ms", -1) DESC, coalesce(b."__kafka_offset", -1) DESC) AS k;
                ELSE
                    INSERT INTO {{ management }}."merge_dead_letters"
                        ("schema_name", "table_name", "staging_table", "sqlstate", "message", "detail",
                         "source_ts_ms", "kafka_offset", "kafka_partition", "row_data")
                    SELECT {{ schema|lit }}, {{ table|lit }}, {{ staging|lit }}, v_state, v_message, v_detail,
                           b."__source_ts_ms", b."__kafka_offset", b."__kafka_partition",
                           to_jsonb(b) - '__cdc_row' - '__cdc_ctid' - '__cdc_is_delete'
                      FROM pg_temp.{{ batch_table }} AS b
                     WHERE b."__cdc_row" = v_lo;
                    v_dead := v_dead + 1;
                END IF;
            END;
            EXIT WHEN v_keys IS NULL OR v_next > cardinality(v_keys);
            v_lo := v_keys[v_next];
            v_hi := v_lo;
            v_next := v_next + 1;
        END LOOP;

        INSERT INTO {{ management }}."cdc_processing_log"
            ("schema_name", "table_name", "started_at", "finished_at", "duration_ms",
             "rows_consumed", "rows_superseded", "rows_upserted", "rows_deleted", "rows_stale", "rows_dead_lettered",
             "min_kafka_offset", "max_kafka_offset", "min_source_ts_ms", "max_source_ts_ms", "max_kafka_timestamp")
        SELECT {{ schema|lit }}, {{ table|lit }}, v_started, clock_timestamp(),
               floor(extract(epoch FROM clock_timestamp() - v_started) * 1000)::BIGINT,
               v_batch, v_batch - v_latest - v_dead, v_upserted, v_deleted, v_stale, v_dead,
               min(b."__kafka_offset"), max(b."__kafka_offset"), min(b."__source_ts_ms"), max(b."__source_ts_ms"),
               max(b."__kafka_timestamp")
          FROM pg_temp.{{ batch_table }} AS b
        RETURNING "id" INTO v_log_id;
        INSERT INTO {{ management }}."cdc_processing_offsets"
            ("log_id", "schema_name", "table_name", "kafka_partition", "min_kafka_offset", "max_kafka_offset", "events")
        SELECT v_log_id, {{ schema|lit }}, {{ table|lit }}, b."__kafka_partition",
               min(b."__kafka_offset"), max(b."__kafka_offset"), count(*)
          FROM pg_temp.{{ batch_table }} AS b
         WHERE b."__kafka_offset" IS NOT NULL
         GROUP BY b."__kafka_partition";

        t_consumed := t_consumed + v_batch;
        t_upserted := t_upserted + v_upserted;
        t_deleted := t_deleted + v_deleted;
        t_stale := t_stale + v_stale;
        t_dead := t_dead + v_dead;
        EXIT WHEN v_batch < p_batch_size;
    END LOOP;
    TRUNCATE pg_temp.{{ batch_table }};
    RETURN QUERY SELECT t_consumed, t_upserted, t_deleted, t_stale, t_dead;
END;
{{ tag|safe }};

CREATE OR REPLACE TRIGGER {{ mark_trigger }} AFTER INSERT ON {{ schema }}.{{ staging }}
    FOR EACH STATEMENT EXECUTE FUNCTION {{ management }}."mark_table_for_merge"({{ table|lit }});
