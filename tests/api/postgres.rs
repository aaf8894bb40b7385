//! PostgreSQL as the store: many instances on one database, crashes of
//! instances and of the database, wrap, TLS, and start-up failures.

use crate::helpers::{
    Backend, MAX, PezProcess, StoreFixture, TempDir, TestApp, assert_unique, pez_command,
};
use crate::lifecycle::{hammer, hammer_until};
use crate::postgres_support::{
    Cluster, ClusterOptions, TestDatabase, TestRole, shared_server, with_database,
};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

fn small_blocks(settings: &mut pez::config::Settings) {
    settings.block_min = 200;
    settings.block_max = 400;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_instances_on_one_database_never_issue_a_number_twice() {
    let store = StoreFixture::new(Backend::Postgres);
    let mut apps = Vec::new();
    for _ in 0..3 {
        apps.push(TestApp::spawn_in(store.clone(), small_blocks).await);
    }
    let mut clients = Vec::new();
    for (instance, app) in apps.iter().enumerate() {
        for client in 0..10usize {
            let http = app.http.clone();
            clients.push(tokio::spawn(async move {
                let mut responses = Vec::new();
                for i in 0..40usize {
                    let count = (instance * 13 + client * 7 + i * 11) % 100 + 1;
                    let path = if i % 3 == 0 {
                        "/v1/forward".to_owned()
                    } else {
                        format!("/v2/forward?count={count}")
                    };
                    responses.push(http.numbers(&path).await);
                }
                responses
            }));
        }
    }
    let mut all = Vec::new();
    for client in clients {
        let responses = client.await.expect("client");
        for pair in responses.windows(2) {
            // One client talks to one instance: its responses go up.
            assert!(pair[1][0] > *pair[0].last().expect("numbers"), "{pair:?}");
        }
        for response in responses {
            // In order; not necessarily consecutive, as the other instances
            // lease from the same sequence.
            assert!(response.windows(2).all(|w| w[0] < w[1]), "{response:?}");
            all.extend(response);
        }
    }
    assert_unique(&all);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn instances_starting_at_the_same_moment_on_a_fresh_database_all_start() {
    let store = StoreFixture::new(Backend::Postgres);
    let (a, b, c) = tokio::join!(
        TestApp::try_spawn_in(store.clone(), |_| {}),
        TestApp::try_spawn_in(store.clone(), |_| {}),
        TestApp::try_spawn_in(store.clone(), |_| {}),
    );
    let mut all = Vec::new();
    for app in [a, b, c] {
        let app = app.expect("every instance starts");
        all.extend(app.numbers("/v2/forward?count=10").await);
    }
    assert_unique(&all);
}

#[tokio::test]
async fn a_graceful_stop_gives_back_only_if_no_other_instance_leased_since() {
    let store = StoreFixture::new(Backend::Postgres);
    let first = TestApp::spawn_in(store.clone(), |_| {}).await;
    let from_first = first.numbers("/v2/forward?count=5").await;
    let second = TestApp::spawn_in(store.clone(), |_| {}).await;
    let from_second = second.numbers("/v2/forward?count=5").await;
    assert!(from_second[0] > from_first[4]);

    let report = first.stop().await;
    assert_eq!(
        report.returned, 0,
        "the second instance leased since: {report:?}"
    );
    assert!(report.abandoned > 0);
    let report = second.stop().await;
    assert!(report.returned > 0, "{report:?}");

    let third = TestApp::spawn_in(store, |_| {}).await;
    assert_eq!(third.numbers("/v1/forward").await, vec![from_second[4] + 1]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_of_one_instance_under_load_then_restart_issues_nothing_twice() {
    let database = TestDatabase::create();
    let env = [
        ("PEZ_DATABASE_URL", database.url.as_str()),
        ("PEZ_BLOCK_SIZE", "200"),
        ("PEZ_BLOCK_MAX", "400"),
    ];
    let (dir_a, dir_b) = (TempDir::new(), TempDir::new());
    let mut a = PezProcess::start(dir_a.path(), &env);
    let b = PezProcess::start(dir_b.path(), &env);
    let stopping = Arc::new(AtomicBool::new(false));
    let load_a = tokio::spawn(hammer_until(a.http.clone(), 8, Arc::clone(&stopping)));
    let load_b = tokio::spawn(hammer_until(b.http.clone(), 8, Arc::clone(&stopping)));
    tokio::time::sleep(Duration::from_millis(500)).await;
    a.kill_9();
    let a = PezProcess::start(dir_a.path(), &env);
    let load_restarted = tokio::spawn(hammer_until(a.http.clone(), 8, Arc::clone(&stopping)));
    tokio::time::sleep(Duration::from_millis(500)).await;
    stopping.store(true, Ordering::Relaxed);
    let mut all = load_a.await.expect("load");
    all.extend(load_b.await.expect("load"));
    all.extend(load_restarted.await.expect("load"));
    assert!(all.len() > 1000, "too little load: {}", all.len());
    assert_unique(&all);
}

/// PostgreSQL stops (cleanly, then as in a crash) under load: requests are
/// served from the blocks on hand, then answered 503 quickly; when the
/// database is back, service resumes by itself; nothing is issued twice.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_stopped_and_started_under_load_gives_503s_then_recovers() {
    let cluster = Cluster::start(ClusterOptions::default());
    let store = StoreFixture::on_database(TestDatabase::create_on(&cluster.admin_url));
    let app = TestApp::spawn_in(store, |s| {
        s.block_min = 200;
        s.block_max = 200;
    })
    .await;
    let mut all = Vec::new();
    for mode in ["fast", "immediate"] {
        let stopping = Arc::new(AtomicBool::new(false));
        let load = tokio::spawn(hammer_until(app.http.clone(), 4, Arc::clone(&stopping)));
        tokio::time::sleep(Duration::from_millis(200)).await;
        cluster.stop(mode);

        // Blocks on hand run out: 503, each answer within a bounded time.
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let started = Instant::now();
            let response = app.get("/v2/forward?count=100").await;
            assert!(
                started.elapsed() < Duration::from_millis(2500),
                "{:?}",
                started.elapsed()
            );
            if response.status == 503 {
                assert_eq!(response.header("retry-after"), Some("1"));
                response.problem(503);
                break;
            }
            all.extend(response.numbers());
            assert!(
                Instant::now() < deadline,
                "never ran out while PostgreSQL was down ({mode})"
            );
        }

        cluster.restart();
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let response = app.get("/v2/forward?count=10").await;
            if response.status == 200 {
                all.extend(response.numbers());
                break;
            }
            assert!(
                Instant::now() < deadline,
                "no recovery after a {mode} stop: {}",
                response.body
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        stopping.store(true, Ordering::Relaxed);
        all.extend(load.await.expect("load"));
    }
    all.extend(hammer(app.http.clone(), 4, Duration::from_millis(300), true).await);
    assert_unique(&all);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn both_ends_wrap_with_several_instances() {
    let store = StoreFixture::new(Backend::Postgres);
    let url = store.database().expect("postgres").url.clone();
    let dir = TempDir::new();
    for (name, value) in [("forward", MAX - 2500), ("reverse", 2500)] {
        let output = pez_command(dir.path())
            .env("PEZ_DATABASE_URL", &url)
            .args(["sequence", "restart", name, &value.to_string()])
            .output()
            .expect("run pez");
        assert!(output.status.success(), "{output:?}");
    }
    let listed = pez_command(dir.path())
        .env("PEZ_DATABASE_URL", &url)
        .args(["sequence", "list"])
        .output()
        .expect("run pez");
    let listed = String::from_utf8_lossy(&listed.stdout);
    assert!(listed.contains(&(MAX - 2500).to_string()), "{listed}");

    let mut apps = Vec::new();
    for _ in 0..3 {
        apps.push(TestApp::spawn_in(store.clone(), |_| {}).await);
    }
    let (mut forward, mut reverse) = (Vec::new(), Vec::new());
    for _ in 0..15 {
        for app in &apps {
            forward.extend(app.numbers("/v2/forward?count=100").await);
            reverse.extend(app.numbers("/v2/reverse?count=100").await);
        }
    }
    assert_unique(&forward);
    assert_unique(&reverse);
    for (numbers, end, start) in [(&forward, MAX, 1), (&reverse, 1, MAX)] {
        assert!(
            numbers.contains(&end),
            "the last number before the wrap was issued"
        );
        assert!(
            numbers.contains(&start),
            "the sequence wrapped to its origin"
        );
    }
}

/// The original's PEZ_DB_* variables for `database` on localhost:`port`.
fn db_env<'a>(database: &'a str, port: &'a str) -> Vec<(&'a str, String)> {
    vec![
        ("PEZ_DB_HOST", "localhost".to_owned()),
        ("PEZ_DB_PORT", port.to_owned()),
        ("PEZ_DB_NAME", database.to_owned()),
        ("PEZ_DB_USERNAME", "postgres".to_owned()),
    ]
}

#[tokio::test]
async fn tls_with_require_and_verify_full_and_the_password_never_shows() {
    const PASSWORD: &str = "pez-Secret-42";
    let cluster = Cluster::start(ClusterOptions {
        ssl: true,
        password: Some(PASSWORD),
    });
    let database = TestDatabase::create_on(&cluster.admin_url);
    let name = database.name().to_owned();
    let port = cluster.port().to_string();
    let ca = cluster.cert("ca.crt").to_string_lossy().into_owned();
    let dir = TempDir::new();
    let base = db_env(&name, &port);

    for (mode, root) in [("require", None), ("verify-full", Some(ca.as_str()))] {
        let mut env: Vec<(&str, &str)> = base.iter().map(|(k, v)| (*k, v.as_str())).collect();
        env.extend([("PEZ_DB_PASSWORD", PASSWORD), ("PEZ_DB_SSLMODE", mode)]);
        if let Some(root) = root {
            env.push(("PEZ_DB_SSLROOTCERT", root));
        }
        let pez = PezProcess::start(dir.path(), &env);
        assert!(!pez.http.numbers("/v1/forward").await.is_empty());
        // PEZ's own connections are encrypted.
        let output = std::process::Command::new("psql")
            .args([
                &cluster.admin_url,
                "-tAc",
                "SELECT bool_and(s.ssl) FROM pg_stat_ssl s JOIN pg_stat_activity a USING (pid) \
                 WHERE a.application_name = 'pez'",
            ])
            .env("PGSSLMODE", "require")
            .output()
            .expect("psql");
        assert_eq!(
            String::from_utf8_lossy(&output.stdout).trim(),
            "t",
            "{output:?}"
        );
        drop(pez);
    }

    // The wrong CA: verify-full refuses the server, in one line. libpq
    // gives no SQLSTATE for its own TLS checks, so PEZ retries it like any
    // failure no server vouched for, for the startup timeout.
    let other_ca = cluster.cert("other-ca.crt").to_string_lossy().into_owned();
    let started = Instant::now();
    let output = pez_command(dir.path())
        .envs(base.iter().map(|(k, v)| (*k, v.as_str())))
        .env("PEZ_DB_PASSWORD", PASSWORD)
        .env("PEZ_DB_SSLMODE", "verify-full")
        .env("PEZ_DB_SSLROOTCERT", &other_ca)
        .env("PEZ_DB_STARTUP_TIMEOUT_MS", "1500")
        .output()
        .expect("run pez");
    assert!(!output.status.success());
    assert!(started.elapsed() < Duration::from_secs(10));
    let stderr = String::from_utf8_lossy(&output.stderr);
    let errors: Vec<_> = stderr.lines().filter(|l| l.starts_with("pez: ")).collect();
    assert_eq!(errors.len(), 1, "{stderr}");
    assert!(errors[0].contains("certificate"), "{stderr}");

    // A wrong password: one line, at once, and no password in it.
    let started = Instant::now();
    let output = pez_command(dir.path())
        .envs(base.iter().map(|(k, v)| (*k, v.as_str())))
        .env("PEZ_DB_PASSWORD", "not-the-Secret")
        .env("PEZ_DB_SSLMODE", "require")
        .output()
        .expect("run pez");
    assert!(!output.status.success());
    assert!(started.elapsed() < Duration::from_secs(10));
    let stderr = String::from_utf8_lossy(&output.stderr);
    let errors: Vec<_> = stderr.lines().filter(|l| l.starts_with("pez: ")).collect();
    assert_eq!(errors.len(), 1, "{stderr}");
    assert!(
        errors[0].contains("password authentication failed"),
        "{stderr}"
    );
    assert!(
        !stderr.contains("not-the-Secret") && !stderr.contains(PASSWORD),
        "{stderr}"
    );

    // --help never shows the password from the environment.
    let help = pez_command(dir.path())
        .env("PEZ_DB_PASSWORD", PASSWORD)
        .env(
            "PEZ_DATABASE_URL",
            format!("postgres://postgres:{PASSWORD}@localhost/x"),
        )
        .arg("--help")
        .output()
        .expect("run pez");
    assert!(help.status.success());
    assert!(!String::from_utf8_lossy(&help.stdout).contains(PASSWORD));
}

#[test]
fn an_unknown_database_stops_pez_at_once_with_one_line() {
    let dir = TempDir::new();
    let started = Instant::now();
    let output = pez_command(dir.path())
        .env(
            "PEZ_DATABASE_URL",
            with_database(shared_server(), "no_such_pez_database"),
        )
        .output()
        .expect("run pez");
    assert!(!output.status.success());
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "{:?}",
        started.elapsed()
    );
    let stderr = String::from_utf8_lossy(&output.stderr);
    let errors: Vec<_> = stderr.lines().filter(|l| l.starts_with("pez: ")).collect();
    assert_eq!(errors.len(), 1, "{stderr}");
    assert!(errors[0].contains("does not exist"), "{stderr}");
}

#[tokio::test]
async fn a_database_that_is_not_up_yet_is_waited_for_within_the_startup_timeout() {
    let cluster = Cluster::start(ClusterOptions::default());
    let database = TestDatabase::create_on(&cluster.admin_url);
    cluster.stop("fast");
    let dir = TempDir::new();

    // Not up within the timeout: a bounded wait, then one line.
    let started = Instant::now();
    let output = pez_command(dir.path())
        .env("PEZ_DATABASE_URL", &database.url)
        .env("PEZ_DB_STARTUP_TIMEOUT_MS", "1500")
        .output()
        .expect("run pez");
    let waited = started.elapsed();
    assert!(!output.status.success());
    assert!(
        waited >= Duration::from_millis(1000) && waited < Duration::from_secs(10),
        "{waited:?}"
    );

    // Up within the timeout: PEZ starts.
    let restarting = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(1000));
        cluster.restart();
        cluster
    });
    let pez = PezProcess::start(dir.path(), &[("PEZ_DATABASE_URL", &database.url)]);
    let _cluster = restarting.join().expect("restart");
    assert_eq!(pez.http.numbers("/v1/forward").await, vec![1]);
    drop(pez);
}

