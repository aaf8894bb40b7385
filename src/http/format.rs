//! How numbers are written: JSON numbers (the original's, and the default),
//! JSON strings, or plain decimal text, one per line.
//!
//! JavaScript's `JSON.parse` reads integers exactly only up to 2^53, and
//! every number of `reverse` is above it; `?format=string` and
//! `Accept: text/plain` (or `?format=text`) give such clients exact values.

use super::answer::Answer;
use super::problem::ApiError;
use super::query;
use crate::sequence::{Block, Direction};
use bytes::Bytes;
use hyper::header::{self, HeaderValue};
use hyper::{Response, StatusCode};

/// The representation of a dispensing response.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// JSON numbers: `7` (v1) or `[7, 8]`.
    Json,
    /// JSON strings: `"7"` (v1) or `["7", "8"]`.
    String,
    /// Decimal text, one number per line.
    Text,
}

impl Format {
    /// `?format=` wins; otherwise `Accept` chooses text/plain only when it
    /// prefers it to JSON; otherwise JSON.
    pub fn negotiate(query: Option<&str>, accept: Option<&str>) -> Result<Self, ApiError> {
        if let Some(asked) = query.and_then(|q| query::param(q, "format")) {
            return match &*asked {
                "json" => Ok(Format::Json),
                "string" => Ok(Format::String),
                "text" => Ok(Format::Text),
                _ => Err(ApiError::InvalidFormat {
                    given: asked.into_owned(),
                }),
            };
        }
        Ok(match accept {
            Some(accept) if prefers_text(accept) => Format::Text,
            _ => Format::Json,
        })
    }

    /// Built once, at compile time: `from_static` checks every byte when
    /// it runs, and this is on every answer.
    fn content_type(self) -> HeaderValue {
        const JSON: HeaderValue = HeaderValue::from_static("application/json");
        const TEXT: HeaderValue = HeaderValue::from_static("text/plain; charset=utf-8");
        match self {
            Format::Json | Format::String => JSON,
            Format::Text => TEXT,
        }
    }
}

/// Whether an Accept header ranks text/plain above every JSON type.
fn prefers_text(accept: &str) -> bool {
    let (mut text, mut json) = (0.0f32, 0.0f32);
    for range in accept.split(',') {
        let mut parts = range.split(';').map(str::trim);
        let media = parts.next().unwrap_or_default().to_ascii_lowercase();
        let quality = parts
            .filter_map(|p| p.strip_prefix("q="))
            .find_map(|q| q.parse::<f32>().ok())
            .unwrap_or(1.0);
        match media.as_str() {
            "text/plain" | "text/*" => text = text.max(quality),
            "application/json" | "application/*" | "*/*" => json = json.max(quality),
            _ => {}
        }
    }
    text > json
}

/// One number (v1).
pub fn single(number: i64, format: Format) -> Answer {
    let mut body = Vec::with_capacity(22);
    match format {
        Format::Json => push_decimal(&mut body, number),
        Format::String => {
            body.push(b'"');
            push_decimal(&mut body, number);
            body.push(b'"');
        }
        Format::Text => {
            push_decimal(&mut body, number);
            body.push(b'\n');
        }
    }
    ok(body, format)
}

/// `count` numbers as a list, formatted like the original's JSON
/// (`[30011, 30012]`: Python's json.dumps puts a space after each comma).
pub fn list(runs: &[Block], count: u64, format: Format) -> Answer {
    ok(list_body(runs, count, format), format)
}

