//! The thin tiberius driver: connects, runs the queries and statements that the
//! pure modules wrote, and turns rows into their models. Blocking, on a
//! current-thread tokio runtime of its own, so the CLI stays synchronous.

use tiberius::{Client, Query, Row};
use tokio::net::TcpStream;
use tokio_util::compat::{Compat, TokioAsyncWriteCompatExt as _};

use crate::catalog::{CatalogRow, CATALOG_COLUMNS_QUERY};
use crate::connection::ConnectionSettings;
use crate::error::Error;
use crate::ident::TableRef;
use crate::plan::{
    CaptureInstance, TableStatus, CLEANUP_STATEMENT, CLEANUP_THRESHOLD, ENABLE_DATABASE_STATEMENT,
    ENABLE_TABLE_STATEMENT,
};

const DATABASE_STATUS_QUERY: &str = include_str!("sql/database_status.sql");
const TABLE_STATUS_QUERY: &str = include_str!("sql/table_status.sql");
const CAPTURE_INSTANCES_QUERY: &str = include_str!("sql/capture_instances.sql");
const LOW_WATER_MARK_QUERY: &str = include_str!("sql/low_water_mark.sql");

/// The connected database and whether CDC is enabled on it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DatabaseStatus {
    /// `DB_NAME()`
    pub name: String,
    /// `sys.databases.is_cdc_enabled`
    pub is_cdc_enabled: bool,
}

/// An open connection to the source database.
pub struct SourceConnection {
    runtime: tokio::runtime::Runtime,
    client: Client<Compat<TcpStream>>,
}

impl std::fmt::Debug for SourceConnection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SourceConnection").finish_non_exhaustive()
    }
}

impl SourceConnection {
    /// Connects and logs in; errors name host, port and database, never the password.
    pub fn connect(settings: &ConnectionSettings) -> Result<SourceConnection, Error> {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(Error::Runtime)?;
        let connect_error = |source: tiberius::error::Error| Error::Connect {
            host: settings.host.clone(),
            port: settings.port,
            database: settings.database.clone(),
            source: Box::new(source),
        };
        let client = runtime.block_on(async {
            let tcp = TcpStream::connect((settings.host.as_str(), settings.port))
                .await
                .map_err(|e| connect_error(e.into()))?;
            tcp.set_nodelay(true).map_err(|e| connect_error(e.into()))?;
            Client::connect(settings.tiberius_config(), tcp.compat_write())
                .await
                .map_err(connect_error)
        })?;
        Ok(SourceConnection { runtime, client })
    }

    fn query_rows(&mut self, what: &str, query: Query<'_>) -> Result<Vec<Row>, Error> {
        let client = &mut self.client;
        self.runtime.block_on(async {
            let stream = query.query(client).await.map_err(|source| Error::Query {
                what: what.to_string(),
                source: Box::new(source),
            })?;
            stream
                .into_first_result()
                .await
                .map_err(|source| query_error(what, source))
        })
    }

    fn execute(&mut self, what: &str, query: Query<'_>) -> Result<(), Error> {
        let client = &mut self.client;
        self.runtime.block_on(async {
            query
                .execute(client)
                .await
                .map(drop)
                .map_err(|source| query_error(what, source))
        })
    }

    /// The database name and its CDC flag.
    pub fn database_status(&mut self) -> Result<DatabaseStatus, Error> {
        let what = "reading the database's CDC status";
        let rows = self.query_rows(what, Query::new(DATABASE_STATUS_QUERY))?;
        let row = rows.first().ok_or_else(|| Error::UnexpectedResult {
            what: what.to_string(),
            message: "no row".to_string(),
        })?;
        Ok(DatabaseStatus {
            name: text(row, what, "database_name")?,
            is_cdc_enabled: flag(row, what, "is_cdc_enabled")?,
        })
    }

    /// Every column of every user table, or of one schema.
    pub fn catalog_rows(&mut self, schema: Option<&str>) -> Result<Vec<CatalogRow>, Error> {
        let what = "reading the catalog";
        let mut query = Query::new(CATALOG_COLUMNS_QUERY);
        query.bind(schema);
        let rows = self.query_rows(what, query)?;
        rows.iter()
            .map(|row| {
                Ok(CatalogRow {
                    schema_name: text(row, what, "schema_name")?,
                    table_name: text(row, what, "table_name")?,
                    column_id: required(row.try_get::<i32, _>("column_id"), what, "column_id")?,
                    column_name: text(row, what, "column_name")?,
                    type_name: text(row, what, "type_name")?,
                    is_user_defined: flag(row, what, "is_user_defined")?,
                    system_type_name: optional_text(row, what, "system_type_name")?,
                    max_length: required(row.try_get::<i16, _>("max_length"), what, "max_length")?,
                    precision: required(row.try_get::<u8, _>("precision"), what, "precision")?,
                    scale: required(row.try_get::<u8, _>("scale"), what, "scale")?,
                    is_nullable: flag(row, what, "is_nullable")?,
                    is_identity: flag(row, what, "is_identity")?,
                    is_computed: flag(row, what, "is_computed")?,
                    computed_definition: optional_text(row, what, "computed_definition")?,
                    computed_is_persisted: row
                        .try_get::<bool, _>("computed_is_persisted")
                        .map_err(|source| query_error(what, source))?,
                    default_definition: optional_text(row, what, "default_definition")?,
                    primary_key_ordinal: row
                        .try_get::<i32, _>("primary_key_ordinal")
                        .map_err(|source| query_error(what, source))?,
                })
            })
            .collect()
    }

