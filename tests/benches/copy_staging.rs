//! Staging speed (issue 8): typed binary COPY (`cdc_runtime::rows::copy_into_staging`) against
//! multi-row `INSERT ... VALUES (...), (...)` statements of 1,000 rows through bound parameters
//! (one prepared statement), into the same staging table, on one throwaway PostgreSQL 15
//! (started by the test harness; `fsync` off, as in the tests).
//!
//! Two tables of the bundled example, through the row structs `cdc-build` generates for them:
//! `directory."stg_Actor"` (12 staged columns: a key, a name, an e-mail, a flag, a timestamp,
//! the tenant and the six event columns) and `directory."stg_AllTypes"` (51: one column per
//! MSSQL type of DESIGN.md §4, every one filled, and the event columns).
//!
//! The INSERT binds exactly the bytes the COPY sends: each row is encoded once with
//! `cdc_runtime::rows::encode_staging` before the clock starts and each field is bound as a
//! binary parameter of its column's type, so the INSERT pays no encoding at all while the COPY
//! encodes its typed rows inside its time. A third line is the server's own `COPY ... FROM` a
//! file holding that same stream: no client, no socket, the ceiling for any client's COPY.
//!
//! For each table and size (`CDC_BENCH_ROWS`, default `100000,1000000`) the methods take turns
//! `CDC_BENCH_RUNS` times (default 3), each on an emptied staging table (TRUNCATE and CHECKPOINT
//! first); the best and the median run of each are printed with rows/s and the ratios. COPY
//! also runs in calls of 1,000 and 10,000 rows, as a sink that stages each consumed batch would.
//! `CDC_BENCH_TABLES` picks tables (`Actor,AllTypes`); `CDC_BENCH_SHARED_BUFFERS` sets
//! `shared_buffers` (default `64MB`, the test harness's).
//!
//! `cargo bench -p tests --bench copy_staging`

mod common;

use std::error::Error;
use std::fs::Permissions;
use std::os::unix::fs::PermissionsExt as _;
use std::path::Path;
use std::time::{Duration, Instant};

use bytes::BytesMut;
use cdc_build::ident::quote_ident;
use cdc_runtime::rows::{copy_into_staging, encode_staging, StagingRow, TableRow};
use cdc_testkit::PgServer;
use common::{env_sizes, env_usize, mib};
use postgres::types::{to_sql_checked, IsNull, ToSql, Type};
use postgres::Client;

mod rows {
    cdc_runtime::include_rows!();
}

use rows::directory::{Actor, AllTypes};

/// Rows per INSERT statement.
const INSERT_ROWS: usize = 1_000;

/// Rows per call in the batched COPY runs.
const COPY_CALLS: [usize; 2] = [1_000, 10_000];

/// Distinct keys the generated events cycle through.
const KEYS: usize = 100_000;

/// The tenant of every Actor event.
const TENANT: &str = "5f0c6d3e-8a51-4c0e-9b1a-2d7e4f6a8c90";

/// `n` Actor change events over [`KEYS`] keys, 10 % deletes.
fn actors(n: usize) -> Vec<Actor> {
    let tenant = TENANT.parse().expect("uuid");
    let created: chrono::NaiveDateTime = "2026-05-01T09:30:00.123456".parse().expect("timestamp");
    (0..n)
        .map(|i| {
            let delete = i % 10 == 9;
            let step = i64::try_from(i).expect("i");
            Actor {
                actno: i32::try_from(i % KEYS).expect("key"),
                navn: format!("Actor number {i}"),
                email: (i % 3 != 0).then(|| format!("actor{i}@example.com")),
                is_active: !delete,
                created_at: created + chrono::Duration::microseconds(step),
                customer_id: tenant,
                cdc_operation: Some(if delete { "d" } else { "u" }.to_string()),
                source_ts_ms: Some(1_700_000_000_000 + step),
                kafka_offset: Some(step),
                source: Some("directory_dev".to_string()),
                source_db: Some("directory".to_string()),
                source_table: Some("Actor".to_string()),
                ..Actor::default()
            }
        })
        .collect()
}

