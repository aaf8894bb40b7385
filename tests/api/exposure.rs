//! What the routes that need no token show, to whom (issue 17, point 3):
//! with any token set, a stranger or a client that takes numbers learns
//! that the instance is up, its version and how many sequences it serves;
//! sequences, positions, rates and where the store is need the admin
//! token or a metrics token. The probes never carry the store's own error
//! text: that goes to the log.

use crate::helpers::{PezProcess, TempDir, TestApp, TestResponse};
use crate::postgres_support::TestDatabase;
use hyper::Method;
use std::time::{Duration, Instant};

const ADMIN: &str = "admin-t0ken";
const CLIENT: &str = "client-t0ken";
const SCRAPER: &str = "prometheus-t0ken";

/// A server with every kind of token set and a sequence of its own, with
/// numbers taken from it.
async fn guarded(dir: &TempDir) -> PezProcess {
    let tokens_file = dir.path().join("metrics-tokens");
    std::fs::write(&tokens_file, format!("# Prometheus\n{SCRAPER}\n")).expect("write tokens");
    let metrics_tokens = format!("@{}", tokens_file.display());
    let pez = PezProcess::start(
        dir.path(),
        &[
            ("PEZ_ADMIN_TOKEN", ADMIN),
            ("PEZ_TOKENS", CLIENT),
            ("PEZ_METRICS_TOKENS", &metrics_tokens),
        ],
    );
    let created = get_as(&pez, Method::PUT, "/v2/sequences/secret-orders", ADMIN).await;
    assert_eq!(created.status, 201, "{}", created.body);
    let taken = get_as(
        &pez,
        Method::GET,
        "/v2/sequences/secret-orders/next?count=7",
        CLIENT,
    )
    .await;
    assert_eq!(taken.numbers(), (1..=7).collect::<Vec<_>>());
    pez
}

async fn get_as(pez: &PezProcess, method: Method, path: &str, token: &str) -> TestResponse {
    let bearer = format!("Bearer {token}");
    let body = (method == Method::PUT).then_some("{}");
    pez.http
        .send(method, path, &[("authorization", &bearer)], body)
        .await
}

