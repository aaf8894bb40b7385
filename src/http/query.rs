//! Query parameters, parsed by hand: strict decimal counts, first
//! occurrence wins, every unknown parameter ignored (the original's
//! load-test URL is `/v2/forward?99`). Nothing is copied unless it has to
//! be decoded.

use std::borrow::Cow;

/// Finds `count` in a raw query string and checks it against `1..=max`.
/// `Ok(1)` when absent. `Err` carries the offending (decoded) text.
pub fn count(query: Option<&str>, max: u64) -> Result<u64, String> {
    let Some(given) = query.and_then(|q| param(q, "count")) else {
        return Ok(1);
    };
    let digits_only = !given.is_empty() && given.bytes().all(|b| b.is_ascii_digit());
    match given.parse::<u64>() {
        Ok(n) if digits_only && (1..=max).contains(&n) => Ok(n),
        _ => Err(given.into_owned()),
    }
}

/// The decoded value of the first parameter named `name`, if any.
///
/// Scans bytes rather than `split('&')` and `split_once('=')`: on a query
/// as short as `count=100`, `str`'s pattern searchers cost more than the
/// scan (about 400 instructions of a request, measured under callgrind).
/// Splitting at the ASCII `&` and `=` keeps every slice on a character
/// boundary.
pub fn param<'a>(query: &'a str, name: &str) -> Option<Cow<'a, str>> {
    let mut rest = query;
    loop {
        let (pair, next) = match rest.bytes().position(|b| b == b'&') {
            Some(at) => (&rest[..at], Some(&rest[at + 1..])),
            None => (rest, None),
        };
        let (key, value) = match pair.bytes().position(|b| b == b'=') {
            Some(at) => (&pair[..at], &pair[at + 1..]),
            None => (pair, ""),
        };
        let named = if needs_decoding(key) {
            decoded(key) == name
        } else {
            key == name
        };
        if named {
            return Some(decoded(value));
        }
        rest = next?;
    }
}

/// application/x-www-form-urlencoded decoding: `+` is a space, `%XX` a
/// byte; a malformed escape is kept as it is (and then fails the digit check).
pub fn decode(text: &str) -> String {
    decoded(text).into_owned()
}

/// [`decode`], borrowing `text` when there is nothing to decode.
fn decoded(text: &str) -> Cow<'_, str> {
    if !needs_decoding(text) {
        return Cow::Borrowed(text);
    }
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let escaped = match bytes.get(i..i + 3) {
            Some([b'%', high, low]) => hex(*high).zip(hex(*low)).map(|(h, l)| h << 4 | l),
            _ => None,
        };
        match (escaped, bytes[i]) {
            (Some(byte), _) => {
                out.push(byte);
                i += 3;
                continue;
            }
            (None, b'+') => out.push(b' '),
            (None, byte) => out.push(byte),
        }
        i += 1;
    }
    Cow::Owned(String::from_utf8_lossy(&out).into_owned())
}

fn needs_decoding(text: &str) -> bool {
    text.bytes().any(|b| b == b'%' || b == b'+')
}

fn hex(digit: u8) -> Option<u8> {
    (digit as char).to_digit(16).map(|d| d as u8)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// `param` as it was written first, with `str`'s splitters: the scan
    /// must find exactly what this finds.
    fn param_by_splitting<'a>(query: &'a str, name: &str) -> Option<Cow<'a, str>> {
        query.split('&').find_map(|pair| {
            let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
            (decoded(key) == name).then(|| decoded(value))
        })
    }

    proptest! {
        #[test]
        fn the_scan_finds_what_splitting_finds(
            query in "([a-z%+=&]|count|format|%63|%2B|=|&|\\PC){0,24}",
            name in prop::sample::select(vec!["count", "format", "c", "", "co unt"]),
        ) {
            prop_assert_eq!(param(&query, name), param_by_splitting(&query, name));
        }
    }

    #[test]
    fn the_first_parameter_of_the_name_wins_whatever_its_spelling() {
        assert_eq!(
            param("a=1&%63ount=2&count=3", "count").as_deref(),
            Some("2")
        );
        assert_eq!(param("count&count=3", "count").as_deref(), Some(""));
        assert_eq!(param("x=count", "count"), None);
        assert_eq!(param("", ""), Some(Cow::Borrowed("")));
    }

    #[test]
    fn count_defaults_to_one_and_other_parameters_are_ignored() {
        assert_eq!(count(None, 100), Ok(1));
        assert_eq!(count(Some("99"), 100), Ok(1));
        assert_eq!(count(Some("foo=bar&x"), 100), Ok(1));
        assert_eq!(count(Some("x=1&count=7&count=9"), 100), Ok(7));
    }

    #[test]
    fn count_accepts_decimal_digits_within_the_limit() {
        assert_eq!(count(Some("count=1"), 100), Ok(1));
        assert_eq!(count(Some("count=100"), 100), Ok(100));
        assert_eq!(count(Some("count=007"), 100), Ok(7));
        assert_eq!(count(Some("count=%35"), 100), Ok(5));
    }

    #[test]
    fn count_rejects_everything_else() {
        for bad in [
            "count=0",
            "count=-1",
            "count=101",
            "count=",
            "count",
            "count=abc",
            "count=1.5",
            "count=1e2",
            "count=0x10",
            "count=+5",
            "count=%2B5",
            "count=+5",
            "count= 5",
            "count=99999999999999999999999",
            "count=%",
            "count=%zz",
            "count=5%",
            "count=%C3%A9",
            "count=\u{e9}%",
        ] {
            assert!(count(Some(bad), 100).is_err(), "{bad} was accepted");
        }
    }
}
