//! Every setting, declared once: its variable, flag, default, bounds and
//! help. The command line (`--help` and every flag), validation, `pez
//! settings` and the checks of the packaged env file all read this table.

use super::SettingError;
use clap::{Arg, ArgMatches, Args, Command, FromArgMatches};
use std::collections::BTreeMap;
use std::fmt;
use std::time::Duration;

/// What values a setting takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Any text.
    Text,
    /// A file or directory.
    Path,
    /// `address:port`.
    Address,
    /// One of these words.
    Choice(&'static [&'static str]),
    /// A decimal integer within `min..=max`.
    Integer {
        /// Smallest value.
        min: u64,
        /// Largest value.
        max: u64,
    },
    /// Whole milliseconds within `min..=max`.
    Millis {
        /// Shortest.
        min: u64,
        /// Longest.
        max: u64,
    },
    /// Text never shown: not in `--help`, not by `pez settings`, not logged.
    Secret,
}

/// One setting: a `PEZ_*` variable and the flag beside it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Setting {
    /// The environment variable.
    pub variable: &'static str,
    /// The long flag, without `--`.
    pub flag: &'static str,
    /// The value when none is given.
    pub default: Option<&'static str>,
    /// What it takes.
    pub kind: Kind,
    /// What it does, for `--help`.
    pub help: &'static str,
}

const fn setting(
    variable: &'static str,
    flag: &'static str,
    default: Option<&'static str>,
    kind: Kind,
    help: &'static str,
) -> Setting {
    Setting {
        variable,
        flag,
        default,
        kind,
        help,
    }
}

const fn millis(min: u64, max: u64) -> Kind {
    Kind::Millis { min, max }
}

const fn integer(min: u64, max: u64) -> Kind {
    Kind::Integer { min, max }
}

