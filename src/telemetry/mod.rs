//! Logs (through `log` and env_logger) and metrics (Prometheus).

pub mod metrics;

pub use metrics::Metrics;

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

/// Starts logging to stderr with `filter` (env_logger syntax). Safe to call
/// more than once: later calls are ignored, as tests start many servers.
pub fn init(filter: &str, format: LogFormat) {
    let mut builder = env_logger::Builder::new();
    builder.parse_filters(filter).format_timestamp_millis();
    if format == LogFormat::Json {
        builder.format(|buf, record| {
            let line = serde_json::json!({
                "ts": buf.timestamp_millis().to_string(),
                "level": record.level().as_str(),
                "target": record.target(),
                "message": record.args().to_string(),
            });
            writeln!(buf, "{line}")
        });
    }
    let _ = builder.try_init();
}