fn list_body(runs: &[Block], count: u64, format: Format) -> Vec<u8> {
    // What goes before each number but the first, and after each.
    let (before, after): (&'static [u8], &'static [u8]) = match format {
        Format::Json => (b", ", b""),
        Format::String => (b", \"", b"\""),
        Format::Text => (b"", b"\n"),
    };
    // The first number goes without `before`, but a string keeps its quote.
    let lead = usize::from(format == Format::String);
    // 19 digits and 4 more characters per number at most, and the slack
    // every copy of a whole window may write past its end.
    let mut out = Vec::with_capacity(2 + 23 * count as usize + WINDOW);
    if format != Format::Text {
        out.push(b'[');
    }
    let mut first = true;
    for run in runs {
        // A run counts by one: its numbers are written by stepping the
        // decimal digits of the previous one, not by formatting each.
        let mut digits = Digits::new(run.first, before, after);
        if first {
            digits.append_first(&mut out, lead);
            first = false;
        } else {
            digits.append(&mut out);
        }
        // One loop per direction: the step is inlined into each.
        match run.direction {
            Direction::Ascending => {
                for _ in 1..run.len() {
                    digits.up();
                    digits.append(&mut out);
                }
            }
            Direction::Descending => {
                for _ in 1..run.len() {
                    digits.down();
                    digits.append(&mut out);
                }
            }
        }
    }
    if format != Format::Text {
        out.push(b']');
    }
    out
}

/// The size of every copy of a number with what goes around it: at least
/// the most they take (19 digits and 4 more), rounded up to 32.
const WINDOW: usize = 32;

/// Where a number's digits end in [`Digits::buffer`]; what goes after it
/// follows.
const DIGITS_END: usize = 24;

/// The decimal digits of a number of a sequence (at least 1), stepped by
/// one in place, with what goes before and after them in a list around
/// them, so that a number and its separators are one copy.
struct Digits {
    /// `before`, the digits and `after`; room for a whole [`WINDOW`] from
    /// any start.
    buffer: [u8; DIGITS_END + WINDOW],
    /// Where the digits start; they end at [`DIGITS_END`].
    start: usize,
    before: &'static [u8],
    after: usize,
}

impl Digits {
    fn new(number: i64, before: &'static [u8], after: &'static [u8]) -> Self {
        let mut written = Vec::with_capacity(20);
        push_decimal(&mut written, number.max(1));
        let mut buffer = [b'0'; DIGITS_END + WINDOW];
        let start = DIGITS_END - written.len();
        buffer[start..DIGITS_END].copy_from_slice(&written);
        buffer[DIGITS_END..DIGITS_END + after.len()].copy_from_slice(after);
        let mut digits = Self {
            buffer,
            start,
            before,
            after: after.len(),
        };
        digits.write_before();
        digits
    }

    fn write_before(&mut self) {
        let at = self.start - self.before.len();
        self.buffer[at..self.start].copy_from_slice(self.before);
    }

    /// Appends the number with what goes before and after it.
    #[inline]
    fn append(&self, out: &mut Vec<u8>) {
        self.append_from(out, self.start - self.before.len());
    }

    /// Appends the number with what goes after it and the last `lead`
    /// bytes of what goes before.
    fn append_first(&self, out: &mut Vec<u8>, lead: usize) {
        self.append_from(out, self.start - lead);
    }

    /// Copies a whole [`WINDOW`] from `from`, a copy of fixed size that
    /// needs no call to `memcpy`, then drops what lies past the number's
    /// end (the list's capacity has room for it).
    #[inline]
    fn append_from(&self, out: &mut Vec<u8>, from: usize) {
        let window: &[u8; WINDOW] = self.buffer[from..from + WINDOW]
            .try_into()
            .expect("a window fits the buffer from any start");
        let len = DIGITS_END + self.after - from;
        out.extend_from_slice(window);
        out.truncate(out.len() - (WINDOW - len));
    }

    /// Adds one (20 digits hold more than the largest number, plus one).
    fn up(&mut self) {
        let mut at = DIGITS_END;
        while at > self.start {
            at -= 1;
            if self.buffer[at] == b'9' {
                self.buffer[at] = b'0';
            } else {
                self.buffer[at] += 1;
                return;
            }
        }
        self.start -= 1;
        self.buffer[self.start] = b'1';
        self.write_before();
    }

