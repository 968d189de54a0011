//! The migrator of one sink: its files, its limits and its observer; the drivers in `apply` and `apply_async` run it.

use std::time::Duration;

use cdc_core::Migrations;

use crate::error::ApplyError;
use crate::plan::ApplyEvent;

/// Limits of a run; the defaults keep a boot from hanging forever.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MigrateOptions {
    /// How long to wait for another migrator of the same sink (default 60 s).
    pub lock_wait: Duration,
    /// `lock_timeout` for every statement (default 30 s): a file waiting longer
    /// for a table lock fails instead of queueing forever.
    pub lock_timeout: Duration,
    /// `statement_timeout` for every statement (default 10 min).
    pub statement_timeout: Duration,
}

impl Default for MigrateOptions {
    fn default() -> Self {
        MigrateOptions {
            lock_wait: Duration::from_secs(60),
            lock_timeout: Duration::from_secs(30),
            statement_timeout: Duration::from_secs(600),
        }
    }
}

type Observer<'a> = Box<dyn Fn(ApplyEvent<'_>) + Send + Sync + 'a>;

/// Applies one sink's migrations, over a blocking client ([`Migrator::apply`])
/// or an async one ([`Migrator::apply_async`]); both run the same engine.
///
/// ```rust,no_run
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let migrations = cdc_runtime::Migrations::load_dir("migrations/sink_asma.directory".as_ref())?;
/// let mut client = cdc_runtime::postgres::Client::connect("host=localhost user=postgres dbname=directory_dev", cdc_runtime::postgres::NoTls)?;
/// let report = cdc_runtime::Migrator::new(&migrations)
///     .lock_wait(std::time::Duration::from_secs(30))
///     .apply(&mut client)?;
/// println!("{report}");
/// # Ok(()) }
/// ```
pub struct Migrator<'a> {
    pub(crate) migrations: &'a Migrations,
    pub(crate) options: MigrateOptions,
    observer: Option<Observer<'a>>,
}

impl std::fmt::Debug for Migrator<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Migrator")
            .field("sink", &self.migrations.sink())
            .field("files", &self.migrations.files().len())
            .field("options", &self.options)
            .finish()
    }
}

impl<'a> Migrator<'a> {
    /// A migrator with default options.
    pub fn new(migrations: &'a Migrations) -> Migrator<'a> {
        Migrator {
            migrations,
            options: MigrateOptions::default(),
            observer: None,
        }
    }

    /// Replaces all options.
    pub fn options(mut self, options: MigrateOptions) -> Self {
        self.options = options;
        self
    }

    /// How long to wait for another migrator of the same sink.
    pub fn lock_wait(mut self, wait: Duration) -> Self {
        self.options.lock_wait = wait;
        self
    }

    /// `lock_timeout` for every statement.
    pub fn lock_timeout(mut self, timeout: Duration) -> Self {
        self.options.lock_timeout = timeout;
        self
    }

    /// `statement_timeout` for every statement.
    pub fn statement_timeout(mut self, timeout: Duration) -> Self {
        self.options.statement_timeout = timeout;
        self
    }

    /// Calls `observer` as the run progresses (waiting for the lock, each file).
    pub fn on_event(mut self, observer: impl Fn(ApplyEvent<'_>) + Send + Sync + 'a) -> Self {
        self.observer = Some(Box::new(observer));
        self
    }

    /// Checks every file's checksum against its body (whether or not the set
    /// was verified when built).
    pub fn verify(&self) -> Result<(), ApplyError> {
        self.migrations
            .files()
            .iter()
            .try_for_each(crate::plan::verify_file)
    }

    pub(crate) fn emit(&self, event: ApplyEvent<'_>) {
        if let Some(observer) = &self.observer {
            observer(event);
        }
    }
}
