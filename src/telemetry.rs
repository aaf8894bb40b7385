//! Logging through `log` and env_logger, filtered by PEZ_LOG.

/// Starts logging to stderr with `filter` (env_logger syntax). Safe to call
/// more than once: later calls are ignored, as tests start many servers.
pub fn init(filter: &str) {
    let _ = env_logger::Builder::new()
        .parse_filters(filter)
        .format_timestamp_millis()
        .try_init();
}
