-- The connected database and whether CDC is enabled on it.
SELECT DB_NAME() AS database_name, d.is_cdc_enabled
FROM sys.databases AS d
WHERE d.database_id = DB_ID();
