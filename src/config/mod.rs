//! Settings: `PEZ_*` environment variables (also read from `.env`), each also
//! a command-line flag. Each is declared once ([`declared`]); clap takes the
//! values as text and [`RawSettings::validate`] checks them, so a bad one
//! stops `pez` with one line that names the variable.

pub mod conninfo;
pub mod declared;
pub mod log_filter;
pub mod unknown;

pub use declared::{RawSettings, Setting};

use clap::{Parser, Subcommand};
use conninfo::Connection;
use declared as d;
use std::fmt;
use std::net::{SocketAddr, ToSocketAddrs};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// The largest `count` a v2 request may ask for when PEZ_MAX_COUNT is unset
/// or 0 (the original's default).
pub const DEFAULT_MAX_COUNT: u64 = 100;

/// The command line.
#[derive(Debug, Parser)]
#[command(
    name = "pez",
    version = crate::VERSION,
    about = "PEZ hands out unique 64-bit numbers over HTTP.",
    long_about = "PEZ hands out unique 64-bit numbers over HTTP, from sequences kept in a \
                  durable store. Every setting is a PEZ_* environment variable (also read \
                  from a .env file) or the flag beside it; flags win."
)]
pub struct Cli {
    /// The settings, shared by every subcommand.
    #[command(flatten)]
    pub settings: RawSettings,
    /// What to do; serving is the default.
    #[command(subcommand)]
    pub command: Option<Command>,
}

/// What `pez` does.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Serve numbers over HTTP (the default).
    Serve,
    /// Bring the store's schema up to date, take over the original PEZ's
    /// sequences if the database has them, and exit (for PostgreSQL users
    /// that may not run DDL from the service).
    Migrate,
    /// Print the effective settings, one PEZ_NAME=value per line (secrets
    /// as ***), and exit: what a server started the same way would use.
    Settings,
    /// Inspect or move sequences in the store.
    #[command(subcommand)]
    Sequence(SequenceCommand),
    /// Move the embedded store to PostgreSQL.
    #[command(subcommand)]
    Store(StoreCommand),
    /// Roll back a cutover from the original PEZ on PostgreSQL: its
    /// forward_seq and backward_seq count in ones again, from past every
    /// number PEZ reserved. Stop every PEZ instance first.
    Handback,
}

/// `pez store ...`
#[derive(Debug, Subcommand)]
pub enum StoreCommand {
    /// Copy every sequence (settings and position) of the embedded store
    /// to PostgreSQL, never moving one there backwards, and mark the
    /// embedded store as moved (once the whole list is checked, before
    /// anything moves) so no server starts on it again. Refused while a
    /// server holds the embedded store.
    Copy {
        /// The PostgreSQL database: a postgres:// URI or a libpq key=value
        /// string, as PEZ_DATABASE_URL, without a password (every local
        /// user sees the command line in ps): give it in PGPASSWORD or
        /// ~/.pgpass, or the whole URL with --to-file.
        #[arg(
            long,
            value_name = "URL",
            required_unless_present = "to_file",
            conflicts_with = "to_file"
        )]
        to: Option<String>,
        /// A file holding the database's URL (password and all), on its
        /// first line.
        #[arg(long, value_name = "FILE")]
        to_file: Option<PathBuf>,
        /// Move a cycling sequence the database has issued numbers from
        /// ahead anyway, though it then wraps sooner than a full lap.
        #[arg(long)]
        allow_early_wrap: bool,
    },
}

