//! A PostgreSQL connection as libpq will read it, and what may be said of
//! it without saying the password.
//!
//! `PEZ_DATABASE_URL` is read by libpq's own parser (URI or `key=value`
//! pairs, several hosts included); the original's `PEZ_DB_*` variables are
//! taken as they are. Either way PEZ holds the connection as keyword/value
//! pairs, adds its own defaults where the user set none, and writes the
//! libpq string from those pairs. Descriptions for logs, errors, the status
//! page and `pez settings` are built from an allowlist of the parsed parts
//! (user, hosts, ports, database, TLS mode, session attributes), never from
//! the string the user gave, so no password of any shape can reach them.

use crate::libpq;
use std::collections::BTreeMap;

/// Parameters safe to show in a description, besides user, host, port and
/// database.
const SHOWN: &[&str] = &["sslmode", "target_session_attrs"];

/// A connection: libpq keywords and their values.
#[derive(Clone, PartialEq, Eq)]
pub struct Connection {
    params: BTreeMap<String, String>,
}

impl std::fmt::Debug for Connection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.description())
    }
}

impl Connection {
    /// Reads a connection URI or `key=value` string as libpq does. The error
    /// never repeats the string.
    pub fn parse(text: &str) -> Result<Self, String> {
        Ok(Self {
            params: libpq::parse(text)?.into_iter().collect(),
        })
    }

    /// A connection from separate parts (the original PEZ's variables).
    pub fn from_parts(parts: &[(&str, &str)]) -> Self {
        Self {
            params: parts
                .iter()
                .map(|(key, value)| ((*key).to_owned(), (*value).to_owned()))
                .collect(),
        }
    }

    /// The value of `key`, if set.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.params.get(key).map(String::as_str)
    }

    /// Sets `key` unless the connection sets it already.
    pub fn set_default(&mut self, key: &str, value: impl Into<String>) {
        self.params
            .entry(key.to_owned())
            .or_insert_with(|| value.into());
    }

    /// The password, if the connection carries one.
    pub fn password(&self) -> Option<&str> {
        self.get("password").filter(|p| !p.is_empty())
    }

    /// The libpq string: `key='value' ...`, quotes and backslashes escaped.
    pub fn conninfo(&self) -> String {
        self.params
            .iter()
            .map(|(key, value)| {
                format!(
                    "{key}='{}'",
                    value.replace('\\', "\\\\").replace('\'', "\\'")
                )
            })
            .collect::<Vec<_>>()
            .join(" ")
    }

    /// `postgresql://user@host:port,host:port/database?sslmode=...`, from
    /// the allowlisted parts only.
    pub fn description(&self) -> String {
        let hosts: Vec<&str> = self
            .get("host")
            .or(self.get("hostaddr"))
            .map(|h| h.split(',').collect())
            .unwrap_or_default();
        let ports: Vec<&str> = self
            .get("port")
            .map(|p| p.split(',').collect())
            .unwrap_or_default();
        let authority = hosts
            .iter()
            .enumerate()
            .map(|(i, host)| {
                // One port for every host, or one each (libpq's rule).
                match ports.get(i).or(ports.first().filter(|_| ports.len() == 1)) {
                    Some(port) if !port.is_empty() => format!("{host}:{port}"),
                    _ => (*host).to_owned(),
                }
            })
            .collect::<Vec<_>>()
            .join(",");
        let user = self
            .get("user")
            .map(|u| format!("{u}@"))
            .unwrap_or_default();
        let database = self.get("dbname").unwrap_or_default();
        let query: Vec<String> = SHOWN
            .iter()
            .filter_map(|key| self.get(key).map(|v| format!("{key}={v}")))
            .collect();
        let query = if query.is_empty() {
            String::new()
        } else {
            format!("?{}", query.join("&"))
        };
        format!("postgresql://{user}{authority}/{database}{query}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_uri_with_several_hosts_is_described_host_by_host() {
        let c = Connection::parse(
            "postgres://me:secret@db1:5433,db2:5434/pez?target_session_attrs=read-write",
        )
        .unwrap();
        assert_eq!(
            c.description(),
            "postgresql://me@db1:5433,db2:5434/pez?target_session_attrs=read-write"
        );
        assert_eq!(c.password(), Some("secret"));
    }

    #[test]
    fn the_libpq_string_reads_back_to_the_same_connection() {
        let mut c = Connection::from_parts(&[
            ("host", "db.internal"),
            ("password", r"it's a \ 'quoted' pass"),
            ("sslrootcert", "/etc/pez/rds ca.pem"),
        ]);
        c.set_default("connect_timeout", "2");
        c.set_default("host", "ignored");
        let again = Connection::parse(&c.conninfo()).unwrap();
        assert_eq!(again, c);
        assert_eq!(again.get("host"), Some("db.internal"));
    }
}
