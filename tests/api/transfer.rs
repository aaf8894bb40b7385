//! Outgrowing one machine (`pez store copy`) and backups that cannot cause
//! a re-issue (`pez sequence export` and `import`): sequences only ever
//! move forward (issue 11).

use crate::helpers::{MAX, PezProcess, TempDir, pez_command, run_pez, run_pez_on, the_error_line};
use crate::postgres_support::TestDatabase;
use std::path::Path;
use std::time::Duration;

/// Like [`run_pez_on`], and it must succeed; its stdout.
fn ok(dir: &Path, url: Option<&str>, args: &[&str]) -> String {
    let output = run_pez_on(dir, url, args);
    assert!(output.status.success(), "pez {args:?}: {output:?}");
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// The NEXT column of `pez sequence list` for `name`.
fn next_of(dir: &Path, url: Option<&str>, name: &str) -> String {
    let listed = ok(dir, url, &["sequence", "list"]);
    listed
        .lines()
        .find(|line| line.split_whitespace().next() == Some(name))
        .and_then(|line| line.split_whitespace().nth(2))
        .unwrap_or_else(|| panic!("{name} missing: {listed}"))
        .to_owned()
}

/// Serves from the embedded store in `dir` for a moment, issuing numbers
/// of every kind, and stops cleanly (the unissued rest is given back).
async fn issue_some(dir: &Path) {
    let server = PezProcess::start(dir, &[]);
    for _ in 0..3 {
        assert_eq!(
            server.http.numbers("/v2/forward?count=100").await.len(),
            100
        );
    }
    assert_eq!(server.http.numbers("/v2/reverse?count=5").await.len(), 5);
    assert_eq!(
        server
            .http
            .numbers("/v2/sequences/orders/next?count=2")
            .await,
        vec![100, 101]
    );
    assert_eq!(
        server
            .http
            .numbers("/v2/sequences/tickets/next?count=10")
            .await,
        (1..=10).collect::<Vec<_>>()
    );
    server.terminate();
    let mut server = server;
    assert_eq!(server.wait_exit(Duration::from_secs(15)).0, Some(0));
}

fn create_named_sequences(dir: &Path) {
    ok(
        dir,
        None,
        &[
            "sequence", "create", "orders", "--mode", "strict", "--start", "100",
        ],
    );
    ok(
        dir,
        None,
        &[
            "sequence", "create", "tickets", "--max", "10", "--cycle", "false",
        ],
    );
}

/// Onto an empty database: every sequence arrives with its settings and
/// where it stood, PEZ on PostgreSQL goes on with the very next numbers, and
/// the embedded store refuses to serve again, naming where its sequences
/// went.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_embedded_store_is_copied_to_an_empty_database_and_retired() {
    let dir = TempDir::new();
    create_named_sequences(dir.path());
    issue_some(dir.path()).await;
    let database = TestDatabase::create();

    let copied = ok(dir.path(), None, &["store", "copy", "--to", &database.url]);
    assert!(
        copied.contains("forward: moved forward from 1 to 301"),
        "{copied}"
    );
    assert!(copied.contains("orders: created; next 102"), "{copied}");
    assert!(
        copied.contains("tickets: created; next the end (run out)"),
        "{copied}"
    );
    assert!(copied.contains("is marked as moved"), "{copied}");

    let server = PezProcess::start(dir.path(), &[("PEZ_DATABASE_URL", &database.url)]);
    assert_eq!(server.http.numbers("/v1/forward").await, vec![301]);
    assert_eq!(server.http.numbers("/v1/reverse").await, vec![MAX - 5]);
    assert_eq!(
        server.http.numbers("/v2/sequences/orders/next").await,
        vec![102]
    );
    assert_eq!(
        server.http.get("/v2/sequences/tickets/next").await.status,
        409
    );
    drop(server);

    // The embedded store is retired: a server refuses, with one line.
    let refused = the_error_line(&run_pez_on(dir.path(), None, &["--listen", "127.0.0.1:0"]));
    let host = database
        .url
        .split('@')
        .nth(1)
        .and_then(|rest| rest.split('/').next());
    assert!(
        refused.contains("retired") && refused.contains(host.expect("host in the URL")),
        "{refused}"
    );
    // Reading it is still fine.
    assert_eq!(next_of(dir.path(), None, "forward"), "301");
    // Copying again moves nothing back (the server above leased past 301
    // and was killed), and says so.
    let again = ok(dir.path(), None, &["store", "copy", "--to", &database.url]);
    assert!(again.contains("forward: stays at "), "{again}");
    assert!(!again.contains("moved forward"), "{again}");
}

