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
{#- One application of merge events to the final table and the tombstones. mode "batch": the
    newest event per key among the batch's rows (`v_ctids`); mode "one": the single staged row
    `v_one`. Adds the counts to v_latest, v_upserted, v_deleted and v_stale. -#}
{%- macro apply(mode) -%}
WITH {% if mode == "batch" %}picked AS MATERIALIZED (
                -- Narrow: the key and position of every event of the batch (the rows of its one
                -- or two ctid ranges, read by TID range scans).
                SELECT s.ctid AS "__cdc_ctid", {% call key_of("s") %}{% endcall %}, s."__source_ts_ms", s."__kafka_offset",
                       s."__kafka_partition", s."__kafka_timestamp"
                  FROM {{ schema }}.{{ staging }} AS s
                 WHERE s.ctid >= v_from AND s.ctid <= v_upto
                UNION ALL
                SELECT s.ctid, {% call key_of("s") %}{% endcall %}, s."__source_ts_ms", s."__kafka_offset",
                       s."__kafka_partition", s."__kafka_timestamp"
                  FROM {{ schema }}.{{ staging }} AS s
                 WHERE s.ctid < v_from AND s.ctid <= v_wrap_upto
            ), consumed AS (
                -- The batch leaves staging in the statement (and transaction) that applies it.
                DELETE FROM {{ schema }}.{{ staging }} AS s
                 WHERE s.ctid >= v_from AND s.ctid <= v_upto
                RETURNING 1
            ), consumed_wrapped AS (
                DELETE FROM {{ schema }}.{{ staging }} AS s
                 WHERE s.ctid < v_from AND s.ctid <= v_wrap_upto
                RETURNING 1
            ), per_partition AS (
                SELECT p."__kafka_partition" AS part, min(p."__kafka_offset") AS lo, max(p."__kafka_offset") AS hi, count(*) AS n
                  FROM picked AS p
                 WHERE p."__kafka_offset" IS NOT NULL
                 GROUP BY p."__kafka_partition"
            ), winners AS MATERIALIZED (
                -- The newest event per key.
                SELECT DISTINCT ON ({% call key_of("p") %}{% endcall %}) p."__cdc_ctid"
                  FROM picked AS p
                 ORDER BY {% call key_of("p") %}{% endcall %}, coalesce(p."__source_ts_ms", -1) DESC, coalesce(p."__kafka_offset", -1) DESC
            ), {% endif %}latest AS MATERIALIZED (
                SELECT s.*, (upper(coalesce(s."__cdc_operation", s."__op", '')) IN ('D', 'DELETE')
                             OR lower(coalesce(s."__deleted", '')) = 'true') AS "__cdc_is_delete"
                  FROM {{ schema }}.{{ staging }} AS s
                 WHERE s.ctid = {% if mode == "batch" %}ANY (ARRAY(SELECT w."__cdc_ctid" FROM winners AS w)){% else %}v_one{% endif %}
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
                     + 0 * (SELECT count(*) FROM tombstoned){% if mode == "batch" %},
                   (SELECT count(*) FROM consumed) + (SELECT count(*) FROM consumed_wrapped),
                   {% call batch_stats("picked") %}{% endcall %}{% endif %}
              INTO v_n_latest, v_n_upserted, v_n_deleted, v_n_stale{% if mode == "batch" %},
                   v_batch, {% call batch_stats_into() %}{% endcall %}{% endif %};
            v_latest := v_latest + v_n_latest;
            v_upserted := v_upserted + v_n_upserted;
            v_deleted := v_deleted + v_n_deleted;
            v_stale := v_stale + v_n_stale;
{%- endmacro -%}
{#- Citus (DESIGN.md §12): the newest staged event per key, as a subquery. `filter` is empty for
    the whole batch, or a WHERE clause naming one key (`v_key`). -#}
{%- macro citus_latest(filter) -%}
(SELECT DISTINCT ON ({% call key_of("s") %}{% endcall %}) s.*,
                       (upper(coalesce(s."__cdc_operation", s."__op", '')) IN ('D', 'DELETE')
                        OR lower(coalesce(s."__deleted", '')) = 'true') AS "__cdc_is_delete"
                  FROM {{ schema }}.{{ staging }} AS s{% if filter != "" %}
                 WHERE {{ filter|safe }}{% endif %}
                 ORDER BY {% call key_of("s") %}{% endcall %}, coalesce(s."__source_ts_ms", -1) DESC, coalesce(s."__kafka_offset", -1) DESC)
{%- endmacro -%}
{%- macro tombstone_newer(alias) -%}
EXISTS (SELECT 1 FROM {{ schema }}.{{ tombstones }} AS d
                        WHERE {% call key_match("d", alias) %}{% endcall %}
                          AND (d."__source_ts_ms", d."__kafka_offset") >= {% call position(alias) %}{% endcall %})
{%- endmacro -%}
{#- Citus: one application of the batch (or of one key's events) as separate statements, each
    between co-located tables joined on the key (so on the distribution column): each runs on
    the shards. True counts come from RETURNING (a command tag can count rows sent, not rows
    changed). Adds the counts to v_latest, v_upserted, v_deleted and v_stale. -#}
{%- macro apply_citus(filter) -%}
-- What becomes of each key's newest event, each probe made once per key: 1 older than
            -- the key's tombstone, 2 an upsert to apply, 3 a delete older than the final row.
            SELECT coalesce(sum(g.n), 0), coalesce(sum(g.n) FILTER (WHERE g.c = 1), 0),
                   coalesce(sum(g.n) FILTER (WHERE g.c = 2), 0), coalesce(sum(g.n) FILTER (WHERE g.c = 3), 0)
              INTO v_n_latest, v_n_blocked, v_n_fresh_upserts, v_n_stale_deletes
              FROM (SELECT l.c, count(*) AS n
                      FROM (SELECT CASE WHEN {% call tombstone_newer("l0") %}{% endcall %} THEN 1
                                        WHEN NOT l0."__cdc_is_delete" THEN 2
                                        WHEN EXISTS (SELECT 1 FROM {{ schema }}.{{ table }} AS f
                                                      WHERE {% call key_match("f", "l0") %}{% endcall %} AND {% call position("f") %}{% endcall %} >= {% call position("l0") %}{% endcall %}) THEN 3
                                        ELSE 0 END AS c
                              FROM {% call citus_latest(filter) %}{% endcall %} AS l0) AS l
                     GROUP BY l.c) AS g;
            WITH upserted AS (
                INSERT INTO {{ schema }}.{{ table }} AS f ({% for c in columns %}{% if !loop.first %}, {% endif %}{{ c.name }}{% endfor %})
                SELECT {% for c in citus_columns %}{% if !loop.first %}, {% endif %}{{ c.select_expr|safe }}{% endfor %}
                  FROM {% call citus_latest(filter) %}{% endcall %} AS l
                 WHERE NOT l."__cdc_is_delete" AND NOT {% call tombstone_newer("l") %}{% endcall %}
                ON CONFLICT ({% call key_names() %}{% endcall %}) DO UPDATE
                   SET {% for c in non_key_columns %}{% if !loop.first %},
                       {% endif %}{{ c.name }} = EXCLUDED.{{ c.name }}{% endfor %}
                 WHERE {% call position("f") %}{% endcall %} < {% call position("EXCLUDED") %}{% endcall %}
                RETURNING 1
            )
            SELECT count(*) INTO v_n_upserted FROM upserted;
            WITH deleted AS (
{%- if soft_delete %}
                UPDATE {{ schema }}.{{ table }} AS f
                   SET "__is_deleted" = true, "__cdc_operation" = coalesce(l."__cdc_operation", l."__op"),
                       "__source_ts_ms" = l."__source_ts_ms", "__kafka_offset" = l."__kafka_offset",
                       "__source" = coalesce(l."__source", f."__source"), "__sync_timestamp" = v_now
                  FROM {% call citus_latest(filter) %}{% endcall %} AS l
                 WHERE l."__cdc_is_delete" AND {% call key_match("f", "l") %}{% endcall %} AND {% call position("f") %}{% endcall %} < {% call position("l") %}{% endcall %}
                   AND NOT {% call tombstone_newer("l") %}{% endcall %}
                RETURNING 1
{%- else %}
                DELETE FROM {{ schema }}.{{ table }} AS f
                 USING {% call citus_latest(filter) %}{% endcall %} AS l
                 WHERE l."__cdc_is_delete" AND {% call key_match("f", "l") %}{% endcall %} AND {% call position("f") %}{% endcall %} < {% call position("l") %}{% endcall %}
                   AND NOT {% call tombstone_newer("l") %}{% endcall %}
                RETURNING 1
{%- endif %}
            )
            SELECT count(*) INTO v_n_deleted FROM deleted;
            INSERT INTO {{ schema }}.{{ tombstones }} AS d ({% call key_names() %}{% endcall %}, "__source_ts_ms", "__kafka_offset")
            SELECT {% call key_of("l") %}{% endcall %}, coalesce(l."__source_ts_ms", -1), coalesce(l."__kafka_offset", -1)
              FROM {% call citus_latest(filter) %}{% endcall %} AS l
             WHERE l."__cdc_is_delete"
            ON CONFLICT ({% call key_names() %}{% endcall %}) DO UPDATE
               SET "__source_ts_ms" = EXCLUDED."__source_ts_ms", "__kafka_offset" = EXCLUDED."__kafka_offset", "__deleted_at" = v_now
             WHERE (d."__source_ts_ms", d."__kafka_offset") < (EXCLUDED."__source_ts_ms", EXCLUDED."__kafka_offset");
            v_latest := v_latest + v_n_latest;
            v_upserted := v_upserted + v_n_upserted;
            v_deleted := v_deleted + v_n_deleted;
            v_stale := v_stale + v_n_blocked + (v_n_fresh_upserts - v_n_upserted) + v_n_stale_deletes;
{%- endmacro -%}
{#- The processing-log figures of a batch, from `source` (rows with the Kafka columns) and the
    CTE per_partition. -#}
{%- macro batch_stats(source) -%}
st.lo, st.hi, st.ts_lo, st.ts_hi, st.kafka_ts,
                   (SELECT array_agg(pp.part ORDER BY pp.part) FROM per_partition AS pp),
                   (SELECT array_agg(pp.lo ORDER BY pp.part) FROM per_partition AS pp),
                   (SELECT array_agg(pp.hi ORDER BY pp.part) FROM per_partition AS pp),
                   (SELECT array_agg(pp.n ORDER BY pp.part) FROM per_partition AS pp)
              FROM (SELECT min(b."__kafka_offset") AS lo, max(b."__kafka_offset") AS hi,
                           min(b."__source_ts_ms") AS ts_lo, max(b."__source_ts_ms") AS ts_hi,
                           max(b."__kafka_timestamp") AS kafka_ts
                      FROM {{ source|safe }} AS b) AS st
{%- endmacro -%}
{%- macro batch_stats_into() -%}
v_min_offset, v_max_offset, v_min_ts, v_max_ts, v_max_kafka_ts,
                   v_partitions, v_partition_min, v_partition_max, v_partition_events
{%- endmacro -%}
{#- Dead-letters the staged rows matching `condition` with v_state, v_message and v_detail. -#}
{%- macro dead_letter(condition) -%}
INSERT INTO {{ management }}."merge_dead_letters"
                ("schema_name", "table_name", "staging_table", "sqlstate", "message", "detail",
                 "source_ts_ms", "kafka_offset", "kafka_partition", "row_data")
            SELECT {{ schema|lit }}, {{ table|lit }}, {{ staging|lit }}, v_state, v_message, v_detail,
                   s."__source_ts_ms", s."__kafka_offset", s."__kafka_partition", to_jsonb(s)
              FROM {{ schema }}.{{ staging }} AS s
             WHERE {{ condition|safe }};
{%- endmacro -%}
{% if citus_table -%}
-- Citus: this file's transaction creates functions after changing distributed tables, which
-- Citus allows only over one connection per worker.
DO {{ tag|safe }}
BEGIN
    IF {{ citus_present|safe }} THEN
        PERFORM set_config('citus.multi_shard_modify_mode', 'sequential', true);
    END IF;
END
{{ tag|safe }};

{% endif -%}
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
               -- Only keys of the current shape: a tombstone of an older key (before the tenant
               -- joined it, say) stays where it is rather than failing the cast.
               AND jsonb_typeof(d."pk") = 'array' AND jsonb_array_length(d."pk") = {{ key.len()|safe }}
            RETURNING d."pk", d."source_ts_ms", d."kafka_offset", d."deleted_at"
        )
        INSERT INTO {{ schema }}.{{ tombstones }} ({% call key_names() %}{% endcall %}, "__source_ts_ms", "__kafka_offset", "__deleted_at")
        SELECT {% for c in key_columns %}{% if !loop.first %}, {% endif %}(m."pk" ->> {{ loop.index0|safe }})::{{ c.type_sql|safe }}{% endfor %}, m."source_ts_ms", m."kafka_offset", m."deleted_at"
          FROM moved AS m
        ON CONFLICT DO NOTHING;
    END IF;
END
{{ tag|safe }};
{%- if citus_table %}

{{ distribute|safe }}
{%- endif %}

DROP FUNCTION IF EXISTS {{ schema }}.{{ merge_function }}(INTEGER);

-- Merges staged rows into {{ schema }}.{{ table }} in batches of p_batch_size rows (all of them, or
-- at most p_max_batches batches) in the caller's transaction, and returns true counts. To commit
-- per batch, CALL {{ management }}."merge_table"({{ schema|lit }}, {{ table|lit }}).
--
-- One batch: take up to p_batch_size staged rows by a TID range scan from where the last batch
-- stopped (dead rows of earlier batches are not read again); sort only their keys and positions
-- to find the newest event per key; drop events not newer than the key's tombstone; upsert,
-- delete and tombstone with one index probe per key. Hash and merge joins are off for the
-- function, so no plan can scan the final table or the tombstones whatever the statistics say.
-- A batch that fails on a row's data is retried key by key: a row that still fails goes to the
-- dead letters with its error; the batch leaves staging in the transaction that applied it.
CREATE OR REPLACE FUNCTION {{ schema }}.{{ merge_function }}(p_batch_size INTEGER DEFAULT {{ default_batch|safe }}, p_max_batches INTEGER DEFAULT NULL)
RETURNS TABLE ("rows_consumed" BIGINT, "rows_upserted" BIGINT, "rows_deleted" BIGINT, "rows_stale" BIGINT, "rows_dead_lettered" BIGINT)
LANGUAGE plpgsql
SET enable_hashjoin = off
SET enable_mergejoin = off
SET work_mem = '256MB'
AS {{ tag|safe }}
#variable_conflict use_column
DECLARE
    v_batches INTEGER := 0;
    v_from TID;
    v_upto TID;
    v_wrap_upto TID;
    v_count BIGINT;
    v_wrap_count BIGINT;
    v_ctids TID[];
    v_keys TID[];
    v_one TID;
    v_slow BOOLEAN;
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
    v_min_offset BIGINT;
    v_max_offset BIGINT;
    v_min_ts BIGINT;
    v_max_ts BIGINT;
    v_max_kafka_ts TIMESTAMPTZ;
    v_partitions INTEGER[];
    v_partition_min BIGINT[];
    v_partition_max BIGINT[];
    v_partition_events BIGINT[];
    v_log_id BIGINT;
    v_citus BOOLEAN;
    v_now TIMESTAMPTZ;
    v_key JSONB;
    v_key_list JSONB[];
    v_n_blocked BIGINT;
    v_n_fresh_upserts BIGINT;
    v_n_stale_deletes BIGINT;
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
    v_citus := {{ management }}."is_citus_table"({{ staging_regclass|lit }}::regclass);
    LOOP
        EXIT WHEN v_batches >= p_max_batches;
        v_started := clock_timestamp();
        -- One batch of this table at a time, whoever merges it.
        PERFORM pg_advisory_xact_lock(hashtextextended({{ lock_key|lit }}, 0));
        IF v_citus THEN
            -- Citus: a ctid names a row on one shard only, so the batch is every staged row this
            -- transaction sees. merge_table() runs it at REPEATABLE READ: all the statements
            -- below, on every shard, read one snapshot, and rows staged meanwhile wait. In a READ
            -- COMMITTED transaction the staging table is locked against new rows until commit.
            IF current_setting('transaction_isolation') = 'read committed' THEN
                LOCK TABLE {{ schema }}.{{ staging }} IN SHARE MODE;
            END IF;
            -- The workers plan their shards' statements with index probes too.
            SET LOCAL citus.propagate_set_commands = 'local';
            SET LOCAL enable_hashjoin = off;
            SET LOCAL enable_mergejoin = off;
            v_now := now();
            SELECT count(*), min(b."__kafka_offset"), max(b."__kafka_offset"), min(b."__source_ts_ms"), max(b."__source_ts_ms"), max(b."__kafka_timestamp")
              INTO v_batch, v_min_offset, v_max_offset, v_min_ts, v_max_ts, v_max_kafka_ts
              FROM {{ schema }}.{{ staging }} AS b;
            v_count := v_batch;
            v_batches := v_batches + 1;
            EXIT WHEN v_count = 0;
            SELECT array_agg(pp.part ORDER BY pp.part), array_agg(pp.lo ORDER BY pp.part),
                   array_agg(pp.hi ORDER BY pp.part), array_agg(pp.n ORDER BY pp.part)
              INTO v_partitions, v_partition_min, v_partition_max, v_partition_events
              FROM (SELECT b."__kafka_partition" AS part, min(b."__kafka_offset") AS lo, max(b."__kafka_offset") AS hi, count(*) AS n
                      FROM {{ schema }}.{{ staging }} AS b
                     WHERE b."__kafka_offset" IS NOT NULL
                     GROUP BY b."__kafka_partition") AS pp;
            v_latest := 0; v_upserted := 0; v_deleted := 0; v_stale := 0; v_dead := 0; v_slow := false;
            BEGIN
                {% call apply_citus("") %}{% endcall %}
            EXCEPTION WHEN OTHERS THEN
                GET STACKED DIAGNOSTICS v_state = RETURNED_SQLSTATE, v_message = MESSAGE_TEXT, v_detail = PG_EXCEPTION_DETAIL;
                IF left(v_state, 2) NOT IN ('22', '23') THEN
                    RAISE;
                END IF;
                v_slow := true;
            END;
            IF v_slow THEN
                -- As below: keyless rows to the dead letters, then each key on its own.
                v_latest := 0; v_upserted := 0; v_deleted := 0; v_stale := 0;
                v_state := '23502';
                v_message := {{ keyless_message|lit }};
                v_detail := NULL;
                {% call dead_letter(keyless_condition) %}{% endcall %}
                GET DIAGNOSTICS v_dead = ROW_COUNT;
                SELECT array_agg(jsonb_build_array({% call key_of("k") %}{% endcall %}))
                  INTO v_key_list
                  FROM (SELECT DISTINCT {% call key_of("s") %}{% endcall %}
                          FROM {{ schema }}.{{ staging }} AS s
                         WHERE NOT ({{ keyless_condition|safe }})) AS k;
                FOREACH v_key IN ARRAY coalesce(v_key_list, '{}') LOOP
                    BEGIN
                        {% call apply_citus(citus_key_filter) %}{% endcall %}
                    EXCEPTION WHEN OTHERS THEN
                        GET STACKED DIAGNOSTICS v_state = RETURNED_SQLSTATE, v_message = MESSAGE_TEXT, v_detail = PG_EXCEPTION_DETAIL;
                        IF left(v_state, 2) NOT IN ('22', '23') THEN
                            RAISE;
                        END IF;
                        INSERT INTO {{ management }}."merge_dead_letters"
                            ("schema_name", "table_name", "staging_table", "sqlstate", "message", "detail",
                             "source_ts_ms", "kafka_offset", "kafka_partition", "row_data")
                        SELECT {{ schema|lit }}, {{ table|lit }}, {{ staging|lit }}, v_state, v_message, v_detail,
                               s."__source_ts_ms", s."__kafka_offset", s."__kafka_partition", to_jsonb(s)
                          FROM {{ schema }}.{{ staging }} AS s
                         WHERE {{ citus_key_filter|safe }}
                         ORDER BY coalesce(s."__source_ts_ms", -1) DESC, coalesce(s."__kafka_offset", -1) DESC
                         LIMIT 1;
                        v_dead := v_dead + 1;
                    END;
                END LOOP;
            END IF;
            -- The batch leaves staging in the transaction that applied it.
            DELETE FROM {{ schema }}.{{ staging }};
        ELSE
            -- The cursor holds only for the staging table's current storage: a TRUNCATE (or
            -- VACUUM FULL) gives it a new file whose rows start again at the first block.
            SELECT mc."scan_from" INTO v_from
              FROM {{ management }}."merge_cursor" AS mc
             WHERE mc."schema_name" = {{ schema|lit }} AND mc."table_name" = {{ table|lit }}
               AND mc."relfilenode" = pg_relation_filenode({{ staging_regclass|lit }}::regclass);
            v_from := coalesce(v_from, '(0,0)');
            -- Exactly the rows this batch merges, by their place in the staging table: up to
            -- p_batch_size rows from where the last batch stopped (TID range scans, so the dead rows
            -- of earlier batches are not read again), then from the start. The batch is the rows of
            -- these ctid ranges that the applying statement sees; rows staged later wait.
            SELECT count(*), max(t.c) INTO v_count, v_upto
              FROM (SELECT t1.ctid AS c FROM {{ schema }}.{{ staging }} AS t1 WHERE t1.ctid >= v_from LIMIT p_batch_size) AS t;
            v_wrap_upto := NULL;
            IF v_count < p_batch_size AND v_from > '(0,0)' THEN
                SELECT count(*), max(t.c) INTO v_wrap_count, v_wrap_upto
                  FROM (SELECT t2.ctid AS c FROM {{ schema }}.{{ staging }} AS t2 WHERE t2.ctid < v_from LIMIT p_batch_size - v_count) AS t;
                v_count := v_count + v_wrap_count;
            END IF;
            v_batches := v_batches + 1;
            EXIT WHEN v_count = 0;
            INSERT INTO {{ management }}."merge_cursor" AS mc ("schema_name", "table_name", "scan_from", "relfilenode")
            VALUES ({{ schema|lit }}, {{ table|lit }}, coalesce(v_wrap_upto, v_upto),
                    pg_relation_filenode({{ staging_regclass|lit }}::regclass))
            ON CONFLICT ("schema_name", "table_name") DO UPDATE
                SET "scan_from" = EXCLUDED."scan_from", "relfilenode" = EXCLUDED."relfilenode";

            v_latest := 0; v_upserted := 0; v_deleted := 0; v_stale := 0; v_dead := 0; v_slow := false;
            BEGIN
                {% call apply("batch") %}{% endcall %}
            EXCEPTION WHEN OTHERS THEN
                GET STACKED DIAGNOSTICS v_state = RETURNED_SQLSTATE, v_message = MESSAGE_TEXT, v_detail = PG_EXCEPTION_DETAIL;
                -- Only a row's data can make it a dead letter (classes 22 and 23: a failed cast, a
                -- value that does not fit, a NULL key, a constraint); anything else (a lock or
                -- statement timeout, a cancel) fails the batch, which stays staged.
                IF left(v_state, 2) NOT IN ('22', '23') THEN
                    RAISE;
                END IF;
                v_slow := true;
            END;
            IF v_slow THEN
                -- The batch failed on some row's data: rows without their key go to the dead
                -- letters, then the newest event of every key is applied on its own.
                v_latest := 0; v_upserted := 0; v_deleted := 0; v_stale := 0;
                SELECT array_agg(t.c) INTO v_ctids
                  FROM ((SELECT t1.ctid AS c FROM {{ schema }}.{{ staging }} AS t1 WHERE t1.ctid >= v_from AND t1.ctid <= v_upto)
                        UNION ALL
                        (SELECT t2.ctid FROM {{ schema }}.{{ staging }} AS t2 WHERE t2.ctid < v_from AND t2.ctid <= v_wrap_upto)) AS t;
                v_state := '23502';
                v_message := {{ keyless_message|lit }};
                v_detail := NULL;
                {% call dead_letter(keyless_condition) %}{% endcall %}
                GET DIAGNOSTICS v_dead = ROW_COUNT;
                SELECT array_agg(k.c) INTO v_keys
                  FROM (SELECT DISTINCT ON ({% call key_of("s") %}{% endcall %}) s.ctid AS c
                          FROM {{ schema }}.{{ staging }} AS s
                         WHERE s.ctid = ANY (v_ctids) AND NOT ({{ keyless_condition|safe }})
                         ORDER BY {% call key_of("s") %}{% endcall %}, coalesce(s."__source_ts_ms", -1) DESC, coalesce(s."__kafka_offset", -1) DESC) AS k;
                FOREACH v_one IN ARRAY coalesce(v_keys, '{}') LOOP
                    BEGIN
                        {% call apply("one") %}{% endcall %}
                    EXCEPTION WHEN OTHERS THEN
                        GET STACKED DIAGNOSTICS v_state = RETURNED_SQLSTATE, v_message = MESSAGE_TEXT, v_detail = PG_EXCEPTION_DETAIL;
                        IF left(v_state, 2) NOT IN ('22', '23') THEN
                            RAISE;
                        END IF;
                        {% call dead_letter("s.ctid = v_one") %}{% endcall %}
                        v_dead := v_dead + 1;
                    END;
                END LOOP;

                -- The batch leaves staging in the transaction that applied it.
                WITH gone AS (
                    DELETE FROM {{ schema }}.{{ staging }} AS s
                     WHERE s.ctid = ANY (v_ctids)
                    RETURNING s."__kafka_partition", s."__kafka_offset", s."__source_ts_ms", s."__kafka_timestamp"
                ), per_partition AS (
                    SELECT g."__kafka_partition" AS part, min(g."__kafka_offset") AS lo, max(g."__kafka_offset") AS hi, count(*) AS n
                      FROM gone AS g
                     WHERE g."__kafka_offset" IS NOT NULL
                     GROUP BY g."__kafka_partition"
                )
                SELECT (SELECT count(*) FROM gone), {% call batch_stats("gone") %}{% endcall %}
                  INTO v_batch, {% call batch_stats_into() %}{% endcall %};
            END IF;

        END IF;
        INSERT INTO {{ management }}."cdc_processing_log"
            ("schema_name", "table_name", "started_at", "finished_at", "duration_ms",
             "rows_consumed", "rows_superseded", "rows_upserted", "rows_deleted", "rows_stale", "rows_dead_lettered",
             "min_kafka_offset", "max_kafka_offset", "min_source_ts_ms", "max_source_ts_ms", "max_kafka_timestamp")
        VALUES ({{ schema|lit }}, {{ table|lit }}, v_started, clock_timestamp(),
                floor(extract(epoch FROM clock_timestamp() - v_started) * 1000)::BIGINT,
                v_batch, v_batch - v_latest - v_dead, v_upserted, v_deleted, v_stale, v_dead,
                v_min_offset, v_max_offset, v_min_ts, v_max_ts, v_max_kafka_ts)
        RETURNING "id" INTO v_log_id;
        INSERT INTO {{ management }}."cdc_processing_offsets"
            ("log_id", "schema_name", "table_name", "kafka_partition", "min_kafka_offset", "max_kafka_offset", "events")
        SELECT v_log_id, {{ schema|lit }}, {{ table|lit }}, p.part, p.lo, p.hi, p.n
          FROM unnest(v_partitions, v_partition_min, v_partition_max, v_partition_events) AS p(part, lo, hi, n);

        t_consumed := t_consumed + v_batch;
        t_upserted := t_upserted + v_upserted;
        t_deleted := t_deleted + v_deleted;
        t_stale := t_stale + v_stale;
        t_dead := t_dead + v_dead;
        EXIT WHEN v_count < p_batch_size;
    END LOOP;
    RETURN QUERY SELECT t_consumed, t_upserted, t_deleted, t_stale, t_dead;
END;
{{ tag|safe }};

{% if citus_table -%}
-- Citus refuses triggers on its tables: where it manages the staging table, the orchestrator
-- treats the table as pending without being flagged. Elsewhere the trigger flags it.
DO {{ tag|safe }}
BEGIN
    IF NOT {{ citus_present|safe }} THEN
        CREATE OR REPLACE TRIGGER {{ mark_trigger }} AFTER INSERT ON {{ schema }}.{{ staging }}
            FOR EACH STATEMENT EXECUTE FUNCTION {{ management }}."mark_table_for_merge"({{ table|lit }});
    END IF;
END
{{ tag|safe }};
{%- else -%}
CREATE OR REPLACE TRIGGER {{ mark_trigger }} AFTER INSERT ON {{ schema }}.{{ staging }}
    FOR EACH STATEMENT EXECUTE FUNCTION {{ management }}."mark_table_for_merge"({{ table|lit }});
{%- endif %}
