//! Text a client sent, made fit for a log line.
//!
//! A request's path (or anything else from a request) may be 8 KiB long and
//! hold control characters: raw C1 ones in UTF-8 (hyper accepts them in a
//! path), which a terminal reading the text log may obey (CSI), and which
//! some readers take for a line break (NEL). Logged as it is, it could forge
//! or hide lines. [`Untrusted`] escapes every control character (`\n`,
//! `\u{9b}`) and a backslash, so the escapes cannot be forged either, and
//! keeps the first [`MAX_LOGGED_CHARS`] characters, saying how many bytes
//! it left out.

use std::fmt;

/// At most this many characters of a client's text go into a log line.
pub const MAX_LOGGED_CHARS: usize = 200;

/// Displays a client's text escaped and capped; see the module's doc.
#[derive(Debug, Clone, Copy)]
pub struct Untrusted<'a>(pub &'a str);

impl fmt::Display for Untrusted<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let text = self.0;
        for (shown, (at, c)) in text.char_indices().enumerate() {
            if shown == MAX_LOGGED_CHARS {
                return write!(f, "... ({} more bytes)", text.len() - at);
            }
            if c.is_control() || c == '\\' || c == '\u{2028}' || c == '\u{2029}' {
                write!(f, "{}", c.escape_default())?;
            } else {
                write!(f, "{c}")?;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn control_characters_and_backslashes_are_escaped() {
        assert_eq!(
            Untrusted("/a\nb\r\u{1b}[2J\u{9b}31m\u{85}\\n\u{7f}").to_string(),
            "/a\\nb\\r\\u{1b}[2J\\u{9b}31m\\u{85}\\\\n\\u{7f}"
        );
        assert_eq!(Untrusted("/v2/sequences/é").to_string(), "/v2/sequences/é");
    }

    #[test]
    fn long_text_is_cut_and_says_how_much_is_left_out() {
        let long = "é".repeat(MAX_LOGGED_CHARS + 10);
        let shown = Untrusted(&long).to_string();
        assert_eq!(
            shown,
            format!("{}... (20 more bytes)", "é".repeat(MAX_LOGGED_CHARS))
        );
        let exact = "x".repeat(MAX_LOGGED_CHARS);
        assert_eq!(Untrusted(&exact).to_string(), exact);
    }
}
