//! Every setting, declared once: its variable, flag, default, bounds and
//! help. The command line (`--help` and every flag), validation, `pez
//! settings` and the checks of the packaged env file all read this table.

use super::setting::{Kind, Setting};

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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::raw::RawSettings;

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
}
