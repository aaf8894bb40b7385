//! Nobody burns a sequence (issue 17, point 5): each sequence has its own
//! largest range lease (by default a thousandth of its range), set when it
//! is created and carried by export, import and store copy; and range
//! leases can be kept to tokens of their own (PEZ_LEASE_TOKENS).

use crate::helpers::{Backend, HttpClient, PezProcess, TempDir, TestApp, TestResponse, run_pez_on};
use crate::postgres_support::TestDatabase;
use hyper::Method;
use pez::config::{Access, Secret, Settings};
use std::path::Path;

const ADMIN: &str = "admin-s3cret";

fn with_admin(settings: &mut Settings) {
    settings.access = Access {
        admin: Some(Secret::new(ADMIN.into())),
        ..Access::default()
    };
}

async fn admin(http: &HttpClient, method: Method, path: &str, body: Option<&str>) -> TestResponse {
    let bearer = format!("Bearer {ADMIN}");
    http.send(method, path, &[("authorization", &bearer)], body)
        .await
}

async fn create(http: &HttpClient, name: &str, body: &str) -> TestResponse {
    admin(
        http,
        Method::PUT,
        &format!("/v2/sequences/{name}"),
        Some(body),
    )
    .await
}

async fn lease(http: &HttpClient, name: &str, count: u64) -> TestResponse {
    http.send(
        Method::POST,
        &format!("/v2/sequences/{name}/lease?count={count}"),
        &[],
        None,
    )
    .await
}

/// A refused lease: 400, problem+json naming the count asked for and the
/// sequence's limit.
fn assert_refused_naming(response: &TestResponse, count: u64, limit: u64) {
    let problem = response.problem(400);
    let detail = problem["detail"].as_str().unwrap_or_default();
    assert!(
        detail.contains(&count.to_string()) && detail.contains(&limit.to_string()),
        "{problem}"
    );
    assert_eq!(problem["maximum"], limit, "{problem}");
}

