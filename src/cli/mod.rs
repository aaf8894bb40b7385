//! The `pez` command: parse, validate, and run a subcommand. Every failure
//! ends as one line on stderr and a non-zero exit code.
//!
//! `sequence`: the `pez sequence ...` commands; `store`: migrating, moving
//! the embedded store to PostgreSQL, and handing sequences back to the
//! original PEZ.

pub mod env_file;
mod sequence;
mod store;

pub use sequence::format_list;

use crate::config::Settings;
use crate::config::command::{Cli, Command, SequenceCommand, StoreCommand};
use crate::server::{self, Server};
use crate::store::{Consent, OpenError, Store};
use crate::systemd::{self, Notifier};
use crate::telemetry;
use crate::trusted;
use clap::error::ErrorKind;
use clap::{CommandFactory, FromArgMatches};
use std::io::ErrorKind::NotFound;
use std::path::Path;
use std::process::ExitCode;
use std::sync::Arc;

/// Runs `pez` with the process's arguments and environment.
pub fn main() -> ExitCode {
    // Only ./.env, not a parent directory's: under systemd the working
    // directory is /var/lib/pez, and /var/.env or /.env must not count.
    // Read as PEZ reads every file of settings: refused when another user
    // could have written it (`cd /tmp/shared && pez ...`).
    let dot_env = Path::new(".env");
    match trusted::read_to_string("the settings file", dot_env) {
        Ok(text) => {
            if let Err(e) = dotenvy::from_read(text.as_bytes()) {
                return fail(dot_env_error(dot_env, &text, &e));
            }
        }
        Err(e) if e.could_not_read().map(std::io::Error::kind) == Some(NotFound) => {}
        Err(e) => return fail(e),
    }
    // The service's settings, below .env, the environment and the flags.
    let service_file = match env_file::load(std::env::var_os(env_file::VARIABLE)) {
        Ok(loaded) => loaded,
        Err(e) => return fail(e),
    };
    let parsed = Cli::command()
        .try_get_matches()
        .and_then(|matches| Cli::from_arg_matches(&matches));
    let cli = match parsed {
        Ok(mut cli) => {
            if let Some(loaded) = &service_file {
                env_file::announce(loaded);
                cli.settings.beneath(&loaded.values);
            }
            cli
        }
        Err(e) if matches!(e.kind(), ErrorKind::DisplayHelp | ErrorKind::DisplayVersion) => {
            let _ = e.print();
            return ExitCode::SUCCESS;
        }
        Err(e) => {
            let rendered = e.to_string();
            let first = rendered.lines().next().unwrap_or("invalid arguments");
            return fail(format_args!(
                "{} (see pez --help)",
                first.trim_start_matches("error: ")
            ));
        }
    };
    let settings = match cli.settings.validate() {
        Ok(settings) => settings,
        Err(e) => return fail(e),
    };
    telemetry::init(&settings.log, settings.log_format);
    // A typo in a variable's name leaves the setting meant at its default:
    // said by every command, a server's start above all.
    let unknown = crate::config::unknown::in_environment();
    for variable in &unknown {
        log::warn!("{variable}");
    }
    let outcome = match cli.command.unwrap_or(Command::Serve) {
        Command::Serve => serve(&settings),
        Command::Settings => {
            for (variable, value) in cli.settings.effective(&settings) {
                println!("{variable}={value}");
            }
            println!("# store: {}", crate::store::describe(&settings));
            for variable in &unknown {
                println!("# {variable}");
            }
            Ok(())
        }
        Command::Migrate => store::migrate(&settings),
        Command::Handback => store::hand_back(&settings),
        Command::Store(StoreCommand::Copy {
            to,
            to_file,
            allow_early_wrap,
        }) => store::copy(
            &cli.settings,
            &settings,
            store::Destination::from_args(to.as_deref(), to_file.as_deref()),
            allow_early_wrap,
        ),
        Command::Sequence(SequenceCommand::List) => sequence::list(&settings),
        Command::Sequence(SequenceCommand::Export { output }) => {
            sequence::export(&settings, output.as_deref())
        }
        Command::Sequence(SequenceCommand::Import {
            file,
            allow_early_wrap,
        }) => sequence::import(&settings, &file, allow_early_wrap),
        Command::Sequence(SequenceCommand::Restart {
            name,
            value,
            allow_backward,
            allow_early_wrap,
        }) => sequence::restart(
            &settings,
            &name,
            &value,
            Consent {
                backward: allow_backward,
                early_wrap: allow_early_wrap,
            },
        ),
        Command::Sequence(SequenceCommand::Show { name }) => sequence::show(&settings, &name),
        Command::Sequence(SequenceCommand::Delete { name }) => sequence::delete(&settings, &name),
        Command::Sequence(SequenceCommand::Create {
            name,
            direction,
            min,
            max,
            start,
            cycle,
            mode,
            sequence_max_lease,
        }) => sequence::create(
            &settings,
            &name,
            sequence::CreateArgs {
                direction: &direction,
                min: min.as_deref(),
                max: max.as_deref(),
                start: start.as_deref(),
                cycle: &cycle,
                mode: &mode,
                max_lease: sequence_max_lease.as_deref(),
            },
        ),
    };
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => fail(message),
    }
}