/// `pez sequence ...`
#[derive(Debug, Subcommand)]
pub enum SequenceCommand {
    /// Print each sequence with the next number it will issue.
    List,
    /// Show one sequence's settings and position.
    Show {
        /// The sequence.
        name: String,
    },
    /// Create a sequence (the same settings again: nothing changes).
    Create {
        /// The name: 1 to 63 of a-z, 0-9, '_' and '-'.
        name: String,
        /// ascending or descending.
        #[arg(long, default_value = "ascending")]
        direction: String,
        /// Smallest number, from 1.
        #[arg(long, allow_hyphen_values = true)]
        min: Option<String>,
        /// Largest number, up to 9223372036854775807.
        #[arg(long, allow_hyphen_values = true)]
        max: Option<String>,
        /// First number [default: min when ascending, max when descending].
        #[arg(long, allow_hyphen_values = true)]
        start: Option<String>,
        /// Wrap after the last number: true or false.
        #[arg(long, default_value = "true")]
        cycle: String,
        /// leased (fast, blocks per instance) or strict (one global order).
        #[arg(long, default_value = "leased")]
        mode: String,
        /// Largest range lease of this sequence, from 1 to its size
        /// [default: a thousandth of its range]. PEZ_MAX_LEASE caps it.
        /// (`--max-lease` is the server's PEZ_MAX_LEASE.)
        #[arg(long, allow_hyphen_values = true)]
        sequence_max_lease: Option<String>,
    },
    /// Delete a sequence (not forward or reverse).
    Delete {
        /// The sequence.
        name: String,
    },
    /// Write every sequence (settings and where it stands) as JSON, to
    /// stdout or FILE: a backup that `import` can restore.
    Export {
        /// Write here instead of stdout.
        #[arg(long, short, value_name = "FILE")]
        output: Option<PathBuf>,
    },
    /// Apply an export: create the sequences that are missing, move the
    /// others forward to the file's position, never back (a sequence that
    /// is further stays where it is). A file that would change an existing
    /// sequence's settings is refused whole.
    Import {
        /// The file `export` wrote ("-" for stdin).
        file: PathBuf,
        /// Move a cycling sequence that has issued numbers ahead anyway,
        /// though it then wraps sooner than a full lap and numbers of this
        /// lap come back early (restoring a backup of this very store that
        /// is ahead of it, say).
        #[arg(long)]
        allow_early_wrap: bool,
    },
    /// Make VALUE the next number NAME issues (like ALTER SEQUENCE ... RESTART),
    /// forward only unless --allow-backward; a cycling sequence that has
    /// issued numbers moves ahead only with --allow-early-wrap.
    Restart {
        /// The sequence.
        name: String,
        /// The next number to issue, from 1 to 9223372036854775807.
        #[arg(allow_hyphen_values = true)]
        value: String,
        /// Restart even behind where the sequence stands: numbers it handed
        /// out already will be handed out again.
        #[arg(long)]
        allow_backward: bool,
        /// Move a cycling sequence that has issued numbers ahead: it wraps
        /// sooner than a full lap, and the numbers of this lap come back
        /// early.
        #[arg(long)]
        allow_early_wrap: bool,
    },
}

/// A value that must never reach a log or an error message: Debug shows
/// `***`, and there is no Display.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// Wraps a secret.
    pub fn new(value: String) -> Self {
        Secret(value)
    }

    /// The secret itself, for the one place that needs it (libpq).
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(***)")
    }
}

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

/// Validated settings.
#[derive(Debug, Clone)]
pub struct Settings {
    /// Where to serve HTTP.
    pub listen: SocketAddr,
    /// Where the embedded store lives.
    pub data_dir: PathBuf,
    /// Largest count per v2 request.
    pub max_count: u64,
    /// env_logger filter.
    pub log: String,
    /// Smallest lease, at least twice `max_count`.
    pub block_min: u64,
    /// Largest lease.
    pub block_max: u64,
    /// Longest a request waits for a lease.
    pub lease_wait: Duration,
    /// Longest an embedded store call waits for a lock.
    pub store_timeout: Duration,
    /// Longest a graceful stop waits for requests in flight, and again for
    /// give-backs.
    pub shutdown_timeout: Duration,
    /// The store.
    pub store: StoreChoice,
    /// How often to look for changes other instances made.
    pub sync_interval: Duration,
    /// Largest range lease.
    pub max_lease: u64,
    /// Who may do what.
    pub access: Access,
    /// How log lines look.
    pub log_format: crate::telemetry::LogFormat,
    /// Protections against hostile or broken clients.
    pub limits: Limits,
}