    /// Takes one away (from a number above 1: sequences stop at 1).
    fn down(&mut self) {
        let mut at = DIGITS_END;
        while at > self.start {
            at -= 1;
            if self.buffer[at] == b'0' {
                self.buffer[at] = b'9';
            } else {
                self.buffer[at] -= 1;
                break;
            }
        }
        if self.buffer[self.start] == b'0' && self.start < DIGITS_END - 1 {
            self.start += 1;
            self.write_before();
        }
    }
}

/// Appends `number` in decimal. By hand, two digits at a time: a v2 answer
/// writes a hundred numbers, and `core::fmt` took most of its time.
fn push_decimal(out: &mut Vec<u8>, number: i64) {
    const PAIRS: &[u8; 200] = b"0001020304050607080910111213141516171819\
        2021222324252627282930313233343536373839\
        4041424344454647484950515253545556575859\
        6061626364656667686970717273747576777879\
        8081828384858687888990919293949596979899";
    let mut digits = [0u8; 20];
    let mut at = digits.len();
    let mut rest = number.unsigned_abs();
    while rest >= 100 {
        let pair = (rest % 100) as usize * 2;
        rest /= 100;
        at -= 2;
        digits[at..at + 2].copy_from_slice(&PAIRS[pair..pair + 2]);
    }
    if rest >= 10 {
        let pair = rest as usize * 2;
        at -= 2;
        digits[at..at + 2].copy_from_slice(&PAIRS[pair..pair + 2]);
    } else {
        at -= 1;
        digits[at] = b'0' + rest as u8;
    }
    if number < 0 {
        out.push(b'-');
    }
    out.extend_from_slice(&digits[at..]);
}

/// A range lease: `{"ranges": [{"first": .., "last": ..}]}`, with strings
/// for `Format::String`, or `FIRST LAST` lines for `Format::Text`.
pub fn ranges(runs: &[Block], format: Format) -> Answer {
    let body = match format {
        Format::Text => runs
            .iter()
            .map(|b| format!("{} {}\n", b.first, b.last))
            .collect(),
        Format::Json | Format::String => {
            let quote = if format == Format::String { "\"" } else { "" };
            let items: Vec<String> = runs
                .iter()
                .map(|b| {
                    format!(
                        "{{\"first\": {quote}{}{quote}, \"last\": {quote}{}{quote}}}",
                        b.first, b.last
                    )
                })
                .collect();
            format!("{{\"ranges\": [{}]}}", items.join(", "))
        }
    };
    ok(body, format)
}

