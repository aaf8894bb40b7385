//! Sequences moved between stores, or restored from a backup, only forward.
//!
//! `pez sequence export` writes every sequence (its settings and where it
//! stands) as JSON; `pez sequence import` and `pez store copy` apply such a
//! list to a store with [`apply_forward`]: a missing sequence is created, an
//! existing one is moved forward to the listed position, and one that
//! stands there or further already stays where it is. So an old backup, or
//! a copy onto a database that went on without it, can never make PEZ hand
//! out a number twice. Changing an existing sequence's settings is refused,
//! for the whole list, before anything moves.

use super::rules::{self, Consent};
use super::{Advanced, Created, Position, SequenceState, Store, StoreError};
use crate::sequence::{Direction, Mode, SequenceSpec};
use serde::{Deserialize, Serialize};
use std::fmt;

/// The format's version, written into every file and checked on reading.
const FORMAT: u32 = 1;

/// A file of `pez sequence export`.
#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Export {
    /// Always 1 so far.
    pub pez_sequences: u32,
    /// Where the sequences were read from (no secrets), for people.
    pub source: String,
    /// The sequences, by name.
    pub sequences: Vec<Exported>,
}

/// One sequence in an [`Export`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Exported {
    /// Its name.
    pub name: String,
    /// `ascending` or `descending`.
    pub direction: String,
    /// Its smallest number.
    pub min: i64,
    /// Its largest number.
    pub max: i64,
    /// The number it started at.
    pub start: i64,
    /// Whether it wraps.
    pub cycle: bool,
    /// `leased` or `strict`.
    pub mode: String,
    /// The first number of the store's next lease: every number before it
    /// (in its direction) was handed out or leased. `null`: it ran out.
    pub next: Option<i64>,
    /// Laps it began (see the stores' count of laps); absent in exports
    /// of releases before it: 0.
    #[serde(default)]
    pub laps: i64,
    /// Its largest range lease; absent in exports of releases before it:
    /// the default, a thousandth of its range.
    #[serde(default)]
    pub max_lease: Option<i64>,
}

impl Export {
    /// The list of `states`, read from `source`.
    pub fn of(source: &str, states: &[SequenceState]) -> Self {
        Self {
            pez_sequences: FORMAT,
            source: source.to_owned(),
            sequences: states
                .iter()
                .map(|state| Exported {
                    name: state.spec.name.clone(),
                    direction: state.spec.direction.as_str().to_owned(),
                    min: state.spec.min,
                    max: state.spec.max,
                    start: state.spec.start,
                    cycle: state.spec.cycle,
                    mode: state.spec.mode.as_str().to_owned(),
                    next: state.next_value,
                    laps: state.laps,
                    max_lease: i64::try_from(state.spec.max_lease).ok(),
                })
                .collect(),
        }
    }

    /// Reads and checks a file's text: every sequence valid, its position
    /// inside its range, no name twice.
    pub fn parse(text: &str) -> Result<Vec<Wanted>, String> {
        let export: Export =
            serde_json::from_str(text).map_err(|e| format!("not a PEZ export: {e}"))?;
        if export.pez_sequences != FORMAT {
            return Err(format!(
                "an export of format {}; this PEZ reads format {FORMAT}",
                export.pez_sequences
            ));
        }
        let mut wanted: Vec<Wanted> = Vec::new();
        for listed in export.sequences {
            let entry = listed.wanted()?;
            if wanted.iter().any(|w| w.spec.name == entry.spec.name) {
                return Err(format!("{:?} is listed twice", entry.spec.name));
            }
            wanted.push(entry);
        }
        Ok(wanted)
    }
}