/// Limits of the HTTP server.
#[derive(Debug, Clone)]
pub struct Limits {
    /// Connections served at once.
    pub max_connections: usize,
    /// Time to send request headers.
    pub header_timeout: Duration,
    /// Time a connection may stay idle.
    pub idle_timeout: Duration,
    /// Time to answer a request.
    pub request_timeout: Duration,
    /// Largest request body.
    pub max_body_bytes: u64,
}

/// The tokens of the admin API, of dispensing and of observing.
#[derive(Debug, Clone, Default)]
pub struct Access {
    /// PEZ_ADMIN_TOKEN; `None`: the admin API is off.
    pub admin: Option<Secret>,
    /// PEZ_TOKENS; empty: dispensing is open.
    pub dispensing: Vec<Secret>,
    /// PEZ_LEASE_TOKENS: the tokens that may take range leases (and
    /// numbers); empty: whoever may take numbers may take range leases.
    pub leasing: Vec<Secret>,
    /// PEZ_METRICS_TOKENS: besides the admin token, these may read
    /// /metrics and the status page's details.
    pub metrics: Vec<Secret>,
}

impl Access {
    /// Whether no token of any kind is set: a development box, where the
    /// status page and /metrics show everything to anyone. Once any token
    /// is set, what they show is worth protecting too.
    pub fn is_open(&self) -> bool {
        self.admin.is_none()
            && self.dispensing.is_empty()
            && self.leasing.is_empty()
            && self.metrics.is_empty()
    }
}

/// A setting with a value PEZ cannot use.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SettingError {
    variable: &'static str,
    value: Option<String>,
    expected: String,
}

impl SettingError {
    /// `variable` has `value`, which is not `expected`.
    pub fn new(variable: &'static str, value: &str, expected: impl Into<String>) -> Self {
        Self {
            variable,
            value: Some(value.to_owned()),
            expected: expected.into(),
        }
    }

    /// The same, for a secret: the value is not repeated.
    pub fn hidden(variable: &'static str, expected: impl Into<String>) -> Self {
        Self {
            variable,
            value: None,
            expected: expected.into(),
        }
    }
}

impl fmt::Display for SettingError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.value {
            Some(value) => write!(
                f,
                "{} must be {}, not {value:?}",
                self.variable, self.expected
            ),
            None => write!(f, "{} must be {}", self.variable, self.expected),
        }
    }
}

impl std::error::Error for SettingError {}