/// `n` AllTypes change events over [`KEYS`] keys, 10 % deletes, every column filled.
fn all_types(n: usize) -> Vec<AllTypes> {
    let day: chrono::NaiveDate = "2026-05-01".parse().expect("date");
    let noon: chrono::NaiveTime = "12:00:00.1234".parse().expect("time");
    let moment = day.and_time(noon);
    (0..n)
        .map(|i| {
            let delete = i % 10 == 9;
            let step = i64::try_from(i).expect("i");
            let small = i16::try_from(i % 30_000).expect("small");
            let at = moment + chrono::Duration::milliseconds(step);
            let text = format!("row {i}: the quick brown fox jumps over the lazy dog");
            AllTypes {
                id: i64::try_from(i % KEYS).expect("key"),
                c_bit: Some(i % 2 == 0),
                c_tinyint: Some(small % 256),
                c_smallint: Some(small),
                c_int: Some(i32::try_from(i).expect("i")),
                c_decimal: Some(rust_decimal::Decimal::new(step * 101, 2)),
                c_numeric: Some(rust_decimal::Decimal::new(step * 7 + 12_345, 4)),
                c_decimal_bare: Some(rust_decimal::Decimal::from(step)),
                c_money: Some(rust_decimal::Decimal::new(step * 10_000 + 1_999, 4)),
                c_smallmoney: Some(rust_decimal::Decimal::new(step % 100_000 + 50, 4)),
                c_float24: Some(step as f32 / 3.0),
                c_real: Some(step as f32 * 0.25),
                c_float: Some(step as f64 / 7.0),
                c_float53: Some(step as f64 * 1.5e-3),
                c_char: Some(format!("{:<10}", i % 1_000_000)),
                c_nchar: Some(format!("{:<5}", i % 10_000)),
                c_char_unsized: Some("Y".to_string()),
                c_varchar: Some(format!("customer-{i}")),
                c_nvarchar: Some(format!("Ægir Østergård {i}")),
                c_varchar_max: (i % 3 != 0).then(|| text.clone()),
                c_nvarchar_max: Some(format!("naïve café №{i}")),
                c_varchar_unsized: Some("v".to_string()),
                c_text: Some(text.clone()),
                c_ntext: Some(format!("ntext {i}")),
                c_xml: Some(cdc_runtime::rows::PgXml(format!(
                    "<order id=\"{i}\"><line qty=\"2\">widget</line></order>"
                ))),
                c_sysname: Some("dbo".to_string()),
                c_date: Some(day + chrono::Duration::days(step % 365)),
                c_time: Some(noon),
                c_time3: Some(noon),
                c_datetime: Some(at),
                c_smalldatetime: Some(day.and_hms_opt(9, 30, 0).expect("time")),
                c_datetime2: Some(at),
                c_datetime2_3: Some(at),
                c_datetimeoffset: Some(at.and_utc()),
                c_uniqueidentifier: Some(uuid::Uuid::from_u128(u128::from(i as u64) << 64 | 42)),
                c_binary: Some(step.to_be_bytes().repeat(2)),
                c_varbinary: Some(vec![0xab; 32]),
                c_varbinary_max: Some(text.as_bytes().to_vec()),
                c_image: (i % 5 == 0).then(|| vec![0x89; 64]),
                c_timestamp: Some(step.to_be_bytes().to_vec()),
                c_hierarchyid: Some(format!("/1/{}/", i % 100)),
                c_geography: Some("POINT(10.75 59.91)".to_string()),
                c_geometry: Some("POINT(1 2)".to_string()),
                c_sql_variant: Some(i.to_string()),
                c_json: Some(serde_json::json!({"id": i, "tags": ["a", "b"], "ok": true})),
                cdc_operation: Some(if delete { "d" } else { "u" }.to_string()),
                source_ts_ms: Some(1_700_000_000_000 + step),
                kafka_offset: Some(step),
                source: Some("directory_dev".to_string()),
                source_db: Some("directory".to_string()),
                source_table: Some("AllTypes".to_string()),
                ..AllTypes::default()
            }
        })
        .collect()
}

/// A field of the encoded COPY stream bound as a binary parameter as is: the server reads it
/// with its column's receive function, as COPY does.
#[derive(Debug)]
struct Encoded<'a>(Option<&'a [u8]>);

impl ToSql for Encoded<'_> {
    fn to_sql(&self, _: &Type, out: &mut BytesMut) -> Result<IsNull, Box<dyn Error + Sync + Send>> {
        match self.0 {
            Some(bytes) => {
                out.extend_from_slice(bytes);
                Ok(IsNull::No)
            }
            None => Ok(IsNull::Yes),
        }
    }

    fn accepts(_: &Type) -> bool {
        true
    }

    to_sql_checked!();
}

