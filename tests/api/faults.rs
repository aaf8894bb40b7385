//! Each fault at exactly the wrong moment, one test apiece: the regression
//! tests of issue 9. Every one of them failed on the code before its fix.

use crate::helpers::{
    Backend, HttpClient, PezProcess, StoreFixture, TempDir, TestApp, assert_unique, pez_command,
};
use crate::postgres_support::{Cluster, ClusterOptions, TestDatabase, with_database};
use diesel::connection::SimpleConnection;
use diesel::{Connection, PgConnection, RunQueryDsl};
use hyper::Method;
use pez::config::{Secret, Settings};
use pez::failpoint::{self, points};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, mpsc};
use std::time::{Duration, Instant};

const ADMIN: &str = "Bearer faults-admin";

fn with_admin(settings: &mut Settings) {
    settings.access.admin = Some(Secret::new("faults-admin".into()));
}

async fn admin(http: &HttpClient, method: Method, path: &str, body: Option<&str>) -> u16 {
    http.send(method, path, &[("authorization", ADMIN)], body)
        .await
        .status
        .as_u16()
}

/// A primary with a synchronous standby, and a store on a database of it.
fn primary_and_standby() -> (Cluster, Cluster, StoreFixture) {
    let primary = Cluster::start(ClusterOptions::default());
    let database = TestDatabase::create_on(&primary.admin_url);
    let standby = Cluster::standby_of(&primary);
    (primary, standby, StoreFixture::on_database(database))
}

