//! `pez sequence ...`: list, show, create, delete, restart, export and
//! import sequences in the store the settings choose.

use super::open_store;
use crate::config::{Settings, StoreChoice};
use crate::sequence::{Direction, MAX_VALUE, MIN_VALUE, Mode, SequenceSpec, check_name};
use crate::store::transfer::{self, Export, Wanted};
use crate::store::{self, Created, OpenError, Restart, SequenceState, SqliteStore, StoreError};
use std::io::{Read, Write};
use std::path::Path;

pub(super) fn list(settings: &Settings) -> Result<(), String> {
    print!("{}", format_list(&read(settings)?));
    Ok(())
}

/// Every sequence and where it stands, for reading only: also while a
/// server holds the embedded store (SQLite lets a reader beside it), and
/// from an embedded store that was moved. Says on stderr what NEXT means
/// then.
fn read(settings: &Settings) -> Result<Vec<SequenceState>, String> {
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
        Err(OpenError::Moved(why)) => {
            eprintln!("note: {why}");
            SqliteStore::read_unlocked(&settings.data_dir)
        }
        Err(e) => return Err(e.to_string()),
    };
    states.map_err(|e| e.to_string())
}

/// A table of the sequences, one per line, for `pez sequence list`.
pub fn format_list(states: &[SequenceState]) -> String {
    let row = |cells: [&str; 8]| {
        format!(
            "{:<16} {:<10} {:>19} {:>19} {:>19} {:<5} {:<6} {}\n",
            cells[0], cells[1], cells[2], cells[3], cells[4], cells[5], cells[6], cells[7]
        )
    };
    let mut out = row([
        "NAME",
        "DIRECTION",
        "NEXT",
        "MIN",
        "MAX",
        "CYCLE",
        "MODE",
        "CONTINUES",
    ]);
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
            state.continues.as_deref().unwrap_or("-"),
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
pub(super) struct CreateArgs<'a> {
    pub direction: &'a str,
    pub min: Option<&'a str>,
    pub max: Option<&'a str>,
    pub start: Option<&'a str>,
    pub cycle: &'a str,
    pub mode: &'a str,
}

pub(super) fn create(settings: &Settings, name: &str, args: CreateArgs<'_>) -> Result<(), String> {
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

pub(super) fn show(settings: &Settings, name: &str) -> Result<(), String> {
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
    if let Some(original) = &state.continues {
        println!("continues  {original} (the original PEZ's)");
    }
    Ok(())
}

pub(super) fn delete(settings: &Settings, name: &str) -> Result<(), String> {
    check_name(name).map_err(|e| e.to_string())?;
    open_store(settings)?
        .delete(name)
        .map_err(|e| e.to_string())?;
    println!("{name}: deleted");
    Ok(())
}

pub(super) fn restart(
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

/// `pez sequence export`: every sequence as JSON, to `output` or stdout.
/// Where each stands is where the store's next lease starts: past every
/// number issued so far, also while servers run (they issue from blocks
/// before it), so the file is a safe backup to restore later.
pub(super) fn export(settings: &Settings, output: Option<&Path>) -> Result<(), String> {
    let states = read(settings)?;
    let file = Export::of(&store::describe(settings), &states);
    let mut text =
        serde_json::to_string_pretty(&file).map_err(|e| format!("cannot write the export: {e}"))?;
    text.push('\n');
    match output {
        Some(path) => std::fs::write(path, text)
            .map_err(|e| format!("cannot write {}: {e}", path.display()))?,
        None => std::io::stdout()
            .write_all(text.as_bytes())
            .map_err(|e| format!("cannot write the export: {e}"))?,
    }
    if let Some(path) = output {
        eprintln!("{} sequence(s) written to {}", states.len(), path.display());
    }
    Ok(())
}

/// `pez sequence import FILE`: applies an export, only forward.
pub(super) fn import(settings: &Settings, file: &Path) -> Result<(), String> {
    let wanted = read_export(file)?;
    let store = open_store(settings)?;
    for outcome in transfer::apply_forward(store.as_ref(), &wanted).map_err(|e| e.to_string())? {
        println!("{outcome}");
    }
    Ok(())
}

/// The sequences of an export file ("-": stdin), checked.
fn read_export(file: &Path) -> Result<Vec<Wanted>, String> {
    let mut text = String::new();
    let read = if file == Path::new("-") {
        std::io::stdin().read_to_string(&mut text)
    } else {
        std::fs::File::open(file).and_then(|mut f| f.read_to_string(&mut text))
    };
    read.map_err(|e| format!("cannot read {}: {e}", file.display()))?;
    Export::parse(&text).map_err(|why| format!("{}: {why}", file.display()))
}
