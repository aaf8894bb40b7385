//! The rules every store applies when a sequence is moved on purpose (a
//! restart, an import, a copy): in its range; forward unless the caller
//! consents to numbers coming out again; and, for a cycling sequence, no
//! forward skip that makes it wrap early unless the caller consents to that.
//!
//! Why early wraps need consent: a cycling sequence hands out every number
//! once per lap. Moving it forward skips numbers, so its next wrap comes
//! sooner, and the numbers it issued since its last wrap come back after
//! fewer than a full lap of numbers (`restart forward 2^63-1` then served
//! `2^63-1, 1, 2`, though 1 and 2 had just been issued). The one forward
//! move that brings nothing back early is one of a sequence that has issued
//! nothing yet: no lap behind it (`laps == 0`) and standing where it was
//! created.

use super::{SequenceState, StoreError};
use crate::sequence::SequenceSpec;

/// What a caller consents to when moving a sequence.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Consent {
    /// Moving it back, to numbers handed out already (they come out again).
    /// Implies `early_wrap`: numbers coming out again is what was asked for.
    pub backward: bool,
    /// Moving a cycling sequence that has issued numbers forward, so that
    /// it wraps sooner than a full lap.
    pub early_wrap: bool,
}

impl Consent {
    /// Forward moves that bring nothing back early: the default.
    pub const FORWARD: Consent = Consent {
        backward: false,
        early_wrap: false,
    };

    fn early_wrap(self) -> bool {
        self.early_wrap || self.backward
    }
}

/// Whether a sequence has issued nothing yet: no lap behind it and standing
/// where it was created. Only then can a forward move of a cycling sequence
/// not bring numbers back early.
pub fn untouched(spec: &SequenceSpec, stands: Option<i64>, laps: i64) -> bool {
    laps == 0 && stands == Some(spec.start)
}

fn out_of_range(spec: &SequenceSpec, value: i64) -> StoreError {
    StoreError::OutOfRange {
        name: spec.name.clone(),
        value,
        min: spec.min,
        max: spec.max,
    }
}

fn early_wrap(spec: &SequenceSpec, value: i64, stands: i64) -> StoreError {
    StoreError::EarlyWrap {
        name: spec.name.clone(),
        value,
        stands,
    }
}

/// Whether a restart moves the sequence back: what a restart to `value`
/// needs to know, after checking it under `consent` against where the
/// sequence stands (`None`: ran out) with `laps` behind it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Restarted {
    /// To where it stands or ahead, in this lap.
    Forward,
    /// Back, to numbers handed out already: a new lap of those numbers.
    Backward,
}

/// Checks a restart of `spec` to `value`: inside the range; not behind
/// where it stands unless `consent.backward`; and, for a cycling sequence
/// that has issued numbers, not ahead unless `consent.early_wrap`.
pub fn check_restart(
    spec: &SequenceSpec,
    stands: Option<i64>,
    laps: i64,
    value: i64,
    consent: Consent,
) -> Result<Restarted, StoreError> {
    if !spec.contains(value) {
        return Err(out_of_range(spec, value));
    }
    let Some(at) = stands.filter(|at| spec.is_at_or_ahead(value, *at)) else {
        if !consent.backward {
            return Err(StoreError::Backward {
                name: spec.name.clone(),
                value,
                next: stands,
            });
        }
        return Ok(Restarted::Backward);
    };
    if value != at && spec.cycle && !untouched(spec, stands, laps) && !consent.early_wrap() {
        return Err(early_wrap(spec, value, at));
    }
    Ok(Restarted::Forward)
}