/// Address and port to serve HTTP on.
pub const LISTEN: Setting = setting(
    "PEZ_LISTEN",
    "listen",
    Some("127.0.0.1:8000"),
    Kind::Address,
    "Address and port to serve HTTP on.",
);
/// Directory of the embedded store.
pub const DATA_DIR: Setting = setting(
    "PEZ_DATA_DIR",
    "data-dir",
    Some("./pez-data"),
    Kind::Path,
    "Directory of the embedded store (created if missing by a server or a command that \
     changes sequences; never by list, show, export or settings).",
);
/// Largest count of a v2 request.
pub const MAX_COUNT: Setting = setting(
    "PEZ_MAX_COUNT",
    "max-count",
    Some("100"),
    integer(0, 1_000_000),
    "Largest count a v2 request may ask for; 0 means the default, 100.",
);
/// The log filter.
pub const LOG: Setting = setting(
    "PEZ_LOG",
    "log",
    Some("info"),
    Kind::Text,
    "Log filter in env_logger syntax, e.g. info or pez=debug,warp=info.",
);
/// Text or JSON log lines.
pub const LOG_FORMAT: Setting = setting(
    "PEZ_LOG_FORMAT",
    "log-format",
    Some("text"),
    Kind::Choice(&["text", "json"]),
    "Log lines as text (for people) or json (one object per line, for log shippers).",
);
/// First and smallest lease.
pub const BLOCK_SIZE: Setting = setting(
    "PEZ_BLOCK_SIZE",
    "block-size",
    Some("1000"),
    integer(1, 1_000_000_000),
    "First and smallest block of numbers leased at a time; raised to twice the max count if \
     below it.",
);
/// Largest lease.
pub const BLOCK_MAX: Setting = setting(
    "PEZ_BLOCK_MAX",
    "block-max",
    Some("1000000"),
    integer(1, 1_000_000_000),
    "Largest block leased at a time (blocks double while they last under a minute).",
);
/// How long a request waits for the store.
pub const LEASE_WAIT_MS: Setting = setting(
    "PEZ_LEASE_WAIT_MS",
    "lease-wait-ms",
    Some("1000"),
    millis(0, 60_000),
    "Milliseconds a request waits for the store when no numbers are on hand, before 503.",
);
/// The embedded store's lock wait.
pub const STORE_TIMEOUT_MS: Setting = setting(
    "PEZ_STORE_TIMEOUT_MS",
    "store-timeout-ms",
    Some("500"),
    millis(1, 60_000),
    "Milliseconds an embedded store call waits for a lock held elsewhere before it fails \
     (PostgreSQL: PEZ_DB_TIMEOUT_MS).",
);
/// The graceful stop's deadlines.
pub const SHUTDOWN_TIMEOUT_MS: Setting = setting(
    "PEZ_SHUTDOWN_TIMEOUT_MS",
    "shutdown-timeout-ms",
    Some("5000"),
    millis(0, 600_000),
    "Milliseconds a graceful stop waits for requests in flight, and again for giving unused \
     numbers back to the store.",
);
/// Connections served at once.
pub const MAX_CONNECTIONS: Setting = setting(
    "PEZ_MAX_CONNECTIONS",
    "max-connections",
    Some("1024"),
    integer(1, 1_000_000),
    "Most connections served at once; more wait to be accepted.",
);
/// Time to send headers.
pub const HEADER_TIMEOUT_MS: Setting = setting(
    "PEZ_HEADER_TIMEOUT_MS",
    "header-timeout-ms",
    Some("5000"),
    millis(1, 600_000),
    "Milliseconds a new connection has to send its first request's headers before it is cut \
     off (later requests: PEZ_IDLE_TIMEOUT_MS).",
);
/// Time a connection may idle.
pub const IDLE_TIMEOUT_MS: Setting = setting(
    "PEZ_IDLE_TIMEOUT_MS",
    "idle-timeout-ms",
    Some("60000"),
    millis(10, 86_400_000),
    "Milliseconds a connection may move no byte before it is closed: a kept-alive one \
     waiting for its next request, or one whose client takes none of its answers (either \
     would otherwise hold a connection slot).",
);
/// Time a request may take.
pub const REQUEST_TIMEOUT_MS: Setting = setting(
    "PEZ_REQUEST_TIMEOUT_MS",
    "request-timeout-ms",
    Some("10000"),
    millis(1, 600_000),
    "Milliseconds a request may take before it is answered 503.",
);
/// Largest request body.
pub const MAX_BODY_BYTES: Setting = setting(
    "PEZ_MAX_BODY_BYTES",
    "max-body-bytes",
    Some("16384"),
    integer(1, 64 * 1024 * 1024),
    "Largest request body in bytes (larger: 413). Request line and headers are limited to \
     8 KiB (larger: 431).",
);
/// How often to look at the store.
pub const SYNC_INTERVAL_MS: Setting = setting(
    "PEZ_SYNC_INTERVAL_MS",
    "sync-interval-ms",
    Some("1000"),
    millis(10, 3_600_000),
    "Milliseconds between looks at the store for restarts, creations and deletions made by \
     other instances (the bound on how long they take to reach this one).",
);
/// Largest range lease.
pub const MAX_LEASE: Setting = setting(
    "PEZ_MAX_LEASE",
    "max-lease",
    Some("1000000"),
    integer(1, 1_000_000_000),
    "Largest count of a range lease (POST /v2/sequences/NAME/lease).",
);
/// The admin token.
pub const ADMIN_TOKEN: Setting = setting(
    "PEZ_ADMIN_TOKEN",
    "admin-token",
    None,
    Kind::Secret,
    "Bearer token of the admin API (/v2/sequences); it also takes numbers and range leases and \
     reads /metrics. Without it the admin API is off.",
);
/// Tokens that may take numbers.
pub const TOKENS: Setting = setting(
    "PEZ_TOKENS",
    "tokens",
    None,
    Kind::Secret,
    "Tokens that may take numbers: a comma-separated list, or @FILE with one per line. When \
     set, every dispensing request needs one of them.",
);
/// Tokens that may see the details: /metrics and the status page's.
pub const METRICS_TOKENS: Setting = setting(
    "PEZ_METRICS_TOKENS",
    "metrics-tokens",
    None,
    Kind::Secret,
    "Tokens that may read /metrics and the status page's details (sequences, positions, rates, \
     the store), as PEZ_TOKENS: a comma-separated list, or @FILE with one per line. While any \
     token is set, those need one of these or the admin token.",
);
/// Tokens that may take range leases.
pub const LEASE_TOKENS: Setting = setting(
    "PEZ_LEASE_TOKENS",
    "lease-tokens",
    None,
    Kind::Secret,
    "Tokens that may take range leases (POST /v2/sequences/NAME/lease) and numbers: a \
     comma-separated list, or @FILE with one per line. When set, a range lease needs one of \
     them (or the admin token) and PEZ_TOKENS only take numbers; unset, whoever may take \
     numbers may take range leases. Recommended.",
);
/// PostgreSQL, as one string.
pub const DATABASE_URL: Setting = setting(
    "PEZ_DATABASE_URL",
    "database-url",
    None,
    Kind::Secret,
    "PostgreSQL connection URL or libpq conninfo; when set (or PEZ_DB_HOST is), PostgreSQL is \
     the store instead of the embedded one.",
);
/// PostgreSQL host (the original's variable).
pub const DB_HOST: Setting = setting(
    "PEZ_DB_HOST",
    "db-host",
    None,
    Kind::Text,
    "PostgreSQL host; when set, PostgreSQL is the store (the original's variables).",
);
/// PostgreSQL port.
pub const DB_PORT: Setting = setting(
    "PEZ_DB_PORT",
    "db-port",
    Some("5432"),
    integer(1, 65_535),
    "PostgreSQL port.",
);
/// PostgreSQL database.
pub const DB_NAME: Setting = setting(
    "PEZ_DB_NAME",
    "db-name",
    Some("pez"),
    Kind::Text,
    "PostgreSQL database name.",
);
/// PostgreSQL user.
pub const DB_USERNAME: Setting = setting(
    "PEZ_DB_USERNAME",
    "db-username",
    Some("pezuser"),
    Kind::Text,
    "PostgreSQL user.",
);
/// PostgreSQL password.
pub const DB_PASSWORD: Setting = setting(
    "PEZ_DB_PASSWORD",
    "db-password",
    None,
    Kind::Secret,
    "PostgreSQL password (never logged; prefer the environment to the flag).",
);
/// TLS to PostgreSQL.
pub const DB_SSLMODE: Setting = setting(
    "PEZ_DB_SSLMODE",
    "db-sslmode",
    None,
    Kind::Choice(&["disable", "prefer", "require", "verify-ca", "verify-full"]),
    "TLS to PostgreSQL: disable, prefer, require, verify-ca or verify-full [default: prefer, \
     or what PEZ_DATABASE_URL says].",
);
/// The CA of PostgreSQL's certificate.
pub const DB_SSLROOTCERT: Setting = setting(
    "PEZ_DB_SSLROOTCERT",
    "db-sslrootcert",
    None,
    Kind::Path,
    "CA certificate file for sslmode verify-ca and verify-full (for RDS: the RDS CA bundle).",
);
/// Connections per instance.
pub const DB_POOL_SIZE: Setting = setting(
    "PEZ_DB_POOL_SIZE",
    "db-pool-size",
    Some("4"),
    integer(1, 1000),
    "Connections to PostgreSQL per instance.",
);
/// Bound of each database call.
pub const DB_TIMEOUT_MS: Setting = setting(
    "PEZ_DB_TIMEOUT_MS",
    "db-timeout-ms",
    Some("1000"),
    millis(1, 600_000),
    "Milliseconds for each PostgreSQL statement and lock wait, and for getting a pooled \
     connection; a call still running after twice this (a commit waiting for a standby that \
     is gone) is cancelled and counts as failed.",
);
/// How long to wait for PostgreSQL at start.
pub const DB_STARTUP_TIMEOUT_MS: Setting = setting(
    "PEZ_DB_STARTUP_TIMEOUT_MS",
    "db-startup-timeout-ms",
    Some("30000"),
    millis(0, 3_600_000),
    "Milliseconds PEZ keeps retrying at start while PostgreSQL is not reachable yet.",
);

