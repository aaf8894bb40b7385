//! The two things PEZ needs from libpq that diesel does not expose.
//!
//! - **libpq's own parser of connection strings** ([`parse`]). No crate
//!   parses libpq's whole grammar: the `url` crate rejects the multi-host
//!   URIs failover needs (`postgres://u@h1:5432,h2:5432/db`), and
//!   tokio-postgres refuses keywords it does not implement (`sslrootcert`).
//!   libpq itself is the parser that will read the string at connect time,
//!   so what PEZ describes and what libpq connects to cannot differ.
//! - **The SQLSTATE of a failed connection** ([`probe`]). diesel hands back
//!   only the text of a connection error; libpq writes the server's SQLSTATE
//!   into that text when the connection's error verbosity is VERBOSE, which
//!   can only be set on a connection that is being made step by step.
//!
//! This is the only `unsafe` code in PEZ: calls into libpq (already linked
//! by diesel) through pq-sys, each with the pointer rules of its libpq
//! documentation, freed on every path.
#![allow(unsafe_code)]

use pq_sys::{
    ConnStatusType, PGVerbosity, PQconnectPoll, PQconnectStart, PQconninfoFree, PQconninfoParse,
    PQerrorMessage, PQfinish, PQfreemem, PQsetErrorVerbosity, PQstatus, PostgresPollingStatusType,
};
use std::ffi::{CStr, CString, c_char};
use std::time::{Duration, Instant};

/// Reads a libpq connection string (a `postgres://` URI or `key=value`
/// pairs) exactly as libpq does: the keywords it sets, with their values,
/// in libpq's order. The error says why libpq refuses it, with every
/// quoted piece of the string left out (it might be the password).
pub fn parse(conninfo: &str) -> Result<Vec<(String, String)>, String> {
    let text = CString::new(conninfo).map_err(|_| "it contains a NUL byte".to_owned())?;
    let mut error: *mut c_char = std::ptr::null_mut();
    // SAFETY: `text` is a valid NUL-terminated string for the call;
    // `error` is an out-pointer libpq may set to a string we must free.
    let options = unsafe { PQconninfoParse(text.as_ptr(), &mut error) };
    if options.is_null() {
        let why = if error.is_null() {
            "libpq cannot parse it (out of memory?)".to_owned()
        } else {
            // SAFETY: libpq set `error` to a NUL-terminated string it owns
            // until we free it with PQfreemem, once, right after copying.
            let why = unsafe { CStr::from_ptr(error) }
                .to_string_lossy()
                .into_owned();
            unsafe { PQfreemem(error.cast()) };
            why
        };
        return Err(without_quotes(why.trim()));
    }
    let mut found = Vec::new();
    let mut at = options;
    loop {
        // SAFETY: PQconninfoParse returned an array of options ending in
        // one whose keyword is NULL; `at` walks it up to that one.
        let option = unsafe { &*at };
        if option.keyword.is_null() {
            break;
        }
        if !option.val.is_null() {
            // SAFETY: keyword and val are NUL-terminated strings owned by
            // the array, alive until PQconninfoFree below.
            let (keyword, value) = unsafe {
                (
                    CStr::from_ptr(option.keyword)
                        .to_string_lossy()
                        .into_owned(),
                    CStr::from_ptr(option.val).to_string_lossy().into_owned(),
                )
            };
            found.push((keyword, value));
        }
        // SAFETY: still inside the array: this entry was not the last.
        at = unsafe { at.add(1) };
    }
    // SAFETY: `options` came from PQconninfoParse and is freed once.
    unsafe { PQconninfoFree(options) };
    Ok(found)
}

/// `text` with every `"..."` piece replaced by `"…"`: libpq quotes the
/// parts of the string it could not read, and one may hold a password.
fn without_quotes(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut quoted = false;
    for c in text.chars() {
        if c == '"' {
            if !quoted {
                out.push_str("\"…\"");
            }
            quoted = !quoted;
        } else if !quoted {
            out.push(c);
        }
    }
    out
}

/// Why a connection could not be made.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    /// Each SQLSTATE a server answered with (one per host tried); none when
    /// no server answered (refused, unreachable, TLS failed, timed out).
    pub sqlstates: Vec<String>,
    /// libpq's message, folded to one line, server source locations left out.
    pub message: String,
}

