//! Bearer tokens: PEZ_ADMIN_TOKEN for the admin API, PEZ_TOKENS (when set)
//! for taking numbers, PEZ_LEASE_TOKENS (when set) for range leases,
//! PEZ_METRICS_TOKENS (or the admin token) for what the operator endpoints
//! show of the sequences and the store once any token is set. Each wider
//! dispensing scope includes the narrower: a lease token takes numbers too,
//! and the admin token does everything. Tokens are compared in constant
//! time and never logged or echoed.

use super::problem::ApiError;
use crate::config::{Access, Secret};

/// What a request wants to do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Need {
    /// Take numbers: open unless PEZ_TOKENS is set.
    Dispense,
    /// Take a range lease: needs one of PEZ_LEASE_TOKENS (or the admin
    /// token) when that is set; as [`Need::Dispense`] when it is not.
    Lease,
    /// Manage sequences: needs PEZ_ADMIN_TOKEN, and is off without it.
    Admin,
    /// See the sequences, their positions and rates and where the store is
    /// (/metrics, the status page's details): open while no token of any
    /// kind is set; then the admin token or one of PEZ_METRICS_TOKENS.
    /// Dispensing tokens do not: a client that takes numbers of one
    /// sequence learns nothing of the others.
    Observe,
}

/// Checks the `Authorization` header against what `need` requires.
pub fn authorize(access: &Access, need: Need, authorization: Option<&str>) -> Result<(), ApiError> {
    authorize_with(access, need, || authorization)
}

/// [`authorize`], reading the header only when the answer depends on it:
/// taking numbers with no PEZ_TOKENS set looks at no header.
pub fn authorize_with<'a>(
    access: &Access,
    need: Need,
    authorization: impl FnOnce() -> Option<&'a str>,
) -> Result<(), ApiError> {
    // Without lease tokens a range lease is what it was before they
    // existed: taking numbers.
    let need = match need {
        Need::Lease if access.leasing.is_empty() => Need::Dispense,
        need => need,
    };
    match need {
        Need::Dispense if access.dispensing.is_empty() => return Ok(()),
        Need::Observe if access.is_open() => return Ok(()),
        _ => {}
    }
    let presented = authorization().and_then(bearer);
    match need {
        Need::Dispense => {
            // The admin token may do everything, and a lease token may take
            // numbers too.
            let allowed = access
                .dispensing
                .iter()
                .chain(access.leasing.iter())
                .chain(access.admin.iter());
            match presented {
                Some(token) if any_matches(allowed, token) => Ok(()),
                _ => Err(ApiError::Unauthorized { admin: false }),
            }
        }
        Need::Lease => {
            let allowed = access.leasing.iter().chain(access.admin.iter());
            match presented {
                Some(token) if any_matches(allowed, token) => Ok(()),
                // Known, but for numbers only: it may not burn a sequence.
                Some(token) if any_matches(access.dispensing.iter(), token) => {
                    Err(ApiError::LeaseScopeNeeded)
                }
                _ => Err(ApiError::LeaseUnauthorized),
            }
        }
        Need::Admin => match (&access.admin, presented) {
            (None, _) => Err(ApiError::AdminOff),
            (Some(admin), Some(token))
                if constant_time_eq(admin.expose().as_bytes(), token.as_bytes()) =>
            {
                Ok(())
            }
            (Some(_), _) => Err(ApiError::Unauthorized { admin: true }),
        },
        Need::Observe => {
            let allowed = access.metrics.iter().chain(access.admin.iter());
            match presented {
                Some(token) if any_matches(allowed, token) => Ok(()),
                _ => Err(ApiError::UnauthorizedToObserve),
            }
        }
    }
}

/// The token of `Bearer <token>` (the scheme is case-insensitive).
fn bearer(header: &str) -> Option<&str> {
    let (scheme, token) = header.trim().split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then(|| token.trim())
}

/// Compares against every token, without stopping at the first match, so
/// the time taken does not tell which (or whether one) matched.
fn any_matches<'a>(tokens: impl Iterator<Item = &'a Secret>, presented: &str) -> bool {
    tokens.fold(false, |found, token| {
        constant_time_eq(token.expose().as_bytes(), presented.as_bytes()) | found
    })
}

