//! The service's settings file, `/etc/pez/pez.env` (or the file named by
//! `PEZ_ENV_FILE`): on a host installed from the RPM an operator's `pez
//! sequence list` reaches the service's store without retyping its
//! settings. Read as systemd reads an `EnvironmentFile=` (no `$`
//! expansion, unlike the `.env` that dotenvy reads), so the command and
//! the service see the same values; below the environment and the flags.

use crate::trusted;
use std::ffi::OsString;
use std::io::ErrorKind;
use std::path::PathBuf;

/// Where the RPM installs the service's settings.
pub const DEFAULT: &str = "/etc/pez/pez.env";

/// The variable that names another file ("": none).
pub const VARIABLE: &str = "PEZ_ENV_FILE";

/// The settings file that was read, and its `(VARIABLE, value)` pairs.
#[derive(Debug)]
pub struct Loaded {
    /// The file.
    pub path: PathBuf,
    /// Its assignments, in order.
    pub values: Vec<(String, String)>,
}

/// Reads the settings file `PEZ_ENV_FILE` names (when set: it must be
/// there; set but empty: none), or else [`DEFAULT`] when present. A file
/// another user may change is refused: whoever could write it would
/// choose the database (and see its password). One line for every error.
pub fn load(named: Option<OsString>) -> Result<Option<Loaded>, String> {
    let (path, explicit) = match named {
        Some(name) if name.is_empty() => return Ok(None),
        Some(name) => (PathBuf::from(name), true),
        None => (PathBuf::from(DEFAULT), false),
    };
    let text = match trusted::read_to_string("the settings file", &path) {
        Ok(text) => text,
        Err(e) if !explicit => match e.could_not_read().map(std::io::Error::kind) {
            Some(ErrorKind::NotFound) => return Ok(None),
            // An operator outside the pez group: their own settings only.
            Some(ErrorKind::PermissionDenied) => {
                eprintln!(
                    "note: {DEFAULT} is not readable by this user: it is not read (run as root \
                     or a member of the pez group to use the service's settings)"
                );
                return Ok(None);
            }
            _ => return Err(e.to_string()),
        },
        Err(e) => return Err(format!("{e} ({VARIABLE})")),
    };
    let (values, ignored) = parse(&text).map_err(|line| {
        format!(
            "cannot read {}: line {line} opens a quote that never closes; its value is not \
             shown",
            path.display()
        )
    })?;
    for line in ignored {
        eprintln!(
            "note: line {line} of {} is not VARIABLE=value: ignored, as systemd ignores it",
            path.display()
        );
    }
    Ok(Some(Loaded { path, values }))
}

/// Where [`load`] reads from, said once on stderr.
pub fn announce(loaded: &Loaded) {
    eprintln!(
        "note: settings read from {} (the environment and flags win over it; a store they name takes none of its store settings)",
        loaded.path.display()
    );
}

/// A settings file's `(VARIABLE, value)` pairs, and the numbers of the
/// lines that were no assignment (ignored).
pub type Parsed = (Vec<(String, String)>, Vec<usize>);