/// Every setting, in the order `--help` and `pez settings` list them.
pub const ALL: &[Setting] = &[
    LISTEN,
    DATA_DIR,
    MAX_COUNT,
    LOG,
    BLOCK_SIZE,
    BLOCK_MAX,
    LEASE_WAIT_MS,
    STORE_TIMEOUT_MS,
    SHUTDOWN_TIMEOUT_MS,
    DATABASE_URL,
    DB_HOST,
    DB_PORT,
    DB_NAME,
    DB_USERNAME,
    DB_PASSWORD,
    DB_SSLMODE,
    DB_SSLROOTCERT,
    DB_POOL_SIZE,
    DB_TIMEOUT_MS,
    DB_STARTUP_TIMEOUT_MS,
    SYNC_INTERVAL_MS,
    MAX_LEASE,
    LOG_FORMAT,
    MAX_CONNECTIONS,
    HEADER_TIMEOUT_MS,
    IDLE_TIMEOUT_MS,
    REQUEST_TIMEOUT_MS,
    MAX_BODY_BYTES,
    ADMIN_TOKEN,
    TOKENS,
    METRICS_TOKENS,
    LEASE_TOKENS,
];

/// The heading of the settings in every `--help`, after the command's own
/// arguments and flags.
pub const HELP_HEADING: &str = "Settings (each also a PEZ_* variable; shared by every command)";

