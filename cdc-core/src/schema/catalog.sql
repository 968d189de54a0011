-- The live shape of a sink's tables, in one round trip: one row per table asked
-- for, in the order asked. Parameters (text[] of equal length): $1 schemas,
-- $2 tables, $3 staging tables, $4 merge functions, $5 staging triggers ('' when
-- the table has no staging table).
SELECT w.ord,
       t.oid IS NOT NULL AS table_exists,
       cols.names,
       cols.types,
       cols.not_nulls,
       cols.defaults,
       pk.columns AS primary_key,
       s.relkind::text AS staging_kind,
       EXISTS (
           SELECT 1 FROM pg_catalog.pg_trigger g
           WHERE g.tgrelid = s.oid AND g.tgname = w.trigger_name AND NOT g.tgisinternal
       ) OR CASE
           -- Citus refuses triggers on the tables it manages: a distributed or reference
           -- staging table has none by design. pg_dist_partition is read through
           -- query_to_xml, so plain PostgreSQL never resolves it.
           WHEN s.oid IS NULL OR to_regclass('pg_catalog.pg_dist_partition') IS NULL THEN false
           ELSE query_to_xml(format('SELECT 1 AS managed FROM pg_catalog.pg_dist_partition WHERE logicalrelid = %s', s.oid), false, true, '')::text <> ''
       END AS trigger_exists,
       EXISTS (
           SELECT 1 FROM pg_catalog.pg_proc p
           WHERE p.pronamespace = n.oid AND p.proname = w.merge_name
       ) AS merge_function_exists
FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[])
         WITH ORDINALITY AS w(schema_name, table_name, staging_name, merge_name, trigger_name, ord)
LEFT JOIN pg_catalog.pg_namespace n ON n.nspname = w.schema_name
LEFT JOIN pg_catalog.pg_class t
       ON t.relnamespace = n.oid AND t.relname = w.table_name AND t.relkind IN ('r', 'p')
LEFT JOIN pg_catalog.pg_class s
       ON s.relnamespace = n.oid AND s.relname = w.staging_name
LEFT JOIN LATERAL (
    SELECT array_agg(a.attname::text ORDER BY a.attnum) AS names,
           array_agg(pg_catalog.format_type(a.atttypid, a.atttypmod) ORDER BY a.attnum) AS types,
           array_agg(a.attnotnull ORDER BY a.attnum) AS not_nulls,
           array_agg(pg_catalog.pg_get_expr(d.adbin, d.adrelid) ORDER BY a.attnum) AS defaults
    FROM pg_catalog.pg_attribute a
    LEFT JOIN pg_catalog.pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
    WHERE a.attrelid = t.oid AND a.attnum > 0 AND NOT a.attisdropped
) cols ON true
LEFT JOIN LATERAL (
    SELECT array_agg(a.attname::text ORDER BY k.ord) AS columns
    FROM pg_catalog.pg_index i
    CROSS JOIN LATERAL unnest(i.indkey::int2[]) WITH ORDINALITY AS k(attnum, ord)
    JOIN pg_catalog.pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = k.attnum
    WHERE i.indrelid = t.oid AND i.indisprimary
) pk ON true
ORDER BY w.ord
