//! Logs (through `log` and env_logger) and metrics (Prometheus).

pub mod audit;
pub mod metrics;
pub mod process;
pub mod untrusted;

pub use metrics::Metrics;
pub use untrusted::Untrusted;

use std::io::Write;

/// How log lines look.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    /// `[time LEVEL target] message`, for people.
    Text,
    /// One JSON object per line (`ts`, `level`, `target`, `message`), for
    /// journald and log shippers.
    Json,
}

/// Starts logging to stderr with `filter` (env_logger syntax, checked by
/// [`crate::config::log_filter`] first). Safe to call more than once: later
/// calls are ignored, as tests start many servers.
///
/// Every record is one line: line-based collectors (journald, the
/// CloudWatch agent) would cut a message that spans lines (libpq's errors
/// do) into records of their own. JSON escapes newlines already; text
/// folds them with [`one_line`].
///
/// When stderr is the systemd journal (a unit's default), each line starts
/// with its syslog priority (`<3>` error, `<4>` warning, `<6>` info, `<7>`
/// debug): journald takes it off and records the priority, so
/// `journalctl -p warning -u pez` finds PEZ's warnings and errors. Without
/// it every line would be recorded at the stream's default, info.
pub fn init(filter: &str, format: LogFormat) {
    let mut builder = env_logger::Builder::new();
    builder.parse_filters(filter).format_timestamp_millis();
    let journal = stderr_is_journal();
    let prefix = move |level| if journal { priority(level) } else { "" };
    match format {
        LogFormat::Json => {
            builder.format(move |buf, record| {
                let line = serde_json::json!({
                    "ts": buf.timestamp_millis().to_string(),
                    "level": record.level().as_str(),
                    "target": record.target(),
                    "message": record.args().to_string(),
                });
                writeln!(buf, "{}{line}", prefix(record.level()))
            });
        }
        // env_logger's own text format (its colours on a terminal), with
        // the priority in front and the message on one line.
        LogFormat::Text => {
            builder.format(move |buf, record| {
                let style = buf.default_level_style(record.level());
                writeln!(
                    buf,
                    "{}[{} {style}{:<5}{style:#} {}] {}",
                    prefix(record.level()),
                    buf.timestamp_millis(),
                    record.level(),
                    record.target(),
                    one_line(&record.args().to_string())
                )
            });
        }
    }
    let _ = builder.try_init();
}

/// `text` on one line: each line trimmed, empty ones dropped, the rest
/// joined by ` | ` (libpq's `...failed: Connection refused\n\tIs the server
/// running...?` reads as one sentence that way).
pub fn one_line(text: &str) -> std::borrow::Cow<'_, str> {
    if !text.contains(['\n', '\r']) {
        return text.into();
    }
    text.lines()
        .flat_map(|line| line.split('\r'))
        .map(str::trim)
        .filter(|line| !line.is_empty())
        .collect::<Vec<_>>()
        .join(" | ")
        .into()
}

/// The prefix of a line pez writes to stderr itself (`pez: ...` when it
/// exits on an error): `<3>` when stderr is the journal, so the line is
/// recorded as an error; nothing otherwise.
pub fn error_prefix() -> &'static str {
    if stderr_is_journal() { "<3>" } else { "" }
}

/// The sd-daemon priority prefix of a log level (syslog's numbers).
fn priority(level: log::Level) -> &'static str {
    match level {
        log::Level::Error => "<3>",
        log::Level::Warn => "<4>",
        log::Level::Info => "<6>",
        log::Level::Debug | log::Level::Trace => "<7>",
    }
}

/// Whether stderr is the journal: systemd sets `$JOURNAL_STREAM` to the
/// `device:inode` of the stream it connected, and a child whose stderr was
/// redirected since inherits the variable but not the stream.
fn stderr_is_journal() -> bool {
    use std::os::unix::fs::MetadataExt;
    let Some(stream) = std::env::var_os("JOURNAL_STREAM") else {
        return false;
    };
    match std::fs::metadata("/proc/self/fd/2") {
        Ok(stderr) => stream.to_string_lossy() == format!("{}:{}", stderr.dev(), stderr.ino()),
        Err(_) => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_message_of_many_lines_is_folded_to_one() {
        assert_eq!(one_line("plain"), "plain");
        assert_eq!(
            one_line("failed: refused\n\tIs the server running?\n"),
            "failed: refused | Is the server running?"
        );
        assert_eq!(one_line("a\r\nb\rc\n\n"), "a | b | c");
    }

    #[test]
    fn each_level_has_its_syslog_priority() {
        assert_eq!(priority(log::Level::Error), "<3>");
        assert_eq!(priority(log::Level::Warn), "<4>");
        assert_eq!(priority(log::Level::Info), "<6>");
        assert_eq!(priority(log::Level::Debug), "<7>");
        assert_eq!(priority(log::Level::Trace), "<7>");
    }
}
