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

use cdc_core::layout::MANAGEMENT_SCHEMA;

use super::table::{
    push_column_definition, push_converge_call, push_converge_columns_json, push_joined,
};
use crate::columns::{
    staging_extra_columns, Column, ColumnOrigin, COL_IS_DELETED, COL_KAFKA_OFFSET,
    COL_KAFKA_TIMESTAMP, COL_OPERATION, COL_SOURCE, COL_SOURCE_TS, COL_SYNC_TIMESTAMP,
};
use crate::ident::{
    push_dollar_quoted, push_ident, push_literal, push_qualified, qualified, quote_ident,
    quote_literal,
};
use crate::project::{SinkTable, MARK_TRIGGER};

/// Default number of staged rows one merge step consumes.
pub const DEFAULT_MERGE_BATCH: u32 = 50_000;

/// The body of a staging file.
pub fn render_staging(table: &SinkTable) -> String {
    let mut out = String::with_capacity(staging_capacity(table));
    push_staging(&mut out, table);
    out
}

/// A size hint for a staging body.
pub fn staging_capacity(table: &SinkTable) -> usize {
    8_800 + table.columns.len() * 240
}

/// Appends the body of a staging file.
pub fn push_staging(out: &mut String, table: &SinkTable) {
    let names = &table.names;
    let staging = qualified(&table.target_schema, &names.staging);
    let is_key = |name: &str| table.primary_key.iter().any(|k| k == name);
    let extras = staging_extra_columns();
    let staging_columns = || {
        table
            .columns
            .iter()
            .chain(extras.iter())
            .map(|c| (c, is_key(&c.name)))
    };

    out.push_str("-- Staging table: written by the sink connector, emptied by the merge.\n");
    out.push_str("CREATE UNLOGGED TABLE IF NOT EXISTS ");
    out.push_str(&staging);
    out.push_str(" (\n");
    push_joined(out, staging_columns(), ",\n", |out, (c, not_null)| {
        out.push_str("    ");
        push_column_definition(out, c, not_null);
    });
    out.push_str("\n);\n\n");
    push_converge_call(out);
    push_literal(out, &table.target_schema);
    out.push_str(",\n    ");
    push_literal(out, &names.staging);
    out.push_str(",\n    ");
    push_dollar_quoted(out, |out| {
        push_converge_columns_json(out, staging_columns())
    });
    out.push_str("::jsonb,\n    ARRAY[]::text[],\n    true\n);\n\n");

    out.push_str("INSERT INTO ");
    push_qualified(out, MANAGEMENT_SCHEMA, "merge_control");
    out.push_str(
        " (\"schema_name\", \"table_name\", \"staging_table\", \"merge_function\")\nVALUES (",
    );
    push_joined(
        out,
        [
            &table.target_schema,
            &table.target_table,
            &names.staging,
            &names.merge_function,
        ],
        ", ",
        |out, value| push_literal(out, value),
    );
    out.push_str(
        ")\n\
         ON CONFLICT (\"schema_name\", \"table_name\") DO UPDATE\n    \
         SET \"staging_table\" = EXCLUDED.\"staging_table\", \"merge_function\" = EXCLUDED.\"merge_function\";\n\n",
    );

    push_merge_function(out, table, &staging);

    out.push_str("\nCREATE OR REPLACE TRIGGER ");
    push_ident(out, MARK_TRIGGER);
    out.push_str(" AFTER INSERT ON ");
    out.push_str(&staging);
    out.push_str("\n    FOR EACH STATEMENT EXECUTE FUNCTION ");
    push_qualified(out, MANAGEMENT_SCHEMA, "mark_table_for_merge");
    out.push('(');
    push_literal(out, &table.target_table);
    out.push_str(");\n");
}

/// `alias."column"`
fn push_column_of(out: &mut String, alias: &str, column: &str) {
    out.push_str(alias);
    out.push('.');
    push_ident(out, column);
}

/// An event's position: `(coalesce(alias."__source_ts_ms", -1), coalesce(alias."__kafka_offset", -1))`.
fn position(alias: &str) -> String {
    let mut out = String::with_capacity(80);
    out.push_str("(coalesce(");
    push_column_of(&mut out, alias, COL_SOURCE_TS);
    out.push_str(", -1), coalesce(");
    push_column_of(&mut out, alias, COL_KAFKA_OFFSET);
    out.push_str(", -1))");
    out
}

/// Builds a string by appending to an empty one.
fn build(push: impl FnOnce(&mut String)) -> String {
    let mut out = String::with_capacity(128);
    push(&mut out);
    out
}