/// Where a sequence that stands at `stands` moves from, if moving it to
/// `next` (`None`: run out) moves it forward in this lap: only such a move
/// never makes it issue a number again in this lap. `None` when it stays:
/// it stands there or further already, or ran out. A cycling sequence that
/// has issued numbers is moved only with `consent.early_wrap`.
pub fn moves_forward(
    state: &SequenceState,
    next: Option<i64>,
    consent: Consent,
) -> Result<Option<i64>, StoreError> {
    let spec = &state.spec;
    if let Some(value) = next
        && !spec.contains(value)
    {
        return Err(out_of_range(spec, value));
    }
    let forward = match (state.next_value, next) {
        (None, _) => false,
        (Some(_), None) => !spec.cycle,
        (Some(stands), Some(value)) => value != stands && spec.is_at_or_ahead(value, stands),
    };
    let Some(from) = state.next_value.filter(|_| forward) else {
        return Ok(None);
    };
    if spec.cycle && !untouched(spec, state.next_value, state.laps) && !consent.early_wrap() {
        return Err(early_wrap(spec, next.unwrap_or(from), from));
    }
    Ok(Some(from))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sequence::{Direction, Mode};

    fn ring() -> SequenceSpec {
        SequenceSpec::new(
            "ring",
            Direction::Ascending,
            1,
            100,
            Some(10),
            true,
            Mode::Leased,
        )
        .expect("spec")
    }

    fn state(spec: SequenceSpec, next: Option<i64>, laps: i64) -> SequenceState {
        SequenceState {
            spec,
            next_value: next,
            generation: 1,
            laps,
            continues: None,
        }
    }

    #[test]
    fn a_cycling_sequence_moves_ahead_freely_only_until_it_issues_a_number() {
        let consent = Consent::FORWARD;
        assert_eq!(
            check_restart(&ring(), Some(10), 0, 50, consent).ok(),
            Some(Restarted::Forward)
        );
        for (stands, laps) in [(Some(11), 0), (Some(10), 1)] {
            assert!(matches!(
                check_restart(&ring(), stands, laps, 50, consent),
                Err(StoreError::EarlyWrap { .. })
            ));
            assert!(
                check_restart(
                    &ring(),
                    stands,
                    laps,
                    50,
                    Consent {
                        early_wrap: true,
                        ..consent
                    }
                )
                .is_ok()
            );
        }
        // Staying where it stands moves nothing: nothing comes back early.
        assert!(check_restart(&ring(), Some(11), 3, 11, consent).is_ok());
        // Backward needs its own consent, which covers the early wrap too.
        assert!(matches!(
            check_restart(&ring(), Some(60), 3, 20, consent),
            Err(StoreError::Backward { .. })
        ));
        assert_eq!(
            check_restart(
                &ring(),
                Some(60),
                3,
                20,
                Consent {
                    backward: true,
                    early_wrap: false
                }
            )
            .ok(),
            Some(Restarted::Backward)
        );
    }

    #[test]
    fn a_non_cycling_sequence_moves_ahead_freely_and_never_back() {
        let spec = SequenceSpec {
            cycle: false,
            ..ring()
        };
        assert!(check_restart(&spec, Some(70), 0, 90, Consent::FORWARD).is_ok());
        assert_eq!(
            moves_forward(&state(spec.clone(), Some(70), 0), None, Consent::FORWARD).ok(),
            Some(Some(70))
        );
        assert_eq!(
            moves_forward(&state(spec, Some(70), 0), Some(20), Consent::FORWARD).ok(),
            Some(None)
        );
    }

    #[test]
    fn an_import_moves_a_used_cycling_sequence_only_with_consent() {
        let used = state(ring(), Some(40), 0);
        assert!(matches!(
            moves_forward(&used, Some(90), Consent::FORWARD),
            Err(StoreError::EarlyWrap { stands: 40, .. })
        ));
        let consent = Consent {
            early_wrap: true,
            ..Consent::FORWARD
        };
        assert_eq!(moves_forward(&used, Some(90), consent).ok(), Some(Some(40)));
        // Where it stands or behind: it stays, and needs no consent.
        assert_eq!(
            moves_forward(&used, Some(30), Consent::FORWARD).ok(),
            Some(None)
        );
        let fresh = state(ring(), Some(10), 0);
        assert_eq!(
            moves_forward(&fresh, Some(90), Consent::FORWARD).ok(),
            Some(Some(10))
        );
        assert!(matches!(
            moves_forward(&fresh, Some(101), Consent::FORWARD),
            Err(StoreError::OutOfRange { .. })
        ));
    }
}
