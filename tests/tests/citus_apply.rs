//! A sink with `distribution:` on a real Citus cluster (coordinator + 2 workers): apply through
//! the migrator, idempotent re-runs, placement and co-location of final, staging and tombstone
//! tables on both workers, convergence of added and widened columns on distributed tables, and
//! a clean `verify_schema` and live diff against the coordinator's catalog.

use std::path::{Path, PathBuf};

use cdc_build::diff::live::{expected_tables, live_sink_diff};
use cdc_build::GeneratedSink;
use cdc_core::schema::live::ExpectedTable;
use cdc_runtime::verify::read_catalog;
use cdc_runtime::{verify_schema, Migrator};
use cdc_testkit::citus::{shared_cluster, CitusCluster};
use cdc_testkit::citus_project::{
    apply_project, generate_project, rerun_every_file, shard_placements, stage_json,
};
use cdc_testkit::fixture::migrations_of;
use postgres::Client;

/// The golden fixture whose sink is distributed by `TenantId` (Orders), with a reference table
/// (Country) and a local one without a key (AuditLog).
fn fixture_project() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../cdc-build/tests/fixtures/distribution/project")
}

/// A copy of the fixture project in a temporary directory, to edit.
fn project_copy() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    cdc_testkit::copy_dir(&fixture_project(), dir.path());
    dir
}

fn database(cluster: &CitusCluster, prefix: &str) -> (String, Client) {
    let db = cluster.create_database(prefix);
    let client = cluster.client(&db);
    (db, client)
}

/// `(relation, placement, colocation id)` of every Citus-managed relation, sorted.
fn citus_tables(client: &mut Client) -> Vec<(String, String, i32)> {
    client
        .query(
            "SELECT logicalrelid::regclass::text,
                    CASE WHEN partmethod = 'h' THEN 'by ' || column_to_column_name(logicalrelid, partkey)
                         WHEN repmodel = 't' THEN 'reference' ELSE 'local' END,
                    colocationid
               FROM pg_dist_partition ORDER BY 1",
            &[],
        )
        .unwrap()
        .iter()
        .map(|r| (r.get(0), r.get(1), r.get(2)))
        .collect()
}

/// Triggers on the staging tables of schema `sales`.
fn staging_triggers(client: &mut Client) -> Vec<String> {
    client
        .query(
            "SELECT c.relname::text || '.' || g.tgname::text
               FROM pg_trigger g JOIN pg_class c ON c.oid = g.tgrelid
               JOIN pg_namespace n ON n.oid = c.relnamespace
              WHERE n.nspname = 'sales' AND NOT g.tgisinternal ORDER BY 1",
            &[],
        )
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect()
}

/// Every `(table, change kind)` the live diff reports for every sink.
fn live_diff(client: &mut Client, project: &Path) -> Vec<(String, String)> {
    let loaded = cdc_build::load_project(project, &cdc_build::Filter::default()).unwrap();
    let mut found = Vec::new();
    for sink in loaded.sinks() {
        let expected = expected_tables(sink, None);
        let wanted: Vec<ExpectedTable> = expected.iter().map(|(_, e)| e.clone()).collect();
        let live = read_catalog(client, &wanted).unwrap();
        for table in live_sink_diff(sink, &expected, &live).tables {
            for change in table.changes {
                found.push((table.table.clone(), format!("{:?}", change.kind)));
            }
        }
    }
    found
}

/// Every `verify_schema` finding for every sink, as text.
fn verify(client: &mut Client, sinks: &[GeneratedSink]) -> Vec<String> {
    sinks
        .iter()
        .flat_map(|sink| {
            let report = verify_schema(client, &migrations_of(sink)).unwrap();
            report
                .tables
                .iter()
                .filter(|t| !t.changes.is_empty())
                .map(|t| format!("{t:?}"))
                .collect::<Vec<_>>()
        })
        .collect()
}

/// The worker ports, sorted.
fn worker_ports(cluster: &CitusCluster) -> Vec<i32> {
    let mut ports: Vec<i32> = cluster
        .nodes()
        .iter()
        .map(|n| i32::from(n.port()))
        .collect();
    ports.sort_unstable();
    ports
}

