//! Every change to a sequence, through the admin API or `pez sequence`, is
//! logged at info with what it was and what it became.

use crate::helpers::{PezProcess, TempDir, pez_command};
use hyper::Method;

const ADMIN: &str = "admin-log-token";

/// The info lines of `log` about `name` that contain every one of `parts`.
fn find<'a>(log: &'a [String], name: &str, parts: &[&str]) -> Option<&'a String> {
    log.iter().find(|l| {
        l.contains(" INFO ")
            && l.contains(&format!("{name}: "))
            && parts.iter().all(|p| l.contains(p))
    })
}

#[tokio::test]
async fn admin_api_changes_are_logged_with_old_and_new_values() {
    let dir = TempDir::new();
    let pez = PezProcess::start(dir.path(), &[("PEZ_ADMIN_TOKEN", ADMIN)]);
    let bearer = format!("Bearer {ADMIN}");
    let auth = [("authorization", bearer.as_str())];
    let created = pez
        .http
        .send(
            Method::PUT,
            "/v2/sequences/audited",
            &auth,
            Some(r#"{"min": 1, "max": 1000000, "cycle": false}"#),
        )
        .await;
    assert_eq!(created.status, 201, "{}", created.body);
    let restart = |body: &'static str| {
        let http = pez.http.clone();
        let bearer = bearer.clone();
        async move {
            http.send(
                Method::POST,
                "/v2/sequences/audited/restart",
                &[("authorization", bearer.as_str())],
                Some(body),
            )
            .await
        }
    };
    assert_eq!(restart(r#"{"value": 5000}"#).await.status, 200);
    // This instance takes 5000 and holds the rest of its block: the store
    // stands past it, and a backward restart's "from" must say where the
    // store stood (what any instance may have issued), not 5001.
    let taken = pez
        .http
        .send(Method::GET, "/v2/sequences/audited/next", &auth, None)
        .await;
    assert_eq!(taken.status, 200, "{}", taken.body);
    let shown = pez
        .http
        .send(Method::GET, "/v2/sequences/audited", &auth, None)
        .await
        .json();
    let store_next = shown["store_next"].as_i64().expect("store_next");
    assert!(store_next > 5001, "a block was leased: {shown}");
    let back = restart(r#"{"value": 10, "allow_backward": true}"#).await;
    assert_eq!(back.status, 200, "{}", back.body);
    let deleted = pez
        .http
        .send(Method::DELETE, "/v2/sequences/audited", &auth, None)
        .await;
    assert_eq!(deleted.status, 204);

    // The log is read from the server's stderr by a thread of its own: the
    // last lines may arrive a moment after the answers.
    let waited = std::time::Instant::now();
    let mut log = pez.log();
    while find(&log, "audited", &["deleted", "next 10"]).is_none()
        && waited.elapsed() < std::time::Duration::from_secs(5)
    {
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        log = pez.log();
    }
    assert!(
        find(&log, "audited", &["created", "max 1000000", "cycle no"]).is_some(),
        "{log:?}"
    );
    assert!(
        find(&log, "audited", &["restarted", "1 ", "5000"]).is_some(),
        "{log:?}"
    );
    let backward = find(&log, "audited", &["restarted", "to 10", "allow_backward"])
        .unwrap_or_else(|| panic!("no backward restart in {log:?}"));
    // The store stood at least where it was read a moment before (a
    // lease ahead may have moved it on since, never back).
    let from: i64 = backward
        .split(" from ")
        .nth(1)
        .and_then(|rest| rest.split(' ').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no 'from N': {backward}"));
    assert!(
        from >= store_next,
        "{backward}: the store stood at {store_next}"
    );
    assert!(
        find(&log, "audited", &["deleted", "next 10"]).is_some(),
        "{log:?}"
    );
    assert!(!log.iter().any(|l| l.contains(ADMIN)), "{log:?}");
}

#[test]
fn pez_sequence_changes_are_logged_with_old_and_new_values() {
    let dir = TempDir::new();
    let run = |args: &[&str]| {
        let output = pez_command(dir.path())
            .args(args)
            .output()
            .expect("run pez");
        assert!(output.status.success(), "{args:?}: {output:?}");
        String::from_utf8_lossy(&output.stderr)
            .lines()
            .map(str::to_owned)
            .collect::<Vec<String>>()
    };
    let log = run(&["sequence", "create", "audited", "--max", "1000000"]);
    assert!(
        find(&log, "audited", &["created", "max 1000000"]).is_some(),
        "{log:?}"
    );
    let log = run(&["sequence", "restart", "audited", "5000"]);
    assert!(
        find(&log, "audited", &["restarted", "from 1 to 5000"]).is_some(),
        "{log:?}"
    );
    let log = run(&["sequence", "restart", "audited", "10", "--allow-backward"]);
    assert!(
        find(
            &log,
            "audited",
            &["restarted", "from 5000 to 10", "allow_backward"]
        )
        .is_some(),
        "{log:?}"
    );
    let log = run(&["sequence", "delete", "audited"]);
    assert!(
        find(&log, "audited", &["deleted", "next 10"]).is_some(),
        "{log:?}"
    );
}
