//! How numbers are written: JSON numbers (the original's, and the default),
//! JSON strings, or plain decimal text, one per line.
//!
//! JavaScript's `JSON.parse` reads integers exactly only up to 2^53, and
//! every number of `reverse` is above it; `?format=string` and
//! `Accept: text/plain` (or `?format=text`) give such clients exact values.

use super::handlers::Answer;
use super::problem::ApiError;
use super::query;
use crate::sequence::Block;
use bytes::Bytes;
use hyper::header::{self, HeaderValue};
use hyper::{Response, StatusCode};
use std::fmt::Write as _;

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
            return match asked.as_str() {
                "json" => Ok(Format::Json),
                "string" => Ok(Format::String),
                "text" => Ok(Format::Text),
                _ => Err(ApiError::InvalidFormat { given: asked }),
            };
        }
        Ok(match accept {
            Some(accept) if prefers_text(accept) => Format::Text,
            _ => Format::Json,
        })
    }

    fn content_type(self) -> &'static str {
        match self {
            Format::Json | Format::String => "application/json",
            Format::Text => "text/plain; charset=utf-8",
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
    let body = match format {
        Format::Json => number.to_string(),
        Format::String => format!("\"{number}\""),
        Format::Text => format!("{number}\n"),
    };
    ok(body, format)
}

/// `count` numbers as a list, formatted like the original's JSON
/// (`[30011, 30012]`: Python's json.dumps puts a space after each comma).
pub fn list(runs: &[Block], count: u64, format: Format) -> Answer {
    ok(list_body(runs, count, format), format)
}

fn list_body(runs: &[Block], count: u64, format: Format) -> String {
    // 19 digits and 4 more characters per number at most.
    let mut out = String::with_capacity(2 + 23 * count as usize);
    if format != Format::Text {
        out.push('[');
    }
    for (i, number) in runs.iter().flat_map(Block::iter).enumerate() {
        let _ = match format {
            Format::Json if i > 0 => write!(out, ", {number}"),
            Format::Json => write!(out, "{number}"),
            Format::String if i > 0 => write!(out, ", \"{number}\""),
            Format::String => write!(out, "\"{number}\""),
            Format::Text => writeln!(out, "{number}"),
        };
    }
    if format != Format::Text {
        out.push(']');
    }
    out
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

fn ok(body: String, format: Format) -> Answer {
    let mut response = Response::new(Bytes::from(body));
    *response.status_mut() = StatusCode::OK;
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(format.content_type()),
    );
    response
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sequence::Direction;

    #[test]
    fn lists_look_like_the_originals_and_the_other_formats_are_exact() {
        let runs = [
            Block::new(9223372036854775806, Direction::Ascending, 2),
            Block::new(1, Direction::Ascending, 1),
        ];
        assert_eq!(
            list_body(&runs, 3, Format::Json),
            "[9223372036854775806, 9223372036854775807, 1]"
        );
        assert_eq!(
            list_body(&runs, 3, Format::String),
            r#"["9223372036854775806", "9223372036854775807", "1"]"#
        );
        assert_eq!(
            list_body(&runs, 3, Format::Text),
            "9223372036854775806\n9223372036854775807\n1\n"
        );
        assert_eq!(list_body(&runs[2..], 0, Format::Json), "[]");
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
