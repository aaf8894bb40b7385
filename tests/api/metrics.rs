//! Issue 18, metrics: every series from the first scrape, the standard
//! `process_*` metrics, per sequence the numbers left and the time until
//! they run out, and `pez_ready` as /readyz says.

use crate::helpers::{HttpClient, TestApp};
use diesel::Connection;
use diesel::connection::SimpleConnection;
use hyper::Method;
use pez::config::{Secret, Settings};
use std::collections::BTreeSet;
use std::time::Duration;

const ADMIN: &str = "Bearer metrics-admin";

fn with_admin(settings: &mut Settings) {
    settings.access.admin = Some(Secret::new("metrics-admin".into()));
}

/// GET /metrics with the admin token (which also reads the metrics).
pub async fn scrape(http: &HttpClient) -> String {
    let answer = http
        .send(Method::GET, "/metrics", &[("authorization", ADMIN)], None)
        .await;
    assert_eq!(answer.status, 200, "{}", answer.body);
    answer.body
}

/// The value of the series `series` (name and labels, as exposed).
fn value(text: &str, series: &str) -> Option<String> {
    text.lines()
        .find_map(|line| line.strip_prefix(series)?.strip_prefix(' '))
        .map(str::to_owned)
}

/// Every metric name written as a string literal in `src/telemetry/`: the
/// families PEZ's code declares.
fn families_in_the_code() -> BTreeSet<String> {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src/telemetry");
    let mut names = BTreeSet::new();
    for entry in std::fs::read_dir(dir).expect("src/telemetry") {
        let text = std::fs::read_to_string(entry.expect("entry").path()).expect("read");
        for literal in text.split('"').skip(1).step_by(2) {
            let is_name = (literal.starts_with("pez_") || literal.starts_with("process_"))
                && literal
                    .chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
            if is_name {
                names.insert(literal.to_owned());
            }
        }
    }
    names
}

/// Point 1: a fresh server's first scrape has every family the code
/// declares, and the series of every label value known at start at zero
/// (store errors by operation, requests by route and status, leases by
/// sequence and outcome) instead of leaving them absent until they happen.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_first_scrape_has_every_series_at_zero() {
    let app = TestApp::spawn_with(|_| {}).await;
    let text = app.get("/metrics").await.body;
    let mut families = families_in_the_code();
    for new in [
        "pez_ready",
        "pez_sequence_remaining",
        "pez_sequence_exhaustion_seconds",
        "pez_store_errors_total",
        "process_cpu_seconds_total",
        "process_resident_memory_bytes",
        "process_virtual_memory_bytes",
        "process_open_fds",
        "process_max_fds",
        "process_start_time_seconds",
    ] {
        families.insert(new.to_owned());
    }
    let missing: Vec<_> = families
        .iter()
        .filter(|name| !text.contains(&format!("# TYPE {name} ")))
        .collect();
    assert!(missing.is_empty(), "missing {missing:?} in\n{text}");
    for series in [
        r#"pez_store_errors_total{operation="reserve"}"#,
        r#"pez_store_errors_total{operation="give_back"}"#,
        r#"pez_store_errors_total{operation="restart"}"#,
        r#"pez_http_requests_total{route="/v1/forward",status="503"}"#,
        r#"pez_http_requests_total{route="/v2/sequences/{name}/lease",status="409"}"#,
        r#"pez_leases_total{outcome="error",sequence="forward"}"#,
        r#"pez_leases_total{outcome="exhausted",sequence="reverse"}"#,
    ] {
        assert_eq!(
            value(&text, series).as_deref(),
            Some("0"),
            "{series}:\n{text}"
        );
    }
    assert!(
        value(
            &text,
            r#"pez_lease_duration_seconds_count{sequence="reverse"}"#
        )
        .is_some(),
        "{text}"
    );
}

