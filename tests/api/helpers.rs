//! One way to start PEZ in tests, in-process or as the real binary, and to
//! talk HTTP to it. Every server gets its own data directory and port.

use crate::postgres_support::TestDatabase;
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::{Method, Request, StatusCode};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use pez::config::command::Cli;
use pez::config::{Settings, StoreChoice};
use pez::dispenser::ReturnReport;
use pez::server::Server;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

/// The largest number PEZ issues.
pub const MAX: i64 = i64::MAX;

/// Logs are silent unless TEST_LOG is set (as in zero-to-production).
fn init_logs() {
    if let Ok(filter) = std::env::var("TEST_LOG") {
        let filter = if filter.is_empty() { "debug" } else { &filter };
        pez::telemetry::init(filter, pez::telemetry::LogFormat::Text);
    }
}

/// A directory that is removed when dropped.
#[derive(Debug)]
pub struct TempDir(PathBuf);

impl TempDir {
    /// A fresh, empty, uniquely named directory.
    pub fn new() -> Self {
        static SERIAL: AtomicU64 = AtomicU64::new(0);
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or_default();
        let dir = std::env::temp_dir().join(format!(
            "pez-test-{}-{}-{nanos}",
            std::process::id(),
            SERIAL.fetch_add(1, Ordering::Relaxed)
        ));
        std::fs::create_dir_all(&dir).expect("create temp dir");
        TempDir(dir)
    }

    /// Its path.
    pub fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A response, read whole.
#[derive(Debug)]
pub struct TestResponse {
    /// Status code.
    pub status: StatusCode,
    /// Headers.
    pub headers: hyper::HeaderMap,
    /// Body as text.
    pub body: String,
}

impl TestResponse {
    /// The body parsed as JSON.
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.body)
            .unwrap_or_else(|e| panic!("body is not JSON ({e}): {:?}", self.body))
    }

    /// A header as text.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    /// The numbers of a 200 answer from v1 (one) or v2 (a list).
    pub fn numbers(&self) -> Vec<i64> {
        assert_eq!(self.status, StatusCode::OK, "body: {}", self.body);
        match self.json() {
            serde_json::Value::Array(items) => items
                .iter()
                .map(|n| n.as_i64().unwrap_or_else(|| panic!("not an i64: {n}")))
                .collect(),
            n => vec![n.as_i64().unwrap_or_else(|| panic!("not an i64: {n}"))],
        }
    }

    /// Asserts an RFC 9457 problem with this status; returns its body.
    pub fn problem(&self, status: u16) -> serde_json::Value {
        assert_eq!(self.status.as_u16(), status, "body: {}", self.body);
        assert_eq!(
            self.header("content-type"),
            Some("application/problem+json")
        );
        let problem = self.json();
        assert_eq!(problem["status"], status);
        assert!(problem["type"].is_string() && problem["title"].is_string());
        assert!(problem["detail"].as_str().is_some_and(|d| !d.is_empty()));
        problem
    }
}

/// An HTTP client bound to one server.
#[derive(Clone, Debug)]
pub struct HttpClient {
    addr: SocketAddr,
    client: Client<HttpConnector, Full<Bytes>>,
}

impl HttpClient {
    /// A client for the server at `addr`.
    pub fn new(addr: SocketAddr) -> Self {
        Self {
            addr,
            client: Client::builder(TokioExecutor::new()).build_http(),
        }
    }

    /// The server's address, for clients other than this one (a browser).
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Sends `method path` with no body; fails the test after 10 s.
    pub async fn request(&self, method: Method, path: &str) -> TestResponse {
        self.try_request(method, path)
            .await
            .unwrap_or_else(|e| panic!("{path}: {e}"))
    }

    /// Like [`Self::request`], but a connection error is returned, not a panic.
    pub async fn try_request(&self, method: Method, path: &str) -> Result<TestResponse, String> {
        self.try_send(method, path, &[], None).await
    }

    /// Sends a request with headers and an optional body; fails the test
    /// after 10 s.
    pub async fn send(
        &self,
        method: Method,
        path: &str,
        headers: &[(&str, &str)],
        body: Option<&str>,
    ) -> TestResponse {
        self.try_send(method, path, headers, body)
            .await
            .unwrap_or_else(|e| panic!("{path}: {e}"))
    }

