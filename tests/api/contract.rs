//! The original PEZ's API, exactly, on both stores.

use crate::helpers::{Backend, MAX, TestApp, assert_consecutive};
use hyper::Method;

async fn a_fresh_store_gives_one_then_two_as_bare_json_integers(backend: Backend) {
    let app = TestApp::spawn_on(backend, |_| {}).await;
    let first = app.get("/v1/forward").await;
    assert_eq!(first.status, 200);
    assert_eq!(first.header("content-type"), Some("application/json"));
    assert_eq!(first.body, "1");
    assert_eq!(app.get("/v1/forward").await.body, "2");
}

async fn reverse_counts_down_from_the_largest_bigint(backend: Backend) {
    let app = TestApp::spawn_on(backend, |_| {}).await;
    assert_eq!(app.get("/v1/reverse").await.body, MAX.to_string());
    assert_eq!(app.get("/v1/reverse").await.body, (MAX - 1).to_string());
}

async fn forward_and_reverse_are_independent_sequences(backend: Backend) {
    let app = TestApp::spawn_on(backend, |_| {}).await;
    assert_eq!(app.numbers("/v2/forward?count=3").await, vec![1, 2, 3]);
    assert_eq!(app.numbers("/v2/reverse?count=2").await, vec![MAX, MAX - 1]);
    assert_eq!(app.numbers("/v1/forward").await, vec![4]);
    assert_eq!(app.numbers("/v1/reverse").await, vec![MAX - 2]);
}

async fn v2_always_answers_a_list_in_sequence_order_formatted_like_the_original(backend: Backend) {
    let app = TestApp::spawn_on(backend, |_| {}).await;
    let five = app.get("/v2/forward?count=5").await;
    assert_eq!(five.header("content-type"), Some("application/json"));
    assert_eq!(five.body, "[1, 2, 3, 4, 5]");
    assert_eq!(app.get("/v2/forward").await.body, "[6]");
    assert_eq!(app.get("/v2/forward?count=1").await.body, "[7]");
    let down = app.numbers("/v2/reverse?count=100").await;
    assert_eq!(down.len(), 100);
    assert_eq!(down[0], MAX);
    assert_consecutive(&down, -1);
}

async fn unknown_query_parameters_are_ignored(backend: Backend) {
    let app = TestApp::spawn_on(backend, |_| {}).await;
    // The URL of the original's load-test recipe.
    assert_eq!(app.numbers("/v2/forward?99").await, vec![1]);
    assert_eq!(app.numbers("/v2/forward?foo=bar&count=2").await, vec![2, 3]);
    assert_eq!(app.numbers("/v1/forward?count=50").await, vec![4]);
}

async fn a_count_that_is_not_a_decimal_integer_within_the_limit_is_rejected(backend: Backend) {
    let app = TestApp::spawn_on(backend, |_| {}).await;
    for bad in [
        "0",
        "-1",
        "101",
        "",
        "abc",
        "1.5",
        "1e2",
        "0x10",
        "+5",
        "%2B5",
        "99999999999999999999999",
        "18446744073709551616",
        "%20",
        "5%",
    ] {
        for resource in ["/v2/forward", "/v2/reverse"] {
            let response = app.get(&format!("{resource}?count={bad}")).await;
            let problem = response.problem(400);
            assert_eq!(problem["maximum"], 100, "{bad}");
            assert_eq!(problem["minimum"], 1, "{bad}");
            let detail = problem["detail"].as_str().unwrap_or_default();
            assert!(detail.contains("from 1 to 100"), "{detail}");
        }
    }
    // Nothing was consumed by the rejected requests.
    assert_eq!(app.numbers("/v2/forward?count=100").await[0], 1);
    assert_eq!(app.numbers("/v1/reverse").await, vec![MAX]);
}

async fn the_max_count_is_a_setting(backend: Backend) {
    let app = TestApp::spawn_on(backend, |s| s.max_count = 7).await;
    assert_eq!(app.numbers("/v2/forward?count=7").await.len(), 7);
    let problem = app.get("/v2/forward?count=8").await.problem(400);
    assert_eq!(problem["maximum"], 7);
    let help = app
        .http
        .request(Method::OPTIONS, "/v2/forward")
        .await
        .json();
    assert_eq!(help["parameters"]["count"]["maximum"], 7);
}

