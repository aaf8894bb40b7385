//! PEZ behind PgBouncer (issue 16, point 2), as many EC2 fleets run it: in
//! transaction mode a server connection serves a client for one
//! transaction and then whoever comes next, so PEZ may rely on no session
//! state (no session `SET`, no session advisory lock, no named prepared
//! statement, no backend identity kept between transactions). The support
//! table is in docs/deploy.md.

use crate::helpers::{HttpClient, StoreFixture, TempDir, TestApp, assert_unique, run_pez_on};
use crate::postgres_support::{
    Cluster, ClusterOptions, Pooler, TestDatabase, port_of, shared_server,
};
use diesel::connection::SimpleConnection;
use diesel::{Connection, PgConnection};
use hyper::Method;
use pez::config::{Secret, Settings, StoreChoice};
use std::time::Duration;

const ADMIN: &str = "Bearer pooled";

/// Settings of an instance that reaches its database through `url` (the
/// pooler), with more pooled sessions of its own than the pooler has
/// server connections.
fn through(url: &str) -> impl Fn(&mut Settings) + Clone + '_ {
    move |s: &mut Settings| {
        s.access.admin = Some(Secret::new("pooled".into()));
        s.store = crate::helpers::postgres_store(url);
        s.block_min = 1000;
        s.block_max = 1000;
        if let StoreChoice::Postgres(pg) = &mut s.store {
            pg.pool_size = 4;
        }
    }
}

async fn admin(http: &HttpClient, method: Method, path: &str, body: Option<&str>) -> u16 {
    http.send(method, path, &[("authorization", ADMIN)], body)
        .await
        .status
        .as_u16()
}

