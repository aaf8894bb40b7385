//! Stops, crashes and restarts of the real binary: nothing is ever issued
//! twice, and a graceful stop leaves no gap.

use crate::helpers::{
    Backend, HttpClient, MAX, PezProcess, TempDir, TestApp, assert_unique, pez_command, run_pez,
};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

#[tokio::test]
async fn sigterm_exits_zero_quickly_and_the_restart_continues_with_the_next_number() {
    let dir = TempDir::new();
    let mut pez = PezProcess::start(dir.path(), &[]);
    let forward = pez.http.numbers("/v2/forward?count=7").await;
    let reverse = pez.http.numbers("/v2/reverse?count=3").await;
    pez.terminate();
    let (code, took) = pez.wait_exit(Duration::from_secs(10));
    assert_eq!(code, Some(0), "log: {:?}", pez.log());
    assert!(took < Duration::from_secs(5), "graceful stop took {took:?}");
    assert!(
        pez.log().iter().any(|l| l.contains("given back")),
        "{:?}",
        pez.log()
    );

    let pez = PezProcess::start(dir.path(), &[]);
    assert_eq!(pez.http.numbers("/v1/forward").await, vec![forward[6] + 1]);
    assert_eq!(pez.http.numbers("/v1/reverse").await, vec![reverse[2] - 1]);
}

/// A SIGTERM the moment pez says it listens (systemd stopping it right
/// after READY=1) is a graceful stop, never the default kill: exit 0, the
/// first blocks given back, and the next start continues with 1 (again and
/// again, since the window was a few instructions wide).
#[tokio::test]
async fn sigterm_right_after_the_start_is_a_graceful_stop() {
    let dir = TempDir::new();
    for _ in 0..5 {
        let mut pez = PezProcess::start(dir.path(), &[]);
        pez.terminate();
        let (code, _) = pez.wait_exit(Duration::from_secs(10));
        assert_eq!(code, Some(0), "log: {:?}", pez.log());
    }
    let pez = PezProcess::start(dir.path(), &[]);
    assert_eq!(pez.http.numbers("/v1/forward").await, vec![1]);
}