/// The fields of a binary COPY stream, row by row (header and trailer checked).
fn fields_of(stream: &[u8], columns: usize) -> Vec<Encoded<'_>> {
    const HEADER: usize = 19;
    assert_eq!(
        &stream[..11],
        b"PGCOPY\n\xff\r\n\0",
        "binary COPY signature"
    );
    let read_i16 = |at: usize| i16::from_be_bytes([stream[at], stream[at + 1]]);
    let mut at = HEADER;
    let mut fields = Vec::new();
    loop {
        let count = read_i16(at);
        at += 2;
        if count == -1 {
            break;
        }
        assert_eq!(
            usize::try_from(count).expect("count"),
            columns,
            "fields per row"
        );
        for _ in 0..columns {
            let length = i32::from_be_bytes(stream[at..at + 4].try_into().expect("length"));
            at += 4;
            if length < 0 {
                fields.push(Encoded(None));
            } else {
                let end = at + usize::try_from(length).expect("length");
                fields.push(Encoded(Some(&stream[at..end])));
                at = end;
            }
        }
    }
    assert_eq!(at, stream.len(), "nothing after the trailer");
    fields
}

/// `INSERT INTO <staging> (<columns>) VALUES ($1, ...), ...` for `rows` rows of `R`.
fn insert_statement<R: StagingRow>(rows: usize) -> String {
    let width = R::STAGING_COLUMNS.len();
    let columns: Vec<String> = R::STAGING_COLUMNS.iter().map(|c| quote_ident(c)).collect();
    let values: Vec<String> = (0..rows)
        .map(|r| {
            let params: Vec<String> = (1..=width).map(|c| format!("${}", r * width + c)).collect();
            format!("({})", params.join(", "))
        })
        .collect();
    format!(
        "INSERT INTO {} ({}) VALUES {}",
        staging::<R>(),
        columns.join(", "),
        values.join(", ")
    )
}

fn staging<R: StagingRow>() -> String {
    format!(
        "{}.{}",
        quote_ident(<R as TableRow>::SCHEMA),
        quote_ident(R::STAGING_TABLE)
    )
}

