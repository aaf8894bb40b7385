//! Settings: `PEZ_*` environment variables (also read from `.env`), each also
//! a command-line flag. Values are taken raw by clap and validated here, so a
//! bad one stops `pez` with one line that names the variable.

use clap::{Args, Parser, Subcommand};
use std::fmt;
use std::net::{SocketAddr, ToSocketAddrs};
use std::path::PathBuf;
use std::str::FromStr;
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
    /// Bring the store's schema up to date and exit (for PostgreSQL users
    /// that may not run DDL from the service).
    Migrate,
    /// Print the effective settings, one PEZ_NAME=value per line (secrets
    /// as ***), and exit: what a server started the same way would use.
    Settings,
    /// Inspect or move sequences in the store.
    #[command(subcommand)]
    Sequence(SequenceCommand),
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
    },
    /// Delete a sequence (not forward or reverse).
    Delete {
        /// The sequence.
        name: String,
    },
    /// Make VALUE the next number NAME issues (like ALTER SEQUENCE ... RESTART),
    /// forward only unless --allow-backward.
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
    },
}

/// Settings as given, before validation.
#[derive(Debug, Clone, Args)]
pub struct RawSettings {
    /// Address and port to serve HTTP on.
    #[arg(
        long,
        env = "PEZ_LISTEN",
        default_value = "127.0.0.1:8000",
        global = true
    )]
    pub listen: String,
    /// Directory of the embedded store (created if missing).
    #[arg(
        long,
        env = "PEZ_DATA_DIR",
        default_value = "./pez-data",
        global = true
    )]
    pub data_dir: PathBuf,
    /// Largest count a v2 request may ask for; 0 means the default, 100.
    #[arg(long, env = "PEZ_MAX_COUNT", default_value = "100", global = true)]
    pub max_count: String,
    /// Log filter in env_logger syntax, e.g. info or pez=debug,warp=info.
    #[arg(long, env = "PEZ_LOG", default_value = "info", global = true)]
    pub log: String,
    /// First and smallest block of numbers leased at a time; raised to
    /// twice the max count if below it.
    #[arg(long, env = "PEZ_BLOCK_SIZE", default_value = "1000", global = true)]
    pub block_size: String,
    /// Largest block leased at a time (blocks double while they last under a minute).
    #[arg(long, env = "PEZ_BLOCK_MAX", default_value = "1000000", global = true)]
    pub block_max: String,
    /// Milliseconds a request waits for the store when no numbers are on hand, before 503.
    #[arg(long, env = "PEZ_LEASE_WAIT_MS", default_value = "1000", global = true)]
    pub lease_wait_ms: String,
    /// Milliseconds a store call waits for a lock held elsewhere before it fails.
    #[arg(
        long,
        env = "PEZ_STORE_TIMEOUT_MS",
        default_value = "500",
        global = true
    )]
    pub store_timeout_ms: String,
    /// Milliseconds a graceful stop waits for requests in flight.
    #[arg(
        long,
        env = "PEZ_SHUTDOWN_TIMEOUT_MS",
        default_value = "5000",
        global = true
    )]
    pub shutdown_timeout_ms: String,
    /// Log lines as text (for people) or json (one object per line, for log shippers).
    #[arg(long, env = "PEZ_LOG_FORMAT", default_value = "text", global = true)]
    pub log_format: String,
    /// Most connections served at once; more wait to be accepted.
    #[arg(
        long,
        env = "PEZ_MAX_CONNECTIONS",
        default_value = "1024",
        global = true
    )]
    pub max_connections: String,
    /// Milliseconds a client has to send a request's headers before it is cut off.
    #[arg(
        long,
        env = "PEZ_HEADER_TIMEOUT_MS",
        default_value = "5000",
        global = true
    )]
    pub header_timeout_ms: String,
    /// Milliseconds a connection may move no byte before it is closed
    /// (idle keep-alive connections would otherwise hold connection slots).
    #[arg(
        long,
        env = "PEZ_IDLE_TIMEOUT_MS",
        default_value = "60000",
        global = true
    )]
    pub idle_timeout_ms: String,
    /// Milliseconds a request may take before it is answered 503.
    #[arg(
        long,
        env = "PEZ_REQUEST_TIMEOUT_MS",
        default_value = "10000",
        global = true
    )]
    pub request_timeout_ms: String,
    /// Largest request body in bytes (larger: 413). Request line and headers
    /// are limited to 8 KiB (larger: 431).
    #[arg(
        long,
        env = "PEZ_MAX_BODY_BYTES",
        default_value = "16384",
        global = true
    )]
    pub max_body_bytes: String,
    /// Milliseconds between looks at the store for restarts, creations and
    /// deletions made by other instances (the bound on how long they take to
    /// reach this one).
    #[arg(
        long,
        env = "PEZ_SYNC_INTERVAL_MS",
        default_value = "1000",
        global = true
    )]
    pub sync_interval_ms: String,
    /// Largest count of a range lease (POST /v2/sequences/NAME/lease).
    #[arg(long, env = "PEZ_MAX_LEASE", default_value = "1000000", global = true)]
    pub max_lease: String,
    /// Bearer token of the admin API (/v2/sequences); without it the admin API is off.
    #[arg(long, env = "PEZ_ADMIN_TOKEN", hide_env_values = true, global = true)]
    pub admin_token: Option<String>,
    /// Tokens that may take numbers: a comma-separated list, or @FILE with one
    /// per line. When set, every dispensing request needs one of them.
    #[arg(long, env = "PEZ_TOKENS", hide_env_values = true, global = true)]
    pub tokens: Option<String>,
    /// PostgreSQL connection URL or libpq conninfo; when set (or PEZ_DB_HOST
    /// is), PostgreSQL is the store instead of the embedded one.
    #[arg(long, env = "PEZ_DATABASE_URL", hide_env_values = true, global = true)]
    pub database_url: Option<String>,
    /// PostgreSQL host; when set, PostgreSQL is the store (the original's variables).
    #[arg(long, env = "PEZ_DB_HOST", global = true)]
    pub db_host: Option<String>,
    /// PostgreSQL port.
    #[arg(long, env = "PEZ_DB_PORT", default_value = "5432", global = true)]
    pub db_port: String,
    /// PostgreSQL database name.
    #[arg(long, env = "PEZ_DB_NAME", default_value = "pez", global = true)]
    pub db_name: String,
    /// PostgreSQL user.
    #[arg(
        long,
        env = "PEZ_DB_USERNAME",
        default_value = "pezuser",
        global = true
    )]
    pub db_username: String,
    /// PostgreSQL password (never logged; prefer the environment to the flag).
    #[arg(long, env = "PEZ_DB_PASSWORD", hide_env_values = true, global = true)]
    pub db_password: Option<String>,
    /// TLS to PostgreSQL: disable, prefer, require, verify-ca or verify-full
    /// [default: prefer, or what PEZ_DATABASE_URL says].
    #[arg(long, env = "PEZ_DB_SSLMODE", global = true)]
    pub db_sslmode: Option<String>,
    /// CA certificate file for sslmode verify-ca and verify-full (for RDS: the RDS CA bundle).
    #[arg(long, env = "PEZ_DB_SSLROOTCERT", global = true)]
    pub db_sslrootcert: Option<String>,
    /// Connections to PostgreSQL per instance.
    #[arg(long, env = "PEZ_DB_POOL_SIZE", default_value = "4", global = true)]
    pub db_pool_size: String,
    /// Milliseconds for each PostgreSQL call: getting a pooled connection, a
    /// statement, a lock wait.
    #[arg(long, env = "PEZ_DB_TIMEOUT_MS", default_value = "1000", global = true)]
    pub db_timeout_ms: String,
    /// Milliseconds PEZ keeps retrying at start while PostgreSQL is not up yet.
    #[arg(
        long,
        env = "PEZ_DB_STARTUP_TIMEOUT_MS",
        default_value = "30000",
        global = true
    )]
    pub db_startup_timeout_ms: String,
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
    /// Where, for logs and errors: no password.
    pub description: String,
    /// The password, to scrub from any text that might echo it.
    pub password: Option<Secret>,
    /// Pool size.
    pub pool_size: u32,
    /// Bound of each call.
    pub timeout: Duration,
    /// How long to wait at start for a database that is not up yet.
    pub startup_timeout: Duration,
}