impl RawSettings {
    /// Checks every value and fills in derived ones.
    pub fn validate(&self) -> Result<Settings, SettingError> {
        // Every number and choice within its bounds, used or not: a typo in
        // the PostgreSQL settings of an embedded-store machine is still a typo.
        for setting in d::ALL {
            match setting.kind {
                d::Kind::Integer { .. } | d::Kind::Millis { .. } => {
                    self.integer(setting)?;
                }
                d::Kind::Choice(_) => {
                    self.choice(setting)?;
                }
                _ => {}
            }
        }
        log_filter::check(self.get(&d::LOG).unwrap_or_default())?;
        let listen_text = self.get(&d::LISTEN).unwrap_or_default();
        let listen = listen_text
            .to_socket_addrs()
            .ok()
            .and_then(|mut addrs| addrs.next())
            .ok_or_else(|| {
                SettingError::new(d::LISTEN.variable, listen_text, d::LISTEN.expected())
            })?;
        let max_count = match self.integer(&d::MAX_COUNT)? {
            0 => DEFAULT_MAX_COUNT,
            n => n,
        };
        let block_size = self.integer(&d::BLOCK_SIZE)?;
        let block_max = self.integer(&d::BLOCK_MAX)?;
        if block_max < block_size {
            return Err(SettingError::new(
                d::BLOCK_MAX.variable,
                self.get(&d::BLOCK_MAX).unwrap_or_default(),
                "at least PEZ_BLOCK_SIZE",
            ));
        }
        // Half a block on hand must cover the largest request, so a request
        // never has to wait while the next block is being leased.
        let block_min = block_size.max(max_count.saturating_mul(2));
        Ok(Settings {
            listen,
            data_dir: PathBuf::from(self.get(&d::DATA_DIR).unwrap_or_default()),
            max_count,
            log: self.get(&d::LOG).unwrap_or_default().to_owned(),
            block_min,
            block_max: block_max.max(block_min),
            lease_wait: self.millis(&d::LEASE_WAIT_MS)?,
            store_timeout: self.millis(&d::STORE_TIMEOUT_MS)?,
            shutdown_timeout: self.millis(&d::SHUTDOWN_TIMEOUT_MS)?,
            store: self.store()?,
            sync_interval: self.millis(&d::SYNC_INTERVAL_MS)?,
            max_lease: self.integer(&d::MAX_LEASE)?,
            access: self.access()?,
            log_format: match self.choice(&d::LOG_FORMAT)? {
                Some("json") => crate::telemetry::LogFormat::Json,
                _ => crate::telemetry::LogFormat::Text,
            },
            limits: Limits {
                max_connections: self.integer(&d::MAX_CONNECTIONS)? as usize,
                header_timeout: self.millis(&d::HEADER_TIMEOUT_MS)?,
                idle_timeout: self.millis(&d::IDLE_TIMEOUT_MS)?,
                request_timeout: self.millis(&d::REQUEST_TIMEOUT_MS)?,
                max_body_bytes: self.integer(&d::MAX_BODY_BYTES)?,
            },
        })
    }

    fn access(&self) -> Result<Access, SettingError> {
        let admin = self
            .given(&d::ADMIN_TOKEN)
            .map(|token| Secret::new(token.to_owned()));
        Ok(Access {
            admin,
            dispensing: self.token_list(&d::TOKENS)?,
            leasing: self.token_list(&d::LEASE_TOKENS)?,
            metrics: self.token_list(&d::METRICS_TOKENS)?,
        })
    }

    /// The tokens of a list setting (PEZ_TOKENS and its kind): a
    /// comma-separated list, or @FILE with one a line; blank lines and
    /// lines starting with '#' are skipped. Unset: none. Set, it must hold
    /// at least one.
    fn token_list(&self, setting: &Setting) -> Result<Vec<Secret>, SettingError> {
        let Some(listed) = self.given(setting) else {
            return Ok(Vec::new());
        };
        let text = match listed.strip_prefix('@') {
            // A file another user could change could hand them a token.
            Some(path) => crate::trusted::read_to_string("the token file", Path::new(path))
                .map_err(|e| {
                    let expected = if e.could_not_read().is_some() {
                        format!("a comma-separated list or @FILE naming a readable file ({path} cannot be read)")
                    } else {
                        format!("@FILE naming a file no other user can change ({e})")
                    };
                    SettingError::hidden(setting.variable, expected)
                })?,
            None => listed.replace(',', "\n"),
        };
        let tokens: Vec<Secret> = text
            .lines()
            .map(str::trim)
            .filter(|token| !token.is_empty() && !token.starts_with('#'))
            .map(|token| Secret::new(token.to_owned()))
            .collect();
        if tokens.is_empty() {
            return Err(SettingError::hidden(setting.variable, "at least one token"));
        }
        Ok(tokens)
    }

