//! Connection settings: from `MSSQL_<ENV>_*` then `MSSQL_*` variables, or from
//! a `mssql://` URL (the real-server tests). The password is never shown.

use std::fmt;

use crate::error::Error;

/// The default SQL Server port.
pub const DEFAULT_PORT: u16 = 1433;

/// Where and how to connect to the source database.
#[derive(Clone, PartialEq, Eq)]
pub struct ConnectionSettings {
    /// Host name or address.
    pub host: String,
    /// TCP port.
    pub port: u16,
    /// Database name.
    pub database: String,
    /// SQL Server login.
    pub user: String,
    /// Its password; never printed.
    pub password: String,
    /// Encrypt the connection (default true).
    pub encrypt: bool,
    /// Accept the server's certificate without checking it (default false).
    pub trust_server_certificate: bool,
}

impl fmt::Debug for ConnectionSettings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ConnectionSettings")
            .field("host", &self.host)
            .field("port", &self.port)
            .field("database", &self.database)
            .field("user", &self.user)
            .field("password", &"<hidden>")
            .field("encrypt", &self.encrypt)
            .field("trust_server_certificate", &self.trust_server_certificate)
            .finish()
    }
}

impl fmt::Display for ConnectionSettings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}:{}, database {}, user {}",
            self.host, self.port, self.database, self.user
        )
    }
}

impl ConnectionSettings {
    /// Reads `MSSQL_<ENV>_<KEY>`, then `MSSQL_<KEY>` (only the latter without an
    /// environment), through `lookup`
    /// (`std::env::var` in the CLI). Keys: HOST, PORT (1433), DATABASE, USER,
    /// PASSWORD, ENCRYPT (true), TRUST_SERVER_CERTIFICATE (false).
    pub fn from_env(
        env: Option<&str>,
        lookup: impl Fn(&str) -> Option<String>,
    ) -> Result<ConnectionSettings, Error> {
        let prefix: Option<String> = env.map(|env| {
            env.chars()
                .map(|c| {
                    if c.is_ascii_alphanumeric() {
                        c.to_ascii_uppercase()
                    } else {
                        '_'
                    }
                })
                .collect()
        });
        let get = |key: &str| -> (String, Option<String>) {
            let generic = format!("MSSQL_{key}");
            let Some(prefix) = &prefix else {
                let value = lookup(&generic).filter(|v| !v.is_empty());
                return (generic, value);
            };
            let specific = format!("MSSQL_{prefix}_{key}");
            if let Some(value) = lookup(&specific).filter(|v| !v.is_empty()) {
                return (specific, Some(value));
            }
            let value = lookup(&generic).filter(|v| !v.is_empty());
            (if value.is_some() { generic } else { specific }, value)
        };
        let required = |key: &str| -> Result<String, Error> {
            match get(key) {
                (_, Some(value)) => Ok(value),
                (variable, None) => Err(Error::MissingSetting {
                    variable,
                    fallback: prefix.as_ref().map(|_| format!("MSSQL_{key}")),
                }),
            }
        };
        let port = match get("PORT") {
            (_, None) => DEFAULT_PORT,
            (variable, Some(text)) => parse_port(&variable, &text)?,
        };
        let flag = |key: &str, default: bool| -> Result<bool, Error> {
            match get(key) {
                (_, None) => Ok(default),
                (variable, Some(text)) => parse_flag(&variable, &text),
            }
        };
        Ok(ConnectionSettings {
            host: required("HOST")?,
            port,
            database: required("DATABASE")?,
            user: required("USER")?,
            password: required("PASSWORD")?,
            encrypt: flag("ENCRYPT", true)?,
            trust_server_certificate: flag("TRUST_SERVER_CERTIFICATE", false)?,
        })
    }

    /// Parses `mssql://user:password@host[:port]/database[?encrypt=..&trust_server_certificate=..]`;
    /// user and password may be percent-encoded.
    pub fn from_url(url: &str) -> Result<ConnectionSettings, Error> {
        let invalid = |message: &str| Error::InvalidSetting {
            variable: "the connection URL".to_string(),
            message: message.to_string(),
        };
        let rest = url
            .strip_prefix("mssql://")
            .or_else(|| url.strip_prefix("sqlserver://"))
            .ok_or_else(|| invalid("it must start with mssql://"))?;
        let (rest, query) = rest.split_once('?').unwrap_or((rest, ""));
        let (credentials, location) = rest
            .rsplit_once('@')
            .ok_or_else(|| invalid("it must name user:password@host"))?;
        let (user, password) = credentials
            .split_once(':')
            .ok_or_else(|| invalid("it must name user:password@host"))?;
        let (address, database) = location
            .split_once('/')
            .ok_or_else(|| invalid("it must name a database after the host (/database)"))?;
        let (host, port) = match address.rsplit_once(':') {
            Some((host, port)) => (host, parse_port("the URL's port", port)?),
            None => (address, DEFAULT_PORT),
        };
        let mut settings = ConnectionSettings {
            host: host.to_string(),
            port,
            database: percent_decode(database).map_err(|m| invalid(&m))?,
            user: percent_decode(user).map_err(|m| invalid(&m))?,
            password: percent_decode(password).map_err(|m| invalid(&m))?,
            encrypt: true,
            trust_server_certificate: false,
        };
        if host.is_empty() || settings.database.is_empty() {
            return Err(invalid("the host and the database must not be empty"));
        }
        for pair in query.split('&').filter(|p| !p.is_empty()) {
            let (key, value) = pair.split_once('=').unwrap_or((pair, "true"));
            match key {
                "encrypt" => settings.encrypt = parse_flag(key, value)?,
                "trust_server_certificate" => {
                    settings.trust_server_certificate = parse_flag(key, value)?
                }
                other => return Err(invalid(&format!("unknown parameter `{other}`"))),
            }
        }
        Ok(settings)
    }