impl Exported {
    fn wanted(self) -> Result<Wanted, String> {
        let name = self.name;
        let bad = |what: String| format!("sequence {name:?}: {what}");
        let direction: Direction = self.direction.parse().map_err(|()| {
            bad(format!(
                "direction {:?} is not ascending or descending",
                self.direction
            ))
        })?;
        let mode: Mode = self
            .mode
            .parse()
            .map_err(|()| bad(format!("mode {:?} is not leased or strict", self.mode)))?;
        let spec = SequenceSpec::new(
            &name,
            direction,
            self.min,
            self.max,
            Some(self.start),
            self.cycle,
            mode,
        )
        .and_then(|spec| spec.with_max_lease(self.max_lease))
        .map_err(|e| bad(e.to_string()))?;
        match self.next {
            Some(next) if !spec.contains(next) => Err(bad(format!(
                "next {next} is outside its range ({} to {})",
                spec.min, spec.max
            ))),
            None if spec.cycle => Err(bad(
                "a cycling sequence never runs out (next is null)".into()
            )),
            next => Ok(Wanted {
                spec,
                next,
                laps: self.laps.max(0),
            }),
        }
    }
}

/// A sequence as a list wants it: its settings, and where it must stand at
/// least (`None`: run out).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Wanted {
    /// Its settings.
    pub spec: SequenceSpec,
    /// Where it must stand at least.
    pub next: Option<i64>,
    /// Laps it began where it comes from.
    pub laps: i64,
}

impl From<&SequenceState> for Wanted {
    fn from(state: &SequenceState) -> Self {
        Self {
            spec: state.spec.clone(),
            next: state.next_value,
            laps: state.laps,
        }
    }
}

/// What [`apply_forward`] did to one sequence.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Applied {
    /// Created at the listed position.
    Created {
        /// Where it stands now.
        next: Option<i64>,
    },
    /// Moved forward to the listed position.
    Moved {
        /// Where it stood.
        from: i64,
        /// Where it stands now.
        to: Option<i64>,
    },
    /// It stood there or further already: nothing changed.
    Kept {
        /// Where it stands.
        stands: Option<i64>,
        /// Where the list would have put it.
        listed: Option<i64>,
    },
}

/// One line per sequence, for the CLI.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outcome {
    /// The sequence.
    pub name: String,
    /// What happened to it.
    pub applied: Applied,
}

fn position(next: Option<i64>) -> String {
    next.map_or_else(|| "the end (run out)".to_owned(), |n| n.to_string())
}

impl fmt::Display for Outcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let name = &self.name;
        match &self.applied {
            Applied::Created { next } => write!(f, "{name}: created; next {}", position(*next)),
            Applied::Moved { from, to } => {
                write!(f, "{name}: moved forward from {from} to {}", position(*to))
            }
            Applied::Kept { stands, listed } => write!(
                f,
                "{name}: stays at {} (the list says {}; a sequence never moves back)",
                position(*stands),
                position(*listed)
            ),
        }
    }
}

/// Why a list could not be applied.
#[derive(Debug)]
pub enum ApplyError {
    /// These sequences cannot be applied (see [`check`]); nothing moved.
    Refused(Vec<String>),
    /// The store failed; sequences before the failure may have moved
    /// (forward only), so running the same list again is safe.
    Store(StoreError),
}

impl fmt::Display for ApplyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ApplyError::Refused(lines) => write!(f, "nothing changed: {}", lines.join("; ")),
            ApplyError::Store(e) => write!(
                f,
                "{e} (sequences listed before it may have moved forward already; running the \
                 same command again is safe)"
            ),
        }
    }
}

/// Refuses `wanted`, changing nothing, if any of its sequences could not
/// be applied to `store`: one that is not valid (a store made by an older
/// PEZ may hold a sequence of one number, which PostgreSQL cannot), one
/// that exists with other settings, or one that would move a cycling
/// sequence of the store that has issued numbers ahead without `consent`
/// to an early wrap ([`rules::moves_forward`]). Every reason is listed.
pub fn check(store: &dyn Store, wanted: &[Wanted], consent: Consent) -> Result<(), ApplyError> {
    let existing = store.list().map_err(ApplyError::Store)?;
    let mut refusals = Vec::new();
    for w in wanted {
        let spec = &w.spec;
        if let Err(e) = SequenceSpec::new(
            &spec.name,
            spec.direction,
            spec.min,
            spec.max,
            Some(spec.start),
            spec.cycle,
            spec.mode,
        )
        .and_then(|checked| checked.with_max_lease(i64::try_from(spec.max_lease).ok()))
        {
            refusals.push(format!("{}: {e}", spec.name));
            continue;
        }
        let Some(there) = existing.iter().find(|s| s.spec.name == spec.name) else {
            continue;
        };
        if !there.spec.same_settings(spec) {
            refusals.push(format!(
                "{} is {} here, {} in the list",
                spec.name,
                settings(&there.spec),
                settings(spec)
            ));
        } else if let Err(e @ StoreError::EarlyWrap { .. }) =
            rules::moves_forward(there, w.next, consent)
        {
            refusals.push(e.to_string());
        }
    }
    if refusals.is_empty() {
        Ok(())
    } else {
        Err(ApplyError::Refused(refusals))
    }
}