fn push_merge_function(out: &mut String, table: &SinkTable, staging: &str) {
    let target = qualified(&table.target_schema, &table.target_table);
    out.push_str("-- Merges staged rows into ");
    super::push_comment_text(out, &target);
    out.push_str("; returns true counts.\nCREATE OR REPLACE FUNCTION ");
    push_qualified(out, &table.target_schema, &table.names.merge_function);
    let _ = write!(
        out,
        "(p_batch_size INTEGER DEFAULT {DEFAULT_MERGE_BATCH})\n\
         RETURNS TABLE (\"rows_consumed\" BIGINT, \"rows_upserted\" BIGINT, \"rows_deleted\" BIGINT, \"rows_stale\" BIGINT)\n\
         LANGUAGE plpgsql\n\
         AS "
    );
    push_dollar_quoted(out, |out| push_merge_body(out, table, &target, staging));
    out.push_str(";\n");
}

/// The PL/pgSQL body of `sp_merge_<Table>()`.
fn push_merge_body(out: &mut String, table: &SinkTable, target: &str, staging: &str) {
    let key = &table.primary_key;
    let schema_lit = quote_literal(&table.target_schema);
    let table_lit = quote_literal(&table.target_table);
    let lock_key = quote_literal(&format!(
        "cdc_merge:{}.{}",
        table.target_schema, table.target_table
    ));
    let pk_list = |alias: &str| {
        build(|out| push_joined(out, key, ", ", |out, k| push_column_of(out, alias, k)))
    };
    let pk_match = |a: &str, b: &str| {
        build(|out| {
            push_joined(out, key, " AND ", |out, k| {
                push_column_of(out, a, k);
                out.push_str(" = ");
                push_column_of(out, b, k);
            })
        })
    };
    let (pos_l, pos_f) = (position("l"), position("f"));
    let pk_match_fl = pk_match("f", "l");
    let is_delete = build(|out| {
        out.push_str("upper(coalesce(");
        push_column_of(out, "l", COL_OPERATION);
        out.push_str(", '')) IN ('DELETE', 'D')");
    });
    let columns =
        build(|out| push_joined(out, &table.columns, ", ", |out, c| push_ident(out, &c.name)));
    let select_exprs = build(|out| push_joined(out, &table.columns, ", ", push_select_expr));
    let updates = build(|out| {
        let non_key = table.columns.iter().filter(|c| !key.contains(&c.name));
        push_joined(out, non_key, ",\n                   ", |out, c| {
            push_ident(out, &c.name);
            out.push_str(" = EXCLUDED.");
            push_ident(out, &c.name);
        })
    });
    let delete_step = if table.soft_delete {
        format!(
            "UPDATE {target} AS f\n\
             \x20          SET {is_del} = true, {op} = l.{op}, {ts} = l.{ts}, {off} = l.{off},\n\
             \x20              {src} = coalesce(l.{src}, f.{src}), {sync} = now()\n\
             \x20         FROM fresh AS l\n\
             \x20        WHERE l.\"__cdc_is_delete\" AND {pk_match_fl} AND {pos_f} < {pos_l}\n\
             \x20        RETURNING 1",
            is_del = quote_ident(COL_IS_DELETED),
            op = quote_ident(COL_OPERATION),
            ts = quote_ident(COL_SOURCE_TS),
            off = quote_ident(COL_KAFKA_OFFSET),
            src = quote_ident(COL_SOURCE),
            sync = quote_ident(COL_SYNC_TIMESTAMP),
        )
    } else {
        format!(
            "DELETE FROM {target} AS f\n\
             \x20        USING fresh AS l\n\
             \x20        WHERE l.\"__cdc_is_delete\" AND {pk_match_fl} AND {pos_f} < {pos_l}\n\
             \x20        RETURNING 1",
        )
    };

    let _ = write!(
        out,
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
    UPDATE {management}."merge_control" AS mc
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
                   SELECT 1 FROM {management}."merge_tombstones" AS d
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
            INSERT INTO {management}."merge_tombstones" AS d ("schema_name", "table_name", "pk", "source_ts_ms", "kafka_offset")
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
        INSERT INTO {management}."cdc_processing_log"
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
    UPDATE {management}."merge_control" AS mc
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
        pk_plain = build(|out| push_joined(out, key, ", ", |out, k| push_ident(out, k))),
        ts = quote_ident(COL_SOURCE_TS),
        off = quote_ident(COL_KAFKA_OFFSET),
        kafka_ts = quote_ident(COL_KAFKA_TIMESTAMP),
        pk_json_l = build(|out| {
            out.push_str("jsonb_build_array(");
            out.push_str(&pk_list("l"));
            out.push(')');
        }),
        pos_excluded = position("EXCLUDED"),
        management = quote_ident(MANAGEMENT_SCHEMA),
    );
}

/// What the merge inserts for one column: the staged value, a template
/// default for NULL, or the metadata the merge sets itself.
fn push_select_expr(out: &mut String, column: &Column) {
    match column.name.as_str() {
        COL_IS_DELETED => out.push_str("false"),
        COL_SYNC_TIMESTAMP => out.push_str("now()"),
        name => match (&column.default, column.origin) {
            (Some(default), ColumnOrigin::Template) => {
                out.push_str("coalesce(");
                push_column_of(out, "l", name);
                out.push_str(", ");
                out.push_str(default);
                out.push(')');
            }
            _ => push_column_of(out, "l", name),
        },
    }
}
