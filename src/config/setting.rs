//! What a setting is: its variable, flag, default, kind and help, and how
//! one becomes a clap argument, a `--help` line and an error message.

use super::error::SettingError;
use clap::Arg;

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

/// The heading of the settings in every `--help`, after the command's own
/// arguments and flags.
pub const HELP_HEADING: &str = "Settings (each also a PEZ_* variable; shared by every command)";

impl Setting {
    /// The clap argument: `--FLAG`, read from the variable too.
    pub(super) fn arg(&self) -> Arg {
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

    pub(super) fn error(&self, value: &str) -> SettingError {
        SettingError::new(self.variable, value, self.expected())
    }
}