#[tokio::test]
async fn pez_migrate_lets_a_user_without_ddl_rights_run_pez() {
    let limited = TestRole::create("pez_limited");
    let role = &limited.name;
    let database = TestDatabase::create();
    let dir = TempDir::new();
    database.execute("REVOKE CREATE ON SCHEMA public FROM PUBLIC");
    let limited_url = limited.url(&database.url);

    // Without the schema, the limited user cannot start PEZ, and is told why.
    let output = pez_command(dir.path())
        .env("PEZ_DATABASE_URL", &limited_url)
        .output()
        .expect("run");
    assert!(!output.status.success());
    assert!(
        String::from_utf8_lossy(&output.stderr).contains("pez migrate"),
        "{output:?}"
    );

    let migrate = |url: &str| {
        let output = pez_command(dir.path())
            .env("PEZ_DATABASE_URL", url)
            .arg("migrate")
            .output()
            .expect("run");
        assert!(output.status.success(), "{output:?}");
        String::from_utf8_lossy(&output.stdout).into_owned()
    };
    let first = migrate(&database.url);
    assert!(!first.contains(" 0 migration(s) applied"), "{first}");
    assert!(first.contains("migration(s) applied"), "{first}");
    assert!(migrate(&database.url).contains(" 0 migration(s) applied"));

    database.execute(&format!("GRANT USAGE ON SCHEMA pez TO {role}"));
    database.execute(&format!(
        "GRANT USAGE, SELECT, UPDATE ON ALL SEQUENCES IN SCHEMA pez TO {role}"
    ));
    database.execute(&format!(
        "GRANT SELECT ON __diesel_schema_migrations TO {role}"
    ));
    database.execute(&format!("GRANT SELECT, UPDATE ON pez.sequences TO {role}"));
    // Saying it is alive (what `pez handback` reads) needs one more.
    let refused = crate::helpers::the_error_line(&crate::helpers::run_pez_on(
        dir.path(),
        Some(&limited_url),
        &[],
    ));
    assert!(
        refused.contains("GRANT SELECT, INSERT, UPDATE, DELETE ON pez.instances"),
        "{refused}"
    );
    database.execute(&format!(
        "GRANT SELECT, INSERT, UPDATE, DELETE ON pez.instances TO {role}"
    ));
    let pez = PezProcess::start(dir.path(), &[("PEZ_DATABASE_URL", &limited_url)]);
    assert_eq!(pez.http.numbers("/v2/forward?count=2").await, vec![1, 2]);
}

