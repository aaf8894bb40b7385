//! Several base URLs: a dead server is skipped, a crash mid-run is failed
//! over (two servers on one PostgreSQL database), and with no server left
//! `next()` fails within its deadline, naming each server's failure.

use crate::harness::{Pez, TempDir, assert_increasing, assert_unique, dead_url};
use pez_client::{Client, Error};
use std::path::Path;
use std::process::Command;
use std::sync::atomic::{AtomicU64, Ordering};
use std::thread;
use std::time::{Duration, Instant};

/// How much later than its deadline a failing `next()` may return: the
/// wait is bounded by the deadline, plus scheduling on a busy machine.
const SLACK: Duration = Duration::from_secs(2);

#[test]
fn a_dead_first_url_is_skipped_within_the_deadline() {
    let pez = Pez::start(&[]);
    let client = Client::builder()
        .urls([dead_url(), pez.url()])
        .sequence("forward")
        .initial_lease(100)
        .deadline(Duration::from_secs(5))
        .build()
        .expect("client");
    let numbers: Vec<i64> = (0..20_000).map(|_| client.next().expect("next")).collect();
    assert_increasing(&numbers, "one thread");
    assert!(client.stats().leases > 1);
}

#[test]
fn with_every_server_dead_next_fails_within_the_deadline_naming_each() {
    let (a, b) = (dead_url(), dead_url());
    let deadline = Duration::from_millis(800);
    let client = Client::builder()
        .urls([a.clone(), b.clone()])
        .sequence("forward")
        .deadline(deadline)
        .build()
        .expect("client");
    let started = Instant::now();
    let error = client.next().expect_err("a number from no server");
    let waited = started.elapsed();
    assert!(
        waited >= deadline && waited < deadline + SLACK,
        "{waited:?}"
    );
    assert!(matches!(error, Error::Unavailable { .. }), "{error:?}");
    let message = error.to_string();
    assert!(message.contains(&a) && message.contains(&b), "{message}");
    assert!(message.contains("800 ms"), "{message}");
}

#[test]
fn when_the_only_server_is_killed_the_numbers_on_hand_come_first_then_a_clear_error() {
    let mut pez = Pez::start(&[]);
    let url = pez.url();
    let deadline = Duration::from_secs(1);
    let client = Client::builder()
        .urls([url.clone()])
        .sequence("forward")
        .initial_lease(1000)
        .deadline(deadline)
        .build()
        .expect("client");
    let mut numbers: Vec<i64> = (0..5_000).map(|_| client.next().expect("next")).collect();
    pez.kill_9();
    let error = loop {
        let started = Instant::now();
        match client.next() {
            Ok(n) => numbers.push(n),
            Err(e) => {
                let waited = started.elapsed();
                assert!(waited < deadline + SLACK, "{waited:?}");
                break e;
            }
        }
    };
    assert!(matches!(error, Error::Unavailable { .. }), "{error:?}");
    assert!(error.to_string().contains(&url), "{error}");
    assert_increasing(&numbers, "before and after the kill");
    // Everything leased before the kill was handed out before the error.
    assert_eq!(numbers.len() as u64, client.stats().numbers_leased);
}

/// A PostgreSQL database for the test: a fresh one on the server in
/// PEZ_TEST_DATABASE_URL (as `tests/pg-cluster.sh run` sets it), or a
/// throwaway cluster of the test's own (removed when the guard drops).
struct Database {
    url: String,
    cluster: Option<TempDir>,
    /// The server and the database's name, when it was made on one.
    made_on: Option<(String, String)>,
}

fn pg_script() -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/pg-cluster.sh")
}

impl Database {
    fn create() -> Self {
        if let Ok(server) = std::env::var("PEZ_TEST_DATABASE_URL")
            && !server.is_empty()
        {
            let name = format!("pez_client_{}", std::process::id());
            let status = Command::new("psql")
                .args([&server, "-qc", &format!("CREATE DATABASE {name}")])
                .status()
                .expect("run psql");
            assert!(status.success(), "CREATE DATABASE {name}");
            let (base, _) = server.rsplit_once('/').expect("a database in the URL");
            return Database {
                url: format!("{base}/{name}"),
                cluster: None,
                made_on: Some((server, name)),
            };
        }
        let dir = TempDir::new("cluster");
        let _ = std::fs::remove_dir(dir.path()); // the script makes it
        let output = Command::new(pg_script())
            .args([
                "start",
                &dir.path().to_string_lossy(),
                "--watch",
                &std::process::id().to_string(),
            ])
            .output()
            .expect("run pg-cluster.sh");
        assert!(
            output.status.success(),
            "pg-cluster.sh start: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        Database {
            url: String::from_utf8_lossy(&output.stdout).trim().to_owned(),
            cluster: Some(dir),
            made_on: None,
        }
    }
}

impl Drop for Database {
    fn drop(&mut self) {
        if let Some((server, name)) = &self.made_on {
            let _ = Command::new("psql")
                .args([server, "-qc", &format!("DROP DATABASE {name} WITH (FORCE)")])
                .output();
        }
        if let Some(dir) = &self.cluster {
            let _ = Command::new(pg_script())
                .args(["remove", &dir.path().to_string_lossy()])
                .output();
        }
    }
}

#[test]
fn two_servers_on_one_postgresql_a_kill_9_mid_run_costs_no_error_no_duplicate_no_disorder() {
    const THREADS: usize = 4;
    const PER_THREAD: u64 = 40_000;
    let database = Database::create();
    let mut a = Pez::start_on(Some(&database.url), &[]);
    let b = Pez::start_on(Some(&database.url), &[]);
    let client = Client::builder()
        .urls([a.url(), b.url()])
        .sequence("forward")
        .initial_lease(100)
        .lease_target(Duration::from_millis(50))
        .deadline(Duration::from_secs(5))
        .attempt_timeout(Duration::from_secs(1))
        .build()
        .expect("client");
    let taken = AtomicU64::new(0);
    let (per_thread, leases_at_kill) = thread::scope(|s| {
        let handles: Vec<_> = (0..THREADS)
            .map(|_| {
                s.spawn(|| {
                    (0..PER_THREAD)
                        .map(|_| {
                            taken.fetch_add(1, Ordering::Relaxed);
                            client.next().expect("next, across the failover")
                        })
                        .collect::<Vec<i64>>()
                })
            })
            .collect();
        // Kill the server the client prefers once a quarter is taken.
        while taken.load(Ordering::Relaxed) < THREADS as u64 * PER_THREAD / 4 {
            thread::sleep(Duration::from_millis(1));
        }
        let leases_at_kill = client.stats().leases;
        a.kill_9();
        let per_thread: Vec<Vec<i64>> = handles
            .into_iter()
            .map(|h| h.join().expect("thread"))
            .collect();
        (per_thread, leases_at_kill)
    });
    for (i, numbers) in per_thread.iter().enumerate() {
        assert_increasing(numbers, &format!("thread {i}"));
    }
    assert_unique(&per_thread.concat());
    assert!(
        client.stats().leases > leases_at_kill,
        "no lease after the kill: the second server was never used"
    );
    drop(b);
}