/// A SIGTERM while pez waits for its database at start ends the wait at
/// once (systemd's stop of a unit still activating), with exit 0.
#[test]
fn sigterm_while_waiting_for_the_database_ends_the_start() {
    let dir = TempDir::new();
    let closed = std::net::TcpListener::bind("127.0.0.1:0").expect("a free port");
    let port = closed.local_addr().expect("address").port();
    drop(closed);
    let mut pez = pez_command(dir.path())
        .env(
            "PEZ_DATABASE_URL",
            format!("postgres://pez@127.0.0.1:{port}/pez"),
        )
        .env("PEZ_DB_STARTUP_TIMEOUT_MS", "60000")
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("spawn pez");
    let stderr = pez.stderr.take().expect("stderr");
    let mut lines = std::io::BufRead::lines(std::io::BufReader::new(stderr));
    let waiting = lines
        .by_ref()
        .map_while(Result::ok)
        .find(|line| line.contains("retrying"));
    assert!(
        waiting.is_some(),
        "pez never said it waits for the database"
    );
    let status = std::process::Command::new("kill")
        .args(["-TERM", &pez.id().to_string()])
        .status()
        .expect("kill");
    assert!(status.success());
    let started = std::time::Instant::now();
    loop {
        if let Some(exit) = pez.try_wait().expect("wait") {
            assert_eq!(exit.code(), Some(0), "{exit:?}");
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "still waiting for the database after SIGTERM"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Clients keep asking while SIGTERM arrives. Whatever they got before the
/// stop and after the restart is unique, and the restart starts right
/// after the last number issued: requests in flight finished, the rest of
/// the blocks went back.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_under_load_loses_nothing_and_issues_nothing_twice() {
    let dir = TempDir::new();
    let mut pez = PezProcess::start(dir.path(), &[]);
    let issued = hammer(pez.http.clone(), 16, Duration::from_millis(300), true).await;
    assert!(!issued.is_empty());
    let stopping = Arc::new(AtomicBool::new(false));
    let load = tokio::spawn(hammer_until(pez.http.clone(), 16, Arc::clone(&stopping)));
    tokio::time::sleep(Duration::from_millis(200)).await;
    pez.terminate();
    let (code, took) = pez.wait_exit(Duration::from_secs(10));
    stopping.store(true, Ordering::Relaxed);
    assert_eq!(code, Some(0));
    assert!(took < Duration::from_secs(5), "graceful stop took {took:?}");
    let mut all = issued;
    all.extend(load.await.expect("load"));

    let pez = PezProcess::start(dir.path(), &[]);
    let next = pez.http.numbers("/v1/forward").await[0];
    assert_unique(&all);
    let highest = *all.iter().max().expect("numbers");
    assert_eq!(
        next,
        highest + 1,
        "a clean restart continues with the very next number"
    );
    all.sort_unstable();
    assert_eq!(
        all,
        (1..=highest).collect::<Vec<_>>(),
        "no gap: every number went out or back"
    );
}

#[tokio::test]
async fn after_kill_9_the_restart_skips_ahead_and_issues_nothing_again() {
    let dir = TempDir::new();
    let mut pez = PezProcess::start(dir.path(), &[]);
    let forward = pez.http.numbers("/v2/forward?count=10").await;
    let reverse = pez.http.numbers("/v2/reverse?count=10").await;
    pez.kill_9();

    let pez = PezProcess::start(dir.path(), &[]);
    let after_forward = pez.http.numbers("/v1/forward").await[0];
    let after_reverse = pez.http.numbers("/v1/reverse").await[0];
    assert!(
        after_forward > forward[9],
        "{after_forward} after {forward:?}"
    );
    assert!(
        after_reverse < reverse[9],
        "{after_reverse} after {reverse:?}"
    );
    // The unissued rest of the crashed instance's block is a gap.
    assert!(after_forward > forward[9] + 1);
    assert!(after_reverse < MAX - 10);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_under_load_then_restart_issues_nothing_twice() {
    let dir = TempDir::new();
    // Small blocks: leases happen all the time, so the kill lands near one.
    let env = [("PEZ_BLOCK_SIZE", "200"), ("PEZ_BLOCK_MAX", "400")];
    let mut all = Vec::new();
    for _ in 0..3 {
        let mut pez = PezProcess::start(dir.path(), &env);
        let stopping = Arc::new(AtomicBool::new(false));
        let load = tokio::spawn(hammer_until(pez.http.clone(), 16, Arc::clone(&stopping)));
        tokio::time::sleep(Duration::from_millis(400)).await;
        pez.kill_9();
        stopping.store(true, Ordering::Relaxed);
        let issued = load.await.expect("load");
        assert!(!issued.is_empty());
        all.extend(issued);
    }
    let pez = PezProcess::start(dir.path(), &env);
    all.extend(hammer(pez.http.clone(), 8, Duration::from_millis(200), true).await);
    assert_unique(&all);
}

#[tokio::test]
async fn a_second_pez_on_the_same_data_dir_refuses_to_start() {
    let dir = TempDir::new();
    let first = PezProcess::start(dir.path(), &[]);
    let second = run_pez(dir.path(), &["--listen", "127.0.0.1:0"]);
    assert!(!second.status.success());
    let stderr = String::from_utf8_lossy(&second.stderr);
    let lines: Vec<_> = stderr.lines().filter(|l| l.starts_with("pez: ")).collect();
    assert_eq!(lines.len(), 1, "{stderr}");
    assert!(lines[0].contains("another pez process"), "{stderr}");
    assert!(lines[0].contains(&first.pid().to_string()), "{stderr}");
    // The first one is unharmed.
    assert_eq!(first.http.numbers("/v1/forward").await, vec![1]);
}

async fn an_in_process_restart_on_the_same_store_is_gapless(backend: Backend) {
    let app = TestApp::spawn_on(backend, |_| {}).await;
    let store = app.store();
    let before = app.numbers("/v2/forward?count=42").await;
    let report = app.stop().await;
    assert!(report.returned > 0 && report.abandoned == 0, "{report:?}");
    let app = TestApp::spawn_in(store, |_| {}).await;
    assert_eq!(app.numbers("/v1/forward").await, vec![before[41] + 1]);
}

crate::on_both_stores!(an_in_process_restart_on_the_same_store_is_gapless);

/// `clients` clients ask for forward numbers (v1 and v2 alternately) for
/// `duration`; returns every number they got.
pub async fn hammer(
    http: HttpClient,
    clients: usize,
    duration: Duration,
    must_succeed: bool,
) -> Vec<i64> {
    let stopping = Arc::new(AtomicBool::new(false));
    let load = tokio::spawn(hammer_until(http, clients, Arc::clone(&stopping)));
    tokio::time::sleep(duration).await;
    stopping.store(true, Ordering::Relaxed);
    let issued = load.await.expect("load");
    if must_succeed {
        assert!(!issued.is_empty());
    }
    issued
}

/// Like [`hammer`] until `stopping` is set or the server goes away. Only
/// numbers from complete 200 answers count: those are the ones issued.
pub async fn hammer_until(http: HttpClient, clients: usize, stopping: Arc<AtomicBool>) -> Vec<i64> {
    let mut tasks = Vec::new();
    for client in 0..clients {
        let (http, stopping) = (http.clone(), Arc::clone(&stopping));
        tasks.push(tokio::spawn(async move {
            let mut got = Vec::new();
            let mut i = 0;
            while !stopping.load(Ordering::Relaxed) {
                i += 1;
                let path = if (client + i) % 2 == 0 {
                    "/v1/forward".to_owned()
                } else {
                    format!("/v2/forward?count={}", (client * 31 + i) % 100 + 1)
                };
                match http.try_request(hyper::Method::GET, &path).await {
                    Ok(response) if response.status == 200 => got.extend(response.numbers()),
                    Ok(response) => assert_eq!(response.status, 503, "{}", response.body),
                    // The server is gone (stopped or killed).
                    Err(_) => break,
                }
            }
            got
        }));
    }
    let mut all = Vec::new();
    for task in tasks {
        all.extend(task.await.expect("client"));
    }
    all
}
