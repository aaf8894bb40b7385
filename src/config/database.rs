//! Where the store is: the embedded one, or PostgreSQL and how to reach it
//! (the connection string built from the settings, the password kept out
//! of every text).

use super::conninfo::Connection;
use super::declared as d;
use super::error::SettingError;
use super::raw::RawSettings;
use super::secret::Secret;
use std::time::Duration;

/// How to reach PostgreSQL.
#[derive(Debug, Clone)]
pub struct PgSettings {
    /// The libpq connection string, password and timeouts included.
    pub conninfo: Secret,
    /// Where, for logs and errors: built from the parsed parts, no password.
    pub description: String,
    /// The password, to scrub from any text that might echo it.
    pub password: Option<Secret>,
    /// Pool size.
    pub pool_size: u32,
    /// Bound of each statement, lock wait and pool checkout.
    pub timeout: Duration,
    /// How long to keep trying at start while the database is not reachable.
    pub startup_timeout: Duration,
}

impl PgSettings {
    /// `text` with every occurrence of the password (if any), plain or
    /// percent-encoded, replaced by `***`: error texts from libpq or the
    /// server could echo it.
    pub fn scrub(&self, text: &str) -> String {
        match &self.password {
            // Too short a password would blank out ordinary words.
            Some(password) if password.expose().len() >= 3 => {
                let plain = password.expose();
                let encoded = percent_encode(plain);
                text.replace(plain, "***").replace(&encoded, "***")
            }
            _ => text.to_owned(),
        }
    }
}

/// The scheme of a URL that is not PostgreSQL's (`mysql`, `sqlite`), if
/// `url` is one: only the scheme, which holds no secret.
fn foreign_scheme(url: &str) -> Option<&str> {
    let (scheme, _) = url.trim_start().split_once("://")?;
    let is_scheme = !scheme.is_empty()
        && scheme
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'+' | b'-' | b'.'));
    (is_scheme && !matches!(scheme, "postgres" | "postgresql")).then_some(scheme)
}

