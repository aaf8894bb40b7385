//! The `pez` command: parse, validate, and run a subcommand. Every failure
//! ends as one line on stderr and a non-zero exit code.

use crate::config::{Cli, Command, SequenceCommand, Settings, StoreChoice};
use crate::sequence::{Direction, MAX_VALUE, MIN_VALUE, Mode, SequenceSpec, check_name};
use crate::server::{self, Server};
use crate::store::{
    self, Created, OpenError, PgStore, Restart, SequenceState, SqliteStore, Store, StoreError,
};
use crate::systemd::{self, Notifier};
use crate::telemetry;
use clap::Parser;
use clap::error::ErrorKind;
use std::process::ExitCode;
use std::sync::Arc;

/// Runs `pez` with the process's arguments and environment.
pub fn main() -> ExitCode {
    // Only ./.env, not a parent directory's: under systemd the working
    // directory is /var/lib/pez, and /var/.env or /.env must not count.
    if let Err(e) = dotenvy::from_path(".env")
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
    telemetry::init(&settings.log, settings.log_format);
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
        Command::Sequence(SequenceCommand::Restart {
            name,
            value,
            allow_backward,
        }) => restart(&settings, &name, &value, allow_backward),
        Command::Sequence(SequenceCommand::Show { name }) => show(&settings, &name),
        Command::Sequence(SequenceCommand::Delete { name }) => delete(&settings, &name),
        Command::Sequence(SequenceCommand::Create {
            name,
            direction,
            min,
            max,
            start,
            cycle,
            mode,
        }) => create(
            &settings,
            &name,
            CreateArgs {
                direction: &direction,
                min: min.as_deref(),
                max: max.as_deref(),
                start: start.as_deref(),
                cycle: &cycle,
                mode: &mode,
            },
        ),
    };
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => fail(message),
    }
}

fn fail(message: impl std::fmt::Display) -> ExitCode {
    eprintln!("{}pez: {message}", telemetry::error_prefix());
    ExitCode::FAILURE
}

fn serve(settings: &Settings) -> Result<(), String> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| format!("cannot start the async runtime: {e}"))?;
    let served = runtime.block_on(async {
        let notifier = Arc::new(Notifier::from_env());
        let server = Server::start(settings).await.map_err(|e| e.to_string())?;
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
                server::shutdown_signal().await;
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

fn open_store(settings: &Settings) -> Result<std::sync::Arc<dyn Store>, String> {
    store::open(settings).map_err(|e| match e {
        OpenError::Locked(lock) => format!("{lock}; sequences cannot be changed while it runs"),
        other => other.to_string(),
    })
}

fn migrate(settings: &Settings) -> Result<(), String> {
    match &settings.store {
        StoreChoice::Postgres(pg) => {
            let mut retry = store::StartupRetry::new(pg.startup_timeout);
            let applied = loop {
                match PgStore::migrate(pg) {
                    Err(e) => match retry.after_failure(e.is_transient(), &e) {
                        Some(pause) => std::thread::sleep(pause),
                        None => return Err(e.to_string()),
                    },
                    Ok(applied) => break applied,
                }
            };
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
    let row = |cells: [&str; 7]| {
        format!(
            "{:<16} {:<10} {:>19} {:>19} {:>19} {:<5} {}\n",
            cells[0], cells[1], cells[2], cells[3], cells[4], cells[5], cells[6]
        )
    };
    let mut out = row(["NAME", "DIRECTION", "NEXT", "MIN", "MAX", "CYCLE", "MODE"]);
    for state in states {
        let spec = &state.spec;
        let next = state
            .next_value
            .map_or_else(|| "exhausted".to_owned(), |n| n.to_string());
        out.push_str(&row([
            &spec.name,
            spec.direction.as_str(),
            &next,
            &spec.min.to_string(),
            &spec.max.to_string(),
            if spec.cycle { "yes" } else { "no" },
            spec.mode.as_str(),
        ]));
    }
    out
}

/// A number from 1 to 2^63-1 given on the command line as `what`.
fn number(what: &str, value: &str) -> Result<i64, String> {
    value
        .parse::<i64>()
        .ok()
        .filter(|v| value.bytes().all(|b| b.is_ascii_digit()) && *v >= MIN_VALUE)
        .ok_or_else(|| {
            format!("{what} must be an integer from {MIN_VALUE} to {MAX_VALUE}, not {value:?}")
        })
}

/// The text arguments of `pez sequence create`.
struct CreateArgs<'a> {
    direction: &'a str,
    min: Option<&'a str>,
    max: Option<&'a str>,
    start: Option<&'a str>,
    cycle: &'a str,
    mode: &'a str,
}

fn create(settings: &Settings, name: &str, args: CreateArgs<'_>) -> Result<(), String> {
    let direction: Direction = args.direction.parse().map_err(|()| {
        format!(
            "--direction must be ascending or descending, not {:?}",
            args.direction
        )
    })?;
    let mode: Mode = args
        .mode
        .parse()
        .map_err(|()| format!("--mode must be leased or strict, not {:?}", args.mode))?;
    let cycle = match args.cycle {
        "true" => true,
        "false" => false,
        other => return Err(format!("--cycle must be true or false, not {other:?}")),
    };
    let min = args
        .min
        .map(|v| number("--min", v))
        .transpose()?
        .unwrap_or(MIN_VALUE);
    let max = args
        .max
        .map(|v| number("--max", v))
        .transpose()?
        .unwrap_or(MAX_VALUE);
    let start = args.start.map(|v| number("--start", v)).transpose()?;
    let spec = SequenceSpec::new(name, direction, min, max, start, cycle, mode)
        .map_err(|e| e.to_string())?;
    let outcome = open_store(settings)?
        .create(&spec)
        .map_err(|e| e.to_string())?;
    match outcome {
        Created::New => println!("{name}: created"),
        Created::Existing => println!("{name}: exists already with these settings"),
    }
    Ok(())
}

fn show(settings: &Settings, name: &str) -> Result<(), String> {
    check_name(name).map_err(|e| e.to_string())?;
    let states = open_store(settings)?.list().map_err(|e| e.to_string())?;
    let state = states
        .iter()
        .find(|s| s.spec.name == name)
        .ok_or_else(|| format!("no sequence named {name:?}"))?;
    let spec = &state.spec;
    println!("name       {}", spec.name);
    println!("direction  {}", spec.direction);
    println!("min        {}", spec.min);
    println!("max        {}", spec.max);
    println!("start      {}", spec.start);
    println!("cycle      {}", if spec.cycle { "yes" } else { "no" });
    println!("mode       {}", spec.mode);
    match state.next_value {
        Some(next) => println!("next       {next}"),
        None => println!("next       exhausted"),
    }
    Ok(())
}

fn delete(settings: &Settings, name: &str) -> Result<(), String> {
    check_name(name).map_err(|e| e.to_string())?;
    open_store(settings)?
        .delete(name)
        .map_err(|e| e.to_string())?;
    println!("{name}: deleted");
    Ok(())
}

fn restart(
    settings: &Settings,
    name: &str,
    value: &str,
    allow_backward: bool,
) -> Result<(), String> {
    let value = number("VALUE", value)?;
    let rule = if allow_backward {
        Restart::AllowBackward
    } else {
        Restart::ForwardOnly
    };
    let store = open_store(settings)?;
    store.restart(name, value, rule).map_err(|e| match e {
        StoreError::Backward { .. } => {
            format!("{e} (add --allow-backward to restart there anyway)")
        }
        other => other.to_string(),
    })?;
    println!("{name}: the next number issued is {value}");
    Ok(())
}