/// Point 1 and 5 of issue 9: with the synchronous standby gone, no number
/// leaves PEZ by any path (leased blocks, strict takes, range leases), every
/// request is answered 503 within a bound instead of hanging, a graceful
/// stop ends within its deadline and says what it left as a gap, and
/// service resumes once the standby is back. Before the fix strict takes
/// and range leases were answered 200 at once: nextval() pre-logs 32 values,
/// and a transaction that wrote no WAL of its own committed without
/// waiting for the standby.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nothing_is_served_while_the_synchronous_standby_is_gone() {
    let (_primary, standby, store) = primary_and_standby();
    let app = TestApp::spawn_in(store.clone(), |s| {
        with_admin(s);
        crate::helpers::short_waits(s);
        s.shutdown_timeout = Duration::from_secs(2);
    })
    .await;
    assert_eq!(
        admin(
            &app.http,
            Method::PUT,
            "/v2/sequences/strict",
            Some(r#"{"mode": "strict"}"#)
        )
        .await,
        201
    );
    // Per sequence: strict, forward, reverse.
    let mut served: [Vec<i64>; 3] = [
        app.numbers("/v2/sequences/strict/next?count=3").await,
        app.numbers("/v2/forward?count=10").await,
        Vec::new(),
    ];

    standby.stop("fast");
    // Use up what the leased path holds: those were durable before the stop.
    for (sequence, path) in [
        (1, "/v2/forward?count=100"),
        (1, "/v2/forward"),
        (2, "/v2/reverse?count=100"),
        (2, "/v2/reverse"),
    ] {
        while let Some(numbers) = {
            let response = app.get(path).await;
            (response.status == 200).then(|| response.numbers())
        } {
            served[sequence].extend(numbers);
            assert!(
                served[sequence].len() < 5_000,
                "leases went on without the standby"
            );
        }
    }
    for path in [
        "/v2/sequences/strict/next",
        "/v2/sequences/strict/next?count=7",
        "/v1/forward",
        "/v1/reverse",
    ] {
        for _ in 0..5 {
            let started = Instant::now();
            let response = app.get(path).await;
            assert_eq!(
                response.status, 503,
                "{path} answered while not durable: {}",
                response.body
            );
            assert!(
                started.elapsed() < Duration::from_secs(4),
                "{path} took {:?}",
                started.elapsed()
            );
        }
    }
    let started = Instant::now();
    let lease = app
        .http
        .request(Method::POST, "/v2/sequences/forward/lease?count=10")
        .await;
    assert_eq!(
        lease.status, 503,
        "a range lease without the standby: {}",
        lease.body
    );
    assert!(
        started.elapsed() < Duration::from_secs(6),
        "took {:?}",
        started.elapsed()
    );

    standby.restart();
    let back = Instant::now();
    for (sequence, path) in [
        (0, "/v2/sequences/strict/next?count=2"),
        (1, "/v2/forward?count=100"),
        (2, "/v2/reverse?count=100"),
    ] {
        loop {
            let response = app.get(path).await;
            if response.status == 200 {
                served[sequence].extend(response.numbers());
                break;
            }
            assert!(
                back.elapsed() < Duration::from_secs(20),
                "no recovery of {path}: {}",
                response.body
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
    for numbers in &served {
        assert_unique(numbers);
    }

    // The standby gone again: a graceful stop cannot give back, and ends
    // within its deadline anyway, counting the gap.
    standby.stop("fast");
    let started = Instant::now();
    let report = app.stop().await;
    assert!(
        started.elapsed() < Duration::from_secs(8),
        "stop took {:?}",
        started.elapsed()
    );
    assert!(report.abandoned > 0, "{report:?}");
}

/// Point 2: a give-back checks where the store stands, then moves it back.
/// A range lease taken in between (from another instance, without any lock
/// of PEZ's) must wait for the give-back to commit; before the fix it went
/// ahead, the give-back moved the sequence back over it, and later leases
/// issued the range again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_range_lease_in_the_middle_of_a_give_back_waits_for_it() {
    let store = StoreFixture::new(Backend::Postgres);
    let small = |s: &mut Settings| {
        s.block_min = 1000;
        s.block_max = 1000;
        // The lease waits for the held give-back: well within its timeouts.
        if let pez::config::StoreChoice::Postgres(pg) = &mut s.store {
            pg.timeout = Duration::from_secs(5);
        }
    };
    // B first: A's block is then the last one leased, so its give-back is
    // taken (the sequence moves back over what B leases in between).
    let b = TestApp::spawn_in(store.clone(), small).await;
    let a = TestApp::spawn_in(store.clone(), small).await;
    let mut served = a.numbers("/v2/forward?count=10").await;
    served.extend(b.numbers("/v2/forward?count=10").await);
    let b_lease = b.http.clone();
    let (hit, checked) = mpsc::channel::<()>();
    let hit = std::sync::Mutex::new(hit);
    failpoint::arm(points::GIVE_BACK_CHECKED, move |sequence| {
        if sequence == "forward" {
            let _ = hit.lock().expect("channel").send(());
            // Hold the give-back between its check and its write.
            std::thread::sleep(Duration::from_millis(700));
        }
    });
    let stopping = tokio::spawn(a.stop());
    tokio::task::spawn_blocking(move || checked.recv_timeout(Duration::from_secs(10)))
        .await
        .expect("wait")
        .expect("the give-back reached its check");
    let started = Instant::now();
    let leased = b_lease
        .request(Method::POST, "/v2/sequences/forward/lease?count=2500")
        .await;
    let waited = started.elapsed();
    failpoint::disarm(points::GIVE_BACK_CHECKED);
    let report = stopping.await.expect("stop");
    assert_eq!(leased.status, 200, "{}", leased.body);
    for range in leased.json()["ranges"].as_array().expect("ranges") {
        let (first, last) = (
            range["first"].as_i64().unwrap(),
            range["last"].as_i64().unwrap(),
        );
        served.extend(first..=last);
    }
    // Whatever the give-back did, everything issued since is new.
    for _ in 0..30 {
        served.extend(b.numbers("/v2/forward?count=100").await);
    }
    let c = TestApp::spawn_in(store, small).await;
    for _ in 0..30 {
        served.extend(c.numbers("/v2/forward?count=100").await);
    }
    assert_unique(&served);
    assert!(report.returned > 0, "A's give-back was taken: {report:?}");
    assert!(
        waited >= Duration::from_millis(400),
        "the range lease went ahead during the give-back ({waited:?})"
    );
}

/// Point 3: a sequence deleted and created again through one instance is a
/// new sequence on every instance within the sync interval (generations
/// never repeat), also when its mode changed. Before the fix the new one
/// had generation 0 again and B went on serving its old blocks for ever.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sequence_created_again_elsewhere_is_a_new_sequence_everywhere() {
    let store = StoreFixture::new(Backend::Postgres);
    let settings = |s: &mut Settings| {
        with_admin(s);
        s.sync_interval = Duration::from_millis(200);
    };
    let a = TestApp::spawn_in(store.clone(), settings).await;
    let b = TestApp::spawn_in(store.clone(), settings).await;
    assert_eq!(
        admin(&a.http, Method::PUT, "/v2/sequences/orders", Some("{}")).await,
        201
    );
    // B serves it, from a block of its own.
    let started = Instant::now();
    while b.get("/v2/sequences/orders/next?count=2").await.status != 200 {
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "B never served orders"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    assert_eq!(
        admin(&a.http, Method::DELETE, "/v2/sequences/orders", None).await,
        204
    );
    assert_eq!(
        admin(
            &a.http,
            Method::PUT,
            "/v2/sequences/orders",
            Some(r#"{"mode": "strict"}"#)
        )
        .await,
        201
    );
    // Within the interval and a store call, B serves the new one, strictly.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let mut issued = Vec::new();
    for _ in 0..5 {
        issued.extend(a.numbers("/v2/sequences/orders/next?count=3").await);
        issued.extend(b.numbers("/v2/sequences/orders/next?count=3").await);
    }
    assert_unique(&issued);
    assert!(
        issued.windows(2).all(|w| w[0] < w[1]),
        "strict: one order across instances: {issued:?}"
    );
}

/// Point 4: a range lease through an instance that still thinks a sequence
/// is leased (step 1,000), right after it was made again as strict (step
/// 1): the store describes the sequence afresh and cuts no 1,000-number
/// blocks from single steps. Before the fix a cached description did, and
/// the instances' numbers overlapped.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_range_lease_right_after_a_sequence_changed_mode_takes_only_its_own_numbers() {
    let store = StoreFixture::new(Backend::Postgres);
    let settings = |s: &mut Settings| {
        with_admin(s);
        s.sync_interval = Duration::from_secs(3600);
    };
    let a = TestApp::spawn_in(store.clone(), settings).await;
    assert_eq!(
        admin(&a.http, Method::PUT, "/v2/sequences/orders", Some("{}")).await,
        201
    );
    let b = TestApp::spawn_in(store, settings).await;
    // A stale instance answers 503 until it has looked again, which the
    // stale answer itself makes it do at once (its sync interval is an hour).
    let lease = |http: HttpClient| async move {
        let started = Instant::now();
        let response = loop {
            let response = http
                .request(Method::POST, "/v2/sequences/orders/lease?count=5")
                .await;
            if response.status != 503 || started.elapsed() > Duration::from_secs(5) {
                break response;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        };
        assert_eq!(response.status, 200, "{}", response.body);
        response.json()["ranges"]
            .as_array()
            .expect("ranges")
            .iter()
            .flat_map(|r| r["first"].as_i64().unwrap()..=r["last"].as_i64().unwrap())
            .collect::<Vec<i64>>()
    };
    lease(b.http.clone()).await;
    assert_eq!(
        admin(&a.http, Method::DELETE, "/v2/sequences/orders", None).await,
        204
    );
    assert_eq!(
        admin(
            &a.http,
            Method::PUT,
            "/v2/sequences/orders",
            Some(r#"{"mode": "strict"}"#)
        )
        .await,
        201
    );
    let new = lease(b.http.clone()).await;
    assert_eq!(
        new,
        [1, 2, 3, 4, 5],
        "the strict sequence's own first numbers"
    );
    let mut again = a.numbers("/v2/sequences/orders/next?count=5").await;
    again.extend(lease(b.http.clone()).await);
    again.extend(new);
    assert_unique(&again);
}

/// Point 8: at start, PostgreSQL answering with statement timeouts (here: a
/// lock held on PEZ's catalog, as during a long recovery or migration) is
/// retried for the startup timeout. Before the fix PEZ exited with
/// "canceling statement due to statement timeout".
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn statement_timeouts_at_start_are_waited_out() {
    let database = TestDatabase::create();
    let dir = TempDir::new();
    let migrate = pez_command(dir.path())
        .env("PEZ_DATABASE_URL", &database.url)
        .arg("migrate")
        .output()
        .expect("pez migrate");
    assert!(migrate.status.success(), "{migrate:?}");
    let url = database.url.clone();
    let locked = Arc::new(AtomicBool::new(false));
    let locking = Arc::clone(&locked);
    let holder = std::thread::spawn(move || {
        let mut conn = PgConnection::establish(&url).expect("connect");
        conn.batch_execute("BEGIN; LOCK TABLE pez.sequences IN ACCESS EXCLUSIVE MODE")
            .expect("lock");
        locking.store(true, Ordering::SeqCst);
        std::thread::sleep(Duration::from_millis(2500));
        conn.batch_execute("COMMIT").expect("unlock");
    });
    while !locked.load(Ordering::SeqCst) {
        std::thread::sleep(Duration::from_millis(10));
    }
    let started = Instant::now();
    let pez = PezProcess::start(
        dir.path(),
        &[
            ("PEZ_DATABASE_URL", &database.url),
            ("PEZ_DB_TIMEOUT_MS", "300"),
        ],
    );
    holder.join().expect("lock holder");
    assert!(
        started.elapsed() >= Duration::from_millis(1500),
        "did not wait for the lock"
    );
    // It serves (a first lease given up as ambiguous while the lock was
    // held is a gap: the first number need not be 1).
    assert_eq!(pez.http.numbers("/v1/forward").await.len(), 1);
    assert!(
        pez.log().iter().any(|l| l.contains("retrying")),
        "{:?}",
        pez.log()
    );
}

/// Point 8 too: a connection cut during the TLS handshake (libpq's "SSL
/// SYSCALL error" or "server closed the connection unexpectedly") is not a
/// verdict of the server; PEZ retries it. Before the fix the substring
/// "SSL" made it permanent.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_connection_cut_during_the_handshake_is_retried() {
    let database = TestDatabase::create();
    let upstream_port: u16 = database
        .url
        .rsplit_once(':')
        .and_then(|(_, rest)| rest.split('/').next())
        .and_then(|p| p.parse().ok())
        .expect("port of the test server");
    let proxy = CuttingProxy::start(upstream_port, Duration::from_millis(1500));
    let name = database.name().to_owned();
    let url = format!(
        "postgres://postgres@127.0.0.1:{}/{name}?sslmode=prefer",
        proxy.port
    );
    let dir = TempDir::new();
    let started = Instant::now();
    let pez = PezProcess::start(dir.path(), &[("PEZ_DATABASE_URL", &url)]);
    assert!(started.elapsed() >= Duration::from_millis(1000));
    assert_eq!(pez.http.numbers("/v1/forward").await, [1]);
    assert!(proxy.cut.load(Ordering::SeqCst) > 0, "the proxy never cut");
}

/// A TCP proxy to 127.0.0.1:`upstream` that, for its first `cutting`,
/// accepts each connection, reads the client's first bytes and closes it.
struct CuttingProxy {
    port: u16,
    cut: Arc<std::sync::atomic::AtomicU32>,
}

impl CuttingProxy {
    fn start(upstream: u16, cutting: Duration) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let port = listener.local_addr().expect("addr").port();
        let cut = Arc::new(std::sync::atomic::AtomicU32::new(0));
        let counting = Arc::clone(&cut);
        let started = Instant::now();
        std::thread::spawn(move || {
            for client in listener.incoming() {
                let Ok(mut client) = client else { return };
                if started.elapsed() < cutting {
                    let mut first = [0u8; 8];
                    let _ = std::io::Read::read(&mut client, &mut first);
                    counting.fetch_add(1, Ordering::SeqCst);
                    drop(client);
                    continue;
                }
                let Ok(mut server) = TcpStream::connect(("127.0.0.1", upstream)) else {
                    continue;
                };
                let (mut client_read, mut server_read) = (
                    client.try_clone().expect("clone"),
                    server.try_clone().expect("clone"),
                );
                std::thread::spawn(move || {
                    let _ = std::io::copy(&mut client_read, &mut server);
                    let _ = server.shutdown(std::net::Shutdown::Both);
                });
                std::thread::spawn(move || {
                    let _ = std::io::copy(&mut server_read, &mut client);
                    let _ = client.shutdown(std::net::Shutdown::Both);
                });
            }
        });
        Self { port, cut }
    }
}

/// Point 9: a restart is one transaction. When its generation cannot be
/// written, the sequence does not move either. Before the fix setval()
/// (which PostgreSQL never rolls back) had moved it already.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restart_that_fails_moves_nothing() {
    let store = StoreFixture::new(Backend::Postgres);
    let app = TestApp::spawn_in(store.clone(), with_admin).await;
    let database = store.database().expect("postgres");
    database.execute(
        "CREATE FUNCTION refuse() RETURNS trigger LANGUAGE plpgsql AS \
         $$ BEGIN RAISE EXCEPTION 'no'; END $$",
    );
    database.execute(
        "CREATE TRIGGER refuse BEFORE UPDATE ON pez.sequences FOR EACH ROW EXECUTE FUNCTION refuse()",
    );
    let status = admin(
        &app.http,
        Method::POST,
        "/v2/sequences/forward/restart",
        Some(r#"{"value": 5000000000, "allow_early_wrap": true}"#),
    )
    .await;
    assert_eq!(status, 503);
    database.execute("DROP TRIGGER refuse ON pez.sequences");
    let fresh = TestApp::spawn_in(store, |_| {}).await;
    let first = fresh.numbers("/v1/forward").await[0];
    assert!(
        first < 5_000_000_000,
        "the failed restart moved forward to {first}"
    );
}

/// Point 9: a sequence whose whole range is smaller than a block leases at
/// most a lap at a time, not tens of thousands of times; a count larger
/// than its range is refused (it could only repeat numbers).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tiny_cycling_sequence_leases_a_lap_at_a_time_and_refuses_counts_over_its_range() {
    let app = TestApp::spawn_on(Backend::Sqlite, with_admin).await;
    assert_eq!(
        admin(
            &app.http,
            Method::PUT,
            "/v2/sequences/ring",
            // Leases of up to a lap: more than its default largest lease.
            Some(r#"{"min": 1, "max": 10, "max_lease": 10}"#)
        )
        .await,
        201
    );
    let mut numbers = Vec::new();
    for _ in 0..10 {
        numbers.extend(app.numbers("/v2/sequences/ring/next?count=5").await);
    }
    let expected: Vec<i64> = (1..=10).cycle().take(50).collect();
    assert_eq!(numbers, expected);
    tokio::time::sleep(Duration::from_millis(300)).await;
    // With the admin token set, the metrics need it too.
    let metrics = app
        .http
        .send(Method::GET, "/metrics", &[("authorization", ADMIN)], None)
        .await;
    assert_eq!(metrics.status, 200, "{}", metrics.body);
    let leases: f64 = metrics
        .body
        .lines()
        .filter(|l| l.starts_with("pez_leases_total{") && l.contains("sequence=\"ring\""))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum();
    assert!(leases <= 20.0, "{leases} leases for 50 numbers");
    let problem = app
        .get("/v2/sequences/ring/next?count=11")
        .await
        .problem(400);
    assert_eq!(problem["maximum"], 10);
    let problem = app
        .http
        .request(Method::POST, "/v2/sequences/ring/lease?count=11")
        .await
        .problem(400);
    assert_eq!(problem["maximum"], 10);
}

/// Point 9: requests do not cut the leaser's backoff short while the store
/// fails, so a flood of them does not turn into a flood of store calls.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_store_is_retried_with_backoff_whatever_the_traffic() {
    let app = TestApp::spawn_with(|s| {
        s.block_min = 200;
        s.block_max = 200;
        s.store_timeout = Duration::from_millis(20);
        s.lease_wait = Duration::from_millis(50);
    })
    .await;
    let mut blocker = diesel::SqliteConnection::establish(&app.database_file().to_string_lossy())
        .expect("open the store's file");
    blocker.batch_execute("BEGIN IMMEDIATE").expect("lock");
    while app.get("/v2/forward?count=100").await.status == 200 {}
    let errors = |text: &str| -> f64 {
        text.lines()
            .find(|l| l.starts_with("pez_leases_total{outcome=\"error\",sequence=\"forward\"}"))
            .and_then(|l| l.rsplit(' ').next()?.parse().ok())
            .unwrap_or(0.0)
    };
    let before = errors(&app.get("/metrics").await.body);
    let started = Instant::now();
    while started.elapsed() < Duration::from_secs(3) {
        assert_eq!(app.get("/v1/forward").await.status, 503);
    }
    let failed = errors(&app.get("/metrics").await.body) - before;
    blocker.batch_execute("ROLLBACK").expect("unlock");
    // 50 ms doubling up to 1 s: about seven attempts in three seconds.
    assert!(failed <= 12.0, "{failed} lease attempts in 3 s");
    assert!(failed >= 2.0, "{failed} lease attempts in 3 s");
}

/// Point 7: the password of a URL whose user has the same name (the
/// issue's `postgres://postgres:postgres@db/pez`) is nowhere: not in the
/// start-up log, not on the status page, not in `pez settings`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_password_equal_to_the_user_name_is_shown_nowhere() {
    let cluster = Cluster::start(ClusterOptions {
        ssl: false,
        password: Some("postgres"),
    });
    let database = TestDatabase::create_on(&cluster.admin_url);
    let url = with_database(&cluster.admin_url, database.name());
    assert!(url.contains("postgres:postgres@"), "{url}");
    let dir = TempDir::new();
    let pez = PezProcess::start(dir.path(), &[("PEZ_DATABASE_URL", &url)]);
    let page = pez.http.get("/").await.body;
    let settings = pez_command(dir.path())
        .env("PEZ_DATABASE_URL", &url)
        .arg("settings")
        .output()
        .expect("pez settings");
    let settings = String::from_utf8_lossy(&settings.stdout).into_owned();
    for text in [page, settings, pez.log().join("\n")] {
        assert!(!text.contains(":postgres@"), "{text}");
        assert!(!text.contains("***://"), "{text}");
    }
    assert!(
        pez.log().iter().any(|l| l.contains(&format!(
            "postgresql://postgres@127.0.0.1:{}/",
            cluster.port()
        ))),
        "{:?}",
        pez.log()
    );
}

