//! Connecting to the sink database: the spec's environment variables, TLS
//! modes, and a bounded retry with backoff while the server is not up yet.
//! The password is never printed: `Debug` redacts it and errors name only
//! `host:port/dbname`.

use std::fmt;
use std::str::FromStr;
use std::time::{Duration, Instant};

use crate::error::ApplyError;

/// TLS mode, as libpq's `sslmode`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SslMode {
    /// No TLS.
    Disable,
    /// TLS when the server offers it, without certificate checks (libpq's default).
    #[default]
    Prefer,
    /// TLS required, without certificate checks.
    Require,
    /// TLS required; the certificate chain and host name are verified.
    VerifyFull,
}

impl FromStr for SslMode {
    type Err = String;

    fn from_str(text: &str) -> Result<SslMode, String> {
        match text.trim().to_ascii_lowercase().as_str() {
            "disable" => Ok(SslMode::Disable),
            "prefer" | "allow" => Ok(SslMode::Prefer),
            "require" => Ok(SslMode::Require),
            "verify-full" | "verify-ca" => Ok(SslMode::VerifyFull),
            other => Err(format!(
                "unknown sslmode `{other}` (expected disable, prefer, require or verify-full)"
            )),
        }
    }
}

/// Where and how to connect.
#[derive(Clone, PartialEq, Eq)]
pub struct ConnectOptions {
    /// Host name or address.
    pub host: String,
    /// TCP port.
    pub port: u16,
    /// User name.
    pub user: String,
    /// Password, if any (never printed).
    pub password: Option<String>,
    /// Database name.
    pub dbname: String,
    /// TLS mode.
    pub sslmode: SslMode,
    /// Timeout of one connection attempt.
    pub connect_timeout: Duration,
    /// How long to keep retrying while the server is unreachable.
    pub retry_for: Duration,
}

impl fmt::Debug for ConnectOptions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ConnectOptions")
            .field("host", &self.host)
            .field("port", &self.port)
            .field("user", &self.user)
            .field("password", &self.password.as_ref().map(|_| "<redacted>"))
            .field("dbname", &self.dbname)
            .field("sslmode", &self.sslmode)
            .finish()
    }
}

impl ConnectOptions {
    /// Options from `PG_<ENV>_HOST/PORT/USER/PASSWORD/SSLMODE`, falling back to
    /// `PG_HOST/...`, then to `localhost:5432`, user `postgres`, sslmode `prefer`.
    pub fn from_env(env: &str, dbname: &str) -> Result<ConnectOptions, String> {
        Self::from_lookup(env, dbname, |name| std::env::var(name).ok())
    }

    /// [`ConnectOptions::from_env`] over any variable source (for tests).
    pub fn from_lookup(
        env: &str,
        dbname: &str,
        lookup: impl Fn(&str) -> Option<String>,
    ) -> Result<ConnectOptions, String> {
        let prefix = env.to_ascii_uppercase().replace('-', "_");
        let var = |key: &str| {
            lookup(&format!("PG_{prefix}_{key}"))
                .or_else(|| lookup(&format!("PG_{key}")))
                .filter(|v| !v.is_empty())
        };
        let port = match var("PORT") {
            Some(p) => p
                .parse()
                .map_err(|_| format!("PG_{prefix}_PORT / PG_PORT: `{p}` is not a port number"))?,
            None => 5432,
        };
        let sslmode = match var("SSLMODE") {
            Some(mode) => mode.parse()?,
            None => SslMode::Prefer,
        };
        Ok(ConnectOptions {
            host: var("HOST").unwrap_or_else(|| "localhost".to_string()),
            port,
            user: var("USER").unwrap_or_else(|| "postgres".to_string()),
            password: var("PASSWORD"),
            dbname: dbname.to_string(),
            sslmode,
            connect_timeout: Duration::from_secs(10),
            retry_for: Duration::from_secs(30),
        })
    }