/// Applies `wanted` to `store`, only forward (see the module docs): a
/// missing sequence is created where the list says, in one step; an
/// existing one moves forward under `consent`. Checks the whole list first
/// ([`check`]), and changes nothing if any of it is refused.
pub fn apply_forward(
    store: &dyn Store,
    wanted: &[Wanted],
    consent: Consent,
) -> Result<Vec<Outcome>, ApplyError> {
    check(store, wanted, consent)?;
    let mut outcomes = Vec::new();
    for w in wanted {
        let name = w.spec.name.clone();
        let at = Position {
            next: w.next,
            laps: w.laps,
        };
        let applied = match store.create(&w.spec, at).map_err(ApplyError::Store)? {
            Created::New => Applied::Created { next: w.next },
            Created::Existing => match store
                .advance(
                    &name,
                    Position {
                        next: w.next,
                        laps: w.laps,
                    },
                    consent,
                )
                .map_err(ApplyError::Store)?
            {
                Advanced::Moved { from } => Applied::Moved { from, to: w.next },
                Advanced::AlreadyThere { stands } => Applied::Kept {
                    stands,
                    listed: w.next,
                },
            },
        };
        outcomes.push(Outcome { name, applied });
    }
    Ok(outcomes)
}

/// A sequence's settings in a few words.
fn settings(spec: &SequenceSpec) -> String {
    format!(
        "{} {}..{} from {}, {}, {}, leases of at most {}",
        spec.direction,
        spec.min,
        spec.max,
        spec.start,
        if spec.cycle { "cycling" } else { "not cycling" },
        spec.mode,
        spec.max_lease
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn state(spec: SequenceSpec, next: Option<i64>) -> SequenceState {
        SequenceState {
            spec,
            next_value: next,
            generation: 1,
            laps: 0,
            continues: None,
        }
    }

    #[test]
    fn an_export_reads_back_as_it_was_written() {
        let orders = SequenceSpec::new(
            "orders",
            Direction::Descending,
            10,
            99,
            None,
            false,
            Mode::Strict,
        )
        .and_then(|spec| spec.with_max_lease(Some(7)))
        .expect("spec");
        let states = vec![
            state(SequenceSpec::forward(), Some(42)),
            state(orders, None),
        ];
        let text = serde_json::to_string(&Export::of("here", &states)).expect("json");
        let wanted = Export::parse(&text).expect("parse");
        assert_eq!(wanted, states.iter().map(Wanted::from).collect::<Vec<_>>());
    }

    #[test]
    fn a_broken_file_is_refused_with_the_reason() {
        let entry = |name: &str, next: &str| {
            format!(
                r#"{{"name":"{name}","direction":"ascending","min":1,"max":10,"start":1,"cycle":true,"mode":"leased","next":{next}}}"#
            )
        };
        let file = |entries: &[String]| {
            format!(
                r#"{{"pez_sequences":1,"source":"x","sequences":[{}]}}"#,
                entries.join(",")
            )
        };
        for (text, says) in [
            ("[1, 2]".to_owned(), "not a PEZ export"),
            (file(&[entry("a", "11")]), "outside its range"),
            (file(&[entry("a", "null")]), "never runs out"),
            (file(&[entry("a", "2"), entry("a", "3")]), "listed twice"),
            (file(&[entry("A b", "2")]), "\"A b\""),
            (
                r#"{"pez_sequences":2,"source":"x","sequences":[]}"#.to_owned(),
                "format 2",
            ),
        ] {
            let why = Export::parse(&text).expect_err(&text);
            assert!(why.contains(says), "{text}: {why}");
        }
    }
}
