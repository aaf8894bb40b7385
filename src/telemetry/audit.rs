//! The log of changes to sequences: every create, restart and delete, from
//! the admin API or `pez sequence`, at info with what it was and what it
//! became. A restart with `allow_backward` is the change that can hand a
//! number out twice; after an incident, this is where one looks for it.
//!
//! What a sequence was is read just before the change: another instance
//! could move it in between, so "from" is where it stood a moment before.

use crate::sequence::SequenceSpec;
use crate::store::{Consent, Created};
use log::info;
use std::fmt;

/// Where a change came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Route {
    /// The HTTP admin API (/v2/sequences).
    AdminApi,
    /// The `pez sequence` command.
    Command,
}

impl fmt::Display for Route {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Route::AdminApi => "through the admin API",
            Route::Command => "by pez sequence",
        })
    }
}

/// Where a sequence stood just before a change: its next number, or
/// `None` when it was exhausted. For a restart, the store's next (where
/// the next reservation starts: every instance may have issued below it),
/// not what one instance holds.
pub type Before = Option<i64>;

/// A sequence's settings on one line.
pub fn settings(spec: &SequenceSpec) -> String {
    format!(
        "{}, min {}, max {}, start {}, cycle {}, mode {}, max_lease {}",
        spec.direction,
        spec.min,
        spec.max,
        spec.start,
        if spec.cycle { "yes" } else { "no" },
        spec.mode,
        spec.max_lease
    )
}

fn position(before: Option<Before>) -> String {
    match before {
        Some(Some(next)) => next.to_string(),
        Some(None) => "exhausted".to_owned(),
        None => "where it stood (not read)".to_owned(),
    }
}

/// A create: what was made, or that it existed already.
pub fn created(route: Route, spec: &SequenceSpec, created: Created) {
    let name = &spec.name;
    match created {
        Created::New => info!("{name}: created {route}: {}", settings(spec)),
        Created::Existing => {
            info!("{name}: create {route} changed nothing: it exists with these settings")
        }
    }
}

/// A restart from where it stood (`None`: not known) to `value`.
pub fn restarted(route: Route, name: &str, before: Option<Before>, value: i64, consent: Consent) {
    let mut given = Vec::new();
    if consent.backward {
        given.push("allow_backward");
    }
    if consent.early_wrap {
        given.push("allow_early_wrap");
    }
    let given = if given.is_empty() {
        String::new()
    } else {
        format!(" with {}", given.join(" and "))
    };
    info!(
        "{name}: restarted {route} from {} to {value}{given}",
        position(before)
    );
}

/// A delete, with what the sequence was (`None`: not known).
pub fn deleted(route: Route, name: &str, before: Option<(&SequenceSpec, Before)>) {
    match before {
        Some((spec, next)) => info!(
            "{name}: deleted {route}; it was {}, next {}",
            settings(spec),
            position(Some(next))
        ),
        None => info!("{name}: deleted {route}"),
    }
}