/// The primary crashes under load and its synchronous standby takes over.
/// PEZ, given both hosts (libpq picks the one that accepts writes), goes on
/// by itself, and no number is issued twice: every lease was on the standby
/// before its numbers were served.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failover_to_a_synchronous_standby_issues_nothing_twice() {
    let primary = Cluster::start(ClusterOptions::default());
    let mut database = TestDatabase::create_on(&primary.admin_url);
    let standby = Cluster::standby_of(&primary);
    let name = database.name().to_owned();
    database.url = format!(
        "postgres://postgres@127.0.0.1:{},127.0.0.1:{}/{name}?target_session_attrs=read-write",
        primary.port(),
        standby.port()
    );
    let store = StoreFixture::on_database(database);
    let app = TestApp::spawn_in(store.clone(), small_blocks).await;
    let stopping = Arc::new(AtomicBool::new(false));
    let load = tokio::spawn(hammer_until(app.http.clone(), 8, Arc::clone(&stopping)));
    tokio::time::sleep(Duration::from_millis(500)).await;

    primary.stop("immediate");
    standby.promote();
    let promoted_at = Instant::now();
    loop {
        let response = app.get("/v2/forward?count=100").await;
        if response.status == 200 && promoted_at.elapsed() > Duration::from_millis(200) {
            break;
        }
        assert!(
            promoted_at.elapsed() < Duration::from_secs(20),
            "no service after the failover"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // Load on the new primary, then a fresh instance on it too.
    tokio::time::sleep(Duration::from_millis(500)).await;
    stopping.store(true, Ordering::Relaxed);
    let mut all = load.await.expect("load");
    assert!(all.len() > 1000, "too little load: {}", all.len());
    let fresh = TestApp::spawn_in(store, small_blocks).await;
    all.extend(hammer(fresh.http.clone(), 4, Duration::from_millis(300), true).await);
    all.extend(hammer(app.http.clone(), 4, Duration::from_millis(300), true).await);
    assert_unique(&all);
}

#[derive(diesel::QueryableByName)]
struct Relation {
    #[diesel(sql_type = diesel::sql_types::Text)]
    name: String,
}

/// Every relation PEZ makes in schema pez (tables, their indexes, the
/// generation counter) and diesel's table of migrations (wherever the
/// search path puts it) has a name no sequence may take: a migration that
/// adds an object without reserving its name fails here.
#[tokio::test]
async fn every_relation_pez_makes_has_a_name_no_sequence_may_take() {
    use diesel::{Connection, RunQueryDsl};
    let app = TestApp::spawn_on(Backend::Postgres, |_| {}).await;
    let store = app.store();
    let url = &store.database().expect("PostgreSQL").url;
    let mut conn = diesel::PgConnection::establish(url).expect("connect");
    let relations: Vec<String> = diesel::sql_query(
        "SELECT c.relname::text AS name FROM pg_class c \
         JOIN pg_namespace n ON n.oid = c.relnamespace \
         WHERE (n.nspname = 'pez' AND c.relname NOT IN (SELECT name FROM pez.sequences)) \
            OR c.relname LIKE '\\_\\_diesel%' \
         ORDER BY 1",
    )
    .load::<Relation>(&mut conn)
    .expect("list relations")
    .into_iter()
    .map(|r| r.name)
    .collect();
    for expected in [
        "sequences",
        "generations",
        "instances",
        "__diesel_schema_migrations",
    ] {
        assert!(relations.iter().any(|r| r == expected), "{relations:?}");
    }
    for relation in &relations {
        assert!(
            pez::sequence::check_new_name(relation).is_err(),
            "{relation} may be taken by a sequence"
        );
    }
}

/// Every number PEZ takes from PostgreSQL goes through `pez.reserve()`, a
/// function its migration made. A setting attached to it would undo what
/// its statement sets for its own commit (`synchronous_commit = local`:
/// numbers served before the standby has them), so PEZ checks the function
/// at start, its body and its settings, and stops with one line when it is
/// missing or not as made; the line says how to make it again, and that
/// works.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reservation_function_changed_by_hand_stops_pez_at_start_with_one_line() {
    let database = TestDatabase::create();
    let dir = TempDir::new();
    // A command that opens the store to change it checks as a server's
    // start does, and ends either way.
    let created = std::cell::Cell::new(0);
    let create = || {
        created.set(created.get() + 1);
        pez_command(dir.path())
            .env("PEZ_DATABASE_URL", &database.url)
            .args(["sequence", "create", &format!("s{}", created.get())])
            .output()
            .expect("run pez")
    };
    let migrate = || {
        let output = pez_command(dir.path())
            .env("PEZ_DATABASE_URL", &database.url)
            .arg("migrate")
            .output()
            .expect("run pez migrate");
        assert!(output.status.success(), "{output:?}");
    };
    migrate();
    let first = create();
    assert!(first.status.success(), "{first:?}");
    let function = "pez.reserve(bigint, bigint, text, bigint, text, text, bigint, boolean)";
    for (change, says) in [
        (
            format!("ALTER FUNCTION {function} SET synchronous_commit = local"),
            "synchronous_commit=local",
        ),
        (
            format!("ALTER FUNCTION {function} RESET plan_cache_mode"),
            "has the settings",
        ),
        (
            "CREATE OR REPLACE FUNCTION pez.reserve(seq_oid bigint, steps bigint, \
                    seq_name text, seq_generation bigint, token text, lock_timeout_ms text, \
                    origin bigint, count_laps boolean) \
                 RETURNS TABLE (taken bigint[], increment_by bigint, counted_with bigint, \
                                laps bigint) \
                 LANGUAGE sql SET plan_cache_mode = force_generic_plan \
                 SET search_path = pg_catalog, pg_temp \
                 AS $$ SELECT ARRAY[42::bigint], 1::bigint, 1::bigint, 0::bigint $$"
                .to_owned(),
            "body",
        ),
        (format!("DROP FUNCTION {function}"), "is missing"),
    ] {
        database.execute(&change);
        let line = crate::helpers::the_error_line(&create());
        assert!(
            line.contains(function) && line.contains(says) && line.contains("20261207000007"),
            "{change}: {line}"
        );
        // What the line says to do.
        database.execute(&format!(
            "DROP FUNCTION IF EXISTS {function}; \
             DELETE FROM __diesel_schema_migrations WHERE version = '20261207000007'"
        ));
        migrate();
        let again = create();
        assert!(again.status.success(), "after {change}: {again:?}");
    }
}