    /// `host:port/dbname`, for messages.
    pub fn target(&self) -> String {
        format!("{}:{}/{}", self.host, self.port, self.dbname)
    }

    /// The driver's configuration.
    pub fn config(&self) -> tokio_postgres::Config {
        let mut config = tokio_postgres::Config::new();
        config
            .host(&self.host)
            .port(self.port)
            .user(&self.user)
            .dbname(&self.dbname)
            .application_name("cdc-migrations")
            .connect_timeout(self.connect_timeout)
            .ssl_mode(match self.sslmode {
                SslMode::Disable => tokio_postgres::config::SslMode::Disable,
                SslMode::Prefer => tokio_postgres::config::SslMode::Prefer,
                SslMode::Require | SslMode::VerifyFull => tokio_postgres::config::SslMode::Require,
            });
        if let Some(password) = &self.password {
            config.password(password);
        }
        config
    }

    fn tls(&self) -> Result<postgres_native_tls::MakeTlsConnector, ApplyError> {
        let mut builder = native_tls::TlsConnector::builder();
        if self.sslmode != SslMode::VerifyFull {
            // libpq's prefer/require encrypt without verifying the certificate.
            builder
                .danger_accept_invalid_certs(true)
                .danger_accept_invalid_hostnames(true);
        }
        let connector = builder
            .build()
            .map_err(|e| ApplyError::Tls(e.to_string()))?;
        Ok(postgres_native_tls::MakeTlsConnector::new(connector))
    }
}

/// Whether a failed attempt may succeed later (server down or starting up),
/// as opposed to a refusal such as a wrong password or an unknown database.
fn is_transient(error: &tokio_postgres::Error) -> bool {
    match error.code() {
        Some(code) => *code == tokio_postgres::error::SqlState::CANNOT_CONNECT_NOW,
        None => true,
    }
}

/// The retry policy of a connection: 100 ms, 200 ms, ... up to 2 s between
/// attempts, for at most `retry_for`, and only while the failure is transient.
struct Backoff<'a> {
    options: &'a ConnectOptions,
    started: Instant,
    pause: Duration,
    attempts: u32,
}

impl<'a> Backoff<'a> {
    fn new(options: &'a ConnectOptions) -> Backoff<'a> {
        Backoff {
            options,
            started: Instant::now(),
            pause: Duration::from_millis(100),
            attempts: 0,
        }
    }

    /// After a failed attempt: how long to wait before the next, or the final error.
    fn after_failure(&mut self, source: tokio_postgres::Error) -> Result<Duration, ApplyError> {
        self.attempts += 1;
        let elapsed = self.started.elapsed();
        if !is_transient(&source) || elapsed + self.pause > self.options.retry_for {
            return Err(ApplyError::Connect {
                target: self.options.target(),
                attempts: self.attempts,
                elapsed,
                source,
            });
        }
        let pause = self.pause;
        self.pause = (self.pause * 2).min(Duration::from_secs(2));
        Ok(pause)
    }
}

fn retry<T>(
    options: &ConnectOptions,
    mut attempt: impl FnMut() -> Result<T, tokio_postgres::Error>,
) -> Result<T, ApplyError> {
    let mut backoff = Backoff::new(options);
    loop {
        match attempt() {
            Ok(value) => return Ok(value),
            Err(source) => std::thread::sleep(backoff.after_failure(source)?),
        }
    }
}

/// Connects (blocking), retrying while the server is unreachable.
pub fn connect(options: &ConnectOptions) -> Result<postgres::Client, ApplyError> {
    let config = postgres::Config::from(options.config());
    if options.sslmode == SslMode::Disable {
        return retry(options, || config.connect(postgres::NoTls));
    }
    let tls = options.tls()?;
    retry(options, || config.connect(tls.clone()))
}

/// Connects (async), retrying while the server is unreachable; the connection
/// task is spawned on the current tokio runtime.
pub async fn connect_async(options: &ConnectOptions) -> Result<tokio_postgres::Client, ApplyError> {
    let config = options.config();
    let mut backoff = Backoff::new(options);
    loop {
        let result = if options.sslmode == SslMode::Disable {
            config
                .connect(tokio_postgres::NoTls)
                .await
                .map(|(client, connection)| {
                    tokio::spawn(connection);
                    client
                })
        } else {
            let tls = options.tls()?;
            config.connect(tls).await.map(|(client, connection)| {
                tokio::spawn(connection);
                client
            })
        };
        match result {
            Ok(client) => return Ok(client),
            Err(source) => tokio::time::sleep(backoff.after_failure(source)?).await,
        }
    }
}

/// Opens connections again and again, for a task that outlives one (the merge
/// scheduler reconnects with it): the driver configuration and its TLS
/// connector, built once. `Debug` shows only `host:port/dbname`.
#[derive(Clone)]
pub struct Connector {
    config: tokio_postgres::Config,
    tls: Option<postgres_native_tls::MakeTlsConnector>,
    target: String,
}

impl fmt::Debug for Connector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Connector")
            .field("target", &self.target)
            .field("tls", &self.tls.is_some())
            .finish()
    }
}

