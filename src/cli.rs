//! The `pez` command: parse, validate, and run a subcommand. Every failure
//! ends as one line on stderr and a non-zero exit code.

use crate::config::{Cli, Command, SequenceCommand, Settings, StoreChoice};
use crate::sequence::{MAX_VALUE, MIN_VALUE};
use crate::server::{self, Server};
use crate::store::{self, OpenError, PgStore, SequenceState, SqliteStore, Store};
use crate::systemd::{self, Notifier};
use crate::telemetry;
use clap::Parser;
use clap::error::ErrorKind;
use std::process::ExitCode;
use std::sync::Arc;

/// Runs `pez` with the process's arguments and environment.
pub fn main() -> ExitCode {
    if let Err(e) = dotenvy::dotenv()
        && !e.not_found()
    {
        return fail(format_args!("cannot read .env: {e}"));
    }
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
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
    telemetry::init(&settings.log);
    let outcome = match cli.command.unwrap_or(Command::Serve) {
        Command::Serve => serve(&settings),
        Command::Settings => {
            for (variable, value) in cli.settings.effective(&settings) {
                println!("{variable}={value}");
            }
            println!("# store: {}", store::describe(&settings));
            Ok(())
        }
        Command::Migrate => migrate(&settings),
        Command::Sequence(SequenceCommand::List) => list(&settings),
        Command::Sequence(SequenceCommand::Restart { name, value }) => {
            restart(&settings, &name, &value)
        }
    };
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => fail(message),
    }
}

fn fail(message: impl std::fmt::Display) -> ExitCode {
    eprintln!("pez: {message}");
    ExitCode::FAILURE
}

fn serve(settings: &Settings) -> Result<(), String> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| format!("cannot start the async runtime: {e}"))?;
    runtime.block_on(async {
        let notifier = Arc::new(Notifier::from_env());
        let server = Server::start(settings).await.map_err(|e| e.to_string())?;
        // The store answered and the first blocks are leased: ready.
        notifier.ready();
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
                server::shutdown_signal().await;
                stopping.stopping();
            })
            .await;
        Ok(())
    })
}

fn open_store(settings: &Settings) -> Result<std::sync::Arc<dyn Store>, String> {
    store::open(settings).map_err(|e| match e {
        OpenError::Locked(lock) => format!("{lock}; sequences cannot be changed while it runs"),
        other => other.to_string(),
    })
}

fn migrate(settings: &Settings) -> Result<(), String> {
    match &settings.store {
        StoreChoice::Postgres(pg) => {
            let applied = PgStore::migrate(pg).map_err(|e| e.to_string())?;
            println!(
                "{}: {applied} migration(s) applied; the schema is up to date",
                pg.description
            );
        }
        // The embedded store migrates whenever it is opened.
        StoreChoice::Embedded => {
            open_store(settings)?;
            println!("{}: the schema is up to date", store::describe(settings));
        }
    }
    Ok(())
}

fn list(settings: &Settings) -> Result<(), String> {
    let states = match store::open(settings) {
        Ok(store) => {
            if matches!(settings.store, StoreChoice::Postgres(_)) {
                eprintln!(
                    "note: NEXT is where the next lease starts; running instances first issue the blocks they hold"
                );
            }
            store.list()
        }
        Err(OpenError::Locked(holder)) => {
            // A server runs: NEXT is where its next lease starts; it issues
            // the numbers before that from the blocks it holds.
            eprintln!("note: {holder}; NEXT is where its next lease starts");
            SqliteStore::read_unlocked(&settings.data_dir)
        }
        Err(e) => return Err(e.to_string()),
    };
    print!("{}", format_list(&states.map_err(|e| e.to_string())?));
    Ok(())
}

/// A table of the sequences, one per line, for `pez sequence list`.
pub fn format_list(states: &[SequenceState]) -> String {
    let mut out = format!(
        "{:<16} {:<10} {:>19} {:>19} {:>19} {}\n",
        "NAME", "DIRECTION", "NEXT", "MIN", "MAX", "CYCLE"
    );
    for state in states {
        let next = state
            .next_value
            .map_or_else(|| "exhausted".to_owned(), |n| n.to_string());
        let spec = &state.spec;
        out.push_str(&format!(
            "{:<16} {:<10} {:>19} {:>19} {:>19} {}\n",
            spec.name,
            spec.direction,
            next,
            spec.min,
            spec.max,
            if spec.cycle { "yes" } else { "no" }
        ));
    }
    out
}

fn restart(settings: &Settings, name: &str, value: &str) -> Result<(), String> {
    let parsed = value
        .parse::<i64>()
        .ok()
        .filter(|v| value.bytes().all(|b| b.is_ascii_digit()) && *v >= MIN_VALUE);
    let Some(value) = parsed else {
        return Err(format!(
            "VALUE must be an integer from {MIN_VALUE} to {MAX_VALUE}, not {value:?}"
        ));
    };
    let store = open_store(settings)?;
    store.restart(name, value).map_err(|e| e.to_string())?;
    println!("{name}: the next number issued is {value}");
    Ok(())
}