    /// The driver's configuration.
    pub fn tiberius_config(&self) -> tiberius::Config {
        let mut config = tiberius::Config::new();
        config.host(&self.host);
        config.port(self.port);
        config.database(&self.database);
        config.authentication(tiberius::AuthMethod::sql_server(&self.user, &self.password));
        config.encryption(if self.encrypt {
            tiberius::EncryptionLevel::Required
        } else {
            tiberius::EncryptionLevel::Off
        });
        if self.trust_server_certificate {
            config.trust_cert();
        }
        config.application_name("cdc");
        config
    }
}

fn parse_port(variable: &str, text: &str) -> Result<u16, Error> {
    text.trim()
        .parse::<u16>()
        .ok()
        .filter(|port| *port > 0)
        .ok_or_else(|| Error::InvalidSetting {
            variable: variable.to_string(),
            message: format!("`{text}` is not a port number"),
        })
}

fn parse_flag(variable: &str, text: &str) -> Result<bool, Error> {
    match text.trim().to_ascii_lowercase().as_str() {
        "1" | "true" | "yes" | "on" => Ok(true),
        "0" | "false" | "no" | "off" => Ok(false),
        _ => Err(Error::InvalidSetting {
            variable: variable.to_string(),
            message: format!("`{text}` is not true or false"),
        }),
    }
}

fn percent_decode(text: &str) -> Result<String, String> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut index = 0;
    while index < bytes.len() {
        if bytes[index] == b'%' {
            let hex = text
                .get(index + 1..index + 3)
                .and_then(|h| u8::from_str_radix(h, 16).ok())
                .ok_or_else(|| "a `%` is not followed by two hex digits".to_string())?;
            out.push(hex);
            index += 3;
        } else {
            out.push(bytes[index]);
            index += 1;
        }
    }
    String::from_utf8(out).map_err(|_| "percent-encoding that is not UTF-8".to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn lookup(vars: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let map: HashMap<String, String> = vars
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        move |key| map.get(key).cloned()
    }

    #[test]
    fn environment_specific_variables_win_over_generic_ones() {
        let settings = ConnectionSettings::from_env(
            Some("dev"),
            lookup(&[
                ("MSSQL_DEV_HOST", "dev-host"),
                ("MSSQL_HOST", "generic-host"),
                ("MSSQL_PORT", "1533"),
                ("MSSQL_DATABASE", "Directory"),
                ("MSSQL_DEV_USER", "cdc"),
                ("MSSQL_PASSWORD", "s3cret"),
                ("MSSQL_DEV_TRUST_SERVER_CERTIFICATE", "true"),
            ]),
        )
        .unwrap();
        assert_eq!(settings.host, "dev-host");
        assert_eq!(settings.port, 1533);
        assert!(settings.encrypt);
        assert!(settings.trust_server_certificate);
        assert!(!format!("{settings} {settings:?}").contains("s3cret"));
    }

    #[test]
    fn a_missing_variable_is_named() {
        let err = ConnectionSettings::from_env(Some("stage"), lookup(&[("MSSQL_HOST", "h")]))
            .unwrap_err()
            .to_string();
        assert!(err.contains("MSSQL_STAGE_DATABASE"), "{err}");
    }

    #[test]
    fn a_bad_port_is_refused() {
        let err = ConnectionSettings::from_env(
            Some("dev"),
            lookup(&[("MSSQL_PORT", "x"), ("MSSQL_HOST", "h")]),
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("MSSQL_PORT") && err.contains("port"), "{err}");
    }

    #[test]
    fn urls_carry_everything() {
        let settings = ConnectionSettings::from_url(
            "mssql://sa:Pa%40ss:w@localhost:14330/master?trust_server_certificate=true",
        )
        .unwrap();
        assert_eq!(settings.user, "sa");
        assert_eq!(settings.password, "Pa@ss:w");
        assert_eq!(settings.host, "localhost");
        assert_eq!(settings.port, 14330);
        assert_eq!(settings.database, "master");
        assert!(settings.trust_server_certificate);
        assert!(ConnectionSettings::from_url("postgres://x").is_err());
    }
}
