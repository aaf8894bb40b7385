//! PostgreSQL for the tests: the server in PEZ_TEST_DATABASE_URL, or
//! throwaway clusters started by `tests/pg-cluster.sh`; one database per
//! test, dropped afterwards.

use diesel::connection::SimpleConnection;
use diesel::{Connection, PgConnection, RunQueryDsl};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering};

fn script() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/pg-cluster.sh")
}

fn run_script(args: &[&str]) -> String {
    let output = Command::new(script())
        .args(args)
        .output()
        .expect("run pg-cluster.sh");
    assert!(
        output.status.success(),
        "pg-cluster.sh {args:?} failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).trim().to_owned()
}

/// A throwaway PostgreSQL cluster of this test's own, which it may stop and
/// start. Removed on drop, or when the test process ends.
#[derive(Debug)]
pub struct Cluster {
    dir: PathBuf,
    /// postgres://postgres[:password]@127.0.0.1:PORT/postgres
    pub admin_url: String,
}

/// How a [`Cluster`] is set up.
#[derive(Debug, Default, Clone, Copy)]
pub struct ClusterOptions<'a> {
    /// TLS on, with certificates for localhost signed by a test CA.
    pub ssl: bool,
    /// Password authentication (scram-sha-256) over TCP, with this password.
    pub password: Option<&'a str>,
}

impl Cluster {
    /// Starts a cluster.
    pub fn start(options: ClusterOptions<'_>) -> Self {
        static SERIAL: AtomicU64 = AtomicU64::new(0);
        let dir = std::env::temp_dir().join(format!(
            "pez-cluster-{}-{}",
            std::process::id(),
            SERIAL.fetch_add(1, Ordering::Relaxed)
        ));
        let pid = std::process::id().to_string();
        let dir_arg = dir.to_string_lossy().into_owned();
        let mut args = vec!["start", &dir_arg, "--watch", &pid];
        if options.ssl {
            args.push("--ssl");
        }
        if let Some(password) = options.password {
            args.extend(["--password", password]);
        }
        let admin_url = run_script(&args);
        Self { dir, admin_url }
    }

    /// A streaming standby of `primary`, made its synchronous standby: from
    /// now on the primary's commits wait until this one has flushed them.
    pub fn standby_of(primary: &Cluster) -> Self {
        let dir = PathBuf::from(format!("{}-standby", primary.dir.display()));
        let pid = std::process::id().to_string();
        let admin_url = run_script(&[
            "standby",
            &dir.to_string_lossy(),
            &primary.dir.to_string_lossy(),
            "--watch",
            &pid,
        ]);
        Self { dir, admin_url }
    }

    /// Promotes a standby to primary.
    pub fn promote(&self) {
        run_script(&["promote", &self.dir.to_string_lossy()]);
    }

    /// Stops the server: `fast` (clean) or `immediate` (as in a crash).
    pub fn stop(&self, mode: &str) {
        run_script(&["stop", &self.dir.to_string_lossy(), mode]);
    }

    /// Starts the stopped server again, on the same port.
    pub fn restart(&self) {
        run_script(&["restart", &self.dir.to_string_lossy()]);
    }

    /// A certificate file made by the cluster script (`ca.crt`, `other-ca.crt`).
    pub fn cert(&self, name: &str) -> PathBuf {
        self.dir.join("certs").join(name)
    }

    /// Its port.
    pub fn port(&self) -> u16 {
        std::fs::read_to_string(self.dir.join("port"))
            .expect("port file")
            .trim()
            .parse()
            .expect("port")
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        let _ = Command::new(script())
            .args(["remove", &self.dir.to_string_lossy()])
            .output();
    }
}

/// PgBouncer in front of a PostgreSQL server, as many EC2 fleets run it:
/// its own port, a pool of a few server connections shared by every client.
/// Stopped and removed on drop, or when the test process ends.
#[derive(Debug)]
pub struct Pooler {
    dir: PathBuf,
    /// postgres://postgres@127.0.0.1:PORT/postgres, through the pooler.
    pub admin_url: String,
}

impl Pooler {
    /// PgBouncer in `mode` (session, transaction or statement) with
    /// `pool_size` server connections, in front of the server on `port`.
    pub fn in_front_of(port: u16, mode: &str, pool_size: u32) -> Self {
        static SERIAL: AtomicU64 = AtomicU64::new(0);
        let dir = std::env::temp_dir().join(format!(
            "pez-pooler-{}-{}",
            std::process::id(),
            SERIAL.fetch_add(1, Ordering::Relaxed)
        ));
        let pid = std::process::id().to_string();
        let admin_url = run_script(&[
            "pooler",
            &dir.to_string_lossy(),
            &port.to_string(),
            mode,
            &pool_size.to_string(),
            "--watch",
            &pid,
        ]);
        Self { dir, admin_url }
    }

    /// The URL of `database` through the pooler.
    pub fn url(&self, database: &TestDatabase) -> String {
        with_database(&self.admin_url, database.name())
    }
}

impl Drop for Pooler {
    fn drop(&mut self) {
        let _ = Command::new(script())
            .args(["remove", &self.dir.to_string_lossy()])
            .output();
    }
}