    async fn try_send(
        &self,
        method: Method,
        path: &str,
        headers: &[(&str, &str)],
        body: Option<&str>,
    ) -> Result<TestResponse, String> {
        let mut builder = Request::builder()
            .method(method)
            .uri(format!("http://{}{path}", self.addr));
        for (name, value) in headers {
            builder = builder.header(*name, *value);
        }
        let request = builder
            .body(Full::new(
                body.map_or_else(Bytes::new, |b| Bytes::from(b.to_owned())),
            ))
            .map_err(|e| e.to_string())?;
        let exchange = async {
            let response = self
                .client
                .request(request)
                .await
                .map_err(|e| e.to_string())?;
            let (parts, body) = response.into_parts();
            let body = body.collect().await.map_err(|e| e.to_string())?.to_bytes();
            Ok(TestResponse {
                status: parts.status,
                headers: parts.headers,
                body: String::from_utf8(body.to_vec()).map_err(|e| e.to_string())?,
            })
        };
        tokio::time::timeout(Duration::from_secs(10), exchange)
            .await
            .map_err(|_| "no answer within 10 s".to_owned())?
    }

    /// GET `path`.
    pub async fn get(&self, path: &str) -> TestResponse {
        self.request(Method::GET, path).await
    }

    /// GET `path` and return its numbers.
    pub async fn numbers(&self, path: &str) -> Vec<i64> {
        self.get(path).await.numbers()
    }
}

/// Which store a test runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// The embedded SQLite store.
    Sqlite,
    /// PostgreSQL: a database of the test's own.
    Postgres,
}

/// A store that servers can be started on, one after another (SQLite) or
/// side by side (PostgreSQL). Cleaned up when the last holder drops it.
#[derive(Debug, Clone)]
pub struct StoreFixture {
    data_dir: Arc<TempDir>,
    database: Option<Arc<TestDatabase>>,
}

impl StoreFixture {
    /// A fresh store of `backend`.
    pub fn new(backend: Backend) -> Self {
        Self {
            data_dir: Arc::new(TempDir::new()),
            database: (backend == Backend::Postgres).then(|| Arc::new(TestDatabase::create())),
        }
    }

    /// A fresh store on the PostgreSQL database `database`.
    pub fn on_database(database: TestDatabase) -> Self {
        Self {
            data_dir: Arc::new(TempDir::new()),
            database: Some(Arc::new(database)),
        }
    }

    /// Settings for a server on this store, on port 0, with defaults.
    pub fn settings(&self) -> Settings {
        let mut settings = Settings::with_data_dir(self.data_dir.path().to_owned());
        settings.listen = "127.0.0.1:0".parse().expect("address");
        settings.store = match &self.database {
            None => StoreChoice::Embedded,
            Some(database) => postgres_store(&database.url),
        };
        settings
    }

    /// The embedded store's data directory.
    pub fn data_dir(&self) -> &Path {
        self.data_dir.path()
    }

    /// The PostgreSQL database, if this is one.
    pub fn database(&self) -> Option<&TestDatabase> {
        self.database.as_deref()
    }
}

/// The store settings PEZ derives from PEZ_DATABASE_URL=`url`.
pub fn postgres_store(url: &str) -> StoreChoice {
    let cli = <Cli as clap::Parser>::parse_from(["pez", "--database-url", url]);
    cli.settings.validate().expect("valid settings").store
}

/// Small blocks and short waits, for tests that take the synchronous
/// standby away: a few requests use up what an instance holds, and every
/// call and request gives up within half a second.
pub fn short_waits(settings: &mut Settings) {
    settings.block_min = 200;
    settings.block_max = 200;
    settings.lease_wait = Duration::from_millis(500);
    if let StoreChoice::Postgres(pg) = &mut settings.store {
        pg.timeout = Duration::from_millis(500);
    }
}

/// A PEZ server running inside the test process.
pub struct TestApp {
    /// Talks to it.
    pub http: HttpClient,
    stop: Option<oneshot::Sender<()>>,
    running: Option<JoinHandle<ReturnReport>>,
    store: StoreFixture,
}

impl TestApp {
    /// A server on a fresh embedded store, with settings adjusted by `adjust`.
    pub async fn spawn_with(adjust: impl FnOnce(&mut Settings)) -> Self {
        Self::spawn_on(Backend::Sqlite, adjust).await
    }

    /// A server on a fresh store of `backend`.
    pub async fn spawn_on(backend: Backend, adjust: impl FnOnce(&mut Settings)) -> Self {
        Self::spawn_in(StoreFixture::new(backend), adjust).await
    }

    /// A server on `store` (which may hold earlier runs, or serve others).
    pub async fn spawn_in(store: StoreFixture, adjust: impl FnOnce(&mut Settings)) -> Self {
        Self::try_spawn_in(store, adjust)
            .await
            .expect("server starts")
    }

    /// Like [`Self::spawn_in`], but a failed start is returned.
    pub async fn try_spawn_in(
        store: StoreFixture,
        adjust: impl FnOnce(&mut Settings),
    ) -> Result<Self, pez::server::StartError> {
        init_logs();
        let mut settings = store.settings();
        adjust(&mut settings);
        let server = Server::start(&settings).await?;
        let http = HttpClient::new(server.local_addr());
        let (stop, stopped) = oneshot::channel::<()>();
        let running = tokio::spawn(server.run_until(async {
            let _ = stopped.await;
        }));
        Ok(Self {
            http,
            stop: Some(stop),
            running: Some(running),
            store,
        })
    }

