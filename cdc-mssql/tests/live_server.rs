//! Against a real SQL Server, when `CDC_TEST_MSSQL_URL` is set
//! (`mssql://sa:<password>@localhost:1433/master?trust_server_certificate=true`;
//! the README shows how to start one in a container). Without it every test
//! here says that it was skipped and checks nothing.
//!
//! The tests create a throwaway database `cdc_test_<pid>`, so the login needs
//! `CREATE DATABASE` (and sysadmin for `sys.sp_cdc_enable_db`), and drop it at the end.

use cdc_mssql::catalog::tables_from_rows;
use cdc_mssql::connection::ConnectionSettings;
use cdc_mssql::driver::SourceConnection;
use cdc_mssql::plan::{plan_clean, plan_enable, EnableStep};
use cdc_mssql::table_yaml::render_table_yaml;
use cdc_mssql::TableRef;

const VARIABLE: &str = "CDC_TEST_MSSQL_URL";

fn server() -> Option<ConnectionSettings> {
    match std::env::var(VARIABLE) {
        Ok(url) if !url.is_empty() => Some(ConnectionSettings::from_url(&url).unwrap()),
        _ => {
            eprintln!("SKIPPED: {VARIABLE} is not set, so no SQL Server test ran (see the README)");
            None
        }
    }
}

/// A database of its own for one test, dropped when done.
struct Scratch {
    admin: SourceConnection,
    name: String,
}

impl Scratch {
    fn new(settings: &ConnectionSettings, tag: &str) -> (Scratch, SourceConnection) {
        let name = format!("cdc_test_{}_{tag}", std::process::id());
        let mut admin = SourceConnection::connect(settings).unwrap();
        admin
            .execute_batch(&format!("CREATE DATABASE [{name}];"))
            .unwrap();
        let mut inside = settings.clone();
        inside.database = name.clone();
        let connection = SourceConnection::connect(&inside).unwrap();
        (Scratch { admin, name }, connection)
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = self.admin.execute_batch(&format!(
            "ALTER DATABASE [{0}] SET SINGLE_USER WITH ROLLBACK IMMEDIATE; DROP DATABASE [{0}];",
            self.name
        ));
    }
}

/// An alias type, in a batch of its own as CREATE TYPE wants.
const SETUP_TYPE: &str = "CREATE TYPE dbo.Phone FROM nvarchar(20) NULL;";

const SETUP: &str = "
CREATE TABLE dbo.[x]]; DROP TABLE y --] (
    [LineNo] int NOT NULL,
    [OrderId] bigint IDENTITY(1,1) NOT NULL,
    [Name] nvarchar(50) NOT NULL CONSTRAINT df_name DEFAULT (N'it''s'),
    [Phone] dbo.Phone,
    [Notes] nvarchar(max) NULL,
    [Amount] decimal(18,2) NOT NULL DEFAULT ((0)),
    [At] datetime2(3) NOT NULL DEFAULT (getdate()),
    [Total] AS ([Amount] * 2),
    CONSTRAINT pk_x PRIMARY KEY ([OrderId], [LineNo])
);
CREATE TABLE dbo.NoKey (a int NULL);
";

#[test]
fn inspect_reads_the_catalog_as_recorded() {
    let Some(settings) = server() else { return };
    let (_scratch, mut source) = Scratch::new(&settings, "inspect");
    source.execute_batch(SETUP_TYPE).unwrap();
    source.execute_batch(SETUP).unwrap();
    let rows = source.catalog_rows(Some("dbo")).unwrap();
    let tables = tables_from_rows(&rows, Some("db"), Some("svc")).unwrap();
    let hostile = tables
        .iter()
        .find(|t| t.table == "x]; DROP TABLE y --")
        .expect("hostile table inspected");
    let yaml = render_table_yaml(hostile);
    for expected in [
        "primary_key:\n  - OrderId\n  - LineNo\n",
        "  - name: Name\n    type: nvarchar\n    max_length: 50\n    nullable: false\n    default_value: (N'it''s')\n",
        "  - name: Phone\n    type: nvarchar\n    max_length: 20\n",
        "    max_length: -1\n",
        "    identity: true\n",
        "    default_value: ((0))\n",
        "  - name: At\n    type: datetime2\n    precision: 3\n",
        "    computed: ([Amount]*(2))\n",
    ] {
        assert!(yaml.contains(expected), "missing {expected:?} in\n{yaml}");
    }
}

#[test]
fn enable_then_clean_cdc() {
    let Some(settings) = server() else { return };
    let (_scratch, mut source) = Scratch::new(&settings, "enable");
    source.execute_batch(SETUP_TYPE).unwrap();
    source.execute_batch(SETUP).unwrap();
    let scope = [
        TableRef::new("dbo", "x]; DROP TABLE y --"),
        TableRef::new("dbo", "NoKey"),
    ];
    let database = source.database_status().unwrap();
    let status = source.table_status().unwrap();
    let steps = plan_enable(database.is_cdc_enabled, &scope, &status);
    assert_eq!(steps[0], EnableStep::EnableDatabase);
    source.enable_database().unwrap();
    for step in &steps[1..] {
        let EnableStep::EnableTable {
            table,
            supports_net_changes,
        } = step
        else {
            panic!("unexpected {step:?}");
        };
        assert_eq!(*supports_net_changes, table.table != "NoKey");
        source.enable_table(table, *supports_net_changes).unwrap();
    }
    let again = plan_enable(true, &scope, &source.table_status().unwrap());
    assert!(again
        .iter()
        .all(|s| matches!(s, EnableStep::AlreadyTracked(_))));
    let instances = source.capture_instances().unwrap();
    assert_eq!(instances.len(), 2);
    // Nothing is 30 days old in a new database: every instance is up to date.
    let mark = source.low_water_mark(30).unwrap();
    for step in plan_clean(&scope, &instances, mark.as_deref()) {
        assert!(
            matches!(step, cdc_mssql::plan::CleanStep::UpToDate(_)),
            "{step:?}"
        );
    }
}