impl Setting {
    /// The clap argument: `--FLAG`, read from the variable too.
    fn arg(&self) -> Arg {
        let mut arg = Arg::new(self.flag)
            .long(self.flag)
            .env(self.variable)
            .help(self.help_text())
            // Under a heading of their own, after a subcommand's own flags:
            // `pez sequence list --help` must not bury those among thirty
            // server settings.
            .help_heading(HELP_HEADING)
            .global(true)
            .allow_hyphen_values(true);
        if let Some(default) = self.default {
            arg = arg.default_value(default);
        }
        if self.kind == Kind::Secret {
            arg = arg.hide_env_values(true);
        }
        arg
    }

    /// The help of `--help`: what it does and, for a number, its bounds
    /// (the same the validation applies, so they cannot disagree).
    pub fn help_text(&self) -> String {
        match self.kind {
            Kind::Integer { min, max } | Kind::Millis { min, max } => {
                format!("{} [range: {min} to {max}]", self.help)
            }
            _ => self.help.to_owned(),
        }
    }

    /// What an acceptable value looks like, for error messages.
    pub fn expected(&self) -> String {
        match self.kind {
            Kind::Text | Kind::Secret => "text".into(),
            Kind::Path => "a path".into(),
            Kind::Address => "an address:port such as 127.0.0.1:8000".into(),
            Kind::Choice(words) => format!("one of {}", words.join(", ")),
            Kind::Integer { min, max } => format!("an integer from {min} to {max}"),
            Kind::Millis { min, max } => {
                format!("a whole number of milliseconds from {min} to {max}")
            }
        }
    }

    fn error(&self, value: &str) -> SettingError {
        SettingError::new(self.variable, value, self.expected())
    }
}

/// The settings as given (or defaulted), before validation.
#[derive(Clone, Default)]
pub struct RawSettings {
    values: BTreeMap<&'static str, String>,
    /// The settings given in the environment or as a flag, which the
    /// service's settings file does not override.
    explicit: std::collections::BTreeSet<&'static str>,
}

impl fmt::Debug for RawSettings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut map = f.debug_map();
        for setting in ALL {
            if let Some(value) = self.values.get(setting.variable) {
                match setting.kind {
                    Kind::Secret => map.entry(&setting.variable, &"***"),
                    _ => map.entry(&setting.variable, value),
                };
            }
        }
        map.finish()
    }
}

