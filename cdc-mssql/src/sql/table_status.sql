-- Every user table: whether CDC tracks it and whether it has a primary key.
SELECT
    s.name AS schema_name,
    t.name AS table_name,
    t.is_tracked_by_cdc,
    CAST(CASE WHEN EXISTS (
        SELECT 1 FROM sys.indexes AS i WHERE i.object_id = t.object_id AND i.is_primary_key = 1
    ) THEN 1 ELSE 0 END AS bit) AS has_primary_key
FROM sys.tables AS t
JOIN sys.schemas AS s ON s.schema_id = t.schema_id
WHERE t.is_ms_shipped = 0
ORDER BY s.name, t.name;