/// Connects once with `conninfo`, within `limit`, only to learn whether a
/// server accepts it; closes the connection again.
pub fn probe(conninfo: &str, limit: Duration) -> Result<(), Refusal> {
    let refusal = |message: String| Refusal {
        sqlstates: Vec::new(),
        message,
    };
    let text = CString::new(conninfo).map_err(|_| refusal("a NUL byte in it".into()))?;
    // SAFETY: `text` is valid for the call; the result is a connection
    // object we own and free with PQfinish on every path below.
    let conn = unsafe { PQconnectStart(text.as_ptr()) };
    if conn.is_null() {
        return Err(refusal("libpq could not start a connection".into()));
    }
    // SAFETY: `conn` is a live connection object until PQfinish.
    unsafe { PQsetErrorVerbosity(conn, PGVerbosity::PQERRORS_VERBOSE) };
    let started = Instant::now();
    // SAFETY: as above.
    let mut ok = unsafe { PQstatus(conn) } != ConnStatusType::CONNECTION_BAD;
    while ok {
        // SAFETY: as above; PQconnectPoll never blocks.
        match unsafe { PQconnectPoll(conn) } {
            PostgresPollingStatusType::PGRES_POLLING_OK => break,
            PostgresPollingStatusType::PGRES_POLLING_FAILED => ok = false,
            _ if started.elapsed() >= limit => {
                // SAFETY: as above.
                unsafe { PQfinish(conn) };
                return Err(refusal(format!("no answer within {limit:?}")));
            }
            // Waiting for the socket; a probe runs once per start attempt,
            // so polling beats bringing in poll(2).
            _ => std::thread::sleep(Duration::from_millis(2)),
        }
    }
    let outcome = if ok {
        Ok(())
    } else {
        // SAFETY: the message belongs to `conn` and is copied before
        // PQfinish frees it.
        let message = unsafe { CStr::from_ptr(PQerrorMessage(conn)) }
            .to_string_lossy()
            .into_owned();
        Err(read_refusal(&message))
    };
    // SAFETY: freed once; `conn` is not used after this.
    unsafe { PQfinish(conn) };
    outcome
}

/// The SQLSTATEs and the readable message of libpq's VERBOSE error text,
/// where each server error reads `SEVERITY:  XXXXX: message` (SEVERITY in
/// the server's language, the SQLSTATE never) and a `LOCATION:` line
/// follows it.
fn read_refusal(text: &str) -> Refusal {
    let mut sqlstates = Vec::new();
    let mut lines = Vec::new();
    for line in text.lines().map(str::trim) {
        if line.is_empty() || line.starts_with("LOCATION:") {
            continue;
        }
        let mut kept = line.to_owned();
        if let Some(at) = line.find(":  ") {
            let rest = &line[at + 3..];
            let code = rest.get(..5).unwrap_or_default();
            if rest.as_bytes().get(5) == Some(&b':')
                && code.len() == 5
                && code
                    .bytes()
                    .all(|b| b.is_ascii_digit() || b.is_ascii_uppercase())
            {
                sqlstates.push(code.to_owned());
                kept = format!("{}:  {}", &line[..at], rest[6..].trim_start());
            }
        }
        lines.push(kept);
    }
    Refusal {
        sqlstates,
        message: lines.join("; "),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn get<'a>(found: &'a [(String, String)], key: &str) -> Option<&'a str> {
        found
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    #[test]
    fn uris_with_several_hosts_and_keyword_strings_parse_as_libpq_reads_them() {
        let uri =
            parse("postgres://me:p%40ss@h1:5433,h2:5434/db?sslrootcert=/ca.pem&application_name=x")
                .unwrap();
        assert_eq!(get(&uri, "host"), Some("h1,h2"));
        assert_eq!(get(&uri, "port"), Some("5433,5434"));
        assert_eq!(get(&uri, "user"), Some("me"));
        assert_eq!(get(&uri, "password"), Some("p@ss"));
        assert_eq!(get(&uri, "dbname"), Some("db"));
        assert_eq!(get(&uri, "sslrootcert"), Some("/ca.pem"));
        let pairs = parse(r"host=db port = 6543 password='it\'s a \\ x' dbname=pez").unwrap();
        assert_eq!(get(&pairs, "port"), Some("6543"));
        assert_eq!(get(&pairs, "password"), Some(r"it's a \ x"));
        assert_eq!(get(&pairs, "dbname"), Some("pez"));
    }

    #[test]
    fn what_libpq_refuses_is_refused_without_echoing_the_string() {
        let error = parse("host=db password=\"hunter2 nosuchoption=1").unwrap_err();
        assert!(!error.contains("hunter2"), "{error}");
        let error = parse("postgres://u:hunter2@h/db?nosuch=hunter2").unwrap_err();
        assert!(!error.contains("hunter2"), "{error}");
        assert!(!error.is_empty());
    }

    #[test]
    fn verbose_errors_give_their_sqlstate_and_a_readable_line() {
        let text = "connection to server at \"127.0.0.1\", port 5432 failed: FATAL:  28P01: \
                    password authentication failed for user \"x\"\nLOCATION:  auth_failed, \
                    auth.c:323\n";
        let refusal = read_refusal(text);
        assert_eq!(refusal.sqlstates, ["28P01"]);
        assert!(!refusal.message.contains("LOCATION"));
        assert!(
            refusal
                .message
                .contains("FATAL:  password authentication failed")
        );
        let refused = read_refusal(
            "connection to server at \"127.0.0.1\", port 1 failed: Connection refused\n",
        );
        assert!(refused.sqlstates.is_empty());
    }
}
