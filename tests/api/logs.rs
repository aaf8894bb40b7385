//! What the log says, and how: one record per line, a filter that parses,
//! unknown settings named, a start line that says what runs, and no line
//! per lease at info.

use crate::helpers::{PezProcess, TempDir, pez_command, the_error_line};
use crate::postgres_support::TestDatabase;
use hyper::Method;
use std::time::Duration;

/// Whether `line` is one whole record: a log line (`[time LEVEL target]
/// message`) or pez's own last words (`pez: ...`).
fn is_a_record(line: &str) -> bool {
    line.starts_with('[') || line.starts_with("pez: ")
}

#[test]
fn a_multi_line_store_error_stays_one_record_per_line() {
    let dir = TempDir::new();
    // Nothing listens on port 1: libpq answers "connection refused" with a
    // second line ("Is the server running on that host ...?").
    let output = pez_command(dir.path())
        .env("PEZ_DATABASE_URL", "postgresql://pezuser@127.0.0.1:1/pez")
        .env("PEZ_DB_STARTUP_TIMEOUT_MS", "600")
        .env("PEZ_LISTEN", "127.0.0.1:0")
        .output()
        .expect("run pez");
    assert!(!output.status.success(), "{output:?}");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("Is the server running"),
        "libpq's second line reaches the log: {stderr}"
    );
    for line in stderr.lines() {
        assert!(
            is_a_record(line),
            "a record broken over lines: {line:?}\n{stderr}"
        );
    }

    // A store whose path has a line break: in the start line, and in the
    // error of a store that cannot be made there (a file is in the way).
    let broken = dir.path().join("two\nlines");
    let pez = PezProcess::start(
        dir.path(),
        &[("PEZ_DATA_DIR", broken.to_str().expect("utf-8"))],
    );
    let log = pez.log();
    assert!(log.iter().any(|l| l.contains("two | lines")), "{log:?}");
    for line in &log {
        assert!(
            is_a_record(line),
            "a record broken over lines: {line:?}\n{log:?}"
        );
    }
    drop(pez);
    let in_the_way = dir.path().join("a\nfile");
    std::fs::write(&in_the_way, "").expect("write a file");
    let output = pez_command(dir.path())
        .env("PEZ_DATA_DIR", &in_the_way)
        .env("PEZ_LISTEN", "127.0.0.1:0")
        .output()
        .expect("run pez");
    assert!(!output.status.success(), "{output:?}");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("a | file"), "{stderr}");
    for line in stderr.lines() {
        assert!(
            is_a_record(line),
            "a record broken over lines: {line:?}\n{stderr}"
        );
    }
}

#[tokio::test]
async fn a_multi_line_error_from_postgresql_stays_one_record_per_line() {
    let database = TestDatabase::create();
    let dir = TempDir::new();
    let pez = PezProcess::start(
        dir.path(),
        &[
            ("PEZ_DATABASE_URL", database.url.as_str()),
            ("PEZ_ADMIN_TOKEN", "multi-line-admin"),
        ],
    );
    // The store's answer to a create: an error of three lines, as
    // PostgreSQL's own (with DETAIL and HINT) and libpq's are.
    database.execute(
        "CREATE FUNCTION pez.refuse() RETURNS trigger LANGUAGE plpgsql AS $$
         BEGIN RAISE EXCEPTION E'refused by a trigger\\nsecond line\\n\\tthird line'; END $$;
         CREATE TRIGGER refuse BEFORE INSERT ON pez.sequences
         FOR EACH ROW EXECUTE FUNCTION pez.refuse();",
    );
    let answer = pez
        .http
        .send(
            Method::PUT,
            "/v2/sequences/refused",
            &[("authorization", "Bearer multi-line-admin")],
            Some("{}"),
        )
        .await;
    assert!(answer.status.is_server_error(), "{answer:?}");
    let log = pez.log();
    assert!(
        log.iter().any(|l| l.contains("second line | third line")),
        "the error reaches the log, folded: {log:?}"
    );
    for line in &log {
        assert!(
            is_a_record(line),
            "a record broken over lines: {line:?}\n{log:?}"
        );
    }
}

