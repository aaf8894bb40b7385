//! The store failing: 503 with Retry-After once the numbers on hand run
//! out, never a hang and never a duplicate; recovery without a restart.
//!
//! The failure is real: another connection holds SQLite's write lock (as an
//! operator's `sqlite3` shell in a transaction would), so every lease times
//! out inside SQLite. This works as root too, where file permissions do not.

use crate::helpers::{TestApp, assert_consecutive, assert_unique};
use diesel::connection::SimpleConnection;
use diesel::{Connection, SqliteConnection};
use hyper::Method;
use pez::config::Secret;
use std::time::{Duration, Instant};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_store_gives_503_when_stock_runs_out_and_service_recovers_by_itself() {
    let app = TestApp::spawn_with(|s| {
        s.block_min = 200;
        s.block_max = 200;
        s.store_timeout = Duration::from_millis(100);
        s.lease_wait = Duration::from_millis(300);
    })
    .await;
    let mut issued = app.numbers("/v2/forward?count=10").await;

    let mut blocker = SqliteConnection::establish(&app.database_file().to_string_lossy())
        .expect("open the store's file");
    blocker
        .batch_execute("BEGIN IMMEDIATE")
        .expect("take the write lock");

    // Serve what is on hand, then 503, each answer within a bounded time.
    let mut answers = Vec::new();
    for path in ["/v2/forward?count=50", "/v1/forward"] {
        loop {
            let started = Instant::now();
            let response = app.get(path).await;
            assert!(
                started.elapsed() < Duration::from_secs(2),
                "took {:?}",
                started.elapsed()
            );
            if response.status == 503 {
                answers.push(response);
                break;
            }
            issued.extend(response.numbers());
            assert!(
                issued.len() < 2_000,
                "never ran out: the store did not fail"
            );
        }
    }
    for unavailable in &answers {
        let problem = unavailable.problem(503);
        assert_eq!(unavailable.header("retry-after"), Some("1"));
        assert!(
            problem["detail"]
                .as_str()
                .unwrap_or_default()
                .contains("Retry"),
            "{problem}"
        );
    }
    // While it lasts, every request is answered quickly.
    for _ in 0..5 {
        let started = Instant::now();
        assert_eq!(app.get("/v1/forward").await.status, 503);
        assert!(started.elapsed() < Duration::from_secs(2));
    }

    blocker.batch_execute("ROLLBACK").expect("release the lock");
    drop(blocker);
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let response = app.get("/v2/forward?count=5").await;
        if response.status == 200 {
            issued.extend(response.numbers());
            break;
        }
        assert!(Instant::now() < deadline, "no recovery: {}", response.body);
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    issued.extend(app.numbers("/v2/forward?count=100").await);
    assert_unique(&issued);
    assert_consecutive(&issued, 1);
}

/// A strict take that fails (the store's write lock is held for a moment)
/// is tried again while its request still has time to wait: the request
/// gets its number once the store answers, not a 503 at the first failure.
/// While the store stays down the request still ends, with a 503, within
/// about its wait.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_strict_request_outlasts_a_short_store_failure_and_a_long_one_ends_in_time() {
    let app = TestApp::spawn_with(|s| {
        s.access.admin = Some(Secret::new("strict-admin".into()));
        s.store_timeout = Duration::from_millis(50);
        s.lease_wait = Duration::from_secs(3);
    })
    .await;
    let created = app
        .http
        .send(
            Method::PUT,
            "/v2/sequences/orders",
            &[("authorization", "Bearer strict-admin")],
            Some(r#"{"mode": "strict"}"#),
        )
        .await;
    assert_eq!(created.status, 201, "{}", created.body);
    assert_eq!(app.numbers("/v2/sequences/orders/next").await, vec![1]);

    let mut blocker = SqliteConnection::establish(&app.database_file().to_string_lossy())
        .expect("open the store's file");
    blocker.batch_execute("BEGIN IMMEDIATE").expect("lock");
    let http = app.http.clone();
    let waiting = tokio::spawn(async move { http.get("/v2/sequences/orders/next").await });
    // Several takes fail (each waits 50 ms for the lock) before it is freed.
    tokio::time::sleep(Duration::from_millis(700)).await;
    blocker.batch_execute("ROLLBACK").expect("unlock");
    let answer = waiting.await.expect("request");
    assert_eq!(answer.status, 200, "{}", answer.body);
    assert_eq!(answer.numbers(), vec![2]);

    blocker.batch_execute("BEGIN IMMEDIATE").expect("lock");
    let started = Instant::now();
    let answer = app.get("/v2/sequences/orders/next").await;
    let waited = started.elapsed();
    blocker.batch_execute("ROLLBACK").expect("unlock");
    assert_eq!(answer.status, 503, "{}", answer.body);
    assert!(
        waited >= Duration::from_millis(2_900) && waited < Duration::from_secs(6),
        "answered after {waited:?}"
    );
    // Nothing was lost to a duplicate: the next number follows.
    let next = app.numbers("/v2/sequences/orders/next").await;
    assert!(next[0] > 2, "{next:?}");
}