/// What no page for strangers may hold: a sequence's name or position, the
/// store's location.
fn assert_no_details(page: &str, dir: &TempDir) {
    for detail in [
        "secret-orders",
        "forward",
        "reverse",
        "data-sequence",
        "data-value",
        "sqlite",
        &dir.path().display().to_string(),
    ] {
        assert!(!page.contains(detail), "{detail:?} shown:\n{page}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_tokens_set_the_status_page_shows_details_only_to_the_admin_and_metrics_tokens() {
    let dir = TempDir::new();
    let pez = guarded(&dir).await;
    let strangers = [
        pez.http.get("/").await,
        get_as(&pez, Method::GET, "/", CLIENT).await,
        get_as(&pez, Method::GET, "/", "wrong").await,
    ];
    for page in strangers {
        assert_eq!(page.status, 200, "{}", page.body);
        assert_eq!(page.header("cache-control"), Some("no-store"));
        assert_no_details(&page.body, &dir);
        // What a load balancer or a passer-by may know.
        assert!(
            page.body.contains("id=\"ready\" data-ready=\"true\""),
            "{}",
            page.body
        );
        assert!(
            page.body.contains(env!("CARGO_PKG_VERSION")),
            "{}",
            page.body
        );
        assert!(page.body.contains("id=\"uptime\""), "{}", page.body);
        assert!(page.body.contains("data-count=\"3\""), "{}", page.body);
    }
    for token in [ADMIN, SCRAPER] {
        let page = get_as(&pez, Method::GET, "/", token).await;
        assert_eq!(page.status, 200);
        assert!(
            page.body.contains("data-sequence=\"secret-orders\""),
            "{}",
            page.body
        );
        assert!(page.body.contains("data-value=\"8\""), "{}", page.body);
        assert!(
            page.body.contains(&dir.path().display().to_string()),
            "{}",
            page.body
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_tokens_set_metrics_need_the_admin_or_a_metrics_token() {
    let dir = TempDir::new();
    let pez = guarded(&dir).await;
    for refused in [
        pez.http.get("/metrics").await,
        get_as(&pez, Method::GET, "/metrics", CLIENT).await,
        get_as(&pez, Method::GET, "/metrics", "wrong").await,
    ] {
        let problem = refused.problem(401);
        assert!(
            problem["detail"]
                .as_str()
                .unwrap_or_default()
                .contains("PEZ_METRICS_TOKENS"),
            "{problem}"
        );
        assert_eq!(
            refused.header("www-authenticate"),
            Some("Bearer realm=\"pez\"")
        );
        assert!(!refused.body.contains("secret-orders"));
    }
    for token in [ADMIN, SCRAPER] {
        let scraped = get_as(&pez, Method::GET, "/metrics", token).await;
        assert_eq!(scraped.status, 200, "{}", scraped.body);
        assert!(
            scraped
                .body
                .contains("pez_numbers_issued_total{sequence=\"secret-orders\"} 7"),
            "{}",
            scraped.body
        );
    }
    // The rest stays public.
    assert_eq!(pez.http.get("/version").await.status, 200);
    assert_eq!(pez.http.get("/openapi.json").await.status, 200);
    assert_eq!(pez.http.get("/healthz").await.status, 200);
    assert_eq!(pez.http.get("/readyz").await.status, 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_any_token_everything_is_shown_as_before() {
    let app = TestApp::spawn_with(|_| {}).await;
    app.numbers("/v1/forward").await;
    let page = app.get("/").await;
    assert_eq!(page.status, 200);
    assert!(
        page.body.contains("data-sequence=\"forward\""),
        "{}",
        page.body
    );
    assert!(page.body.contains("id=\"store\""), "{}", page.body);
    assert!(
        page.body.contains("id=\"ready\" data-ready=\"true\""),
        "{}",
        page.body
    );
    let metrics = app.get("/metrics").await;
    assert_eq!(metrics.status, 200);
    assert!(
        metrics
            .body
            .contains("pez_numbers_issued_total{sequence=\"forward\"} 1")
    );
}

/// The store's error text (here PostgreSQL's, naming PEZ's own table)
/// reaches the log, never `/readyz`: that says "store unavailable".
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readyz_says_store_unavailable_and_the_cause_goes_to_the_log() {
    let dir = TempDir::new();
    let database = TestDatabase::create();
    let pez = PezProcess::start(
        dir.path(),
        &[
            ("PEZ_DATABASE_URL", &database.url),
            ("PEZ_SYNC_INTERVAL_MS", "200"),
        ],
    );
    assert_eq!(pez.http.get("/readyz").await.status, 200);
    database.execute("ALTER TABLE pez.sequences RENAME TO hidden");
    let started = Instant::now();
    let problem = loop {
        let response = pez.http.get("/readyz").await;
        if response.status == 503 {
            break response.problem(503);
        }
        assert!(started.elapsed() < Duration::from_secs(10), "still ready");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(
        problem["reasons"],
        serde_json::json!(["store unavailable"]),
        "{problem}"
    );
    let text = problem.to_string();
    for internal in ["relation", "pez.sequences", "does not exist", "ERROR"] {
        assert!(!text.contains(internal), "{internal:?} in {text}");
    }
    let healthz = pez.http.get("/healthz").await;
    assert!(!healthz.body.contains("relation"), "{}", healthz.body);
    let logged = pez.log();
    assert!(
        logged
            .iter()
            .any(|line| line.contains("WARN") && line.contains("does not exist")),
        "the cause is not in the log: {logged:?}"
    );
    database.execute("ALTER TABLE pez.hidden RENAME TO sequences");
    let started = Instant::now();
    while pez.http.get("/readyz").await.status != 200 {
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "not ready again"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