/// A stale instance's give-back after the sequence changed elsewhere
/// (deleted and created again, or restarted backwards): its block may fit
/// where the new one stands by coincidence (fresh sequences' blocks fall on
/// the same grid), and the give-back must still be refused. Before the fix
/// it was taken, and the new sequence issued those numbers twice.
async fn a_give_back_from_before_a_change_is_refused(change: &str) {
    let store = StoreFixture::new(Backend::Postgres);
    let fixed = |s: &mut Settings| {
        with_admin(s);
        s.block_min = 1000;
        s.block_max = 1000;
    };
    let a = TestApp::spawn_in(store.clone(), fixed).await;
    assert_eq!(
        admin(&a.http, Method::PUT, "/v2/sequences/orders", Some("{}")).await,
        201
    );
    a.numbers("/v2/sequences/orders/next").await;
    // B never syncs: it keeps its view, and its block 1001..2000, until it stops.
    let b = TestApp::spawn_in(store.clone(), |s| {
        fixed(s);
        s.sync_interval = Duration::from_secs(3600);
    })
    .await;
    assert_eq!(
        b.numbers("/v2/sequences/orders/next?count=5").await,
        [1001, 1002, 1003, 1004, 1005]
    );
    match change {
        "recreate" => {
            assert_eq!(
                admin(&a.http, Method::DELETE, "/v2/sequences/orders", None).await,
                204
            );
            assert_eq!(
                admin(&a.http, Method::PUT, "/v2/sequences/orders", Some("{}")).await,
                201
            );
        }
        _ => assert_eq!(
            admin(
                &a.http,
                Method::POST,
                "/v2/sequences/orders/restart",
                Some(r#"{"value": 1, "allow_backward": true}"#)
            )
            .await,
            200
        ),
    }
    // A holds 1..1000 of the new one; a range lease takes 1001..2000: the
    // store now stands right after B's old block.
    let mut issued = a.numbers("/v2/sequences/orders/next?count=5").await;
    let lease = a
        .http
        .request(Method::POST, "/v2/sequences/orders/lease?count=1000")
        .await;
    assert_eq!(lease.status, 200, "{}", lease.body);
    for range in lease.json()["ranges"].as_array().expect("ranges") {
        issued.extend(range["first"].as_i64().unwrap()..=range["last"].as_i64().unwrap());
    }
    let report = b.stop().await;
    // B's blocks of forward and reverse go back; its 1006..2000 of orders
    // must not.
    assert!(
        report.abandoned >= 995,
        "B gave back a block of the old sequence: {report:?}"
    );
    let lease = a
        .http
        .request(Method::POST, "/v2/sequences/orders/lease?count=10")
        .await;
    assert_eq!(lease.status, 200, "{}", lease.body);
    for range in lease.json()["ranges"].as_array().expect("ranges") {
        issued.extend(range["first"].as_i64().unwrap()..=range["last"].as_i64().unwrap());
    }
    issued.extend(a.numbers("/v2/sequences/orders/next?count=100").await);
    assert_unique(&issued);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_give_back_into_a_sequence_created_again_since_is_refused() {
    a_give_back_from_before_a_change_is_refused("recreate").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_give_back_into_a_sequence_restarted_backwards_since_is_refused() {
    a_give_back_from_before_a_change_is_refused("restart").await;
}

/// A cycling sequence smaller than what several instances take at once
/// wraps in the middle of a take: no answer may hold a number twice. Before
/// the fix a strict take's nextval() calls, interleaved with another
/// instance's, came back with a number twice (5 answers in 400).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_answer_of_a_small_cycling_sequence_holds_a_number_twice() {
    let store = StoreFixture::new(Backend::Postgres);
    let a = TestApp::spawn_in(store.clone(), with_admin).await;
    for (name, mode) in [("ring", "strict"), ("loop", "leased")] {
        let body = format!(r#"{{"min": 1, "max": 150, "mode": "{mode}"}}"#);
        assert_eq!(
            admin(
                &a.http,
                Method::PUT,
                &format!("/v2/sequences/{name}"),
                Some(&body)
            )
            .await,
            201
        );
    }
    let b = TestApp::spawn_in(store, with_admin).await;
    for name in ["ring", "loop"] {
        let mut clients = Vec::new();
        for client in 0..8 {
            let http = if client % 2 == 0 {
                a.http.clone()
            } else {
                b.http.clone()
            };
            let path = format!("/v2/sequences/{name}/next?count=100");
            clients.push(tokio::spawn(async move {
                let mut answers = Vec::new();
                for _ in 0..25 {
                    let response = http.get(&path).await;
                    if response.status == 200 {
                        answers.push(response.numbers());
                    }
                }
                answers
            }));
        }
        let mut answered = 0;
        for client in clients {
            for numbers in client.await.expect("client") {
                assert_eq!(numbers.len(), 100);
                assert_unique(&numbers);
                answered += 1;
            }
        }
        assert!(answered > 100, "{name}: only {answered} answers");
    }
}

/// A session that answered within the last second skips the pool's
/// `SELECT 1` before its next call (issue 20: that round trip cost a
/// strict batch about 150 us under load); but once a call fails, every
/// session proves itself again. So when PostgreSQL ends all of PEZ's
/// connections (a restart, a failover, a DBA), the next calls cost one
/// failed call, not one per pooled session, each followed by a longer
/// retry pause; and no request fails for it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connections_the_server_ended_cost_one_failed_call_not_one_per_session() {
    let app = TestApp::spawn_on(Backend::Postgres, with_admin).await;
    let names = ["s1", "s2", "s3", "s4"];
    for name in names {
        let created = admin(
            &app.http,
            Method::PUT,
            &format!("/v2/sequences/{name}"),
            Some(r#"{"mode": "strict"}"#),
        )
        .await;
        assert_eq!(created, 201);
    }
    let store = app.store();
    let database = store.database().expect("on postgres");
    let next = |name: &str| format!("/v2/sequences/{name}/next");
    let paths = names.map(next);
    // The four sequences' batches at once, so the pool holds several
    // sessions that all answered a moment ago.
    for _ in 0..20 {
        let answers = tokio::join!(
            app.get(&paths[0]),
            app.get(&paths[1]),
            app.get(&paths[2]),
            app.get(&paths[3]),
        );
        let statuses = [
            answers.0.status,
            answers.1.status,
            answers.2.status,
            answers.3.status,
        ];
        assert!(statuses.iter().all(|status| *status == 200), "{statuses:?}");
    }
    let mut dba = PgConnection::establish(&database.url).expect("connect");
    let ended: Vec<bool> = diesel::sql_query(format!(
        "SELECT pg_terminate_backend(pid, 5000) AS ended FROM pg_stat_activity \
          WHERE datname = '{}' AND pid <> pg_backend_pid()",
        database.name()
    ))
    .load::<Ended>(&mut dba)
    .expect("end PEZ's connections")
    .into_iter()
    .map(|row| row.ended)
    .collect();
    // The watchdog's connection and at least three of the pool's: without
    // the rule, each of those would fail a call of its own.
    assert!(ended.len() >= 4, "{ended:?}");
    // Failed store calls of every kind so far (the metrics need the
    // admin's token once one is set).
    let errors = || async {
        let text = app
            .http
            .send(Method::GET, "/metrics", &[("authorization", ADMIN)], None)
            .await
            .body;
        let series: Vec<f64> = text
            .lines()
            .filter(|l| l.starts_with("pez_store_errors_total{"))
            .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
            .collect();
        assert!(!series.is_empty(), "{text}");
        series.iter().sum::<f64>()
    };
    let before = errors().await;
    for path in &paths {
        let response = app.get(path).await;
        assert_eq!(response.status, 200, "{path}: {}", response.body);
    }
    let failed = errors().await - before;
    assert!(failed <= 1.0, "{failed} store calls failed");
}

#[derive(diesel::QueryableByName)]
struct Ended {
    #[diesel(sql_type = diesel::sql_types::Bool)]
    ended: bool,
}