#[test]
fn a_distributed_sink_applies_places_colocated_shards_on_both_workers_and_reapplies_as_a_no_op() {
    let cluster = shared_cluster();
    let (_db, mut client) = database(cluster, "citus_apply");
    let sinks = generate_project(&fixture_project());
    let files: usize = sinks.iter().map(|s| s.files.len()).sum();
    assert_eq!(
        apply_project(&mut client, &sinks),
        files,
        "every file applied"
    );

    let placed = citus_tables(&mut client);
    let relations: Vec<(&str, &str)> = placed
        .iter()
        .map(|(r, p, _)| (r.as_str(), p.as_str()))
        .collect();
    assert_eq!(
        relations,
        vec![
            ("sales.\"Country\"", "reference"),
            ("sales.\"Orders\"", "by TenantId"),
            ("sales.\"stg_Country\"", "reference"),
            ("sales.\"stg_Orders\"", "by TenantId"),
            ("sales.\"tomb_Country\"", "reference"),
            ("sales.\"tomb_Orders\"", "by TenantId"),
        ],
        "the local table and every management table stay plain coordinator tables"
    );
    let colocation = |name: &str| placed.iter().find(|(r, _, _)| r == name).unwrap().2;
    assert_eq!(
        colocation("sales.\"Orders\""),
        colocation("sales.\"stg_Orders\"")
    );
    assert_eq!(
        colocation("sales.\"Orders\""),
        colocation("sales.\"tomb_Orders\"")
    );
    // Citus-managed staging tables carry no trigger; the local table has no staging table.
    assert!(
        staging_triggers(&mut client).is_empty(),
        "{:?}",
        staging_triggers(&mut client)
    );

    // Shards: final, staging and tombstones on both workers, shard i of each on one node.
    let orders = shard_placements(&mut client, "sales.\"Orders\"");
    let staging = shard_placements(&mut client, "sales.\"stg_Orders\"");
    let tombstones = shard_placements(&mut client, "sales.\"tomb_Orders\"");
    let mut nodes: Vec<i32> = orders.iter().map(|s| s.node_port).collect();
    nodes.sort_unstable();
    nodes.dedup();
    assert_eq!(nodes, worker_ports(cluster), "final shards on both workers");
    assert_eq!(orders.len(), staging.len());
    assert_eq!(orders.len(), tombstones.len());
    for ((o, s), t) in orders.iter().zip(&staging).zip(&tombstones) {
        assert_eq!(
            (o.node_port, o.index),
            (s.node_port, s.index),
            "co-located staging shard"
        );
        assert_eq!(
            (o.node_port, o.index),
            (t.node_port, t.index),
            "co-located tombstone shard"
        );
    }

    // Staged events of many tenants land on both workers' staging shards.
    let rows: Vec<String> = (1..=40)
        .map(|t| format!(r#"{{"TenantId": {t}, "Id": 1, "Amount": 1.5, "__cdc_operation": "c", "__source_ts_ms": 1, "__kafka_offset": {t}}}"#))
        .collect();
    let staged = stage_json(
        &mut client,
        "sales",
        "stg_Orders",
        &format!("[{}]", rows.join(",")),
    );
    assert_eq!(staged, 40);
    let per_node: Vec<(i32, i64)> = client
        .query(
            "SELECT cs.nodeport, sum(r.result::bigint)::bigint
               FROM run_command_on_shards('sales.\"stg_Orders\"', 'SELECT count(*) FROM %s') AS r
               JOIN citus_shards AS cs USING (shardid)
              GROUP BY cs.nodeport ORDER BY cs.nodeport",
            &[],
        )
        .unwrap()
        .iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect();
    assert_eq!(
        per_node.iter().map(|p| p.0).collect::<Vec<_>>(),
        worker_ports(cluster)
    );
    assert!(per_node.iter().all(|p| p.1 > 0), "{per_node:?}");
    assert_eq!(per_node.iter().map(|p| p.1).sum::<i64>(), 40);

    // Re-apply: the migrator skips everything; running every file again changes nothing.
    assert_eq!(apply_project(&mut client, &sinks), 0);
    rerun_every_file(&mut client, &sinks);
    assert_eq!(citus_tables(&mut client), placed);
    assert_eq!(
        shard_placements(&mut client, "sales.\"Orders\"").len(),
        orders.len()
    );
    assert!(staging_triggers(&mut client).is_empty());

    assert_eq!(verify(&mut client, &sinks), Vec::<String>::new());
    assert_eq!(live_diff(&mut client, &fixture_project()), vec![]);
}

#[test]
fn distributed_tables_converge_added_and_widened_columns() {
    let cluster = shared_cluster();
    let (db, mut client) = database(cluster, "citus_converge");
    let project = project_copy();
    let sinks = generate_project(project.path());
    apply_project(&mut client, &sinks);
    client
        .batch_execute(
            "INSERT INTO sales.\"Orders\" (\"TenantId\", \"Id\", \"Amount\", \"Note\")
             SELECT t, 1, 2.5, 'forty characters at most' FROM generate_series(1, 20) AS t",
        )
        .unwrap();

    // The source widens Note and adds Qty.
    let orders_yaml = project.path().join("services/_schemas/app/dbo/Orders.yaml");
    let text = std::fs::read_to_string(&orders_yaml).unwrap();
    let text = text.replace("nvarchar(40)", "nvarchar(80)")
        + "  - {name: Qty, type: int, nullable: true}\n";
    std::fs::write(&orders_yaml, text).unwrap();
    let evolved = generate_project(project.path());
    assert!(
        live_diff(&mut client, project.path()).len() >= 2,
        "the live diff sees the YAML ahead of the cluster"
    );
    assert!(
        apply_project(&mut client, &evolved) >= 2,
        "table and staging files re-applied"
    );

    let columns = |client: &mut Client, relation: &str| -> Vec<String> {
        client
            .query(
                "SELECT a.attname::text || ' ' || format_type(a.atttypid, a.atttypmod)
                   FROM pg_attribute AS a
                  WHERE a.attrelid = $1::text::regclass AND a.attnum > 0 AND NOT a.attisdropped
                    AND a.attname IN ('Note', 'Qty')
                  ORDER BY a.attnum",
                &[&relation],
            )
            .unwrap()
            .iter()
            .map(|r| r.get(0))
            .collect()
    };
    let want = vec![
        "Note character varying(80)".to_string(),
        "Qty integer".to_string(),
    ];
    assert_eq!(columns(&mut client, "sales.\"Orders\""), want);
    assert_eq!(columns(&mut client, "sales.\"stg_Orders\""), want);
    // Citus propagated the ALTERs to every shard on the workers.
    for node in cluster.nodes() {
        let mut worker = node.client(&db);
        worker
            .batch_execute("SET citus.override_table_visibility = off")
            .unwrap();
        let shards: Vec<String> = worker
            .query(
                "SELECT format('%I.%I', n.nspname, c.relname)
                   FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
                  WHERE n.nspname = 'sales' AND c.relname ~ '^(stg_)?Orders_[0-9]+$'",
                &[],
            )
            .unwrap()
            .iter()
            .map(|r| r.get(0))
            .collect();
        assert!(!shards.is_empty(), "worker {} holds shards", node.port());
        for shard in shards {
            assert_eq!(columns(&mut worker, &shard), want, "{shard}");
        }
    }
    let kept: i64 = client
        .query_one(
            "SELECT count(*) FROM sales.\"Orders\" WHERE \"Note\" = 'forty characters at most'",
            &[],
        )
        .unwrap()
        .get(0);
    assert_eq!(kept, 20, "the rows survive the convergence");
    assert_eq!(verify(&mut client, &evolved), Vec::<String>::new());
    assert_eq!(live_diff(&mut client, project.path()), vec![]);
}

#[test]
fn the_same_files_apply_to_plain_postgresql_with_the_trigger_and_no_citus_call() {
    let server = cdc_testkit::shared();
    let db = server.create_database("citus_files_on_plain_pg");
    let mut client = server.client(&db);
    let sinks = generate_project(&fixture_project());
    apply_project(&mut client, &sinks);
    rerun_every_file(&mut client, &sinks);
    assert_eq!(
        staging_triggers(&mut client),
        vec![
            "stg_Country.cdc_mark_for_merge".to_string(),
            "stg_Orders.cdc_mark_for_merge".to_string(),
        ]
    );
    assert_eq!(verify(&mut client, &sinks), Vec::<String>::new());
    assert_eq!(live_diff(&mut client, &fixture_project()), vec![]);
    // Migrating later: a second migrator run has nothing to do.
    for sink in &sinks {
        let migrations = migrations_of(sink);
        assert_eq!(
            Migrator::new(&migrations)
                .apply(&mut client)
                .unwrap()
                .applied_count(),
            0
        );
    }
}

#[test]
fn a_sink_applied_before_citus_moves_onto_the_cluster_when_its_files_run_again() {
    let cluster = shared_cluster();
    let (db, mut client) = database(cluster, "citus_late");
    // The sink ran on this database before Citus was there: no extension yet.
    client.batch_execute("DROP EXTENSION citus").unwrap();
    let sinks = generate_project(&fixture_project());
    apply_project(&mut client, &sinks);
    assert_eq!(
        staging_triggers(&mut client).len(),
        2,
        "plain PostgreSQL: triggers"
    );
    client
        .batch_execute(
            "INSERT INTO sales.\"Orders\" (\"TenantId\", \"Id\") SELECT t, 1 FROM generate_series(1, 30) AS t;
             INSERT INTO sales.\"stg_Orders\" (\"TenantId\", \"Id\") SELECT t, 2 FROM generate_series(1, 10) AS t;",
        )
        .unwrap();
    // Citus arrives; the files run again (their history rows removed, as the README says).
    client.batch_execute("CREATE EXTENSION citus").unwrap();
    drop(client);
    let mut client = cluster.client(&db);
    client
        .batch_execute(&format!(
            "SELECT citus_set_coordinator_host('127.0.0.1', {});",
            cluster.coordinator().port()
        ))
        .unwrap();
    for node in cluster.nodes() {
        client
            .batch_execute(&format!(
                "SELECT citus_add_node('127.0.0.1', {})",
                node.port()
            ))
            .unwrap();
    }
    client
        .batch_execute("DELETE FROM cdc_management.migration_history")
        .unwrap();
    apply_project(&mut client, &sinks);
    assert_eq!(
        citus_tables(&mut client)
            .iter()
            .filter(|(r, _, _)| r.contains("Orders"))
            .map(|(_, p, _)| p.as_str())
            .collect::<Vec<_>>(),
        vec!["by TenantId"; 3]
    );
    assert!(staging_triggers(&mut client).is_empty(), "triggers dropped");
    // The rows moved into the shards, and the shell tables hold none of their own.
    let count =
        |client: &mut Client, sql: &str| -> i64 { client.query_one(sql, &[]).unwrap().get(0) };
    assert_eq!(
        count(&mut client, "SELECT count(*) FROM sales.\"Orders\""),
        30
    );
    assert_eq!(
        count(&mut client, "SELECT count(*) FROM sales.\"stg_Orders\""),
        10
    );
    // pg_relation_size reads the coordinator's own heap of the shell table.
    for shell in ["sales.\"Orders\"", "sales.\"stg_Orders\""] {
        let local: i64 = client
            .query_one("SELECT pg_relation_size($1::text::regclass)", &[&shell])
            .unwrap()
            .get(0);
        assert_eq!(
            local, 0,
            "local rows of {shell} truncated after distributing"
        );
    }
    assert_eq!(verify(&mut client, &sinks), Vec::<String>::new());
    assert_eq!(live_diff(&mut client, &fixture_project()), vec![]);
}

#[test]
fn a_table_placed_otherwise_is_refused_with_the_manual_step() {
    let cluster = shared_cluster();
    let (_db, mut client) = database(cluster, "citus_placed_otherwise");
    let sinks = generate_project(&fixture_project());
    client
        .batch_execute(
            "CREATE SCHEMA sales;
             CREATE TABLE sales.\"Country\" (\"Code\" char(2) PRIMARY KEY);
             SELECT create_distributed_table('sales.\"Country\"', 'Code');",
        )
        .unwrap();
    let migrations = migrations_of(&sinks[0]);
    let error = Migrator::new(&migrations)
        .apply(&mut client)
        .expect_err("the YAML says reference")
        .to_string();
    assert!(error.contains("Country.sql"), "{error}");
    assert!(
        error.contains("is placed on Citus as by Code, the YAML says reference"),
        "{error}"
    );
}
