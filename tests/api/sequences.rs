//! Named sequences, the admin API and its tokens, strict order, range
//! leases and JavaScript-safe output, on both stores.

use crate::helpers::{
    Backend, HttpClient, MAX, StoreFixture, TestApp, TestResponse, assert_consecutive,
    assert_unique,
};
use hyper::Method;
use pez::config::{Access, Secret, Settings};
use std::time::{Duration, Instant};

const ADMIN: &str = "admin-s3cret";
const BEARER: &str = "Bearer admin-s3cret";

fn with_admin(settings: &mut Settings) {
    settings.access = Access {
        admin: Some(Secret::new(ADMIN.into())),
        dispensing: Vec::new(),
        ..Access::default()
    };
}

async fn admin(http: &HttpClient, method: Method, path: &str, body: Option<&str>) -> TestResponse {
    http.send(method, path, &[("authorization", BEARER)], body)
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

async fn admin_api_is_off_without_its_token_and_says_so(backend: Backend) {
    let app = TestApp::spawn_on(backend, |_| {}).await;
    for (method, path) in [
        (Method::GET, "/v2/sequences"),
        (Method::GET, "/v2/sequences/forward"),
        (Method::PUT, "/v2/sequences/orders"),
        (Method::DELETE, "/v2/sequences/orders"),
        (Method::POST, "/v2/sequences/forward/restart"),
    ] {
        let response = admin(&app.http, method, path, Some("{}")).await;
        let problem = response.problem(403);
        assert!(
            problem["detail"]
                .as_str()
                .unwrap_or_default()
                .contains("PEZ_ADMIN_TOKEN"),
            "{problem}"
        );
    }
    // Taking numbers does not need the admin API.
    assert_eq!(
        app.numbers("/v2/sequences/forward/next?count=2").await,
        vec![1, 2]
    );
}

async fn the_admin_api_needs_exactly_its_token(backend: Backend) {
    let app = TestApp::spawn_on(backend, with_admin).await;
    for (method, path, body) in [
        (Method::GET, "/v2/sequences", None),
        (Method::GET, "/v2/sequences/forward", None),
        (Method::PUT, "/v2/sequences/orders", Some("{}")),
        (
            Method::POST,
            "/v2/sequences/forward/restart",
            Some(r#"{"value": 5000000, "allow_early_wrap": true}"#),
        ),
        (Method::DELETE, "/v2/sequences/orders", None),
    ] {
        for authorization in [
            None,
            Some("Bearer wrong"),
            Some("Bearer admin-s3cre"),
            Some(ADMIN),
            Some("Basic admin-s3cret"),
        ] {
            let headers: Vec<(&str, &str)> = authorization
                .iter()
                .map(|a| ("authorization", *a))
                .collect();
            let response = app.http.send(method.clone(), path, &headers, body).await;
            response.problem(401);
            assert_eq!(
                response.header("www-authenticate"),
                Some("Bearer realm=\"pez\"")
            );
        }
        let response = admin(&app.http, method.clone(), path, body).await;
        assert!(
            response.status.is_success(),
            "{method} {path}: {} {}",
            response.status,
            response.body
        );
    }
}

async fn dispensing_needs_one_of_the_tokens_when_they_are_set(backend: Backend) {
    let app = TestApp::spawn_on(backend, |s| {
        s.access = Access {
            admin: Some(Secret::new(ADMIN.into())),
            dispensing: vec![
                Secret::new("client-a".into()),
                Secret::new("client-b".into()),
            ],
            ..Access::default()
        };
    })
    .await;
    for (method, path) in [
        (Method::GET, "/v1/forward"),
        (Method::GET, "/v2/reverse?count=2"),
        (Method::GET, "/v2/sequences/forward/next"),
        (Method::POST, "/v2/sequences/forward/next"),
        (Method::POST, "/v2/sequences/forward/lease?count=3"),
    ] {
        for wrong in [
            None,
            Some("Bearer client-c"),
            Some("Bearer client-"),
            Some("client-a"),
        ] {
            let headers: Vec<(&str, &str)> = wrong.iter().map(|a| ("authorization", *a)).collect();
            app.http
                .send(method.clone(), path, &headers, None)
                .await
                .problem(401);
        }
        for right in ["Bearer client-a", "Bearer client-b", BEARER] {
            let response = app
                .http
                .send(method.clone(), path, &[("authorization", right)], None)
                .await;
            assert_eq!(
                response.status, 200,
                "{method} {path} with {right}: {}",
                response.body
            );
        }
        // Help stays open.
        assert_eq!(
            app.http
                .request(Method::OPTIONS, path.split('?').next().unwrap_or(path))
                .await
                .status,
            200
        );
    }
}

async fn sequences_are_created_shown_listed_used_and_deleted(backend: Backend) {
    let app = TestApp::spawn_on(backend, with_admin).await;
    let created = create(
        &app.http,
        "orders",
        r#"{"direction": "descending", "min": 100, "max": 200}"#,
    )
    .await;
    assert_eq!(created.status, 201, "{}", created.body);
    assert_eq!(created.header("location"), Some("/v2/sequences/orders"));
    let shown = created.json();
    assert_eq!(
        (
            &shown["name"],
            &shown["direction"],
            &shown["min"],
            &shown["max"],
            &shown["start"],
            &shown["cycle"],
            &shown["mode"]
        ),
        (
            &"orders".into(),
            &"descending".into(),
            &100.into(),
            &200.into(),
            &200.into(),
            &true.into(),
            &"leased".into()
        )
    );
    // The same settings again change nothing; other settings conflict.
    let again = create(
        &app.http,
        "orders",
        r#"{"direction": "descending", "min": 100, "max": 200, "start": 200}"#,
    )
    .await;
    assert_eq!(again.status, 200, "{}", again.body);
    let conflict = create(
        &app.http,
        "orders",
        r#"{"direction": "ascending", "min": 100, "max": 200}"#,
    )
    .await;
    let problem = conflict.problem(409);
    assert_eq!(problem["existing"]["direction"], "descending");

    assert_eq!(
        app.numbers("/v2/sequences/orders/next?count=3").await,
        vec![200, 199, 198]
    );
    let post = app
        .http
        .send(Method::POST, "/v2/sequences/orders/next?count=2", &[], None)
        .await;
    assert_eq!(post.numbers(), vec![197, 196]);
    let listed = admin(&app.http, Method::GET, "/v2/sequences", None)
        .await
        .json();
    let names: Vec<&str> = listed["sequences"]
        .as_array()
        .expect("list")
        .iter()
        .filter_map(|s| s["name"].as_str())
        .collect();
    assert_eq!(names, ["forward", "orders", "reverse"]);
    let shown = admin(&app.http, Method::GET, "/v2/sequences/orders", None)
        .await
        .json();
    assert_eq!(shown["next"], 195, "{shown}");

    assert_eq!(
        admin(&app.http, Method::DELETE, "/v2/sequences/orders", None)
            .await
            .status,
        204
    );
    admin(&app.http, Method::GET, "/v2/sequences/orders", None)
        .await
        .problem(404);
    app.get("/v2/sequences/orders/next").await.problem(404);
    admin(&app.http, Method::DELETE, "/v2/sequences/orders", None)
        .await
        .problem(404);
    for builtin in ["forward", "reverse"] {
        admin(
            &app.http,
            Method::DELETE,
            &format!("/v2/sequences/{builtin}"),
            None,
        )
        .await
        .problem(409);
    }
    assert_eq!(app.numbers("/v1/forward").await, vec![1]);
}

async fn bad_names_are_refused(backend: Backend) {
    let app = TestApp::spawn_on(backend, with_admin).await;
    for name in [
        "..",
        "%2e%2e",
        "..%2F..%2Fetc",
        "a%2Fb",
        "a%27%3B%20drop%20table",
        "a;b",
        "Orders",
        "caf%C3%A9",
        "%F0%9F%A6%80",
        "a%20b",
        &"x".repeat(64),
    ] {
        create(&app.http, name, "{}").await.problem(400);
        app.get(&format!("/v2/sequences/{name}/next"))
            .await
            .problem(400);
    }
    // An empty name.
    app.get("/v2/sequences//next").await.problem(400);
    // 63 characters is fine.
    assert_eq!(create(&app.http, &"x".repeat(63), "{}").await.status, 201);
}

/// The names of PEZ's own objects in schema pez (and anything starting
/// with `__`, where diesel and PEZ's future objects live) are no sequence's,
/// on either store: 400 naming the rule, and the instance stays ready.
async fn names_of_pezs_own_objects_are_refused(backend: Backend) {
    let app = TestApp::spawn_on(backend, with_admin).await;
    for name in [
        "sequences",
        "generations",
        "instances",
        "sequences_pkey",
        "instances_pkey",
        "__diesel_schema_migrations",
        "__anything",
    ] {
        let problem = create(&app.http, name, "{}").await.problem(400);
        let detail = problem["detail"].as_str().unwrap_or_default();
        assert!(detail.contains("reserved"), "{name}: {problem}");
        assert!(detail.contains(name), "{name}: {problem}");
    }
    let ready = app.get("/readyz").await;
    assert_eq!(ready.status, 200, "{}", ready.body);
    // Near misses are ordinary names.
    for name in ["sequences2", "_sequences", "my_instances", "a__b"] {
        assert_eq!(create(&app.http, name, "{}").await.status, 201, "{name}");
        assert_eq!(
            app.numbers(&format!("/v2/sequences/{name}/next")).await,
            vec![1]
        );
    }
}

async fn bad_bodies_are_refused(backend: Backend) {
    let app = TestApp::spawn_on(backend, with_admin).await;
    for body in [
        "not json",
        "[1, 2]",
        r#"{"min": "1"}"#,
        r#"{"cycle": "yes"}"#,
        r#"{"direction": "sideways"}"#,
        r#"{"mode": "loose"}"#,
        r#"{"min": 10, "max": 5}"#,
        r#"{"min": 5, "max": 10, "start": 11}"#,
        r#"{"min": 5, "max": 10, "start": 4}"#,
        r#"{"min": 0}"#,
        r#"{"min": -5}"#,
        r#"{"max": 9223372036854775808}"#,
        r#"{"min": 1.5}"#,
        r#"{"colour": "blue"}"#,
    ] {
        let problem = create(&app.http, "orders", body).await.problem(400);
        assert!(
            !problem["detail"].as_str().unwrap_or_default().is_empty(),
            "{body}"
        );
    }
    let huge = format!(r#"{{"min": 1, "pad": "{}"}}"#, "x".repeat(20_000));
    create(&app.http, "orders", &huge).await.problem(413);
    for body in [
        "{}",
        r#"{"value": "5"}"#,
        r#"{"value": 0}"#,
        r#"{"value": 5, "extra": 1}"#,
        "nope",
    ] {
        admin(
            &app.http,
            Method::POST,
            "/v2/sequences/forward/restart",
            Some(body),
        )
        .await
        .problem(400);
    }
    // Nothing was created.
    admin(&app.http, Method::GET, "/v2/sequences/orders", None)
        .await
        .problem(404);
}

async fn a_sequence_that_does_not_cycle_runs_out_with_409(backend: Backend) {
    let app = TestApp::spawn_on(backend, with_admin).await;
    for (name, mode) in [("short", "leased"), ("short-strict", "strict")] {
        let body = format!(r#"{{"min": 1, "max": 5, "cycle": false, "mode": "{mode}"}}"#);
        assert_eq!(create(&app.http, name, &body).await.status, 201);
        let next = |count: u64| format!("/v2/sequences/{name}/next?count={count}");
        assert_eq!(app.numbers(&next(3)).await, vec![1, 2, 3]);
        let problem = app.get(&next(3)).await.problem(409);
        assert!(
            problem["detail"]
                .as_str()
                .unwrap_or_default()
                .contains("does not cycle")
        );
        // All or nothing, in both modes: the two left are still there
        // (a strict take that found too few gave them back).
        assert_eq!(problem["remaining"], 2, "{mode}: {problem}");
        assert_eq!(app.numbers(&next(2)).await, vec![4, 5], "{mode}");
        app.get(&next(1)).await.problem(409);
        app.get(&next(1)).await.problem(409);
    }
}

async fn strict_sequences_take_every_number_from_the_store(backend: Backend) {
    let app = TestApp::spawn_on(backend, with_admin).await;
    let created = create(
        &app.http,
        "invoices",
        r#"{"mode": "strict", "start": 1000}"#,
    )
    .await;
    assert_eq!(created.status, 201, "{}", created.body);
    let mut issued = Vec::new();
    for count in [1, 5, 100, 3] {
        issued.extend(
            app.numbers(&format!("/v2/sequences/invoices/next?count={count}"))
                .await,
        );
    }
    assert_eq!(issued[0], 1000);
    assert_consecutive(&issued, 1);
    let shown = admin(&app.http, Method::GET, "/v2/sequences/invoices", None)
        .await
        .json();
    assert_eq!(
        (shown["on_hand"].as_u64(), shown["store_next"].as_i64()),
        (Some(0), Some(1109)),
        "{shown}"
    );
    // Back to numbers handed out already only when asked to.
    let refused = admin(
        &app.http,
        Method::POST,
        "/v2/sequences/invoices/restart",
        Some(r#"{"value": 5}"#),
    )
    .await;
    assert!(
        refused.problem(409)["detail"]
            .as_str()
            .is_some_and(|d| d.contains("allow_backward")),
        "{}",
        refused.body
    );
    assert_eq!(
        app.numbers("/v2/sequences/invoices/next?count=1").await,
        vec![1109],
        "a refused restart moves nothing"
    );
    // A restart takes effect at once: nothing is held.
    admin(
        &app.http,
        Method::POST,
        "/v2/sequences/invoices/restart",
        Some(r#"{"value": 5, "allow_backward": true}"#),
    )
    .await;
    assert_eq!(
        app.numbers("/v2/sequences/invoices/next?count=2").await,
        vec![5, 6]
    );
}

async fn range_leases_are_exact_durable_and_split_where_they_wrap(backend: Backend) {
    let app = TestApp::spawn_on(backend, |s| {
        with_admin(s);
        s.max_lease = 5000;
    })
    .await;
    // A lease of a busy leased sequence: exact, and disjoint from /next.
    let from_next = app.numbers("/v2/forward?count=10").await;
    let lease = app
        .http
        .send(
            Method::POST,
            "/v2/sequences/forward/lease?count=1000",
            &[],
            None,
        )
        .await;
    let ranges = lease.json()["ranges"].clone();
    assert_eq!(ranges.as_array().map(Vec::len), Some(1), "{ranges}");
    let (first, last) = (
        ranges[0]["first"].as_i64().unwrap_or(0),
        ranges[0]["last"].as_i64().unwrap_or(0),
    );
    assert_eq!(last - first + 1, 1000);
    let more = app.numbers("/v2/forward?count=100").await;
    let mut all: Vec<i64> = from_next
        .into_iter()
        .chain(first..=last)
        .chain(more)
        .collect();
    assert_unique(&all);
    all.clear();

    // Wrapping inside a lease gives two ranges.
    create(
        &app.http,
        "ring",
        r#"{"min": 1, "max": 10, "mode": "strict", "max_lease": 10}"#,
    )
    .await;
    admin(
        &app.http,
        Method::POST,
        "/v2/sequences/ring/restart",
        Some(r#"{"value": 8}"#),
    )
    .await;
    let wrapped = app
        .http
        .send(Method::POST, "/v2/sequences/ring/lease?count=5", &[], None)
        .await
        .json();
    assert_eq!(
        wrapped,
        serde_json::json!({"ranges": [{"first": 8, "last": 10}, {"first": 1, "last": 2}]})
    );
    let text = app
        .http
        .send(
            Method::POST,
            "/v2/sequences/ring/lease?count=4&format=text",
            &[],
            None,
        )
        .await;
    assert_eq!(text.body, "3 6\n");
    let strings = app
        .http
        .send(
            Method::POST,
            "/v2/sequences/ring/lease?count=2&format=string",
            &[],
            None,
        )
        .await;
    assert_eq!(
        strings.json(),
        serde_json::json!({"ranges": [{"first": "7", "last": "8"}]})
    );

    app.http
        .send(
            Method::POST,
            "/v2/sequences/forward/lease?count=5001",
            &[],
            None,
        )
        .await
        .problem(400);
    app.http
        .send(
            Method::POST,
            "/v2/sequences/forward/lease?count=0",
            &[],
            None,
        )
        .await
        .problem(400);
    app.get("/v2/sequences/forward/lease?count=5")
        .await
        .problem(405);
    app.http
        .send(Method::POST, "/v2/sequences/nope/lease?count=5", &[], None)
        .await
        .problem(404);
}

async fn numbers_can_be_had_as_strings_or_text_for_javascript(backend: Backend) {
    let app = TestApp::spawn_on(backend, |_| {}).await;
    let single = app.get("/v1/reverse?format=string").await;
    assert_eq!(single.body, format!("\"{MAX}\""));
    assert_eq!(single.json(), serde_json::json!(MAX.to_string()));
    let text = app
        .http
        .send(
            Method::GET,
            "/v1/reverse",
            &[("accept", "text/plain")],
            None,
        )
        .await;
    assert_eq!(
        text.header("content-type"),
        Some("text/plain; charset=utf-8")
    );
    assert_eq!(text.body, format!("{}\n", MAX - 1));
    let list = app.get("/v2/reverse?count=2&format=text").await;
    assert_eq!(list.body, format!("{}\n{}\n", MAX - 2, MAX - 3));
    let strings = app
        .get("/v2/sequences/reverse/next?count=2&format=string")
        .await
        .json();
    assert_eq!(
        strings,
        serde_json::json!([(MAX - 4).to_string(), (MAX - 5).to_string()])
    );
    // JSON stays the default, as in the original.
    let plain = app
        .http
        .send(
            Method::GET,
            "/v2/forward?count=2",
            &[("accept", "application/json, text/plain;q=0.5")],
            None,
        )
        .await;
    assert_eq!(plain.body, "[1, 2]");
    app.get("/v2/forward?format=xml").await.problem(400);
}

crate::on_both_stores!(
    admin_api_is_off_without_its_token_and_says_so,
    the_admin_api_needs_exactly_its_token,
    dispensing_needs_one_of_the_tokens_when_they_are_set,
    sequences_are_created_shown_listed_used_and_deleted,
    bad_names_are_refused,
    names_of_pezs_own_objects_are_refused,
    bad_bodies_are_refused,
    a_sequence_that_does_not_cycle_runs_out_with_409,
    strict_sequences_take_every_number_from_the_store,
    range_leases_are_exact_durable_and_split_where_they_wrap,
    numbers_can_be_had_as_strings_or_text_for_javascript,
);

/// A restart (and a creation, and a deletion) made on one instance reaches
/// the others within PEZ_SYNC_INTERVAL_MS plus one store call.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn changes_made_on_one_instance_reach_every_instance_within_the_stated_bound() {
    const SYNC: Duration = Duration::from_millis(300);
    // The interval, plus a store call bounded by PEZ_DB_TIMEOUT_MS (1 s) for
    // the generations and one for the listing, on a busy machine.
    let bound = SYNC + Duration::from_millis(2500);
    let store = StoreFixture::new(Backend::Postgres);
    let adjust = |s: &mut Settings| {
        with_admin(s);
        s.sync_interval = SYNC;
    };
    let a = TestApp::spawn_in(store.clone(), adjust).await;
    let others = [
        TestApp::spawn_in(store.clone(), adjust).await,
        TestApp::spawn_in(store.clone(), adjust).await,
    ];
    for other in &others {
        // Each holds a block of forward.
        assert!(other.numbers("/v1/forward").await[0] < 10_000);
    }
    let restarted_at = Instant::now();
    admin(
        &a.http,
        Method::POST,
        "/v2/sequences/forward/restart",
        Some(r#"{"value": 5000000000, "allow_early_wrap": true}"#),
    )
    .await;
    for other in &others {
        loop {
            let next = other.numbers("/v1/forward").await[0];
            if next >= 5_000_000_000 {
                break;
            }
            assert!(
                restarted_at.elapsed() < bound,
                "still serving {next} after {:?}",
                restarted_at.elapsed()
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    create(&a.http, "shared", r#"{"start": 42}"#).await;
    let created_at = Instant::now();
    let mut seen = Vec::new();
    for other in &others {
        loop {
            let response = other.get("/v2/sequences/shared/next").await;
            if response.status == 200 {
                seen.extend(response.numbers());
                break;
            }
            assert!(created_at.elapsed() < bound, "{}", response.body);
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
    assert_unique(&seen);
    admin(&a.http, Method::DELETE, "/v2/sequences/shared", None).await;
    let deleted_at = Instant::now();
    for other in &others {
        while other.get("/v2/sequences/shared/next").await.status != 404 {
            assert!(deleted_at.elapsed() < bound);
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

/// Strict mode across three instances: every request that finished before
/// another began got smaller numbers; nothing twice.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn strict_sequences_issue_one_global_order_across_three_instances() {
    let store = StoreFixture::new(Backend::Postgres);
    let mut apps = Vec::new();
    for _ in 0..3 {
        apps.push(
            TestApp::spawn_in(store.clone(), |s| {
                with_admin(s);
                // Every batch waits for its commit to be flushed, which on a
                // busy shared disk can take a while: this test is about
                // order, not speed.
                s.lease_wait = Duration::from_secs(10);
            })
            .await,
        );
    }
    assert_eq!(
        create(&apps[0].http, "global", r#"{"mode": "strict"}"#)
            .await
            .status,
        201
    );
    // The others learn of it at their next sync.
    for app in &apps {
        let started = Instant::now();
        while app.get("/v2/sequences/global/next").await.status != 200 {
            assert!(started.elapsed() < Duration::from_secs(3));
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
    let epoch = Instant::now();
    let mut clients = Vec::new();
    for (i, app) in apps.iter().enumerate() {
        for client in 0..6 {
            let http = app.http.clone();
            clients.push(tokio::spawn(async move {
                let mut requests = Vec::new();
                for n in 0..25u64 {
                    let count = (i as u64 + client + n) % 4 + 1;
                    let began = epoch.elapsed();
                    let numbers = http
                        .numbers(&format!("/v2/sequences/global/next?count={count}"))
                        .await;
                    requests.push((began, epoch.elapsed(), numbers));
                }
                requests
            }));
        }
    }
    let mut requests = Vec::new();
    for client in clients {
        requests.extend(client.await.expect("client"));
    }
    let all: Vec<i64> = requests
        .iter()
        .flat_map(|(_, _, n)| n.iter().copied())
        .collect();
    assert_unique(&all);
    for (began, ended, numbers) in &requests {
        assert!(numbers.windows(2).all(|w| w[0] < w[1]), "{numbers:?}");
        for (other_began, _, other) in &requests {
            if other_began > ended {
                assert!(
                    other[0] > *numbers.last().expect("numbers"),
                    "{numbers:?} (ended {ended:?}) then {other:?} (began {other_began:?}, after {began:?})"
                );
            }
        }
    }
}