impl Connector {
    /// A connector for `options`, TLS as its `sslmode` says.
    pub fn new(options: &ConnectOptions) -> Result<Connector, ApplyError> {
        let tls = match options.sslmode {
            SslMode::Disable => None,
            _ => Some(options.tls()?),
        };
        Ok(Connector {
            config: options.config(),
            tls,
            target: options.target(),
        })
    }

    /// A connector for a driver configuration (for example one parsed from a
    /// `postgres://` URL or a `key=value` string), without TLS.
    pub fn without_tls(config: tokio_postgres::Config) -> Connector {
        let host = config
            .get_hosts()
            .first()
            .map(|host| match host {
                tokio_postgres::config::Host::Tcp(name) => name.clone(),
                #[cfg(unix)]
                tokio_postgres::config::Host::Unix(path) => path.display().to_string(),
            })
            .unwrap_or_default();
        let port = config.get_ports().first().copied().unwrap_or(5432);
        let target = format!("{host}:{port}/{}", config.get_dbname().unwrap_or(""));
        Connector {
            config,
            tls: None,
            target,
        }
    }

    /// `host:port/dbname`, for messages.
    pub fn target(&self) -> &str {
        &self.target
    }

    /// One connection attempt; the connection task is spawned on the current
    /// tokio runtime and ends when the connection does (the client then reports
    /// `is_closed()`).
    pub async fn connect(&self) -> Result<tokio_postgres::Client, tokio_postgres::Error> {
        let client = match &self.tls {
            None => {
                let (client, connection) = self.config.connect(tokio_postgres::NoTls).await?;
                tokio::spawn(connection);
                client
            }
            Some(tls) => {
                let (client, connection) = self.config.connect(tls.clone()).await?;
                tokio::spawn(connection);
                client
            }
        };
        Ok(client)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn environment_specific_variables_win() {
        let vars = [
            ("PG_PROD_HOST", "db.prod"),
            ("PG_HOST", "db.any"),
            ("PG_PORT", "6543"),
            ("PG_PASSWORD", "s3cret"),
        ];
        let lookup = |name: &str| {
            vars.iter()
                .find(|(k, _)| *k == name)
                .map(|(_, v)| v.to_string())
        };
        let options = ConnectOptions::from_lookup("prod", "directory", lookup).unwrap();
        assert_eq!(options.host, "db.prod");
        assert_eq!(options.port, 6543);
        assert_eq!(options.user, "postgres");
        assert_eq!(options.target(), "db.prod:6543/directory");
        let printed = format!("{options:?}");
        assert!(!printed.contains("s3cret"), "{printed}");
        let bad = ConnectOptions::from_lookup("dev", "d", |n| {
            (n == "PG_DEV_SSLMODE").then(|| "sometimes".to_string())
        });
        assert!(bad.unwrap_err().contains("sslmode"));
    }
}