    fn store(&self) -> Result<StoreChoice, SettingError> {
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

    /// Every setting as `(variable, value)` for `pez settings`: secrets as
    /// `***` (PEZ_TOKENS with how many there are), the database URL as its
    /// description (no password).
    /// `validated` must come from [`Self::validate`].
    pub fn effective(&self, validated: &Settings) -> Vec<(&'static str, String)> {
        self.shown()
            .into_iter()
            .map(|(variable, value)| match (&validated.store, variable) {
                (StoreChoice::Postgres(pg), "PEZ_DATABASE_URL") if !value.is_empty() => {
                    (variable, pg.description.clone())
                }
                // How many, never which: a list from @FILE is counted too.
                (_, "PEZ_TOKENS") if !validated.access.dispensing.is_empty() => (
                    variable,
                    format!("*** ({} tokens)", validated.access.dispensing.len()),
                ),
                (_, "PEZ_METRICS_TOKENS") if !validated.access.metrics.is_empty() => (
                    variable,
                    format!("*** ({} tokens)", validated.access.metrics.len()),
                ),
                (_, "PEZ_LEASE_TOKENS") if !validated.access.leasing.is_empty() => (
                    variable,
                    format!("*** ({} tokens)", validated.access.leasing.len()),
                ),
                _ => (variable, value),
            })
            .collect()
    }
}

impl Settings {
    /// Defaults for everything but the data directory; what tests start from.
    pub fn with_data_dir(data_dir: PathBuf) -> Self {
        let mut settings = RawSettings::default()
            .validate()
            .unwrap_or_else(|e| panic!("the defaults are invalid: {e}"));
        settings.data_dir = data_dir;
        settings
    }
}

#[cfg(test)]
mod tests {
    use super::*;
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
    fn limits_and_the_log_format_are_checked() {
        let err = raw(&[(d::LOG_FORMAT, "xml")]).validate().unwrap_err();
        assert!(err.to_string().starts_with("PEZ_LOG_FORMAT"));
        for (setting, bad) in [
            (d::MAX_CONNECTIONS, "0"),
            (d::MAX_CONNECTIONS, "18446744073709551615"),
            (d::MAX_COUNT, "1000001"),
            (d::DB_TIMEOUT_MS, "999999999"),
            (d::SYNC_INTERVAL_MS, "5"),
        ] {
            let err = raw(&[(setting, bad)]).validate().unwrap_err().to_string();
            assert!(err.starts_with(setting.variable), "{err}");
            assert!(err.contains(" to "), "the bounds are named: {err}");
        }
        let limits = raw(&[]).validate().unwrap().limits;
        assert_eq!(
            (limits.max_connections, limits.max_body_bytes),
            (1024, 16384)
        );
    }

    #[test]
    fn pez_settings_shows_how_many_tokens_never_which() {
        let given = raw(&[
            (d::TOKENS, "tok-a,tok-b"),
            (d::LEASE_TOKENS, "tok-lease"),
            (d::ADMIN_TOKEN, "adm1n"),
        ]);
        let shown = given.effective(&given.validate().unwrap());
        assert!(shown.contains(&("PEZ_TOKENS", "*** (2 tokens)".to_owned())));
        assert!(shown.contains(&("PEZ_LEASE_TOKENS", "*** (1 tokens)".to_owned())));
        assert!(shown.contains(&("PEZ_ADMIN_TOKEN", "***".to_owned())));
        let text = format!("{shown:?}");
        assert!(!text.contains("tok-") && !text.contains("adm1n"), "{text}");
        let none = raw(&[]);
        assert!(
            none.effective(&none.validate().unwrap())
                .contains(&("PEZ_TOKENS", String::new()))
        );
    }

    #[test]
    fn tokens_come_from_a_list_or_a_file() {
        let exposed = |settings: &Settings| -> Vec<String> {
            settings
                .access
                .dispensing
                .iter()
                .map(|t| t.expose().to_owned())
                .collect()
        };
        let listed = raw(&[(d::TOKENS, "a, b,,c")]).validate().unwrap();
        assert_eq!(exposed(&listed), ["a", "b", "c"]);
        let path = std::env::temp_dir().join(format!("pez-tokens-{}", std::process::id()));
        std::fs::write(&path, "# clients\nalpha\n\n  beta  \n").unwrap();
        let file = format!("@{}", path.display());
        let from_file = raw(&[(d::TOKENS, &file)]).validate().unwrap();
        assert_eq!(exposed(&from_file), ["alpha", "beta"]);
        // Lease tokens are read the same way.
        std::fs::write(&path, "# services that lease\nlessee\n").unwrap();
        let leasing = raw(&[(d::LEASE_TOKENS, &file)]).validate().unwrap();
        let leasing: Vec<&str> = leasing.access.leasing.iter().map(|t| t.expose()).collect();
        assert_eq!(leasing, ["lessee"]);
        std::fs::remove_file(&path).unwrap();
        let missing = raw(&[(d::TOKENS, "@/nonexistent/tokens")])
            .validate()
            .unwrap_err();
        assert!(missing.to_string().starts_with("PEZ_TOKENS"));
        assert!(raw(&[(d::TOKENS, ",")]).validate().is_err());
        let debug = format!("{listed:?}");
        assert!(debug.contains("Secret(***)") && !debug.contains("\"a\""));
    }

