//! The settings as given: from the environment, `.env`, flags (clap reads
//! them as text, one argument per declared setting) and the service's
//! settings file, before any of them is checked.

use super::declared::{
    ALL, DATA_DIR, DATABASE_URL, DB_HOST, DB_NAME, DB_PASSWORD, DB_PORT, DB_USERNAME,
};
use super::error::SettingError;
use super::setting::{Kind, Setting};
use clap::{ArgMatches, Args, Command, FromArgMatches};
use std::collections::BTreeMap;
use std::fmt;
use std::time::Duration;

/// The settings that together name the store a command reaches: taken
/// from the service's settings file all or none ([`RawSettings::beneath`]).
pub const STORE_IDENTITY: [&Setting; 7] = [
    &DATABASE_URL,
    &DB_HOST,
    &DB_PORT,
    &DB_NAME,
    &DB_USERNAME,
    &DB_PASSWORD,
    &DATA_DIR,
];

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
    ///
    /// Which store a command reaches is named by several settings together
    /// ([`STORE_IDENTITY`]): once the environment or a flag names any of
    /// them, the file names none. Else `PEZ_DATA_DIR=/tmp/x pez sequence
    /// restart ...` would keep the file's `PEZ_DATABASE_URL` (which wins
    /// over a data directory) and restart the service's production
    /// sequence, and `PEZ_DB_HOST=staging` would send the file's password
    /// to staging.
    pub fn beneath(&mut self, file: &[(String, String)]) {
        let store_named_here = STORE_IDENTITY
            .iter()
            .any(|setting| self.explicit.contains(setting.variable));
        for (variable, value) in file {
            if let Some(setting) = ALL.iter().find(|s| s.variable == variable)
                && !self.explicit.contains(setting.variable)
                && !(store_named_here
                    && STORE_IDENTITY
                        .iter()
                        .any(|s| s.variable == setting.variable))
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
    use crate::config::declared::{ADMIN_TOKEN, DB_PASSWORD, DB_TIMEOUT_MS, MAX_COUNT};

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