/// Three instances start at once on a fresh database through PgBouncer
/// (migrating, one of them at a time), in transaction mode with two server
/// connections for twelve sessions, and in session mode: every path serves
/// (leased blocks, strict takes, range leases, admin changes), nothing
/// comes out twice, and a clean stop gives back (the next start continues
/// within the blocks it held, not past them).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn instances_behind_pgbouncer_serve_every_path_and_give_back() {
    // In session mode each of PEZ's sessions holds a server connection for
    // as long as it lives: the pool must hold them all.
    for (mode, server_connections) in [("transaction", 2), ("session", 16)] {
        let database = TestDatabase::create();
        let pooler = Pooler::in_front_of(port_of(shared_server()), mode, server_connections);
        let url = pooler.url(&database);
        let store = StoreFixture::on_database(database);
        let adjust = through(&url);
        let (a, b, c) = tokio::join!(
            TestApp::spawn_in(store.clone(), adjust.clone()),
            TestApp::spawn_in(store.clone(), adjust.clone()),
            TestApp::spawn_in(store.clone(), adjust.clone()),
        );
        assert_eq!(
            admin(
                &a.http,
                Method::PUT,
                "/v2/sequences/orders",
                Some(r#"{"mode": "strict"}"#)
            )
            .await,
            201,
            "{mode}"
        );
        let mut forward = Vec::new();
        let mut orders = Vec::new();
        // b and c learn of it at their next look at the store.
        let started = std::time::Instant::now();
        for app in [&b, &c] {
            loop {
                let response = app.get("/v2/sequences/orders/next").await;
                if response.status == 200 {
                    orders.extend(response.numbers());
                    break;
                }
                assert_eq!(response.status, 404, "{mode}: {}", response.body);
                assert!(started.elapsed() < Duration::from_secs(10), "{mode}");
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
        for _ in 0..20 {
            for app in [&a, &b, &c] {
                forward.extend(app.numbers("/v2/forward?count=50").await);
                orders.extend(app.numbers("/v2/sequences/orders/next?count=5").await);
            }
        }
        let lease = b
            .http
            .request(Method::POST, "/v2/sequences/orders/lease?count=3000")
            .await;
        assert_eq!(lease.status, 200, "{mode}: {}", lease.body);
        assert_eq!(
            admin(
                &c.http,
                Method::POST,
                "/v2/sequences/orders/restart",
                Some(r#"{"value": 1000000, "allow_early_wrap": true}"#)
            )
            .await,
            200,
            "{mode}"
        );
        orders.extend(c.numbers("/v2/sequences/orders/next?count=3").await);
        assert_eq!(orders.last(), Some(&1_000_002), "{mode}");
        assert_unique(&forward);
        assert_unique(&orders);

        b.stop().await;
        c.stop().await;
        // a leases once more, alone (its blocks are 1,000): its stop gives
        // the rest back.
        let mut last = 0;
        for _ in 0..15 {
            let numbers = a.numbers("/v2/forward?count=100").await;
            last = *numbers.last().expect("numbers");
            forward.extend(numbers);
        }
        let report = a.stop().await;
        assert!(report.returned > 0, "{mode}: {report:?}");
        let again = TestApp::spawn_in(store.clone(), adjust.clone()).await;
        let next = again.numbers("/v1/forward").await;
        // The next number is one a held and gave back: not one issued, and
        // within what it held (its block and at most four ahead), not past
        // it as after a crash.
        assert!(
            !forward.contains(&next[0]) && next[0] > last && next[0] <= last + 5_000,
            "{mode}: after {last} came {next:?}; {report:?}"
        );
        again.stop().await;
    }
}

/// Behind a pooler PEZ cannot pin anything to a session: every transaction
/// whose numbers leave PEZ carries `synchronous_commit = on` itself. With
/// the server configured `local` and the synchronous standby gone, nothing
/// is served through the pooler by any path.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn behind_pgbouncer_no_number_leaves_without_the_standby_whatever_the_server_says() {
    let primary = Cluster::start(ClusterOptions::default());
    let database = TestDatabase::create_on(&primary.admin_url);
    let standby = Cluster::standby_of(&primary);
    let mut dba = PgConnection::establish(&primary.admin_url).expect("admin");
    for sql in [
        "ALTER SYSTEM SET synchronous_commit = 'local'",
        "SELECT pg_reload_conf()",
    ] {
        dba.batch_execute(sql).expect("lower synchronous_commit");
    }
    let pooler = Pooler::in_front_of(primary.port(), "transaction", 2);
    let url = pooler.url(&database);
    let database_name = database.name().to_owned();
    let adjust = through(&url);
    let app = TestApp::spawn_in(StoreFixture::on_database(database), |s| {
        adjust(s);
        crate::helpers::short_waits(s);
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
    // The pooler's server connections go, as they do when it recycles
    // them: PEZ's next transactions run on new ones, which start with the
    // server's setting.
    dba.batch_execute(&format!(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity \
          WHERE datname = '{}' AND pid <> pg_backend_pid()",
        database_name
    ))
    .expect("end the pooler's server connections");
    standby.stop("fast");
    let mut leased = 0;
    while app.get("/v2/forward?count=100").await.status == 200 {
        leased += 100;
        assert!(leased <= 1_000, "leases went on without the standby");
    }
    for path in ["/v2/sequences/strict/next", "/v1/reverse"] {
        let mut response = app.get(path).await;
        while path == "/v1/reverse" && response.status == 200 {
            response = app.get(path).await;
        }
        assert_eq!(response.status, 503, "{path}: {}", response.body);
    }
    let lease = app
        .http
        .request(Method::POST, "/v2/sequences/strict/lease?count=10")
        .await;
    assert_eq!(lease.status, 503, "{}", lease.body);
    standby.restart();
    app.stop().await;
}

/// In statement mode a transaction is refused by the pooler, and PEZ needs
/// them (give-backs, restarts, creations, migrations): it stops at start
/// with one line that says so, rather than serving what it cannot give back.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pgbouncer_in_statement_mode_is_refused_at_start_with_one_line() {
    let database = TestDatabase::create();
    let pooler = Pooler::in_front_of(port_of(shared_server()), "statement", 2);
    let dir = TempDir::new();
    let refused = run_pez_on(dir.path(), Some(&pooler.url(&database)), &[]);
    let line = crate::helpers::the_error_line(&refused);
    assert!(line.contains("statement"), "{line}");
}
