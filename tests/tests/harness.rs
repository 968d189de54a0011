//! Proves the real-PostgreSQL harness: the shared server, fresh databases, `psql`, and an owned
//! server that stops when dropped.

use std::net::TcpStream;
use std::time::Duration;

use cdc_testkit::{shared, PgServer};

#[test]
fn shared_server_serves_separate_fresh_databases() {
    let server = shared();
    assert_eq!(server.host(), "127.0.0.1");
    assert_eq!(server.user(), "postgres");
    assert_ne!(server.port(), 0);

    let first = server.create_database("harness");
    let second = server.create_database("harness");
    assert_ne!(first, second);
    assert!(first.starts_with("harness_"), "{first}");

    for db in [&first, &second] {
        let mut client = server.client(db);
        let one: i32 = client.query_one("SELECT 1", &[]).unwrap().get(0);
        assert_eq!(one, 1);
        let version: String = client.query_one("SHOW server_version", &[]).unwrap().get(0);
        assert!(version.starts_with("15"), "server_version is {version}");
        let current: String = client
            .query_one("SELECT current_database()", &[])
            .unwrap()
            .get(0);
        assert_eq!(&current, db);
    }

    let mut client = server.client(&first);
    client
        .batch_execute(
            "CREATE TABLE item (id int PRIMARY KEY, name text NOT NULL);
             INSERT INTO item VALUES (1, 'one'), (2, 'two');",
        )
        .unwrap();
    let rows: Vec<(i32, String)> = client
        .query("SELECT id, name FROM item ORDER BY id", &[])
        .unwrap()
        .iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect();
    assert_eq!(rows, [(1, "one".to_owned()), (2, "two".to_owned())]);

    let mut other = server.client(&second);
    let visible: i64 = other
        .query_one(
            "SELECT count(*) FROM pg_tables WHERE tablename = 'item'",
            &[],
        )
        .unwrap()
        .get(0);
    assert_eq!(visible, 0, "a table of {first} is visible in {second}");
}

#[test]
fn shared_server_is_reachable_with_psql() {
    let server = shared();
    let db = server.create_database("psql");
    let out = server.psql(
        &db,
        &["-At", "-v", "ON_ERROR_STOP=1", "-c", "SELECT 40 + 2"],
    );
    assert!(
        out.status.success(),
        "psql failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "42");

    let failing = server.psql(
        &db,
        &["-v", "ON_ERROR_STOP=1", "-c", "SELECT * FROM missing"],
    );
    assert!(!failing.status.success());
    assert!(String::from_utf8_lossy(&failing.stderr).contains("missing"));
}

#[test]
fn connection_string_works_with_the_postgres_crate() {
    let server = shared();
    let db = server.create_database("conninfo");
    let conninfo = server.connection_string(&db);
    assert!(
        conninfo.contains(&format!("port={}", server.port())),
        "{conninfo}"
    );
    let mut client = postgres::Client::connect(&conninfo, postgres::NoTls).unwrap();
    let user: String = client.query_one("SELECT current_user", &[]).unwrap().get(0);
    assert_eq!(user, "postgres");
}

#[test]
fn owned_server_stops_and_cleans_up_when_dropped() {
    let server =
        PgServer::start().unwrap_or_else(|e| panic!("starting an owned PostgreSQL server: {e}"));
    let port = server.port();
    let data_dir = server.data_dir().to_owned();
    assert!(data_dir.join("PG_VERSION").is_file());
    let db = server.create_database("owned");
    let mut client = server.client(&db);
    let one: i32 = client.query_one("SELECT 1", &[]).unwrap().get(0);
    assert_eq!(one, 1);
    drop(client);

    drop(server);

    let addr = ("127.0.0.1", port);
    let refused = std::net::ToSocketAddrs::to_socket_addrs(&addr)
        .unwrap()
        .all(|a| TcpStream::connect_timeout(&a, Duration::from_secs(2)).is_err());
    assert!(refused, "port {port} still accepts connections after drop");
    assert!(
        !data_dir.exists(),
        "{} still exists after drop",
        data_dir.display()
    );
}