    /// Its store, to start another server on it.
    pub fn store(&self) -> StoreFixture {
        self.store.clone()
    }

    /// The SQLite file of the embedded store.
    pub fn database_file(&self) -> PathBuf {
        self.store.data_dir().join(pez::store::DATABASE_FILE)
    }

    /// Stops the server gracefully and reports what it gave back.
    pub async fn stop(mut self) -> ReturnReport {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        let running = self.running.take().expect("running");
        tokio::time::timeout(Duration::from_secs(10), running)
            .await
            .expect("graceful stop within 10 s")
            .expect("server task")
    }

    /// GET `path` and return its numbers.
    pub async fn numbers(&self, path: &str) -> Vec<i64> {
        self.http.numbers(path).await
    }

    /// GET `path`.
    pub async fn get(&self, path: &str) -> TestResponse {
        self.http.get(path).await
    }
}

impl Drop for TestApp {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

/// The `pez` binary as a command, with a clean environment: no PEZ_*
/// variable leaks in from the developer's shell, and no `.env` is found.
pub fn pez_command(data_dir: &Path) -> Command {
    in_a_clean_environment(Command::new(env!("CARGO_BIN_EXE_pez")), data_dir)
}

/// [`pez_command`], run under `umask` (std's `Command` cannot set one,
/// so a shell sets it and then becomes pez: the pid is pez's).
pub fn pez_command_under_umask(data_dir: &Path, umask: &str) -> Command {
    let mut shell = Command::new("sh");
    shell.args([
        "-c",
        &format!("umask {umask} && exec \"$0\" \"$@\""),
        env!("CARGO_BIN_EXE_pez"),
    ]);
    in_a_clean_environment(shell, data_dir)
}

fn in_a_clean_environment(mut command: Command, data_dir: &Path) -> Command {
    for (key, _) in std::env::vars() {
        if key.starts_with("PEZ_") {
            command.env_remove(key);
        }
    }
    command
        .current_dir(data_dir)
        .env("PEZ_DATA_DIR", data_dir)
        .env("PEZ_LOG", "info")
        // Not this machine's /etc/pez/pez.env, if it has one.
        .env("PEZ_ENV_FILE", "");
    command
}

/// Runs `pez ARGS` to completion on `data_dir`.
pub fn run_pez(data_dir: &Path, args: &[&str]) -> Output {
    run_pez_on(data_dir, None, args)
}

/// Runs `pez ARGS` to completion on the PostgreSQL database at `url`, or
/// on the embedded store in `data_dir` when there is none; a server it
/// starts listens on a free port.
pub fn run_pez_on(data_dir: &Path, url: Option<&str>, args: &[&str]) -> Output {
    let mut command = pez_command(data_dir);
    if let Some(url) = url {
        command.env("PEZ_DATABASE_URL", url);
    }
    command
        .env("PEZ_LISTEN", "127.0.0.1:0")
        .args(args)
        .output()
        .expect("run pez")
}

/// The real `pez` binary serving on a free port.
pub struct PezProcess {
    child: Child,
    /// Talks to it.
    pub http: HttpClient,
    log: Arc<Mutex<Vec<String>>>,
}

impl PezProcess {
    /// Starts `pez` on `data_dir` with extra environment variables and
    /// waits until it listens.
    pub fn start(data_dir: &Path, env: &[(&str, &str)]) -> Self {
        Self::start_command(pez_command(data_dir), env)
    }

