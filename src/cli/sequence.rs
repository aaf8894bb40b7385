//! `pez sequence ...`: list, show, create, delete, restart, export and
//! import sequences in the store the settings choose.

use super::open_store;
use crate::config::{Settings, StoreChoice};
use crate::sequence::{Direction, MAX_VALUE, MIN_VALUE, Mode, SequenceSpec, check_name};
use crate::store::transfer::{self, Export, Wanted};
use crate::store::{self, Consent, Created, OpenError, SequenceState, SqliteStore, StoreError};
use crate::telemetry::audit::{self, Route};
use crate::trusted;
use std::io::{Read, Write};
use std::path::Path;

pub(super) fn list(settings: &Settings) -> Result<(), String> {
    print!("{}", format_list(&read(settings)?));
    Ok(())
}

/// Every sequence and where it stands, for reading only: also while a
/// server holds the embedded store, and from an embedded store that was
/// moved. Nothing is created: a missing store is an error (issue 18: `pez
/// sequence list` in an empty directory made ./pez-data), and on
/// PostgreSQL no migration runs. The embedded store is read without its
/// lock (SQLite lets a reader beside the server), so a server that starts
/// at that moment is never kept from it; only a store too old to be read
/// so (its schema not migrated yet) is opened, as a server would. Says on
/// stderr what NEXT means.
fn read(settings: &Settings) -> Result<Vec<SequenceState>, String> {
    let dir = &settings.data_dir;
    let pg = match &settings.store {
        StoreChoice::Postgres(pg) => pg,
        StoreChoice::Embedded => {
            trusted::dir_if_present("the data directory", dir).map_err(|e| e.to_string())?;
            let file = dir.join(store::DATABASE_FILE);
            if !file.exists() {
                return Err(format!(
                    "no store at {}: nothing to read (a PEZ server, `pez migrate` or `pez \
                     sequence create` makes one; is PEZ_DATA_DIR right?)",
                    file.display()
                ));
            }
            return read_embedded(settings);
        }
    };
    let store = store::open_to_read(pg).map_err(|e| e.to_string())?;
    eprintln!(
        "note: NEXT is where the next lease starts; running instances first issue the blocks they hold"
    );
    store.list().map_err(|e| e.to_string())
}

/// [`read`] from the embedded store, which is there.
fn read_embedded(settings: &Settings) -> Result<Vec<SequenceState>, String> {
    let dir = &settings.data_dir;
    if let Ok(states) = SqliteStore::read_unlocked(dir) {
        if let Some(pid) = store::lock_holder(dir) {
            eprintln!(
                "note: a pez server (pid {pid}) uses this store; NEXT is where its next lease starts"
            );
        }
        if let Ok(Some(moved)) = SqliteStore::moved_to_unlocked(dir) {
            eprintln!(
                "note: this embedded store is retired: {}",
                moved.what_to_do()
            );
        }
        return Ok(states);
    }
    match store::open(settings) {
        Ok(store) => store.list().map_err(|e| e.to_string()),
        Err(OpenError::Moved(why)) => {
            eprintln!("note: {why}");
            SqliteStore::read_unlocked(dir).map_err(|e| e.to_string())
        }
        Err(e) => Err(e.to_string()),
    }
}

