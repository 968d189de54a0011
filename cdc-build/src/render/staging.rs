//! `01-tables/<Table>-staging.sql`: the UNLOGGED staging table, its statement
//! trigger, the merge-control registration and `sp_merge_<Table>()`.
//!
//! The merge meets DESIGN.md §7: it consumes exactly the rows it deletes from
//! staging (rows staged meanwhile wait for the next merge), keeps the latest
//! event per key by (`__source_ts_ms`, `__kafka_offset`), never lets an older
//! event overwrite a newer row or resurrect a row a newer delete removed
//! (tombstones), works in bounded batches for any number of staged rows, and
//! logs true counts.

use std::fmt::Write as _;

use super::table::{column_definition, converge_columns_json};
use super::{TableNames, MARK_TRIGGER};
use crate::columns::{
    staging_extra_columns, ColumnOrigin, COL_IS_DELETED, COL_KAFKA_OFFSET, COL_KAFKA_TIMESTAMP,
    COL_OPERATION, COL_SOURCE, COL_SOURCE_TS, COL_SYNC_TIMESTAMP,
};
use crate::ident::{dollar_quote, qualified, quote_ident, quote_literal};
use crate::project::SinkTable;

/// Default number of staged rows one merge step consumes.
pub const DEFAULT_MERGE_BATCH: u32 = 50_000;

/// The body of a staging file.
pub fn render_staging(table: &SinkTable, names: &TableNames) -> String {
    let staging = qualified(&table.target_schema, &names.staging);
    let is_key = |name: &str| table.primary_key.iter().any(|k| k == name);
    let extras = staging_extra_columns();
    let staging_columns: Vec<_> = table
        .columns
        .iter()
        .chain(extras.iter())
        .map(|c| (c, is_key(&c.name)))
        .collect();

    let mut out = String::with_capacity(6000 + table.columns.len() * 300);
    out.push_str("-- Staging table: written by the sink connector, emptied by the merge.\n");
    let _ = writeln!(out, "CREATE UNLOGGED TABLE IF NOT EXISTS {staging} (");
    let defs: Vec<String> = staging_columns
        .iter()
        .map(|(c, not_null)| format!("    {}", column_definition(c, *not_null)))
        .collect();
    out.push_str(&defs.join(",\n"));
    out.push_str("\n);\n\n");
    let _ = write!(
        out,
        "CALL \"cdc_management\".\"converge_table\"(\n    {},\n    {},\n    {}::jsonb,\n    ARRAY[]::text[],\n    true\n);\n\n",
        quote_literal(&table.target_schema),
        quote_literal(&names.staging),
        dollar_quote(&converge_columns_json(staging_columns.iter().copied())),
    );

    let _ = write!(
        out,
        "INSERT INTO \"cdc_management\".\"merge_control\" (\"schema_name\", \"table_name\", \"staging_table\", \"merge_function\")\n\
         VALUES ({}, {}, {}, {})\n\
         ON CONFLICT (\"schema_name\", \"table_name\") DO UPDATE\n    \
         SET \"staging_table\" = EXCLUDED.\"staging_table\", \"merge_function\" = EXCLUDED.\"merge_function\";\n\n",
        quote_literal(&table.target_schema),
        quote_literal(&table.target_table),
        quote_literal(&names.staging),
        quote_literal(&names.merge_function),
    );

    out.push_str(&render_merge_function(table, names));

    let _ = write!(
        out,
        "\nCREATE OR REPLACE TRIGGER {} AFTER INSERT ON {staging}\n    FOR EACH STATEMENT EXECUTE FUNCTION \"cdc_management\".\"mark_table_for_merge\"({});\n",
        quote_ident(MARK_TRIGGER),
        quote_literal(&table.target_table),
    );
    out
}