    /// [`Self::start`], with a command made by [`pez_command`] or
    /// [`pez_command_under_umask`].
    pub fn start_command(mut command: Command, env: &[(&str, &str)]) -> Self {
        command
            .env("PEZ_LISTEN", "127.0.0.1:0")
            .envs(env.iter().copied())
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        let mut child = command.spawn().expect("spawn pez");
        let stderr = child.stderr.take().expect("stderr");
        let log = Arc::new(Mutex::new(Vec::new()));
        let (found, addr) = mpsc::channel();
        let lines = Arc::clone(&log);
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                // The address ends at a space or, in a JSON log line, a quote.
                let listening = line.split("listening on http://").nth(1).map(|at| {
                    at.split(|c: char| c == '"' || c.is_whitespace())
                        .next()
                        .unwrap_or_default()
                        .to_owned()
                });
                // Logged first, so that whoever hears "listening" finds the line.
                lines.lock().expect("log").push(line);
                if let Some(at) = listening {
                    let _ = found.send(at);
                }
            }
        });
        let addr = match addr.recv_timeout(Duration::from_secs(20)) {
            Ok(addr) => addr.parse().expect("address in log"),
            Err(_) => {
                let _ = child.kill();
                panic!("pez did not start: {:?}", log.lock().expect("log"));
            }
        };
        Self {
            child,
            http: HttpClient::new(addr),
            log,
        }
    }

    /// Its process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// What it has logged so far.
    pub fn log(&self) -> Vec<String> {
        self.log.lock().expect("log").clone()
    }

    /// Sends SIGTERM, as `systemctl stop` does.
    pub fn terminate(&self) {
        let status = Command::new("kill")
            .args(["-TERM", &self.pid().to_string()])
            .status()
            .expect("run kill");
        assert!(status.success());
    }

    /// Sends SIGKILL: a crash, with no chance to give anything back.
    pub fn kill_9(&mut self) {
        self.child.kill().expect("kill -9");
        let _ = self.child.wait();
    }

    /// Waits up to `limit` for the process to exit; returns its exit code
    /// and how long it took.
    pub fn wait_exit(&mut self, limit: Duration) -> (Option<i32>, Duration) {
        let started = Instant::now();
        while started.elapsed() < limit {
            if let Some(status) = self.child.try_wait().expect("try_wait") {
                return (status.code(), started.elapsed());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        panic!("pez did not exit within {limit:?}; log: {:?}", self.log());
    }
}

impl Drop for PezProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Generates one `#[tokio::test]` per store for each listed
/// `async fn name(backend: Backend)`, in modules `on_sqlite` and `on_postgres`.
#[macro_export]
macro_rules! on_both_stores {
    ($($name:ident),* $(,)?) => {
        mod on_sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::$name($crate::helpers::Backend::Sqlite).await
                }
            )*
        }
        mod on_postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::$name($crate::helpers::Backend::Postgres).await
                }
            )*
        }
    };
}

/// Asserts that `numbers` holds no number twice.
pub fn assert_unique(numbers: &[i64]) {
    let mut sorted = numbers.to_vec();
    sorted.sort_unstable();
    if let Some(pair) = sorted.windows(2).find(|w| w[0] == w[1]) {
        panic!("{} was issued twice", pair[0]);
    }
}

/// Asserts that `numbers` count up one by one (or down, for `step` -1).
pub fn assert_consecutive(numbers: &[i64], step: i64) {
    for pair in numbers.windows(2) {
        assert_eq!(
            pair[1],
            pair[0] + step,
            "not in sequence order: {numbers:?}"
        );
    }
}

/// The one error line of a `pez` run that failed: it exited non-zero and,
/// among whatever it logged, said why in exactly one `pez: ...` line.
pub fn the_error_line(output: &Output) -> String {
    assert!(!output.status.success(), "expected a failure: {output:?}");
    let stderr = String::from_utf8_lossy(&output.stderr);
    let errors: Vec<&str> = stderr.lines().filter(|l| l.starts_with("pez: ")).collect();
    assert_eq!(errors.len(), 1, "one error line expected: {stderr}");
    errors[0].to_owned()
}

/// Sends raw bytes on a fresh connection and reads until the server closes
/// it (or `limit` passes); returns what came back and when it closed.
pub fn raw_exchange(
    addr: SocketAddr,
    request: &[u8],
    limit: Duration,
) -> (String, Option<Duration>) {
    let started = Instant::now();
    let mut stream = TcpStream::connect(addr).expect("connect");
    stream.set_read_timeout(Some(limit)).expect("timeout");
    let _ = stream.write_all(request);
    let mut answer = Vec::new();
    let mut buffer = [0u8; 4096];
    let closed = loop {
        match stream.read(&mut buffer) {
            Ok(0) => break Some(started.elapsed()),
            Ok(n) => answer.extend_from_slice(&buffer[..n]),
            Err(_) => break None,
        }
    };
    (String::from_utf8_lossy(&answer).into_owned(), closed)
}

/// Reads one HTTP/1.1 response with a Content-Length body from `stream`.
pub fn read_response(stream: &mut TcpStream) -> String {
    let mut answer = Vec::new();
    let mut buffer = [0u8; 4096];
    loop {
        let text = String::from_utf8_lossy(&answer).into_owned();
        if let Some(end) = text.find("\r\n\r\n") {
            let length: usize = text[..end]
                .lines()
                .find_map(|l| {
                    l.to_ascii_lowercase()
                        .strip_prefix("content-length:")
                        .map(|v| v.trim().to_owned())
                })
                .and_then(|v| v.parse().ok())
                .unwrap_or(0);
            if answer.len() >= end + 4 + length {
                return text;
            }
        }
        match stream.read(&mut buffer) {
            Ok(0) | Err(_) => return text,
            Ok(n) => answer.extend_from_slice(&buffer[..n]),
        }
    }
}