/// A table of the sequences, one per line, for `pez sequence list`: each
/// column as wide as its widest cell (a name may be 63 characters, a
/// number 19 digits), numbers right-aligned, one space between columns.
pub fn format_list(states: &[SequenceState]) -> String {
    const HEADINGS: [&str; 9] = [
        "NAME",
        "DIRECTION",
        "NEXT",
        "MIN",
        "MAX",
        "MAX_LEASE",
        "CYCLE",
        "MODE",
        "CONTINUES",
    ];
    const NUMERIC: [bool; 9] = [false, false, true, true, true, true, false, false, false];
    let mut rows: Vec<[String; 9]> = vec![HEADINGS.map(str::to_owned)];
    for state in states {
        let spec = &state.spec;
        let next = state
            .next_value
            .map_or_else(|| "exhausted".to_owned(), |n| n.to_string());
        rows.push([
            spec.name.clone(),
            spec.direction.as_str().to_owned(),
            next,
            spec.min.to_string(),
            spec.max.to_string(),
            spec.max_lease.to_string(),
            if spec.cycle { "yes" } else { "no" }.to_owned(),
            spec.mode.as_str().to_owned(),
            state.continues.clone().unwrap_or_else(|| "-".to_owned()),
        ]);
    }
    let mut widths = [0; 9];
    for row in &rows {
        for (width, cell) in widths.iter_mut().zip(row) {
            *width = (*width).max(cell.chars().count());
        }
    }
    let mut out = String::new();
    for row in &rows {
        let cells: Vec<String> = row
            .iter()
            .enumerate()
            .map(|(i, cell)| match (NUMERIC[i], i + 1 == row.len()) {
                (true, _) => format!("{cell:>width$}", width = widths[i]),
                // No padding after the last column.
                (false, true) => cell.clone(),
                (false, false) => format!("{cell:<width$}", width = widths[i]),
            })
            .collect();
        out.push_str(&cells.join(" "));
        out.push('\n');
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
    pub max_lease: Option<&'a str>,
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
    let max_lease = args
        .max_lease
        .map(|v| number("--sequence-max-lease", v))
        .transpose()?;
    let spec = SequenceSpec::new(name, direction, min, max, start, cycle, mode)
        .and_then(|spec| spec.with_max_lease(max_lease))
        .map_err(|e| e.to_string())?;
    let outcome = open_store(settings)?
        .create(&spec, store::Position::fresh(&spec))
        .map_err(|e| e.to_string())?;
    audit::created(Route::Command, &spec, outcome);
    match outcome {
        Created::New => println!("{name}: created"),
        Created::Existing => println!("{name}: exists already with these settings"),
    }
    Ok(())
}

pub(super) fn show(settings: &Settings, name: &str) -> Result<(), String> {
    check_name(name).map_err(|e| e.to_string())?;
    let states = read(settings)?;
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
    println!("max_lease  {}", spec.max_lease);
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
    let store = open_store(settings)?;
    let before = state_of(store.as_ref(), name);
    store.delete(name).map_err(|e| e.to_string())?;
    audit::deleted(
        Route::Command,
        name,
        before.as_ref().map(|state| (&state.spec, state.next_value)),
    );
    println!("{name}: deleted");
    Ok(())
}

pub(super) fn restart(
    settings: &Settings,
    name: &str,
    value: &str,
    consent: Consent,
) -> Result<(), String> {
    let value = number("VALUE", value)?;
    let store = open_store(settings)?;
    let before = state_of(store.as_ref(), name).map(|state| state.next_value);
    store.restart(name, value, consent).map_err(|e| match e {
        StoreError::Backward { .. } => {
            format!("{e} (add --allow-backward to restart there anyway)")
        }
        StoreError::EarlyWrap { .. } => {
            format!("{e} (--allow-early-wrap)")
        }
        other => other.to_string(),
    })?;
    audit::restarted(Route::Command, name, before, value, consent);
    println!("{name}: the next number issued is {value}");
    Ok(())
}

/// Where `name` stands just before a change, for the log only: a store
/// that fails here fails the change itself next, with its own message.
fn state_of(store: &dyn store::Store, name: &str) -> Option<SequenceState> {
    store
        .list()
        .ok()?
        .into_iter()
        .find(|state| state.spec.name == name)
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
        // Made 0600 whatever the umask, and, since root may write it
        // into a directory another user controls, never through a link.
        Some(path) => {
            let mut file =
                trusted::private_file("the export file", path).map_err(|e| e.to_string())?;
            file.set_len(0)
                .and_then(|()| file.write_all(text.as_bytes()))
                .map_err(|e| format!("cannot write {}: {e}", path.display()))?
        }
        None => std::io::stdout()
            .write_all(text.as_bytes())
            .map_err(|e| format!("cannot write the export: {e}"))?,
    }
    if let Some(path) = output {
        eprintln!("{} sequence(s) written to {}", states.len(), path.display());
    }
    Ok(())
}

/// `pez sequence import FILE`: applies an export, only forward. A store
/// that does not answer, or a change it did not confirm, is tried again
/// (applying the same list again only moves forward) for the startup
/// timeout, saying every few seconds what it waits for.
pub(super) fn import(
    settings: &Settings,
    file: &Path,
    allow_early_wrap: bool,
) -> Result<(), String> {
    let wanted = read_export(file)?;
    let consent = Consent {
        backward: false,
        early_wrap: allow_early_wrap,
    };
    let store = super::store::retried_open(settings)?;
    let outcomes = super::store::retried_apply(
        store::startup_timeout(settings),
        store.as_ref(),
        &wanted,
        consent,
    )
    .map_err(|e| match e {
        transfer::ApplyError::Refused(_)
            if !allow_early_wrap && e.to_string().contains("allow_early_wrap") =>
        {
            format!("{e} (--allow-early-wrap)")
        }
        other => other.to_string(),
    })?;
    for outcome in outcomes {
        log::info!("{outcome} (pez sequence import)");
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