fn ok(body: impl Into<Bytes>, format: Format) -> Answer {
    let mut response = Response::new(body.into());
    *response.status_mut() = StatusCode::OK;
    response
        .headers_mut()
        .insert(header::CONTENT_TYPE, format.content_type());
    response
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// A list as `format!` writes it, for comparison.
    fn list_by_formatting(runs: &[Block], format: Format) -> String {
        let numbers: Vec<i64> = runs.iter().flat_map(Block::iter).collect();
        match format {
            Format::Json => format!(
                "[{}]",
                numbers
                    .iter()
                    .map(i64::to_string)
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
            Format::String => format!(
                "[{}]",
                numbers
                    .iter()
                    .map(|n| format!("\"{n}\""))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
            Format::Text => numbers.iter().map(|n| format!("{n}\n")).collect(),
        }
    }

    /// A run that starts near a power of ten (where the digits grow or
    /// shrink), either way, within 1..=i64::MAX.
    fn run() -> impl Strategy<Value = Block> {
        (0u32..19, -30i64..30, any::<bool>(), 1u64..60).prop_map(|(power, offset, up, len)| {
            let first = 10i64.pow(power).saturating_add(offset).clamp(1, i64::MAX);
            if up {
                let len = len.min((i64::MAX - first) as u64 + 1);
                Block::new(first, Direction::Ascending, len)
            } else {
                Block::new(first, Direction::Descending, len.min(first as u64))
            }
        })
    }

    proptest! {
        #[test]
        fn lists_are_written_as_format_writes_them(
            runs in prop::collection::vec(run(), 0..4),
            format in prop::sample::select(vec![Format::Json, Format::String, Format::Text]),
        ) {
            let count = runs.iter().map(Block::len).sum();
            let written = String::from_utf8(list_body(&runs, count, format)).unwrap();
            prop_assert_eq!(written, list_by_formatting(&runs, format));
        }
    }

    #[test]
    fn lists_look_like_the_originals_and_the_other_formats_are_exact() {
        let runs = [
            Block::new(9223372036854775806, Direction::Ascending, 2),
            Block::new(1, Direction::Ascending, 1),
        ];
        assert_eq!(
            list_body(&runs, 3, Format::Json),
            b"[9223372036854775806, 9223372036854775807, 1]"
        );
        assert_eq!(
            list_body(&runs, 3, Format::String),
            br#"["9223372036854775806", "9223372036854775807", "1"]"#
        );
        assert_eq!(
            list_body(&runs, 3, Format::Text),
            b"9223372036854775806\n9223372036854775807\n1\n"
        );
        assert_eq!(list_body(&runs[2..], 0, Format::Json), b"[]");
    }

    #[test]
    fn stepping_the_digits_counts_like_arithmetic() {
        for (first, direction) in [
            (1, Direction::Ascending),
            (95, Direction::Ascending),
            (9_999_990, Direction::Ascending),
            (9223372036854775000, Direction::Ascending),
            (1005, Direction::Descending),
            (120, Direction::Descending),
            (9223372036854775807, Direction::Descending),
        ] {
            let block = Block::new(
                first,
                direction,
                800.min(if direction == Direction::Descending {
                    first as u64
                } else {
                    800
                }),
            );
            let expected: Vec<String> = block.iter().map(|n| n.to_string()).collect();
            assert_eq!(
                String::from_utf8(list_body(&[block], block.len(), Format::Text)).unwrap(),
                expected
                    .iter()
                    .map(|n| format!("{n}\n"))
                    .collect::<String>()
            );
            assert_eq!(
                String::from_utf8(list_body(&[block], block.len(), Format::Json)).unwrap(),
                format!("[{}]", expected.join(", "))
            );
        }
        assert_eq!(list_body(&[], 0, Format::String), b"[]");
        assert_eq!(list_body(&[], 0, Format::Text), b"");
    }

    #[test]
    fn decimals_are_written_as_display_writes_them() {
        let mut samples = vec![
            0,
            1,
            9,
            10,
            99,
            100,
            101,
            999,
            1000,
            123_456_789,
            i64::MAX,
            -1,
            -10,
            i64::MIN,
        ];
        samples.extend((0..19).map(|p| 10i64.pow(p)));
        samples.extend((1..19).map(|p| 10i64.pow(p) - 1));
        for number in samples {
            let mut out = Vec::new();
            push_decimal(&mut out, number);
            assert_eq!(String::from_utf8(out).unwrap(), number.to_string());
        }
    }

    #[test]
    fn the_format_parameter_wins_and_accept_must_prefer_text() {
        let negotiate = |q: Option<&str>, a: Option<&str>| Format::negotiate(q, a).unwrap();
        assert_eq!(negotiate(None, None), Format::Json);
        assert_eq!(negotiate(None, Some("text/plain")), Format::Text);
        assert_eq!(
            negotiate(None, Some("application/json, text/plain;q=0.5")),
            Format::Json
        );
        assert_eq!(negotiate(None, Some("text/plain, */*;q=0.1")), Format::Text);
        assert_eq!(negotiate(None, Some("*/*")), Format::Json);
        assert_eq!(
            negotiate(Some("format=string"), Some("text/plain")),
            Format::String
        );
        assert_eq!(negotiate(Some("count=2&format=text"), None), Format::Text);
        assert!(Format::negotiate(Some("format=xml"), None).is_err());
    }
}
