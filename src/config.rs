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
    version,
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
    /// Inspect or move sequences in the store.
    #[command(subcommand)]
    Sequence(SequenceCommand),
}

/// `pez sequence ...`
#[derive(Debug, Subcommand)]
pub enum SequenceCommand {
    /// Print each sequence with the next number it will issue.
    List,
    /// Make VALUE the next number NAME issues (like ALTER SEQUENCE ... RESTART).
    Restart {
        /// The sequence: forward or reverse.
        name: String,
        /// The next number to issue, from 1 to 9223372036854775807.
        #[arg(allow_hyphen_values = true)]
        value: String,
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
        let positive = "a positive integer";
        let block_size: u64 = parse("PEZ_BLOCK_SIZE", &self.block_size, positive)?;
        let block_max: u64 = parse("PEZ_BLOCK_MAX", &self.block_max, positive)?;
        if block_size == 0 {
            return Err(SettingError {
                variable: "PEZ_BLOCK_SIZE",
                value: self.block_size.clone(),
                expected: positive,
            });
        }
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
        })
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
        }
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
