//! The command line's grammar: `pez` and its subcommands with their own
//! arguments. The settings every command shares are flattened in from
//! [`RawSettings`], whose flags come from the declared table.

use super::raw::RawSettings;
use clap::{Parser, Subcommand};
use std::path::PathBuf;

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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::declared as d;
    use crate::config::raw::RawSettings;
    use crate::config::setting::Kind;

    fn raw(given: &[(crate::config::Setting, &str)]) -> RawSettings {
        RawSettings::with(given)
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
            let (Kind::Integer { min, max } | Kind::Millis { min, max }) = setting.kind else {
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
}