/// Equality whose time depends only on the lengths, not on where the
/// bytes differ.
fn constant_time_eq(expected: &[u8], presented: &[u8]) -> bool {
    let mut difference = expected.len() ^ presented.len();
    for (i, byte) in presented.iter().enumerate() {
        // Cycling through `expected` keeps the work proportional to the
        // presented token whatever its length.
        let against = expected
            .get(i % expected.len().max(1))
            .copied()
            .unwrap_or(0);
        difference |= usize::from(byte ^ against);
    }
    difference == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secrets(tokens: &[&str]) -> Vec<Secret> {
        tokens.iter().map(|t| Secret::new((*t).into())).collect()
    }

    fn access(admin: Option<&str>, tokens: &[&str]) -> Access {
        Access {
            admin: admin.map(|t| Secret::new(t.into())),
            dispensing: secrets(tokens),
            ..Access::default()
        }
    }

    #[test]
    fn observing_is_open_only_while_no_token_is_set() {
        assert_eq!(authorize(&access(None, &[]), Need::Observe, None), Ok(()));
        let mut closed = access(Some("root"), &["client"]);
        closed.metrics = vec![Secret::new("prom".into())];
        for allowed in ["Bearer root", "Bearer prom", "bearer  prom "] {
            assert_eq!(authorize(&closed, Need::Observe, Some(allowed)), Ok(()));
        }
        for refused in [
            None,
            Some("Bearer client"),
            Some("Bearer pro"),
            Some("prom"),
        ] {
            assert_eq!(
                authorize(&closed, Need::Observe, refused),
                Err(ApiError::UnauthorizedToObserve),
                "{refused:?}"
            );
        }
        // Any one kind of token closes it; a metrics token takes no numbers.
        for one in [access(Some("root"), &[]), access(None, &["client"])] {
            assert!(authorize(&one, Need::Observe, None).is_err());
        }
        assert!(authorize(&closed, Need::Dispense, Some("Bearer prom")).is_err());
        assert!(authorize(&closed, Need::Admin, Some("Bearer prom")).is_err());
    }

    #[test]
    fn range_leases_need_a_lease_token_once_lease_tokens_are_set() {
        let scoped = Access {
            leasing: secrets(&["lease"]),
            ..access(Some("root"), &["numbers"])
        };
        let lease = |header| authorize(&scoped, Need::Lease, header);
        assert_eq!(lease(Some("Bearer lease")), Ok(()));
        assert_eq!(lease(Some("Bearer root")), Ok(()));
        assert_eq!(
            lease(Some("Bearer numbers")),
            Err(ApiError::LeaseScopeNeeded)
        );
        assert_eq!(
            lease(Some("Bearer other")),
            Err(ApiError::LeaseUnauthorized)
        );
        assert_eq!(lease(None), Err(ApiError::LeaseUnauthorized));
        for token in ["numbers", "lease", "root"] {
            let header = format!("Bearer {token}");
            assert_eq!(
                authorize(&scoped, Need::Dispense, Some(&header)),
                Ok(()),
                "{token} takes numbers"
            );
        }
        assert_eq!(
            authorize(&scoped, Need::Admin, Some("Bearer lease")),
            Err(ApiError::Unauthorized { admin: true })
        );
        // Unset: leases are as open as numbers.
        let compatible = access(None, &["numbers"]);
        assert_eq!(
            authorize(&compatible, Need::Lease, Some("Bearer numbers")),
            Ok(())
        );
        assert_eq!(authorize(&access(None, &[]), Need::Lease, None), Ok(()));
        // Lease tokens alone: numbers stay open, leases do not.
        let leases_only = Access {
            leasing: secrets(&["lease"]),
            ..access(None, &[])
        };
        assert_eq!(authorize(&leases_only, Need::Dispense, None), Ok(()));
        assert_eq!(
            authorize(&leases_only, Need::Lease, None),
            Err(ApiError::LeaseUnauthorized)
        );
    }

    #[test]
    fn dispensing_is_open_until_tokens_are_set() {
        assert_eq!(authorize(&access(None, &[]), Need::Dispense, None), Ok(()));
        let closed = access(Some("root"), &["a", "bb"]);
        assert!(authorize(&closed, Need::Dispense, None).is_err());
        assert!(authorize(&closed, Need::Dispense, Some("Bearer b")).is_err());
        assert!(authorize(&closed, Need::Dispense, Some("Basic bb")).is_err());
        assert_eq!(
            authorize(&closed, Need::Dispense, Some("Bearer bb")),
            Ok(())
        );
        assert_eq!(authorize(&closed, Need::Dispense, Some("bearer a")), Ok(()));
        assert_eq!(
            authorize(&closed, Need::Dispense, Some("Bearer root")),
            Ok(())
        );
    }

    #[test]
    fn the_admin_api_is_off_without_its_token_and_needs_it_exactly() {
        assert_eq!(
            authorize(&access(None, &["a"]), Need::Admin, Some("Bearer a")),
            Err(ApiError::AdminOff)
        );
        let on = access(Some("s3cret"), &["a"]);
        assert_eq!(authorize(&on, Need::Admin, Some("Bearer s3cret")), Ok(()));
        for wrong in [
            None,
            Some("Bearer a"),
            Some("Bearer s3cre"),
            Some("Bearer s3crett"),
            Some("s3cret"),
        ] {
            assert_eq!(
                authorize(&on, Need::Admin, wrong),
                Err(ApiError::Unauthorized { admin: true })
            );
        }
    }

    #[test]
    fn constant_time_equality_is_equality() {
        assert!(constant_time_eq(b"abc", b"abc"));
        assert!(!constant_time_eq(b"abc", b"abd"));
        assert!(!constant_time_eq(b"abc", b"ab"));
        assert!(!constant_time_eq(b"abc", b"abcabc"));
        assert!(!constant_time_eq(b"", b"x"));
        assert!(constant_time_eq(b"", b""));
    }
}