    #[test]
    fn metrics_tokens_are_read_as_pez_tokens_and_any_token_closes_access() {
        let listed = raw(&[(d::METRICS_TOKENS, "prom, graf")])
            .validate()
            .unwrap();
        let tokens: Vec<&str> = listed.access.metrics.iter().map(Secret::expose).collect();
        assert_eq!(tokens, ["prom", "graf"]);
        assert!(!listed.access.is_open());
        assert!(raw(&[(d::METRICS_TOKENS, ",")]).validate().is_err());
        let missing = raw(&[(d::METRICS_TOKENS, "@/nonexistent/tokens")])
            .validate()
            .unwrap_err();
        assert!(missing.to_string().starts_with("PEZ_METRICS_TOKENS"));
        assert!(raw(&[]).validate().unwrap().access.is_open());
        for one in [d::TOKENS, d::ADMIN_TOKEN] {
            assert!(!raw(&[(one, "t")]).validate().unwrap().access.is_open());
        }
        let shown = listed.access.metrics.len();
        let given = raw(&[(d::METRICS_TOKENS, "prom, graf")]);
        assert!(
            given
                .effective(&given.validate().unwrap())
                .contains(&("PEZ_METRICS_TOKENS", format!("*** ({shown} tokens)")))
        );
    }

    #[test]
    fn the_command_line_offers_exactly_the_declared_settings() {
        use clap::CommandFactory;
        let declared: Vec<String> = Cli::command()
            .get_arguments()
            .filter_map(|arg| arg.get_env())
            .map(|env| env.to_string_lossy().into_owned())
            .collect();
        let listed: Vec<&str> = d::ALL.iter().map(|s| s.variable).collect();
        assert_eq!(declared, listed);
        let shown: Vec<&str> = raw(&[]).shown().into_iter().map(|(v, _)| v).collect();
        assert_eq!(shown, listed);
    }

    #[test]
    fn help_shows_the_bounds_of_every_number_setting() {
        use clap::CommandFactory;
        let command = Cli::command();
        for setting in d::ALL {
            let (d::Kind::Integer { min, max } | d::Kind::Millis { min, max }) = setting.kind
            else {
                continue;
            };
            let arg = command
                .get_arguments()
                .find(|arg| arg.get_long() == Some(setting.flag))
                .unwrap_or_else(|| panic!("no --{}", setting.flag));
            let help = arg.get_help().map(ToString::to_string).unwrap_or_default();
            assert!(
                help.contains(&format!("[range: {min} to {max}]")),
                "{}: {help}",
                setting.variable
            );
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

    #[test]
    fn a_max_count_of_zero_means_the_default() {
        let settings = raw(&[(d::MAX_COUNT, "0")]).validate().unwrap();
        assert_eq!(settings.max_count, DEFAULT_MAX_COUNT);
    }

    #[test]
    fn blocks_are_at_least_twice_the_max_count() {
        let settings = raw(&[(d::MAX_COUNT, "5000")]).validate().unwrap();
        assert_eq!(settings.block_min, 10_000);
        assert!(settings.block_max >= settings.block_min);
    }

    #[test]
    fn a_listen_address_without_a_port_is_refused() {
        let err = raw(&[(d::LISTEN, "127.0.0.1")]).validate().unwrap_err();
        assert!(err.to_string().starts_with("PEZ_LISTEN"));
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