impl PgSettings {
    /// `text` with the password (if any) replaced by `***`.
    pub fn scrub(&self, text: &str) -> String {
        match &self.password {
            // Too short a password would blank out ordinary words.
            Some(password) if password.expose().len() >= 3 => {
                text.replace(password.expose(), "***")
            }
            _ => text.to_owned(),
        }
    }
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
    /// Longest a store call waits for a lock.
    pub store_timeout: Duration,
    /// Longest a graceful stop waits for requests in flight.
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

/// The tokens of the admin API and of dispensing.
#[derive(Debug, Clone, Default)]
pub struct Access {
    /// PEZ_ADMIN_TOKEN; `None`: the admin API is off.
    pub admin: Option<Secret>,
    /// PEZ_TOKENS; empty: dispensing is open.
    pub dispensing: Vec<Secret>,
}

/// A setting with a value PEZ cannot use.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SettingError {
    variable: &'static str,
    value: String,
    expected: &'static str,
}

impl fmt::Display for SettingError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} must be {}, not {:?}",
            self.variable, self.expected, self.value
        )
    }
}

impl std::error::Error for SettingError {}

fn parse<T: FromStr>(
    variable: &'static str,
    value: &str,
    expected: &'static str,
) -> Result<T, SettingError> {
    // Only plain decimal digits: FromStr would also take "+5".
    let digits_only = !value.is_empty() && value.bytes().all(|b| b.is_ascii_digit());
    digits_only
        .then(|| value.parse().ok())
        .flatten()
        .ok_or_else(|| SettingError {
            variable,
            value: value.to_owned(),
            expected,
        })
}