/// Point 2: the process metrics of the Prometheus client conventions, with
/// plausible values read from /proc/self.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_standard_process_metrics_are_exposed() {
    let app = TestApp::spawn_with(|_| {}).await;
    // CPU time counts in clock ticks (10 ms): a start that fast reads 0.
    // Work until /proc says this process used two ticks (bounded), so the
    // metric below has something to show.
    let ticks = || -> u64 {
        let stat = std::fs::read_to_string("/proc/self/stat").expect("stat");
        let after_name = &stat[stat.rfind(')').expect("comm") + 2..];
        let fields: Vec<&str> = after_name.split_whitespace().collect();
        // utime and stime: fields 14 and 15 of proc(5), 12 and 13 here.
        fields[11].parse::<u64>().expect("utime") + fields[12].parse::<u64>().expect("stime")
    };
    let busy = std::time::Instant::now();
    while ticks() < 2 && busy.elapsed() < Duration::from_secs(5) {
        std::hint::black_box((0..10_000u64).sum::<u64>());
    }
    let text = app.get("/metrics").await.body;
    let number = |name: &str| -> f64 {
        value(&text, name)
            .and_then(|v| v.parse().ok())
            .unwrap_or_else(|| panic!("{name} missing:\n{text}"))
    };
    let fds = std::fs::read_dir("/proc/self/fd").expect("fds").count() as f64;
    assert!(number("process_open_fds") >= 3.0);
    // This test process is the server's: its own count is close.
    assert!((number("process_open_fds") - fds).abs() < 200.0);
    assert!(number("process_max_fds") >= number("process_open_fds"));
    assert!(number("process_resident_memory_bytes") > 1_000_000.0);
    assert!(number("process_virtual_memory_bytes") >= number("process_resident_memory_bytes"));
    assert!(number("process_cpu_seconds_total") > 0.0);
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_secs_f64();
    let started = number("process_start_time_seconds");
    assert!(
        started <= now + 1.0 && started > now - 3600.0,
        "{started} vs {now}"
    );
}

/// Point 3: per sequence, the numbers left before it wraps or runs out, for
/// an ascending and a descending sequence with tight bounds, and the time
/// until then: +Inf for a sequence nobody takes from.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn remaining_numbers_and_time_to_exhaustion_are_exact_for_a_small_sequence() {
    let app = TestApp::spawn_with(with_admin).await;
    for (name, body) in [
        ("up", r#"{"min": 11, "max": 110, "cycle": false}"#),
        (
            "down",
            r#"{"direction": "descending", "min": 1, "max": 50}"#,
        ),
        ("idle", r#"{"min": 5, "max": 9}"#),
    ] {
        let created = app
            .http
            .send(
                Method::PUT,
                &format!("/v2/sequences/{name}"),
                &[("authorization", ADMIN)],
                Some(body),
            )
            .await;
        assert_eq!(created.status, 201, "{}", created.body);
    }
    assert_eq!(
        app.numbers("/v2/sequences/up/next?count=7").await,
        (11..=17).collect::<Vec<_>>()
    );
    assert_eq!(
        app.numbers("/v2/sequences/down/next?count=3").await,
        vec![50, 49, 48]
    );
    let text = scrape(&app.http).await;
    for (series, expected) in [
        (r#"pez_sequence_remaining{sequence="up"}"#, "93"),
        (r#"pez_sequence_remaining{sequence="down"}"#, "47"),
        (r#"pez_sequence_remaining{sequence="idle"}"#, "5"),
        (
            r#"pez_sequence_exhaustion_seconds{sequence="idle"}"#,
            "+Inf",
        ),
    ] {
        assert_eq!(
            value(&text, series).as_deref(),
            Some(expected),
            "{series}:\n{text}"
        );
    }
    // The rest of `up`: nothing left, no time left.
    assert_eq!(
        app.numbers("/v2/sequences/up/next?count=93").await.len(),
        93
    );
    let text = scrape(&app.http).await;
    assert_eq!(
        value(&text, r#"pez_sequence_remaining{sequence="up"}"#).as_deref(),
        Some("0"),
        "{text}"
    );
    assert_eq!(
        value(&text, r#"pez_sequence_exhaustion_seconds{sequence="up"}"#).as_deref(),
        Some("0"),
        "{text}"
    );
}

/// Point 4: `pez_ready` is 1 while /readyz answers 200 and 0 while it
/// answers 503 (the store locked by another writer).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pez_ready_follows_readyz() {
    let app = TestApp::spawn_with(|s| {
        s.block_min = 200;
        s.block_max = 200;
        s.store_timeout = Duration::from_millis(20);
        s.lease_wait = Duration::from_millis(50);
    })
    .await;
    assert_eq!(app.get("/readyz").await.status, 200);
    let text = app.get("/metrics").await.body;
    assert_eq!(value(&text, "pez_ready").as_deref(), Some("1"), "{text}");
    let mut blocker = diesel::SqliteConnection::establish(&app.database_file().to_string_lossy())
        .expect("open the store's file");
    blocker.batch_execute("BEGIN IMMEDIATE").expect("lock");
    while app.get("/v2/forward?count=100").await.status == 200 {}
    assert_eq!(app.get("/readyz").await.status, 503);
    let text = app.get("/metrics").await.body;
    assert_eq!(value(&text, "pez_ready").as_deref(), Some("0"), "{text}");
    assert_ne!(
        value(&text, r#"pez_store_errors_total{operation="reserve"}"#).as_deref(),
        Some("0"),
        "{text}"
    );
    blocker.batch_execute("ROLLBACK").expect("unlock");
}