#[test]
fn a_log_filter_that_does_not_parse_is_refused_by_name() {
    let dir = TempDir::new();
    for bad in ["inof", "pez=loud", "info/(", "info/a/b"] {
        let output = pez_command(dir.path())
            .env("PEZ_LOG", bad)
            .arg("settings")
            .output()
            .expect("run pez");
        let line = the_error_line(&output);
        assert!(
            line.contains("PEZ_LOG") && line.contains(&format!("{bad:?}")),
            "{bad}: {line}"
        );
    }
    let output = pez_command(dir.path())
        .env("PEZ_LOG", "inof")
        .arg("settings")
        .output()
        .expect("run pez");
    assert!(
        the_error_line(&output).starts_with("pez: PEZ_LOG must be info or another log filter"),
        "suggests info"
    );
    for good in [
        "info",
        "warn,pez::dispenser::leaser=debug",
        "pez=debug/lease",
        "off",
    ] {
        let output = pez_command(dir.path())
            .env("PEZ_LOG", good)
            .arg("settings")
            .output()
            .expect("run pez");
        assert!(output.status.success(), "{good}: {output:?}");
    }
}

#[test]
fn unknown_pez_variables_are_named_at_start_and_by_pez_settings() {
    let dir = TempDir::new();
    let output = pez_command(dir.path())
        .env("PEZ_BLOK_SIZE", "500")
        .env("PEZ_ENV_FILE", "")
        .arg("settings")
        .output()
        .expect("run pez");
    assert!(output.status.success(), "{output:?}");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let unknown: Vec<&str> = stdout
        .lines()
        .filter(|l| l.contains("PEZ_BLOK_SIZE"))
        .collect();
    assert_eq!(unknown.len(), 1, "{stdout}");
    assert!(unknown[0].starts_with('#'), "a comment: {stdout}");
    assert!(
        unknown[0].contains("PEZ_BLOCK_SIZE"),
        "the closest name: {stdout}"
    );
    assert!(
        !stdout.contains("PEZ_ENV_FILE"),
        "a known variable: {stdout}"
    );

    let pez = PezProcess::start(dir.path(), &[("PEZ_BLOK_SIZE", "500")]);
    let log = pez.log();
    assert!(
        log.iter().any(|l| l.contains("WARN")
            && l.contains("PEZ_BLOK_SIZE")
            && l.contains("PEZ_BLOCK_SIZE")),
        "{log:?}"
    );
}

#[test]
fn the_start_line_says_what_runs_where() {
    let dir = TempDir::new();
    let pez = PezProcess::start(
        dir.path(),
        &[
            ("PEZ_ADMIN_TOKEN", "adm1n-secret"),
            ("PEZ_TOKENS", "tok-a,tok-b"),
            ("PEZ_METRICS_TOKENS", "prom"),
        ],
    );
    let log = pez.log();
    let start = log
        .iter()
        .find(|l| l.contains("listening on"))
        .expect("a start line");
    for part in [
        pez::VERSION.to_owned(),
        format!("http://{}", pez.http.addr()),
        "store: sqlite".to_owned(),
        "admin API on".to_owned(),
        "PEZ_TOKENS 2,".to_owned(),
        "PEZ_LEASE_TOKENS 0,".to_owned(),
        "PEZ_METRICS_TOKENS 1)".to_owned(),
    ] {
        assert!(start.contains(&part), "{part:?} missing: {start}");
    }
    assert!(
        !start.contains("secret") && !start.contains("tok-"),
        "{start}"
    );

    let open = TempDir::new();
    let pez = PezProcess::start(open.path(), &[]);
    let log = pez.log();
    let start = log
        .iter()
        .find(|l| l.contains("listening on"))
        .expect("start");
    assert!(start.contains("admin API off"), "{start}");
}

#[tokio::test]
async fn leases_of_blocks_are_not_logged_at_info() {
    let dir = TempDir::new();
    let mut pez = PezProcess::start(dir.path(), &[("PEZ_BLOCK_SIZE", "200")]);
    for _ in 0..3 {
        assert_eq!(
            pez.http
                .get("/v2/sequences/forward/next?count=100")
                .await
                .status,
            200
        );
    }
    pez.terminate();
    pez.wait_exit(Duration::from_secs(10));
    let log = pez.log();
    assert!(
        !log.iter().any(|l| l.contains(": leased ")),
        "a line per lease at info: {log:?}"
    );
    // At debug for the leaser's module, they are there.
    let debug = TempDir::new();
    let pez = PezProcess::start(
        debug.path(),
        &[("PEZ_LOG", "info,pez::dispenser::leaser=debug")],
    );
    let log = pez.log();
    assert!(
        log.iter().any(|l| l.contains("forward: leased ")),
        "{log:?}"
    );
}
