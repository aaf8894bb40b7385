//! Validation: the raw settings, as given, checked and made into
//! [`Settings`], and shown back as `pez settings` prints them.

use super::database::StoreChoice;
use super::declared as d;
use super::error::SettingError;
use super::log_filter;
use super::raw::RawSettings;
use super::secret::Secret;
use super::setting::{Kind, Setting};
use super::settings::{Access, Limits, Settings};
use std::net::ToSocketAddrs;
use std::path::{Path, PathBuf};

/// The largest `count` a v2 request may ask for when PEZ_MAX_COUNT is unset
/// or 0 (the original's default).
pub const DEFAULT_MAX_COUNT: u64 = 100;

impl RawSettings {
    /// Checks every value and fills in derived ones.
    pub fn validate(&self) -> Result<Settings, SettingError> {
        // Every number and choice within its bounds, used or not: a typo in
        // the PostgreSQL settings of an embedded-store machine is still a typo.
        for setting in d::ALL {
            match setting.kind {
                Kind::Integer { .. } | Kind::Millis { .. } => {
                    self.integer(setting)?;
                }
                Kind::Choice(_) => {
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

    fn raw(given: &[(Setting, &str)]) -> RawSettings {
        RawSettings::with(given)
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
}