fn positive(variable: &'static str, value: &str) -> Result<u64, SettingError> {
    match parse(variable, value, "a positive integer")? {
        0 => Err(SettingError {
            variable,
            value: value.to_owned(),
            expected: "a positive integer",
        }),
        n => Ok(n),
    }
}

fn millis(variable: &'static str, value: &str) -> Result<Duration, SettingError> {
    parse(variable, value, "a whole number of milliseconds").map(Duration::from_millis)
}

impl RawSettings {
    /// Checks every value and fills in derived ones.
    pub fn validate(&self) -> Result<Settings, SettingError> {
        let listen = self
            .listen
            .to_socket_addrs()
            .ok()
            .and_then(|mut addrs| addrs.next())
            .ok_or_else(|| SettingError {
                variable: "PEZ_LISTEN",
                value: self.listen.clone(),
                expected: "an address:port such as 127.0.0.1:8000",
            })?;
        let max_count = match parse("PEZ_MAX_COUNT", &self.max_count, "a non-negative integer")? {
            0 => DEFAULT_MAX_COUNT,
            n => n,
        };
        let block_size = positive("PEZ_BLOCK_SIZE", &self.block_size)?;
        let block_max = positive("PEZ_BLOCK_MAX", &self.block_max)?;
        if block_max < block_size {
            return Err(SettingError {
                variable: "PEZ_BLOCK_MAX",
                value: self.block_max.clone(),
                expected: "at least PEZ_BLOCK_SIZE",
            });
        }
        // Half a block on hand must cover the largest request, so a request
        // never has to wait while the next block is being leased.
        let block_min = block_size.max(max_count.saturating_mul(2));
        Ok(Settings {
            listen,
            data_dir: self.data_dir.clone(),
            max_count,
            log: self.log.clone(),
            block_min,
            block_max: block_max.max(block_min),
            lease_wait: millis("PEZ_LEASE_WAIT_MS", &self.lease_wait_ms)?,
            store_timeout: millis("PEZ_STORE_TIMEOUT_MS", &self.store_timeout_ms)?,
            shutdown_timeout: millis("PEZ_SHUTDOWN_TIMEOUT_MS", &self.shutdown_timeout_ms)?,
            store: self.store()?,
            sync_interval: millis("PEZ_SYNC_INTERVAL_MS", &self.sync_interval_ms)?
                .max(Duration::from_millis(10)),
            max_lease: positive("PEZ_MAX_LEASE", &self.max_lease)?,
            access: self.access()?,
            log_format: match self.log_format.as_str() {
                "text" => crate::telemetry::LogFormat::Text,
                "json" => crate::telemetry::LogFormat::Json,
                _ => {
                    return Err(SettingError {
                        variable: "PEZ_LOG_FORMAT",
                        value: self.log_format.clone(),
                        expected: "text or json",
                    });
                }
            },
            limits: Limits {
                max_connections: positive("PEZ_MAX_CONNECTIONS", &self.max_connections)? as usize,
                header_timeout: millis("PEZ_HEADER_TIMEOUT_MS", &self.header_timeout_ms)?
                    .max(Duration::from_millis(1)),
                idle_timeout: millis("PEZ_IDLE_TIMEOUT_MS", &self.idle_timeout_ms)?
                    .max(Duration::from_millis(10)),
                request_timeout: millis("PEZ_REQUEST_TIMEOUT_MS", &self.request_timeout_ms)?
                    .max(Duration::from_millis(1)),
                max_body_bytes: positive("PEZ_MAX_BODY_BYTES", &self.max_body_bytes)?,
            },
        })
    }