/// Onto a database that went further: the target stays where it is and
/// the command says so; a sequence with other settings there refuses the
/// whole copy before anything moves, and leaves the embedded store in use.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_copy_never_moves_a_target_back_and_refuses_other_settings() {
    let dir = TempDir::new();
    ok(dir.path(), None, &["sequence", "restart", "forward", "301"]);
    ok(
        dir.path(),
        None,
        &["sequence", "restart", "reverse", "5000"],
    );
    let database = TestDatabase::create();
    let url = Some(database.url.as_str());
    let pg_dir = TempDir::new();
    ok(pg_dir.path(), url, &["migrate"]);
    ok(
        pg_dir.path(),
        url,
        &["sequence", "restart", "forward", "10001"],
    );
    ok(pg_dir.path(), url, &["sequence", "create", "orders"]);
    ok(
        dir.path(),
        None,
        &["sequence", "create", "orders", "--mode", "strict"],
    );

    let refused = the_error_line(&run_pez_on(
        dir.path(),
        None,
        &["store", "copy", "--to", &database.url],
    ));
    assert!(
        refused.contains("nothing changed") && refused.contains("orders"),
        "{refused}"
    );
    assert_eq!(next_of(pg_dir.path(), url, "reverse"), MAX.to_string());
    // Not moved: a server still starts on the embedded store (and stops
    // cleanly, giving back what it leased).
    let mut server = PezProcess::start(dir.path(), &[]);
    server.terminate();
    assert_eq!(server.wait_exit(Duration::from_secs(15)).0, Some(0));

    ok(pg_dir.path(), url, &["sequence", "delete", "orders"]);
    let copied = ok(dir.path(), None, &["store", "copy", "--to", &database.url]);
    assert!(copied.contains("forward: stays at 10001"), "{copied}");
    assert!(copied.contains("reverse: moved forward from"), "{copied}");
    assert_eq!(next_of(pg_dir.path(), url, "forward"), "10001");
    assert_eq!(next_of(pg_dir.path(), url, "reverse"), "5000");
}

/// While a server holds the embedded store, nothing is copied: numbers
/// issued during or after the copy would come out of both stores.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_copy_is_refused_while_a_server_holds_the_embedded_store() {
    let dir = TempDir::new();
    let server = PezProcess::start(dir.path(), &[]);
    let database = TestDatabase::create();
    let refused = the_error_line(&run_pez_on(
        dir.path(),
        None,
        &["store", "copy", "--to", &database.url],
    ));
    assert!(
        refused.contains(&server.pid().to_string()) && refused.contains("stop it first"),
        "{refused}"
    );
    // It still serves.
    assert_eq!(server.http.numbers("/v1/forward").await, vec![1]);
    // A URL that is not one gets one line too.
    drop(server);
    let refused = the_error_line(&run_pez_on(
        dir.path(),
        None,
        &["store", "copy", "--to", "not a url"],
    ));
    assert!(refused.contains("must be a postgres:// URI"), "{refused}");
}

/// A backup restored late moves nothing back; a fresh one moves a store
/// forward and creates what is missing; a file that would change a
/// sequence's settings, or is not an export, is refused with one line and
/// changes nothing. The embedded store exports, PostgreSQL imports.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn imports_only_move_forward_and_never_change_settings() {
    let dir = TempDir::new();
    let backups = TempDir::new();
    let backup = backups.path().join("sequences.json");
    let backup_arg = backup.to_string_lossy().into_owned();
    create_named_sequences(dir.path());
    ok(dir.path(), None, &["sequence", "restart", "forward", "501"]);
    ok(
        dir.path(),
        None,
        &["sequence", "export", "--output", &backup_arg],
    );
    let exported: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&backup).expect("export")).expect("json");
    assert_eq!(exported["sequences"][0]["name"], "forward");
    assert_eq!(exported["sequences"][0]["next"], 501);

    // The store went on; the stale backup moves nothing back.
    ok(
        dir.path(),
        None,
        &[
            "sequence",
            "restart",
            "forward",
            "901",
            "--allow-early-wrap",
        ],
    );
    let stale = ok(dir.path(), None, &["sequence", "import", &backup_arg]);
    assert!(stale.contains("forward: stays at 901"), "{stale}");
    assert_eq!(next_of(dir.path(), None, "forward"), "901");

    // A fresh backup onto PostgreSQL: moved forward, missing ones created.
    let fresh = ok(dir.path(), None, &["sequence", "export"]);
    std::fs::write(&backup, &fresh).expect("write the backup");
    let database = TestDatabase::create();
    let url = Some(database.url.as_str());
    let imported = ok(dir.path(), url, &["sequence", "import", &backup_arg]);
    assert!(
        imported.contains("forward: moved forward from 1 to 901"),
        "{imported}"
    );
    assert!(imported.contains("orders: created; next 100"), "{imported}");
    assert_eq!(next_of(dir.path(), url, "forward"), "901");

    // Other settings for an existing sequence: refused whole.
    let changed = fresh
        .replace("\"strict\"", "\"leased\"")
        .replace("\"next\": 901", "\"next\": 5001");
    assert_ne!(changed, fresh);
    std::fs::write(&backup, &changed).expect("write the backup");
    let refused = the_error_line(&run_pez_on(
        dir.path(),
        url,
        &["sequence", "import", &backup_arg],
    ));
    assert!(
        refused.contains("nothing changed") && refused.contains("orders"),
        "{refused}"
    );
    assert_eq!(next_of(dir.path(), url, "forward"), "901");

    std::fs::write(&backup, "{\"not\": \"an export\"}").expect("write");
    let refused = the_error_line(&run_pez_on(
        dir.path(),
        url,
        &["sequence", "import", &backup_arg],
    ));
    assert!(refused.contains("not a PEZ export"), "{refused}");
}