impl RawSettings {
    /// The defaults, with `given` set on top (for tests and embedders).
    pub fn with(given: &[(Setting, &str)]) -> Self {
        let mut raw = Self::default();
        for (setting, value) in given {
            raw.values.insert(setting.variable, (*value).to_owned());
        }
        raw
    }

    /// These settings with `setting` given as `value`.
    pub fn with_value(&self, setting: &Setting, value: &str) -> Self {
        let mut raw = self.clone();
        raw.values.insert(setting.variable, value.to_owned());
        raw
    }

    /// The value of `setting`: given, else its default.
    pub fn get(&self, setting: &Setting) -> Option<&str> {
        self.values
            .get(setting.variable)
            .map(String::as_str)
            .or(setting.default)
    }

    /// The value of `setting`, unless it is missing or empty.
    pub fn given(&self, setting: &Setting) -> Option<&str> {
        self.get(setting).filter(|value| !value.is_empty())
    }

    /// An integer setting, within its bounds.
    pub fn integer(&self, setting: &Setting) -> Result<u64, SettingError> {
        let value = self.get(setting).unwrap_or_default();
        let (Kind::Integer { min, max } | Kind::Millis { min, max }) = setting.kind else {
            return Err(setting.error(value));
        };
        // Only plain decimal digits: FromStr would also take "+5".
        let digits_only = !value.is_empty() && value.bytes().all(|b| b.is_ascii_digit());
        digits_only
            .then(|| value.parse::<u64>().ok())
            .flatten()
            .filter(|n| (min..=max).contains(n))
            .ok_or_else(|| setting.error(value))
    }

    /// A milliseconds setting, within its bounds.
    pub fn millis(&self, setting: &Setting) -> Result<Duration, SettingError> {
        self.integer(setting).map(Duration::from_millis)
    }

    /// A choice setting: one of its words, if given.
    pub fn choice(&self, setting: &Setting) -> Result<Option<&'static str>, SettingError> {
        let Some(value) = self.given(setting) else {
            return Ok(None);
        };
        let Kind::Choice(words) = setting.kind else {
            return Err(setting.error(value));
        };
        words
            .iter()
            .find(|word| **word == value)
            .map(|word| Some(*word))
            .ok_or_else(|| setting.error(value))
    }

    /// Takes each setting `file` assigns (the service's settings file,
    /// `(VARIABLE, value)` pairs) unless the environment or a flag gave it:
    /// the file sits below both. Other variables in it are left alone.
    pub fn beneath(&mut self, file: &[(String, String)]) {
        for (variable, value) in file {
            if let Some(setting) = ALL.iter().find(|s| s.variable == variable)
                && !self.explicit.contains(setting.variable)
            {
                self.values.insert(setting.variable, value.clone());
            }
        }
    }

    /// Every setting with the value `pez settings` shows: secrets as `***`
    /// when set, the rest as given or defaulted.
    pub fn shown(&self) -> Vec<(&'static str, String)> {
        ALL.iter()
            .map(|setting| {
                let value = match (setting.kind, self.given(setting)) {
                    (Kind::Secret, Some(_)) => "***".to_owned(),
                    (_, value) => value.unwrap_or_default().to_owned(),
                };
                (setting.variable, value)
            })
            .collect()
    }
}

impl FromArgMatches for RawSettings {
    fn from_arg_matches(matches: &ArgMatches) -> Result<Self, clap::Error> {
        let mut raw = Self::default();
        raw.update_from_arg_matches(matches)?;
        Ok(raw)
    }

    fn update_from_arg_matches(&mut self, matches: &ArgMatches) -> Result<(), clap::Error> {
        for setting in ALL {
            if let Some(value) = matches.get_one::<String>(setting.flag) {
                self.values.insert(setting.variable, value.clone());
            }
            if matches
                .value_source(setting.flag)
                .is_some_and(|source| source != clap::parser::ValueSource::DefaultValue)
            {
                self.explicit.insert(setting.variable);
            }
        }
        Ok(())
    }
}

impl Args for RawSettings {
    fn augment_args(command: Command) -> Command {
        ALL.iter()
            .fold(command, |command, setting| command.arg(setting.arg()))
    }