/// Stages every row through prepared multi-row INSERTs of [`INSERT_ROWS`] rows.
fn insert_all<R: StagingRow>(client: &mut Client, fields: &[Encoded<'_>]) -> u64 {
    let width = R::STAGING_COLUMNS.len();
    let full = client
        .prepare(&insert_statement::<R>(INSERT_ROWS))
        .expect("prepare");
    let mut written = 0;
    let mut bound: Vec<&(dyn ToSql + Sync)> = Vec::with_capacity(INSERT_ROWS * width);
    for chunk in fields.chunks(INSERT_ROWS * width) {
        bound.clear();
        bound.extend(chunk.iter().map(|f| f as &(dyn ToSql + Sync)));
        written += if chunk.len() == INSERT_ROWS * width {
            client.execute(&full, &bound).expect("insert")
        } else {
            let statement = insert_statement::<R>(chunk.len() / width);
            client.execute(statement.as_str(), &bound).expect("insert")
        };
    }
    written
}

/// The server reads the stream from `file` itself.
fn server_copy<R: StagingRow>(client: &mut Client, file: &Path) -> u64 {
    let columns = R::COPY_STATEMENT
        .split_once(" FROM STDIN")
        .expect("COPY ... FROM STDIN")
        .0;
    let path = file.to_str().expect("UTF-8 path").replace('\'', "''");
    client
        .execute(&format!("{columns} FROM '{path}' (FORMAT binary)"), &[])
        .expect("server-side COPY")
}

/// Times `run` on an empty staging table and checks that it staged `n` rows.
fn timed<R: StagingRow>(
    client: &mut Client,
    n: usize,
    run: impl FnOnce(&mut Client) -> u64,
) -> Duration {
    let table = staging::<R>();
    client
        .batch_execute(&format!("TRUNCATE {table}; CHECKPOINT"))
        .expect("truncate");
    let started = Instant::now();
    let written = run(client);
    let elapsed = started.elapsed();
    assert_eq!(written, n as u64, "rows written");
    let staged: i64 = client
        .query_one(&format!("SELECT count(*) FROM {table}"), &[])
        .expect("count")
        .get(0);
    assert_eq!(staged, i64::try_from(n).expect("n"), "rows staged");
    elapsed
}

fn rate(n: usize, time: Duration) -> String {
    format!(
        "{:>8.0} rows/s ({:>5.2} s)",
        common::rate(i64::try_from(n).expect("n"), time),
        time.as_secs_f64()
    )
}

/// Every method `runs` times in turns on `rows`; prints best and median of each.
fn measure<R: StagingRow>(client: &mut Client, rows: &[R], runs: usize, dir: &Path) {
    let n = rows.len();
    let width = R::STAGING_COLUMNS.len();
    let stream = encode_staging(rows).expect("encode");
    let fields = fields_of(&stream, width);
    let file = dir.join(format!("{}.copy", R::STAGING_TABLE));
    std::fs::write(&file, &stream).expect("write the COPY file");
    std::fs::set_permissions(&file, Permissions::from_mode(0o644)).expect("chmod");

    let mut names = vec![format!("multi-row INSERT ({INSERT_ROWS} rows)")];
    names.push("COPY, one call".to_string());
    names.extend(
        COPY_CALLS
            .iter()
            .map(|c| format!("COPY, calls of {c} rows")),
    );
    names.push("server's own COPY of a file".to_string());
    let mut times: Vec<Vec<Duration>> = vec![Vec::new(); names.len()];
    // The methods take turns, `runs` times, so that a busy moment of a shared machine hits
    // all of them; each is reported by its best and its median run.
    for _ in 0..runs {
        times[0].push(timed::<R>(client, n, |c| insert_all::<R>(c, &fields)));
        times[1].push(timed::<R>(client, n, |c| {
            copy_into_staging(c, rows).expect("copy")
        }));
        for (slot, size) in COPY_CALLS.iter().enumerate() {
            times[2 + slot].push(timed::<R>(client, n, |c| {
                rows.chunks(*size)
                    .map(|chunk| copy_into_staging(c, chunk).expect("copy"))
                    .sum()
            }));
        }
        let last = names.len() - 1;
        times[last].push(timed::<R>(client, n, |c| server_copy::<R>(c, &file)));
    }
    let summary: Vec<(Duration, Duration)> = times
        .into_iter()
        .map(|mut t| {
            t.sort();
            (t[0], t[t.len() / 2])
        })
        .collect();
    let ratio = |a: Duration, b: Duration| a.as_secs_f64() / b.as_secs_f64();
    let (insert_best, insert_median) = summary[0];
    println!(
        "{}: {n} rows of {width} columns, {} as a COPY stream (best / median of {runs} runs)",
        staging::<R>(),
        mib(i64::try_from(stream.len()).expect("length"))
    );
    for (name, (best, median)) in names.iter().zip(&summary) {
        println!(
            "  {name:<31} {} / {}  {:>4.1}x / {:>4.1}x the INSERT",
            rate(n, *best),
            rate(n, *median),
            ratio(insert_best, *best),
            ratio(insert_median, *median)
        );
    }
    let (copy_best, copy_median) = summary[1];
    let (own_best, own_median) = summary[names.len() - 1];
    println!(
        "  one-call COPY takes {:.2}x / {:.2}x the server's own COPY of the file",
        ratio(copy_best, own_best),
        ratio(copy_median, own_median)
    );
}

fn main() {
    let sizes = env_sizes("CDC_BENCH_ROWS", &[100_000, 1_000_000]);
    let runs = env_usize("CDC_BENCH_RUNS", 3).max(1);
    let tables = std::env::var("CDC_BENCH_TABLES").unwrap_or_else(|_| "Actor,AllTypes".into());
    let shared_buffers =
        std::env::var("CDC_BENCH_SHARED_BUFFERS").unwrap_or_else(|_| "64MB".to_string());
    let server = PgServer::start_with(&[("shared_buffers", shared_buffers.as_str())])
        .unwrap_or_else(|e| panic!("starting PostgreSQL: {e}"));
    let db = server.create_database("bench_copy");
    let mut client = server.client(&db);
    cdc_testkit::fixture::apply_example(&mut client);
    // The server reads the file as its own OS user.
    let dir = tempfile::tempdir().expect("temporary directory");
    std::fs::set_permissions(dir.path(), Permissions::from_mode(0o755)).expect("chmod");
    println!(
        "PostgreSQL on 127.0.0.1:{} (fsync off, shared_buffers={shared_buffers}); \
         INSERTs of {INSERT_ROWS} rows through one prepared statement",
        server.port()
    );
    for n in sizes {
        for table in tables.split(',').map(str::trim) {
            match table {
                "Actor" => measure(&mut client, &actors(n), runs, dir.path()),
                "AllTypes" => measure(&mut client, &all_types(n), runs, dir.path()),
                other => panic!("CDC_BENCH_TABLES: no table {other} (Actor, AllTypes)"),
            }
        }
    }
}
