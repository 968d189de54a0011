//! The one loop both drivers run: poll the protocol, send its command, hand back the answer, and let go of the session's hold if cut short.

use std::future::Future;
use std::time::{Duration, Instant};

use super::{Action, Cleanup, Command, Protocol, Reply};
use crate::error::ApplyError;

/// What a driver does: send a command, wait, and let go of what a session
/// holds when a run is cut short. Nothing else: every decision is the
/// protocol's.
pub(crate) trait Connection {
    /// Sends one command and returns the server's answer.
    fn execute(&mut self, command: &Command) -> impl Future<Output = Reply>;

    /// Waits before the next try of a refused lock.
    fn pause(&mut self, pause: Duration) -> impl Future<Output = ()>;

    /// Called when a run stops before its end (a panic, a dropped future):
    /// sends what releases `held`, without waiting for answers where waiting
    /// is impossible.
    fn abandon(&mut self, held: Cleanup);
}

/// Runs `protocol` to its end over `connection`.
///
/// The guard that releases the session's transaction and lock when the run
/// is cut short is this function's: a run that ends normally has released
/// both itself, so the guard has nothing left to do.
pub(crate) async fn drive<C: Connection, P: Protocol>(
    connection: C,
    mut protocol: P,
) -> Result<P::Output, ApplyError> {
    let mut session = Session {
        connection,
        held: Cleanup::default(),
    };
    loop {
        let action = protocol.poll(Instant::now());
        session.held = protocol.cleanup();
        match action {
            Action::Run(command) => {
                let reply = session.connection.execute(&command).await;
                protocol.complete(reply, Instant::now());
                session.held = protocol.cleanup();
            }
            Action::Sleep(pause) => session.connection.pause(pause).await,
            Action::Finished => return protocol.finish(),
        }
    }
}

/// The connection of a run and what its session holds right now.
struct Session<C: Connection> {
    connection: C,
    held: Cleanup,
}

impl<C: Connection> Drop for Session<C> {
    fn drop(&mut self) {
        if self.held != Cleanup::default() {
            self.connection.abandon(self.held);
        }
    }
}
