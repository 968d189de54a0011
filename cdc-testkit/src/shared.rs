//! The one server shared by all tests of a test binary.

use std::sync::OnceLock;

use crate::PgServer;

/// The shared server, or why it failed to start.
static SHARED: OnceLock<Result<PgServer, String>> = OnceLock::new();

/// The PostgreSQL server shared by every test in this test binary, started on first use.
///
/// Tests should isolate themselves with [`PgServer::create_database`]. The server is never
/// dropped (statics are not); it stops and its directory is removed when the test process exits,
/// because its guard watches the process (see [`PgServer`]).
///
/// # Panics
///
/// Panics with the [`HarnessError`](crate::HarnessError) message, in every test that calls it, if
/// the server cannot be started.
pub fn shared() -> &'static PgServer {
    match SHARED.get_or_init(|| PgServer::start().map_err(|e| e.to_string())) {
        Ok(server) => server,
        Err(e) => panic!("the shared PostgreSQL test server failed to start: {e}"),
    }
}