    fn augment_args_for_update(command: Command) -> Command {
        Self::augment_args(command)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_setting_has_a_pez_variable_and_a_matching_flag() {
        let mut seen = std::collections::HashSet::new();
        for setting in ALL {
            assert!(setting.variable.starts_with("PEZ_"), "{setting:?}");
            let flag = setting.variable["PEZ_".len()..]
                .to_ascii_lowercase()
                .replace('_', "-");
            assert_eq!(setting.flag, flag, "{setting:?}");
            assert!(seen.insert(setting.variable), "{} twice", setting.variable);
            if let Some(default) = setting.default {
                let raw = RawSettings::default();
                match setting.kind {
                    Kind::Integer { .. } | Kind::Millis { .. } => {
                        raw.integer(setting).expect("the default is in bounds");
                    }
                    Kind::Choice(words) => assert!(words.contains(&default)),
                    _ => {}
                }
            }
        }
    }

    /// The packaged env file and the Chef cookbook are written for
    /// operators, not generated; they must still name every setting, with
    /// its declared default where they show one.
    #[test]
    fn the_env_file_and_the_cookbook_know_every_setting_and_its_default() {
        let env_file = include_str!("../../packaging/pez.env");
        for setting in ALL {
            let line = env_file
                .lines()
                .find(|line| {
                    line.trim_start_matches('#')
                        .starts_with(&format!("{}=", setting.variable))
                })
                .unwrap_or_else(|| panic!("packaging/pez.env lacks {}", setting.variable));
            if let (Some(default), Some(shown)) = (
                setting.default,
                line.strip_prefix('#')
                    .and_then(|l| l.split_once('='))
                    .map(|(_, v)| v),
            ) {
                assert_eq!(shown, default, "packaging/pez.env: {line}");
            }
        }
        let cookbook = include_str!("../../chef/cookbooks/pez/libraries/env_file.rb");
        let listed = cookbook
            .split_once("SETTINGS = %w(")
            .and_then(|(_, rest)| rest.split_once(')'))
            .map(|(list, _)| list)
            .expect("the cookbook's SETTINGS list");
        let mut named: Vec<String> = listed
            .split_whitespace()
            .map(|key| format!("PEZ_{}", key.to_ascii_uppercase()))
            .collect();
        let mut declared: Vec<String> = ALL.iter().map(|s| s.variable.to_owned()).collect();
        named.sort();
        declared.sort();
        assert_eq!(named, declared, "the cookbook's SETTINGS");
    }

    #[test]
    fn integers_are_plain_digits_within_their_bounds() {
        for (value, ok) in [
            ("0", true),
            ("1000000", true),
            ("1000001", false),
            ("-1", false),
            ("+5", false),
            ("1.5", false),
            ("1e2", false),
            (" 5", false),
            ("", false),
            ("99999999999999999999999", false),
        ] {
            let raw = RawSettings::with(&[(MAX_COUNT, value)]);
            assert_eq!(raw.integer(&MAX_COUNT).is_ok(), ok, "{value:?}");
        }
        let error = RawSettings::with(&[(DB_TIMEOUT_MS, "3600001")])
            .millis(&DB_TIMEOUT_MS)
            .unwrap_err()
            .to_string();
        assert_eq!(
            error,
            "PEZ_DB_TIMEOUT_MS must be a whole number of milliseconds from 1 to 600000, not \
             \"3600001\""
        );
    }

    #[test]
    fn secrets_never_show() {
        let raw = RawSettings::with(&[(DB_PASSWORD, "hunter2"), (ADMIN_TOKEN, "tok3n")]);
        let debug = format!("{raw:?}");
        assert!(
            !debug.contains("hunter2") && !debug.contains("tok3n"),
            "{debug}"
        );
        let shown = raw.shown();
        assert!(shown.contains(&("PEZ_DB_PASSWORD", "***".to_owned())));
        assert!(shown.contains(&("PEZ_TOKENS", String::new())));
    }
}