/// A range lease, like a strict take, outlasts a store that fails for a
/// moment within its wait, and ends with a 503 within about its wait when
/// the store stays down.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_range_lease_outlasts_a_short_store_failure_and_a_long_one_ends_in_time() {
    let app = TestApp::spawn_with(|s| {
        s.access.admin = Some(Secret::new("range-admin".into()));
        s.store_timeout = Duration::from_millis(50);
        s.lease_wait = Duration::from_secs(3);
    })
    .await;
    let lease = |http: crate::helpers::HttpClient| async move {
        http.send(
            Method::POST,
            "/v2/sequences/forward/lease?count=10",
            &[("authorization", "Bearer range-admin")],
            None,
        )
        .await
    };
    let mut blocker = SqliteConnection::establish(&app.database_file().to_string_lossy())
        .expect("open the store's file");
    blocker.batch_execute("BEGIN IMMEDIATE").expect("lock");
    let waiting = tokio::spawn(lease(app.http.clone()));
    tokio::time::sleep(Duration::from_millis(700)).await;
    blocker.batch_execute("ROLLBACK").expect("unlock");
    let answer = waiting.await.expect("request");
    assert_eq!(answer.status, 200, "{}", answer.body);

    blocker.batch_execute("BEGIN IMMEDIATE").expect("lock");
    let started = Instant::now();
    let answer = lease(app.http.clone()).await;
    let waited = started.elapsed();
    blocker.batch_execute("ROLLBACK").expect("unlock");
    assert_eq!(answer.status, 503, "{}", answer.body);
    assert!(
        waited >= Duration::from_millis(2_500) && waited < Duration::from_secs(6),
        "answered after {waited:?}"
    );
}