    fn access(&self) -> Result<Access, SettingError> {
        let admin = match self.admin_token.as_deref() {
            None | Some("") => None,
            Some(token) => Some(Secret::new(token.to_owned())),
        };
        let dispensing = match self.tokens.as_deref() {
            None | Some("") => Vec::new(),
            Some(listed) => {
                let text = match listed.strip_prefix('@') {
                    Some(path) => std::fs::read_to_string(path).map_err(|_| SettingError {
                        variable: "PEZ_TOKENS",
                        value: listed.to_owned(),
                        expected: "a comma-separated list or @FILE naming a readable file",
                    })?,
                    None => listed.replace(',', "\n"),
                };
                text.lines()
                    .map(str::trim)
                    .filter(|token| !token.is_empty() && !token.starts_with('#'))
                    .map(|token| Secret::new(token.to_owned()))
                    .collect()
            }
        };
        if self.tokens.as_deref().is_some_and(|t| !t.is_empty()) && dispensing.is_empty() {
            return Err(SettingError {
                variable: "PEZ_TOKENS",
                value: "(no tokens)".to_owned(),
                expected: "at least one token",
            });
        }
        Ok(Access { admin, dispensing })
    }

    fn store(&self) -> Result<StoreChoice, SettingError> {
        if self.database_url.is_none() && self.db_host.is_none() {
            return Ok(StoreChoice::Embedded);
        }
        let sslmode = match self.db_sslmode.as_deref() {
            None => None,
            Some(mode @ ("disable" | "prefer" | "require" | "verify-ca" | "verify-full")) => {
                Some(mode)
            }
            Some(other) => {
                return Err(SettingError {
                    variable: "PEZ_DB_SSLMODE",
                    value: other.to_owned(),
                    expected: "one of disable, prefer, require, verify-ca, verify-full",
                });
            }
        };
        let pool_size =
            u32::try_from(positive("PEZ_DB_POOL_SIZE", &self.db_pool_size)?).map_err(|_| {
                SettingError {
                    variable: "PEZ_DB_POOL_SIZE",
                    value: self.db_pool_size.clone(),
                    expected: "a positive integer below 2^32",
                }
            })?;
        let timeout =
            millis("PEZ_DB_TIMEOUT_MS", &self.db_timeout_ms)?.max(Duration::from_millis(1));
        let startup_timeout = millis("PEZ_DB_STARTUP_TIMEOUT_MS", &self.db_startup_timeout_ms)?;
        // libpq's connect_timeout is whole seconds, at least 2.
        let connect_secs = timeout.as_secs().max(2).to_string();
        // Unacknowledged data for this long means the server is gone.
        let tcp_user_timeout = (timeout.as_millis() * 5).to_string();
        let mut extra: Vec<(&str, String)> = vec![
            ("connect_timeout", connect_secs),
            ("tcp_user_timeout", tcp_user_timeout),
            ("keepalives_idle", "5".into()),
            ("keepalives_interval", "2".into()),
            ("keepalives_count", "3".into()),
            ("application_name", "pez".into()),
        ];
        if let Some(mode) = sslmode {
            extra.push(("sslmode", mode.to_owned()));
        }
        if let Some(cert) = &self.db_sslrootcert {
            extra.push(("sslrootcert", cert.clone()));
        }
        let (conninfo, description, password) = match &self.database_url {
            Some(url) => {
                let password = url_password(url);
                (append_params(url, &extra), redact_url(url), password)
            }
            None => {
                let port: u16 = parse("PEZ_DB_PORT", &self.db_port, "a port number")?;
                let host = self.db_host.clone().unwrap_or_default();
                let mut params: Vec<(&str, String)> = vec![
                    ("host", host.clone()),
                    ("port", port.to_string()),
                    ("dbname", self.db_name.clone()),
                    ("user", self.db_username.clone()),
                ];
                if let Some(password) = &self.db_password {
                    params.push(("password", password.clone()));
                }
                params.extend(extra);
                let description = format!(
                    "postgresql://{}@{host}:{port}/{} (sslmode={})",
                    self.db_username,
                    self.db_name,
                    sslmode.unwrap_or("prefer")
                );
                (
                    keyword_values(&params),
                    description,
                    self.db_password.clone(),
                )
            }
        };
        Ok(StoreChoice::Postgres(PgSettings {
            conninfo: Secret::new(conninfo),
            description,
            password: password.map(Secret::new),
            pool_size,
            timeout,
            startup_timeout,
        }))
    }
}