/// Issue 16, point 7: an embedded store made by an older release may hold a
/// sequence of one number (`min == max`), which PostgreSQL cannot hold. The
/// copy created the others, stopped at it half-way, with the embedded store
/// already marked as moved and `reverse` never copied. It checks the whole
/// list first and changes nothing, on either side.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_copy_checks_every_sequence_before_it_marks_or_moves_anything() {
    use diesel::Connection;
    use diesel::connection::SimpleConnection;
    let dir = TempDir::new();
    create_named_sequences(dir.path());
    issue_some(dir.path()).await;
    let mut legacy = diesel::SqliteConnection::establish(
        &dir.path().join(pez::store::DATABASE_FILE).to_string_lossy(),
    )
    .expect("open the store file");
    legacy
        .batch_execute(
            "INSERT INTO sequences (name, ascending, min_value, max_value, cycle, next_value, \
                                    start_value, mode, generation, laps) \
             VALUES ('lonely', 1, 5, 5, 1, 5, 5, 'leased', 99, 0)",
        )
        .expect("a sequence of one number, as an older release let it be made");
    drop(legacy);
    let database = TestDatabase::create();
    let url = Some(database.url.as_str());
    // The schema first: `list` only reads (issue 18).
    ok(dir.path(), url, &["migrate"]);
    let before = next_of(dir.path(), url, "forward");
    let refused = the_error_line(&run_pez_on(
        dir.path(),
        None,
        &["store", "copy", "--to", &database.url],
    ));
    assert!(
        refused.contains("lonely") && refused.contains("unchanged"),
        "{refused}"
    );
    // Nothing moved in PostgreSQL, and the embedded store still serves.
    assert_eq!(next_of(dir.path(), url, "forward"), before);
    let server = PezProcess::start(dir.path(), &[]);
    assert!(server.http.numbers("/v1/forward").await[0] > 1);
}

/// A store made before names of PEZ's own objects were reserved may hold
/// one: it is still served, listed and deletable here, and `pez store copy`
/// (PostgreSQL cannot hold it) refuses it by name before it marks or moves
/// anything.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sequence_named_like_pezs_own_objects_is_served_here_and_refused_by_a_copy() {
    use diesel::Connection;
    use diesel::connection::SimpleConnection;
    use hyper::Method;
    let dir = TempDir::new();
    // Makes the store (`list` only reads, issue 18).
    ok(dir.path(), None, &["migrate"]);
    let mut legacy = diesel::SqliteConnection::establish(
        &dir.path().join(pez::store::DATABASE_FILE).to_string_lossy(),
    )
    .expect("open the store file");
    legacy
        .batch_execute(
            "INSERT INTO sequences (name, ascending, min_value, max_value, cycle, next_value, \
                                    start_value, mode, generation, laps) \
             VALUES ('sequences', 1, 1, 1000000, 1, 1, 1, 'leased', 98, 0), \
                    ('generations', 1, 1, 1000000, 1, 1, 1, 'strict', 99, 0)",
        )
        .expect("sequences named as an older release let them be");
    drop(legacy);
    let mut server = PezProcess::start(dir.path(), &[("PEZ_ADMIN_TOKEN", "admin")]);
    let auth = [("authorization", "Bearer admin")];
    assert_eq!(
        server
            .http
            .numbers("/v2/sequences/sequences/next?count=2")
            .await,
        vec![1, 2]
    );
    assert_eq!(
        server.http.numbers("/v2/sequences/generations/next").await,
        vec![1]
    );
    let listed = server
        .http
        .send(Method::GET, "/v2/sequences", &auth, None)
        .await;
    assert_eq!(listed.status, 200, "{}", listed.body);
    assert!(listed.body.contains("\"generations\""), "{}", listed.body);
    let deleted = server
        .http
        .send(Method::DELETE, "/v2/sequences/generations", &auth, None)
        .await;
    assert_eq!(deleted.status, 204, "{}", deleted.body);
    server.terminate();
    assert_eq!(server.wait_exit(Duration::from_secs(15)).0, Some(0));

    let database = TestDatabase::create();
    let refused = the_error_line(&run_pez_on(
        dir.path(),
        None,
        &["store", "copy", "--to", &database.url],
    ));
    assert!(
        refused.contains("\"sequences\"") && refused.contains("reserved"),
        "{refused}"
    );
    assert!(refused.contains("unchanged"), "{refused}");
    // Not marked as moved: a server still starts on it.
    let server = PezProcess::start(dir.path(), &[]);
    assert_eq!(
        server
            .http
            .numbers("/v2/sequences/sequences/next")
            .await
            .len(),
        1
    );
}