/// The port of a `postgres://user@host:PORT/...` URL.
pub fn port_of(url: &str) -> u16 {
    let authority = &url[url.find("://").map_or(0, |i| i + 3)..];
    let authority = authority.split(['/', '?']).next().unwrap_or_default();
    authority
        .rsplit(':')
        .next()
        .and_then(|port| port.parse().ok())
        .unwrap_or(5432)
}

/// The server most tests share: PEZ_TEST_DATABASE_URL (as `make test` sets
/// it), or else one cluster started for this test process, removed when the
/// process ends.
pub fn shared_server() -> &'static str {
    static SERVER: OnceLock<String> = OnceLock::new();
    SERVER.get_or_init(|| match std::env::var("PEZ_TEST_DATABASE_URL") {
        Ok(url) if !url.is_empty() => url,
        _ => {
            let cluster = Cluster::start(ClusterOptions::default());
            let url = cluster.admin_url.clone();
            // Kept for the whole process; the script's watcher removes it.
            std::mem::forget(cluster);
            url
        }
    })
}

/// `url` with its database name replaced by `database`.
pub fn with_database(url: &str, database: &str) -> String {
    let authority = url.find("://").map_or(0, |i| i + 3);
    let path = url[authority..].find('/').map(|i| authority + i);
    let query = url.find('?');
    let end = query.unwrap_or(url.len());
    let base = &url[..path.unwrap_or(end)];
    format!("{base}/{database}{}", &url[end..])
}

/// A login role of one test's own on the shared server, made afresh and
/// dropped when it is dropped. Roles outlive databases, and a role that
/// owns objects in a database cannot be dropped: declare it before the
/// test's databases, so they are dropped first.
#[derive(Debug)]
pub struct TestRole {
    /// Its name.
    pub name: String,
}

impl TestRole {
    /// The role `prefix_<pid>`, with LOGIN.
    pub fn create(prefix: &str) -> Self {
        let name = format!("{prefix}_{}", std::process::id());
        let mut admin = PgConnection::establish(shared_server()).expect("admin connection");
        admin
            .batch_execute(&format!(
                "DROP ROLE IF EXISTS {name}; CREATE ROLE {name} LOGIN"
            ))
            .expect("create role");
        Self { name }
    }

    /// `url` (the shared server's, naming user postgres) as this role.
    pub fn url(&self, url: &str) -> String {
        let as_role = url.replacen("://postgres", &format!("://{}", self.name), 1);
        assert_ne!(
            as_role, url,
            "the test server's URL must name user postgres"
        );
        as_role
    }
}

impl Drop for TestRole {
    fn drop(&mut self) {
        let dropped = PgConnection::establish(shared_server())
            .map_err(|e| e.to_string())
            .and_then(|mut admin| {
                admin
                    .batch_execute(&format!("DROP ROLE IF EXISTS {}", self.name))
                    .map_err(|e| e.to_string())
            });
        // A test that already failed says why; one that passed must leave
        // no role behind.
        if !std::thread::panicking() {
            dropped.unwrap_or_else(|e| panic!("drop role {}: {e}", self.name));
        }
    }
}

/// A database of one test's own, dropped when it is dropped.
#[derive(Debug)]
pub struct TestDatabase {
    admin_url: String,
    name: String,
    /// Connection URL of the database.
    pub url: String,
}

impl TestDatabase {
    /// A fresh database on the shared server.
    pub fn create() -> Self {
        Self::create_on(shared_server())
    }

    /// A fresh database on the server of `admin_url`.
    pub fn create_on(admin_url: &str) -> Self {
        static SERIAL: AtomicU64 = AtomicU64::new(0);
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.subsec_nanos())
            .unwrap_or_default();
        let name = format!(
            "pez_test_{}_{}_{nanos}",
            std::process::id(),
            SERIAL.fetch_add(1, Ordering::Relaxed)
        );
        let mut admin = PgConnection::establish(admin_url)
            .unwrap_or_else(|e| panic!("cannot reach the test PostgreSQL at {admin_url}: {e}"));
        diesel::sql_query(format!("CREATE DATABASE {name}"))
            .execute(&mut admin)
            .expect("create database");
        Self {
            admin_url: admin_url.to_owned(),
            url: with_database(admin_url, &name),
            name,
        }
    }

    /// Its name on the server.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Runs SQL on the test database: one or more statements.
    pub fn execute(&self, sql: &str) {
        let mut conn = PgConnection::establish(&self.url).expect("connect to the test database");
        conn.batch_execute(sql)
            .unwrap_or_else(|e| panic!("{sql}: {e}"));
    }
}

impl Drop for TestDatabase {
    fn drop(&mut self) {
        if let Ok(mut admin) = PgConnection::establish(&self.admin_url) {
            // Not waiting for a synchronous standby a test may have stopped.
            let _ = diesel::sql_query("SET synchronous_commit = local").execute(&mut admin);
            let _ = diesel::sql_query(format!(
                "DROP DATABASE IF EXISTS {} WITH (FORCE)",
                self.name
            ))
            .execute(&mut admin);
        }
    }
}

#[test]
fn database_names_are_swapped_in_urls() {
    assert_eq!(
        with_database("postgres://u@h:1/postgres", "x"),
        "postgres://u@h:1/x"
    );
    assert_eq!(
        with_database("postgres://u@h:1/postgres?sslmode=disable", "x"),
        "postgres://u@h:1/x?sslmode=disable"
    );
    assert_eq!(with_database("postgres://u@h:1", "x"), "postgres://u@h:1/x");
}