impl RawSettings {
    /// Every setting as `(variable, effective value)`, secrets masked, for
    /// `pez settings`. `validated` must come from [`Self::validate`].
    pub fn effective(&self, validated: &Settings) -> Vec<(&'static str, String)> {
        let masked = |secret: &Option<String>| match secret {
            Some(_) => "***".to_owned(),
            None => String::new(),
        };
        let optional = |value: &Option<String>| value.clone().unwrap_or_default();
        vec![
            ("PEZ_LISTEN", validated.listen.to_string()),
            ("PEZ_DATA_DIR", validated.data_dir.display().to_string()),
            ("PEZ_MAX_COUNT", validated.max_count.to_string()),
            ("PEZ_LOG", validated.log.clone()),
            ("PEZ_BLOCK_SIZE", validated.block_min.to_string()),
            ("PEZ_BLOCK_MAX", validated.block_max.to_string()),
            (
                "PEZ_LEASE_WAIT_MS",
                validated.lease_wait.as_millis().to_string(),
            ),
            (
                "PEZ_STORE_TIMEOUT_MS",
                validated.store_timeout.as_millis().to_string(),
            ),
            (
                "PEZ_SHUTDOWN_TIMEOUT_MS",
                validated.shutdown_timeout.as_millis().to_string(),
            ),
            (
                "PEZ_DATABASE_URL",
                self.database_url
                    .as_deref()
                    .map(redact_url)
                    .unwrap_or_default(),
            ),
            ("PEZ_DB_HOST", optional(&self.db_host)),
            ("PEZ_DB_PORT", self.db_port.clone()),
            ("PEZ_DB_NAME", self.db_name.clone()),
            ("PEZ_DB_USERNAME", self.db_username.clone()),
            ("PEZ_DB_PASSWORD", masked(&self.db_password)),
            ("PEZ_DB_SSLMODE", optional(&self.db_sslmode)),
            ("PEZ_DB_SSLROOTCERT", optional(&self.db_sslrootcert)),
            ("PEZ_DB_POOL_SIZE", self.db_pool_size.clone()),
            ("PEZ_DB_TIMEOUT_MS", self.db_timeout_ms.clone()),
            (
                "PEZ_DB_STARTUP_TIMEOUT_MS",
                self.db_startup_timeout_ms.clone(),
            ),
            (
                "PEZ_SYNC_INTERVAL_MS",
                validated.sync_interval.as_millis().to_string(),
            ),
            ("PEZ_MAX_LEASE", validated.max_lease.to_string()),
            ("PEZ_LOG_FORMAT", self.log_format.clone()),
            (
                "PEZ_MAX_CONNECTIONS",
                validated.limits.max_connections.to_string(),
            ),
            (
                "PEZ_HEADER_TIMEOUT_MS",
                validated.limits.header_timeout.as_millis().to_string(),
            ),
            (
                "PEZ_IDLE_TIMEOUT_MS",
                validated.limits.idle_timeout.as_millis().to_string(),
            ),
            (
                "PEZ_REQUEST_TIMEOUT_MS",
                validated.limits.request_timeout.as_millis().to_string(),
            ),
            (
                "PEZ_MAX_BODY_BYTES",
                validated.limits.max_body_bytes.to_string(),
            ),
            ("PEZ_ADMIN_TOKEN", masked(&self.admin_token)),
            (
                "PEZ_TOKENS",
                match validated.access.dispensing.len() {
                    0 => String::new(),
                    n => format!("*** ({n} tokens)"),
                },
            ),
        ]
    }
}