/// An `EnvironmentFile=` as systemd parses it: `VARIABLE=value` lines;
/// blank lines and lines starting with `#` or `;` skipped; whitespace
/// around the name and the value trimmed; within single quotes everything
/// literal, within double quotes `\` escapes `"`, `\`, `` ` ``, `$` and a
/// newline; outside quotes `\` escapes any character and a `\` at the end
/// of a line joins the next. `$` is never expanded. A line that is no
/// assignment (no `=`, or no valid name) is ignored, as systemd does, and
/// its number returned beside the values; the error is the number of a
/// line whose quote never closes.
pub fn parse(text: &str) -> Result<Parsed, usize> {
    let chars: Vec<char> = text.chars().collect();
    let mut out = Vec::new();
    let mut ignored = Vec::new();
    let mut i = 0;
    let mut line = 1;
    while i < chars.len() {
        // Start of a line.
        while i < chars.len() && chars[i] != '\n' && chars[i].is_whitespace() {
            i += 1;
        }
        if i >= chars.len() {
            break;
        }
        if chars[i] == '\n' {
            i += 1;
            line += 1;
            continue;
        }
        if chars[i] == '#' || chars[i] == ';' {
            while i < chars.len() && chars[i] != '\n' {
                i += 1;
            }
            continue;
        }
        let first_line = line;
        let mut name = String::new();
        while i < chars.len() && chars[i] != '=' && chars[i] != '\n' {
            name.push(chars[i]);
            i += 1;
        }
        let name = name.trim_end().to_owned();
        let valid_name = !name.is_empty()
            && !name.starts_with(|c: char| c.is_ascii_digit())
            && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
        if i >= chars.len() || chars[i] != '=' || !valid_name {
            // systemd ignores such a line ("Ignoring invalid environment
            // assignment") and starts the unit: so must we, or the
            // service would refuse a file its own unit accepts.
            while i < chars.len() && chars[i] != '\n' {
                i += 1;
            }
            ignored.push(first_line);
            continue;
        }
        i += 1;
        while i < chars.len() && chars[i] != '\n' && chars[i].is_whitespace() {
            i += 1;
        }
        let mut value = String::new();
        // Length of `value` up to its last character that trailing
        // whitespace trimming must keep (quoted or escaped).
        let mut kept = 0;
        // Quotes open only where the value begins or a quote closed, as
        // in systemd: `it's` is literal.
        let mut quotes_open = true;
        while let Some(&c) = chars.get(i) {
            let at_quote = quotes_open;
            quotes_open = false;
            match c {
                '\n' => break,
                '\'' if at_quote => {
                    i += 1;
                    loop {
                        match chars.get(i) {
                            None => return Err(first_line),
                            Some('\'') => break,
                            Some(&c) => {
                                if c == '\n' {
                                    line += 1;
                                }
                                value.push(c);
                            }
                        }
                        i += 1;
                    }
                    i += 1;
                    kept = value.len();
                    quotes_open = true;
                }
                '"' if at_quote => {
                    i += 1;
                    loop {
                        match chars.get(i) {
                            None => return Err(first_line),
                            Some('"') => break,
                            Some('\\') => match chars.get(i + 1) {
                                Some('\n') => {
                                    line += 1;
                                    i += 1;
                                }
                                Some(&e @ ('"' | '\\' | '`' | '$')) => {
                                    value.push(e);
                                    i += 1;
                                }
                                _ => value.push('\\'),
                            },
                            Some(&c) => {
                                if c == '\n' {
                                    line += 1;
                                }
                                value.push(c);
                            }
                        }
                        i += 1;
                    }
                    i += 1;
                    kept = value.len();
                    quotes_open = true;
                }
                '\\' => {
                    match chars.get(i + 1) {
                        Some('\n') => line += 1,
                        Some(&e) => {
                            value.push(e);
                            kept = value.len();
                        }
                        None => {}
                    }
                    i += 2;
                }
                c => {
                    value.push(c);
                    if !c.is_whitespace() {
                        kept = value.len();
                    }
                    i += 1;
                }
            }
        }
        value.truncate(kept);
        out.push((name, value));
    }
    Ok((out, ignored))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pairs(text: &str) -> Vec<(String, String)> {
        let (values, ignored) = parse(text).unwrap();
        assert_eq!(ignored, Vec::<usize>::new(), "{text}");
        values
    }

    #[test]
    fn values_are_read_as_systemd_reads_them() {
        let read = pairs(
            "# comment\n; comment\n\n  A=plain value  \nB=\"quoted $HOME \\\"x\\\"\"\n\
             C='single $x \\n'\nG='a'\"b\"c\nD=it's\\\n continued\nE=\nF = spaced\n",
        );
        let expected = [
            ("A", "plain value"),
            ("B", "quoted $HOME \"x\""),
            ("C", "single $x \\n"),
            ("G", "abc"),
            ("D", "it's continued"),
            ("E", ""),
            ("F", "spaced"),
        ];
        let expected: Vec<(String, String)> = expected
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        assert_eq!(read, expected);
    }

    #[test]
    fn a_line_that_is_no_assignment_is_ignored_by_its_number_as_systemd_does() {
        let pair = |k: &str, v: &str| (k.to_owned(), v.to_owned());
        assert_eq!(
            parse("A=1\nnot an assignment\n1A=x\nB=2\n"),
            Ok((vec![pair("A", "1"), pair("B", "2")], vec![2, 3]))
        );
    }

    #[test]
    fn a_quote_that_never_closes_is_named_by_its_line() {
        assert_eq!(parse("A=1\nB=\"unclosed\n"), Err(2));
    }
}
