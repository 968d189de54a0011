-- The largest LSN committed at least @P1 days ago (NULL when there is none).
SELECT sys.fn_cdc_map_time_to_lsn(
    'largest less than or equal', DATEADD(day, -@P1, GETDATE())
) AS low_water_mark;