/// `key='value' ...` as libpq reads it (quotes and backslashes escaped).
fn keyword_values(params: &[(&str, String)]) -> String {
    params
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

fn is_uri(conninfo: &str) -> bool {
    conninfo.starts_with("postgres://") || conninfo.starts_with("postgresql://")
}

/// Adds the parameters that `conninfo` does not set itself.
fn append_params(conninfo: &str, params: &[(&str, String)]) -> String {
    let mut out = conninfo.trim().to_owned();
    for (key, value) in params {
        if out.contains(&format!("{key}=")) {
            continue;
        }
        if is_uri(&out) {
            out.push(if out.contains('?') { '&' } else { '?' });
            out.push_str(&format!("{key}={}", percent_encode(value)));
        } else {
            out.push(' ');
            out.push_str(&keyword_values(&[(key, value.clone())]));
        }
    }
    out
}

fn percent_encode(value: &str) -> String {
    value
        .bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' | b'/' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// The userinfo of a URI (`user:password@`), if any.
fn userinfo(url: &str) -> Option<(usize, usize)> {
    let start = url.find("://")? + 3;
    let authority_end = url[start..]
        .find(['/', '?'])
        .map_or(url.len(), |i| start + i);
    let at = url[start..authority_end].rfind('@')? + start;
    Some((start, at))
}

/// The password in a connection URI or conninfo string, if any.
fn url_password(url: &str) -> Option<String> {
    if is_uri(url) {
        let (start, at) = userinfo(url)?;
        let (_, password) = url[start..at].split_once(':')?;
        return Some(password.to_owned());
    }
    let rest = url.split("password=").nth(1)?;
    let value = rest.strip_prefix('\'').map_or_else(
        || rest.split_whitespace().next().unwrap_or_default(),
        |quoted| quoted.split('\'').next().unwrap_or_default(),
    );
    Some(value.to_owned())
}

/// The URI or conninfo with its password replaced by `***`.
fn redact_url(url: &str) -> String {
    match url_password(url) {
        Some(password) if !password.is_empty() => url.replacen(&password, "***", 1),
        _ => url.to_owned(),
    }
}

impl Settings {
    /// Defaults for everything but the data directory; what tests start from.
    pub fn with_data_dir(data_dir: PathBuf) -> Self {
        let cli = Cli::parse_from(["pez"]);
        let mut settings = cli
            .settings
            .validate()
            .unwrap_or_else(|e| panic!("the defaults are invalid: {e}"));
        settings.data_dir = data_dir;
        settings
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn raw() -> RawSettings {
        RawSettings {
            listen: "127.0.0.1:8000".into(),
            data_dir: "./pez-data".into(),
            max_count: "100".into(),
            log: "info".into(),
            block_size: "1000".into(),
            block_max: "1000000".into(),
            lease_wait_ms: "1000".into(),
            store_timeout_ms: "500".into(),
            shutdown_timeout_ms: "5000".into(),
            database_url: None,
            db_host: None,
            db_port: "5432".into(),
            db_name: "pez".into(),
            db_username: "pezuser".into(),
            db_password: None,
            db_sslmode: None,
            db_sslrootcert: None,
            db_pool_size: "4".into(),
            db_timeout_ms: "1000".into(),
            db_startup_timeout_ms: "30000".into(),
            sync_interval_ms: "1000".into(),
            max_lease: "1000000".into(),
            admin_token: None,
            tokens: None,
            log_format: "text".into(),
            max_connections: "1024".into(),
            header_timeout_ms: "5000".into(),
            idle_timeout_ms: "60000".into(),
            request_timeout_ms: "10000".into(),
            max_body_bytes: "16384".into(),
        }
    }

    #[test]
    fn limits_and_the_log_format_are_checked() {
        let err = RawSettings {
            log_format: "xml".into(),
            ..raw()
        }
        .validate()
        .unwrap_err();
        assert!(err.to_string().starts_with("PEZ_LOG_FORMAT"));
        let err = RawSettings {
            max_connections: "0".into(),
            ..raw()
        }
        .validate()
        .unwrap_err();
        assert!(err.to_string().starts_with("PEZ_MAX_CONNECTIONS"));
        let limits = raw().validate().unwrap().limits;
        assert_eq!(
            (limits.max_connections, limits.max_body_bytes),
            (1024, 16384)
        );
    }

    #[test]
    fn tokens_come_from_a_list_or_a_file() {
        let listed = RawSettings {
            tokens: Some("a, b,,c".into()),
            ..raw()
        }
        .validate()
        .unwrap();
        let exposed: Vec<_> = listed
            .access
            .dispensing
            .iter()
            .map(|t| t.expose().to_owned())
            .collect();
        assert_eq!(exposed, ["a", "b", "c"]);
        let path = std::env::temp_dir().join(format!("pez-tokens-{}", std::process::id()));
        std::fs::write(&path, "# clients\nalpha\n\n  beta  \n").unwrap();
        let from_file = RawSettings {
            tokens: Some(format!("@{}", path.display())),
            ..raw()
        }
        .validate()
        .unwrap();
        let exposed: Vec<_> = from_file
            .access
            .dispensing
            .iter()
            .map(|t| t.expose().to_owned())
            .collect();
        assert_eq!(exposed, ["alpha", "beta"]);
        std::fs::remove_file(&path).unwrap();
        let missing = RawSettings {
            tokens: Some("@/nonexistent/tokens".into()),
            ..raw()
        }
        .validate()
        .unwrap_err();
        assert!(missing.to_string().starts_with("PEZ_TOKENS"));
        assert!(
            RawSettings {
                tokens: Some(",".into()),
                ..raw()
            }
            .validate()
            .is_err()
        );
        assert!(
            format!("{listed:?}").contains("Secret(***)")
                && !format!("{listed:?}").contains("\"a\"")
        );
    }

    fn postgres(raw: RawSettings) -> PgSettings {
        match raw.validate().unwrap().store {
            StoreChoice::Postgres(pg) => pg,
            StoreChoice::Embedded => panic!("expected PostgreSQL"),
        }
    }

    #[test]
    fn pez_settings_prints_every_variable_of_the_command_line() {
        use clap::CommandFactory;
        let raw = raw();
        let printed: Vec<_> = raw
            .effective(&raw.validate().unwrap())
            .into_iter()
            .map(|(v, _)| v)
            .collect();
        let declared: Vec<String> = Cli::command()
            .get_arguments()
            .filter_map(|arg| arg.get_env())
            .map(|env| env.to_string_lossy().into_owned())
            .collect();
        assert!(!declared.is_empty());
        for variable in &declared {
            assert!(
                printed.contains(&variable.as_str()),
                "pez settings omits {variable}"
            );
        }
        assert_eq!(printed.len(), declared.len());
    }

    #[test]
    fn without_database_settings_the_store_is_embedded() {
        assert!(matches!(
            raw().validate().unwrap().store,
            StoreChoice::Embedded
        ));
    }

    #[test]
    fn the_originals_variables_build_a_conninfo_and_the_password_stays_hidden() {
        let pg = postgres(RawSettings {
            db_host: Some("db.internal".into()),
            db_password: Some("s3cr'et".into()),
            db_sslmode: Some("verify-full".into()),
            db_sslrootcert: Some("/etc/pez/rds ca.pem".into()),
            ..raw()
        });
        let conninfo = pg.conninfo.expose();
        for part in [
            "host='db.internal'",
            "port='5432'",
            "dbname='pez'",
            "user='pezuser'",
            "password='s3cr\\'et'",
            "sslmode='verify-full'",
            "sslrootcert='/etc/pez/rds ca.pem'",
        ] {
            assert!(conninfo.contains(part), "{part} missing from {conninfo}");
        }
        assert_eq!(
            pg.description,
            "postgresql://pezuser@db.internal:5432/pez (sslmode=verify-full)"
        );
        assert!(!format!("{pg:?}").contains("s3cr"));
        assert_eq!(pg.scrub("FATAL: s3cr'et is wrong"), "FATAL: *** is wrong");
    }

    #[test]
    fn a_database_url_keeps_its_own_parameters_and_is_redacted() {
        let pg = postgres(RawSettings {
            database_url: Some("postgres://me:hunter2@h:6543/db?sslmode=require".into()),
            db_sslmode: Some("disable".into()),
            ..raw()
        });
        let conninfo = pg.conninfo.expose();
        assert!(conninfo.starts_with("postgres://me:hunter2@h:6543/db?sslmode=require&"));
        assert!(!conninfo.contains("sslmode=disable"));
        assert!(conninfo.contains("connect_timeout=2"));
        assert_eq!(
            pg.description,
            "postgres://me:***@h:6543/db?sslmode=require"
        );
        assert_eq!(pg.scrub("x hunter2 y"), "x *** y");
    }

    #[test]
    fn an_unknown_sslmode_is_refused() {
        let err = RawSettings {
            db_host: Some("h".into()),
            db_sslmode: Some("maybe".into()),
            ..raw()
        }
        .validate()
        .unwrap_err();
        assert!(err.to_string().starts_with("PEZ_DB_SSLMODE"));
    }

    #[test]
    fn a_max_count_of_zero_means_the_default() {
        let settings = RawSettings {
            max_count: "0".into(),
            ..raw()
        }
        .validate()
        .unwrap();
        assert_eq!(settings.max_count, DEFAULT_MAX_COUNT);
    }

    #[test]
    fn a_max_count_that_is_not_a_non_negative_integer_names_the_variable() {
        for bad in [
            "-1",
            "abc",
            "",
            "1.5",
            "+5",
            "1e2",
            "99999999999999999999999",
        ] {
            let err = RawSettings {
                max_count: bad.into(),
                ..raw()
            }
            .validate()
            .unwrap_err();
            let line = err.to_string();
            assert!(
                line.starts_with("PEZ_MAX_COUNT must be a non-negative integer"),
                "{line}"
            );
            assert!(!line.contains('\n'));
        }
    }

    #[test]
    fn blocks_are_at_least_twice_the_max_count() {
        let settings = RawSettings {
            max_count: "5000".into(),
            ..raw()
        }
        .validate()
        .unwrap();
        assert_eq!(settings.block_min, 10_000);
        assert!(settings.block_max >= settings.block_min);
    }

    #[test]
    fn a_listen_address_without_a_port_is_refused() {
        let err = RawSettings {
            listen: "127.0.0.1".into(),
            ..raw()
        }
        .validate()
        .unwrap_err();
        assert!(err.to_string().starts_with("PEZ_LISTEN"));
    }
}