/// What is wrong with a `.env` file, in one line that names the file, the
/// line and the variable but never a value: the file holds
/// `PEZ_DB_PASSWORD` too, and dotenvy's own message quotes the line whole.
fn dot_env_error(file: &Path, text: &str, error: &dotenvy::Error) -> String {
    let dotenvy::Error::LineParse(rest, _) = error else {
        // I/O and environment errors carry no value of the file.
        return format!("cannot read {}: {error}", file.display());
    };
    // dotenvy hands back the file from the bad line on: where it starts
    // says which line it is.
    let line = text
        .find(rest.as_str())
        .map(|at| text[..at].matches('\n').count() + 1);
    let variable = rest
        .lines()
        .next()
        .and_then(|first| first.split('=').next())
        .map(|name| name.trim().trim_start_matches("export ").trim())
        .filter(|name| {
            !name.is_empty()
                && name
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'.')
        });
    format!(
        "cannot read {}: {} is not VARIABLE=value (an unclosed quote, say); its value is not \
         shown",
        file.display(),
        match (line, variable) {
            (Some(line), Some(name)) => format!("line {line} ({name})"),
            (Some(line), None) => format!("line {line}"),
            (None, Some(name)) => format!("the line of {name}"),
            (None, None) => "a line".to_owned(),
        }
    )
}

/// Says why pez stops, on one line (as every log record is), and exits 1.
fn fail(message: impl std::fmt::Display) -> ExitCode {
    eprintln!(
        "{}pez: {}",
        telemetry::error_prefix(),
        telemetry::one_line(&message.to_string())
    );
    ExitCode::FAILURE
}

fn serve(settings: &Settings) -> Result<(), String> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| format!("cannot start the async runtime: {e}"))?;
    let served = runtime.block_on(async {
        // Watched from now on: a stop while the server starts (waiting for
        // its database, say) ends the start; one right after it is a
        // graceful stop.
        let stop = server::shutdown_signal();
        tokio::pin!(stop);
        let notifier = Arc::new(Notifier::from_env());
        let server = tokio::select! {
            started = Server::start(settings) => started.map_err(|e| e.to_string())?,
            () = &mut stop => {
                log::info!("stopped before serving");
                return Ok(());
            }
        };
        // The store answered and the first blocks are leased: ready.
        notifier.ready(&format!("serving on http://{}", server.local_addr()));
        if let Some(every) = systemd::watchdog_interval() {
            let pinger = Arc::clone(&notifier);
            tokio::spawn(async move {
                let mut ticks = tokio::time::interval(every);
                loop {
                    ticks.tick().await;
                    pinger.watchdog();
                }
            });
        }
        let stopping = Arc::clone(&notifier);
        server
            .run_until(async move {
                stop.await;
                stopping.stopping();
            })
            .await;
        Ok(())
    });
    // A store call still stuck on a blocking thread (its caller gave up on
    // it long ago) must not keep the process from exiting.
    runtime.shutdown_timeout(std::time::Duration::from_millis(500));
    served
}

/// The store the settings choose, for a command that may change it: on the
/// embedded store, refused while a server holds it.
fn open_store(settings: &Settings) -> Result<Arc<dyn Store>, String> {
    crate::store::open(settings).map_err(|e| match e {
        OpenError::Locked(lock) => format!("{lock}; sequences cannot be changed while it runs"),
        other => other.to_string(),
    })
}