    /// CDC tracking and primary-key presence of every user table.
    pub fn table_status(&mut self) -> Result<Vec<TableStatus>, Error> {
        let what = "reading which tables CDC tracks";
        let rows = self.query_rows(what, Query::new(TABLE_STATUS_QUERY))?;
        rows.iter()
            .map(|row| {
                Ok(TableStatus {
                    table: TableRef::new(
                        text(row, what, "schema_name")?,
                        text(row, what, "table_name")?,
                    ),
                    is_tracked_by_cdc: flag(row, what, "is_tracked_by_cdc")?,
                    has_primary_key: flag(row, what, "has_primary_key")?,
                })
            })
            .collect()
    }

    /// Every capture instance with its current low-water mark.
    pub fn capture_instances(&mut self) -> Result<Vec<CaptureInstance>, Error> {
        let what = "reading the capture instances";
        let rows = self.query_rows(what, Query::new(CAPTURE_INSTANCES_QUERY))?;
        rows.iter()
            .map(|row| {
                Ok(CaptureInstance {
                    table: TableRef::new(
                        text(row, what, "schema_name")?,
                        text(row, what, "table_name")?,
                    ),
                    capture_instance: text(row, what, "capture_instance")?,
                    start_lsn: required(row.try_get::<&[u8], _>("start_lsn"), what, "start_lsn")?
                        .to_vec(),
                })
            })
            .collect()
    }

    /// The largest LSN at least `days` days old; `None` when no change is that old.
    pub fn low_water_mark(&mut self, days: u32) -> Result<Option<Vec<u8>>, Error> {
        let what = "mapping the cut-off time to an LSN";
        let mut query = Query::new(LOW_WATER_MARK_QUERY);
        query.bind(i32::try_from(days).unwrap_or(i32::MAX));
        let rows = self.query_rows(what, query)?;
        match rows.first() {
            None => Ok(None),
            Some(row) => Ok(row
                .try_get::<&[u8], _>("low_water_mark")
                .map_err(|source| query_error(what, source))?
                .map(<[u8]>::to_vec)),
        }
    }

    /// Runs a batch of T-SQL with no parameters (set-up of the real-server tests).
    pub fn execute_batch(&mut self, sql: &str) -> Result<(), Error> {
        let client = &mut self.client;
        self.runtime.block_on(async {
            client
                .simple_query(sql)
                .await
                .map_err(|source| query_error("running a batch", source))?
                .into_results()
                .await
                .map(drop)
                .map_err(|source| query_error("running a batch", source))
        })
    }

    /// `sys.sp_cdc_enable_db`
    pub fn enable_database(&mut self) -> Result<(), Error> {
        self.execute(
            "enabling CDC on the database",
            Query::new(ENABLE_DATABASE_STATEMENT),
        )
    }

    /// `sys.sp_cdc_enable_table` with the names as parameters.
    pub fn enable_table(
        &mut self,
        table: &TableRef,
        supports_net_changes: bool,
    ) -> Result<(), Error> {
        let mut query = Query::new(ENABLE_TABLE_STATEMENT);
        query.bind(table.schema.as_str());
        query.bind(table.table.as_str());
        query.bind(supports_net_changes);
        self.execute(&format!("enabling CDC on {table}"), query)
    }

    /// `sys.sp_cdc_cleanup_change_table` up to `low_water_mark`.
    pub fn cleanup(&mut self, capture_instance: &str, low_water_mark: &[u8]) -> Result<(), Error> {
        let mut query = Query::new(CLEANUP_STATEMENT);
        query.bind(capture_instance);
        query.bind(low_water_mark);
        query.bind(CLEANUP_THRESHOLD);
        self.execute(
            &format!("cleaning capture instance {capture_instance}"),
            query,
        )
    }
}

fn query_error(what: &str, source: tiberius::error::Error) -> Error {
    Error::Query {
        what: what.to_string(),
        source: Box::new(source),
    }
}

fn required<T>(
    value: Result<Option<T>, tiberius::error::Error>,
    what: &str,
    column: &str,
) -> Result<T, Error> {
    value
        .map_err(|source| query_error(what, source))?
        .ok_or_else(|| Error::UnexpectedResult {
            what: what.to_string(),
            message: format!("`{column}` is NULL"),
        })
}

fn text(row: &Row, what: &str, column: &str) -> Result<String, Error> {
    required(row.try_get::<&str, _>(column), what, column).map(str::to_string)
}

fn optional_text(row: &Row, what: &str, column: &str) -> Result<Option<String>, Error> {
    row.try_get::<&str, _>(column)
        .map(|value| value.map(str::to_string))
        .map_err(|source| query_error(what, source))
}

fn flag(row: &Row, what: &str, column: &str) -> Result<bool, Error> {
    required(row.try_get::<bool, _>(column), what, column)
}