fn render_merge_function(table: &SinkTable, names: &TableNames) -> String {
    let target = qualified(&table.target_schema, &table.target_table);
    let staging = qualified(&table.target_schema, &names.staging);
    let function = qualified(&table.target_schema, &names.merge_function);
    let schema_lit = quote_literal(&table.target_schema);
    let table_lit = quote_literal(&table.target_table);
    let lock_key = quote_literal(&format!(
        "cdc_merge:{}.{}",
        table.target_schema, table.target_table
    ));
    let q = |alias: &str, col: &str| format!("{alias}.{}", quote_ident(col));
    let pos = |alias: &str| {
        format!(
            "(coalesce({}, -1), coalesce({}, -1))",
            q(alias, COL_SOURCE_TS),
            q(alias, COL_KAFKA_OFFSET)
        )
    };
    let pk_list = |alias: &str| {
        table
            .primary_key
            .iter()
            .map(|k| q(alias, k))
            .collect::<Vec<_>>()
            .join(", ")
    };
    let pk_match = |a: &str, b: &str| {
        table
            .primary_key
            .iter()
            .map(|k| format!("{} = {}", q(a, k), q(b, k)))
            .collect::<Vec<_>>()
            .join(" AND ")
    };
    let is_delete = format!(
        "upper(coalesce({}, '')) IN ('DELETE', 'D')",
        q("l", COL_OPERATION)
    );
    let columns: Vec<String> = table.columns.iter().map(|c| quote_ident(&c.name)).collect();
    let select_exprs: Vec<String> = table
        .columns
        .iter()
        .map(|c| match c.name.as_str() {
            COL_IS_DELETED => "false".to_string(),
            COL_SYNC_TIMESTAMP => "now()".to_string(),
            name => match (&c.default, c.origin) {
                (Some(default), ColumnOrigin::Template) => {
                    format!("coalesce({}, {default})", q("l", name))
                }
                _ => q("l", name),
            },
        })
        .collect();
    let updates: Vec<String> = table
        .columns
        .iter()
        .filter(|c| !table.primary_key.contains(&c.name))
        .map(|c| format!("{0} = EXCLUDED.{0}", quote_ident(&c.name)))
        .collect();
    let delete_step = if table.soft_delete {
        format!(
            "UPDATE {target} AS f\n\
             \x20          SET {is_del} = true, {op} = l.{op}, {ts} = l.{ts}, {off} = l.{off},\n\
             \x20              {src} = coalesce(l.{src}, f.{src}), {sync} = now()\n\
             \x20         FROM fresh AS l\n\
             \x20        WHERE l.\"__cdc_is_delete\" AND {m} AND {pf} < {pl}\n\
             \x20        RETURNING 1",
            is_del = quote_ident(COL_IS_DELETED),
            op = quote_ident(COL_OPERATION),
            ts = quote_ident(COL_SOURCE_TS),
            off = quote_ident(COL_KAFKA_OFFSET),
            src = quote_ident(COL_SOURCE),
            sync = quote_ident(COL_SYNC_TIMESTAMP),
            m = pk_match("f", "l"),
            pf = pos("f"),
            pl = pos("l"),
        )
    } else {
        format!(
            "DELETE FROM {target} AS f\n\
             \x20        USING fresh AS l\n\
             \x20        WHERE l.\"__cdc_is_delete\" AND {m} AND {pf} < {pl}\n\
             \x20        RETURNING 1",
            m = pk_match("f", "l"),
            pf = pos("f"),
            pl = pos("l"),
        )
    };
    let pk_json = |alias: &str| format!("jsonb_build_array({})", pk_list(alias));

    let body = format!(
        r#"
#variable_conflict use_column
DECLARE
    v_started TIMESTAMPTZ := clock_timestamp();
    v_batch BIGINT;
    v_superseded BIGINT;
    v_upserted BIGINT;
    v_deleted BIGINT;
    v_stale BIGINT;
    v_min_offset BIGINT;
    v_max_offset BIGINT;
    v_min_ts BIGINT;
    v_max_ts BIGINT;
    v_max_kafka_ts TIMESTAMPTZ;
    v_more BOOLEAN;
    t_consumed BIGINT := 0;
    t_superseded BIGINT := 0;
    t_upserted BIGINT := 0;
    t_deleted BIGINT := 0;
    t_stale BIGINT := 0;
    t_min_offset BIGINT;
    t_max_offset BIGINT;
    t_min_ts BIGINT;
    t_max_ts BIGINT;
    t_max_kafka_ts TIMESTAMPTZ;
BEGIN
    IF p_batch_size IS NULL OR p_batch_size < 1 THEN
        RAISE EXCEPTION 'cdc: p_batch_size must be a positive number, got %', p_batch_size;
    END IF;
    -- One merge of this table at a time, whoever calls it.
    PERFORM pg_advisory_xact_lock(hashtextextended({lock_key}, 0));
    UPDATE "cdc_management"."merge_control" AS mc
       SET "pending" = false, "pending_since" = NULL, "last_merge_started_at" = v_started
     WHERE mc."schema_name" = {schema_lit} AND mc."table_name" = {table_lit};
    LOOP
        WITH batch AS (
            -- Exactly the rows this step merges; rows staged meanwhile stay for the next step.
            DELETE FROM {staging} AS s
             WHERE s.ctid = ANY (ARRAY(SELECT t.ctid FROM {staging} AS t LIMIT p_batch_size))
            RETURNING s.*
        ), latest AS (
            -- The newest event per key.
            SELECT DISTINCT ON ({pk_b}) b.*
              FROM batch AS b
             ORDER BY {pk_b}, coalesce(b.{ts}, -1) DESC, coalesce(b.{off}, -1) DESC
        ), fresh AS (
            -- Drop events not newer than a remembered delete of the same key.
            SELECT l.*, {is_delete} AS "__cdc_is_delete"
              FROM latest AS l
             WHERE NOT EXISTS (
                   SELECT 1 FROM "cdc_management"."merge_tombstones" AS d
                    WHERE d."schema_name" = {schema_lit} AND d."table_name" = {table_lit}
                      AND d."pk" = {pk_json_l}
                      AND (d."source_ts_ms", d."kafka_offset") >= {pos_l})
        ), upserted AS (
            INSERT INTO {target} AS f ({columns})
            SELECT {select_exprs}
              FROM fresh AS l
             WHERE NOT l."__cdc_is_delete"
            ON CONFLICT ({pk_plain}) DO UPDATE
               SET {updates}
             WHERE {pos_f} < {pos_excluded}
            RETURNING 1
        ), deleted AS (
            {delete_step}
        ), stale_deletes AS (
            SELECT 1
              FROM fresh AS l
              JOIN {target} AS f ON {pk_match_fl}
             WHERE l."__cdc_is_delete" AND {pos_f} >= {pos_l}
        ), tombstoned AS (
            INSERT INTO "cdc_management"."merge_tombstones" AS d ("schema_name", "table_name", "pk", "source_ts_ms", "kafka_offset")
            SELECT {schema_lit}, {table_lit}, {pk_json_l}, coalesce(l.{ts}, -1), coalesce(l.{off}, -1)
              FROM fresh AS l
             WHERE l."__cdc_is_delete"
            ON CONFLICT ("schema_name", "table_name", "pk") DO UPDATE
               SET "source_ts_ms" = EXCLUDED."source_ts_ms", "kafka_offset" = EXCLUDED."kafka_offset", "deleted_at" = now()
             WHERE (d."source_ts_ms", d."kafka_offset") < (EXCLUDED."source_ts_ms", EXCLUDED."kafka_offset")
            RETURNING 1
        )
        SELECT (SELECT count(*) FROM batch),
               (SELECT count(*) FROM batch) - (SELECT count(*) FROM latest),
               (SELECT count(*) FROM upserted),
               (SELECT count(*) FROM deleted),
               (SELECT count(*) FROM latest) - (SELECT count(*) FROM fresh)
                 + (SELECT count(*) FROM fresh WHERE NOT fresh."__cdc_is_delete") - (SELECT count(*) FROM upserted)
                 + (SELECT count(*) FROM stale_deletes)
                 + 0 * (SELECT count(*) FROM tombstoned),
               (SELECT min(b.{off}) FROM batch AS b),
               (SELECT max(b.{off}) FROM batch AS b),
               (SELECT min(b.{ts}) FROM batch AS b),
               (SELECT max(b.{ts}) FROM batch AS b),
               (SELECT max(b.{kafka_ts}) FROM batch AS b)
          INTO v_batch, v_superseded, v_upserted, v_deleted, v_stale,
               v_min_offset, v_max_offset, v_min_ts, v_max_ts, v_max_kafka_ts;
        t_consumed := t_consumed + v_batch;
        t_superseded := t_superseded + v_superseded;
        t_upserted := t_upserted + v_upserted;
        t_deleted := t_deleted + v_deleted;
        t_stale := t_stale + v_stale;
        t_min_offset := least(t_min_offset, v_min_offset);
        t_max_offset := greatest(t_max_offset, v_max_offset);
        t_min_ts := least(t_min_ts, v_min_ts);
        t_max_ts := greatest(t_max_ts, v_max_ts);
        t_max_kafka_ts := greatest(t_max_kafka_ts, v_max_kafka_ts);
        EXIT WHEN v_batch < p_batch_size;
    END LOOP;
    IF t_consumed > 0 THEN
        INSERT INTO "cdc_management"."cdc_processing_log"
            ("schema_name", "table_name", "started_at", "finished_at", "duration_ms",
             "rows_consumed", "rows_superseded", "rows_upserted", "rows_deleted", "rows_stale",
             "min_kafka_offset", "max_kafka_offset", "min_source_ts_ms", "max_source_ts_ms", "max_kafka_timestamp")
        VALUES ({schema_lit}, {table_lit}, v_started, clock_timestamp(),
                floor(extract(epoch FROM clock_timestamp() - v_started) * 1000)::BIGINT,
                t_consumed, t_superseded, t_upserted, t_deleted, t_stale,
                t_min_offset, t_max_offset, t_min_ts, t_max_ts, t_max_kafka_ts);
    END IF;
    -- Rows staged while this merge ran keep the table flagged.
    SELECT EXISTS (SELECT 1 FROM {staging}) INTO v_more;
    UPDATE "cdc_management"."merge_control" AS mc
       SET "last_merge_at" = clock_timestamp(),
           "last_merge_rows" = t_consumed,
           "last_merge_duration_ms" = floor(extract(epoch FROM clock_timestamp() - v_started) * 1000)::BIGINT,
           "pending" = v_more,
           "pending_since" = CASE WHEN v_more THEN now() END
     WHERE mc."schema_name" = {schema_lit} AND mc."table_name" = {table_lit};
    RETURN QUERY SELECT t_consumed, t_upserted, t_deleted, t_stale;
END;
"#,
        pk_b = pk_list("b"),
        pk_plain = table
            .primary_key
            .iter()
            .map(|k| quote_ident(k))
            .collect::<Vec<_>>()
            .join(", "),
        ts = quote_ident(COL_SOURCE_TS),
        off = quote_ident(COL_KAFKA_OFFSET),
        kafka_ts = quote_ident(COL_KAFKA_TIMESTAMP),
        pk_json_l = pk_json("l"),
        pos_l = pos("l"),
        pos_f = pos("f"),
        pos_excluded = pos("EXCLUDED"),
        pk_match_fl = pk_match("f", "l"),
        columns = columns.join(", "),
        select_exprs = select_exprs.join(", "),
        updates = updates.join(",\n                   "),
    );
    format!(
        "-- Merges staged rows into {target}; returns true counts.\n\
         CREATE OR REPLACE FUNCTION {function}(p_batch_size INTEGER DEFAULT {DEFAULT_MERGE_BATCH})\n\
         RETURNS TABLE (\"rows_consumed\" BIGINT, \"rows_upserted\" BIGINT, \"rows_deleted\" BIGINT, \"rows_stale\" BIGINT)\n\
         LANGUAGE plpgsql\n\
         AS {};\n",
        dollar_quote(&body)
    )
}