/// A `search_path` that puts a schema before PostgreSQL's catalog (a DBA's
/// `ALTER DATABASE ... SET search_path`, or another client's on a pooled
/// server connection) cannot put another `nextval()` under the
/// reservation: its function searches the catalog first, whatever the
/// session says. The same statement sent inline, as before issue 20, took
/// the schema's.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_function_in_the_search_path_cannot_stand_in_for_nextval() {
    let store = StoreFixture::new(Backend::Postgres);
    let database = store.database().expect("on postgres");
    database.execute(&format!(
        "CREATE SCHEMA decoy; \
         CREATE FUNCTION decoy.nextval(regclass) RETURNS bigint LANGUAGE sql AS 'SELECT 42::bigint'; \
         ALTER DATABASE {} SET search_path = decoy, pg_catalog, public",
        database.name()
    ));
    let app = TestApp::spawn_in(store.clone(), small_blocks).await;
    // The decoy answers 42 to every call: forward would start there, and
    // every block would be the same one.
    let forward = app.numbers("/v2/forward?count=100").await;
    assert_eq!(forward, (1..=100).collect::<Vec<i64>>());
    let reverse = app.numbers("/v2/reverse?count=100").await;
    assert_eq!(reverse, (MAX - 99..=MAX).rev().collect::<Vec<i64>>());
}

