-- Every capture instance with its source table and its current low-water mark.
SELECT
    s.name AS schema_name,
    t.name AS table_name,
    ct.capture_instance,
    ct.start_lsn
FROM cdc.change_tables AS ct
JOIN sys.tables AS t ON t.object_id = ct.source_object_id
JOIN sys.schemas AS s ON s.schema_id = t.schema_id
ORDER BY s.name, t.name, ct.capture_instance;
