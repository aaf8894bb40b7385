//! PEZ_LOG: an env_logger filter, checked before it is applied.
//!
//! env_logger takes any text: a part it cannot read is skipped with a
//! warning on stderr, and a bare word that is not a level is a module name,
//! so `PEZ_LOG=inof` means "module `inof` at trace" and turns every line of
//! PEZ off, silently. Here a value is refused unless env_logger's parser
//! (the `env_filter` crate it uses) reads all of it, and each bare word is a
//! level: a module is named with its level, `pez=trace`.

use super::declared::LOG;
use super::error::SettingError;
use super::unknown;

/// The levels a bare word may be, as env_logger reads them (any case).
const LEVELS: [&str; 6] = ["off", "error", "warn", "info", "debug", "trace"];

/// What PEZ_LOG takes, for the message that refuses a value.
const GRAMMAR: &str = "LEVEL or MODULE=LEVEL, comma-separated, optionally followed by /REGEX; \
                       levels: off, error, warn, info, debug, trace";

/// Checks `value` as PEZ_LOG, naming it when it is refused.
pub fn check(value: &str) -> Result<(), SettingError> {
    let refuse = |hint: Option<&str>| {
        // "PEZ_LOG must be info or another log filter (...), not "inof"".
        let expected = match hint {
            Some(level) => format!("{level} or another log filter ({GRAMMAR})"),
            None => format!("a log filter such as info or warn,pez=debug ({GRAMMAR})"),
        };
        SettingError::new(LOG.variable, value, expected)
    };
    if env_filter::Builder::new().try_parse(value).is_err() {
        return Err(refuse(None));
    }
    let directives = value.split('/').next().unwrap_or_default();
    for word in directives.split(',').map(str::trim) {
        if word.is_empty() || word.contains('=') {
            continue;
        }
        if !LEVELS.iter().any(|level| level.eq_ignore_ascii_case(word)) {
            let lower = word.to_ascii_lowercase();
            return Err(refuse(unknown::closest(&lower, LEVELS, 2)));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filters_env_logger_reads_whole_are_taken() {
        for good in [
            "",
            "info",
            "WARN",
            "off",
            "warn,pez=debug",
            "info, pez::dispenser::leaser=debug",
            "pez=",
            "debug/lease.*ok",
        ] {
            assert_eq!(check(good), Ok(()), "{good:?}");
        }
    }

    #[test]
    fn a_filter_with_a_part_env_logger_would_skip_or_misread_is_refused() {
        for bad in [
            "inof",
            "pez",
            "info,warp",
            "pez=loud",
            "a=b=c",
            "info/(",
            "info/a/b",
        ] {
            let err = check(bad).unwrap_err().to_string();
            assert!(err.starts_with("PEZ_LOG must be "), "{err}");
            assert!(
                err.contains("log filter") && err.contains("(LEVEL or MODULE=LEVEL"),
                "{err}"
            );
            assert!(err.ends_with(&format!("not {bad:?}")), "{err}");
        }
        let hinted = |bad| check(bad).unwrap_err().to_string();
        assert!(hinted("inof").starts_with("PEZ_LOG must be info or another log filter"));
        assert!(hinted("wran").starts_with("PEZ_LOG must be warn or another log filter"));
        assert!(hinted("pez").starts_with("PEZ_LOG must be a log filter such as info"));
    }
}