/// Polls `/readyz` of `pez` until it answers `status`; fails after `limit`.
async fn readyz_becomes(pez: &crate::helpers::PezProcess, status: u16, limit: Duration) {
    let started = Instant::now();
    loop {
        let answer = pez.http.get("/readyz").await;
        if answer.status == status {
            return;
        }
        assert!(
            started.elapsed() < limit,
            "/readyz still {} after {limit:?}: {}; log: {:?}",
            answer.status,
            answer.body,
            pez.log()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The log's outage lines (warnings) and recovery lines (info) about the store.
fn outage_lines(pez: &crate::helpers::PezProcess) -> (Vec<String>, Vec<String>) {
    let log = pez.log();
    let down = log
        .iter()
        .filter(|l| l.contains("WARN") && l.contains("not ready until it answers"))
        .cloned()
        .collect();
    let up = log
        .iter()
        .filter(|l| l.contains("INFO") && l.contains("store: answers again"))
        .cloned()
        .collect();
    (down, up)
}

/// With no request at all, an outage is still seen (the background probe)
/// and logged once, and so is the recovery. SQLite answers reads while
/// another process holds its write lock: the instance must stay "down" the
/// whole time (its one-a-second reads must not flap it back to ready), and
/// log the outage once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sqlite_store_that_goes_away_without_traffic_is_logged_once_down_and_once_up() {
    let dir = crate::helpers::TempDir::new();
    let pez = crate::helpers::PezProcess::start(
        dir.path(),
        &[
            ("PEZ_SYNC_INTERVAL_MS", "100"),
            ("PEZ_STORE_TIMEOUT_MS", "100"),
        ],
    );
    readyz_becomes(&pez, 200, Duration::from_secs(5)).await;
    let mut blocker =
        SqliteConnection::establish(&dir.path().join("pez.sqlite3").to_string_lossy())
            .expect("open the store's file");
    blocker
        .batch_execute("BEGIN IMMEDIATE")
        .expect("take the write lock");
    let limit = pez::server::PROBE_INTERVAL * 3;
    readyz_becomes(&pez, 503, limit).await;
    // Down it stays, through more than one probe and many syncs.
    let watching = Instant::now();
    while watching.elapsed() < pez::server::PROBE_INTERVAL * 2 {
        let answer = pez.http.get("/readyz").await;
        assert_eq!(answer.status, 503, "flapped back to ready: {}", answer.body);
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let (down, up) = outage_lines(&pez);
    assert_eq!(down.len(), 1, "{down:?}");
    assert!(up.is_empty(), "{up:?}");

    blocker.batch_execute("ROLLBACK").expect("release the lock");
    drop(blocker);
    readyz_becomes(&pez, 200, limit).await;
    let (down, up) = outage_lines(&pez);
    assert_eq!((down.len(), up.len()), (1, 1), "{down:?} {up:?}");
}

/// The same on PostgreSQL: its cluster stops while no request comes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_postgres_store_that_goes_away_without_traffic_is_logged_once_down_and_once_up() {
    use crate::postgres_support::{Cluster, ClusterOptions, TestDatabase};
    let cluster = Cluster::start(ClusterOptions::default());
    let database = TestDatabase::create_on(&cluster.admin_url);
    let dir = crate::helpers::TempDir::new();
    let pez = crate::helpers::PezProcess::start(
        dir.path(),
        &[
            ("PEZ_DATABASE_URL", &database.url),
            // Syncs as rarely as allowed: the probe alone must see it.
            ("PEZ_SYNC_INTERVAL_MS", "3600000"),
        ],
    );
    readyz_becomes(&pez, 200, Duration::from_secs(5)).await;
    cluster.stop("fast");
    let limit = pez::server::PROBE_INTERVAL * 4;
    readyz_becomes(&pez, 503, limit).await;
    let (down, up) = outage_lines(&pez);
    assert_eq!(down.len(), 1, "{down:?}");
    assert!(up.is_empty(), "{up:?}");
    cluster.restart();
    readyz_becomes(&pez, 200, limit).await;
    let (down, up) = outage_lines(&pez);
    assert_eq!((down.len(), up.len()), (1, 1), "{down:?} {up:?}");
}

/// A database that answers reads and takes no writes (a standby behind the
/// old primary's address, `default_transaction_read_only`) is an outage
/// too, seen with no traffic: the probe asks whether it takes writes, and
/// the instance stays not ready until it does.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_postgres_store_that_takes_no_writes_is_not_ready_without_traffic() {
    use crate::postgres_support::{Cluster, ClusterOptions, TestDatabase};
    use diesel::PgConnection;
    let cluster = Cluster::start(ClusterOptions::default());
    let database = TestDatabase::create_on(&cluster.admin_url);
    let dir = crate::helpers::TempDir::new();
    let pez = crate::helpers::PezProcess::start(
        dir.path(),
        &[
            ("PEZ_DATABASE_URL", &database.url),
            ("PEZ_SYNC_INTERVAL_MS", "3600000"),
        ],
    );
    readyz_becomes(&pez, 200, Duration::from_secs(5)).await;
    let mut dba = PgConnection::establish(&cluster.admin_url).expect("connect as the DBA");
    let read_only = |dba: &mut PgConnection, on: bool| {
        dba.batch_execute(if on {
            "ALTER SYSTEM SET default_transaction_read_only = on"
        } else {
            "ALTER SYSTEM RESET default_transaction_read_only"
        })
        .expect("alter system");
        // Every session, pez's pooled ones too, takes it at the reload.
        dba.batch_execute("SELECT pg_reload_conf()")
            .expect("reload");
    };
    read_only(&mut dba, true);
    let limit = pez::server::PROBE_INTERVAL * 3;
    readyz_becomes(&pez, 503, limit).await;
    // Down it stays through more probes: reads still answer.
    let watching = Instant::now();
    while watching.elapsed() < pez::server::PROBE_INTERVAL * 2 {
        let answer = pez.http.get("/readyz").await;
        assert_eq!(answer.status, 503, "flapped back to ready: {}", answer.body);
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let (down, up) = outage_lines(&pez);
    assert_eq!(down.len(), 1, "{down:?}");
    // The probe says it takes no writes; the instance's heartbeat, a
    // write too, may find it first and quote PostgreSQL.
    assert!(
        down[0].contains("takes no writes") || down[0].contains("read-only transaction"),
        "{down:?}"
    );
    assert!(up.is_empty(), "{up:?}");
    read_only(&mut dba, false);
    readyz_becomes(&pez, 200, limit).await;
    let (down, up) = outage_lines(&pez);
    assert_eq!((down.len(), up.len()), (1, 1), "{down:?} {up:?}");
}