/// Found by the second review: an import carried a sequence's laps only
/// into one it created. A ring that went around in the source, imported
/// onto a fresh one of the same settings, stayed "fresh" here, and a
/// restart ahead then needed no consent though the source's lap's numbers
/// would come back early. The list's laps now count wherever it lands.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_import_brings_its_laps_onto_a_sequence_that_exists_already() {
    let dir = TempDir::new();
    let file = dir.path().join("went-around.json");
    std::fs::write(
        &file,
        r#"{"pez_sequences": 1, "source": "a backup", "sequences": [{"name": "ring",
            "direction": "ascending", "min": 1, "max": 10000, "start": 5001, "cycle": true,
            "mode": "leased", "next": 5001, "laps": 1}]}"#,
    )
    .expect("write the list");
    ok(
        dir.path(),
        None,
        &[
            "sequence", "create", "ring", "--min", "1", "--max", "10000", "--start", "5001",
        ],
    );
    let imported = ok(
        dir.path(),
        None,
        &["sequence", "import", &file.to_string_lossy()],
    );
    assert!(imported.contains("ring: stays at 5001"), "{imported}");
    let refused = the_error_line(&run_pez_on(
        dir.path(),
        None,
        &["sequence", "restart", "ring", "9001"],
    ));
    assert!(refused.contains("--allow-early-wrap"), "{refused}");
}

/// A copy that stops half way (here a trigger refuses one sequence; in
/// `make power-cut`, a power cut) leaves the embedded store retired, as it
/// must, but the refusal must not send the operator to a database that
/// holds only part of it: it says the copy did not finish and to run it
/// again, until a copy has finished.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_copy_cut_short_says_so_and_sends_nobody_to_the_partial_copy() {
    let dir = TempDir::new();
    create_named_sequences(dir.path());
    issue_some(dir.path()).await;
    let database = TestDatabase::create();
    ok(dir.path(), Some(&database.url), &["migrate"]);
    // A constraint, not a trigger: PEZ refuses a database whose
    // pez.sequences has a trigger at all (one can lower the durability of
    // a reservation's commit), and the copy must get as far as tickets.
    database.execute(
        "ALTER TABLE pez.sequences ADD CONSTRAINT refuse_tickets CHECK (name <> 'tickets')",
    );
    let copy = || {
        pez_command(dir.path())
            .env("PEZ_DB_STARTUP_TIMEOUT_MS", "500")
            .args(["store", "copy", "--to", &database.url])
            .output()
            .expect("run pez")
    };
    let failed = copy();
    assert!(!failed.status.success(), "{failed:?}");

    let refused = the_error_line(&run_pez(dir.path(), &["--listen", "127.0.0.1:0"]));
    assert!(
        refused.contains("retired")
            && refused.contains("not known to have finished")
            && refused.contains("run pez store copy"),
        "{refused}"
    );
    assert!(
        !refused.contains("start PEZ with that database"),
        "{refused}"
    );

    database.execute("ALTER TABLE pez.sequences DROP CONSTRAINT refuse_tickets");
    let finished = copy();
    assert!(finished.status.success(), "{finished:?}");
    let refused = the_error_line(&run_pez(dir.path(), &["--listen", "127.0.0.1:0"]));
    assert!(
        refused.contains("were copied to") && refused.contains("start PEZ with that database"),
        "{refused}"
    );
}
