//! The store failing: 503 with Retry-After once the numbers on hand run
//! out, never a hang and never a duplicate; recovery without a restart.
//!
//! The failure is real: another connection holds SQLite's write lock (as an
//! operator's `sqlite3` shell in a transaction would), so every lease times
//! out inside SQLite. This works as root too, where file permissions do not.

use crate::helpers::{TestApp, assert_consecutive, assert_unique};
use diesel::connection::SimpleConnection;
use diesel::{Connection, SqliteConnection};
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
