//! Real-PostgreSQL test harness: starts throwaway PostgreSQL 15 clusters for integration tests.
//!
//! The harness runs the machine's own PostgreSQL binaries (`initdb`, `postgres`, `psql`):
//!
//! * binaries come from `$PG_BINDIR` if set, else `pg_config --bindir`, else
//!   `/usr/lib/postgresql/15/bin`;
//! * every cluster lives in its own [`tempfile::TempDir`], is initialised with trust
//!   authentication, `UTF8` encoding, the `C` locale and the superuser `postgres`, and listens on
//!   `127.0.0.1` on a free port, with its unix socket inside the temporary directory;
//! * durability is switched off for speed (`fsync`, `synchronous_commit` and
//!   `full_page_writes` are off) and `max_connections` is 200;
//! * when the tests run as root (as CI does), `initdb` and the server run as the `postgres`
//!   operating-system user, because PostgreSQL refuses to run as root;
//! * a server never outlives the process that started it: the postmaster is started under a small
//!   shell guard that shuts it down (and removes its directory) as soon as the test process exits,
//!   however it exits.
//!
//! Most tests want [`shared()`], one server per test binary, and a fresh database each:
//!
//! ```no_run
//! let server = cdc_testkit::shared();
//! let db = server.create_database("orders");
//! let mut client = server.client(&db);
//! let one: i32 = client.query_one("SELECT 1", &[]).unwrap().get(0);
//! assert_eq!(one, 1);
//! ```
//!
//! A test that needs a server of its own (for example to stop it) uses [`PgServer::start`]; the
//! server is stopped and its directory removed when the [`PgServer`] is dropped.
//!
//! [`citus::CitusCluster`] starts a coordinator and two workers with Citus loaded.
//!
//! With the default feature `fixture`, [`fixture`] generates the bundled example in memory and
//! applies it, and [`merge`] stages change events into its staging tables (bound parameters),
//! runs its merges and reads back what they left.

mod binaries;
pub mod citus;
#[cfg(feature = "fixture")]
pub mod citus_project;
mod error;
mod files;
#[cfg(feature = "fixture")]
pub mod fixture;
#[cfg(feature = "fixture")]
pub mod merge;
mod os_user;
mod postmaster;
mod server;
mod shared;
mod startup;

pub use error::HarnessError;
pub use files::copy_dir;
pub use server::PgServer;
pub use shared::shared;
