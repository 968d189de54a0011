//! The Citus harness: a coordinator and two workers, a distributed table, rows on both workers.

use cdc_testkit::citus::{shared_cluster, WORKERS};

#[test]
fn a_distributed_table_spreads_its_rows_over_both_workers() {
    let cluster = shared_cluster();
    let db = cluster.create_database("citus_smoke");
    let mut client = cluster.client(&db);
    let workers: i64 = client
        .query_one(
            "SELECT count(*) FROM pg_dist_node WHERE noderole = 'primary' AND groupid <> 0",
            &[],
        )
        .unwrap()
        .get(0);
    assert_eq!(workers, WORKERS as i64);
    client
        .batch_execute(
            "CREATE TABLE events (tenant int NOT NULL, id int NOT NULL, PRIMARY KEY (tenant, id));
             SELECT create_distributed_table('events', 'tenant');
             INSERT INTO events SELECT t, i FROM generate_series(1, 50) t, generate_series(1, 4) i;",
        )
        .unwrap();
    let total: i64 = client
        .query_one("SELECT count(*) FROM events", &[])
        .unwrap()
        .get(0);
    assert_eq!(total, 200);
    // Every worker holds shards with rows, and the rows of all shards add up.
    let per_node = client
        .query(
            "SELECT nodeport, sum(result::bigint)::bigint
               FROM run_command_on_shards('events', 'SELECT count(*) FROM %s')
               JOIN citus_shards USING (shardid)
              GROUP BY nodeport ORDER BY nodeport",
            &[],
        )
        .unwrap();
    let ports: Vec<i32> = per_node.iter().map(|r| r.get(0)).collect();
    let mut worker_ports: Vec<i32> = cluster
        .nodes()
        .iter()
        .map(|n| i32::from(n.port()))
        .collect();
    worker_ports.sort_unstable();
    assert_eq!(ports, worker_ports, "shards on both workers");
    for row in &per_node {
        assert!(
            row.get::<_, i64>(1) > 0,
            "rows on worker {}",
            row.get::<_, i32>(0)
        );
    }
    let sum: i64 = per_node.iter().map(|r| r.get::<_, i64>(1)).sum();
    assert_eq!(sum, 200);
    // The rows are really on the workers: count them in each worker's shard tables directly.
    let mut direct = 0;
    for node in cluster.nodes() {
        let mut worker = node.client(&db);
        // Citus hides shard tables from pg_class unless told otherwise.
        worker
            .batch_execute("SET citus.override_table_visibility = off")
            .unwrap();
        let shards: Vec<String> = worker
            .query(
                "SELECT relname::text FROM pg_class WHERE relname ~ '^events_[0-9]+$' AND relkind = 'r'",
                &[],
            )
            .unwrap()
            .iter()
            .map(|r| r.get(0))
            .collect();
        assert!(!shards.is_empty(), "worker {} has shards", node.port());
        for shard in shards {
            let n: i64 = worker
                .query_one(&format!("SELECT count(*) FROM \"{shard}\""), &[])
                .unwrap()
                .get(0);
            direct += n;
        }
    }
    assert_eq!(direct, 200);
}