/// The same check while PEZ runs: the sync task reads the function again
/// every interval, and while it is not as its migration made it nothing is
/// reserved (503 once what is on hand is gone); once it is put back,
/// numbers flow again without a restart.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reservation_function_changed_while_pez_runs_stops_reservations_until_put_back() {
    let store = StoreFixture::new(Backend::Postgres);
    let database = store.database().expect("on postgres");
    let app = TestApp::spawn_in(store.clone(), |s| {
        crate::helpers::short_waits(s);
        s.sync_interval = Duration::from_millis(100);
        s.access.admin = Some(pez::config::Secret::new("admin".into()));
    })
    .await;
    let created = app
        .http
        .send(
            hyper::Method::PUT,
            "/v2/sequences/strict",
            &[("authorization", "Bearer admin")],
            Some(r#"{"mode": "strict"}"#),
        )
        .await;
    assert_eq!(created.status, 201, "{}", created.body);
    let path = "/v2/sequences/strict/next";
    assert_eq!(app.get(path).await.status, 200);
    let function = "pez.reserve(bigint, bigint, text, bigint, text, text, bigint, boolean)";
    database.execute(&format!(
        "ALTER FUNCTION {function} SET synchronous_commit = local"
    ));
    let started = Instant::now();
    loop {
        let response = app.get(path).await;
        if response.status == 503 {
            break;
        }
        assert_eq!(response.status, 200, "{}", response.body);
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "strict numbers still served through the changed function"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    database.execute(&format!(
        "ALTER FUNCTION {function} RESET synchronous_commit"
    ));
    let started = Instant::now();
    while app.get(path).await.status != 200 {
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "no numbers once the function was put back"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Between two syncs the check above has not run, so every reservation
/// also reads the `synchronous_commit` its own commit runs with, after the
/// function returned: a setting attached to the function, or a trigger on
/// the table it updates (a ring counts its laps there), that lowers it
/// makes that reservation fail (its numbers a gap), not serve numbers that
/// are not durable. The sync is a minute away here; at start both stop
/// PEZ with one line. The database's own default is `local` (a DBA's), which
/// PEZ's statement overrides for its commit: a setting attached to the
/// function puts that default back when the function returns.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reservation_whose_commit_was_weakened_serves_nothing_even_before_the_next_sync() {
    let store = StoreFixture::new(Backend::Postgres);
    let database = store.database().expect("on postgres");
    database.execute(&format!(
        "ALTER DATABASE {} SET synchronous_commit = local",
        database.name()
    ));
    let app = TestApp::spawn_in(store.clone(), |s| {
        crate::helpers::short_waits(s);
        s.sync_interval = Duration::from_secs(60);
        s.access.admin = Some(pez::config::Secret::new("admin".into()));
    })
    .await;
    for (name, body) in [
        ("plain", r#"{"mode": "strict"}"#),
        ("ring", r#"{"mode": "strict", "min": 1, "max": 1000}"#),
    ] {
        let created = app
            .http
            .send(
                hyper::Method::PUT,
                &format!("/v2/sequences/{name}"),
                &[("authorization", "Bearer admin")],
                Some(body),
            )
            .await;
        assert_eq!(created.status, 201, "{}", created.body);
        assert_eq!(
            app.get(&format!("/v2/sequences/{name}/next")).await.status,
            200
        );
    }
    let function = "pez.reserve(bigint, bigint, text, bigint, text, text, bigint, boolean)";
    let dir = TempDir::new();
    let refused_at_start = || {
        let output = pez_command(dir.path())
            .env("PEZ_DATABASE_URL", &database.url)
            .args(["sequence", "create", "another"])
            .output()
            .expect("run pez");
        crate::helpers::the_error_line(&output)
    };
    for (weaken, sequence, repair, at_start) in [
        (
            format!("ALTER FUNCTION {function} SET synchronous_commit = local"),
            "plain",
            format!("ALTER FUNCTION {function} RESET synchronous_commit"),
            "synchronous_commit=local",
        ),
        (
            "CREATE FUNCTION public.lower_commit() RETURNS trigger LANGUAGE plpgsql AS \
             $$ BEGIN PERFORM set_config('synchronous_commit', 'local', true); RETURN NULL; END $$; \
             CREATE TRIGGER lower_commit BEFORE UPDATE ON pez.sequences \
             FOR EACH STATEMENT EXECUTE FUNCTION public.lower_commit()"
                .to_owned(),
            "ring",
            "DROP TRIGGER lower_commit ON pez.sequences; DROP FUNCTION public.lower_commit()"
                .to_owned(),
            "pez.sequences has a trigger",
        ),
    ] {
        database.execute(&weaken);
        let path = format!("/v2/sequences/{sequence}/next");
        let response = app.get(&path).await;
        assert_eq!(response.status, 503, "{weaken}: {}", response.body);
        let line = refused_at_start();
        assert!(line.contains(at_start), "{weaken}: {line}");
        database.execute(&repair);
        let started = Instant::now();
        while app.get(&path).await.status != 200 {
            assert!(
                started.elapsed() < Duration::from_secs(10),
                "{sequence}: nothing served after {repair}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}
