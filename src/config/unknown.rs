//! `PEZ_*` variables that are no setting: a typo (`PEZ_BLOK_SIZE`) would
//! otherwise be ignored in silence, and the setting meant keep its default.
//! The known names are the declared settings ([`super::declared::ALL`])
//! and [`READ_ELSEWHERE`], so a new setting is known the moment it is
//! declared.

use super::declared::ALL;
use std::fmt;

/// `PEZ_*` variables PEZ reads that are not settings of the command line.
pub const READ_ELSEWHERE: &[&str] = &[
    // Which env file to read (/etc/pez/pez.env by default), read before
    // the settings are.
    "PEZ_ENV_FILE",
];

/// A `PEZ_*` variable PEZ does not read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unknown {
    /// Its name.
    pub variable: String,
    /// The known name it is probably a typo of.
    pub meant: Option<&'static str>,
}

impl fmt::Display for Unknown {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} is not a PEZ setting; it is ignored", self.variable)?;
        match self.meant {
            Some(meant) => write!(f, " (did you mean {meant}?)"),
            None => Ok(()),
        }
    }
}

/// Every known variable name.
fn known() -> impl Iterator<Item = &'static str> {
    ALL.iter()
        .map(|setting| setting.variable)
        .chain(READ_ELSEWHERE.iter().copied())
}

/// The `PEZ_*` names among `names` that PEZ does not read, in order.
pub fn among(names: impl IntoIterator<Item = String>) -> Vec<Unknown> {
    let mut found: Vec<Unknown> = names
        .into_iter()
        .filter(|name| name.starts_with("PEZ_") && !known().any(|known| known == name))
        .map(|variable| Unknown {
            meant: closest(&variable, known(), 3),
            variable,
        })
        .collect();
    found.sort_by(|a, b| a.variable.cmp(&b.variable));
    found
}

/// The unknown `PEZ_*` variables of this process's environment (`.env`
/// included, once read).
pub fn in_environment() -> Vec<Unknown> {
    among(std::env::vars_os().map(|(name, _)| name.to_string_lossy().into_owned()))
}

/// The one candidate closest to `word`, when it is within `most` edits
/// (and no other is as close): an obvious typo, not a guess.
pub fn closest<'a>(
    word: &str,
    candidates: impl IntoIterator<Item = &'a str>,
    most: usize,
) -> Option<&'a str> {
    let mut best: Option<(usize, &str)> = None;
    let mut tied = false;
    for candidate in candidates {
        let distance = edits(word, candidate);
        match best {
            Some((shortest, _)) if distance > shortest => {}
            Some((shortest, _)) if distance == shortest => tied = true,
            _ => {
                best = Some((distance, candidate));
                tied = false;
            }
        }
    }
    best.filter(|(distance, _)| *distance <= most && !tied)
        .map(|(_, candidate)| candidate)
}

/// Levenshtein distance: insertions, deletions and substitutions.
fn edits(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut diagonal = row[0];
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let above = row[j + 1];
            row[j + 1] = (above + 1)
                .min(row[j] + 1)
                .min(diagonal + usize::from(ca != *cb));
            diagonal = above;
        }
    }
    row[b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| (*s).to_owned()).collect()
    }

    #[test]
    fn every_declared_setting_and_the_env_file_are_known() {
        let mut all: Vec<&str> = ALL.iter().map(|s| s.variable).collect();
        all.push("PEZ_ENV_FILE");
        assert_eq!(among(names(&all)), []);
        assert_eq!(among(names(&["HOME", "PGPASSWORD", "JOURNAL_STREAM"])), []);
    }

    #[test]
    fn a_typo_is_named_with_the_setting_it_was_meant_for() {
        let found = among(names(&[
            "PEZ_BLOK_SIZE",
            "PEZ_LISTEN",
            "PEZ_WHATEVER",
            "PEZ_LOGG",
        ]));
        let shown: Vec<String> = found.iter().map(ToString::to_string).collect();
        assert_eq!(
            shown,
            [
                "PEZ_BLOK_SIZE is not a PEZ setting; it is ignored (did you mean PEZ_BLOCK_SIZE?)",
                "PEZ_LOGG is not a PEZ setting; it is ignored (did you mean PEZ_LOG?)",
                "PEZ_WHATEVER is not a PEZ setting; it is ignored",
            ]
        );
    }

    #[test]
    fn edits_count_insertions_deletions_and_substitutions() {
        assert_eq!(edits("inof", "info"), 2);
        assert_eq!(edits("kitten", "sitting"), 3);
        assert_eq!(edits("", "abc"), 3);
        assert_eq!(closest("inof", ["info", "off"], 2), Some("info"));
        assert_eq!(closest("xyz", ["info", "off"], 2), None);
        assert_eq!(
            closest("ab", ["aa", "bb"], 2),
            None,
            "a tie is no obvious typo"
        );
    }
}