/// Every byte outside RFC 3986's unreserved set as `%XX`.
fn percent_encode(value: &str) -> String {
    value
        .bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// Which store PEZ uses.
#[derive(Debug, Clone)]
pub enum StoreChoice {
    /// SQLite in the data directory: one machine, nothing to install.
    Embedded,
    /// PostgreSQL: many instances on one database.
    Postgres(PgSettings),
}

impl RawSettings {
    pub(super) fn store(&self) -> Result<StoreChoice, SettingError> {
        let url = self.given(&d::DATABASE_URL);
        let host = self.given(&d::DB_HOST);
        if url.is_none() && host.is_none() {
            return Ok(StoreChoice::Embedded);
        }
        let sslmode = self.choice(&d::DB_SSLMODE)?;
        let pool_size = self.integer(&d::DB_POOL_SIZE)? as u32;
        let timeout = self.millis(&d::DB_TIMEOUT_MS)?;
        let startup_timeout = self.millis(&d::DB_STARTUP_TIMEOUT_MS)?;
        let mut connection = match url {
            // libpq would only say it misses an "=" in a mysql:// URL.
            Some(url) if foreign_scheme(url).is_some() => {
                return Err(SettingError::hidden(
                    d::DATABASE_URL.variable,
                    format!(
                        "a postgres:// or postgresql:// URI or a libpq key=value string \
                         (host=... dbname=...), not a {}:// URL: PEZ stores only in PostgreSQL \
                         (or, without PEZ_DATABASE_URL, in its embedded SQLite store)",
                        foreign_scheme(url).unwrap_or_default()
                    ),
                ));
            }
            Some(url) => Connection::parse(url).map_err(|why| {
                SettingError::hidden(
                    d::DATABASE_URL.variable,
                    format!("a postgres:// URI or a libpq key=value string ({why})"),
                )
            })?,
            None => {
                let port = self.integer(&d::DB_PORT)?.to_string();
                let mut parts = vec![
                    ("host", host.unwrap_or_default()),
                    ("port", port.as_str()),
                    ("dbname", self.get(&d::DB_NAME).unwrap_or_default()),
                    ("user", self.get(&d::DB_USERNAME).unwrap_or_default()),
                ];
                if let Some(password) = self.given(&d::DB_PASSWORD) {
                    parts.push(("password", password));
                }
                Connection::from_parts(&parts)
            }
        };
        // The URL's own parameters win over PEZ_DB_SSLMODE and PEZ's defaults.
        if let Some(mode) = sslmode {
            connection.set_default("sslmode", mode);
        }
        if let Some(cert) = self.given(&d::DB_SSLROOTCERT) {
            connection.set_default("sslrootcert", cert);
        }
        // libpq's connect_timeout is whole seconds, at least 2.
        connection.set_default("connect_timeout", timeout.as_secs().max(2).to_string());
        // Unacknowledged data for this long means the server is gone.
        connection.set_default("tcp_user_timeout", (timeout.as_millis() * 5).to_string());
        connection.set_default("keepalives_idle", "5");
        connection.set_default("keepalives_interval", "2");
        connection.set_default("keepalives_count", "3");
        connection.set_default("application_name", "pez");
        if url.is_none() {
            // The original's variables meant TLS when the server offers it.
            connection.set_default("sslmode", "prefer");
        }
        Ok(StoreChoice::Postgres(PgSettings {
            conninfo: Secret::new(connection.conninfo()),
            description: connection.description(),
            password: connection.password().map(|p| Secret::new(p.to_owned())),
            pool_size,
            timeout,
            startup_timeout,
        }))
    }

    /// PostgreSQL settings for the database at `url` (a URI or a libpq
    /// string, as PEZ_DATABASE_URL), with every other setting as given:
    /// for `pez store copy --to URL`.
    pub fn postgres_at(&self, url: &str) -> Result<PgSettings, SettingError> {
        match self.with_value(&d::DATABASE_URL, url).store()? {
            StoreChoice::Postgres(pg) => Ok(pg),
            StoreChoice::Embedded => Err(SettingError::hidden(
                "--to",
                "a postgres:// URI or a libpq key=value string",
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Setting;
    use proptest::prelude::*;

    fn raw(given: &[(Setting, &str)]) -> RawSettings {
        RawSettings::with(given)
    }

    fn postgres(given: &[(Setting, &str)]) -> PgSettings {
        match raw(given).validate().unwrap().store {
            StoreChoice::Postgres(pg) => pg,
            StoreChoice::Embedded => panic!("expected PostgreSQL"),
        }
    }

    #[test]
    fn without_database_settings_the_store_is_embedded() {
        assert!(matches!(
            raw(&[]).validate().unwrap().store,
            StoreChoice::Embedded
        ));
    }

    #[test]
    fn the_originals_variables_build_a_conninfo_and_the_password_stays_hidden() {
        let pg = postgres(&[
            (d::DB_HOST, "db.internal"),
            (d::DB_PASSWORD, "s3cr'et"),
            (d::DB_SSLMODE, "verify-full"),
            (d::DB_SSLROOTCERT, "/etc/pez/rds ca.pem"),
        ]);
        let parsed = Connection::parse(pg.conninfo.expose()).unwrap();
        for (key, value) in [
            ("host", "db.internal"),
            ("port", "5432"),
            ("dbname", "pez"),
            ("user", "pezuser"),
            ("password", "s3cr'et"),
            ("sslmode", "verify-full"),
            ("sslrootcert", "/etc/pez/rds ca.pem"),
        ] {
            assert_eq!(parsed.get(key), Some(value), "{key}");
        }
        assert_eq!(
            pg.description,
            "postgresql://pezuser@db.internal:5432/pez?sslmode=verify-full"
        );
        assert!(!format!("{pg:?}").contains("s3cr"));
        assert_eq!(pg.scrub("FATAL: s3cr'et is wrong"), "FATAL: *** is wrong");
    }

    #[test]
    fn a_database_url_keeps_its_own_parameters() {
        let pg = postgres(&[
            (
                d::DATABASE_URL,
                "postgres://me:hunter2@h:6543/db?sslmode=require&connect_timeout=7",
            ),
            (d::DB_SSLMODE, "disable"),
        ]);
        let parsed = Connection::parse(pg.conninfo.expose()).unwrap();
        assert_eq!(parsed.get("sslmode"), Some("require"));
        assert_eq!(parsed.get("connect_timeout"), Some("7"));
        assert_eq!(parsed.get("application_name"), Some("pez"));
        assert_eq!(pg.description, "postgresql://me@h:6543/db?sslmode=require");
        assert_eq!(pg.scrub("x hunter2 y hunter2"), "x *** y ***");
    }

    #[test]
    fn a_database_url_libpq_cannot_read_is_refused_without_repeating_it() {
        let err = raw(&[(d::DATABASE_URL, "postgres://u:hunter2@h/db?nosuch=1")])
            .validate()
            .unwrap_err()
            .to_string();
        assert!(err.starts_with("PEZ_DATABASE_URL must be"), "{err}");
        assert!(!err.contains("hunter2"), "{err}");
    }

    #[test]
    fn an_unknown_sslmode_is_refused() {
        let err = raw(&[(d::DB_HOST, "h"), (d::DB_SSLMODE, "maybe")])
            .validate()
            .unwrap_err();
        assert!(err.to_string().starts_with("PEZ_DB_SSLMODE"));
    }

    /// The parts of a connection that descriptions may show; a password
    /// found inside them would be found for no fault of PEZ's.
    const VISIBLE: &str = "postgresql://pezuser@db1.internal:5433,db2.internal:5434/pezdb?\
                           sslmode=require&target_session_attrs=read-write pez *** 5432";

    /// The password as a URI's userinfo or query must carry it.
    fn uri_encoded(password: &str) -> String {
        percent_encode(password)
    }

    /// The password as a quoted libpq keyword value.
    fn quoted(password: &str) -> String {
        format!("'{}'", password.replace('\\', "\\\\").replace('\'', "\\'"))
    }

    proptest! {
        /// Whatever its shape, and wherever it is given (URI userinfo, URI
        /// query, keyword string, PEZ_DB_PASSWORD), the password appears in
        /// no description, no `pez settings` line and no Debug output, and
        /// error texts that echo it are scrubbed.
        #[test]
        fn no_password_of_any_shape_is_ever_shown(
            password in "[ -~\u{a0}-\u{17f}]{4,24}",
            place in 0usize..4,
        ) {
            prop_assume!(!VISIBLE.contains(&password));
            let url;
            let given: Vec<(Setting, &str)> = match place {
                0 => {
                    url = format!(
                        "postgres://pezuser:{}@db1.internal:5433,db2.internal:5434/pezdb?\
                         target_session_attrs=read-write&sslmode=require",
                        uri_encoded(&password)
                    );
                    vec![(d::DATABASE_URL, url.as_str())]
                }
                1 => {
                    url = format!(
                        "postgresql://pezuser@db1.internal:5433/pezdb?password={}",
                        uri_encoded(&password)
                    );
                    vec![(d::DATABASE_URL, url.as_str())]
                }
                2 => {
                    url = format!(
                        "host=db1.internal port=5433 dbname=pezdb user=pezuser password={}",
                        quoted(&password)
                    );
                    vec![(d::DATABASE_URL, url.as_str())]
                }
                _ => vec![(d::DB_HOST, "db1.internal"), (d::DB_PASSWORD, password.as_str())],
            };
            let raw = RawSettings::with(&given);
            let settings = raw.validate().unwrap();
            let StoreChoice::Postgres(pg) = &settings.store else {
                panic!("expected PostgreSQL");
            };
            prop_assert_eq!(pg.password.as_ref().map(Secret::expose), Some(password.as_str()));
            let encoded = uri_encoded(&password);
            let mut shown = vec![
                pg.description.clone(),
                crate::store::describe(&settings),
                format!("{settings:?}"),
                format!("{raw:?}"),
                pg.scrub(&format!("FATAL: {password} / {encoded} / {}", pg.conninfo.expose())),
            ];
            shown.extend(raw.effective(&settings).into_iter().map(|(v, value)| format!("{v}={value}")));
            for text in shown {
                prop_assert!(!text.contains(password.as_str()), "{}", text);
                prop_assert!(!text.contains(encoded.as_str()), "{}", text);
            }
        }
    }
}
