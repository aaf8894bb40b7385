//! The operator endpoints (health, readiness, metrics, version, the API
//! document) and the limits that protect the server from hostile clients.

use crate::helpers::{
    Backend, PezProcess, StoreFixture, TempDir, TestApp, raw_exchange, read_response, run_pez,
};
use crate::postgres_support::{Cluster, ClusterOptions, TestDatabase};
use diesel::connection::SimpleConnection;
use diesel::{Connection, SqliteConnection};
use hyper::Method;
use pez::config::{Access, Secret};
use serde_json::Value;
use std::io::Write;
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

#[tokio::test]
async fn healthz_and_version_answer() {
    let app = TestApp::spawn_on(Backend::Sqlite, |_| {}).await;
    assert_eq!(
        app.get("/healthz").await.json(),
        serde_json::json!({"status": "ok"})
    );
    let version = app.get("/version").await.json();
    let printed = String::from_utf8_lossy(&run_pez(&std::env::temp_dir(), &["--version"]).stdout)
        .into_owned();
    assert_eq!(
        printed.trim(),
        format!("pez {}", version["full"].as_str().unwrap_or_default())
    );
    assert_eq!(version["version"], env!("CARGO_PKG_VERSION"));
}

#[tokio::test]
async fn readyz_says_why_it_is_not_ready_and_recovers() {
    let cluster = Cluster::start(ClusterOptions::default());
    let store = StoreFixture::on_database(TestDatabase::create_on(&cluster.admin_url));
    let app = TestApp::spawn_in(store, |s| {
        s.block_min = 200;
        s.block_max = 200;
    })
    .await;
    assert_eq!(app.get("/readyz").await.json()["status"], "ready");
    cluster.stop("fast");
    // The next sync (every PEZ_SYNC_INTERVAL_MS, 1 s) finds the store gone.
    let started = Instant::now();
    let problem = loop {
        let response = app.get("/readyz").await;
        if response.status == 503 {
            break response.problem(503);
        }
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "still ready without a store"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert!(
        problem["reasons"].to_string().contains("store"),
        "{problem}"
    );
    cluster.restart();
    let started = Instant::now();
    while app.get("/readyz").await.status != 200 {
        assert!(
            started.elapsed() < Duration::from_secs(15),
            "not ready again"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test]
async fn an_exhausted_sequence_leaves_the_instance_ready() {
    let app = TestApp::spawn_on(Backend::Sqlite, |s| {
        s.access.admin = Some(Secret::new("admin".into()));
    })
    .await;
    let created = app
        .http
        .send(
            Method::PUT,
            "/v2/sequences/tiny",
            &[("authorization", "Bearer admin")],
            Some(r#"{"min": 1, "max": 3, "cycle": false}"#),
        )
        .await;
    assert_eq!(created.status, 201, "{}", created.body);
    assert_eq!(
        app.numbers("/v2/sequences/tiny/next?count=3").await,
        [1, 2, 3]
    );
    app.get("/v2/sequences/tiny/next").await.problem(409);
    let ready = app.get("/readyz").await;
    assert_eq!(ready.status, 200, "{}", ready.body);
    assert_eq!(app.numbers("/v1/forward").await, [1]);
}

/// Operators' endpoints answer from what the instance knows: a flood of
/// them makes no store call (the sync task's one call a second aside), so
/// it cannot take the store's connections from leases.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn status_metrics_and_readiness_make_no_store_calls() {
    let app = TestApp::spawn_on(Backend::Postgres, |s| {
        s.sync_interval = Duration::from_secs(3600);
    })
    .await;
    let calls = |text: &str| -> f64 {
        text.lines()
            .filter(|line| line.starts_with("pez_store_calls_total"))
            // The instance's heartbeat and the store probe, every few
            // seconds, are no operator's.
            .filter(|line| !line.contains("\"heartbeat\"") && !line.contains("\"probe\""))
            .filter_map(|line| line.rsplit(' ').next()?.parse::<f64>().ok())
            .sum()
    };
    let before = calls(&app.get("/metrics").await.body);
    for _ in 0..50 {
        for path in ["/", "/metrics", "/readyz"] {
            assert_eq!(app.get(path).await.status, 200, "{path}");
        }
    }
    let after = calls(&app.get("/metrics").await.body);
    assert_eq!(after, before, "operator endpoints called the store");
}

/// The value of the first sample line that starts with `prefix`.
fn sample(metrics: &str, prefix: &str) -> f64 {
    metrics
        .lines()
        .find(|line| line.starts_with(prefix))
        .and_then(|line| line.rsplit(' ').next())
        .and_then(|value| value.parse().ok())
        .unwrap_or_else(|| panic!("no {prefix} in:\n{metrics}"))
}

#[tokio::test]
async fn metrics_count_requests_numbers_leases_and_show_the_state_of_each_sequence() {
    let app = TestApp::spawn_on(Backend::Sqlite, |_| {}).await;
    for _ in 0..3 {
        app.numbers("/v2/forward?count=10").await;
    }
    app.numbers("/v1/reverse").await;
    app.get("/v2/forward?count=0").await.problem(400);
    let response = app.get("/metrics").await;
    assert!(
        response
            .header("content-type")
            .unwrap_or_default()
            .starts_with("text/plain")
    );
    let text = response.body;
    assert_eq!(
        sample(
            &text,
            r#"pez_http_requests_total{route="/v2/forward",status="200"}"#
        ),
        3.0
    );
    assert_eq!(
        sample(
            &text,
            r#"pez_http_requests_total{route="/v2/forward",status="400"}"#
        ),
        1.0
    );
    assert_eq!(
        sample(&text, r#"pez_numbers_issued_total{sequence="forward"}"#),
        30.0
    );
    assert_eq!(
        sample(&text, r#"pez_numbers_issued_total{sequence="reverse"}"#),
        1.0
    );
    assert!(
        sample(
            &text,
            r#"pez_leases_total{outcome="ok",sequence="forward"}"#
        ) >= 1.0
    );
    assert!(
        sample(
            &text,
            r#"pez_lease_duration_seconds_count{sequence="forward"}"#
        ) >= 1.0
    );
    assert_eq!(
        sample(&text, r#"pez_numbers_on_hand{sequence="forward"}"#),
        1000.0 - 30.0
    );
    let used = sample(
        &text,
        r#"pez_sequence_range_used_ratio{sequence="forward"}"#,
    );
    assert!(used > 0.0 && used < 1e-12, "{used}");
    assert!(text.contains("pez_build_info{version="));
    assert!(text.contains("# TYPE pez_lease_duration_seconds histogram"));
}

/// Every path and method the document names is served, answering one of
/// the statuses the document lists for it; OPTIONS says the same as the
/// document.
#[tokio::test]
async fn the_openapi_document_describes_what_the_server_does() {
    let app = TestApp::spawn_on(Backend::Sqlite, |s| {
        s.access = Access {
            admin: Some(Secret::new("admin".into())),
            dispensing: Vec::new(),
            ..Access::default()
        };
    })
    .await;
    let document = app.get("/openapi.json").await.json();
    assert_eq!(document["openapi"], "3.1.0");
    let paths = document["paths"].as_object().expect("paths");
    let mut listed: Vec<&str> = paths.keys().map(String::as_str).collect();
    listed.sort_unstable();
    assert_eq!(
        listed,
        [
            "/",
            "/healthz",
            "/metrics",
            "/openapi.json",
            "/readyz",
            "/v1/forward",
            "/v1/reverse",
            "/v2/forward",
            "/v2/reverse",
            "/v2/sequences",
            "/v2/sequences/{name}",
            "/v2/sequences/{name}/lease",
            "/v2/sequences/{name}/next",
            "/v2/sequences/{name}/restart",
            "/version",
        ]
    );
    let auth = [("authorization", "Bearer admin")];
    for (path, item) in paths {
        let concrete = path.replace("{name}", "forward");
        for (method, operation) in item.as_object().expect("path item") {
            if !["get", "put", "post", "delete", "options", "patch", "head"]
                .contains(&method.as_str())
            {
                continue; // summary, description, parameters
            }
            let Ok(method) = method.to_uppercase().parse::<Method>() else {
                continue;
            };
            let body = match (path.as_str(), &method) {
                ("/v2/sequences/{name}/restart", &Method::POST) => Some(r#"{"value": 1}"#),
                ("/v2/sequences/{name}", &Method::PUT) => Some(r#"{}"#),
                _ => None,
            };
            let response = app.http.send(method.clone(), &concrete, &auth, body).await;
            let documented = &operation["responses"][response.status.as_str()];
            assert!(
                !documented.is_null(),
                "{method} {path}: {} is not documented ({})",
                response.status,
                response.body
            );
            if method == Method::OPTIONS {
                let help = response.json();
                assert_eq!(help["description"], item["description"], "{path}");
                assert!(response.header("allow").is_some());
            }
        }
    }
    // A method the document does not list is 405 with Allow.
    let response = app
        .http
        .send(Method::PATCH, "/v2/sequences/forward", &auth, None)
        .await;
    response.problem(405);
    let help = app
        .http
        .request(Method::OPTIONS, "/v2/forward")
        .await
        .json();
    let documented: &Value =
        &document["paths"]["/v2/forward"]["get"]["parameters"][0]["schema"]["maximum"];
    assert_eq!(&help["parameters"]["count"]["maximum"], documented);
}

/// `holders` connections each send `holding` and keep their connection;
/// once they hold every slot, one more client sends a whole request.
/// Returns how long that client waited for its answer (a 200) and what each
/// holder got back, with when its connection was closed.
fn one_more_than_the_cap(
    addr: SocketAddr,
    holders: usize,
    holding: &'static [u8],
) -> (Duration, Vec<(String, Option<Duration>)>) {
    let holders: Vec<_> = (0..holders)
        .map(|_| std::thread::spawn(move || raw_exchange(addr, holding, Duration::from_secs(10))))
        .collect();
    std::thread::sleep(Duration::from_millis(150));
    let started = Instant::now();
    let (answer, _) = raw_exchange(
        addr,
        b"GET /v1/forward HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
        Duration::from_secs(10),
    );
    let waited = started.elapsed();
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    let seen = holders
        .into_iter()
        .map(|h| h.join().expect("holder"))
        .collect();
    (waited, seen)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oversized_request_lines_headers_and_bodies_are_refused() {
    let dir = TempDir::new();
    let pez = PezProcess::start(dir.path(), &[("PEZ_ADMIN_TOKEN", "admin")]);
    let addr: SocketAddr = pez.http.addr();
    let long_line = format!(
        "GET /v1/forward?pad={} HTTP/1.1\r\nHost: x\r\n\r\n",
        "a".repeat(9000)
    );
    let (answer, _) = raw_exchange(addr, long_line.as_bytes(), Duration::from_secs(5));
    assert!(
        answer.starts_with("HTTP/1.1 431") || answer.starts_with("HTTP/1.1 414"),
        "{answer}"
    );
    let many_headers: String = (0..300)
        .map(|i| format!("X-Padding-{i}: {}\r\n", "b".repeat(30)))
        .collect();
    let big_head = format!("GET /v1/forward HTTP/1.1\r\nHost: x\r\n{many_headers}\r\n");
    let (answer, _) = raw_exchange(addr, big_head.as_bytes(), Duration::from_secs(5));
    assert!(answer.starts_with("HTTP/1.1 431"), "{answer}");

    // A body over the limit: 413, declared or chunked, on any route.
    let body = "x".repeat(20_000);
    let declared = format!(
        "PUT /v2/sequences/big HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer admin\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    let (answer, _) = raw_exchange(addr, declared.as_bytes(), Duration::from_secs(5));
    assert!(answer.starts_with("HTTP/1.1 413"), "{answer}");
    assert!(answer.contains("application/problem+json"), "{answer}");
    let on_v1 = format!(
        "GET /v1/forward HTTP/1.1\r\nHost: x\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    let (answer, _) = raw_exchange(addr, on_v1.as_bytes(), Duration::from_secs(5));
    assert!(answer.starts_with("HTTP/1.1 413"), "{answer}");
    let chunk = "y".repeat(8000);
    let chunked = format!(
        "PUT /v2/sequences/big HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer admin\r\nTransfer-Encoding: chunked\r\n\r\n\
         {len:x}\r\n{chunk}\r\n{len:x}\r\n{chunk}\r\n{len:x}\r\n{chunk}\r\n0\r\n\r\n",
        len = chunk.len()
    );
    let (answer, _) = raw_exchange(addr, chunked.as_bytes(), Duration::from_secs(5));
    assert!(answer.starts_with("HTTP/1.1 413"), "{answer}");

    // The server is unharmed.
    assert!(!pez.http.numbers("/v1/forward").await.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_headers_are_cut_off_and_other_clients_do_not_notice() {
    let dir = TempDir::new();
    let pez = PezProcess::start(dir.path(), &[("PEZ_HEADER_TIMEOUT_MS", "700")]);
    let addr = pez.http.addr();
    let dribbler = std::thread::spawn(move || {
        raw_exchange(
            addr,
            b"GET /v1/forward HTTP/1.1\r\nHost: x\r\nX-Slow: ",
            Duration::from_secs(10),
        )
    });
    // Meanwhile others are served at once.
    for _ in 0..20 {
        let started = Instant::now();
        pez.http.numbers("/v1/forward").await;
        assert!(started.elapsed() < Duration::from_millis(500));
    }
    let (_, closed) = dribbler.join().expect("dribbler");
    let closed = closed.expect("the slow client's connection was closed");
    assert!(
        closed >= Duration::from_millis(600) && closed < Duration::from_secs(5),
        "{closed:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connections_beyond_the_cap_wait_and_the_server_keeps_serving() {
    let dir = TempDir::new();
    let pez = PezProcess::start(
        dir.path(),
        &[
            ("PEZ_MAX_CONNECTIONS", "4"),
            ("PEZ_HEADER_TIMEOUT_MS", "1000"),
        ],
    );
    // Four connections that never finish their headers take every slot, so
    // a fifth waits until the header timeout frees one.
    let (waited, _) = one_more_than_the_cap(pez.http.addr(), 4, b"GET /v1/forward HTTP/1.1\r\n");
    assert!(
        waited >= Duration::from_millis(500) && waited < Duration::from_secs(5),
        "{waited:?}"
    );
    assert!(!pez.http.numbers("/v1/forward").await.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_that_takes_too_long_is_answered_503() {
    let app = TestApp::spawn_on(Backend::Sqlite, |s| {
        s.access = Access {
            admin: Some(Secret::new("admin".into())),
            dispensing: Vec::new(),
            ..Access::default()
        };
        s.lease_wait = Duration::from_secs(20);
        s.store_timeout = Duration::from_secs(20);
        s.limits.request_timeout = Duration::from_millis(400);
    })
    .await;
    let created = app
        .http
        .send(
            Method::PUT,
            "/v2/sequences/slow",
            &[("authorization", "Bearer admin")],
            Some(r#"{"mode": "strict"}"#),
        )
        .await;
    assert_eq!(created.status, 201);
    let mut blocker =
        SqliteConnection::establish(&app.database_file().to_string_lossy()).expect("open");
    blocker.batch_execute("BEGIN IMMEDIATE").expect("lock");
    let started = Instant::now();
    let response = app.get("/v2/sequences/slow/next").await;
    let took = started.elapsed();
    response.problem(503);
    assert!(
        took >= Duration::from_millis(350) && took < Duration::from_secs(3),
        "{took:?}"
    );
    blocker.batch_execute("ROLLBACK").expect("unlock");
    // Other requests were never held up.
    assert_eq!(app.numbers("/v1/forward").await, vec![1]);
}

#[tokio::test]
async fn json_logs_are_one_object_per_line_without_requests_or_secrets() {
    const ADMIN: &str = "very-secret-admin-token";
    const CLIENT: &str = "client-secret-token-1";
    let dir = TempDir::new();
    let mut pez = PezProcess::start(
        dir.path(),
        &[
            ("PEZ_LOG_FORMAT", "json"),
            // Leases are logged at debug.
            ("PEZ_LOG", "info,pez::dispenser::leaser=debug"),
            ("PEZ_ADMIN_TOKEN", ADMIN),
            ("PEZ_TOKENS", CLIENT),
        ],
    );
    let bearer = format!("Bearer {CLIENT}");
    for _ in 0..20 {
        let response = pez
            .http
            .send(
                Method::GET,
                "/v1/forward",
                &[("authorization", &bearer)],
                None,
            )
            .await;
        assert_eq!(response.status, 200);
    }
    let wrong = pez
        .http
        .send(
            Method::GET,
            "/v1/forward",
            &[("authorization", "Bearer not-it")],
            None,
        )
        .await;
    wrong.problem(401);
    pez.terminate();
    let (code, _) = pez.wait_exit(Duration::from_secs(10));
    assert_eq!(code, Some(0));
    let log = pez.log();
    let mut messages = Vec::new();
    for line in &log {
        let object: Value =
            serde_json::from_str(line).unwrap_or_else(|e| panic!("not JSON ({e}): {line}"));
        for field in ["ts", "level", "target", "message"] {
            assert!(object[field].is_string(), "{field} missing: {line}");
        }
        messages.push(object["message"].as_str().unwrap_or_default().to_owned());
        assert!(
            !line.contains(ADMIN) && !line.contains(CLIENT) && !line.contains("not-it"),
            "{line}"
        );
    }
    for expected in ["listening on", "forward: leased", "stopped:"] {
        assert!(
            messages.iter().any(|m| m.contains(expected)),
            "no {expected:?} in {messages:?}"
        );
    }
    // No line per request at the default level.
    assert!(
        log.len() < 15,
        "{} lines for 21 requests: {messages:?}",
        log.len()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_keep_alive_connections_are_closed_and_free_their_slots() {
    let dir = TempDir::new();
    let pez = PezProcess::start(
        dir.path(),
        &[("PEZ_MAX_CONNECTIONS", "2"), ("PEZ_IDLE_TIMEOUT_MS", "600")],
    );
    // Two clients ask once, keep their connections open and say nothing
    // more: every slot is taken, and a third waits until they are closed.
    let (waited, holders) = one_more_than_the_cap(
        pez.http.addr(),
        2,
        b"GET /v1/forward HTTP/1.1\r\nHost: x\r\n\r\n",
    );
    assert!(
        waited >= Duration::from_millis(300) && waited < Duration::from_secs(4),
        "{waited:?}"
    );
    for (answer, closed) in holders {
        assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
        let closed = closed.expect("the idle connection was closed");
        assert!(
            closed >= Duration::from_millis(500) && closed < Duration::from_secs(4),
            "{closed:?}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_kept_alive_connection_waits_for_its_next_request_longer_than_the_header_timeout() {
    let dir = TempDir::new();
    let pez = PezProcess::start(
        dir.path(),
        &[
            ("PEZ_HEADER_TIMEOUT_MS", "300"),
            ("PEZ_IDLE_TIMEOUT_MS", "5000"),
        ],
    );
    let addr = pez.http.addr();
    let exchange = std::thread::spawn(move || {
        let mut stream = TcpStream::connect(addr).expect("connect");
        stream
            .set_read_timeout(Some(Duration::from_secs(10)))
            .expect("timeout");
        let request = b"GET /v1/forward HTTP/1.1\r\nHost: x\r\n\r\n";
        stream.write_all(request).expect("first request");
        let first = read_response(&mut stream);
        // Idle for more than the header timeout, less than the idle one.
        std::thread::sleep(Duration::from_millis(900));
        let _ = stream.write_all(request);
        (first, read_response(&mut stream))
    });
    let (first, second) = exchange.join().expect("client");
    assert!(first.starts_with("HTTP/1.1 200"), "{first}");
    assert!(second.starts_with("HTTP/1.1 200"), "{second}");
}

/// The lines of `/metrics` that carry a series of sequence `name`.
fn series_of(metrics: &str, name: &str) -> Vec<String> {
    let label = format!("sequence=\"{name}\"");
    metrics
        .lines()
        .filter(|line| !line.starts_with('#') && line.contains(&label))
        .map(str::to_owned)
        .collect()
}

/// `/metrics` as the admin sees it (with the admin token set, it needs one).
async fn scrape(app: &TestApp) -> String {
    let scraped = app
        .http
        .send(
            Method::GET,
            "/metrics",
            &[("authorization", "Bearer admin")],
            None,
        )
        .await;
    assert_eq!(scraped.status, 200, "{}", scraped.body);
    scraped.body
}

/// Creates `name`, takes numbers of it, leases a range and deletes it.
async fn create_take_delete(app: &TestApp, name: &str) {
    let auth = [("authorization", "Bearer admin")];
    let path = format!("/v2/sequences/{name}");
    let created = app.http.send(Method::PUT, &path, &auth, Some("{}")).await;
    assert_eq!(created.status, 201, "{}", created.body);
    assert_eq!(app.numbers(&format!("{path}/next?count=3")).await.len(), 3);
    let leased = app
        .http
        .send(Method::POST, &format!("{path}/lease?count=5"), &auth, None)
        .await;
    assert_eq!(leased.status, 200, "{}", leased.body);
    let deleted = app.http.send(Method::DELETE, &path, &auth, None).await;
    assert_eq!(deleted.status, 204, "{}", deleted.body);
}

/// A deleted sequence's series leave `/metrics`: however many sequences
/// came and went, the exposition stays the same size.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deleted_sequences_leave_no_series_in_the_metrics() {
    let app = TestApp::spawn_on(Backend::Sqlite, |s| {
        s.access.admin = Some(Secret::new("admin".into()));
    })
    .await;
    // Every route and status these cycles use (and the scrape itself)
    // has its request counter once they have been used.
    create_take_delete(&app, "warm-up").await;
    scrape(&app).await;
    let before = scrape(&app).await;
    assert!(series_of(&before, "warm-up").is_empty(), "{before}");
    for i in 0..40 {
        create_take_delete(&app, &format!("gone-{i}")).await;
    }
    let after = scrape(&app).await;
    for i in 0..40 {
        let left = series_of(&after, &format!("gone-{i}"));
        assert!(left.is_empty(), "gone-{i} left {left:?}");
    }
    assert_eq!(
        after.lines().count(),
        before.lines().count(),
        "the exposition grew with deleted sequences:\n{after}"
    );
    // The sequences still there keep theirs.
    assert!(!series_of(&after, "forward").is_empty(), "{after}");
}

/// A sequence deleted by another instance leaves this one's `/metrics`
/// once its sync notices.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sequence_deleted_elsewhere_leaves_no_series_here() {
    let store = StoreFixture::new(Backend::Postgres);
    let adjust = |s: &mut pez::config::Settings| {
        s.access.admin = Some(Secret::new("admin".into()));
        s.sync_interval = Duration::from_millis(300);
    };
    let a = TestApp::spawn_in(store.clone(), adjust).await;
    let b = TestApp::spawn_in(store, adjust).await;
    let auth = [("authorization", "Bearer admin")];
    let created = a
        .http
        .send(Method::PUT, "/v2/sequences/shared", &auth, Some("{}"))
        .await;
    assert_eq!(created.status, 201, "{}", created.body);
    let started = Instant::now();
    while b.get("/v2/sequences/shared/next").await.status != 200 {
        assert!(started.elapsed() < Duration::from_secs(5), "b never saw it");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(!series_of(&scrape(&b).await, "shared").is_empty());
    let deleted = a
        .http
        .send(Method::DELETE, "/v2/sequences/shared", &auth, None)
        .await;
    assert_eq!(deleted.status, 204, "{}", deleted.body);
    let started = Instant::now();
    loop {
        let left = series_of(&scrape(&b).await, "shared");
        if left.is_empty() {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "still there after {:?}: {left:?}",
            started.elapsed()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(series_of(&scrape(&a).await, "shared").is_empty());
}