async fn options_describes_each_resource(backend: Backend) {
    let app = TestApp::spawn_on(backend, |_| {}).await;
    for resource in ["/v1/forward", "/v1/reverse", "/v2/forward", "/v2/reverse"] {
        let response = app.http.request(Method::OPTIONS, resource).await;
        assert_eq!(response.status, 200, "{resource}");
        assert_eq!(response.header("allow"), Some("GET, OPTIONS"));
        assert_eq!(response.header("content-type"), Some("application/json"));
        let help = response.json();
        assert!(
            help["description"].as_str().is_some_and(|d| d.len() > 20),
            "{help}"
        );
        assert!(help["parameters"].is_object(), "{help}");
        if resource.starts_with("/v2") {
            let count = &help["parameters"]["count"];
            assert_eq!(
                (count["minimum"].as_i64(), count["maximum"].as_i64()),
                (Some(1), Some(100))
            );
            assert_eq!(count["default"], 1);
        }
    }
    // OPTIONS issues nothing.
    assert_eq!(app.numbers("/v1/forward").await, vec![1]);
}

async fn other_methods_are_not_allowed(backend: Backend) {
    let app = TestApp::spawn_on(backend, |_| {}).await;
    for method in [
        Method::POST,
        Method::PUT,
        Method::DELETE,
        Method::PATCH,
        Method::HEAD,
    ] {
        for resource in ["/v1/forward", "/v1/reverse", "/v2/forward", "/v2/reverse"] {
            let response = app.http.request(method.clone(), resource).await;
            assert_eq!(response.status, 405, "{method} {resource}");
            assert_eq!(response.header("allow"), Some("GET, OPTIONS"));
            if method != Method::HEAD {
                let problem = response.problem(405);
                assert!(
                    problem["detail"]
                        .as_str()
                        .unwrap_or_default()
                        .contains(method.as_str())
                );
            }
        }
    }
    assert_eq!(app.numbers("/v1/forward").await, vec![1]);
}

async fn unknown_paths_are_not_found(backend: Backend) {
    let app = TestApp::spawn_on(backend, |_| {}).await;
    for path in [
        "/v1",
        "/v3/forward",
        "/v1/forward/1",
        "/v1/Forward",
        "/v2/sideways",
    ] {
        let problem = app.get(path).await.problem(404);
        assert_eq!(problem["instance"], path);
    }
}

/// HEAD answers every read as GET would, without the body: load balancers
/// and uptime checkers use it. A route that issues numbers never issues on
/// HEAD: it stays 405, naming the methods it has.
async fn head_answers_every_read_as_get_without_a_body_and_never_issues(backend: Backend) {
    let app = TestApp::spawn_on(backend, |s| {
        s.access.admin = Some(pez::config::Secret::new("head-admin".into()));
    })
    .await;
    let admin = [("authorization", "Bearer head-admin")];
    for path in [
        "/",
        "/healthz",
        "/readyz",
        "/metrics",
        "/version",
        "/openapi.json",
        "/v2/sequences",
        "/v2/sequences/forward",
    ] {
        let get = app.http.send(Method::GET, path, &admin, None).await;
        let head = app.http.send(Method::HEAD, path, &admin, None).await;
        assert_eq!(head.status, 200, "HEAD {path}: {}", head.body);
        assert_eq!(head.status, get.status, "{path}");
        assert_eq!(head.body, "", "HEAD {path} has a body");
        assert_eq!(
            head.header("content-type"),
            get.header("content-type"),
            "{path}"
        );
        if ["/healthz", "/version", "/openapi.json"].contains(&path) {
            assert_eq!(
                head.header("content-length"),
                Some(get.body.len().to_string().as_str()),
                "{path}"
            );
        }
    }
    for path in [
        "/v1/forward",
        "/v1/reverse",
        "/v2/forward?count=5",
        "/v2/reverse",
        "/v2/sequences/forward/next",
    ] {
        let head = app.http.send(Method::HEAD, path, &admin, None).await;
        assert_eq!(head.status, 405, "HEAD {path}");
        assert_eq!(head.body, "");
        assert_eq!(
            head.header("content-type"),
            Some("application/problem+json"),
            "{path}"
        );
        let allow = head.header("allow").unwrap_or_default();
        assert!(allow.contains("GET") && !allow.contains("HEAD"), "{allow}");
    }
    // Nothing was issued by HEAD.
    assert_eq!(app.numbers("/v1/forward").await, vec![1]);
    assert_eq!(app.numbers("/v1/reverse").await, vec![MAX]);
}

crate::on_both_stores!(
    a_fresh_store_gives_one_then_two_as_bare_json_integers,
    reverse_counts_down_from_the_largest_bigint,
    forward_and_reverse_are_independent_sequences,
    v2_always_answers_a_list_in_sequence_order_formatted_like_the_original,
    unknown_query_parameters_are_ignored,
    a_count_that_is_not_a_decimal_integer_within_the_limit_is_rejected,
    the_max_count_is_a_setting,
    options_describes_each_resource,
    other_methods_are_not_allowed,
    unknown_paths_are_not_found,
    head_answers_every_read_as_get_without_a_body_and_never_issues,
);