/// The issue's case: three leases of PEZ_MAX_LEASE (1,000,000) wrapped a
/// cycling ring of 3,000,000 and exhausted a non-cycling one. Now its
/// largest lease is 3,000 (a thousandth); bigger ones are refused and burn
/// nothing, so the ring still hands out its first number, and the other
/// one still serves.
async fn three_leases_of_a_million_no_longer_burn_a_sequence_of_three_million(backend: Backend) {
    let app = TestApp::spawn_on(backend, with_admin).await;
    for (name, cycle) in [("ring", true), ("line", false)] {
        let created = create(
            &app.http,
            name,
            &format!(r#"{{"min": 1, "max": 3000000, "cycle": {cycle}}}"#),
        )
        .await;
        assert_eq!(created.status, 201, "{}", created.body);
        assert_eq!(created.json()["max_lease"], 3000, "{}", created.body);
        for _ in 0..3 {
            assert_refused_naming(&lease(&app.http, name, 1_000_000).await, 1_000_000, 3000);
        }
        assert_refused_naming(&lease(&app.http, name, 3001).await, 3001, 3000);
        let shown = admin(
            &app.http,
            Method::GET,
            &format!("/v2/sequences/{name}"),
            None,
        )
        .await
        .json();
        // The server leased its first block (1,000) ahead; no lease took more.
        assert_eq!(shown["next"], 1, "{shown}");
        assert!(
            shown["store_next"].as_i64().is_some_and(|n| n <= 1001),
            "nothing was burnt: {shown}"
        );
        assert_eq!(shown["lease_limit"], 3000, "{shown}");
        assert_eq!(
            app.numbers(&format!("/v2/sequences/{name}/next")).await,
            vec![1]
        );
        let taken = lease(&app.http, name, 3000).await;
        assert_eq!(taken.status, 200, "{}", taken.body);
    }
    // The built-in sequences' range is 2^63-1: their limit is PEZ_MAX_LEASE.
    let forward = admin(&app.http, Method::GET, "/v2/sequences/forward", None)
        .await
        .json();
    assert_eq!(forward["lease_limit"], 1_000_000, "{forward}");
    assert_eq!(lease(&app.http, "forward", 1_000_000).await.status, 200);
}

/// A max_lease given at creation is kept and shown (one sequence, the
/// list); PEZ_MAX_LEASE caps it; a bad one is refused; a PUT again with the
/// same settings changes nothing, one with another max_lease is refused
/// like any other change of settings.
async fn an_explicit_max_lease_is_kept_and_pez_max_lease_caps_it(backend: Backend) {
    let app = TestApp::spawn_on(backend, |s| {
        with_admin(s);
        s.max_lease = 6000;
    })
    .await;
    let body = r#"{"min": 1, "max": 10000, "max_lease": 5000}"#;
    let created = create(&app.http, "wide", body).await;
    assert_eq!(created.status, 201, "{}", created.body);
    assert_eq!(created.json()["max_lease"], 5000);
    assert_eq!(lease(&app.http, "wide", 5000).await.status, 200);
    assert_refused_naming(&lease(&app.http, "wide", 5001).await, 5001, 5000);
    assert_eq!(create(&app.http, "wide", body).await.status, 200);
    let changed = create(
        &app.http,
        "wide",
        r#"{"min": 1, "max": 10000, "max_lease": 10}"#,
    )
    .await;
    let problem = changed.problem(409);
    assert_eq!(problem["existing"]["max_lease"], 5000, "{problem}");

    // Over PEZ_MAX_LEASE (6,000): the server's cap is the limit.
    let capped = create(
        &app.http,
        "capped",
        r#"{"min": 1, "max": 100000, "max_lease": 9000}"#,
    )
    .await;
    assert_eq!(capped.status, 201, "{}", capped.body);
    assert_eq!(capped.json()["max_lease"], 9000);
    assert_eq!(capped.json()["lease_limit"], 6000);
    assert_refused_naming(&lease(&app.http, "capped", 6001).await, 6001, 6000);
    assert_eq!(lease(&app.http, "capped", 6000).await.status, 200);

    let listed = admin(&app.http, Method::GET, "/v2/sequences", None)
        .await
        .json();
    let wide = listed["sequences"]
        .as_array()
        .and_then(|all| all.iter().find(|s| s["name"] == "wide"))
        .cloned()
        .unwrap_or_default();
    assert_eq!(wide["max_lease"], 5000, "{listed}");

    for bad in [
        r#"{"min": 1, "max": 10, "max_lease": 0}"#,
        r#"{"min": 1, "max": 10, "max_lease": 11}"#,
        r#"{"min": 1, "max": 10, "max_lease": -1}"#,
    ] {
        create(&app.http, "bad", bad).await.problem(400);
    }
}

/// A sequence stored before max_lease existed (the store's schema one
/// migration older; its rows hold no max_lease) gets the default when the
/// store is brought up to date, without anything being rewritten.
async fn a_sequence_stored_before_max_lease_existed_gets_the_default(backend: Backend) {
    let app = TestApp::spawn_on(backend, with_admin).await;
    let store = app.store();
    let created = create(
        &app.http,
        "old",
        r#"{"min": 1, "max": 50000, "max_lease": 7}"#,
    )
    .await;
    assert_eq!(created.status, 201, "{}", created.body);
    app.stop().await;
    // What the store looked like before: the migration undone, and not
    // recorded as applied.
    match store.database() {
        Some(database) => database.execute(&format!(
            "{} DELETE FROM __diesel_schema_migrations WHERE version = '{MIGRATION_VERSION}';",
            include_str!("../../migrations/postgres/2026-12-06-000006_max_lease/down.sql")
        )),
        None => {
            use diesel::connection::SimpleConnection;
            use diesel::{Connection, SqliteConnection};
            let file = store.data_dir().join(pez::store::DATABASE_FILE);
            let mut conn = SqliteConnection::establish(&file.display().to_string())
                .expect("open the embedded store");
            conn.batch_execute(&format!(
                "{} DELETE FROM __diesel_schema_migrations WHERE version = '{MIGRATION_VERSION}';",
                include_str!("../../migrations/sqlite/2026-12-06-000006_max_lease/down.sql")
            ))
            .expect("undo the migration");
        }
    }
    let app = TestApp::spawn_in(store, with_admin).await;
    let shown = admin(&app.http, Method::GET, "/v2/sequences/old", None)
        .await
        .json();
    assert_eq!(shown["max_lease"], 50, "a thousandth of 50,000: {shown}");
    assert_refused_naming(&lease(&app.http, "old", 51).await, 51, 50);
    assert_eq!(lease(&app.http, "old", 50).await.status, 200);
}

/// The version diesel records for the migration that adds max_lease.
const MIGRATION_VERSION: &str = "20261206000006";

crate::on_both_stores!(
    three_leases_of_a_million_no_longer_burn_a_sequence_of_three_million,
    an_explicit_max_lease_is_kept_and_pez_max_lease_caps_it,
    a_sequence_stored_before_max_lease_existed_gets_the_default,
);

/// Like [`run_pez_on`], and it must succeed; its stdout.
fn ok(dir: &Path, url: Option<&str>, args: &[&str]) -> String {
    let output = run_pez_on(dir, url, args);
    assert!(output.status.success(), "pez {args:?}: {output:?}");
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// The MAX_LEASE column of `pez sequence list` for `name`.
fn max_lease_listed(dir: &Path, url: Option<&str>, name: &str) -> String {
    let listed = ok(dir, url, &["sequence", "list"]);
    assert!(listed.starts_with("NAME"), "{listed}");
    let column = listed
        .lines()
        .next()
        .and_then(|header| header.split_whitespace().position(|c| c == "MAX_LEASE"))
        .unwrap_or_else(|| panic!("no MAX_LEASE column: {listed}"));
    listed
        .lines()
        .find(|line| line.split_whitespace().next() == Some(name))
        .and_then(|line| line.split_whitespace().nth(column))
        .unwrap_or_else(|| panic!("{name} missing: {listed}"))
        .to_owned()
}

/// `pez sequence create --max-lease` sets it; `list` and `show` show it;
/// an export carries it, and so do an import and a store copy; a bad one
/// is one line and a non-zero exit.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn export_import_and_store_copy_carry_a_sequences_max_lease() {
    let dir = TempDir::new();
    ok(
        dir.path(),
        None,
        &[
            "sequence",
            "create",
            "ring",
            "--max",
            "10000",
            "--sequence-max-lease",
            "77",
        ],
    );
    ok(
        dir.path(),
        None,
        &["sequence", "create", "plain", "--max", "40000"],
    );
    assert_eq!(max_lease_listed(dir.path(), None, "ring"), "77");
    assert_eq!(max_lease_listed(dir.path(), None, "plain"), "40");
    assert!(
        ok(dir.path(), None, &["sequence", "show", "ring"]).contains("max_lease  77"),
        "show"
    );
    let refused = run_pez_on(
        dir.path(),
        None,
        &[
            "sequence",
            "create",
            "bad",
            "--max",
            "10",
            "--sequence-max-lease",
            "11",
        ],
    );
    assert!(!refused.status.success(), "{refused:?}");

    let exported = ok(dir.path(), None, &["sequence", "export"]);
    let file: serde_json::Value = serde_json::from_str(&exported).expect("JSON");
    let ring = file["sequences"]
        .as_array()
        .and_then(|all| all.iter().find(|s| s["name"] == "ring"))
        .cloned()
        .unwrap_or_default();
    assert_eq!(ring["max_lease"], 77, "{exported}");

    let other = TempDir::new();
    let path = other.path().join("export.json");
    std::fs::write(&path, &exported).expect("write the export");
    ok(
        other.path(),
        None,
        &["sequence", "import", &path.display().to_string()],
    );
    assert_eq!(max_lease_listed(other.path(), None, "ring"), "77");
    assert_eq!(max_lease_listed(other.path(), None, "plain"), "40");

    let database = TestDatabase::create();
    ok(dir.path(), None, &["store", "copy", "--to", &database.url]);
    let url = Some(database.url.as_str());
    assert_eq!(max_lease_listed(dir.path(), url, "ring"), "77");
    assert_eq!(max_lease_listed(dir.path(), url, "plain"), "40");
}

const NUMBERS_TOKEN: &str = "numbers-t0ken";
const LEASE_TOKEN: &str = "lease-t0ken";

/// Who may take numbers and who may take range leases, for each setting
/// of PEZ_TOKENS and PEZ_LEASE_TOKENS: with PEZ_LEASE_TOKENS set, a token
/// of PEZ_TOKENS takes numbers but is refused a range lease (403, naming
/// the scope it lacks); a lease token and the admin token may do both.
/// Unset, leases are as before. No token reaches the log.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn range_leases_need_a_lease_token_once_pez_lease_tokens_is_set() {
    // (environment, token, may take numbers, may lease: the status)
    let scoped = [
        ("PEZ_TOKENS", NUMBERS_TOKEN),
        ("PEZ_LEASE_TOKENS", LEASE_TOKEN),
        ("PEZ_ADMIN_TOKEN", ADMIN),
    ];
    let compatible = [("PEZ_TOKENS", NUMBERS_TOKEN), ("PEZ_ADMIN_TOKEN", ADMIN)];
    let leases_only = [("PEZ_LEASE_TOKENS", LEASE_TOKEN)];
    type Env<'a> = &'a [(&'a str, &'a str)];
    type Case<'a> = (Env<'a>, Option<&'a str>, u16, u16);
    let cases: [Case<'_>; 14] = [
        (&scoped, None, 401, 401),
        (&scoped, Some("wrong"), 401, 401),
        (&scoped, Some(NUMBERS_TOKEN), 200, 403),
        (&scoped, Some(LEASE_TOKEN), 200, 200),
        (&scoped, Some(ADMIN), 200, 200),
        (&compatible, None, 401, 401),
        (&compatible, Some(NUMBERS_TOKEN), 200, 200),
        (&compatible, Some(ADMIN), 200, 200),
        (&[], None, 200, 200),
        (&[], Some("anything"), 200, 200),
        (&leases_only, None, 200, 401),
        (&leases_only, Some("wrong"), 200, 401),
        (&leases_only, Some(NUMBERS_TOKEN), 200, 401),
        (&leases_only, Some(LEASE_TOKEN), 200, 200),
    ];
    let mut servers: Vec<(Env<'_>, TempDir, PezProcess)> = Vec::new();
    for env in [&scoped[..], &compatible[..], &[], &leases_only[..]] {
        let dir = TempDir::new();
        let server = PezProcess::start(dir.path(), env);
        servers.push((env, dir, server));
    }
    for (env, token, numbers, leases) in cases {
        let (_, _, server) = servers
            .iter()
            .find(|(e, _, _)| *e == env)
            .expect("a server");
        let bearer = token.map(|t| format!("Bearer {t}"));
        let headers: Vec<(&str, &str)> = bearer
            .iter()
            .map(|b| ("authorization", b.as_str()))
            .collect();
        for path in [
            "/v1/forward",
            "/v2/reverse?count=2",
            "/v2/sequences/forward/next?count=2",
        ] {
            let got = server.http.send(Method::GET, path, &headers, None).await;
            assert_eq!(
                got.status.as_u16(),
                numbers,
                "{env:?} {token:?} {path}: {}",
                got.body
            );
        }
        let got = server
            .http
            .send(
                Method::POST,
                "/v2/sequences/forward/lease?count=10",
                &headers,
                None,
            )
            .await;
        assert_eq!(
            got.status.as_u16(),
            leases,
            "{env:?} {token:?} lease: {}",
            got.body
        );
        if leases == 403 {
            let problem = got.problem(403);
            assert!(
                problem["detail"]
                    .as_str()
                    .unwrap_or_default()
                    .contains("PEZ_LEASE_TOKENS"),
                "{problem}"
            );
        }
    }
    // The lease token is not an admin token.
    let (_, _, scoped_server) = &servers[0];
    let listing = scoped_server
        .http
        .send(
            Method::GET,
            "/v2/sequences",
            &[("authorization", &format!("Bearer {LEASE_TOKEN}"))],
            None,
        )
        .await;
    assert_eq!(listing.status, 401, "{}", listing.body);
    for (_, _, server) in &servers {
        let log = server.log().join("\n");
        for token in [NUMBERS_TOKEN, LEASE_TOKEN, ADMIN] {
            assert!(!log.contains(token), "{token} in the log: {log}");
        }
    }
}
